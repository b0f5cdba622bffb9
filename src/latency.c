/*
 * latency.c
 *	  Latency histograms per queue: from enqueue to first read, and from a
 *	  read to the ack (delete, archive or ack) that finished the message.
 *
 * Reads and acks note each message's latency in their transaction's list
 * (counters.c), which adds them to shared memory at commit, like the
 * throughput counters: rolled-back work counts nothing. A histogram has
 * LATENCY_BUCKETS buckets of a factor of sqrt(2) each, from 0.1 ms up to
 * 3.7 hours and one beyond, so a percentile read from it is within about
 * 19 % of the true value (interpolated geometrically inside its bucket).
 * The histograms count since the server started; maintenance turns their
 * growth into per-minute percentiles in pgmq.throughput_history, and the
 * views pgmq.queue_latency and pgmq.queue_latency_buckets (Prometheus
 * style, cumulative) show them. Pops are not counted: a pop is delivery and
 * deletion at once. Without preload nothing is counted.
 */
#include "queue_ext.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"

#define LATENCY_QUEUES 2048

/* Bucket 0 holds latencies below this; bucket b >= 1 those below it times 2^(b/2). */
#define FIRST_BOUND_USECS 100.0

typedef struct LatencyKey
{
	Oid			database;
	Oid			queue_relid;
} LatencyKey;

typedef struct QueueLatency
{
	LatencyKey	key;
	uint64		counts[LATENCY_KINDS][LATENCY_BUCKETS];
} QueueLatency;

static HTAB *shared_latency = NULL;

static const char *const kind_names[LATENCY_KINDS] = {
	[LATENCY_FIRST_READ] = "first_read",
	[LATENCY_ACK] = "ack",
};

Size
latency_shmem_size(void)
{
	return hash_estimate_size(LATENCY_QUEUES, sizeof(QueueLatency));
}

/* From shared_state.c's startup hook, AddinShmemInitLock held. */
void
latency_shmem_startup(void)
{
	shared_latency = shared_hash("queue_ext latency", sizeof(LatencyKey), sizeof(QueueLatency), LATENCY_QUEUES);
}

int
latency_bucket(int64 usecs)
{
	int			bucket;

	if (usecs < (int64) FIRST_BOUND_USECS)
		return 0;
	bucket = 1 + (int) floor(2.0 * log2((double) usecs / FIRST_BOUND_USECS));
	return Min(bucket, LATENCY_BUCKETS - 1);
}

/* The upper bound of bucket, in microseconds (the last one has none). */
static double
bucket_upper_usecs(int bucket)
{
	return FIRST_BOUND_USECS * pow(2.0, bucket / 2.0);
}

/*
 * Adds a transaction's latencies of queue_relid to shared memory; the caller
 * holds the counters' lock, and nothing here may fail (it runs after the
 * commit): a full table drops them.
 */
void
latency_add(Oid queue_relid, const uint32 counts[LATENCY_KINDS][LATENCY_BUCKETS])
{
	LatencyKey	key = {MyDatabaseId, queue_relid};
	bool		found;
	QueueLatency *entry = hash_search(shared_latency, &key, HASH_FIND, &found);

	if (entry == NULL && hash_get_num_entries(shared_latency) < LATENCY_QUEUES)
		entry = hash_search(shared_latency, &key, HASH_ENTER_NULL, &found);
	if (entry == NULL)
		return;
	if (!found)
		memset(entry->counts, 0, sizeof(entry->counts));
	for (int k = 0; k < LATENCY_KINDS; k++)
		for (int b = 0; b < LATENCY_BUCKETS; b++)
			entry->counts[k][b] += counts[k][b];
}

/*
 * The latency at fraction (0 < fraction <= 1) of the samples in counts, in
 * milliseconds; false when there are none.
 */
static bool
latency_percentile(const int64 *counts, double fraction, double *ms)
{
	/* In doubles: a histogram passed in from SQL may hold anything. */
	double		total = 0;
	double		rank;
	double		below = 0;

	for (int b = 0; b < LATENCY_BUCKETS; b++)
		total += (double) Max(counts[b], 0);
	if (total == 0)
		return false;
	rank = Max(fraction * total, 1.0);
	for (int b = 0; b < LATENCY_BUCKETS; b++)
	{
		double		here = (double) Max(counts[b], 0);
		double		within;
		double		lower;
		double		upper;

		if (here == 0 || below + here < rank)
		{
			below += here;
			continue;
		}
		within = (rank - below) / here;
		lower = b == 0 ? 0.0 : bucket_upper_usecs(b - 1);
		upper = bucket_upper_usecs(b);
		if (b == LATENCY_BUCKETS - 1)
			*ms = lower / 1000.0;	/* at least this: the last bucket has no bound */
		else if (b == 0)
			*ms = upper * within / 1000.0;
		else
			*ms = lower * pow(upper / lower, within) / 1000.0;
		return true;
	}
	return false;				/* not reached: rank <= total */
}

/* _latency_percentile(counts bigint[], fraction float8) -> float8: milliseconds, NULL without samples */
PG_FUNCTION_INFO_V1(queue_ext_latency_percentile);
Datum
queue_ext_latency_percentile(PG_FUNCTION_ARGS)
{
	ArrayType  *array = PG_GETARG_ARRAYTYPE_P(0);
	double		fraction = PG_GETARG_FLOAT8(1);
	int64		counts[LATENCY_BUCKETS] = {0};
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	double		ms;

	if (!(fraction > 0.0 && fraction <= 1.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("fraction must be greater than 0 and at most 1, not %g", fraction)));
	deconstruct_array(array, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elems, &nulls, &n);
	if (n != LATENCY_BUCKETS)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("a latency histogram has %d buckets, not %d", LATENCY_BUCKETS, n)));
	for (int b = 0; b < n; b++)
		counts[b] = nulls[b] ? 0 : DatumGetInt64(elems[b]);
	if (!latency_percentile(counts, fraction, &ms))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(ms);
}

/*
 * _latency_histograms() -> setof (queue_name, kind, counts bigint[]): every
 * histogram of this database's queues the caller may see, since the server
 * started. No rows without preload.
 */
QUEUE_EXT_ENTRY(queue_ext_latency_histograms)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	QueueLatency *copies;
	int			n;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	if (!shared_state_ready())
		return (Datum) 0;
	copies = shared_hash_copy_own(shared_latency, SHARED_LOCK_COUNTERS, sizeof(QueueLatency), LATENCY_QUEUES, &n);

	for (int i = 0; i < n; i++)
	{
		QueueEntry *queue = queue_of_table(copies[i].key.queue_relid);

		if (queue == NULL)
			continue;
		for (int k = 0; k < LATENCY_KINDS; k++)
		{
			Datum		elems[LATENCY_BUCKETS];
			Datum		values[3];
			bool		nulls[3] = {false, false, false};

			for (int b = 0; b < LATENCY_BUCKETS; b++)
				elems[b] = Int64GetDatum((int64) copies[i].counts[k][b]);
			values[0] = CStringGetTextDatum(queue->registered_name);
			values[1] = CStringGetTextDatum(kind_names[k]);
			values[2] = PointerGetDatum(construct_array(elems, LATENCY_BUCKETS, INT8OID, sizeof(int64),
														FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}
