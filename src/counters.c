/*
 * counters.c
 *	  What a transaction did to queues, applied when it commits: throughput
 *	  counters (messages sent, read, acked, archived, nacked and
 *	  dead-lettered per queue, in shared memory), latencies (latency.c) and
 *	  the wake-ups of waiting readers (wakeup.c).
 *
 * The hot path only adds to one small backend-local list per transaction; a
 * transaction callback adds the list to the shared counters at commit, and
 * wakes the readers of the queues it marked. A rolled-back transaction
 * counts nothing, and neither does a subtransaction that rolled back (a
 * savepoint, a PL/pgSQL exception block, a cancelled statement inside one):
 * the list keeps each subtransaction's counts apart until it commits into its
 * parent. A prepared transaction's counts are dropped at PREPARE (its
 * COMMIT PREPARED runs in another backend, which has no list), as the
 * gauges' are. The counters only grow, from server start:
 * pgmq.queue_counters() shows them, and maintenance turns their growth into
 * per-minute history (pgmq.throughput_history), so reading throughput never
 * scans a queue. Without preload nothing is counted and the history stays
 * empty. Shared memory holds the counters of COUNTED_QUEUES queues; work on
 * queues beyond them is not counted.
 */
#include "queue_ext.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#define COUNTED_QUEUES 8192

typedef struct CounterKey
{
	Oid			database;
	Oid			queue_relid;
} CounterKey;

typedef struct QueueCounters
{
	CounterKey	key;
	int64		counts[COUNTER_KINDS];
} QueueCounters;

static HTAB *shared_counters = NULL;

/* This transaction's counts, per queue, and whether its readers are to be woken. */
typedef struct PendingCounts
{
	Oid			queue_relid;
	int			nest_level;		/* the (sub)transaction the counts belong to */
	int64		counts[COUNTER_KINDS];
	bool		wake;
	bool		timed;			/* latency has samples */
	uint32		latency[LATENCY_KINDS][LATENCY_BUCKETS];
} PendingCounts;

static PendingCounts *pending = NULL;
static int	npending = 0;
static int	pending_capacity = 0;
static bool callback_registered = false;

Size
counters_shmem_size(void)
{
	return hash_estimate_size(COUNTED_QUEUES, sizeof(QueueCounters));
}

/* From shared_state.c's startup hook, AddinShmemInitLock held. */
void
counters_shmem_startup(void)
{
	shared_counters = shared_hash("queue_ext counters", sizeof(CounterKey),
								  sizeof(QueueCounters), COUNTED_QUEUES);
}

static void
counters_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT && npending > 0)
	{
		/* After the commit: nothing here may fail, so a full table drops counts. */
		LWLockAcquire(shared_lock(SHARED_LOCK_COUNTERS), LW_EXCLUSIVE);
		for (int i = 0; i < npending; i++)
		{
			CounterKey	key = {MyDatabaseId, pending[i].queue_relid};
			bool		found;
			bool		counted = false;
			QueueCounters *entry;

			if (pending[i].timed)
				latency_add(pending[i].queue_relid, pending[i].latency);
			for (int k = 0; k < COUNTER_KINDS; k++)
				counted |= pending[i].counts[k] != 0;
			if (!counted)
				continue;		/* only a wake-up or latencies */
			entry = hash_search(shared_counters, &key, HASH_FIND, &found);
			if (entry == NULL && hash_get_num_entries(shared_counters) < COUNTED_QUEUES)
				entry = hash_search(shared_counters, &key, HASH_ENTER_NULL, &found);
			if (entry == NULL)
				continue;
			if (!found)
				memset(entry->counts, 0, sizeof(entry->counts));
			for (int k = 0; k < COUNTER_KINDS; k++)
				entry->counts[k] += pending[i].counts[k];
		}
		LWLockRelease(shared_lock(SHARED_LOCK_COUNTERS));
		for (int i = 0; i < npending; i++)
			if (pending[i].wake)
				wakeup_announce(pending[i].queue_relid);
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PARALLEL_ABORT)
		npending = 0;
}

/* Adds what from counted into into; both are entries of one queue. */
static void
pending_merge(PendingCounts *into, const PendingCounts *from)
{
	for (int k = 0; k < COUNTER_KINDS; k++)
		into->counts[k] += from->counts[k];
	for (int l = 0; l < LATENCY_KINDS; l++)
		for (int b = 0; b < LATENCY_BUCKETS; b++)
			into->latency[l][b] = (uint32) Min((uint64) into->latency[l][b] + from->latency[l][b], PG_UINT32_MAX);
	into->wake |= from->wake;
	into->timed |= from->timed;
}

/*
 * A subtransaction that commits hands its counts to its parent; one that
 * rolls back takes them with it. Called while the subtransaction is still
 * the current one.
 */
