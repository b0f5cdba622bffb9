/*
 * wakeup.c
 *	  Waking a read_with_poll when a send to its queue commits.
 *
 * pgmq's read_with_poll polls: it reads, sleeps poll_interval_ms, reads
 * again, so a message waits up to the interval and an idle reader costs a
 * query per interval. LISTEN/NOTIFY would wake it, but poolers in
 * transaction mode and RPC gateways do not carry LISTEN. So, when queue_ext
 * is preloaded, shared memory holds an array of condition variables; a
 * queue maps to one by its table's OID (two queues may share one: a shared
 * slot only causes a spurious wake-up, which costs a read that finds
 * nothing). A waiting reader sleeps on its queue's variable; a transaction
 * that sent to a queue broadcasts on it when it commits (a transaction
 * callback, run after the commit is visible to others), so the reader's next
 * snapshot sees the message.
 *
 * Each slot also counts the commits announced on it. A reader notes the
 * count before a read attempt and sleeps only while it is unchanged, so a
 * commit during the attempt is never slept through, whatever the attempt did
 * to the latch or to the backend's one prepared condition-variable sleep
 * (buffer I/O and lock waits use both).
 *
 * The poll interval still bounds each sleep: messages also become visible
 * when their vt passes or a delay ends, which no commit announces. A
 * rolled-back send broadcasts nothing; a send in a subtransaction that rolls
 * back may still wake readers at commit, who then find nothing and sleep
 * again. Besides sends, a message reaching a dead-letter queue or redriven
 * wakes readers, and so does an ack, delete or archive on a queue that caps
 * its messages in flight (it frees room). A prepared transaction's sends are
 * found by the next poll (COMMIT PREPARED runs none of this backend's
 * callbacks). Every reader waiting on a slot wakes; all but one find nothing
 * and sleep again. Without preload, readers poll as pgmq does.
 */
#include "queue_ext.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "common/hashfn.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/shmem.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#define WAKE_SLOTS 1024

typedef struct WakeSlot
{
	pg_atomic_uint64 commits;	/* announced on this slot so far */
	ConditionVariable cv;
} WakeSlot;

static WakeSlot *wake_slots = NULL;

/* Queues this transaction sent to (their tables' OIDs). */
static Oid *sent_to = NULL;
static int	nsent_to = 0;
static int	sent_to_capacity = 0;
static bool callback_registered = false;

Size
wakeup_shmem_size(void)
{
	return mul_size(WAKE_SLOTS, sizeof(WakeSlot));
}

/* From shared_state.c's startup hook, AddinShmemInitLock held. */
void
wakeup_shmem_startup(void)
{
	bool		found;

	wake_slots = ShmemInitStruct("queue_ext wake-ups", wakeup_shmem_size(), &found);
	if (!found)
		for (int i = 0; i < WAKE_SLOTS; i++)
		{
			pg_atomic_init_u64(&wake_slots[i].commits, 0);
			ConditionVariableInit(&wake_slots[i].cv);
		}
}

static WakeSlot *
relid_slot(Oid relid)
{
	return &wake_slots[hash_uint32((uint32) relid) % WAKE_SLOTS];
}

static void
wakeup_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			/* Runs after the commit is visible; nothing here can fail. */
			for (int i = 0; i < nsent_to; i++)
			{
				WakeSlot   *slot = relid_slot(sent_to[i]);

				pg_atomic_fetch_add_u64(&slot->commits, 1);
				ConditionVariableBroadcast(&slot->cv);
			}
			nsent_to = 0;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			nsent_to = 0;
			break;
		default:
			break;
	}
}

/* A send to queue (or another change that may let a reader take more): its waiting readers are woken when this transaction commits. */
void
wakeup_after_commit(QueueEntry *queue)
{
	/* A parallel worker's commit comes before its leader's: the leader announces. */
	if (!shared_state_ready() || IsParallelWorker())
		return;
	for (int i = 0; i < nsent_to; i++)
		if (sent_to[i] == queue->queue_relid)
			return;
	if (!callback_registered)
	{
		RegisterXactCallback(wakeup_xact_callback, NULL);
		callback_registered = true;
	}
	if (nsent_to == sent_to_capacity)
	{
		int			capacity = Max(8, sent_to_capacity * 2);

		/* The capacity grows only once the memory is there. */
		sent_to = sent_to == NULL
			? MemoryContextAlloc(TopMemoryContext, sizeof(Oid) * capacity)
			: repalloc(sent_to, sizeof(Oid) * capacity);
		sent_to_capacity = capacity;
	}
	sent_to[nsent_to++] = queue->queue_relid;
}

/*
 * Before a read attempt of a poll: the slot's count of announced commits,
 * for wakeup_sleep(). False without shared memory (then the poll sleeps on
 * the latch alone).
 */
bool
wakeup_prepare(QueueEntry *queue, uint64 *commits)
{
	if (!shared_state_ready())
		return false;
	*commits = pg_atomic_read_u64(&relid_slot(queue->queue_relid)->commits);
	return true;
}

/*
 * After an attempt that found nothing: sleeps until a commit is announced on
 * the queue's slot after commits was read, or timeout_ms pass. Interrupts
 * (cancel, statement_timeout) end it as they end any wait.
 */
void
wakeup_sleep(QueueEntry *queue, uint64 commits, long timeout_ms)
{
	WakeSlot   *slot = relid_slot(queue->queue_relid);
	TimestampTz deadline = GetCurrentTimestamp() + (int64) timeout_ms * 1000;

	ConditionVariablePrepareToSleep(&slot->cv);
	for (;;)
	{
		long		remaining_ms;

		if (pg_atomic_read_u64(&slot->commits) != commits)
			break;
		remaining_ms = (long) ((deadline - GetCurrentTimestamp()) / 1000);
		if (remaining_ms <= 0)
			break;
		/* An early return (another sleep was prepared meanwhile) just loops. */
		if (ConditionVariableTimedSleep(&slot->cv, remaining_ms, PG_WAIT_EXTENSION))
			break;
	}
	ConditionVariableCancelSleep();
}
