/*
 * queue_cache.c
 *	  The per-backend cache of queues: name -> relation OIDs and prepared plans.
 *
 * Every hot-path call starts with queue_lookup(). A hit costs one hash probe on
 * the name exactly as the caller spelled it; the name was validated when the
 * entry was made, so a hit skips validation and lowercasing. A miss validates
 * the name, resolves pgmq.q_<name> and pgmq.a_<name>, and raises 42P01 naming
 * the queue (not the table) when the queue does not exist.
 *
 * Invalidation: the plans themselves are revalidated by the plan cache, but a
 * dropped queue must turn into a clean "queue does not exist" instead of an
 * error about a missing relation OID. A relcache callback (the pg_cron
 * pattern) marks entries whose tables or sequence were invalidated; the next
 * lookup resolves the name again, and frees the plans only if the tables are
 * no longer the same ones. Callbacks cannot run SPI or free memory safely, so
 * they only flip flags.
 */
#include "queue_ext.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "nodes/pg_list.h"
#include "miscadmin.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

static HTAB *queue_cache = NULL;

/* Counts relcache callbacks, so a fill can tell that one arrived meanwhile. */
static uint64 queue_cache_invalidations = 0;

static void
queue_cache_relcache_callback(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	QueueEntry *entry;

	if (relid == InvalidOid)
		extension_owner_forget();
	if (queue_cache == NULL)
		return;

	queue_cache_invalidations++;
	hash_seq_init(&status, queue_cache);
	while ((entry = hash_seq_search(&status)) != NULL)
	{
		if (relid == InvalidOid || entry->sequence_relid == relid)
		{
			entry->valid = false;
			entry->sequence_changed = true;
		}
		else if (entry->queue_relid == relid || entry->archive_relid == relid)
			entry->valid = false;
	}
}

/* The security catalog changed (security_catalog.c): every entry reads its tenant again. Flags only. */
void
queue_cache_invalidate_all(void)
{
	HASH_SEQ_STATUS status;
	QueueEntry *entry;

	if (queue_cache == NULL)
		return;
	queue_cache_invalidations++;
	hash_seq_init(&status, queue_cache);
	while ((entry = hash_seq_search(&status)) != NULL)
		entry->valid = false;
}

