/*
 * read.c
 *	  Taking messages: pgmq.read, read_with_poll, pop and set_vt.
 *
 * A read leases messages: it picks the oldest visible ones (vt <= now) in
 * msg_id order with FOR UPDATE SKIP LOCKED, so concurrent readers skip each
 * other's rows instead of blocking, and moves their vt to now + vt seconds.
 * While that vt holds no other reader is handed the message; when it lapses
 * the message is visible again and the next read increments read_ct.
 *
 * read_with_poll repeats the read until it returns something or the poll time
 * runs out. Between attempts it sleeps at most poll_interval_ms, and when
 * queue_ext is preloaded a send to the queue that commits wakes it at once
 * (wakeup.c). The grouped reads (group_read.c) lease through the same
 * receiver and poll with the same loop.
 *
 * Job options (options.c) shape a read: a paused queue returns nothing, and
 * an open circuit breaker (breaker.c) nothing or one trial message; a
 * NULL vt takes the queue's default_vt; and a message found visible again
 * after its last allowed delivery (its worker never acked it) is not
 * delivered but dead-lettered, in the same statement's transaction. The rows
 * the read's UPDATE returns pass through a receiver that holds those back,
 * so a read of a queue without limits costs one check per row.
 */
#include "queue_ext.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/wait_event.h"

/* The longest one _with_poll call waits (an hour). */
#define MAX_POLL_SECONDS 3600

/* NULL or '{}' means no filter, as in pgmq; anything else filters by containment. */
static Jsonb *
conditional_arg(FunctionCallInfo fcinfo, int argno)
{
	Jsonb	   *cond;

	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return NULL;
	cond = PG_GETARG_JSONB_P(argno);
	if (JB_ROOT_IS_OBJECT(cond) && JB_ROOT_COUNT(cond) == 0)
		return NULL;
	return cond;
}

/*
 * Passes leased rows on to the result, except those past their last allowed
 * delivery, whose ids it collects for dead-lettering.
 */
typedef struct LeaseReceiver
{
	DestReceiver pub;
	DestReceiver *result;
	QueueEntry *queue;
	MemoryContext ids_context;
	Datum	   *dead_ids;
	int			ndead;
	int			dead_capacity;
	uint64		delivered;
} LeaseReceiver;

/* Columns of pgmq.message_record, as the read's RETURNING lists them. */
#define MR_MSG_ID	1
#define MR_READ_CT	2
#define MR_ENQUEUED_AT	3
#define MR_LAST_READ_AT	4
#define MR_HEADERS	7

static bool
past_last_delivery(QueueEntry *queue, int32 read_ct, Datum headers, bool headers_null)
{
	int32		max_attempts = message_max_attempts(&queue->options,
													headers_null ? NULL : DatumGetJsonbP(headers));

	return max_attempts != 0 && read_ct > max_attempts;
}

static bool
lease_receive(TupleTableSlot *slot, DestReceiver *self)
{
	LeaseReceiver *r = (LeaseReceiver *) self;
	bool		isnull;
	bool		headers_null;
	int32		read_ct = DatumGetInt32(slot_getattr(slot, MR_READ_CT, &isnull));
	Datum		headers = slot_getattr(slot, MR_HEADERS, &headers_null);

	if (past_last_delivery(r->queue, read_ct, headers, headers_null))
	{
		if (r->ndead == r->dead_capacity)
		{
			r->dead_capacity = Max(16, r->dead_capacity * 2);
			r->dead_ids = r->dead_ids == NULL
				? MemoryContextAlloc(r->ids_context, sizeof(Datum) * r->dead_capacity)
				: repalloc(r->dead_ids, sizeof(Datum) * r->dead_capacity);
		}
		r->dead_ids[r->ndead++] = slot_getattr(slot, MR_MSG_ID, &isnull);
		return true;
	}
	r->delivered++;
	r->queue->last_leased_msg_id = DatumGetInt64(slot_getattr(slot, MR_MSG_ID, &isnull));
	/* This read set last_read_at: for a first delivery, the time from enqueue. */
	if (read_ct == 1)
		count_latency(r->queue, LATENCY_FIRST_READ,
					  DatumGetTimestampTz(slot_getattr(slot, MR_ENQUEUED_AT, &isnull)),
					  DatumGetTimestampTz(slot_getattr(slot, MR_LAST_READ_AT, &isnull)));
	return r->result->receiveSlot(slot, r->result);
}

