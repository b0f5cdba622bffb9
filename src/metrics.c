/*
 * metrics.c
 *	  pgmq.metrics and pgmq.metrics_all: pgmq's metrics_result, from one
 *	  prepared aggregate per queue.
 *
 * queue_length counts every row; queue_visible_length those with vt <= now()
 * (pgmq uses now(), the transaction's start, here, where reads use
 * clock_timestamp()); total_messages is the msg_id sequence's position, so it
 * counts rolled-back sends and survives purge_queue, as pgmq defines it.
 * default_partition_length counts the rows of a partitioned queue's default
 * partition (pg_partman's, for rows no other partition covers), and is NULL
 * for queues that are not partitioned.
 */
#include "queue_ext.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

/* Column order of pgmq.metrics_result. */
enum
{
	M_QUEUE_NAME,
	M_QUEUE_LENGTH,
	M_NEWEST_AGE,
	M_OLDEST_AGE,
	M_TOTAL_MESSAGES,
	M_SCRAPE_TIME,
	M_VISIBLE_LENGTH,
	M_DEFAULT_PARTITION_LENGTH,
	M_NCOLUMNS
};

/* Builds one metrics_result row for queue; SPI must be connected. */
static HeapTuple
metrics_row(QueueEntry *queue, TupleDesc result_desc)
{
	/* The plan's output columns, in order: count, visible, newest, oldest, now, total. */
	static const int plan_column_of[M_NCOLUMNS] = {
		[M_QUEUE_LENGTH] = 1, [M_VISIBLE_LENGTH] = 2, [M_NEWEST_AGE] = 3,
		[M_OLDEST_AGE] = 4, [M_SCRAPE_TIME] = 5, [M_TOTAL_MESSAGES] = 6,
	};
	Datum		values[M_NCOLUMNS];
	bool		nulls[M_NCOLUMNS];
	HeapTuple	row;

	(void) queue_execute(queue, QP_METRICS, NULL, NULL, NULL);
	row = SPI_tuptable->vals[0];	/* an aggregate: always exactly one row */

	for (int col = 0; col < M_NCOLUMNS; col++)
	{
		if (plan_column_of[col] == 0)
			continue;
		values[col] = SPI_getbinval(row, SPI_tuptable->tupdesc, plan_column_of[col],
									&nulls[col]);
	}
	values[M_QUEUE_NAME] = CStringGetTextDatum(queue->names.name);
	nulls[M_QUEUE_NAME] = false;
	values[M_DEFAULT_PARTITION_LENGTH] = (Datum) 0;
	nulls[M_DEFAULT_PARTITION_LENGTH] = true;
	if (get_rel_relkind(queue->queue_relid) == RELKIND_PARTITIONED_TABLE)
	{
		/* pg_partman's default partition takes rows no other partition covers. */
		char	   *default_partition = psprintf("%s_default", queue->names.queue_table);

		if (OidIsValid(get_relname_relid(default_partition, get_namespace_oid(QUEUE_SCHEMA, false))) &&
			SPI_execute(psprintf("SELECT pg_catalog.count(*) FROM %s", qualified_identifier(default_partition)),
						true, 1) == SPI_OK_SELECT)
		{
			bool		isnull;

			values[M_DEFAULT_PARTITION_LENGTH] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			nulls[M_DEFAULT_PARTITION_LENGTH] = false;
		}
	}

	return heap_form_tuple(result_desc, values, nulls);
}


static void
put_metrics_row(QueueEntry *queue, void *arg)
{
	ReturnSetInfo *rsinfo = arg;

	tuplestore_puttuple(rsinfo->setResult, metrics_row(queue, rsinfo->setDesc));
}

/* metrics(queue_name) -> pgmq.metrics_result */
QUEUE_EXT_ENTRY(queue_ext_metrics)
{
	QueueEntry *queue = queue_lookup_arg(fcinfo, 0, NEED_ANY);
	TupleDesc	desc;
	HeapTuple	row;
	MemoryContext caller_cxt = CurrentMemoryContext;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("metrics must be called in a context that accepts a row")));
	desc = BlessTupleDesc(desc);

	spi_connect_or_error();
	row = metrics_row(queue, desc);
	MemoryContextSwitchTo(caller_cxt);
	row = heap_copytuple(row);
	SPI_finish();
	PG_RETURN_DATUM(HeapTupleGetDatum(row));
}

/* metrics_all() -> setof pgmq.metrics_result, one row per queue in pgmq.meta */
QUEUE_EXT_ENTRY(queue_ext_metrics_all)
{
	srf_begin(fcinfo);
	spi_connect_or_error();
	for_each_visible_queue(put_metrics_row, fcinfo->resultinfo);
	SPI_finish();
	return (Datum) 0;
}
