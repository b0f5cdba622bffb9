/*
 * gauges.c
 *	  How many rows each queue and archive table holds, kept in shared memory
 *	  so that metrics read a number instead of counting rows.
 *
 * Every committed change to a table pgmq.q_* or pgmq.a_* moves its gauge,
 * whoever made it: executor and utility hooks note the tables a transaction
 * writes (queue_ext's own plans, a hand-written DELETE, TRUNCATE, COPY), and
 * at pre-commit the transaction's net rows per table are read from the
 * counts PostgreSQL's statistics keep for it anyway (pgstat's per-transaction
 * inserted and deleted tuples, which already leave out subtransactions that
 * rolled back). They are added to shared memory at commit.
 *
 * A gauge is known once it has a starting point: a table made after the
 * server started starts at its creation, any other at a count. The count
 * (gauge_recount, run by maintenance) takes its snapshot under a SHARE lock,
 * which waits for every writer's commit, callbacks included, and keeps new
 * ones out for that moment, so no change is in flight between the snapshot
 * and the commits the gauge collects after it. Until then, and where
 * a gauge is lost (two-phase commit, whose COMMIT PREPARED runs in another
 * session; track_counts off; the shared table full), readers get "unknown"
 * and count rows themselves; maintenance recounts what is unknown. Without preload there are no gauges.
 */
#include "queue_ext.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_inherits.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "storage/lmgr.h"
#include "storage/lwlock.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#define GAUGED_TABLES 16384

/* How long a recount may wait for writers, during which new writers wait too. */
#define RECOUNT_LOCK_TIMEOUT "200ms"

typedef struct GaugeKey
{
	Oid			database;
	Oid			relid;
} GaugeKey;

typedef struct Gauge
{
	GaugeKey	key;
	int64		rows;			/* when not known: what commits added since a recount's snapshot */
	bool		known;
	uint64		recount;		/* the recount under way, by its token */
} Gauge;

static HTAB *shared_gauges = NULL;

/* What this transaction does to one table's gauge at commit. */
typedef enum GaugeChange
{
	GAUGE_ADD,					/* rows changed by delta */
	GAUGE_SET,					/* rows are delta: made or truncated here */
	GAUGE_FORGET,				/* dropped, or its count cannot be known */
} GaugeChange;

typedef struct PendingGauge
{
	Oid			relid;
	bool		created;		/* by a CREATE TABLE in this transaction */
	bool		uncounted;		/* written while its statistics were not counted */
	GaugeChange change;			/* worked out at pre-commit */
	int64		delta;
} PendingGauge;

static PendingGauge *pending = NULL;
static int	npending = 0;
static int	pending_capacity = 0;

static ExecutorEnd_hook_type prev_executor_end = NULL;
static ProcessUtility_hook_type prev_process_utility = NULL;

/* pgmq's namespace, looked up once and forgotten when any namespace changes. */
static Oid	queue_namespace = InvalidOid;
static bool queue_namespace_valid = false;

Size
gauges_shmem_size(void)
{
	return hash_estimate_size(GAUGED_TABLES, sizeof(Gauge));
}

/* From shared_state.c's startup hook, AddinShmemInitLock held. */
void
gauges_shmem_startup(void)
{
	shared_gauges = shared_hash("queue_ext gauges", sizeof(GaugeKey), sizeof(Gauge), GAUGED_TABLES);
}

static void
forget_queue_namespace(Datum arg, int cacheid, uint32 hashvalue)
{
	queue_namespace_valid = false;
}

/* True for pgmq.q_* and pgmq.a_* tables: the ones with gauges. */
static bool
is_gauged_table(Relation rel)
{
	const char *name = NameStr(rel->rd_rel->relname);

	if (rel->rd_rel->relkind != RELKIND_RELATION)
		return false;
	if ((name[0] != 'q' && name[0] != 'a') || name[1] != '_')
		return false;
	if (!queue_namespace_valid)
	{
		if (!IsTransactionState())
			return false;
		queue_namespace = get_namespace_oid(QUEUE_SCHEMA, true);
		queue_namespace_valid = true;
	}
	return OidIsValid(queue_namespace) && rel->rd_rel->relnamespace == queue_namespace;
}

static PendingGauge *
note_table(Oid relid)
{
	int			i;

	for (i = 0; i < npending; i++)
		if (pending[i].relid == relid)
			return &pending[i];
	if (npending == pending_capacity)
	{
		int			capacity = Max(8, pending_capacity * 2);

		pending = pending == NULL
			? MemoryContextAlloc(TopMemoryContext, sizeof(PendingGauge) * capacity)
			: repalloc(pending, sizeof(PendingGauge) * capacity);
		pending_capacity = capacity;
	}
	memset(&pending[i], 0, sizeof(PendingGauge));
	pending[i].relid = relid;
	npending++;
	return &pending[i];
}

