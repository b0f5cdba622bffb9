/*
 * catalog.c
 *	  Creating, dropping and purging queues, and pgmq's name helpers.
 *
 * A queue is a row in pgmq.meta plus two tables, pgmq.q_<name> (the queue) and
 * pgmq.a_<name> (its archive), laid out column for column as pgmq 1.13 lays
 * them out, so SQL that reads them keeps working. Like pgmq 1.6+, the tables
 * are not extension members: pg_dump dumps them as ordinary tables and
 * DROP EXTENSION leaves them and their data in place.
 *
 * Where queue_ext departs from pgmq's table layout, it is in what serves the
 * hot path, not in what SQL sees:
 *	- no index on vt. Every read rewrites vt; with vt indexed no read could be
 *	  a HOT update, and each one would add index entries to clean up later.
 *	  Reads walk the primary key in msg_id order instead (they must return the
 *	  oldest first anyway), so vt needs no index.
 *	- fillfactor 70, so the new version of a row a read updates fits on the
 *	  same page (a HOT update), and per-table autovacuum settings that clean
 *	  up after churn long before the global defaults would.
 *
 * Creation and drop take the same transaction-scoped advisory lock pgmq takes,
 * so two sessions creating one queue serialise instead of colliding.
 *
 * The hot path reads queue_ext's own catalog tables (pgmq.meta,
 * pgmq.queue_config) the way PostgreSQL reads its catalogs: directly, with
 * the latest snapshot, and without a privilege check, so that using a queue
 * needs privileges on its tables only, as in 0.1.0.
 */
#include "queue_ext.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/indexing.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "miscadmin.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

static void check_table_safe(Oid relid, bool partition);

#define QUEUE_TABLE_OPTIONS \
	"fillfactor = 70, " \
	"autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000, " \
	"autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 0"

/*
 * Calls visit with the named columns of every row of pgmq.<relname>, as the
 * latest snapshot sees them, until it returns true. The values are valid
 * only during the call. Returns false when the table does not exist; a column
 * it does not have reads as NULL. Both happen between installing a new
 * library and ALTER EXTENSION queue_ext UPDATE: the defaults apply meanwhile.
 */
bool
catalog_scan(const char *relname, const char *const *columns, int ncolumns,
			 CatalogRowVisitor visit, void *arg)
{
	Oid			nsp = get_namespace_oid(QUEUE_SCHEMA, true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid(relname, nsp) : InvalidOid;
	AttrNumber *attnums;
	Datum	   *values;
	bool	   *nulls;
	Relation	rel;
	Snapshot	snapshot;
	TableScanDesc scan;
	HeapTuple	tuple;

	if (!OidIsValid(relid))
		return false;
	attnums = palloc(sizeof(AttrNumber) * ncolumns);
	values = palloc(sizeof(Datum) * ncolumns);
	nulls = palloc(sizeof(bool) * ncolumns);
	for (int i = 0; i < ncolumns; i++)
		attnums[i] = get_attnum(relid, columns[i]);

	rel = table_open(relid, AccessShareLock);
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	scan = table_beginscan(rel, snapshot, 0, NULL);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		for (int i = 0; i < ncolumns; i++)
		{
			if (attnums[i] == InvalidAttrNumber)
			{
				values[i] = (Datum) 0;
				nulls[i] = true;
			}
			else
				values[i] = heap_getattr(tuple, attnums[i], RelationGetDescr(rel), &nulls[i]);
		}
		if (visit(values, nulls, arg))
			break;
	}
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
	return true;
}

typedef struct SpellingSearch
{
	char	   *lower;			/* the name looked for, lowercased */
	char	   *found;			/* the registered spelling */
} SpellingSearch;

static bool
spelling_matches(const Datum *values, const bool *nulls, void *arg)
{
	SpellingSearch *search = arg;
	char	   *registered = TextDatumGetCString(values[0]);

	if (strcmp(queue_name_lower(registered), search->lower) != 0)
		return false;
	search->found = registered;
	return true;
}

/*
 * The name the queue is registered under in pgmq.meta, for any spelling of
 * it (two registered names never differ in case alone); the name itself when
 * there is no row.
 */
