/*
 * args.c
 *	  Argument rules shared by the entry points: NULLs, limits, times.
 *
 * pgmq accepts a NULL message, NULL headers, a negative vt or delay and a NULL
 * qty ("no limit"); queue_ext accepts them with the same result. Where pgmq
 * fails with an internal error (a NULL vt becomes a not-null violation on the
 * vt column) queue_ext says which argument was NULL, with SQLSTATE 22004.
 */
#include "queue_ext.h"

#include "utils/array.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

/* clock_timestamp() + seconds, as pgmq computes vt. */
TimestampTz
timestamp_after_seconds(int64 seconds)
{
	return GetCurrentTimestamp() + seconds * USECS_PER_SEC;
}

/* True for an optionally signed run of digits, blanks around it allowed. */
bool
text_is_integer(const char *s)
{
	while (isspace((unsigned char) *s))
		s++;
	if (*s == '+' || *s == '-')
		s++;
	if (!isdigit((unsigned char) *s))
		return false;
	while (isdigit((unsigned char) *s))
		s++;
	while (isspace((unsigned char) *s))
		s++;
	return *s == '\0';
}

/* Reads text as a value of typid, through the type's own input function. */
Datum
value_from_text(const char *s, Oid typid)
{
	Oid			typinput;
	Oid			typioparam;

	getTypeInputInfo(typid, &typinput, &typioparam);
	return OidInputFunctionCall(typinput, (char *) s, typioparam, -1);
}

/*
 * A time given as untyped text (a driver's parameter): whole seconds from now
 * when it is an integer, otherwise a timestamp in any form timestamptz takes.
 */
TimestampTz
seconds_or_timestamp_from_text(const char *s)
{
	if (text_is_integer(s))
		return timestamp_after_seconds(pg_strtoint32(s));
	return DatumGetTimestampTz(value_from_text(s, TIMESTAMPTZOID));
}

/* The one rule for arguments that must not be NULL: 22004, naming them. */
void
reject_null_arg(FunctionCallInfo fcinfo, int argno, const char *what)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", what)));
}

int32
int32_arg_not_null(FunctionCallInfo fcinfo, int argno, const char *what)
{
	reject_null_arg(fcinfo, argno, what);
	return PG_GETARG_INT32(argno);
}

TimestampTz
timestamptz_arg_not_null(FunctionCallInfo fcinfo, int argno, const char *what)
{
	reject_null_arg(fcinfo, argno, what);
	return PG_GETARG_TIMESTAMPTZ(argno);
}

/*
 * The number of messages a read or pop may return. NULL means no limit in
 * pgmq; queue_ext caps every read at queue_ext.max_read_qty, so one call
 * cannot materialise an unbounded result. A read may always return fewer
 * messages than asked for, so the cap cannot break a pgmq caller.
 */
int64
read_limit_arg(FunctionCallInfo fcinfo, int argno)
{
	int32		qty;

	if (PG_ARGISNULL(argno))
		return queue_ext_max_read_qty;

	qty = PG_GETARG_INT32(argno);
	if (qty < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_ROW_COUNT_IN_LIMIT_CLAUSE),
				 errmsg("qty must not be negative"),
				 errdetail("qty was %d.", qty)));
	return Min(qty, queue_ext_max_read_qty);
}

void
reject_multidimensional(ArrayType *arr, const char *what)
{
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", what),
				 errdetail("The array given has %d dimensions.", ARR_NDIM(arr))));
}

/* A receipt is a read_ct a read returned: 1 or more. */
int32
receipt_arg(FunctionCallInfo fcinfo, int argno)
{
	int32		read_ct = int32_arg_not_null(fcinfo, argno, "read_ct");

	if (read_ct < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("read_ct must be 1 or more"),
				 errdetail("read_ct was %d; a read returns each delivery's read_ct, starting at 1.", read_ct),
				 errhint("Pass the read_ct that read returned with the message.")));
	return read_ct;
}

/*
 * Batch receipts: msg_ids bigint[] and read_cts integer[], one-dimensional,
 * of one length, without NULLs, every read_ct 1 or more.
 */
void
receipts_args(FunctionCallInfo fcinfo, int ids_argno, int read_cts_argno)
{
	ArrayType  *ids;
	ArrayType  *read_cts;
	Datum	   *elems;
	bool	   *elem_nulls;
	int			n;

	reject_null_arg(fcinfo, ids_argno, "msg_ids");
	reject_null_arg(fcinfo, read_cts_argno, "read_cts");
	ids = PG_GETARG_ARRAYTYPE_P(ids_argno);
	read_cts = PG_GETARG_ARRAYTYPE_P(read_cts_argno);
	reject_multidimensional(ids, "msg_ids");
	reject_multidimensional(read_cts, "read_cts");
	if (ArrayGetNItems(ARR_NDIM(ids), ARR_DIMS(ids)) !=
		ArrayGetNItems(ARR_NDIM(read_cts), ARR_DIMS(read_cts)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("msg_ids and read_cts must have the same length"),
				 errdetail("msg_ids has %d elements, read_cts %d.",
						   ArrayGetNItems(ARR_NDIM(ids), ARR_DIMS(ids)),
						   ArrayGetNItems(ARR_NDIM(read_cts), ARR_DIMS(read_cts))),
				 errhint("Pass each message's read_ct at the same position as its msg_id.")));
	if (array_contains_nulls(ids))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("msg_ids must not contain NULL")));
	deconstruct_array(read_cts, INT4OID, sizeof(int32), true, TYPALIGN_INT,
					  &elems, &elem_nulls, &n);
	for (int i = 0; i < n; i++)
	{
		if (elem_nulls[i] || DatumGetInt32(elems[i]) < 1)
			ereport(ERROR,
					(errcode(elem_nulls[i] ? ERRCODE_NULL_VALUE_NOT_ALLOWED
							 : ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("every read_ct must be 1 or more"),
					 errdetail("read_cts[%d] is %s.", i + 1,
							   elem_nulls[i] ? "NULL" : psprintf("%d", DatumGetInt32(elems[i]))),
					 errhint("Pass the read_ct that read returned with each message.")));
	}
}