void
queue_cache_init(void)
{
	HASHCTL		ctl;

	ctl.keysize = QUEUE_NAME_MAX_LEN + 1;
	ctl.entrysize = sizeof(QueueEntry);
	ctl.hcxt = CacheMemoryContext;
	queue_cache = hash_create("queue_ext queue cache", 64, &ctl,
							  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	CacheRegisterRelcacheCallback(queue_cache_relcache_callback, (Datum) 0);
}

static void
queue_entry_release_plans(QueueEntry *entry)
{
	for (int i = 0; i < QP_COUNT; i++)
	{
		if (entry->plans[i] != NULL)
		{
			SPI_freeplan(entry->plans[i]);
			entry->plans[i] = NULL;
		}
	}
}

static void
queue_entry_forget(QueueEntry *entry)
{
	queue_entry_release_plans(entry);
	scan_hint_reset(&entry->hint, false);
	hash_search(queue_cache, entry->key, HASH_REMOVE, NULL);
}

static Oid
pgmq_relid(const char *relname)
{
	Oid			nsp = get_namespace_oid(QUEUE_SCHEMA, true);

	return OidIsValid(nsp) ? get_relname_relid(relname, nsp) : InvalidOid;
}

/*
 * Resolves a validated name and reads the queue's options; the entry stays
 * invalid when the queue is missing. Plans are kept while the tables are the same ones (vacuum, analyze
 * and purge all send invalidations; the plan cache revalidates the plans
 * itself), so a plan still running in an outer call is never freed under it.
 * The scan hint is reset when the queue was made anew or its sequence changed.
 *
 * The catalog lookups below may process invalidations, which run the callback
 * for this very entry; if one arrives, the lookups are made again, so that no
 * invalidation is overwritten by what was read before it.
 */
static void
queue_entry_fill(QueueEntry *entry, const QueueNames *names)
{
	for (int attempt = 1;; attempt++)
	{
		uint64		seen = queue_cache_invalidations;
		Oid			queue_relid = pgmq_relid(names->queue_table);
		Oid			archive_relid = pgmq_relid(names->archive_table);
		Oid			sequence_relid = pgmq_relid(names->sequence);
		bool		hint_allowed = scan_hint_allowed(sequence_relid);
		QueueOptions options;
		BreakerState breaker;
		char	   *registered_name = queue_registered_name(names->name);
		int64		tenant_id = queue_tenant_load(names->name);
		bool		settled;

		queue_options_load(names->name, &options);
		breaker_state_load(names->name, &breaker);
		settled = (seen == queue_cache_invalidations);

		CHECK_FOR_INTERRUPTS();
		/*
		 * A few tries, not forever: with debug_discard_caches every lookup
		 * resets the caches. Past that, use what was read (the plans look
		 * their tables up by name anyway) but reset the scan hint, which is
		 * always safe, and leave the entry to be filled again next time.
		 */
		if (!settled && attempt < 3)
			continue;
		check_queue_table_safe(queue_relid);
		check_queue_table_safe(archive_relid);

		if (queue_relid != entry->queue_relid || archive_relid != entry->archive_relid)
			queue_entry_release_plans(entry);
		/* The priority marks (priority.c) hold ranks computed with the aging. */
		if (!settled || entry->sequence_changed || queue_relid != entry->queue_relid ||
			sequence_relid != entry->sequence_relid ||
			options.priority_aging_us != entry->options.priority_aging_us)
			scan_hint_reset(&entry->hint, hint_allowed);
		entry->options = options;
		entry->breaker = breaker;
		entry->tenant_id = tenant_id;
		entry->names = *names;
		strlcpy(entry->registered_name, registered_name, sizeof(entry->registered_name));
		entry->queue_relid = queue_relid;
		entry->archive_relid = archive_relid;
		entry->sequence_relid = sequence_relid;
		entry->sequence_changed = !settled;
		entry->valid = settled && OidIsValid(queue_relid);
		return;
	}
}

/* The queue's cache entry, or NULL when it does not exist. Validates the name. */
QueueEntry *
queue_find(const char *name)
{
	QueueEntry *entry = NULL;
	QueueNames	names;
	bool		found;

	/*
	 * Inside a transaction block, invalidations are otherwise only processed
	 * when a new lock is taken, after this lookup: a committed change of
	 * options would miss the first call. Cheap when none are pending.
	 */
	AcceptInvalidationMessages();
	if (strlen(name) <= QUEUE_NAME_MAX_LEN)
	{
		entry = hash_search(queue_cache, name, HASH_FIND, NULL);
		if (entry != NULL && entry->valid)
			return entry;
	}

	/* Validate before the name is used as a key or turned into SQL. */
	queue_names_resolve(name, &names);

	entry = hash_search(queue_cache, name, HASH_ENTER, &found);
	if (!found)
	{
		/* Everything but the key: no plans, no relations, not valid. */
		memset((char *) entry + sizeof(entry->key), 0, sizeof(QueueEntry) - sizeof(entry->key));
	}
	entry->valid = false;		/* until a fill completes */
	queue_entry_fill(entry, &names);

	if (!OidIsValid(entry->queue_relid))
	{
		queue_entry_forget(entry);
		return NULL;
	}
	return entry;
}

/*
 * The queue whose table is queue_relid (pgmq.q_<lowercased name>), when it
 * still exists and the caller may see it; NULL otherwise. For shared-memory
 * state kept by table OID, which outlives a dropped queue.
 */
QueueEntry *
queue_of_table(Oid queue_relid)
{
	char	   *relname = get_rel_name(queue_relid);
	QueueEntry *queue;

	if (relname == NULL || strncmp(relname, "q_", 2) != 0 ||
		(queue = queue_find(relname + 2)) == NULL ||
		queue->queue_relid != queue_relid || !queue_visible_to_caller(queue))
		return NULL;
	return queue;
}

/* Every queue name in pgmq.meta, in name order; SPI is connected, and the list lives until SPI_finish. */
static List *
queue_names_all(void)
{
	List	   *names = NIL;
	MemoryContext caller_cxt = CurrentMemoryContext;
	int			rc = SPI_execute("SELECT queue_name::text FROM pgmq.meta ORDER BY queue_name", true, 0);

	if (rc != SPI_OK_SELECT)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not list queues"),
				 errdetail("%s", SPI_result_code_string(rc))));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		MemoryContext spi_cxt = MemoryContextSwitchTo(caller_cxt);

		names = lappend(names, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
		MemoryContextSwitchTo(spi_cxt);
	}
	return names;
}

/*
 * Calls visit for every queue in pgmq.meta the caller may see, in name order;
 * SPI is connected. A catalog row whose table is gone (dropped by hand) is
 * passed over.
 */
void
for_each_visible_queue(void (*visit) (QueueEntry *queue, void *arg), void *arg)
{
	ListCell   *lc;

	foreach(lc, queue_names_all())
	{
		QueueEntry *queue = queue_find(lfirst(lc));

		if (queue != NULL && queue_visible_to_caller(queue))
			visit(queue, arg);
	}
}

/*
 * The queue's cache entry, once the caller is found to meet need
 * (tenancy.c): a queue of another tenant raises the same 42P01 as a queue
 * that does not exist, a missing permission 42501.
 */
QueueEntry *
queue_lookup(const char *name, QueueRequirement need)
{
	QueueEntry *entry = queue_find(name);

	if (entry == NULL)
		queue_not_found(name);
	queue_check_access(entry, need);
	return entry;
}

QueueEntry *
queue_lookup_arg(FunctionCallInfo fcinfo, int argno, QueueRequirement need)
{
	return queue_lookup(queue_name_arg(fcinfo, argno), need);
}

/*
 * Called by drop and create so this backend never acts on a stale entry. It
 * only marks the entry: an outer call in this backend (a trigger calling
 * create) may still be running one of its plans; the next lookup resolves
 * the name again and frees the plans if the tables changed.
 */
void
queue_cache_forget(const char *name)
{
	QueueEntry *entry;

	if (strlen(name) > QUEUE_NAME_MAX_LEN)
		return;
	entry = hash_search(queue_cache, name, HASH_FIND, NULL);
	if (entry != NULL)
	{
		entry->valid = false;
		entry->sequence_changed = true;
	}
}