static void
note_relation(Relation rel)
{
	PendingGauge *p;

	if (!is_gauged_table(rel))
		return;
	p = note_table(RelationGetRelid(rel));
	/* CREATE TABLE IF NOT EXISTS of a table that exists makes nothing. */
	p->created |= rel->rd_createSubid != InvalidSubTransactionId;
	/* track_counts off (a superuser may SET it): these changes are in no count. */
	p->uncounted |= !rel->pgstat_enabled;
}

static void
note_relid(Oid relid)
{
	Relation	rel;

	if (!OidIsValid(relid) || (rel = RelationIdGetRelation(relid)) == NULL)
		return;
	note_relation(rel);
	RelationClose(rel);
}

/* A table named in a statement; for a partitioned one, its partitions, which hold the rows. */
static void
note_range_var(RangeVar *rv)
{
	Oid			relid = RangeVarGetRelid(rv, NoLock, true);
	ListCell   *lc;

	if (!OidIsValid(relid))
		return;
	if (get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE)
	{
		note_relid(relid);
		return;
	}
	foreach(lc, find_all_inheritors(relid, NoLock, NULL))
		note_relid(lfirst_oid(lc));
}

static void
gauges_executor_end(QueryDesc *query)
{
	if (!IsParallelWorker() && query->estate != NULL)
	{
		ListCell   *lc;

		/* Writable CTEs open result relations in SELECTs too, so every statement is looked at. */
		foreach(lc, query->estate->es_opened_result_relations)
			note_relation(((ResultRelInfo *) lfirst(lc))->ri_RelationDesc);
		foreach(lc, query->estate->es_tuple_routing_result_relations)
			note_relation(((ResultRelInfo *) lfirst(lc))->ri_RelationDesc);
	}
	if (prev_executor_end)
		prev_executor_end(query);
	else
		standard_ExecutorEnd(query);
}

/* Tables that change rows outside the executor: made, truncated, copied into, dropped. */
static void
gauges_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					   ProcessUtilityContext context, ParamListInfo params,
					   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;
	List	   *dropped = NIL;
	ListCell   *lc;

	/* A dropped table is looked up before it is gone. */
	if (IsA(stmt, DropStmt) && ((DropStmt *) stmt)->removeType == OBJECT_TABLE && IsTransactionState())
		foreach(lc, ((DropStmt *) stmt)->objects)
		{
			Oid			relid = RangeVarGetRelid(makeRangeVarFromNameList(lfirst(lc)), NoLock, true);

			/* A partitioned table goes with its partitions, whose gauges go too. */
			if (OidIsValid(relid))
				dropped = list_concat(dropped, get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE
									  ? find_all_inheritors(relid, NoLock, NULL) : list_make1_oid(relid));
		}

	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);

	if (IsA(stmt, TruncateStmt))
		foreach(lc, ((TruncateStmt *) stmt)->relations)
			note_range_var(lfirst(lc));
	else if (IsA(stmt, CopyStmt) && ((CopyStmt *) stmt)->is_from && ((CopyStmt *) stmt)->relation)
		note_range_var(((CopyStmt *) stmt)->relation);
	else if (IsA(stmt, CreateStmt))
		note_range_var(((CreateStmt *) stmt)->relation);
	foreach(lc, dropped)
		(void) note_table(lfirst_oid(lc));
}

/* Net rows this transaction added to relid (all its levels), and whether it emptied the table first. */
static int64
own_uncommitted_rows(Oid relid, bool *emptied)
{
	PgStat_TableStatus *status = find_tabstat_entry(relid);
	int64		rows = 0;

	*emptied = false;
	if (status == NULL)
		return 0;
	for (PgStat_TableXactStatus *level = status->trans; level != NULL; level = level->upper)
	{
		rows += level->tuples_inserted - level->tuples_deleted;
		if (level->truncdropped)
		{
			*emptied = true;
			break;
		}
	}
	return rows;
}

