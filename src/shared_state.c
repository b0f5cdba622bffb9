/*
 * shared_state.c
 *	  queue_ext's shared memory: requested while preloading, set up at
 *	  postmaster start, and the one place that knows whether it exists.
 *
 * queue_ext loads anywhere. Only when it is in shared_preload_libraries does
 * _PG_init get to request shared memory (shmem_request_hook), so each feature
 * that keeps state there (rate-limit buckets, wake-ups, counters, gauges) asks shared_state_ready()
 * and, when it is false, uses its documented fallback. Features size their
 * own part and attach to it from the startup hook; they share one named
 * LWLock tranche, one lock per feature (SharedLockId).
 */
#include "queue_ext.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#define SHARED_TRANCHE "queue_ext"

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static bool preloaded = false;
static LWLockPadded *shared_locks = NULL;

static void
shared_state_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(add_size(add_size(ratelimit_shmem_size(), wakeup_shmem_size()),
									add_size(add_size(counters_shmem_size(), gauges_shmem_size()), latency_shmem_size())));
	RequestNamedLWLockTranche(SHARED_TRANCHE, SHARED_LOCK_COUNT);
}

static void
shared_state_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared_locks = GetNamedLWLockTranche(SHARED_TRANCHE);
	ratelimit_shmem_startup();
	wakeup_shmem_startup();
	counters_shmem_startup();
	gauges_shmem_startup();
	latency_shmem_startup();
	LWLockRelease(AddinShmemInitLock);
}

/* From _PG_init: asks for shared memory when, and only when, preloading. */
void
shared_state_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	preloaded = true;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = shared_state_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = shared_state_startup;
	gauges_init();
}

/* True when queue_ext was preloaded and its shared memory is set up. */
bool
shared_state_ready(void)
{
	return preloaded && shared_locks != NULL;
}

/* A shared hash table of at most max entries with binary keys; from a startup hook. */
HTAB *
shared_hash(const char *name, Size keysize, Size entrysize, long max)
{
	HASHCTL		ctl;

	ctl.keysize = keysize;
	ctl.entrysize = entrysize;
	return ShmemInitHash(name, max, max, &ctl, HASH_ELEM | HASH_BLOBS);
}

/*
 * Copies the entries of a shared hash whose key starts with a database OID,
 * this database's, at most max of them, under lock id held shared; returns
 * the copies (palloc'd) and sets *n to their number.
 */
void *
shared_hash_copy_own(HTAB *hash, SharedLockId id, Size entrysize, int max, int *n)
{
	char	   *copies = palloc(entrysize * max);
	HASH_SEQ_STATUS status;
	void	   *entry;

	*n = 0;
	LWLockAcquire(shared_lock(id), LW_SHARED);
	hash_seq_init(&status, hash);
	while ((entry = hash_seq_search(&status)) != NULL)
		if (*(Oid *) entry == MyDatabaseId && *n < max)
			memcpy(copies + entrysize * (*n)++, entry, entrysize);
	LWLockRelease(shared_lock(id));
	return copies;
}

LWLock *
shared_lock(SharedLockId id)
{
	Assert(shared_state_ready());
	return &shared_locks[id].lock;
}
