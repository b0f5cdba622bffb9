/*
 * job.c
 *	  A job's life besides reading and finishing it: pgmq.cancel, and
 *	  pgmq.progress (progress and heartbeats from the worker holding it).
 *
 * cancel takes a message no worker holds: never delivered (waiting or
 * delayed), waiting for a retry, or whose lease lapsed. A message a worker
 * holds is not cancelled (false): that worker acks or nacks it. On a queue
 * that keeps history the cancelled message is archived with outcome
 * "cancelled"; otherwise it is deleted.
 *
 * progress is fenced like ack: only the worker holding the current delivery
 * (its read_ct receipt) can record progress (x-queue-ext-progress in the
 * headers, where the next worker finds it after a crash) or extend the lease.
 */
#include "queue_ext.h"

#include "utils/jsonb.h"


/* cancel(queue_name, msg_id) -> boolean */
QUEUE_EXT_ENTRY(queue_ext_cancel)
{
	QueueEntry *queue = queue_lookup_arg(fcinfo, 0, NEED_CONSUME);
	Datum		values[2];
	uint64		n;

	if (PG_ARGISNULL(1))
		PG_RETURN_BOOL(false);
	values[0] = PG_GETARG_DATUM(1);
	values[1] = TimestampTzGetDatum(GetCurrentTimestamp());
	spi_connect_or_error();
	n = queue_execute(queue, queue->options.keep_history ? QP_CANCEL_ARCHIVE : QP_CANCEL,
					  values, NULL, NULL);
	SPI_finish();
	PG_RETURN_BOOL(n > 0);
}

/*
 * progress(queue_name, msg_id, read_ct, progress jsonb default null,
 *			vt integer default null) -> boolean
 * A NULL progress keeps the last one; vt (seconds from now) extends the lease.
 */
QUEUE_EXT_ENTRY(queue_ext_progress)
{
	QueueEntry *queue = queue_lookup_arg(fcinfo, 0, NEED_CONSUME);
	int32		read_ct = receipt_arg(fcinfo, 2);
	Datum		values[4];
	bool		nulls[4] = {false, false, PG_ARGISNULL(3), PG_ARGISNULL(4)};
	uint64		n;

	if (!PG_ARGISNULL(4) && PG_GETARG_INT32(4) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("vt must not be negative"),
				 errdetail("vt was %d.", PG_GETARG_INT32(4)),
				 errhint("vt is how many seconds from now the lease runs; to give a message up, nack it.")));
	if (PG_ARGISNULL(1))
		PG_RETURN_BOOL(false);

	values[0] = PG_GETARG_DATUM(1);
	values[1] = Int32GetDatum(read_ct);
	values[2] = PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3);
	values[3] = PG_ARGISNULL(4) ? (Datum) 0
		: TimestampTzGetDatum(timestamp_after_seconds(PG_GETARG_INT32(4)));

	spi_connect_or_error();
	n = queue_execute(queue, QP_PROGRESS, values, nulls, NULL);
	SPI_finish();
	PG_RETURN_BOOL(n > 0);
}