static void
lease_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	LeaseReceiver *r = (LeaseReceiver *) self;

	r->result->rStartup(r->result, operation, typeinfo);
}

static void
lease_shutdown(DestReceiver *self)
{
	LeaseReceiver *r = (LeaseReceiver *) self;

	r->result->rShutdown(r->result);
}

static void
lease_destroy(DestReceiver *self)
{
	LeaseReceiver *r = (LeaseReceiver *) self;

	r->result->rDestroy(r->result);
}

/*
 * Runs a statement that leases messages and returns them as message_records
 * (a read's UPDATE ... RETURNING); SPI must be connected. Rows past their last
 * allowed delivery are dead-lettered instead of delivered. Returns the number
 * of messages delivered; *dead counts those dead-lettered.
 */
uint64
lease_statement(FunctionCallInfo fcinfo, QueueEntry *queue, QueuePlanKind kind,
				const Datum *values, const bool *nulls, int *dead)
{
	LeaseReceiver receiver = {
		.pub = {
			.receiveSlot = lease_receive,
			.rStartup = lease_startup,
			.rShutdown = lease_shutdown,
			.rDestroy = lease_destroy,
			/* Not DestNone: SPI reports a SELECT into DestNone as a utility statement. */
			.mydest = DestTuplestore,
		},
		.result = srf_receiver(fcinfo),
		.queue = queue,
		.ids_context = CurrentMemoryContext,
	};

	queue_execute_to(queue, kind, values, nulls, &receiver.pub);
	receiver.pub.rDestroy(&receiver.pub);
	if (receiver.ndead > 0)
		dead_letter_messages(queue,
							 PointerGetDatum(construct_array(receiver.dead_ids, receiver.ndead,
															 INT8OID, sizeof(int64),
															 FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)),
							 1, "lease_expired");
	*dead = receiver.ndead;
	return receiver.delivered;
}

