/*
 * nack.c
 *	  Retrying messages: pgmq.nack and nack_batch.
 *
 * nack takes the same receipt as ack (the read_ct a read returned). While the
 * receipt is current it records the failure in the message's headers
 * (x-queue-ext-nacked marks the delivery as nacked, which voids the receipt;
 * x-queue-ext-errors keeps the last errors with their attempt and time) and
 * makes the message visible again after the retry delay: base * 2^(attempt-1),
 * capped, jittered (options.c). When that was the last attempt allowed, the
 * message becomes a dead letter instead (dead_letter.c), in the same
 * transaction. A stale receipt returns false and changes nothing.
 *
 * The common nack is one statement: when the queue's own policy applies (the
 * message carries no overrides) and attempts remain, the delay is computed
 * here and the statement checks the receipt and the absence of overrides
 * itself. Anything else (overrides, the last attempt, a stale receipt) locks
 * the delivery, reads its headers and decides.
 */
#include "queue_ext.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"

static TimestampTz
retry_at(TimestampTz now, const RetryPolicy *policy, int32 attempt)
{
	return now + (int64) (retry_delay_seconds(policy, attempt) * USECS_PER_SEC);
}

/* Nacks one delivery; SPI must be connected. False when the receipt is stale. */
static bool
nack_delivery(QueueEntry *queue, int64 msg_id, int32 read_ct, Datum error, bool error_null)
{
	const RetryPolicy *queue_policy = &queue->options.retry;
	TimestampTz now = GetCurrentTimestamp();
	Datum		values[5];
	bool		nulls[5] = {false, false, false, error_null, false};
	RetryPolicy policy;
	Datum		headers;
	bool		headers_null;
	bool		exhausted;

	values[0] = Int64GetDatum(msg_id);
	values[1] = Int32GetDatum(read_ct);
	values[3] = error;
	values[4] = TimestampTzGetDatum(now);

	if (queue_policy->max_attempts == 0 || read_ct < queue_policy->max_attempts)
	{
		values[2] = TimestampTzGetDatum(retry_at(now, queue_policy, read_ct));
		if (queue_execute(queue, QP_NACK, values, nulls, NULL) > 0)
			return true;
	}

	if (queue_execute(queue, QP_NACK_LOCK, values, nulls, NULL) == 0)
		return false;
	headers = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &headers_null);
	message_retry_policy(&queue->options, headers_null ? NULL : DatumGetJsonbP(headers), &policy);
	exhausted = policy.max_attempts != 0 && read_ct >= policy.max_attempts;

	values[2] = TimestampTzGetDatum(exhausted ? now : retry_at(now, &policy, read_ct));
	queue_execute(queue, QP_NACK_RECORD, values, nulls, NULL);
	if (exhausted)
	{
		Datum		id = Int64GetDatum(msg_id);

		dead_letter_messages(queue,
							 PointerGetDatum(construct_array(&id, 1, INT8OID, sizeof(int64),
															 FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)),
							 0, "nacked");
	}
	return true;
}


/* nack(queue_name, msg_id, read_ct, error text default null) -> boolean */
QUEUE_EXT_ENTRY(queue_ext_nack)
{
	QueueEntry *queue = queue_lookup_arg(fcinfo, 0, NEED_CONSUME);
	int32		read_ct = receipt_arg(fcinfo, 2);
	bool		nacked;

	if (PG_ARGISNULL(1))
		PG_RETURN_BOOL(false);
	spi_connect_or_error();
	nacked = nack_delivery(queue, PG_GETARG_INT64(1), read_ct,
						   PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3), PG_ARGISNULL(3));
	breaker_record(queue, 0, nacked ? 1 : 0);
	count_messages(queue, COUNT_NACKED, nacked ? 1 : 0);
	SPI_finish();
	PG_RETURN_BOOL(nacked);
}

/* nack_batch(queue_name, msg_ids bigint[], read_cts integer[], error text default null) -> setof bigint */
QUEUE_EXT_ENTRY(queue_ext_nack_batch)
{
	QueueEntry *queue = queue_lookup_arg(fcinfo, 0, NEED_CONSUME);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum	   *ids;
	bool	   *id_nulls;
	Datum	   *read_cts;
	int			n;
	int64		nacked = 0;

	receipts_args(fcinfo, 1, 2);
	srf_begin(fcinfo);
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(1), INT8OID, sizeof(int64), FLOAT8PASSBYVAL,
					  TYPALIGN_DOUBLE, &ids, &id_nulls, &n);
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(2), INT4OID, sizeof(int32), true,
					  TYPALIGN_INT, &read_cts, NULL, &n);

	spi_connect_or_error();
	for (int i = 0; i < n; i++)
	{
		bool		isnull = false;

		if (id_nulls[i])
			continue;
		if (nack_delivery(queue, DatumGetInt64(ids[i]), DatumGetInt32(read_cts[i]),
						  PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3), PG_ARGISNULL(3)))
		{
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &ids[i], &isnull);
			nacked++;
		}
	}
	breaker_record(queue, 0, nacked);
	count_messages(queue, COUNT_NACKED, nacked);
	SPI_finish();
	return (Datum) 0;
}
