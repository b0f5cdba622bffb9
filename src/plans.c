/*
 * plans.c
 *	  The SQL behind every hot-path operation: prepared once per queue, built
 *	  with a plan shape that does not depend on statistics, and run.
 *
 * Each QueuePlanKind has one statement template. queue_plan() fills in the
 * queue's quoted, schema-qualified identifiers, prepares it with SPI, keeps it
 * in the queue's cache entry and hands back the same plan on every later call;
 * values only ever travel as $n parameters. Nothing is re-planned per call.
 *
 * Plans are generic (no call pays for planning) and must not depend on table
 * statistics: a queue is empty when its plans are first built and may hold
 * millions of rows an hour later, and a plan costed for ten rows (a seq scan,
 * a hash join) is a disaster at a million. So every hot-path plan is built
 * with seq and bitmap scans disabled, which leaves the planner one sane shape:
 * walk the primary key. Reads pick ids in msg_id order in a sub-select and
 * touch the rows by "msg_id = ANY(ARRAY(...))", an index lookup whatever the
 * limit. The plan cache may rebuild a plan after an invalidation, at the next
 * execution, under the caller's settings; queue_plan() notices a plan that
 * needs building, or was rebuilt by someone else (cheap checks of validity,
 * generation and search_path on every call), and builds it itself under the
 * index-only settings.
 *
 * Time is passed in, not read inside the statement: the caller takes
 * clock_timestamp() once, so "visible now" and "invisible until now + vt" in
 * one read agree with each other, as they do in pgmq.
 *
 * Reads and pops also start at the queue's scan hint (scan_hint.c), so they
 * step over the dead entries deletes leave at the head of the index only once.
 *
 * Every function in a template is schema-qualified: the plan cache re-parses
 * a statement under the caller's search_path, and an unqualified function
 * whose pg_catalog version needs a cast (unnest(anyarray)) would lose to an
 * exact match planted earlier in it. Operators here all have exact matches in
 * pg_catalog, which is searched first unless a caller lists it later.
 * QP_FIRST_LIVE_ID is not read-only on purpose: SPI then takes a fresh
 * snapshot for it, which scan_hint.c needs (a read-only statement would run
 * on the caller's, possibly seconds old in read_with_poll).
 *
 * Template placeholders, replaced by quoted qualified names: {queue} the queue
 * table, {archive} its archive, {sequence} its msg_id sequence.
 */
#include "queue_ext.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi_priv.h"
#include "executor/tstoreReceiver.h"
#include "funcapi.h"
#include "nodes/params.h"
#include "utils/guc.h"
#include "utils/plancache.h"
#include "utils/resowner.h"
#include "lib/stringinfo.h"

#define MESSAGE_COLUMNS "msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers"
#define MESSAGE_COLUMNS_M "m.msg_id, m.read_ct, m.enqueued_at, m.last_read_at, m.vt, m.message, m.headers"

typedef struct PlanTemplate
{
	const char *sql;
	int			nargs;
	Oid			argtypes[5];
	bool		index_paths_only;	/* plan with seq and bitmap scans disabled */
	bool		read_only;
	int			expected_rc;	/* what SPI returns when the statement ran */
	const char *operation;		/* for error messages */
} PlanTemplate;