static void
counters_subxact_callback(SubXactEvent event, SubTransactionId sub, SubTransactionId parent, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	int			kept = 0;

	if (event != SUBXACT_EVENT_COMMIT_SUB && event != SUBXACT_EVENT_ABORT_SUB)
		return;
	for (int i = 0; i < npending; i++)
	{
		if (pending[i].nest_level == level)
		{
			int			j;

			if (event == SUBXACT_EVENT_ABORT_SUB)
				continue;

			/*
			 * The parent's entry, if any, is among those already kept:
			 * entries are only appended, and compaction keeps their order,
			 * so it was made before this subtransaction began.
			 */
			for (j = 0; j < kept; j++)
				if (pending[j].queue_relid == pending[i].queue_relid && pending[j].nest_level == level - 1)
					break;
			if (j < kept)
			{
				pending_merge(&pending[j], &pending[i]);
				continue;
			}
			pending[i].nest_level = level - 1;
		}
		if (kept != i)
			pending[kept] = pending[i];
		kept++;
	}
	npending = kept;
}

/*
 * The current (sub)transaction's entry for queue, made on first use; NULL
 * without shared memory, and in a parallel worker (whose commit comes before
 * its leader's).
 */
static PendingCounts *
pending_for(QueueEntry *queue)
{
	int			i;
	int			level;

	if (!shared_state_ready() || IsParallelWorker())
		return NULL;
	level = GetCurrentTransactionNestLevel();
	for (i = 0; i < npending; i++)
		if (pending[i].queue_relid == queue->queue_relid && pending[i].nest_level == level)
			break;
	if (i == npending)
	{
		if (!callback_registered)
		{
			RegisterXactCallback(counters_xact_callback, NULL);
			RegisterSubXactCallback(counters_subxact_callback, NULL);
			callback_registered = true;
		}
		if (npending == pending_capacity)
		{
			int			capacity = Max(8, pending_capacity * 2);

			pending = pending == NULL
				? MemoryContextAlloc(TopMemoryContext, sizeof(PendingCounts) * capacity)
				: repalloc(pending, sizeof(PendingCounts) * capacity);
			pending_capacity = capacity;
		}
		memset(&pending[i], 0, sizeof(PendingCounts));
		pending[i].queue_relid = queue->queue_relid;
		pending[i].nest_level = level;
		npending++;
	}
	return &pending[i];
}

/* Counts n messages of one kind on queue, when this transaction commits; sent ones wake its readers. */
void
count_messages(QueueEntry *queue, CounterKind kind, int64 n)
{
	PendingCounts *entry;

	if (n <= 0 || (entry = pending_for(queue)) == NULL)
		return;
	entry->counts[kind] += n;
	if (kind == COUNT_SENT)
		entry->wake = true;
}

/* A message's latency of one kind on queue, from from to to: added to its histogram when this transaction commits. */
void
count_latency(QueueEntry *queue, LatencyKind kind, TimestampTz from, TimestampTz to)
{
	PendingCounts *entry;
	uint32	   *bucket;

	/* Infinite timestamps (hand-written rows) have no latency; their difference would overflow. */
	if (TIMESTAMP_NOT_FINITE(from) || TIMESTAMP_NOT_FINITE(to) || (entry = pending_for(queue)) == NULL)
		return;
	bucket = &entry->latency[kind][latency_bucket(Max(to - from, 0))];
	if (*bucket < PG_UINT32_MAX)
		(*bucket)++;
	entry->timed = true;
}

/* A change that may let queue's waiting readers take more: they are woken when this transaction commits. */
void
wake_readers_at_commit(QueueEntry *queue)
{
	PendingCounts *entry = pending_for(queue);

	if (entry != NULL)
		entry->wake = true;
}

/*
 * queue_counters() -> setof (queue_name, sent, read, acked, archived, nacked,
 * dead_lettered): every counted queue of this database the caller may see,
 * since the server started. No rows without preload.
 */
QUEUE_EXT_ENTRY(queue_ext_queue_counters)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	QueueCounters *copies;
	int			n;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	if (!shared_state_ready())
		return (Datum) 0;
	copies = shared_hash_copy_own(shared_counters, SHARED_LOCK_COUNTERS, sizeof(QueueCounters), COUNTED_QUEUES, &n);

	for (int i = 0; i < n; i++)
	{
		QueueEntry *queue = queue_of_table(copies[i].key.queue_relid);
		Datum		values[1 + COUNTER_KINDS];
		bool		nulls[1 + COUNTER_KINDS] = {false};

		if (queue == NULL)
			continue;
		values[0] = CStringGetTextDatum(queue->registered_name);
		for (int k = 0; k < COUNTER_KINDS; k++)
			values[1 + k] = Int64GetDatum(copies[i].counts[k]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
