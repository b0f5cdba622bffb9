/*
 * ratelimit.c
 *	  Rate limits on sends and reads: which limits apply to a call, their
 *	  buckets, and the PT429 error.
 *
 * A call is subject to the limits of its queue, of the queue's tenant and of
 * the API key it authenticated with (security_catalog.c holds them), all at
 * once: a send passes only when every bucket has room for all of its
 * messages, and then takes them from every bucket; otherwise it is refused
 * whole with SQLSTATE PT429 (PostgREST answers HTTP 429) and the seconds
 * after which it would pass. A read takes what the buckets allow, at most
 * its qty, and gives back what it did not deliver: a caller-side read limit
 * with nothing left raises PT429, while a queue's deliver limit (BullMQ's
 * limiter) quietly makes reads return fewer, or nothing.
 *
 * A token bucket holds up to capacity (the burst) tokens and refills at rate
 * per second. A sliding window allows capacity messages in any minute,
 * estimated as Cloudflare's limiter does: the current minute's count plus
 * the previous minute's, weighted by how much of it still lies within the
 * last sixty seconds.
 *
 * Buckets live in shared memory when queue_ext is preloaded: one LWLock,
 * taken for a few arithmetic steps, no WAL and no row locks. Without preload
 * they are rows of the unlogged table pgmq.rate_limit_buckets, which each
 * check locks in limit_id order until its transaction ends: limits stay
 * exact across sessions, but callers of one bucket take turns. Tokens a
 * send, or a read, took in shared memory are not given back when its
 * statement is cancelled or its (sub)transaction rolls back (as with any
 * limiter, the attempt counts); the table's rows roll back with it. After a
 * crash or restart every bucket starts full.
 */
#include "queue_ext.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"

#define ERRCODE_TOO_MANY_REQUESTS MAKE_SQLSTATE('P','T','4','2','9')
#define WINDOW_US (60 * USECS_PER_SEC)

typedef struct BucketState
{
	double		tokens;			/* token bucket */
	TimestampTz refilled_at;
	TimestampTz window_start;	/* sliding window: the current minute */
	double		window_count;
	double		previous_count;
} BucketState;

/*
 * Shared memory serves every database of the cluster, and a limit dropped
 * with its extension can be made again under the same id.
 */
typedef struct BucketKey
{
	Oid			database;
	int64		limit_id;
	TimestampTz created_at;
} BucketKey;

typedef struct SharedBucket
{
	BucketKey	key;			/* hash key */
	BucketState state;
} SharedBucket;

static int	rate_limit_buckets = 4096;
static HTAB *shared_buckets = NULL;

static SPIPlanPtr bucket_lock_plan = NULL;
static SPIPlanPtr bucket_save_plan = NULL;

static const char *const action_names[RATE_ACTIONS] = {
	[RATE_SEND] = "send",[RATE_READ] = "read",[RATE_DELIVER] = "deliver"
};

/* ---- bucket arithmetic ---- */

static void
bucket_start(BucketState *b, const RateLimit *limit, TimestampTz now)
{
	b->tokens = limit->capacity;
	b->refilled_at = now;
	b->window_start = now;
	b->window_count = 0;
	b->previous_count = 0;
}

/* Brings the bucket to now: refills tokens, or moves the window on. */
static void
bucket_advance(BucketState *b, const RateLimit *limit, TimestampTz now)
{
	if (!limit->sliding_window)
	{
		if (now > b->refilled_at)
			b->tokens = Min(limit->capacity,
							b->tokens + (now - b->refilled_at) / (double) USECS_PER_SEC * limit->rate);
		/* Also when the clock went back: refilling resumes from now, not from the future. */
		b->refilled_at = now;
		/* A limit lowered since the last call. */
		b->tokens = Min(b->tokens, limit->capacity);
		return;
	}
	if (now < b->window_start)
		b->window_start = now;	/* the clock went back: this minute starts again */
	if (now >= b->window_start + WINDOW_US)
	{
		bool		adjacent = now < b->window_start + 2 * WINDOW_US;

		b->previous_count = adjacent ? b->window_count : 0;
		b->window_start += ((now - b->window_start) / WINDOW_US) * WINDOW_US;
		b->window_count = 0;
	}
}

/* What the previous minute still weighs at now. */
static double
previous_weight(const BucketState *b, TimestampTz now)
{
	return 1.0 - (double) (now - b->window_start) / WINDOW_US;
}