static const PlanTemplate plan_templates[QP_COUNT] = {
	[QP_SEND] = {
		"INSERT INTO {queue} (vt, message, headers) VALUES ($1, $2, $3) RETURNING msg_id",
		3, {TIMESTAMPTZOID, JSONBOID, JSONBOID}, true, false,
		SPI_OK_INSERT_RETURNING, "send"
	},
	[QP_SEND_BATCH] = {
		"INSERT INTO {queue} (vt, message, headers) "
		"SELECT $1, b.message, b.headers "
		"FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3)) AS b(message, headers) "
		"RETURNING msg_id",
		3, {TIMESTAMPTZOID, JSONBARRAYOID, JSONBARRAYOID}, true, false,
		SPI_OK_INSERT_RETURNING, "send_batch"
	},
	[QP_READ] = {
		"UPDATE {queue} m SET vt = $3, read_ct = m.read_ct + 1, last_read_at = $2 "
		"WHERE m.msg_id = ANY(ARRAY("
		" SELECT msg_id FROM {queue} WHERE msg_id >= $4 AND vt <= $2"
		" ORDER BY msg_id LIMIT $1 FOR UPDATE SKIP LOCKED)) "
		"RETURNING " MESSAGE_COLUMNS_M,
		4, {INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID}, true, false,
		SPI_OK_UPDATE_RETURNING, "read"
	},
	[QP_READ_CONDITIONAL] = {
		"UPDATE {queue} m SET vt = $3, read_ct = m.read_ct + 1, last_read_at = $2 "
		"WHERE m.msg_id = ANY(ARRAY("
		" SELECT msg_id FROM {queue} WHERE msg_id >= $4 AND vt <= $2 AND message @> $5"
		" ORDER BY msg_id LIMIT $1 FOR UPDATE SKIP LOCKED)) "
		"RETURNING " MESSAGE_COLUMNS_M,
		5, {INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID, JSONBOID}, true, false,
		SPI_OK_UPDATE_RETURNING, "read"
	},
	[QP_POP] = {
		"DELETE FROM {queue} m "
		"WHERE m.msg_id = ANY(ARRAY("
		" SELECT msg_id FROM {queue} WHERE msg_id >= $3 AND vt <= $2"
		" ORDER BY msg_id LIMIT $1 FOR UPDATE SKIP LOCKED)) "
		"RETURNING " MESSAGE_COLUMNS_M,
		3, {INT8OID, TIMESTAMPTZOID, INT8OID}, true, false,
		SPI_OK_DELETE_RETURNING, "pop"
	},
	[QP_SET_VT_ONE] = {
		"UPDATE {queue} SET vt = $1 WHERE msg_id = $2 RETURNING " MESSAGE_COLUMNS,
		2, {TIMESTAMPTZOID, INT8OID}, true, false,
		SPI_OK_UPDATE_RETURNING, "set_vt"
	},
	[QP_SET_VT_MANY] = {
		"UPDATE {queue} SET vt = $1 WHERE msg_id = ANY($2) RETURNING " MESSAGE_COLUMNS,
		2, {TIMESTAMPTZOID, INT8ARRAYOID}, true, false,
		SPI_OK_UPDATE_RETURNING, "set_vt"
	},
	[QP_DELETE_ONE] = {
		"DELETE FROM {queue} WHERE msg_id = $1",
		1, {INT8OID}, true, false,
		SPI_OK_DELETE, "delete"
	},
	[QP_DELETE_MANY] = {
		"DELETE FROM {queue} WHERE msg_id = ANY($1) RETURNING msg_id",
		1, {INT8ARRAYOID}, true, false,
		SPI_OK_DELETE_RETURNING, "delete"
	},
	[QP_ARCHIVE_ONE] = {
		"WITH gone AS (DELETE FROM {queue} WHERE msg_id = $1 RETURNING " MESSAGE_COLUMNS ") "
		"INSERT INTO {archive} (" MESSAGE_COLUMNS ") SELECT " MESSAGE_COLUMNS " FROM gone",
		1, {INT8OID}, true, false,
		SPI_OK_INSERT, "archive"
	},
	[QP_ARCHIVE_MANY] = {
		"WITH gone AS (DELETE FROM {queue} WHERE msg_id = ANY($1) RETURNING " MESSAGE_COLUMNS ") "
		"INSERT INTO {archive} (" MESSAGE_COLUMNS ") SELECT " MESSAGE_COLUMNS " FROM gone "
		"RETURNING msg_id",
		1, {INT8ARRAYOID}, true, false,
		SPI_OK_INSERT_RETURNING, "archive"
	},
	[QP_METRICS] = {
		"SELECT pg_catalog.count(*)::bigint,"
		" pg_catalog.count(*) FILTER (WHERE vt <= pg_catalog.now())::bigint,"
		" EXTRACT(epoch FROM (pg_catalog.now() - pg_catalog.max(enqueued_at)))::int,"
		" EXTRACT(epoch FROM (pg_catalog.now() - pg_catalog.min(enqueued_at)))::int,"
		" pg_catalog.now(),"
		" (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {sequence}) "
		"FROM {queue}",
		0, {InvalidOid}, false, true,
		SPI_OK_SELECT, "metrics"
	},
	[QP_SEQUENCE_POSITION] = {
		"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {sequence}",
		0, {InvalidOid}, false, true,
		SPI_OK_SELECT, "reading the msg_id sequence of"
	},
	[QP_FIRST_LIVE_ID] = {
		"SELECT pg_catalog.min(msg_id) FROM {queue} WHERE msg_id >= $1",
		1, {INT8OID}, true, false,
		SPI_OK_SELECT, "finding the first message of"
	},
};

/* Expands a template's placeholders into quoted, schema-qualified names. */
static char *
plan_sql(const char *template, const QueueNames *names)
{
	static const char *const placeholders[] = {"{queue}", "{archive}", "{sequence}"};
	const char *values[] = {
		qualified_identifier(names->queue_table),
		qualified_identifier(names->archive_table),
		qualified_identifier(names->sequence),
	};
	StringInfoData buf;
	const char *p = template;

	initStringInfo(&buf);
	while (*p)
	{
		size_t		i;

		for (i = 0; i < lengthof(placeholders); i++)
		{
			size_t		len = strlen(placeholders[i]);

			if (strncmp(p, placeholders[i], len) == 0)
			{
				appendStringInfoString(&buf, values[i]);
				p += len;
				break;
			}
		}
		if (i == lengthof(placeholders))
			appendStringInfoChar(&buf, *p++);
	}
	return buf.data;
}

/*
 * True unless the plan's current generic plan is the one we built: the next
 * execution would (re)build it, or the plan cache already rebuilt it under
 * the caller's settings (an invalidation can arrive while it takes its locks).
 */