char *
queue_registered_name(const char *name)
{
	static const char *const columns[] = {"queue_name"};
	SpellingSearch search = {.lower = queue_name_lower(name), .found = NULL};

	(void) catalog_scan("meta", columns, lengthof(columns), spelling_matches, &search);
	return search.found ? search.found : pstrdup(name);
}

/* Runs a catalog statement, with the queue name as $1 when name is given. */
static void
catalog_exec(const char *sql, const char *name, int expected_rc)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	int			rc;

	if (name == NULL)
		rc = SPI_execute(sql, false, 0);
	else
	{
		values[0] = CStringGetTextDatum(name);
		rc = SPI_execute_with_args(sql, 1, argtypes, values, NULL, false, 0);
	}
	if (rc != expected_rc)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("queue catalog statement failed"),
				 errdetail("%s: %s", SPI_result_code_string(rc), sql)));
}

/*
 * pgmq's lock key, so queue_ext and tools written for pgmq serialise alike;
 * and the key of the lowercased name, so that two spellings of one name
 * (which would share tables) serialise too.
 */
static void
lock_queue_name(const char *name)
{
	catalog_exec("SELECT pg_catalog.pg_advisory_xact_lock("
				 "pg_catalog.hashtext('pgmq.queue_' OPERATOR(pg_catalog.||) $1)), "
				 "pg_catalog.pg_advisory_xact_lock("
				 "pg_catalog.hashtext('pgmq.queue_' OPERATOR(pg_catalog.||) pg_catalog.lower($1)))",
				 name, SPI_OK_SELECT);
}

/*
 * Two spellings of one name ("Jobs", "jobs") share one pair of tables; pgmq
 * would register both and let either drop the other's data. Refuse instead.
 */
static void
reject_other_spelling(const char *name)
{
	catalog_exec("SELECT queue_name::pg_catalog.text FROM pgmq.meta "
				 "WHERE pg_catalog.lower(queue_name::pg_catalog.text) OPERATOR(pg_catalog.=) pg_catalog.lower($1) "
				 "AND queue_name::pg_catalog.text OPERATOR(pg_catalog.<>) $1",
				 name, SPI_OK_SELECT);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_TABLE),
				 errmsg("queue \"%s\" would share its tables with queue \"%s\"",
						name, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1)),
				 errdetail("Queue tables are named after the lowercased queue name."),
				 errhint("Use the existing queue's name, or choose a name that differs in more than case.")));
}

/*
 * A tenant's caller asking for a name held by someone else (another tenant,
 * the operator, or the same tenant under another spelling) learns only that
 * the name is unavailable.
 */
static void
reject_unavailable_name(const char *name, int64 tenant_id)
{
	QueueEntry *existing = queue_find(name);

	if (existing == NULL)
		return;
	if (existing->tenant_id == tenant_id && strcmp(existing->registered_name, name) == 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_DUPLICATE_OBJECT),
			 errmsg("queue name \"%s\" is unavailable", name),
			 errhint("Choose another name.")));
}

/* Whether a table has reloptions set (queue_ext's queue tables always do). */
static bool
has_storage_settings(Oid relid)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	bool		isnull = true;

	if (HeapTupleIsValid(tuple))
	{
		(void) SysCacheGetAttr(RELOID, tuple, Anum_pg_class_reloptions, &isnull);
		ReleaseSysCache(tuple);
	}
	return !isnull;
}

/* The OID of pgmq.<name>(argtype), or InvalidOid. */
static Oid
get_func_oid_if_exists(const char *name, Oid argtype)
{
	Oid			nsp = get_namespace_oid(QUEUE_SCHEMA, true);
	oidvector  *args = buildoidvector(&argtype, 1);

	if (!OidIsValid(nsp))
		return InvalidOid;
	return GetSysCacheOid3(PROCNAMEARGSNSP, Anum_pg_proc_oid, CStringGetDatum(name),
						   PointerGetDatum(args), ObjectIdGetDatum(nsp));
}

/*
 * A queue's tables, schema-qualified and quoted: the queue table and the
 * archive, and, for a partitioned queue, every partition of them, which a
 * direct query could name instead of the parent. Partitions of the queue
 * table that lack queue_ext's storage settings (pg_partman made them) get
 * them on the way. SPI is connected.
 */
