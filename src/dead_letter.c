/*
 * dead_letter.c
 *	  Dead letters: moving exhausted messages out of their queue, and
 *	  pgmq.redrive, which moves them back.
 *
 * A message is dead when a nack finds its attempts used up, or when a read
 * finds it visible again after its last allowed delivery (its worker never
 * acked: SQS's redrive policy). It leaves its queue in the same transaction,
 * for the queue's dead-letter queue when it has one, as a new message whose
 * x-queue-ext-dead-letter header says where it came from (queue, msg_id,
 * attempts, first enqueue time, when and why it died); otherwise for the
 * queue's own archive, with an x-queue-ext-outcome of state "dead". Its
 * errors (x-queue-ext-errors) go with it. enqueued_at keeps the first enqueue
 * time throughout.
 *
 * The move into another queue is two plans: the source queue's DELETE ...
 * RETURNING, then the dead-letter queue's own INSERT. Neither plan depends on
 * which queue is the dead-letter queue, so changing that option never has to
 * free a plan that may be running.
 */
#include "queue_ext.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

/* Rows of SPI_tuptable, one column of them, as an array of the column's type. */
static Datum
column_as_array(int column, Oid element_type)
{
	uint64		n = SPI_processed;
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(n, 1));
	int			dims[1] = {(int) n};
	int			lbs[1] = {1};
	int16		typlen;
	bool		typbyval;
	char		typalign;

	for (uint64 i = 0; i < n; i++)
		elems[i] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, column, &nulls[i]);
	get_typlenbyvalalign(element_type, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, element_type,
											  typlen, typbyval, typalign));
}

/*
 * Moves the messages with these ids (locked by the caller's statement) out of
 * queue. attempts_adjust is subtracted from read_ct to give the attempts they
 * had (1 when the read that found them counted one more). SPI must be
 * connected. Returns how many moved.
 */
uint64
dead_letter_messages(QueueEntry *queue, Datum ids, int32 attempts_adjust, const char *reason)
{
	Datum		values[5];
	QueueEntry *dead_letter_queue;
	Datum		receive[4];
	uint64		moved;

	values[0] = ids;
	values[1] = CStringGetTextDatum(queue->registered_name);
	values[2] = Int32GetDatum(attempts_adjust);
	values[3] = TimestampTzGetDatum(GetCurrentTimestamp());
	values[4] = CStringGetTextDatum(reason);

	if (!queue->options.has_dead_letter_queue)
	{
		uint64		archived = queue_execute(queue, QP_DEAD_TO_ARCHIVE, values, NULL, NULL);

		count_messages(queue, COUNT_DEAD_LETTERED, (int64) archived);
		return archived;
	}

	/* Look it up first: a missing dead-letter queue must fail before anything moves. */
	dead_letter_queue = queue_lookup(queue->options.dead_letter.name, NEED_NOTHING);
	/* A dead-letter queue dropped and made again by another tenant must not receive these. */
	if (dead_letter_queue->tenant_id != queue->tenant_id)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("dead-letter queue \"%s\" of queue \"%s\" belongs to another tenant",
						dead_letter_queue->names.name, queue->names.name),
				 errhint("Give the queue a dead-letter queue of its own tenant with pgmq.set_queue_options().")));
	if (queue_execute(queue, QP_DEAD_LETTER_TAKE, values, NULL, NULL) == 0)
		return 0;
	receive[0] = values[3];
	receive[1] = column_as_array(1, TIMESTAMPTZOID);
	receive[2] = column_as_array(2, JSONBOID);
	receive[3] = column_as_array(3, JSONBOID);
	wake_readers_at_commit(dead_letter_queue);
	moved = queue_execute(dead_letter_queue, QP_DEAD_LETTER_RECEIVE, receive, NULL, NULL);
	count_messages(queue, COUNT_DEAD_LETTERED, (int64) moved);
	return moved;
}

/* ---- redrive ---- */

/* One dead letter taken for redrive. */
typedef struct DeadLetter
{
	int64		dead_msg_id;
	char	   *origin;			/* the queue it goes back to */
	Datum		message;
	bool		message_null;
	Datum		headers;
	bool		headers_null;
} DeadLetter;

/*
 * Takes dead letters out of one of queue's tables (kinds: the list of all
 * their ids, and the take). origin is NULL where the take returns none.
 */
static DeadLetter *
take_dead_letters(QueueEntry *queue, QueuePlanKind list_kind, QueuePlanKind take_kind,
				  Datum ids, bool all, int *count)
{
	Datum		values[2];
	DeadLetter *letters;
	bool		isnull;

	if (all)
	{
		queue_execute(queue, list_kind, NULL, NULL, NULL);
		ids = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (isnull)
		{
			*count = 0;
			return NULL;
		}
	}
	values[0] = ids;
	values[1] = TimestampTzGetDatum(GetCurrentTimestamp());
	*count = (int) queue_execute(queue, take_kind, values, NULL, NULL);
	letters = palloc0(sizeof(DeadLetter) * Max(*count, 1));
	for (int i = 0; i < *count; i++)
	{
		HeapTuple	row = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *origin = SPI_getvalue(row, desc, 2);

		letters[i].dead_msg_id = DatumGetInt64(SPI_getbinval(row, desc, 1, &isnull));
		letters[i].origin = origin;
		letters[i].message = SPI_getbinval(row, desc, 3, &letters[i].message_null);
		letters[i].headers = SPI_getbinval(row, desc, 4, &letters[i].headers_null);
	}
	return letters;
}

