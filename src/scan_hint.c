/*
 * scan_hint.c
 *	  Where reads start: a per-queue low-water mark below which no message can
 *	  ever be read again.
 *
 * Why. Reads take the oldest visible messages, walking the primary key from
 * its start. Every delete (and archive, and pop) leaves a dead index entry at
 * the head of that walk, and until vacuum removes them each read steps over
 * all of them again: read + delete throughput falls to a third within a
 * minute. Starting the walk at a msg_id below which nothing is alive skips
 * the dead region, so the cost of a read stays flat between vacuums.
 *
 * The mark is only useful if it is never too high: a message below it would
 * never be read again. Deletes are not the danger (a deleted row stays
 * deleted); late commits are. msg_ids come from the queue's sequence when a
 * row is inserted, but a transaction may hold id 100 uncommitted while ids
 * 101..5000 are committed, read and deleted; applications enqueue inside their
 * own, sometimes long, transactions. So a round of advancing the mark goes:
 *
 *	1. Read the sequence position L, then list the transactions running in
 *	   this database (their virtual transaction ids). Any transaction that
 *	   holds an id <= L took it before L was read, so it is on the list.
 *	2. Wait, without blocking anybody, until every listed transaction has
 *	   ended: later calls ask the lock manager about each, without waiting
 *	   (a listed transaction that was prepared for two-phase commit meanwhile
 *	   counts as running until COMMIT or ROLLBACK PREPARED).
 *	3. Then every id <= L is settled: committed (and visible to a snapshot
 *	   taken now, so this step takes a new one) or gone for good. Ids handed
 *	   out later are > L. The new mark is min(first visible msg_id at or
 *	   above the old mark, L + 1).
 *
 * This is how CREATE INDEX CONCURRENTLY waits out older transactions, done
 * without waiting. Step 3 runs only in a READ COMMITTED transaction that has
 * not written yet (no transaction id): its statement snapshot is fresh, and
 * no delete of its own, which a rollback could undo, is hidden from it.
 *
 * The mark assumes ids are handed out one at a time in order: with a sequence
 * CACHE above 1 backends hold private ranges, so the mark is switched off.
 * A sequence moved backwards by ALTER SEQUENCE or TRUNCATE ... RESTART IDENTITY
 * invalidates the sequence's relcache entry and resets the mark; setval()
 * sends no invalidation, so moving a queue's sequence backwards with setval()
 * is not supported, and neither is inserting a message with an explicit
 * msg_id below the mark (INSERT ... OVERRIDING SYSTEM VALUE): reads in
 * backends whose mark has passed that id will not see it.
 *
 * The state is per backend (no shared memory needed): each backend advances
 * its own mark, at most every SCAN_HINT_STEP_MS.
 */
#include "queue_ext.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_sequence.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

/*
 * How often a backend takes a step of a round. A step costs a read of the
 * sequence and a list of the running transactions (the last step, a probe of
 * the index per mark). Between marks every read walks the entries of the
 * messages deleted since, which the heap cannot yet tell dead while their
 * asynchronous commits are unflushed; at 100 ms that walk made priority
 * reads, whose levels spread over the heap, visit hundreds of heap pages
 * each. 5 ms keeps it to a few milliseconds of deletes.
 */
#define SCAN_HINT_STEP_MS 5

/* True when the queue's sequence hands out ids one at a time (CACHE 1). */
bool
scan_hint_allowed(Oid sequence_relid)
{
	HeapTuple	tuple;
	bool		allowed;

	if (!OidIsValid(sequence_relid))
		return false;
	tuple = SearchSysCache1(SEQRELID, ObjectIdGetDatum(sequence_relid));
	if (!HeapTupleIsValid(tuple))
		return false;
	allowed = ((Form_pg_sequence) GETSTRUCT(tuple))->seqcache == 1;
	ReleaseSysCache(tuple);
	return allowed;
}

static void
scan_hint_close_round(ScanHint *hint)
{
	if (hint->round_vxids != NULL)
		pfree(hint->round_vxids);
	hint->round_vxids = NULL;
	hint->round_nvxids = 0;
	hint->round_open = false;
}

/* Back to the start of the queue: always safe. */
void
scan_hint_reset(ScanHint *hint, bool enabled)
{
	scan_hint_close_round(hint);
	hint->start = 0;
	for (int level = 0; level < PRIORITY_LEVELS; level++)
	{
		hint->level_start[level] = 0;
		hint->level_floor[level] = PG_INT64_MIN;
	}
	hint->enabled = enabled;
	hint->next_step_at = 0;
}

