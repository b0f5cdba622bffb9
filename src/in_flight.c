/*
 * in_flight.c
 *	  A queue's cap on messages in flight (max_in_flight, BullMQ's
 *	  concurrency): leased to a consumer and not yet acked, nacked or lapsed.
 *
 * Counting and leasing must not interleave between readers, or two of them
 * could each see room for the same last slot. So a read of a capped queue
 * takes the queue's in-flight lock before it counts, and keeps it until its
 * transaction ends when it leased something (its leases become visible to
 * the next reader's count only when it commits). A read that leased nothing
 * lets the lock go at once, so a read_with_poll does not hold it while it
 * sleeps. Reads of a capped queue take turns through commit; queues without
 * a cap never take the lock.
 *
 * The count needs a snapshot taken after the lock: under REPEATABLE READ or
 * SERIALIZABLE a reader's snapshot predates other readers' commits, so reads
 * of a capped queue are refused there.
 */
#include "queue_ext.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/lmgr.h"

/* Not pgmq's advisory keys (field4 1 and 2): a class of its own. */
#define IN_FLIGHT_LOCK_CLASS 0x5158

static void
in_flight_locktag(QueueEntry *queue, LOCKTAG *tag)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, queue->queue_relid, 0, IN_FLIGHT_LOCK_CLASS);
}

/*
 * How many of limit messages a read may lease: what the cap leaves. Takes
 * the queue's in-flight lock; in_flight_done() decides whether to keep it.
 * SPI must be connected.
 */
int64
in_flight_allowance(QueueEntry *queue, int64 limit)
{
	LOCKTAG		tag;
	Datum		values[2];
	bool		isnull;
	int64		in_flight;

	if (queue->options.max_in_flight <= 0)
		return limit;
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("queue \"%s\" caps messages in flight: read it in a READ COMMITTED transaction",
						queue->names.name),
				 errdetail("Under %s the read could not see other readers' committed leases.",
						   IsolationIsSerializable() ? "SERIALIZABLE" : "REPEATABLE READ")));

	in_flight_locktag(queue, &tag);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);

	values[0] = TimestampTzGetDatum(GetCurrentTimestamp());
	values[1] = Int64GetDatum(queue->options.max_in_flight);
	queue_execute(queue, QP_IN_FLIGHT, values, NULL, NULL);
	in_flight = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	return Max(0, Min(limit, queue->options.max_in_flight - in_flight));
}

/* After the read: a read that leased nothing lets the lock go (leases keep it to commit). */
void
in_flight_done(QueueEntry *queue, uint64 delivered)
{
	LOCKTAG		tag;

	if (queue->options.max_in_flight <= 0 || delivered > 0)
		return;
	in_flight_locktag(queue, &tag);
	(void) LockRelease(&tag, ExclusiveLock, false);
}
