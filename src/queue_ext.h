/*
 * queue_ext.h
 *	  Declarations shared by queue_ext's source files.
 *
 * Dependencies point inward: the entry files (send.c, read.c, ack.c,
 * metrics.c, catalog.c's SQL-callable functions) use names.c for queue-name
 * rules, queue_cache.c for the per-queue cache and plans.c for the prepared
 * statements. No entry file reaches into another's internals.
 */
#ifndef QUEUE_EXT_H
#define QUEUE_EXT_H

#include "postgres.h"

#include "executor/spi.h"
#include "tcop/dest.h"
#include "fmgr.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

/* pgmq's limit: "template_pgmq_q_" (16) + name must fit in NAMEDATALEN - 1. */
#define QUEUE_NAME_MAX_LEN 47

/* The schema every queue_ext object lives in (the extension is not relocatable). */
#define QUEUE_SCHEMA "pgmq"

/* ---- names.c: the one place that knows what a queue name may be ---- */

/* A validated queue name and the identifiers derived from it. */
typedef struct QueueNames
{
	char		name[QUEUE_NAME_MAX_LEN + 1];	/* as the caller gave it */
	char		queue_table[NAMEDATALEN];	/* q_<lowercased name> */
	char		archive_table[NAMEDATALEN]; /* a_<lowercased name> */
	char		archive_index[NAMEDATALEN]; /* archived_at_idx_<name> */
	char		sequence[NAMEDATALEN];	/* q_<lowercased name>_msg_id_seq */
} QueueNames;

extern void queue_name_check_chars(const char *name);
extern void queue_name_check_length(const char *name);
extern void queue_names_resolve(const char *name, QueueNames *out);
extern char *queue_name_arg(FunctionCallInfo fcinfo, int argno);
extern char *queue_table_name(const char *name, const char *prefix);
extern char *qualified_identifier(const char *relname);
extern char *queue_name_lower(const char *name);

/* ---- catalog.c: reading queue_ext's catalog tables directly ---- */

typedef bool (*CatalogRowVisitor) (const Datum *values, const bool *nulls, void *arg);
extern bool catalog_scan(const char *relname, const char *const *columns, int ncolumns,
						 CatalogRowVisitor visit, void *arg);
extern char *queue_registered_name(const char *name);
extern void check_queue_table_safe(Oid relid);

/* ---- queue_cache.c: per-backend cache of queues and their plans ---- */

/* The statements every queue has; prepared lazily, kept until invalidated. */
typedef enum QueuePlanKind
{
	QP_SEND,
	QP_SEND_KEYED,
	QP_IDEMPOTENT_MSG_ID,
	QP_SEND_BATCH,
	QP_READ,
	QP_READ_CONDITIONAL,
	QP_POP,
	QP_SET_VT_ONE,
	QP_SET_VT_MANY,
	QP_DELETE_ONE,
	QP_DELETE_MANY,
	QP_ARCHIVE_ONE,
	QP_ARCHIVE_MANY,
	QP_METRICS,
	QP_STATE_COUNTS,
	QP_AGE_ENDS,
	QP_QUEUE_ROWS,
	QP_ARCHIVE_ROWS,
	QP_SEQUENCE_POSITION,
	QP_FIRST_LIVE_ID,
	QP_ACK,
	QP_ACK_ARCHIVE,
	QP_ACK_MANY,
	QP_ACK_MANY_ARCHIVE,
	QP_NACK,
	QP_NACK_LOCK,
	QP_NACK_RECORD,
	QP_DEAD_LETTER_TAKE,
	QP_DEAD_LETTER_RECEIVE,
	QP_DEAD_TO_ARCHIVE,
	QP_DEAD_LETTER_IDS,
	QP_REDRIVE_TAKE,
	QP_ARCHIVED_DEAD_IDS,
	QP_REDRIVE_TAKE_ARCHIVED,
	QP_CANCEL,
	QP_CANCEL_ARCHIVE,
	QP_PROGRESS,
	QP_POP_LOCKED,
	QP_BREAKER_LOCK,
	QP_BREAKER_CREATE,
	QP_BREAKER_SAVE,
	QP_BREAKER_TRIAL,
	QP_BREAKER_TRIAL_MESSAGE,
	QP_BREAKER_TRIAL_FATE,
	QP_BREAKER_TRIAL_UNUSED,
	QP_GROUP_SCAN,
	QP_GROUP_LOCK,
	QP_GROUP_FOLLOWERS,
	QP_GROUP_LEASE_HEADS,
	QP_LEASE_LOCKED_ONE,
	QP_LEASE_LOCKED,
	QP_IN_FLIGHT,
	QP_EXHAUSTED_IDS,
	QP_COUNT
} QueuePlanKind;

