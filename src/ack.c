/*
 * ack.c
 *	  Finishing messages: pgmq.delete and pgmq.archive (one id or an array),
 *	  and the fenced ack and ack_batch.
 *
 * archive moves the row into pgmq.a_<name> in the caller's transaction (one
 * statement: a DELETE ... RETURNING feeding an INSERT), so a rollback undoes
 * both halves and a message is never in both tables or in neither.
 * A missing id is not an error: the one-id forms return false, the array
 * forms return only the ids they acted on. An unknown queue is an error even
 * when the id is NULL.
 *
 * ack takes the read_ct a read returned as a receipt for that delivery. It
 * finishes the message only while the receipt is current: same read_ct (no
 * other worker has been handed the message since) and not nacked. A stale
 * receipt is not an error; it returns false and changes nothing. On a queue
 * that keeps history, ack archives the message with its outcome and result;
 * otherwise it deletes it, as pgmq's delete does.
 *
 * Every form counts the time from the message's last read to its finish
 * (latency.c): the statements return last_read_at beside the ids.
 */
#include "queue_ext.h"

#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "utils/array.h"
#include "utils/builtins.h"

/*
 * n messages left the queue (archived or not): they are counted, and on a
 * queue that caps messages in flight waiting readers have room again.
 */
static void
ack_frees_room(QueueEntry *queue, uint64 n, bool archived)
{
	count_messages(queue, archived ? COUNT_ARCHIVED : COUNT_ACKED, (int64) n);
	if (n > 0 && queue->options.max_in_flight > 0)
		wake_readers_at_commit(queue);
}

/* A finished message's last_read_at: the read -> ack latency, when it was read. */
static void
count_ack_latency(QueueEntry *queue, Datum last_read_at, bool never_read, TimestampTz now)
{
	if (!never_read)
		count_latency(queue, LATENCY_ACK, DatumGetTimestampTz(last_read_at), now);
}

/* An ack statement's one-column result (last_read_at) in SPI_tuptable: its latencies. */
static void
count_ack_latencies(QueueEntry *queue, TimestampTz now)
{
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		last_read_at = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

		count_ack_latency(queue, last_read_at, isnull, now);
	}
}

/*
 * Where an ack statement's (msg_id, last_read_at) rows go when the ids are
 * the call's result: the latency is counted, the id passed on.
 */
typedef struct AckReceiver
{
	DestReceiver pub;
	DestReceiver *result;
	TupleTableSlot *id_slot;
	QueueEntry *queue;
	TimestampTz now;
} AckReceiver;

static bool
ack_receive(TupleTableSlot *slot, DestReceiver *self)
{
	AckReceiver *r = (AckReceiver *) self;
	bool		isnull;
	Datum		last_read_at = slot_getattr(slot, 2, &isnull);

	count_ack_latency(r->queue, last_read_at, isnull, r->now);
	ExecClearTuple(r->id_slot);
	r->id_slot->tts_values[0] = slot_getattr(slot, 1, &r->id_slot->tts_isnull[0]);
	ExecStoreVirtualTuple(r->id_slot);
	return r->result->receiveSlot(r->id_slot, r->result);
}

static void
ack_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	AckReceiver *r = (AckReceiver *) self;

	r->result->rStartup(r->result, operation, r->id_slot->tts_tupleDescriptor);
}

static void
ack_shutdown(DestReceiver *self)
{
	AckReceiver *r = (AckReceiver *) self;

	r->result->rShutdown(r->result);
}

static void
ack_destroy(DestReceiver *self)
{
	AckReceiver *r = (AckReceiver *) self;

	r->result->rDestroy(r->result);
	ExecDropSingleTupleTableSlot(r->id_slot);
}

/* Runs an ack statement whose msg_ids are the result of the set-returning call fcinfo; SPI is connected. */
static uint64
ack_returning_ids(FunctionCallInfo fcinfo, QueueEntry *queue, QueuePlanKind kind,
				  const Datum *values, const bool *nulls)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	AckReceiver receiver = {
		.pub = {
			.receiveSlot = ack_receive,
			.rStartup = ack_startup,
			.rShutdown = ack_shutdown,
			.rDestroy = ack_destroy,
			.mydest = DestTuplestore,
		},
		.result = srf_receiver(fcinfo),
		.id_slot = MakeSingleTupleTableSlot(rsinfo->setDesc, &TTSOpsVirtual),
		.queue = queue,
		.now = GetCurrentTimestamp(),
	};
	uint64		n = queue_execute_to(queue, kind, values, nulls, &receiver.pub);

	receiver.pub.rDestroy(&receiver.pub);
	return n;
}

/* One id: true when a message was there. A NULL id is no message, as in pgmq. */
static Datum
ack_one(QueueEntry *queue, Datum id, bool id_null, QueuePlanKind kind)
{
	uint64		n;

	if (id_null)
		PG_RETURN_BOOL(false);
	spi_connect_or_error();
	n = queue_execute(queue, kind, &id, NULL, NULL);
	count_ack_latencies(queue, GetCurrentTimestamp());
	SPI_finish();
	ack_frees_room(queue, n, kind == QP_ARCHIVE_ONE);
	PG_RETURN_BOOL(n > 0);
}