/* Pre-commit: what each noted table's gauge becomes; catalog lookups still work here. */
static void
settle_pending(void)
{
	for (int i = 0; i < npending; i++)
	{
		PendingGauge *p = &pending[i];
		bool		emptied;

		p->delta = own_uncommitted_rows(p->relid, &emptied);
		/* Without statistics counts there is no delta to read. */
		if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(p->relid)) || !pgstat_track_counts || p->uncounted)
			p->change = GAUGE_FORGET;
		else if (p->created || emptied)
			p->change = GAUGE_SET;
		else
			p->change = GAUGE_ADD;
	}
}

static Gauge *
gauge_entry(Oid relid, bool create)
{
	GaugeKey	key = {MyDatabaseId, relid};
	bool		found;
	Gauge	   *gauge = hash_search(shared_gauges, &key, HASH_FIND, &found);

	if (gauge == NULL && create && hash_get_num_entries(shared_gauges) < GAUGED_TABLES)
	{
		gauge = hash_search(shared_gauges, &key, HASH_ENTER_NULL, &found);
		if (gauge != NULL && !found)
		{
			gauge->rows = 0;
			gauge->known = false;
			gauge->recount = 0;
		}
	}
	return gauge;
}

/* Commit: nothing here may fail, so a full table leaves gauges out. */
static void
apply_pending(bool prepared)
{
	LWLockAcquire(shared_lock(SHARED_LOCK_GAUGES), LW_EXCLUSIVE);
	for (int i = 0; i < npending; i++)
	{
		PendingGauge *p = &pending[i];
		GaugeChange change = prepared ? GAUGE_FORGET : p->change;
		Gauge	   *gauge = gauge_entry(p->relid, change == GAUGE_SET);

		if (gauge == NULL)
			continue;
		if (change == GAUGE_FORGET)
		{
			GaugeKey	key = gauge->key;

			hash_search(shared_gauges, &key, HASH_REMOVE, NULL);
			continue;
		}
		if (change == GAUGE_SET)
		{
			gauge->rows = p->delta;
			gauge->known = true;
			gauge->recount = 0;
		}
		else
			gauge->rows += p->delta;
	}
	LWLockRelease(shared_lock(SHARED_LOCK_GAUGES));
}

static void
gauges_xact_callback(XactEvent event, void *arg)
{
	if (npending == 0)
		return;
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			settle_pending();
			return;
		case XACT_EVENT_COMMIT:
			apply_pending(false);
			break;
		case XACT_EVENT_PREPARE:
			/* COMMIT PREPARED happens elsewhere: the gauges wait for a recount. */
			apply_pending(true);
			break;
		default:
			break;
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
		npending = 0;
}

/* From _PG_init while preloading: the hooks every backend inherits. */
void
gauges_init(void)
{
	prev_executor_end = ExecutorEnd_hook;
	ExecutorEnd_hook = gauges_executor_end;
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = gauges_process_utility;
	RegisterXactCallback(gauges_xact_callback, NULL);
	CacheRegisterSyscacheCallback(NAMESPACEOID, forget_queue_namespace, (Datum) 0);
}

/*
 * The rows of table relid as this transaction would count them: the committed
 * rows the gauge holds plus this transaction's own changes. False when there
 * is no known gauge.
 */
bool
gauge_rows(Oid relid, int64 *rows)
{
	Gauge	   *gauge;
	bool		known = false;
	bool		emptied;
	int64		own;

	if (!shared_state_ready() || !OidIsValid(relid))
		return false;
	/* A partitioned table: the sum of its partitions, when each is known. */
	if (get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE)
	{
		ListCell   *lc;
		int64		sum = 0;

		foreach(lc, find_all_inheritors(relid, NoLock, NULL))
		{
			int64		part_rows;

			if (lfirst_oid(lc) == relid || get_rel_relkind(lfirst_oid(lc)) != RELKIND_RELATION)
				continue;
			if (!gauge_rows(lfirst_oid(lc), &part_rows))
				return false;
			sum += part_rows;
		}
		*rows = sum;
		return true;
	}
	own = own_uncommitted_rows(relid, &emptied);
	if (emptied)
		return false;			/* counted from the truncation on: the view counts rows */
	LWLockAcquire(shared_lock(SHARED_LOCK_GAUGES), LW_SHARED);
	gauge = gauge_entry(relid, false);
	if (gauge != NULL && gauge->known)
	{
		*rows = gauge->rows + own;
		known = true;
	}
	LWLockRelease(shared_lock(SHARED_LOCK_GAUGES));
	return known;
}

