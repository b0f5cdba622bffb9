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
 * snapshot sees the message. A reader prepares to sleep before each read
 * attempt, so a commit between its attempt and its sleep still wakes it.
 *
 * The poll interval still bounds each sleep: messages also become visible
 * when their vt passes or a delay ends, which no commit announces. A
 * rolled-back send broadcasts nothing; a send in a subtransaction that rolls
 * back may still wake readers at commit, who then find nothing and sleep
 * again. A prepared transaction's sends are found by the next poll (COMMIT
 * PREPARED runs none of this backend's callbacks). Without preload, readers
 * poll as pgmq does.
 */
#include "queue_ext.h"

#include "access/xact.h"
#include "common/hashfn.h"
#include "storage/condition_variable.h"
#include "storage/shmem.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#define WAKE_SLOTS 1024

typedef struct WakeSlot
{
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
			ConditionVariableInit(&wake_slots[i].cv);
}

static ConditionVariable *
queue_wake_cv(QueueEntry *queue)
{
	return &wake_slots[hash_uint32((uint32) queue->queue_relid) % WAKE_SLOTS].cv;
}

static void
wakeup_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			for (int i = 0; i < nsent_to; i++)
				ConditionVariableBroadcast(&wake_slots[hash_uint32((uint32) sent_to[i]) % WAKE_SLOTS].cv);
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

/* A send to queue: its waiting readers are woken when this transaction commits. */
void
wakeup_after_commit(QueueEntry *queue)
{
	if (!shared_state_ready())
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
		sent_to_capacity = Max(8, sent_to_capacity * 2);
		sent_to = sent_to == NULL
			? MemoryContextAlloc(TopMemoryContext, sizeof(Oid) * sent_to_capacity)
			: repalloc(sent_to, sizeof(Oid) * sent_to_capacity);
	}
	sent_to[nsent_to++] = queue->queue_relid;
}

/*
 * Before a read attempt of a poll: from here on a commit of a send to queue
 * wakes the sleep that follows. False without shared memory (then the poll
 * sleeps on the latch alone).
 */
bool
wakeup_prepare(QueueEntry *queue)
{
	if (!shared_state_ready())
		return false;
	ConditionVariablePrepareToSleep(queue_wake_cv(queue));
	return true;
}

/* Sleeps until a send to queue commits, or timeout_ms pass; interrupts still work. */
void
wakeup_sleep(QueueEntry *queue, long timeout_ms)
{
	(void) ConditionVariableTimedSleep(queue_wake_cv(queue), timeout_ms, PG_WAIT_EXTENSION);
}

/* The poll is over. */
void
wakeup_done(void)
{
	if (shared_state_ready())
		ConditionVariableCancelSleep();
}