/* ---- options.c: a queue's job options, and a message's own overrides ---- */

typedef enum BackoffJitter
{
	JITTER_NONE,
	JITTER_FULL,				/* uniform in [0, delay] */
	JITTER_EQUAL				/* delay / 2 + uniform in [0, delay / 2] */
} BackoffJitter;

/* How a nacked message is retried; a message's headers may override each field. */
typedef struct RetryPolicy
{
	int32		max_attempts;	/* deliveries allowed; 0: unlimited */
	double		backoff_base;	/* seconds before the first retry */
	double		backoff_cap;	/* no retry waits longer (seconds) */
	BackoffJitter jitter;
} RetryPolicy;

typedef struct QueueOptions
{
	RetryPolicy retry;
	bool		has_dead_letter_queue;
	QueueNames	dead_letter;	/* the dead-letter queue, when there is one */
	bool		has_default_vt;
	int32		default_vt;		/* seconds, for a read whose vt is NULL */
	bool		keep_history;	/* ack and cancel archive with an outcome */
	int32		max_message_size;	/* bytes of message + headers; 0: no limit */
	bool		paused;			/* reads return nothing */
	int64		idempotency_window_us;	/* how long an idempotency key holds */
	int64		priority_aging_us;	/* one priority level's head start; 0: no priorities */
	double		breaker_threshold;	/* share of nacks that opens the breaker; 0: none */
	int64		breaker_window_us;
	int32		breaker_min_outcomes;
	int64		breaker_cooldown_us;
	int32		max_in_flight;	/* leased messages at most; 0: no cap */
} QueueOptions;

/* Header keys: what a sender may set, and what queue_ext records. */
#define HEADER_MAX_ATTEMPTS "x-queue-ext-max-attempts"
#define HEADER_BACKOFF		"x-queue-ext-backoff"
#define HEADER_NACKED		"x-queue-ext-nacked"
#define HEADER_ERRORS		"x-queue-ext-errors"
#define HEADER_PROGRESS		"x-queue-ext-progress"
#define HEADER_DEAD_LETTER	"x-queue-ext-dead-letter"
#define HEADER_OUTCOME		"x-queue-ext-outcome"
#define HEADER_ORIGINAL		"x-queue-ext-headers"	/* non-object headers, kept */

/* FIFO groups, as pgmq 1.13 names them: the header, and the group of messages without it. */
#define HEADER_GROUP		"x-pgmq-group"
#define DEFAULT_GROUP		"_default_fifo_group"
/* Longest group a send accepts, in characters (SQS's MessageGroupId limit). */
#define GROUP_KEY_MAX		128

/* Ordering and dedup headers a sender may set. */
#define HEADER_PRIORITY		"x-queue-ext-priority"
#define HEADER_IDEMPOTENCY_KEY "x-queue-ext-idempotency-key"
#define PRIORITY_MAX		9	/* priorities run from 0 (the default) to 9, the most urgent */
#define IDEMPOTENCY_KEY_MAX 128 /* characters */

/* Most entries x-queue-ext-errors keeps (the oldest go first). */
#define ERROR_HISTORY_MAX 10

#define PRIORITY_LEVELS (PRIORITY_MAX + 1)

/*
 * scan_hint.c: the msg_id below which nothing is left to read (per backend);
 * in a queue with priorities, one per priority level, and a rank no message
 * of the level is expected below (priority.c).
 */
typedef struct ScanHint
{
	int64		start;			/* no readable message has a smaller msg_id */
	int64		level_start[PRIORITY_LEVELS];	/* the same, per priority level */
	int64		level_floor[PRIORITY_LEVELS];	/* no smaller rank expected */
	bool		enabled;		/* false when the sequence caches ids */
	bool		round_open;		/* waiting for older transactions to end */
	int64		round_last_id;	/* sequence position when the round opened */
	TimestampTz round_opened_at;
	VirtualTransactionId *round_vxids;	/* transactions running then */
	int			round_nvxids;
	TimestampTz next_step_at;
} ScanHint;