/* Takes a SHARE lock on relid, waiting at most RECOUNT_LOCK_TIMEOUT; false when it timed out. */
static bool
lock_writers_out(Oid relid)
{
	MemoryContext context = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool locked = false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(context);
	PG_TRY();
	{
		int			guc_level = NewGUCNestLevel();

		(void) set_config_option("lock_timeout", RECOUNT_LOCK_TIMEOUT, PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		LockRelationOid(relid, ShareLock);
		AtEOXact_GUC(true, guc_level);
		/* The lock passes to the enclosing transaction; let_writers_in gives it back. */
		ReleaseCurrentSubTransaction();
		locked = true;
	}
	PG_CATCH();
	{
		ErrorData  *error;

		MemoryContextSwitchTo(context);
		error = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(context);
		CurrentResourceOwner = owner;
		if (error->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			ReThrowError(error);
		FreeErrorData(error);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(context);
	CurrentResourceOwner = owner;
	return locked;
}

/* Gives back a lock that lock_writers_out passed to this transaction, before the transaction ends. */
static void
let_writers_in(Oid relid)
{
	ResourceOwner owner = CurrentResourceOwner;

	CurrentResourceOwner = CurTransactionResourceOwner;
	UnlockRelationOid(relid, ShareLock);
	CurrentResourceOwner = owner;
}

/*
 * Counts the rows of pgmq.<table> and makes that its gauge. SPI must be
 * connected. False, changing nothing, when the gauge cannot be set now:
 * writers held the table past the lock timeout, this transaction emptied the
 * table, the server is a standby, or there is no shared memory.
 *
 * Writers are kept out only while a snapshot is taken: with none of them
 * between its changes and its commit callback, the snapshot sees exactly the
 * commits before it, and the entry, reset then, collects exactly those
 * after it while the count runs. This transaction's own changes, which the
 * snapshot sees too, are left out of the count: its commit adds them.
 */
bool
gauge_recount(const char *table)
{
	static uint64 recounts = 0;
	Oid			relid = get_relname_relid(table, get_namespace_oid(QUEUE_SCHEMA, false));
	uint64		token;
	bool		emptied;
	int64		own;
	SPIPlanPtr	plan;
	Snapshot	snapshot;
	int64		rows;
	bool		isnull;
	bool		set;
	Gauge	   *gauge;

	if (!shared_state_ready() || !OidIsValid(relid) || RecoveryInProgress())
		return false;
	own = own_uncommitted_rows(relid, &emptied);
	if (emptied)
		return false;
	plan = SPI_prepare(psprintf("SELECT pg_catalog.count(*) FROM %s.%s",
								quote_identifier(QUEUE_SCHEMA), quote_identifier(table)), 0, NULL);
	if (plan == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not prepare the count of table \"%s\": %s", table,
						SPI_result_code_string(SPI_result))));
	if (!lock_writers_out(relid))
		return false;
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	token = ((uint64) MyProcPid << 32) | (++recounts & 0xFFFFFFFF);
	LWLockAcquire(shared_lock(SHARED_LOCK_GAUGES), LW_EXCLUSIVE);
	gauge = gauge_entry(relid, true);
	if (gauge != NULL)
	{
		gauge->rows = 0;
		gauge->known = false;
		gauge->recount = token;
	}
	LWLockRelease(shared_lock(SHARED_LOCK_GAUGES));
	let_writers_in(relid);
	if (gauge == NULL)
	{
		UnregisterSnapshot(snapshot);
		return false;
	}

	if (SPI_execute_snapshot(plan, NULL, NULL, snapshot, InvalidSnapshot, true, false, 1) != SPI_OK_SELECT)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not count the rows of table \"%s\"", table)));
	UnregisterSnapshot(snapshot);
	rows = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freeplan(plan);

	/* Another recount, a truncation or a loss since the snapshot: theirs stands. */
	LWLockAcquire(shared_lock(SHARED_LOCK_GAUGES), LW_EXCLUSIVE);
	gauge = gauge_entry(relid, false);
	set = gauge != NULL && !gauge->known && gauge->recount == token;
	if (set)
	{
		gauge->rows += rows - own;
		gauge->known = true;
		gauge->recount = 0;
	}
	LWLockRelease(shared_lock(SHARED_LOCK_GAUGES));
	return set;
}

/* True when relid has a known gauge; for maintenance, which recounts the others. */
bool
gauge_known(Oid relid)
{
	Gauge	   *gauge;
	bool		known;

	if (!shared_state_ready())
		return false;
	LWLockAcquire(shared_lock(SHARED_LOCK_GAUGES), LW_SHARED);
	gauge = gauge_entry(relid, false);
	known = gauge != NULL && gauge->known;
	LWLockRelease(shared_lock(SHARED_LOCK_GAUGES));
	return known;
}
