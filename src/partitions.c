/*
 * partitions.c
 *	  Maintenance of partitioned queues: pg_partman makes the partitions
 *	  ahead and drops those past retention, and queue_ext then protects the
 *	  new ones as it protects every queue table.
 *
 * create_partitioned (catalog.c, with pgmq._make_partitioned_tables) sets a
 * queue up; from then on maintenance's 'partitions' step runs pg_partman's
 * run_maintenance for the queue and its archive, so the queue's own pg_cron
 * schedule (schedule_maintenance) is all a partitioned queue needs. Each new
 * partition gets the queue's row-level security policies and storage
 * settings before a statement can reach it: pg_partman makes partitions
 * premake intervals ahead, and they take rows only once the queue gets there.
 */
#include "queue_ext.h"

#include "catalog/pg_inherits.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

/* The partitions of both of queue's tables (leaves), as OIDs. */
static List *
queue_partitions(QueueEntry *queue)
{
	List	   *parts = NIL;
	Oid			parents[2] = {queue->queue_relid, queue->archive_relid};

	for (int i = 0; i < 2; i++)
	{
		ListCell   *lc;

		if (get_rel_relkind(parents[i]) != RELKIND_PARTITIONED_TABLE)
			continue;
		foreach(lc, find_all_inheritors(parents[i], NoLock, NULL))
			if (lfirst_oid(lc) != parents[i])
				parts = lappend_oid(parts, lfirst_oid(lc));
	}
	return parts;
}

/*
 * _maintain_partitions(queue_name) -> bigint: pg_partman's maintenance of a
 * partitioned queue and its archive, then the protection of what it made;
 * how many partitions it made or dropped. 0 for other queues.
 */
QUEUE_EXT_ENTRY(queue_ext_maintain_partitions)
{
	QueueEntry *queue = queue_lookup_arg(fcinfo, 0, NEED_NOTHING);
	List	   *before;
	List	   *after;
	int64		changed;
	const char *partman;

	if (get_rel_relkind(queue->queue_relid) != RELKIND_PARTITIONED_TABLE)
		PG_RETURN_INT64(0);
	before = queue_partitions(queue);
	spi_connect_or_error();
	if (SPI_execute("SELECT pgmq._partman_schema()::text", true, 1) != SPI_OK_SELECT)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not find pg_partman")));
	partman = quote_identifier(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	if (SPI_execute(psprintf("SELECT %1$s.run_maintenance(p_parent_table := %2$s, p_jobmon := false),"
							 " %1$s.run_maintenance(p_parent_table := %3$s, p_jobmon := false)",
							 partman,
							 quote_literal_cstr(psprintf("pgmq.%s", queue->names.queue_table)),
							 quote_literal_cstr(psprintf("pgmq.%s", queue->names.archive_table))),
					false, 0) != SPI_OK_SELECT)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not run pg_partman's maintenance of queue \"%s\"", queue->names.name)));
	SPI_finish();
	queue_cache_forget(queue->names.name);
	queue = queue_lookup_arg(fcinfo, 0, NEED_NOTHING);
	spi_connect_or_error();
	if (SPI_execute_with_args("SELECT pgmq._protect_queue_tables($1)", 1, (Oid[]) {TEXTOID},
							  (Datum[]) {CStringGetTextDatum(queue->registered_name)}, NULL, false, 0) != SPI_OK_SELECT)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not protect the partitions of queue \"%s\"", queue->names.name)));
	SPI_finish();
	after = queue_partitions(queue);
	changed = list_length(list_difference_oid(after, before)) + list_length(list_difference_oid(before, after));
	PG_RETURN_INT64(changed);
}
