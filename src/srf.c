/*
 * srf.c
 *	  Returning SPI results as a set: the one way entry points build SETOF results.
 *
 * Every SETOF entry point runs one prepared statement and hands its rows back
 * through a materialised tuplestore. The statements' RETURNING lists are
 * written in the column order of the declared result type (bigint, or
 * pgmq.message_record), so SPI's tuples go into the tuplestore unchanged.
 */
#include "queue_ext.h"

#include "funcapi.h"
#include "utils/tuplestore.h"

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

void
srf_begin(FunctionCallInfo fcinfo)
{
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
}

static int
compare_first_int8(const void *a, const void *b)
{
	HeapTuple	ta = *(HeapTuple const *) a;
	HeapTuple	tb = *(HeapTuple const *) b;
	bool		isnull;
	int64		ia = DatumGetInt64(heap_getattr(ta, 1, SPI_tuptable->tupdesc, &isnull));
	int64		ib = DatumGetInt64(heap_getattr(tb, 1, SPI_tuptable->tupdesc, &isnull));

	return (ia > ib) - (ia < ib);
}

/*
 * Appends the rows of the last SPI statement to the call's tuplestore. Reads
 * sort by msg_id so that the oldest message comes first, whatever join order
 * the executor chose for the UPDATE.
 */
void
srf_put_spi_rows(FunctionCallInfo fcinfo, bool sort_by_first_int8)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HeapTuple  *rows = SPI_tuptable ? SPI_tuptable->vals : NULL;
	uint64		n = SPI_processed;

	if (rows == NULL || n == 0)
		return;
	if (sort_by_first_int8 && n > 1)
		qsort(rows, n, sizeof(HeapTuple), compare_first_int8);
	for (uint64 i = 0; i < n; i++)
		tuplestore_puttuple(rsinfo->setResult, rows[i]);
}
