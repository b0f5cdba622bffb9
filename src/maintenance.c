/*
 * maintenance.c
 *	  The parts of pgmq.run_maintenance() written in C: dead-lettering the
 *	  messages whose last allowed delivery lapsed.
 *
 * A read dead-letters such a message when it comes across it; maintenance
 * does it, on queues that set max_attempts, for messages no read reaches (a
 * queue nobody reads, or one read with a filter), so they do not wait in the
 * queue, uncounted, for ever. The
 * rest of maintenance (retention, expiry, usage, registered steps) is SQL
 * in the extension script: deletes in batches need no C.
 */
#include "queue_ext.h"

#include "utils/array.h"

/* _dead_letter_exhausted(queue_name, batch_size) -> bigint: how many moved */
QUEUE_EXT_ENTRY(queue_ext_dead_letter_exhausted)
{
	QueueEntry *queue = queue_lookup_arg(fcinfo, 0, NEED_NOTHING);
	int32		batch_size = int32_arg_not_null(fcinfo, 1, "batch_size");
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	Datum		ids;
	bool		none;
	uint64		moved;

	if (batch_size < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size must be a positive number of messages, got %d", batch_size)));

	/*
	 * Only queues with max_attempts: on others the scan would filter every
	 * visible message for the few that carry their own override, which a
	 * read still catches when it meets them.
	 */
	if (queue->options.retry.max_attempts == 0)
		PG_RETURN_INT64(0);

	values[0] = TimestampTzGetDatum(GetCurrentTimestamp());
	values[1] = Int32GetDatum(queue->options.retry.max_attempts);
	values[2] = Int64GetDatum(batch_size);

	spi_connect_or_error();
	queue_execute(queue, QP_EXHAUSTED_IDS, values, nulls, NULL);
	ids = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &none);
	moved = none ? 0 : dead_letter_messages(queue, ids, 0, "lease_expired");
	SPI_finish();
	PG_RETURN_INT64((int64) moved);
}
