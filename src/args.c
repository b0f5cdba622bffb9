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