static double
bucket_available(const BucketState *b, const RateLimit *limit, TimestampTz now)
{
	if (!limit->sliding_window)
		return b->tokens;
	return limit->capacity - b->window_count - b->previous_count * previous_weight(b, now);
}

/* Takes n messages from the bucket; a negative n gives them back. */
static void
bucket_take(BucketState *b, const RateLimit *limit, double n)
{
	if (!limit->sliding_window)
		b->tokens = Min(limit->capacity, b->tokens - n);
	else
		b->window_count = Max(0, b->window_count + n);
}

/* Seconds until the bucket has room for n messages (n is at most its capacity). */
static double
bucket_wait_seconds(const BucketState *b, const RateLimit *limit, double n, TimestampTz now)
{
	double		short_by = n - bucket_available(b, limit, now);
	double		elapsed;
	double		fraction;

	if (short_by <= 0)
		return 0;
	if (!limit->sliding_window)
		return short_by / limit->rate;

	elapsed = (double) (now - b->window_start) / USECS_PER_SEC;
	if (b->window_count + n <= limit->capacity && b->previous_count > 0)
	{
		/* The previous minute's share must fade enough within this one. */
		fraction = 1.0 - (limit->capacity - b->window_count - n) / b->previous_count;
		return Max(0, fraction * 60 - elapsed);
	}
	/* Next minute, once this minute's share has faded enough. */
	fraction = b->window_count > 0 ? 1.0 - (limit->capacity - n) / b->window_count : 0;
	return (60 - elapsed) + Max(0, fraction) * 60;
}

/* ---- where the buckets are ---- */

Size
ratelimit_shmem_size(void)
{
	return hash_estimate_size(rate_limit_buckets, sizeof(SharedBucket));
}

/* From shared_state.c's startup hook, AddinShmemInitLock held. */
void
ratelimit_shmem_startup(void)
{
	shared_buckets = shared_hash("queue_ext rate-limit buckets", sizeof(BucketKey),
								 sizeof(SharedBucket), rate_limit_buckets);
}

/*
 * From _PG_init. Sizing shared memory is a postmaster setting; a library
 * loaded later may not define one (FATAL), yet must accept the setting in
 * postgresql.conf, which would otherwise warn in every session once the
 * prefix is reserved: there it is a reload setting with no effect.
 */
void
ratelimit_init(void)
{
	DefineCustomIntVariable("queue_ext.rate_limit_buckets",
							"Rate limits whose buckets shared memory holds.",
							"Read at server start, and only when queue_ext is in shared_preload_libraries.",
							&rate_limit_buckets,
							4096, 64, 1000000,
							process_shared_preload_libraries_in_progress ? PGC_POSTMASTER : PGC_SIGHUP,
							0, NULL, NULL, NULL);
}

static void
bucket_key(BucketKey *key, const RateLimit *limit)
{
	memset(key, 0, sizeof(*key));
	key->database = MyDatabaseId;
	key->limit_id = limit->limit_id;
	key->created_at = limit->created_at;
}

/* Drops this database's buckets of limits that no longer exist; the lock is held exclusively. */
static void
shared_buckets_sweep(void)
{
	HASH_SEQ_STATUS status;
	SharedBucket *bucket;

	hash_seq_init(&status, shared_buckets);
	while ((bucket = hash_seq_search(&status)) != NULL)
		if (bucket->key.database == MyDatabaseId &&
			!rate_limit_exists(bucket->key.limit_id, bucket->key.created_at))
			(void) hash_search(shared_buckets, &bucket->key, HASH_REMOVE, NULL);
}

/*
 * Reads the buckets of these limits into states, holding them against other
 * sessions until buckets_release(). SPI is connected when the buckets are
 * rows of a table.
 */
