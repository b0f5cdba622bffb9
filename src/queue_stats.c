/*
 * queue_stats.c
 *	  pgmq.queue_stats: per queue, how many messages it holds and in which
 *	  state, answered without counting the rows of large queues.
 *
 * Depth, archived rows and the dead-letter queue's depth come from the gauges
 * (gauges.c), live; the oldest and newest message from the two ends of the
 * primary key. How the messages split into visible, in flight, delayed,
 * retrying and stale changes with the clock alone, with no write to notice,
 * and there is no index on vt to count by (one would end HOT updates on
 * every read), so the split is counted: on the spot for a queue of at most
 * LIVE_COUNT_LIMIT messages (a millisecond or two), and otherwise by
 * maintenance's census step, whose result the view shows with its time
 * (states_at). Where a gauge is unknown (no preload, after a restart until
 * maintenance recounted it) the row is counted on the spot, as pgmq.metrics
 * does, and depth_from says 'count'.
 */
#include "queue_ext.h"

#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

/* Larger queues take their state split from the census. */
#define LIVE_COUNT_LIMIT 10000

/* A message enqueued this long ago is stale. */
#define STALE_AFTER_USECS (INT64CONST(3600) * USECS_PER_SEC)

/* Columns of pgmq._queue_stats(), in order. */
enum
{
	S_QUEUE_NAME,
	S_DEPTH,
	S_VISIBLE,
	S_IN_FLIGHT,
	S_DELAYED,
	S_RETRYING,
	S_STALE,
	S_DEAD_LETTERED,
	S_ARCHIVED,
	S_OLDEST_AGE,
	S_NEWEST_AGE,
	S_DEPTH_FROM,
	S_STATES_AT,
	S_SCRAPE_TIME,
	S_NCOLUMNS
};

/* The states' columns, in the order QP_STATE_COUNTS and pgmq.queue_census give them. */
static const int state_columns[] = {S_VISIBLE, S_IN_FLIGHT, S_DELAYED, S_RETRYING, S_STALE};

#define NSTATES lengthof(state_columns)

/* Counts queue's messages per state at now; SPI connected. Returns all of them. */
static int64
count_states(QueueEntry *queue, TimestampTz now, int64 states[NSTATES])
{
	Datum		args[2] = {TimestampTzGetDatum(now), TimestampTzGetDatum(now - STALE_AFTER_USECS)};
	bool		isnull;

	(void) queue_execute(queue, QP_STATE_COUNTS, args, NULL, NULL);
	for (int i = 0; i < (int) NSTATES; i++)
		states[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 2, &isnull));
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* Rows of queue (archive false) or of its archive: the gauge, or a count when it is unknown. */
static int64
table_rows(QueueEntry *queue, bool archive)
{
	int64		rows;
	bool		isnull;

	if (gauge_rows(archive ? queue->archive_relid : queue->queue_relid, &rows))
		return rows;
	(void) queue_execute(queue, archive ? QP_ARCHIVE_ROWS : QP_QUEUE_ROWS, NULL, NULL, NULL);
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* The census of queue, if maintenance took one: fills states and returns true with its time. */
static bool
census_states(QueueEntry *queue, int64 states[NSTATES], TimestampTz *at)
{
	static SPIPlanPtr plan = NULL;
	Datum		name = CStringGetTextDatum(queue->registered_name);
	bool		isnull;

	if (plan == NULL)
	{
		Oid			argtypes[1] = {TEXTOID};

		plan = spi_prepare_kept("SELECT c.counted_at, c.visible, c.in_flight, c.delayed, c.retrying, c.stale"
								" FROM pgmq.queue_census c WHERE c.queue_name = $1",
								1, argtypes);
	}
	if (SPI_execute_plan(plan, &name, NULL, true, 1) != SPI_OK_SELECT)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not read the census of queue \"%s\"", queue->names.name)));
	if (SPI_processed == 0)
		return false;
	*at = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	for (int i = 0; i < (int) NSTATES; i++)
		states[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 2, &isnull));
	return true;
}

static Datum
age_seconds(TimestampTz now, TimestampTz then)
{
	return Int32GetDatum((int32) Min((now - then) / USECS_PER_SEC, (int64) PG_INT32_MAX));
}