/* Sends letters[from..to) back to one queue; adds (dead id, queue, new id) rows to the result. */
static void
send_back(FunctionCallInfo fcinfo, const char *target_name, DeadLetter *letters, int from, int to)
{
	QueueEntry *target = queue_find(target_name);
	int			n = to - from;
	Datum	   *msgs = palloc(sizeof(Datum) * n);
	bool	   *msg_nulls = palloc(sizeof(bool) * n);
	Datum	   *headers = palloc(sizeof(Datum) * n);
	bool	   *header_nulls = palloc(sizeof(bool) * n);
	int			dims[1] = {n};
	int			lbs[1] = {1};
	Datum		values[3];
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	if (target == NULL || queue_hidden_from_caller(target))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("queue \"%s\" does not exist", target_name),
				 errdetail("Dead letter %lld came from it.", (long long) letters[from].dead_msg_id),
				 errhint("Send dead letters to another queue with to_queue.")));
	queue_check_access(target, NEED_PUBLISH);
	for (int i = 0; i < n; i++)
	{
		msgs[i] = letters[from + i].message;
		msg_nulls[i] = letters[from + i].message_null;
		headers[i] = letters[from + i].headers;
		header_nulls[i] = letters[from + i].headers_null;
	}
	values[0] = TimestampTzGetDatum(GetCurrentTimestamp());
	values[1] = PointerGetDatum(construct_md_array(msgs, msg_nulls, 1, dims, lbs, JSONBOID, -1, false, TYPALIGN_INT));
	values[2] = PointerGetDatum(construct_md_array(headers, header_nulls, 1, dims, lbs, JSONBOID, -1, false, TYPALIGN_INT));
	if ((int) queue_execute(target, QP_SEND_BATCH, values, NULL, NULL) != n)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("redrive into queue \"%s\" sent fewer messages than it took", target_name)));
	wake_readers_at_commit(target);

	for (int i = 0; i < n; i++)
	{
		bool		isnull;
		Datum		row[3];
		bool		row_nulls[3] = {false, false, false};

		row[0] = Int64GetDatum(letters[from + i].dead_msg_id);
		row[1] = CStringGetTextDatum(target->names.name);
		row[2] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, row, row_nulls);
	}
}

/* Sends every letter back to its origin (or to to_queue), one batch per run of one origin. */
static void
send_back_all(FunctionCallInfo fcinfo, DeadLetter *letters, int count, const char *to_queue)
{
	int			from = 0;

	for (int i = 0; i < count && to_queue == NULL; i++)
	{
		if (letters[i].origin == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("dead letter %lld does not say which queue it came from",
							(long long) letters[i].dead_msg_id),
					 errdetail("Its \"%s\" header has no \"queue\".", HEADER_DEAD_LETTER),
					 errhint("Name the queue to send it to with to_queue.")));
	}

	while (from < count)
	{
		const char *target = to_queue ? to_queue : letters[from].origin;
		int			to = from + 1;

		while (to < count && (to_queue || strcmp(letters[to].origin, target) == 0))
			to++;
		send_back(fcinfo, target, letters, from, to);
		from = to;
	}
}


/*
 * redrive(queue_name, msg_ids bigint[] default null, to_queue text default null)
 *	 -> table(dead_msg_id bigint, queue_name text, msg_id bigint)
 *
 * Sends the dead letters queue_name holds back as new messages: those it
 * holds as a dead-letter queue go back to the queue each came from (or to
 * to_queue), those in its own archive go back into queue_name. msg_ids picks
 * some (ids in queue_name's tables); NULL takes all. Dead letters a worker
 * holds leased in the dead-letter queue stay. Attempts start again; the
 * errors recorded so far stay in the headers.
 */
QUEUE_EXT_ENTRY(queue_ext_redrive)
{
	QueueEntry *queue = queue_lookup_arg(fcinfo, 0, NEED_CONSUME);
	bool		all = PG_ARGISNULL(1);
	Datum		ids = all ? (Datum) 0 : PG_GETARG_DATUM(1);
	char	   *to_queue = PG_ARGISNULL(2) ? NULL : queue_name_arg(fcinfo, 2);
	DeadLetter *letters;
	int			count;

	if (!all)
		reject_multidimensional(PG_GETARG_ARRAYTYPE_P(1), "msg_ids");
	srf_begin(fcinfo);
	spi_connect_or_error();
	if (to_queue != NULL)
		(void) queue_lookup(to_queue, NEED_PUBLISH);	/* fail before anything moves */

	letters = take_dead_letters(queue, QP_DEAD_LETTER_IDS, QP_REDRIVE_TAKE, ids, all, &count);
	send_back_all(fcinfo, letters, count, to_queue);
	/* Dead letters kept in the queue's own archive go back into the queue. */
	letters = take_dead_letters(queue, QP_ARCHIVED_DEAD_IDS, QP_REDRIVE_TAKE_ARCHIVED, ids, all, &count);
	send_back_all(fcinfo, letters, count, to_queue ? to_queue : queue->names.name);
	SPI_finish();
	return (Datum) 0;
}