static void
buckets_hold(const RateLimit *limits, int n, BucketState *states, TimestampTz *now_out)
{
	TimestampTz now;

	if (shared_state_ready())
	{
		/* Loaded before the lock: rate_limit_exists() may read the catalog. */
		(void) rate_limits_defined();
		LWLockAcquire(shared_lock(SHARED_LOCK_RATE_LIMITS), LW_EXCLUSIVE);
		/* Read under the lock: the state another session saved is never newer than now. */
		*now_out = now = GetCurrentTimestamp();
		for (int i = 0; i < n; i++)
		{
			bool		found;
			BucketKey	key;
			SharedBucket *bucket;

			bucket_key(&key, &limits[i]);
			bucket = hash_search(shared_buckets, &key, HASH_FIND, &found);
			/* A new bucket: within the setting, reclaiming removed limits' buckets first. */
			if (bucket == NULL && hash_get_num_entries(shared_buckets) >= rate_limit_buckets)
				shared_buckets_sweep();
			if (bucket == NULL && hash_get_num_entries(shared_buckets) < rate_limit_buckets)
				bucket = hash_search(shared_buckets, &key, HASH_ENTER_NULL, &found);
			if (bucket == NULL)
			{
				LWLockRelease(shared_lock(SHARED_LOCK_RATE_LIMITS));
				ereport(ERROR,
						(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
						 errmsg("too many rate limits for queue_ext.rate_limit_buckets (%d)",
								rate_limit_buckets),
						 errhint("Raise queue_ext.rate_limit_buckets and restart the server.")));
			}
			if (!found)
				bucket_start(&bucket->state, &limits[i], now);
			states[i] = bucket->state;
		}
		return;
	}

	if (bucket_lock_plan == NULL)
	{
		Oid			types[3] = {INT8OID, FLOAT8OID, TIMESTAMPTZOID};

		bucket_lock_plan = spi_prepare_kept(
			"INSERT INTO pgmq.rate_limit_buckets AS b "
			"(limit_id, tokens, refilled_at, window_start, window_count, previous_count) "
			"VALUES ($1, $2, $3, $3, 0, 0) "
			"ON CONFLICT (limit_id) DO UPDATE SET limit_id = b.limit_id "
			"RETURNING b.tokens, b.refilled_at, b.window_start, b.window_count, b.previous_count",
			3, types);
	}
	/* Callers pass limits in limit_id order, so two sessions lock rows in the same order. */
	now = GetCurrentTimestamp();
	for (int i = 0; i < n; i++)
	{
		Datum		values[3] = {Int64GetDatum(limits[i].limit_id),
			Float8GetDatum(limits[i].capacity), TimestampTzGetDatum(now)};
		HeapTuple	row;
		TupleDesc	desc;
		bool		isnull;

		if (SPI_execute_plan(bucket_lock_plan, values, NULL, false, 1) != SPI_OK_INSERT_RETURNING ||
			SPI_processed != 1)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not lock the bucket of rate limit %lld", (long long) limits[i].limit_id)));
		row = SPI_tuptable->vals[0];
		desc = SPI_tuptable->tupdesc;
		states[i].tokens = DatumGetFloat8(SPI_getbinval(row, desc, 1, &isnull));
		states[i].refilled_at = DatumGetTimestampTz(SPI_getbinval(row, desc, 2, &isnull));
		states[i].window_start = DatumGetTimestampTz(SPI_getbinval(row, desc, 3, &isnull));
		states[i].window_count = DatumGetFloat8(SPI_getbinval(row, desc, 4, &isnull));
		states[i].previous_count = DatumGetFloat8(SPI_getbinval(row, desc, 5, &isnull));
	}
	/* After waiting for the rows: the state read may be newer than the first now. */
	*now_out = GetCurrentTimestamp();
}

/* Stores the states back (when save) and lets other sessions at the buckets. */
static void
buckets_release(const RateLimit *limits, int n, const BucketState *states, bool save)
{
	if (shared_state_ready())
	{
		for (int i = 0; i < n && save; i++)
		{
			BucketKey	key;
			SharedBucket *bucket;

			bucket_key(&key, &limits[i]);
			bucket = hash_search(shared_buckets, &key, HASH_FIND, NULL);

			if (bucket != NULL)
				bucket->state = states[i];
		}
		LWLockRelease(shared_lock(SHARED_LOCK_RATE_LIMITS));
		return;
	}
	if (!save)
		return;					/* the row locks hold until the transaction ends */
	if (bucket_save_plan == NULL)
	{
		Oid			types[6] = {INT8OID, FLOAT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, FLOAT8OID, FLOAT8OID};

		bucket_save_plan = spi_prepare_kept(
			"UPDATE pgmq.rate_limit_buckets SET tokens = $2, refilled_at = $3, window_start = $4, "
			"window_count = $5, previous_count = $6 WHERE limit_id = $1",
			6, types);
	}
	for (int i = 0; i < n; i++)
	{
		Datum		values[6] = {Int64GetDatum(limits[i].limit_id), Float8GetDatum(states[i].tokens),
			TimestampTzGetDatum(states[i].refilled_at), TimestampTzGetDatum(states[i].window_start),
			Float8GetDatum(states[i].window_count), Float8GetDatum(states[i].previous_count)};

		if (SPI_execute_plan(bucket_save_plan, values, NULL, false, 0) != SPI_OK_UPDATE)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not save the bucket of rate limit %lld", (long long) limits[i].limit_id)));
	}
}