static bool
generic_plan_needs_build(SPIPlanPtr plan, int built_generation)
{
	CachedPlanSource *source = linitial(plan->plancache_list);

	return !source->is_valid ||
		source->gplan == NULL || !source->gplan->is_valid ||
		source->generation != built_generation ||
		(source->search_path != NULL &&
		 !OverrideSearchPathMatchesCurrent(source->search_path));
}

/*
 * Builds the generic plan now, with only index paths open to the planner;
 * returns the plan source's generation, to recognise this plan later.
 */
static int
build_index_only_generic_plan(SPIPlanPtr plan)
{
	int			nestlevel = NewGUCNestLevel();
	CachedPlan *cplan;

	(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_bitmapscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	cplan = SPI_plan_get_cached_plan(plan);
	if (cplan != NULL)
		ReleaseCachedPlan(cplan, CurrentResourceOwner);
	AtEOXact_GUC(true, nestlevel);
	return ((CachedPlanSource *) linitial(plan->plancache_list))->generation;
}

/* Returns the queue's plan for kind, preparing it on first use. SPI must be connected. */
static SPIPlanPtr
queue_plan(QueueEntry *queue, QueuePlanKind kind)
{
	const PlanTemplate *tpl = &plan_templates[kind];
	char	   *sql;
	SPIPlanPtr	plan;

	if (queue->plans[kind] != NULL)
	{
		plan = queue->plans[kind];
		if (tpl->index_paths_only &&
			generic_plan_needs_build(plan, queue->plan_generations[kind]))
			queue->plan_generations[kind] = build_index_only_generic_plan(plan);
		return plan;
	}

	sql = plan_sql(tpl->sql, &queue->names);

	plan = SPI_prepare_cursor(sql, tpl->nargs, (Oid *) tpl->argtypes,
							  CURSOR_OPT_GENERIC_PLAN);
	if (plan == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not prepare a statement for queue \"%s\"",
						queue->names.name),
				 errdetail("SPI_prepare failed: %s.", SPI_result_code_string(SPI_result))));
	if (SPI_keepplan(plan) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not keep the prepared statement for queue \"%s\"",
						queue->names.name)));

	queue->plans[kind] = plan;
	pfree(sql);
	if (tpl->index_paths_only)
		queue->plan_generations[kind] = build_index_only_generic_plan(plan);
	return plan;
}

/*
 * Runs the queue's statement of the given kind with these parameter values
 * (nulls may be NULL: no NULLs). When rows_to is given, the rows the
 * statement returns go straight into that set-returning call's result, with
 * no intermediate copy; otherwise they are left in SPI_tuptable. Returns the
 * number of rows processed. SPI must be connected.
 *
 * Reads and pops come back in msg_id order without a sort: their plans are
 * forced to a btree scan over the sorted array of picked ids.
 */
uint64
queue_execute(QueueEntry *queue, QueuePlanKind kind, const Datum *values,
			  const bool *nulls, FunctionCallInfo rows_to)
{
	const PlanTemplate *tpl = &plan_templates[kind];
	SPIPlanPtr	plan = queue_plan(queue, kind);
	SPIExecuteOptions options = {0};
	DestReceiver *dest = NULL;
	int			rc;

	if (tpl->nargs > 0)
	{
		options.params = makeParamList(tpl->nargs);
		for (int i = 0; i < tpl->nargs; i++)
		{
			ParamExternData *param = &options.params->params[i];

			param->value = values[i];
			param->isnull = nulls != NULL && nulls[i];
			param->pflags = PARAM_FLAG_CONST;
			param->ptype = tpl->argtypes[i];
		}
	}
	options.read_only = tpl->read_only;
	if (rows_to != NULL)
	{
		ReturnSetInfo *rsinfo = (ReturnSetInfo *) rows_to->resultinfo;

		dest = CreateTuplestoreDestReceiver();
		SetTuplestoreDestReceiverParams(dest, rsinfo->setResult,
										rsinfo->econtext->ecxt_per_query_memory,
										false, NULL, NULL);
		options.dest = dest;
	}

	rc = SPI_execute_plan_extended(plan, &options);
	if (dest != NULL)
		dest->rDestroy(dest);
	if (options.params != NULL)
		pfree(options.params);	/* read_with_poll runs many statements per call */
	if (rc != tpl->expected_rc)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("%s on queue \"%s\" failed", tpl->operation, queue->names.name),
				 errdetail("SPI returned %s.", SPI_result_code_string(rc))));
	return SPI_processed;
}

void
spi_connect_or_error(void)
{
	int			rc = SPI_connect();

	if (rc != SPI_OK_CONNECT)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not connect to SPI"),
				 errdetail("%s", SPI_result_code_string(rc))));
}

/* Sets up a materialised SETOF result whose rows queue_execute() fills in. */
void
srf_begin(FunctionCallInfo fcinfo)
{
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
}