static List *
queue_tables_with_partitions(const QueueNames *names)
{
	const char *parents[2] = {names->queue_table, names->archive_table};
	Oid			nsp = get_namespace_oid(QUEUE_SCHEMA, false);
	List	   *tables = NIL;

	for (int i = 0; i < 2; i++)
	{
		Oid			relid = get_relname_relid(parents[i], nsp);
		ListCell   *lc;

		tables = lappend(tables, qualified_identifier(parents[i]));
		if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE)
			continue;
		foreach(lc, find_all_inheritors(relid, NoLock, NULL))
		{
			Oid			part = lfirst_oid(lc);
			char	   *table;

			if (part == relid)
				continue;
			table = quote_qualified_identifier(get_namespace_name(get_rel_namespace(part)), get_rel_name(part));
			tables = lappend(tables, table);
			if (i == 0 && get_rel_relkind(part) == RELKIND_RELATION && !has_storage_settings(part))
				catalog_exec(psprintf("ALTER TABLE %s SET (" QUEUE_TABLE_OPTIONS ")", table), NULL, SPI_OK_UTILITY);
		}
	}
	return tables;
}

/*
 * Row-level security on a queue's tables, for direct SQL (queue_ext's own
 * code runs as the owner and checks in tenancy.c): the restrictive policy
 * shows rows only to callers pgmq.queue_readable() lets read the queue
 * (consume or manage), and no permissive policy a user adds can widen it.
 * The permissive one lets table privileges decide the rest, as without RLS.
 * The roles of a queue's tenant get SELECT on its tables; nobody else does,
 * so a role that bypasses row-level security sees nothing it was not given.
 */
static void
protect_queue_tables(const char *name, const QueueNames *names, bool tenant_queue)
{
	List	   *tables = queue_tables_with_partitions(names);
	ListCell   *lc;
	const char *policies[2][2] = {
		{"queue_ext_rows", "AS PERMISSIVE USING (true)"},
		{"queue_ext_tenant", psprintf("AS RESTRICTIVE USING (pgmq.queue_readable(%s)) WITH CHECK (pgmq.queue_readable(%s))",
									  quote_literal_cstr(name), quote_literal_cstr(name))},
	};

	/* Before ALTER EXTENSION UPDATE to 0.4.0 there is no queue_readable; the update protects the queue. */
	if (!OidIsValid(get_func_oid_if_exists("queue_readable", TEXTOID)))
		return;
	foreach(lc, tables)
	{
		const char *table = lfirst(lc);

		catalog_exec(psprintf("ALTER TABLE %s ENABLE ROW LEVEL SECURITY", table), NULL, SPI_OK_UTILITY);
		/* One at a time: DROP EXTENSION ... CASCADE drops only the policy that calls queue_readable. */
		for (int j = 0; j < 2; j++)
		{
			catalog_exec(psprintf("SELECT 1 FROM pg_catalog.pg_policy WHERE polrelid OPERATOR(pg_catalog.=) "
								  "%s::pg_catalog.regclass AND polname OPERATOR(pg_catalog.=) '%s'",
								  quote_literal_cstr(table), policies[j][0]),
						 NULL, SPI_OK_SELECT);
			if (SPI_processed == 0)
				catalog_exec(psprintf("CREATE POLICY %s ON %s %s", policies[j][0], table, policies[j][1]),
							 NULL, SPI_OK_UTILITY);
		}
	}
	/* SELECT for the roles of the queue's tenant, whom the policy lets see its rows. */
	if (tenant_queue)
		catalog_exec("SELECT pgmq._grant_queue_reads($1)", name, SPI_OK_SELECT);
}

/*
 * queue_ext runs as the extension owner, so a queue table owned by anyone
 * else could make the owner run that role's triggers, defaults or index
 * expressions: a table made in advance under a queue's name is refused, not
 * adopted.
 */