/* ---- which limits apply ---- */

static int
limit_order(const void *a, const void *b)
{
	int64		x = ((const RateLimit *) a)->limit_id;
	int64		y = ((const RateLimit *) b)->limit_id;

	return x < y ? -1 : x > y;
}

/*
 * The limits on this action of a call on queue, copied (a catalog reload
 * frees the originals), after those already in out[0..n); returns the new n.
 */
static int
applicable_limits(QueueEntry *queue, RateAction action, RateLimit *out, int n)
{
	const AuthenticatedKey *key;
	const RateLimit *limit;

	if (!rate_limits_defined())
		return n;
	/* q_<lowercased name> */
	if ((limit = rate_limit_find(RATE_SCOPE_QUEUE, 0, queue->names.queue_table + 2, action)) != NULL)
		out[n++] = *limit;
	if (queue->tenant_id != 0 &&
		(limit = rate_limit_find(RATE_SCOPE_TENANT, queue->tenant_id, NULL, action)) != NULL)
		out[n++] = *limit;
	if ((key = authenticated_key()) != NULL &&
		(limit = rate_limit_find(RATE_SCOPE_KEY, key->key_id, NULL, action)) != NULL)
		out[n++] = *limit;
	return n;
}

static void
describe_limit(StringInfo buf, QueueEntry *queue, const RateLimit *limit)
{
	Tenant		tenant;
	const AuthenticatedKey *key = authenticated_key();

	switch (limit->scope)
	{
		case RATE_SCOPE_TENANT:
			if (tenant_find(NULL, queue->tenant_id, &tenant))
				appendStringInfo(buf, "tenant \"%s\"", tenant.slug);
			else
				appendStringInfoString(buf, "the tenant");
			break;
		case RATE_SCOPE_KEY:
			appendStringInfo(buf, "API key \"%s\"", key != NULL ? key->prefix : "?");
			break;
		case RATE_SCOPE_QUEUE:
			appendStringInfo(buf, "queue \"%s\"", queue->names.name);
			break;
	}
}

static void
raise_too_many(QueueEntry *queue, RateAction action, const RateLimit *limit, double wait_seconds)
{
	StringInfoData who;
	/* At most a year: a drained bucket with a tiny rate could name centuries. */
	int			retry_after = (int) Min(Max(1, ceil(wait_seconds)), SECS_PER_DAY * 366);

	initStringInfo(&who);
	describe_limit(&who, queue, limit);
	ereport(ERROR,
			(errcode(ERRCODE_TOO_MANY_REQUESTS),
			 errmsg("rate limit exceeded: %s of %s", action_names[action], who.data),
			 errdetail_plural("Retry after %d second.", "Retry after %d seconds.", retry_after, retry_after),
			 limit->sliding_window
			 ? errhint("The limit is %.0f messages in any minute.", limit->capacity)
			 : errhint("The limit is %g messages every %g seconds, in bursts of up to %.0f.",
					   limit->rate_per, limit->per_seconds, limit->capacity)));
}

/* The grant's limits in limit_id order (the order rows are locked in), flags alongside. */
static void
sort_grant(RateGrant *grant)
{
	for (int i = 1; i < grant->nlimits; i++)
		for (int j = i; j > 0 && grant->limits[j - 1].limit_id > grant->limits[j].limit_id; j--)
		{
			RateLimit	limit = grant->limits[j];
			bool		raises = grant->raises[j];

			grant->limits[j] = grant->limits[j - 1];
			grant->raises[j] = grant->raises[j - 1];
			grant->limits[j - 1] = limit;
			grant->raises[j - 1] = raises;
		}
}

/* ---- the calls ---- */

/*
 * A send of n messages to queue: passes when every limit has room for all of
 * them, and takes them; otherwise raises PT429 and takes nothing.
 */