/* breaker.c: a queue's circuit breaker, as last read (the counts stay in the table). */
typedef enum BreakerStateKind
{
	BREAKER_CLOSED,
	BREAKER_OPEN,
	BREAKER_HALF_OPEN
} BreakerStateKind;

typedef struct BreakerState
{
	BreakerStateKind state;
	TimestampTz opened_at;
	TimestampTz trial_until;	/* half open: the trial's lease ends */
} BreakerState;

typedef struct QueueEntry
{
	char		key[QUEUE_NAME_MAX_LEN + 1];	/* hash key: the name as given */
	bool		valid;			/* false once a relcache invalidation hit it */
	bool		sequence_changed;	/* the invalidation hit the msg_id sequence */
	Oid			queue_relid;
	Oid			archive_relid;
	Oid			sequence_relid;
	QueueNames	names;
	char		registered_name[QUEUE_NAME_MAX_LEN + 1];	/* as pgmq.meta has it */
	QueueOptions options;
	BreakerState breaker;
	SPIPlanPtr	plans[QP_COUNT];
	int			plan_generations[QP_COUNT];	/* of the generic plans we built */
	ScanHint	hint;
	int64		last_leased_msg_id;	/* the last message a read of this backend delivered */
	int64		tenant_id;		/* 0: an operator's queue */
} QueueEntry;

extern void queue_options_load(const char *name, QueueOptions *out);
extern int32 message_max_attempts(const QueueOptions *options, Jsonb *headers);
extern void message_retry_policy(const QueueOptions *options, Jsonb *headers, RetryPolicy *out);
extern double retry_delay_seconds(const RetryPolicy *policy, int32 attempt);
extern void check_message_headers(QueueEntry *queue, Jsonb *headers);
extern int32 message_priority(Jsonb *headers, bool strict);
extern text *message_idempotency_key(Jsonb *headers);
extern char *queues_dead_lettering_into(const char *name);
extern uint64 dead_letter_messages(QueueEntry *queue, Datum ids, int32 attempts_adjust,
								   const char *reason);
extern void check_message_size(QueueEntry *queue, Datum message, bool message_null,
							   Datum headers, bool headers_null);

extern void breaker_state_load(const char *name, BreakerState *out);
extern int64 breaker_read_limit(QueueEntry *queue, int64 limit, int32 vt_seconds,
								bool allow_trial, bool *trial);
extern void breaker_trial_unused(QueueEntry *queue);
extern void breaker_trial_message(QueueEntry *queue, int64 msg_id);
extern void breaker_record(QueueEntry *queue, int64 acked, int64 nacked);

/* What a call needs of its caller (tenancy.c checks it). */
typedef enum QueueRequirement
{
	NEED_NOTHING,				/* internal lookups; the caller was checked before */
	NEED_PUBLISH,
	NEED_CONSUME,
	NEED_MANAGE,
	NEED_ANY,					/* any permission on the queue (metrics, listings) */
	NEED_OPERATOR
} QueueRequirement;

extern void queue_cache_init(void);
extern void queue_cache_invalidate_all(void);
extern QueueEntry *queue_find(const char *name);
extern void for_each_visible_queue(void (*visit) (QueueEntry *queue, void *arg), void *arg);
extern QueueEntry *queue_of_table(Oid queue_relid);
extern QueueEntry *queue_lookup(const char *name, QueueRequirement need);
extern QueueEntry *queue_lookup_arg(FunctionCallInfo fcinfo, int argno, QueueRequirement need);
extern void queue_cache_forget(const char *name);

/* ---- run_as_owner.c: queue_ext's functions run as the extension owner ---- */

extern Datum call_as_owner(FunctionCallInfo fcinfo, PGFunction body);
extern Oid	extension_owner(void);
extern void extension_owner_forget(void);
extern Oid	queue_ext_caller(void);

/*
 * Defines the SQL-callable function fn, whose body follows the macro, to run
 * as the extension owner with the search path pinned (run_as_owner.c).
 */