static void
reject_foreign_tables(const QueueNames *names)
{
	const char *tables[2] = {names->queue_table, names->archive_table};
	Oid			nsp = get_namespace_oid(QUEUE_SCHEMA, false);

	for (int i = 0; i < 2; i++)
	{
		HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(get_relname_relid(tables[i], nsp)));
		Oid			owner;
		bool		is_partition;

		if (!HeapTupleIsValid(tuple))
			continue;
		owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
		is_partition = ((Form_pg_class) GETSTRUCT(tuple))->relispartition;
		ReleaseSysCache(tuple);
		/* pg_partman names partitions q_<name>_p0, ...: a queue named <name>_p0 may not take one over. */
		if (is_partition)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_TABLE),
					 errmsg("table \"%s\" exists as a partition of another table", tables[i]),
					 errhint("Choose another queue name.")));
		if (owner != extension_owner())
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_TABLE),
					 errmsg("table \"%s\" exists and does not belong to the extension owner", tables[i]),
					 errdetail("Queue tables must be owned by the owner of extension queue_ext."),
					 errhint("Drop or rename the table, or give it to the extension owner.")));
	}
}

/* What create_partitioned asks for: pg_partman's interval, retention and premake. */
typedef struct PartmanSetup
{
	const char *interval;
	const char *retention;		/* NULL: no retention */
	int32		premake;
} PartmanSetup;

static void
create_queue(const char *name, bool unlogged, const PartmanSetup *partitioned)
{
	QueueNames	names;
	const char *queue_table;
	const char *archive_table;
	const Tenant *tenant;
	int64		tenant_id;
	bool		made;

	queue_names_resolve(name, &names);
	queue_table = qualified_identifier(names.queue_table);
	archive_table = qualified_identifier(names.archive_table);
	/*
	 * Creating a queue one can already use changes nothing, as in pgmq, and
	 * needs no right to create: an application may call create at startup.
	 */
	{
		QueueEntry *existing = queue_find(name);

		if (existing == NULL || strcmp(existing->registered_name, name) != 0 ||
			!queue_visible_to_caller(existing))
			check_may_create_queue(name);
	}
	tenant = caller_tenant();
	tenant_id = tenant->id;

	spi_connect_or_error();
	lock_queue_name(name);
	if (tenant_id != 0)
		reject_unavailable_name(name, tenant_id);
	reject_other_spelling(name);
	reject_foreign_tables(&names);

	if (partitioned != NULL)
		catalog_exec(psprintf("SELECT pgmq._make_partitioned_tables($1, %s, %s, %d)",
							  quote_literal_cstr(partitioned->interval),
							  partitioned->retention ? quote_literal_cstr(partitioned->retention) : "NULL",
							  partitioned->premake),
					 name, SPI_OK_SELECT);
	else
	catalog_exec(psprintf("CREATE %s TABLE IF NOT EXISTS %s ("
						  " msg_id bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY,"
						  " read_ct integer DEFAULT 0 NOT NULL,"
						  " enqueued_at timestamp with time zone DEFAULT pg_catalog.now() NOT NULL,"
						  " last_read_at timestamp with time zone,"
						  " vt timestamp with time zone NOT NULL,"
						  " message pg_catalog.jsonb,"
						  " headers pg_catalog.jsonb"
						  ") WITH (" QUEUE_TABLE_OPTIONS ")",
						  unlogged ? "UNLOGGED" : "", queue_table), NULL,
				 SPI_OK_UTILITY);
	if (partitioned == NULL)
	catalog_exec(psprintf("CREATE TABLE IF NOT EXISTS %s ("
						  " msg_id bigint PRIMARY KEY,"
						  " read_ct integer DEFAULT 0 NOT NULL,"
						  " enqueued_at timestamp with time zone DEFAULT pg_catalog.now() NOT NULL,"
						  " last_read_at timestamp with time zone,"
						  " archived_at timestamp with time zone DEFAULT pg_catalog.now() NOT NULL,"
						  " vt timestamp with time zone NOT NULL,"
						  " message pg_catalog.jsonb,"
						  " headers pg_catalog.jsonb"
						  ")", archive_table), NULL,
				 SPI_OK_UTILITY);
	if (partitioned == NULL)
		catalog_exec(psprintf("CREATE INDEX IF NOT EXISTS %s ON %s (archived_at)",
							  quote_identifier(names.archive_index), archive_table), NULL,
					 SPI_OK_UTILITY);
	catalog_exec(psprintf("INSERT INTO pgmq.meta (queue_name, is_partitioned, is_unlogged) "
						  "VALUES ($1, %s, %s) ON CONFLICT DO NOTHING",
						  partitioned ? "true" : "false", unlogged ? "true" : "false"),
				 name, SPI_OK_INSERT);
	made = SPI_processed > 0;
	if (made)
	{
		if (tenant_id != 0)
			catalog_exec(psprintf("INSERT INTO pgmq.queue_tenants (queue_name, tenant_id) "
								  "VALUES ($1, " INT64_FORMAT ")", tenant_id),
						 name, SPI_OK_INSERT);
		protect_queue_tables(name, &names, tenant_id != 0);
	}
	SPI_finish();
	queue_cache_forget(name);
	if (made)
		audit_record("queue created", tenant_id, name, NULL);
}