static Datum
ack_many(FunctionCallInfo fcinfo, QueuePlanKind kind)
{
	QueueEntry *queue = queue_lookup_arg(fcinfo, 0, NEED_CONSUME);
	Datum		ids = PG_GETARG_DATUM(1);

	srf_begin(fcinfo);
	if (PG_ARGISNULL(1))
		return (Datum) 0;
	spi_connect_or_error();
	ack_frees_room(queue, ack_returning_ids(fcinfo, queue, kind, &ids, NULL), kind == QP_ARCHIVE_MANY);
	SPI_finish();
	return (Datum) 0;
}

/*
 * An untyped id (a driver's parameter): delete($1, $2) and archive($1, $2) are
 * ambiguous between the bigint and bigint[] forms in pgmq. The text forms take
 * one id and return boolean; an array needs its type spelled out, because the
 * array forms return a set of ids, not a boolean.
 */
static Datum
ack_one_untyped(FunctionCallInfo fcinfo, QueuePlanKind kind)
{
	QueueEntry *queue = queue_lookup_arg(fcinfo, 0, NEED_CONSUME);
	char	   *s;

	if (PG_ARGISNULL(1))
		return ack_one(queue, (Datum) 0, true, kind);
	s = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (s[strspn(s, " \t\r\n")] == '{')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("an untyped msg_id must be a single id, not an array"),
				 errhint("Pass several ids as bigint[]: cast the parameter, e.g. $2::bigint[].")));
	return ack_one(queue, value_from_text(s, INT8OID), false, kind);
}


/* delete(queue_name, msg_id bigint) -> boolean */
QUEUE_EXT_ENTRY(queue_ext_delete)
{
	return ack_one(queue_lookup_arg(fcinfo, 0, NEED_CONSUME), PG_GETARG_DATUM(1), PG_ARGISNULL(1), QP_DELETE_ONE);
}

/* delete(queue_name, msg_ids bigint[]) -> setof bigint */
QUEUE_EXT_ENTRY(queue_ext_delete_many)
{
	return ack_many(fcinfo, QP_DELETE_MANY);
}

/* archive(queue_name, msg_id bigint) -> boolean */
QUEUE_EXT_ENTRY(queue_ext_archive)
{
	return ack_one(queue_lookup_arg(fcinfo, 0, NEED_CONSUME), PG_GETARG_DATUM(1), PG_ARGISNULL(1), QP_ARCHIVE_ONE);
}

/* archive(queue_name, msg_ids bigint[]) -> setof bigint */
QUEUE_EXT_ENTRY(queue_ext_archive_many)
{
	return ack_many(fcinfo, QP_ARCHIVE_MANY);
}

/* delete(queue_name, msg_id text) -> boolean: an untyped id */
QUEUE_EXT_ENTRY(queue_ext_delete_untyped)
{
	return ack_one_untyped(fcinfo, QP_DELETE_ONE);
}

/* archive(queue_name, msg_id text) -> boolean: an untyped id */
QUEUE_EXT_ENTRY(queue_ext_archive_untyped)
{
	return ack_one_untyped(fcinfo, QP_ARCHIVE_ONE);
}

/* ---- fenced ack ---- */


/* ack(queue_name, msg_id, read_ct, result jsonb default null) -> boolean */
QUEUE_EXT_ENTRY(queue_ext_ack)
{
	QueueEntry *queue = queue_lookup_arg(fcinfo, 0, NEED_CONSUME);
	int32		read_ct = receipt_arg(fcinfo, 2);
	Datum		values[4];
	bool		nulls[4] = {false, false, false, PG_ARGISNULL(3)};
	uint64		n;

	if (PG_ARGISNULL(1))
		PG_RETURN_BOOL(false);
	values[0] = PG_GETARG_DATUM(1);
	values[1] = Int32GetDatum(read_ct);
	values[2] = TimestampTzGetDatum(GetCurrentTimestamp());
	values[3] = PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3);

	spi_connect_or_error();
	n = queue_execute(queue, queue->options.keep_history ? QP_ACK_ARCHIVE : QP_ACK,
					  values, nulls, NULL);
	count_ack_latencies(queue, DatumGetTimestampTz(values[2]));
	breaker_record(queue, (int64) n, 0);
	SPI_finish();
	ack_frees_room(queue, n, false);
	PG_RETURN_BOOL(n > 0);
}

/* ack_batch(queue_name, msg_ids bigint[], read_cts integer[], result jsonb default null) -> setof bigint */
QUEUE_EXT_ENTRY(queue_ext_ack_batch)
{
	QueueEntry *queue = queue_lookup_arg(fcinfo, 0, NEED_CONSUME);
	Datum		values[4];
	bool		nulls[4] = {false, false, false, PG_ARGISNULL(3)};
	uint64		acked;

	receipts_args(fcinfo, 1, 2);
	srf_begin(fcinfo);
	values[0] = PG_GETARG_DATUM(1);
	values[1] = PG_GETARG_DATUM(2);
	values[2] = TimestampTzGetDatum(GetCurrentTimestamp());
	values[3] = PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3);

	spi_connect_or_error();
	acked = ack_returning_ids(fcinfo, queue, queue->options.keep_history ? QP_ACK_MANY_ARCHIVE : QP_ACK_MANY,
							  values, nulls);
	breaker_record(queue, (int64) acked, 0);
	SPI_finish();
	ack_frees_room(queue, acked, false);
	return (Datum) 0;
}
