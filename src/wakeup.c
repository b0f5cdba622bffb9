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
 * snapshot sees the message. counters.c keeps the list of queues a
 * transaction changed, and calls wakeup_announce() for them at commit.
 *
 * Each slot also counts the commits announced on it. A reader notes the
 * count before a read attempt and sleeps only while it is unchanged, so a
 * commit during the attempt is never slept through, whatever the attempt did
 * to the latch or to the backend's one prepared condition-variable sleep
 * (buffer I/O and lock waits use both).
 *
 * The poll interval still bounds each sleep: messages also become visible
 * when their vt passes or a delay ends, which no commit announces. A
 * rolled-back send broadcasts nothing, nor does one in a subtransaction that
 * rolled back (counters.c keeps each subtransaction's marks apart). Besides sends, a message reaching a dead-letter queue or redriven
 * wakes readers, and so does an ack, delete or archive on a queue that caps
 * its messages in flight (it frees room). A prepared transaction's sends are
 * found by the next poll (COMMIT PREPARED runs none of this backend's
 * callbacks). Every reader waiting on a slot wakes; all but one find nothing
 * and sleep again. Without preload, readers poll as pgmq does.
 */
#include "queue_ext.h"

#include "common/hashfn.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/shmem.h"
#include "utils/wait_event.h"

#define WAKE_SLOTS 1024

typedef struct WakeSlot
{
	pg_atomic_uint64 commits;	/* announced on this slot so far */
	ConditionVariable cv;
} WakeSlot;

static WakeSlot *wake_slots = NULL;

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

/*
 * From the commit of a transaction that changed the queue with this table
 * (counters.c keeps the list): wakes its waiting readers. Runs after the
 * commit is visible; nothing here can fail.
 */
void
wakeup_announce(Oid queue_relid)
{
	WakeSlot   *slot = relid_slot(queue_relid);

	pg_atomic_fetch_add_u64(&slot->commits, 1);
	ConditionVariableBroadcast(&slot->cv);
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