PG_FUNCTION_INFO_V1(queue_ext_format_table_name);
PG_FUNCTION_INFO_V1(queue_ext_validate_queue_name);
PG_FUNCTION_INFO_V1(queue_ext_detach_archive);

/* create(queue_name), create_non_partitioned(queue_name) */
QUEUE_EXT_ENTRY(queue_ext_create)
{
	create_queue(queue_name_arg(fcinfo, 0), false, NULL);
	PG_RETURN_VOID();
}

/* create_unlogged(queue_name): the queue table is unlogged, the archive is not */
QUEUE_EXT_ENTRY(queue_ext_create_unlogged)
{
	create_queue(queue_name_arg(fcinfo, 0), true, NULL);
	PG_RETURN_VOID();
}

/*
 * create_partitioned(queue_name, partition_interval, retention_interval,
 * premake): queue and archive partitioned by pg_partman, by msg_id for a
 * number of messages per partition, by time for an interval; partitions past
 * retention_interval (NULL: none) are dropped by maintenance.
 */
QUEUE_EXT_ENTRY(queue_ext_create_partitioned)
{
	PartmanSetup spec;

	reject_null_arg(fcinfo, 1, "partition_interval");
	spec.interval = text_to_cstring(PG_GETARG_TEXT_PP(1));
	spec.retention = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	spec.premake = int32_arg_not_null(fcinfo, 3, "premake");
	create_queue(queue_name_arg(fcinfo, 0), false, &spec);
	PG_RETURN_VOID();
}

/* Dropping a dead-letter queue in use would leave its queues nowhere to put dead letters. */
static void
reject_drop_of_dead_letter_queue(const char *name)
{
	char	   *users;

	/* As set_queue_options does: no change of options slips in between. SPI is connected. */
	if (OidIsValid(get_relname_relid("queue_config", get_namespace_oid(QUEUE_SCHEMA, false))))
		catalog_exec("LOCK TABLE pgmq.queue_config IN SHARE ROW EXCLUSIVE MODE", NULL, SPI_OK_UTILITY);
	users = queues_dead_lettering_into(name);

	if (users != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("cannot drop queue \"%s\": it is the dead-letter queue of %s", name, users),
				 errhint("Give those queues another dead-letter queue, or reset theirs with "
						 "pgmq.reset_queue_options(queue_name, ARRAY['dead_letter_queue']).")));
}

