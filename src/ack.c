/*
 * ack.c
 *	  Finishing messages: pgmq.delete and pgmq.archive, for one id or an array.
 *
 * archive moves the row into pgmq.a_<name> in the caller's transaction (one
 * statement: a DELETE ... RETURNING feeding an INSERT), so a rollback undoes
 * both halves and a message is never in both tables or in neither.
 * A missing id is not an error: the one-id forms return false, the array
 * forms return only the ids they acted on.
 */
#include "queue_ext.h"

static uint64
run_ack(FunctionCallInfo fcinfo, QueuePlanKind kind, int expected_rc, const char *what)
{
	QueueEntry *queue = queue_lookup_arg(fcinfo, 0);
	Datum		values[1];
	int			rc;

	values[0] = PG_GETARG_DATUM(1);
	rc = SPI_execute_plan(queue_plan(queue, kind), values, NULL, false, 0);
	if (rc != expected_rc)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("%s on queue \"%s\" failed", what, queue->names.name),
				 errdetail("%s", SPI_result_code_string(rc))));
	return SPI_processed;
}

static Datum
ack_one(FunctionCallInfo fcinfo, QueuePlanKind kind, int expected_rc, const char *what)
{
	uint64		n;

	if (PG_ARGISNULL(1))
	{
		(void) queue_lookup_arg(fcinfo, 0);	/* an unknown queue is still an error */
		PG_RETURN_BOOL(false);
	}
	spi_connect_or_error();
	n = run_ack(fcinfo, kind, expected_rc, what);
	SPI_finish();
	PG_RETURN_BOOL(n > 0);
}

static Datum
ack_many(FunctionCallInfo fcinfo, QueuePlanKind kind, int expected_rc, const char *what)
{
	if (PG_ARGISNULL(1))
	{
		(void) queue_lookup_arg(fcinfo, 0);
		srf_begin(fcinfo);
		return (Datum) 0;
	}
	srf_begin(fcinfo);
	spi_connect_or_error();
	run_ack(fcinfo, kind, expected_rc, what);
	srf_put_spi_rows(fcinfo, false);
	SPI_finish();
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(queue_ext_delete);
PG_FUNCTION_INFO_V1(queue_ext_delete_many);
PG_FUNCTION_INFO_V1(queue_ext_archive);
PG_FUNCTION_INFO_V1(queue_ext_archive_many);

/* delete(queue_name, msg_id bigint) -> boolean */
Datum
queue_ext_delete(PG_FUNCTION_ARGS)
{
	return ack_one(fcinfo, QP_DELETE_ONE, SPI_OK_DELETE, "delete");
}

/* delete(queue_name, msg_ids bigint[]) -> setof bigint */
Datum
queue_ext_delete_many(PG_FUNCTION_ARGS)
{
	return ack_many(fcinfo, QP_DELETE_MANY, SPI_OK_DELETE_RETURNING, "delete");
}

/* archive(queue_name, msg_id bigint) -> boolean */
Datum
queue_ext_archive(PG_FUNCTION_ARGS)
{
	return ack_one(fcinfo, QP_ARCHIVE_ONE, SPI_OK_INSERT, "archive");
}

/* archive(queue_name, msg_ids bigint[]) -> setof bigint */
Datum
queue_ext_archive_many(PG_FUNCTION_ARGS)
{
	return ack_many(fcinfo, QP_ARCHIVE_MANY, SPI_OK_INSERT_RETURNING, "archive");
}