static void
scan_hint_open_round(QueueEntry *queue, ScanHint *hint)
{
	bool		isnull;
	int64		last_id;
	VirtualTransactionId *running;
	int			nrunning;

	/* The sequence position first, then the transactions: see step 1. */
	(void) queue_execute(queue, QP_SEQUENCE_POSITION, NULL, NULL, NULL);
	last_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	/* Vacuum never sends messages; CREATE INDEX CONCURRENTLY skips it too. */
	running = GetCurrentVirtualXIDs(InvalidTransactionId, false, false,
									PROC_IS_AUTOVACUUM | PROC_IN_VACUUM, &nrunning);

	hint->round_last_id = last_id;
	hint->round_opened_at = GetCurrentTimestamp();
	hint->round_vxids = MemoryContextAlloc(TopMemoryContext,
										   sizeof(VirtualTransactionId) * (nrunning + 1));
	memcpy(hint->round_vxids, running, sizeof(VirtualTransactionId) * nrunning);

	/*
	 * Our own transaction too: it has no xid yet, but it may already have
	 * drawn an id (a trigger that reads this queue while inserting into it),
	 * so the round finishes in a later transaction of ours.
	 */
	GET_VXID_FROM_PGPROC(hint->round_vxids[nrunning], *MyProc);
	hint->round_nvxids = nrunning + 1;
	hint->round_open = true;
	pfree(running);
}

/*
 * True once no transaction listed when the round opened is still running.
 * VirtualXactLock(vxid, false) is PostgreSQL's own answer to "has this
 * transaction ended", without waiting; it counts a transaction prepared for
 * two-phase commit as running until COMMIT or ROLLBACK PREPARED (its rows are
 * as uncommitted as a running transaction's). Ended transactions are dropped
 * from the list, so each is asked about only until it has ended.
 */
static bool
scan_hint_round_settled(ScanHint *hint)
{
	int			still_running = 0;

	for (int i = 0; i < hint->round_nvxids; i++)
	{
		if (!VirtualXactLock(hint->round_vxids[i], false))
			hint->round_vxids[still_running++] = hint->round_vxids[i];
	}
	hint->round_nvxids = still_running;
	return still_running == 0;
}

static void
scan_hint_finish_round(QueueEntry *queue, ScanHint *hint)
{
	Datum		from = Int64GetDatum(hint->start);
	bool		isnull;
	int64		first_live;
	int64		next_start = hint->round_last_id + 1;

	/* Plain reads of this queue go by priority level (priority.c); grouped reads by msg_id. */
	if (queue->options.priority_aging_us > 0)
		priority_settle_levels(queue, hint);
	/* A statement that is not read-only: SPI takes a fresh snapshot for it. */
	(void) queue_execute(queue, QP_FIRST_LIVE_ID, &from, NULL, NULL);
	first_live = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	if (!isnull)
		next_start = Min(next_start, first_live);
	hint->start = Max(hint->start, next_start);
	scan_hint_close_round(hint);
}

/*
 * Advances the queue's marks a step when one is due. SPI must be connected.
 */
void
scan_hint_advance(QueueEntry *queue)
{
	ScanHint   *hint = &queue->hint;
	TimestampTz now;

	/* Off, or dropped and made anew meanwhile (the next lookup resets the marks). */
	if (!hint->enabled || queue->sequence_changed)
		return;
	/* See the header: only fresh snapshots, only before this transaction writes. */
	if (IsolationUsesXactSnapshot() || TransactionIdIsValid(GetTopTransactionIdIfAny()))
		return;

	now = GetCurrentTimestamp();
	if (now < hint->next_step_at)
		return;
	hint->next_step_at = now + SCAN_HINT_STEP_MS * 1000;

	if (!hint->round_open)
		scan_hint_open_round(queue, hint);
	if (scan_hint_round_settled(hint))
		scan_hint_finish_round(queue, hint);
}

/* The msg_id a read or pop of this queue may start at, after a step when one is due. */
int64
scan_hint_start(QueueEntry *queue)
{
	if (!queue->hint.enabled || queue->sequence_changed)
		return 0;
	scan_hint_advance(queue);
	return queue->hint.start;
}