/* drop_queue(queue_name) -> boolean: false, with a notice, when there is no such queue */
QUEUE_EXT_ENTRY(queue_ext_drop_queue)
{
	char	   *name = queue_name_arg(fcinfo, 0);
	char	   *registered;
	QueueNames	names;
	QueueEntry *queue;
	int64		tenant_id;
	MemoryContext caller_context = CurrentMemoryContext;

	queue_names_resolve(name, &names);
	spi_connect_or_error();
	lock_queue_name(name);
	queue_cache_forget(name);
	queue = queue_find(name);
	if (queue == NULL || queue_hidden_from_caller(queue))
	{
		SPI_finish();
		ereport(NOTICE,
				(errmsg("pgmq queue `%s` does not exist", name)));
		PG_RETURN_BOOL(false);
	}
	queue_check_access(queue, NEED_MANAGE);
	tenant_id = queue->tenant_id;
	queue_cache_forget(name);
	reject_drop_of_dead_letter_queue(name);
	/* In the caller's context: the audit record below comes after SPI_finish. */
	registered = MemoryContextStrdup(caller_context, queue_registered_name(name));

	/* pg_partman's setup of a partitioned queue or archive goes first: its maintenance would look for the tables. */
	if (OidIsValid(get_func_oid_if_exists("_partman_forget", TEXTOID)))
		catalog_exec("SELECT pgmq._partman_forget($1)", registered, SPI_OK_SELECT);
	catalog_exec(psprintf("DROP TABLE IF EXISTS %s",
						  qualified_identifier(names.queue_table)), NULL,
				 SPI_OK_UTILITY);
	catalog_exec(psprintf("DROP TABLE IF EXISTS %s",
						  qualified_identifier(names.archive_table)), NULL,
				 SPI_OK_UTILITY);
	/* Any spelling: the tables just dropped belonged to the one registered. */
	if (OidIsValid(get_relname_relid("idempotency_keys", get_namespace_oid(QUEUE_SCHEMA, false))))
	{
		/* By the registered name, so the primary keys serve the deletes. */
		catalog_exec("DELETE FROM pgmq.idempotency_keys WHERE queue_name OPERATOR(pg_catalog.=) $1",
					 registered, SPI_OK_DELETE);
		catalog_exec("DELETE FROM pgmq.breaker_state WHERE queue_name OPERATOR(pg_catalog.=) $1",
					 registered, SPI_OK_DELETE);
	}
	if (OidIsValid(get_relname_relid("queue_tenants", get_namespace_oid(QUEUE_SCHEMA, false))))
	{
		catalog_exec("DELETE FROM pgmq.queue_tenants WHERE queue_name OPERATOR(pg_catalog.=) $1",
					 registered, SPI_OK_DELETE);
		catalog_exec("DELETE FROM pgmq.queue_grants WHERE queue_name OPERATOR(pg_catalog.=) $1",
					 registered, SPI_OK_DELETE);
	}
	/* A queue made again under the name starts without the old one's limits. */
	if (OidIsValid(get_relname_relid("rate_limits", get_namespace_oid(QUEUE_SCHEMA, false))))
	{
		catalog_exec("DELETE FROM pgmq.rate_limits WHERE queue_name OPERATOR(pg_catalog.=) $1",
					 registered, SPI_OK_DELETE);
		catalog_exec("DELETE FROM pgmq.throughput_history WHERE queue_name OPERATOR(pg_catalog.=) $1",
					 registered, SPI_OK_DELETE);
		catalog_exec("DELETE FROM pgmq.throughput_marks WHERE queue_name OPERATOR(pg_catalog.=) $1",
					 registered, SPI_OK_DELETE);
	}
	catalog_exec("DELETE FROM pgmq.meta WHERE pg_catalog.lower(queue_name::pg_catalog.text) "
				 "OPERATOR(pg_catalog.=) pg_catalog.lower($1)", name, SPI_OK_DELETE);
	SPI_finish();
	audit_record("queue dropped", tenant_id, registered, NULL);
	PG_RETURN_BOOL(true);
}

/* purge_queue(queue_name) -> bigint: how many messages were removed */
QUEUE_EXT_ENTRY(queue_ext_purge_queue)
{
	QueueEntry *queue = queue_lookup_arg(fcinfo, 0, NEED_MANAGE);
	const char *queue_table = qualified_identifier(queue->names.queue_table);
	bool		isnull;
	int64		count;

	spi_connect_or_error();
	/* Lock first: a count taken before the lock could miss sends, and two
	 * purges upgrading their locks would deadlock. */
	catalog_exec(psprintf("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", queue_table), NULL, SPI_OK_UTILITY);
	catalog_exec(psprintf("SELECT pg_catalog.count(*) FROM %s", queue_table), NULL, SPI_OK_SELECT);
	count = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	catalog_exec(psprintf("TRUNCATE TABLE %s", queue_table), NULL, SPI_OK_UTILITY);
	SPI_finish();
	audit_record("queue purged", queue->tenant_id, queue->registered_name,
				 psprintf("{\"messages\": " INT64_FORMAT "}", count));
	PG_RETURN_INT64(count);
}

/* format_table_name(queue_name, prefix) -> text, e.g. ('Jobs', 'q') -> 'q_jobs' */
Datum
queue_ext_format_table_name(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *prefix = text_to_cstring(PG_GETARG_TEXT_PP(1));

	PG_RETURN_TEXT_P(cstring_to_text(queue_table_name(name, prefix)));
}

