/*
 * ack.c
 *	  Finishing messages: pgmq.delete and pgmq.archive, for one id or an array.
 *
 * archive moves the row into pgmq.a_<name> in the caller's transaction (one
 * statement: a DELETE ... RETURNING feeding an INSERT), so a rollback undoes
 * both halves and a message is never in both tables or in neither.
 * A missing id is not an error: the one-id forms return false, the array
 * forms return only the ids they acted on. An unknown queue is an error even
 * when the id is NULL.
 */
#include "queue_ext.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

/* One id: true when a message was there. A NULL id is no message, as in pgmq. */
static Datum
ack_one(QueueEntry *queue, Datum id, bool id_null, QueuePlanKind kind)
{
	uint64		n;

	if (id_null)
		PG_RETURN_BOOL(false);
	spi_connect_or_error();
	n = queue_execute(queue, kind, &id, NULL, NULL);
	SPI_finish();
	PG_RETURN_BOOL(n > 0);
}

static Datum
ack_many(FunctionCallInfo fcinfo, QueuePlanKind kind)
{
	QueueEntry *queue = queue_lookup_arg(fcinfo, 0);
	Datum		ids = PG_GETARG_DATUM(1);

	srf_begin(fcinfo);
	if (PG_ARGISNULL(1))
		return (Datum) 0;
	spi_connect_or_error();
	queue_execute(queue, kind, &ids, NULL, fcinfo);
	SPI_finish();
	return (Datum) 0;
}

/*
 * An untyped id (a driver's parameter): delete($1, $2) and archive($1, $2) are
 * ambiguous between the bigint and bigint[] forms in pgmq. The text forms take
 * one id and return boolean; an array needs its type spelled out, because the
 * array forms return a set of ids, not a boolean.
 */
static Datum
ack_one_untyped(FunctionCallInfo fcinfo, QueuePlanKind kind)
{
	QueueEntry *queue = queue_lookup_arg(fcinfo, 0);
	char	   *s;

	if (PG_ARGISNULL(1))
		return ack_one(queue, (Datum) 0, true, kind);
	s = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (s[strspn(s, " \t\r\n")] == '{')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("an untyped msg_id must be a single id, not an array"),
				 errhint("Pass several ids as bigint[]: cast the parameter, e.g. $2::bigint[].")));
	return ack_one(queue, value_from_text(s, INT8OID), false, kind);
}

PG_FUNCTION_INFO_V1(queue_ext_delete);
PG_FUNCTION_INFO_V1(queue_ext_delete_many);
PG_FUNCTION_INFO_V1(queue_ext_archive);
PG_FUNCTION_INFO_V1(queue_ext_archive_many);
PG_FUNCTION_INFO_V1(queue_ext_delete_untyped);
PG_FUNCTION_INFO_V1(queue_ext_archive_untyped);

/* delete(queue_name, msg_id bigint) -> boolean */
Datum
queue_ext_delete(PG_FUNCTION_ARGS)
{
	return ack_one(queue_lookup_arg(fcinfo, 0), PG_GETARG_DATUM(1), PG_ARGISNULL(1), QP_DELETE_ONE);
}

/* delete(queue_name, msg_ids bigint[]) -> setof bigint */
Datum
queue_ext_delete_many(PG_FUNCTION_ARGS)
{
	return ack_many(fcinfo, QP_DELETE_MANY);
}

/* archive(queue_name, msg_id bigint) -> boolean */
Datum
queue_ext_archive(PG_FUNCTION_ARGS)
{
	return ack_one(queue_lookup_arg(fcinfo, 0), PG_GETARG_DATUM(1), PG_ARGISNULL(1), QP_ARCHIVE_ONE);
}

/* archive(queue_name, msg_ids bigint[]) -> setof bigint */
Datum
queue_ext_archive_many(PG_FUNCTION_ARGS)
{
	return ack_many(fcinfo, QP_ARCHIVE_MANY);
}

/* delete(queue_name, msg_id text) -> boolean: an untyped id */
Datum
queue_ext_delete_untyped(PG_FUNCTION_ARGS)
{
	return ack_one_untyped(fcinfo, QP_DELETE_ONE);
}

/* archive(queue_name, msg_id text) -> boolean: an untyped id */
Datum
queue_ext_archive_untyped(PG_FUNCTION_ARGS)
{
	return ack_one_untyped(fcinfo, QP_ARCHIVE_ONE);
}