void
rate_limit_send(QueueEntry *queue, int64 n)
{
	RateLimit	limits[MAX_CALL_LIMITS];
	BucketState states[MAX_CALL_LIMITS];
	int			nlimits = applicable_limits(queue, RATE_SEND, limits, 0);
	TimestampTz now;
	int			worst = -1;
	double		worst_wait = 0;

	if (nlimits == 0)
		return;
	qsort(limits, nlimits, sizeof(RateLimit), limit_order);
	for (int i = 0; i < nlimits; i++)
		if (n > limits[i].capacity)
		{
			StringInfoData who;

			initStringInfo(&who);
			describe_limit(&who, queue, &limits[i]);
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("a batch of %lld messages is larger than the rate limit of %s allows at once",
							(long long) n, who.data),
					 errdetail("The limit passes at most %.0f messages at a time; nothing was sent.",
							   limits[i].capacity),
					 errhint("Send smaller batches.")));
		}

	if (!shared_state_ready())
		spi_connect_or_error();
	buckets_hold(limits, nlimits, states, &now);
	for (int i = 0; i < nlimits; i++)
	{
		double		wait;

		bucket_advance(&states[i], &limits[i], now);
		wait = bucket_wait_seconds(&states[i], &limits[i], (double) n, now);
		if (wait > 0 && (worst < 0 || wait > worst_wait))
		{
			worst = i;
			worst_wait = wait;
		}
	}
	if (worst < 0)
		for (int i = 0; i < nlimits; i++)
			bucket_take(&states[i], &limits[i], (double) n);
	buckets_release(limits, nlimits, states, worst < 0);
	if (!shared_state_ready())
		SPI_finish();
	if (worst >= 0)
		raise_too_many(queue, RATE_SEND, &limits[worst], worst_wait);
}

/*
 * A read of up to want messages: returns how many it may deliver, taken from
 * every bucket (grant remembers them for rate_limit_read_done). Raises PT429
 * when a read limit has no message left; a deliver limit only lowers the
 * count, to 0 when it has nothing left.
 */
int64
rate_limit_read(QueueEntry *queue, int64 want, RateGrant *grant)
{
	BucketState states[MAX_CALL_LIMITS];
	int			nread;
	TimestampTz now;
	double		allowed = (double) want;
	int			worst = -1;
	double		worst_wait = 0;

	grant->granted = 0;
	nread = applicable_limits(queue, RATE_READ, grant->limits, 0);
	grant->nlimits = applicable_limits(queue, RATE_DELIVER, grant->limits, nread);
	if (grant->nlimits == 0)
		return want;
	/* Read limits sort before deliver limits of the same id order: ids are unique. */
	for (int i = 0; i < grant->nlimits; i++)
		grant->raises[i] = i < nread;
	sort_grant(grant);

	if (!shared_state_ready())
		spi_connect_or_error();
	buckets_hold(grant->limits, grant->nlimits, states, &now);
	for (int i = 0; i < grant->nlimits; i++)
	{
		const RateLimit *limit = &grant->limits[i];
		double		available;

		bucket_advance(&states[i], limit, now);
		available = floor(bucket_available(&states[i], limit, now));
		if (grant->raises[i] && available < 1)
		{
			double		wait = bucket_wait_seconds(&states[i], limit, 1, now);

			if (worst < 0 || wait > worst_wait)
			{
				worst = i;
				worst_wait = wait;
			}
		}
		allowed = Min(allowed, Max(0, available));
	}
	if (worst >= 0)
		allowed = 0;
	for (int i = 0; i < grant->nlimits && allowed > 0; i++)
	{
		bucket_take(&states[i], &grant->limits[i], allowed);
		grant->window_start[i] = states[i].window_start;
	}
	buckets_release(grant->limits, grant->nlimits, states, allowed > 0);
	if (!shared_state_ready())
		SPI_finish();
	if (worst >= 0)
		raise_too_many(queue, RATE_READ, &grant->limits[worst], worst_wait);
	grant->granted = (int64) allowed;
	return grant->granted;
}

/* After the read: what was granted but not delivered goes back to the buckets. */
void
rate_limit_read_done(RateGrant *grant, int64 delivered)
{
	BucketState states[MAX_CALL_LIMITS];
	int64		unused = grant->granted - delivered;
	TimestampTz now;

	if (grant->nlimits == 0 || unused <= 0)
		return;
	if (!shared_state_ready())
		spi_connect_or_error();
	buckets_hold(grant->limits, grant->nlimits, states, &now);
	for (int i = 0; i < grant->nlimits; i++)
	{
		BucketState *b = &states[i];

		bucket_advance(b, &grant->limits[i], now);
		if (!grant->limits[i].sliding_window || b->window_start == grant->window_start[i])
			bucket_take(b, &grant->limits[i], -(double) unused);
		else if (b->window_start == grant->window_start[i] + WINDOW_US)
			b->previous_count = Max(0, b->previous_count - unused);	/* taken last minute */
	}
	buckets_release(grant->limits, grant->nlimits, states, true);
	if (!shared_state_ready())
		SPI_finish();
	grant->granted = delivered;
}