/* validate_queue_name(queue_name): the length rule, as pgmq checks it */
Datum
queue_ext_validate_queue_name(PG_FUNCTION_ARGS)
{
	queue_name_check_length(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_VOID();
}

/* detach_archive(queue_name): a deprecated no-op in pgmq 1.13, kept for callers */
Datum
queue_ext_detach_archive(PG_FUNCTION_ARGS)
{
	queue_name_check_chars(queue_name_arg(fcinfo, 0));
	ereport(WARNING,
			(errmsg("detach_archive(queue_name) is deprecated and is a no-op"),
			 errdetail("Archive tables are not extension members, so pg_dump keeps them and DROP EXTENSION leaves them.")));
	PG_RETURN_VOID();
}

/*
 * _protect_queue_tables(queue_name): row-level security on a queue made
 * before queue_ext had tenants (the upgrade script runs it for each queue).
 */
QUEUE_EXT_ENTRY(queue_ext_protect_queue_tables)
{
	QueueEntry *queue;

	require_operator("pgmq._protect_queue_tables()");
	queue = queue_find(queue_name_arg(fcinfo, 0));
	if (queue == NULL)
		PG_RETURN_VOID();		/* a catalog row whose tables were dropped by hand */
	spi_connect_or_error();
	protect_queue_tables(queue->registered_name, &queue->names, queue->tenant_id != 0);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * Raises unless a queue table is safe to work on as the extension owner: owned
 * by the owner, a plain table without rules, children, forced row-level
 * security or triggers of its own (queue_ext's notify trigger aside), which
 * would otherwise run, as the owner, code its former owner wrote. The update
 * to 0.4.0 gives older queues to the owner; this catches what it cannot undo.
 * Before that update (no pgmq.tenants yet) nothing is checked.
 */
void
check_queue_table_safe(Oid relid)
{
	check_table_safe(relid, false);
}

/* check_queue_table_safe, for a queue table or (partition true) one of its partitions. */
static void
check_table_safe(Oid relid, bool partition)
{
	HeapTuple	tuple;
	Form_pg_class form;
	Relation	triggers;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	trigger;
	char	   *problem = NULL;
	bool		partitioned;

	if (!OidIsValid(relid) ||
		!OidIsValid(get_relname_relid("tenants", get_namespace_oid(QUEUE_SCHEMA, false))))
		return;
	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tuple))
		return;
	form = (Form_pg_class) GETSTRUCT(tuple);
	partitioned = form->relkind == RELKIND_PARTITIONED_TABLE;
	if (form->relowner != extension_owner())
		problem = "it does not belong to the extension owner";
	else if (form->relkind != RELKIND_RELATION && !partitioned)
		problem = "it is not a plain table";
	else if (form->relhasrules)
		problem = "it has rules";
	else if (form->relhassubclass && !partitioned)
		problem = "it has child tables";
	else if (form->relispartition && !partition)
		problem = "it is a partition of another table";
	else if (form->relforcerowsecurity)
		problem = "it forces row-level security";
	ReleaseSysCache(tuple);

	triggers = table_open(TriggerRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_trigger_tgrelid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(triggers, TriggerRelidNameIndexId, true, NULL, 1, &key);
	while (problem == NULL && (trigger = systable_getnext(scan)) != NULL)
	{
		Form_pg_trigger tg = (Form_pg_trigger) GETSTRUCT(trigger);
		char	   *function = get_func_name(tg->tgfoid);

		if (!tg->tgisinternal &&
			!(function != NULL && strcmp(function, "notify_queue_listeners") == 0 &&
			  get_func_namespace(tg->tgfoid) == get_namespace_oid(QUEUE_SCHEMA, false)))
			problem = psprintf("it has trigger \"%s\"", NameStr(tg->tgname));
	}
	systable_endscan(scan);
	table_close(triggers, AccessShareLock);

	/* A partitioned queue's partitions hold its rows: each must pass too. */
	if (problem == NULL && partitioned)
	{
		ListCell   *lc;

		foreach(lc, find_inheritance_children(relid, NoLock))
			check_table_safe(lfirst_oid(lc), true);
	}
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("queue table \"%s\" cannot be used: %s", get_rel_name(relid), problem),
				 errdetail("queue_ext works on queue tables as the extension owner, which would run code the table carries."),
				 errhint("Give the table to the extension owner and remove what it carries.")));
}