/* A bigint[] of n ids. */
Datum
id_array(const int64 *ids, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		elems[i] = Int64GetDatum(ids[i]);
	return PointerGetDatum(construct_array(elems, n, INT8OID, sizeof(int64),
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * Leases messages this transaction has locked (grouped and priority reads
 * pick and lock them first) for vt_seconds from now, returning them in the
 * order ids lists them; as lease_statement otherwise. One message, the
 * common case, takes a statement without the ordering join.
 */
uint64
lease_locked(FunctionCallInfo fcinfo, QueueEntry *queue, const int64 *ids, int n,
			 TimestampTz now, int32 vt_seconds, int *dead)
{
	Datum		values[3];

	*dead = 0;
	if (n == 0)
		return 0;
	values[0] = id_array(ids, n);
	values[1] = TimestampTzGetDatum(now);
	values[2] = TimestampTzGetDatum(now + (int64) vt_seconds * USECS_PER_SEC);
	return lease_statement(fcinfo, queue, n == 1 ? QP_LEASE_LOCKED_ONE : QP_LEASE_LOCKED,
						   values, NULL, dead);
}

/*
 * Runs a read statement until it has delivered limit messages or came across
 * no dead letters: dead letters took places in its LIMIT, so it reads again
 * for those places. Returns the number of messages delivered.
 */
static uint64
read_refilling(FunctionCallInfo fcinfo, QueueEntry *queue, int64 limit,
			   ReadStatement statement, void *arg)
{
	uint64		delivered = 0;
	int			dead;

	do
		delivered += statement(fcinfo, queue, limit - delivered, arg, &dead);
	while (dead > 0 && delivered < (uint64) limit);
	return delivered;
}

/* What a plain read asks for besides its limit. */
typedef struct PlainRead
{
	int32		vt_seconds;
	int64		limit;
	Jsonb	   *cond;
} PlainRead;

static uint64
plain_read_statement(FunctionCallInfo fcinfo, QueueEntry *queue, int64 limit, void *arg, int *dead)
{
	PlainRead  *read = arg;
	TimestampTz now;
	Datum		values[5];

	if (queue->options.priority_aging_us > 0)
		return priority_read(fcinfo, queue, limit, read->vt_seconds, read->cond, dead);
	now = GetCurrentTimestamp();
	values[0] = Int64GetDatum(limit);
	values[1] = TimestampTzGetDatum(now);
	values[2] = TimestampTzGetDatum(now + (int64) read->vt_seconds * USECS_PER_SEC);
	values[3] = Int64GetDatum(scan_hint_start(queue));
	values[4] = PointerGetDatum(read->cond);
	return lease_statement(fcinfo, queue, read->cond ? QP_READ_CONDITIONAL : QP_READ,
						   values, NULL, dead);
}

static uint64
plain_read(FunctionCallInfo fcinfo, QueueEntry *queue, void *arg)
{
	PlainRead  *read = arg;

	return read_allowed(fcinfo, queue, read->limit, read->vt_seconds, plain_read_statement, arg);
}

/*
 * One attempt of a read (plain or grouped), as the queue allows it: nothing
 * from a paused queue; what the circuit breaker lets through; no more than
 * the rate limits (ratelimit.c) and the in-flight cap (in_flight.c) leave.
 * A breaker trial that delivered nothing is given back, and so are rate
 * tokens the read did not use. SPI must be connected.
 */
uint64
read_allowed(FunctionCallInfo fcinfo, QueueEntry *queue, int64 limit, int32 vt_seconds,
			 ReadStatement statement, void *arg)
{
	bool		trial = false;
	uint64		delivered = 0;
	RateGrant	grant;

	if (queue->options.paused)
		return 0;
	limit = breaker_read_limit(queue, limit, vt_seconds, true, &trial);
	grant.nlimits = 0;
	if (limit > 0)
	{
		/* The cap first: tokens are taken only for what the read may lease. */
		limit = in_flight_allowance(queue, limit);
		if (limit > 0)
			limit = rate_limit_read(queue, limit, &grant);
		if (limit > 0)
			delivered = read_refilling(fcinfo, queue, limit, statement, arg);
		in_flight_done(queue, delivered);
	}
	rate_limit_read_done(&grant, (int64) delivered);
	count_messages(queue, COUNT_READ, (int64) delivered);
	if (trial && delivered == 0)
		breaker_trial_unused(queue);
	else if (trial)
		breaker_trial_message(queue, queue->last_leased_msg_id);
	return delivered;
}

/* vt, or the queue's default_vt when vt is NULL. */
int32
read_vt_arg(FunctionCallInfo fcinfo, int argno, QueueEntry *queue)
{
	if (PG_ARGISNULL(argno) && queue->options.has_default_vt)
		return queue->options.default_vt;
	return int32_arg_not_null(fcinfo, argno, "vt");
}

/*
 * The _with_poll loop: tries the read until it delivers something or
 * max_poll_seconds (argument max_poll_argno, poll_interval_ms the next one)
 * run out, sleeping at most poll_interval_ms between attempts: until a send
 * to the queue commits when preloaded (wakeup.c), on the latch otherwise.
 */
void
read_polling(FunctionCallInfo fcinfo, const char *name, int max_poll_argno,
			 ReadAttempt attempt, void *arg)
{
	int32		max_poll_seconds = int32_arg_not_null(fcinfo, max_poll_argno, "max_poll_seconds");
	int32		poll_interval_ms = int32_arg_not_null(fcinfo, max_poll_argno + 1, "poll_interval_ms");
	TimestampTz stop_at;

	/* pgmq takes any number here; a negative or an hours-long wait is a mistake. */
	if (max_poll_seconds < 0 || max_poll_seconds > MAX_POLL_SECONDS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_poll_seconds must be from 0 to %d, got %d", MAX_POLL_SECONDS, max_poll_seconds),
				 errhint("To wait longer, call it again in a loop.")));
	if (poll_interval_ms < 0 || poll_interval_ms > MAX_POLL_SECONDS * 1000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("poll_interval_ms must be from 0 to %d, got %d", MAX_POLL_SECONDS * 1000, poll_interval_ms)));
	stop_at = timestamp_after_seconds(max_poll_seconds);
	/* pgmq sleeps 0 ms for an interval of 0; 1 ms keeps that from spinning. */
	poll_interval_ms = Max(poll_interval_ms, 1);

	srf_begin(fcinfo);
	spi_connect_or_error();
	for (;;)
	{
		QueueEntry *queue;
		long		remaining_ms;
		bool		woken_by_sends;
		uint64		commits = 0;

		if (GetCurrentTimestamp() >= stop_at)
			break;
		/* Again each time: a resume (or other change) made while polling applies. */
		queue = queue_lookup(name, NEED_CONSUME);
		/* Before the attempt: a send committed during it ends the sleep at once (wakeup.c). */
		woken_by_sends = wakeup_prepare(queue, &commits);
		if (attempt(fcinfo, queue, arg) > 0)
			break;

		remaining_ms = (long) ((stop_at - GetCurrentTimestamp()) / 1000);
		if (remaining_ms <= 0)
			break;
		if (woken_by_sends)
			wakeup_sleep(queue, commits, Min(remaining_ms, (long) poll_interval_ms));
		else
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 Min(remaining_ms, (long) poll_interval_ms),
							 PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
		CHECK_FOR_INTERRUPTS();
	}
	SPI_finish();
}


/* read(queue_name, vt, qty, conditional default '{}') */
QUEUE_EXT_ENTRY(queue_ext_read)
{
	QueueEntry *queue = queue_lookup_arg(fcinfo, 0, NEED_CONSUME);
	PlainRead	read = {
		.vt_seconds = read_vt_arg(fcinfo, 1, queue),
		.limit = read_limit_arg(fcinfo, 2),
		.cond = conditional_arg(fcinfo, 3),
	};

	srf_begin(fcinfo);
	spi_connect_or_error();
	plain_read(fcinfo, queue, &read);
	SPI_finish();
	return (Datum) 0;
}

/* read_with_poll(queue_name, vt, qty, max_poll_seconds, poll_interval_ms, conditional) */
QUEUE_EXT_ENTRY(queue_ext_read_with_poll)
{
	char	   *name = queue_name_arg(fcinfo, 0);
	QueueEntry *queue = queue_lookup(name, NEED_CONSUME);
	PlainRead	read = {
		.vt_seconds = read_vt_arg(fcinfo, 1, queue),
		.limit = read_limit_arg(fcinfo, 2),
		.cond = conditional_arg(fcinfo, 5),
	};

	read_polling(fcinfo, name, 3, plain_read, &read);
	return (Datum) 0;
}

/* pop(queue_name, qty default 1): read and delete in one step, read_ct untouched. */
QUEUE_EXT_ENTRY(queue_ext_pop)
{
	QueueEntry *queue = queue_lookup_arg(fcinfo, 0, NEED_CONSUME);
	/* pgmq_public.pop(queue_name) has no qty: one message, as pgmq's default. */
	int64		limit = PG_NARGS() > 1 ? read_limit_arg(fcinfo, 1) : 1;
	Datum		values[3];
	bool		trial;
	RateGrant	grant;
	int64		popped;

	values[1] = TimestampTzGetDatum(GetCurrentTimestamp());

	srf_begin(fcinfo);
	spi_connect_or_error();
	/* A pop of a paused queue, or of one whose breaker is not closed, takes nothing. */
	limit = queue->options.paused ? 0 : breaker_read_limit(queue, limit, 0, false, &trial);
	/* A pop is a read for rate limits; what it takes is not in flight. */
	grant.nlimits = 0;
	if (limit > 0)
		limit = rate_limit_read(queue, limit, &grant);
	if (limit > 0)
	{
		values[0] = Int64GetDatum(limit);
		if (queue->options.priority_aging_us > 0)
			priority_pop(fcinfo, queue, limit);
		else
		{
			values[2] = Int64GetDatum(scan_hint_start(queue));
			queue_execute(queue, QP_POP, values, NULL, fcinfo);
		}
	}
	SPI_finish();
	popped = tuplestore_tuple_count(((ReturnSetInfo *) fcinfo->resultinfo)->setResult);
	rate_limit_read_done(&grant, popped);
	/* A pop reads and deletes. */
	count_messages(queue, COUNT_READ, popped);
	count_messages(queue, COUNT_ACKED, popped);
	return (Datum) 0;
}

/* ---- set_vt ---- */

static Datum
set_vt(FunctionCallInfo fcinfo, QueuePlanKind kind, Datum ids, bool ids_null,
	   TimestampTz vt)
{
	QueueEntry *queue = queue_lookup_arg(fcinfo, 0, NEED_CONSUME);
	Datum		values[2];

	srf_begin(fcinfo);
	if (ids_null)
		return (Datum) 0;		/* no such message: no rows, as in pgmq */

	values[0] = TimestampTzGetDatum(vt);
	values[1] = ids;
	spi_connect_or_error();
	queue_execute(queue, kind, values, NULL, fcinfo);
	SPI_finish();
	return (Datum) 0;
}


/* set_vt(queue_name, msg_id bigint, vt integer) */
QUEUE_EXT_ENTRY(queue_ext_set_vt_seconds)
{
	TimestampTz vt = timestamp_after_seconds(int32_arg_not_null(fcinfo, 2, "vt"));

	return set_vt(fcinfo, QP_SET_VT_ONE, PG_GETARG_DATUM(1), PG_ARGISNULL(1), vt);
}

/* set_vt(queue_name, msg_id bigint, vt timestamptz) */
QUEUE_EXT_ENTRY(queue_ext_set_vt_at)
{
	return set_vt(fcinfo, QP_SET_VT_ONE, PG_GETARG_DATUM(1), PG_ARGISNULL(1),
				  timestamptz_arg_not_null(fcinfo, 2, "vt"));
}

/* set_vt(queue_name, msg_ids bigint[], vt integer) */
QUEUE_EXT_ENTRY(queue_ext_set_vt_many_seconds)
{
	TimestampTz vt = timestamp_after_seconds(int32_arg_not_null(fcinfo, 2, "vt"));

	return set_vt(fcinfo, QP_SET_VT_MANY, PG_GETARG_DATUM(1), PG_ARGISNULL(1), vt);
}

/* set_vt(queue_name, msg_ids bigint[], vt timestamptz) */
QUEUE_EXT_ENTRY(queue_ext_set_vt_many_at)
{
	return set_vt(fcinfo, QP_SET_VT_MANY, PG_GETARG_DATUM(1), PG_ARGISNULL(1),
				  timestamptz_arg_not_null(fcinfo, 2, "vt"));
}

/*
 * set_vt(queue_name, msg_id text, vt text): untyped driver parameters
 * (pgmq-js's setVt). "{1,2}" is an array of ids, anything else one id; an
 * integer vt is seconds from now, anything else a timestamp.
 */
QUEUE_EXT_ENTRY(queue_ext_set_vt_untyped)
{
	char	   *ids;
	TimestampTz vt;
	bool		many;
	Datum		id_datum;

	reject_null_arg(fcinfo, 2, "vt");
	vt = seconds_or_timestamp_from_text(text_to_cstring(PG_GETARG_TEXT_PP(2)));

	if (PG_ARGISNULL(1))
		return set_vt(fcinfo, QP_SET_VT_ONE, (Datum) 0, true, vt);

	ids = text_to_cstring(PG_GETARG_TEXT_PP(1));
	many = ids[strspn(ids, " \t\r\n")] == '{';
	id_datum = value_from_text(ids, many ? INT8ARRAYOID : INT8OID);
	return set_vt(fcinfo, many ? QP_SET_VT_MANY : QP_SET_VT_ONE, id_datum, false, vt);
}