#define QUEUE_EXT_ENTRY(fn) \
	static Datum fn##_as_owner(FunctionCallInfo fcinfo); \
	PG_FUNCTION_INFO_V1(fn); \
	Datum fn(PG_FUNCTION_ARGS) { return call_as_owner(fcinfo, fn##_as_owner); } \
	static Datum fn##_as_owner(FunctionCallInfo fcinfo)

/* ---- tenancy.c: who calls, and what it may do ---- */

#define PERM_PUBLISH	0x01
#define PERM_CONSUME	0x02
#define PERM_MANAGE		0x04
#define PERM_VIEW		0x08	/* SELECT on an operator queue's table: metrics and listings */

#define TENANT_SLUG_MAX 63

typedef struct Tenant
{
	int64		id;				/* 0: none */
	char		slug[TENANT_SLUG_MAX + 1];
	bool		active;
} Tenant;

/* A grant of a tenant (or, tenant 0, on an operator's queue): one queue (lowercased) or, when NULL, all. */
typedef struct TenantGrant
{
	Oid			grantee;		/* applies while the caller has this role's privileges; 0: always */
	char	   *queue;
	int			permissions;
} TenantGrant;

extern void tenancy_init(void);
extern int	permission_bit(const char *name);
extern int	permission_bits(Datum array);
extern void queue_not_found(const char *name) pg_attribute_noreturn();
extern void queue_check_access(QueueEntry *queue, QueueRequirement need);
extern bool queue_visible_to_caller(QueueEntry *queue);
extern bool queue_hidden_from_caller(QueueEntry *queue);
extern bool caller_is_operator(void);
extern void require_operator(const char *what);
extern const Tenant *caller_tenant(void);
extern const char *caller_key_prefix(void);
extern bool caller_manages_tenant(void);
extern void check_may_create_queue(const char *name);

/* ---- security_catalog.c: tenants, roles, gateways and grants as last read ---- */

extern void security_catalog_init(void);
extern uint64 security_catalog_generation(void);
extern bool tenant_find(const char *slug, int64 id, Tenant *out);
extern int64 queue_tenant_load(const char *name);
extern int64 role_tenant(Oid role);
extern bool gateway_role(Oid role, Datum *claim_path, int *permissions);
extern List *tenant_grants(int64 tenant_id);

/* Rate limits and quotas, as the security catalog holds them (ratelimit.c and quota.c apply them). */
typedef enum RateAction
{
	RATE_SEND,
	RATE_READ,
	RATE_DELIVER,				/* a queue's deliveries: reads return fewer, no error */
	RATE_ACTIONS
} RateAction;

typedef enum RateScope
{
	RATE_SCOPE_TENANT,			/* traffic on the tenant's queues */
	RATE_SCOPE_KEY,				/* calls made with the API key */
	RATE_SCOPE_QUEUE
} RateScope;

typedef struct RateLimit
{
	int64		limit_id;
	RateScope	scope;
	bool		sliding_window;
	double		rate;			/* token bucket: messages a second it refills */
	double		capacity;		/* token bucket: burst; sliding window: messages a minute */
	double		rate_per;		/* as set: rate messages every per_seconds */
	double		per_seconds;
	TimestampTz created_at;		/* with the id, tells a limit made again after a drop apart */
} RateLimit;

extern bool rate_limits_defined(void);
extern const RateLimit *rate_limit_find(RateScope scope, int64 id, const char *queue_lower,
										RateAction action);
extern bool rate_limit_exists(int64 limit_id, TimestampTz created_at);
extern bool tenant_quota_find(int64 tenant_id, int64 *soft_limit, int64 *hard_limit);

/* ---- ratelimit.c: rate limits on sends and reads ---- */

#define MAX_CALL_LIMITS 6		/* a queue's, its tenant's and a key's; read and deliver */

/* What a read took from its buckets, to give back what it did not deliver. */
typedef struct RateGrant
{
	int			nlimits;
	RateLimit	limits[MAX_CALL_LIMITS];
	bool		raises[MAX_CALL_LIMITS];	/* a read limit (PT429), not a deliver limit */
	TimestampTz window_start[MAX_CALL_LIMITS];	/* sliding windows: the minute taken from */
	int64		granted;
} RateGrant;

extern void ratelimit_init(void);
extern Size ratelimit_shmem_size(void);
extern void ratelimit_shmem_startup(void);
extern void rate_limit_send(QueueEntry *queue, int64 n);
extern int64 rate_limit_read(QueueEntry *queue, int64 want, RateGrant *grant);
extern void rate_limit_read_done(RateGrant *grant, int64 delivered);

/* ---- in_flight.c: a queue's cap on messages in flight ---- */

extern int64 in_flight_allowance(QueueEntry *queue, int64 limit);
extern void in_flight_done(QueueEntry *queue, uint64 delivered);

/* ---- quota.c: tenants' monthly quotas ---- */

extern void quota_count_sent(QueueEntry *queue, int64 sent);

/* ---- wakeup.c: read_with_poll woken by a committed send ---- */

extern Size wakeup_shmem_size(void);
extern void wakeup_shmem_startup(void);
extern void wakeup_announce(Oid queue_relid);
extern bool wakeup_prepare(QueueEntry *queue, uint64 *commits);
extern void wakeup_sleep(QueueEntry *queue, uint64 commits, long timeout_ms);

/* ---- counters.c: throughput counters, counted at commit ---- */

typedef enum CounterKind
{
	COUNT_SENT,
	COUNT_READ,
	COUNT_ACKED,				/* deleted, acked or popped */
	COUNT_ARCHIVED,
	COUNT_NACKED,
	COUNT_DEAD_LETTERED,
	COUNTER_KINDS
} CounterKind;

/* ---- send.c: what every send passes, for topics too ---- */

extern int64 send_to_queue(QueueEntry *queue, TimestampTz vt, Datum msg, bool msg_null,
						   Datum headers, bool headers_null, DestReceiver *dest);
extern int	check_batch_arrays(ArrayType *msgs, bool msgs_null, ArrayType *headers);
extern int64 send_batch_to_queue(QueueEntry *queue, TimestampTz vt, ArrayType *msgs, ArrayType *headers,
								 DestReceiver *dest);

/* ---- latency.c: latency histograms, counted at commit ---- */

typedef enum LatencyKind
{
	LATENCY_FIRST_READ,			/* enqueue -> first read */
	LATENCY_ACK,				/* read -> delete, archive or ack */
	LATENCY_KINDS
} LatencyKind;

#define LATENCY_BUCKETS 56

extern Size latency_shmem_size(void);
extern void latency_shmem_startup(void);
extern int	latency_bucket(int64 usecs);
extern void latency_add(Oid queue_relid, const uint32 counts[LATENCY_KINDS][LATENCY_BUCKETS]);

extern Size counters_shmem_size(void);
extern void counters_shmem_startup(void);
extern void count_messages(QueueEntry *queue, CounterKind kind, int64 n);
extern void wake_readers_at_commit(QueueEntry *queue);
extern void count_latency(QueueEntry *queue, LatencyKind kind, TimestampTz from, TimestampTz to);

/* ---- gauges.c: rows per queue and archive table, kept at commit ---- */

extern void gauges_init(void);
extern Size gauges_shmem_size(void);
extern void gauges_shmem_startup(void);
extern bool gauge_rows(Oid relid, int64 *rows);
extern bool gauge_known(Oid relid);
extern bool gauge_recount(const char *table);

/* ---- shared_state.c: shared memory, when preloaded ---- */

typedef enum SharedLockId
{
	SHARED_LOCK_RATE_LIMITS,
	SHARED_LOCK_COUNTERS,
	SHARED_LOCK_GAUGES,
	SHARED_LOCK_COUNT
} SharedLockId;

extern void shared_state_init(void);
extern bool shared_state_ready(void);
extern struct LWLock *shared_lock(SharedLockId id);
extern struct HTAB *shared_hash(const char *name, Size keysize, Size entrysize, long max);
extern void *shared_hash_copy_own(struct HTAB *hash, SharedLockId id, Size entrysize, int max, int *n);

/* ---- api_keys.c: keys, and the one a transaction authenticated with ---- */

#define KEY_PREFIX_LEN 12		/* hex digits */

typedef struct AuthenticatedKey
{
	int64		key_id;
	int64		tenant_id;
	char		prefix[KEY_PREFIX_LEN + 1];
	int			scopes;			/* PERM_* bits */
	List	   *queues;			/* lowercased queue names; NIL: all of the tenant's */
} AuthenticatedKey;

extern void api_keys_init(void);
extern const AuthenticatedKey *authenticated_key(void);
extern uint64 authenticated_key_serial(void);
extern void api_key_cache_invalidate(void);

/* ---- audit.c ---- */

extern void audit_record(const char *action, int64 tenant_id, const char *queue, const char *detail);

/* ---- scan_hint.c: where reads start ---- */

extern bool scan_hint_allowed(Oid sequence_relid);
extern void scan_hint_reset(ScanHint *hint, bool enabled);
extern void scan_hint_advance(QueueEntry *queue);
extern int64 scan_hint_start(QueueEntry *queue);

/* ---- priority.c: the read order of a queue with priorities ---- */

extern void priority_settle_levels(QueueEntry *queue, ScanHint *hint);
extern uint64 priority_read(FunctionCallInfo fcinfo, QueueEntry *queue, int64 limit,
							int32 vt_seconds, Jsonb *cond, int *dead);
extern void priority_pop(FunctionCallInfo fcinfo, QueueEntry *queue, int64 limit);

/* ---- read.c: leasing, shared by plain and grouped reads ---- */

/* One attempt at a read; returns the number of messages delivered. SPI is connected. */
typedef uint64 (*ReadAttempt) (FunctionCallInfo fcinfo, QueueEntry *queue, void *arg);

extern int32 read_vt_arg(FunctionCallInfo fcinfo, int argno, QueueEntry *queue);
extern uint64 lease_statement(FunctionCallInfo fcinfo, QueueEntry *queue, QueuePlanKind kind,
							  const Datum *values, const bool *nulls, int *dead);
extern Datum id_array(const int64 *ids, int n);
extern uint64 lease_locked(FunctionCallInfo fcinfo, QueueEntry *queue, const int64 *ids, int n,
						   TimestampTz now, int32 vt_seconds, int *dead);

/* One read statement of up to limit messages; *dead counts those dead-lettered. */
typedef uint64 (*ReadStatement) (FunctionCallInfo fcinfo, QueueEntry *queue, int64 limit,
								 void *arg, int *dead);
extern uint64 read_allowed(FunctionCallInfo fcinfo, QueueEntry *queue, int64 limit,
						   int32 vt_seconds, ReadStatement statement, void *arg);
extern void read_polling(FunctionCallInfo fcinfo, const char *name, int max_poll_argno,
						 ReadAttempt attempt, void *arg);

/* ---- plans.c: the SQL behind each plan kind, prepared once per queue, and run ---- */

extern uint64 queue_execute(QueueEntry *queue, QueuePlanKind kind, const Datum *values,
							const bool *nulls, FunctionCallInfo rows_to);
extern uint64 queue_execute_to(QueueEntry *queue, QueuePlanKind kind, const Datum *values,
							   const bool *nulls, DestReceiver *dest);
extern DestReceiver *srf_receiver(FunctionCallInfo fcinfo);
extern void spi_connect_or_error(void);
extern SPIPlanPtr spi_prepare_kept(const char *sql, int nargs, const Oid *argtypes);
extern void srf_begin(FunctionCallInfo fcinfo);

/* ---- args.c: argument conversions shared by entry files ---- */

extern TimestampTz timestamp_after_seconds(int64 seconds);
extern bool text_is_integer(const char *s);
extern Datum value_from_text(const char *s, Oid typid);
extern TimestampTz seconds_or_timestamp_from_text(const char *s);
extern void reject_null_arg(FunctionCallInfo fcinfo, int argno, const char *what);
extern int32 int32_arg_not_null(FunctionCallInfo fcinfo, int argno, const char *what);
extern TimestampTz timestamptz_arg_not_null(FunctionCallInfo fcinfo, int argno, const char *what);
extern int64 read_limit_arg(FunctionCallInfo fcinfo, int argno);
extern void reject_multidimensional(ArrayType *arr, const char *what);
extern int32 receipt_arg(FunctionCallInfo fcinfo, int argno);
extern void receipts_args(FunctionCallInfo fcinfo, int ids_argno, int read_cts_argno);

/* ---- queue_ext.c: settings ---- */

extern int	queue_ext_max_read_qty;

#endif							/* QUEUE_EXT_H */