/* One row of pgmq._queue_stats() into rsinfo's result; SPI connected. */
static void
put_stats_row(QueueEntry *queue, void *arg)
{
	ReturnSetInfo *rsinfo = arg;
	Datum		values[S_NCOLUMNS];
	bool		nulls[S_NCOLUMNS] = {false};
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz states_at = now;
	int64		states[NSTATES];
	int64		depth;
	bool		depth_known = gauge_rows(queue->queue_relid, &depth);
	bool		have_states = true;

	if (!depth_known)
		depth = count_states(queue, now, states);
	else if (depth <= LIVE_COUNT_LIMIT)
		(void) count_states(queue, now, states);
	else
		have_states = census_states(queue, states, &states_at);

	values[S_QUEUE_NAME] = CStringGetTextDatum(queue->registered_name);
	values[S_DEPTH] = Int64GetDatum(depth);
	for (int i = 0; i < (int) NSTATES; i++)
	{
		values[state_columns[i]] = Int64GetDatum(have_states ? states[i] : 0);
		nulls[state_columns[i]] = !have_states;
	}
	values[S_STATES_AT] = TimestampTzGetDatum(states_at);
	nulls[S_STATES_AT] = !have_states;

	/* Only a dead-letter queue the caller may see, of the queue's own tenant (it may have been made again by another). */
	nulls[S_DEAD_LETTERED] = true;
	if (queue->options.has_dead_letter_queue)
	{
		QueueEntry *dead_letter_queue = queue_find(queue->options.dead_letter.name);

		if (dead_letter_queue != NULL && dead_letter_queue->tenant_id == queue->tenant_id &&
			queue_visible_to_caller(dead_letter_queue))
		{
			values[S_DEAD_LETTERED] = Int64GetDatum(table_rows(dead_letter_queue, false));
			nulls[S_DEAD_LETTERED] = false;
		}
	}
	values[S_ARCHIVED] = Int64GetDatum(table_rows(queue, true));

	(void) queue_execute(queue, QP_AGE_ENDS, NULL, NULL, NULL);
	for (int end = 0; end < 2; end++)
	{
		bool		isnull;
		Datum		enqueued_at = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, end + 1, &isnull);
		int			column = end == 0 ? S_OLDEST_AGE : S_NEWEST_AGE;

		nulls[column] = isnull;
		if (!isnull)
			values[column] = age_seconds(now, DatumGetTimestampTz(enqueued_at));
	}
	values[S_DEPTH_FROM] = CStringGetTextDatum(depth_known ? "gauge" : "count");
	values[S_SCRAPE_TIME] = TimestampTzGetDatum(now);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/* _queue_stats() -> setof: every queue the caller may see (the view pgmq.queue_stats) */
QUEUE_EXT_ENTRY(queue_ext_queue_stats)
{
	srf_begin(fcinfo);
	spi_connect_or_error();
	for_each_visible_queue(put_stats_row, fcinfo->resultinfo);
	SPI_finish();
	return (Datum) 0;
}

/*
 * _census_queue(queue_name) -> bigint: maintenance's count of a large
 * queue's states into pgmq.queue_census; 1 when it counted, 0 for a queue the
 * view counts itself.
 */
QUEUE_EXT_ENTRY(queue_ext_census_queue)
{
	static SPIPlanPtr plan = NULL;
	QueueEntry *queue = queue_lookup_arg(fcinfo, 0, NEED_NOTHING);
	TimestampTz now = GetCurrentTimestamp();
	int64		states[NSTATES];
	int64		depth;
	Datum		values[2 + NSTATES];

	if (!gauge_rows(queue->queue_relid, &depth) || depth <= LIVE_COUNT_LIMIT)
		PG_RETURN_INT64(0);

	spi_connect_or_error();
	(void) count_states(queue, now, states);
	if (plan == NULL)
	{
		Oid			argtypes[2 + NSTATES] = {TEXTOID, TIMESTAMPTZOID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID};

		plan = spi_prepare_kept("INSERT INTO pgmq.queue_census AS c"
								" (queue_name, counted_at, visible, in_flight, delayed, retrying, stale)"
								" VALUES ($1, $2, $3, $4, $5, $6, $7)"
								" ON CONFLICT (queue_name) DO UPDATE SET counted_at = EXCLUDED.counted_at,"
								" visible = EXCLUDED.visible, in_flight = EXCLUDED.in_flight,"
								" delayed = EXCLUDED.delayed, retrying = EXCLUDED.retrying, stale = EXCLUDED.stale",
								2 + NSTATES, argtypes);
	}
	values[0] = CStringGetTextDatum(queue->registered_name);
	values[1] = TimestampTzGetDatum(now);
	for (int i = 0; i < (int) NSTATES; i++)
		values[2 + i] = Int64GetDatum(states[i]);
	if (SPI_execute_plan(plan, values, NULL, false, 0) != SPI_OK_INSERT)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not record the census of queue \"%s\"", queue->names.name)));
	SPI_finish();
	PG_RETURN_INT64(1);
}

/*
 * _recount_gauges(queue_name) -> bigint: maintenance's recount of the queue's
 * and its archive's gauges where they are unknown; how many it set.
 */
QUEUE_EXT_ENTRY(queue_ext_recount_gauges)
{
	QueueEntry *queue = queue_lookup_arg(fcinfo, 0, NEED_NOTHING);
	int64		recounted = 0;

	Oid			tables[2] = {queue->queue_relid, queue->archive_relid};

	if (!shared_state_ready())
		PG_RETURN_INT64(0);
	spi_connect_or_error();
	for (int i = 0; i < 2; i++)
	{
		/* A partitioned table's gauge is its partitions'. */
		List	   *parts = get_rel_relkind(tables[i]) == RELKIND_PARTITIONED_TABLE
			? find_all_inheritors(tables[i], NoLock, NULL) : list_make1_oid(tables[i]);
		ListCell   *lc;

		foreach(lc, parts)
			if (get_rel_relkind(lfirst_oid(lc)) == RELKIND_RELATION && !gauge_known(lfirst_oid(lc)) &&
				gauge_recount(get_rel_name(lfirst_oid(lc))))
				recounted++;
	}
	SPI_finish();
	PG_RETURN_INT64(recounted);
}
