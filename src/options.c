/*
 * options.c
 *	  Job options: a queue's (pgmq.queue_config, read into the queue's cache
 *	  entry) and a message's own overrides (headers), the retry schedule they
 *	  give, and the checks a send makes against them.
 *
 * A queue's options are rows in pgmq.queue_config, set through
 * pgmq.set_queue_options(). Every backend keeps them in its queue cache entry;
 * a trigger on the table sends a relcache invalidation for the queue's table
 * when a row changes, so every backend re-reads them at its next call, as it
 * would after the queue were altered. They are read directly with the
 * latest snapshot (catalog.c), not through SQL with the caller's: a
 * repeatable-read transaction must not cache options older than the
 * invalidation that made it read them, and using a queue must not need a
 * privilege on the options table.
 *
 * Per-message overrides travel in headers (shared/DESIGN.md section 3):
 * x-queue-ext-max-attempts, an integer, and x-queue-ext-backoff, an object
 * with any of base, cap (seconds) and jitter ("none", "full", "equal"). A send
 * rejects malformed ones; a message that got malformed ones some other way
 * (a direct INSERT) is retried with the queue's values for those fields.
 */
#include "queue_ext.h"

#include <math.h>

#include "access/detoast.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "common/pg_prng.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "access/xact.h"

/* Bounds shared with the CHECK constraints of pgmq.queue_config. */
#define MAX_ATTEMPTS_LIMIT		1000000
#define BACKOFF_SECONDS_LIMIT	2592000.0	/* 30 days */

static const RetryPolicy default_retry_policy = {
	.max_attempts = 0,
	.backoff_base = 1.0,
	.backoff_cap = 3600.0,
	.jitter = JITTER_NONE,
};

static bool
jitter_from_name(const char *name, BackoffJitter *out)
{
	if (strcmp(name, "none") == 0)
		*out = JITTER_NONE;
	else if (strcmp(name, "full") == 0)
		*out = JITTER_FULL;
	else if (strcmp(name, "equal") == 0)
		*out = JITTER_EQUAL;
	else
		return false;
	return true;
}

/* ---- a queue's options ---- */

/* The columns of pgmq.queue_config, in the order the loader reads them. */
enum
{
	QC_QUEUE_NAME,
	QC_MAX_ATTEMPTS,
	QC_BACKOFF_BASE,
	QC_BACKOFF_CAP,
	QC_BACKOFF_JITTER,
	QC_DEAD_LETTER_QUEUE,
	QC_DEFAULT_VT,
	QC_KEEP_HISTORY,
	QC_MAX_MESSAGE_SIZE,
	QC_PAUSED,
	QC_IDEMPOTENCY_WINDOW,
	QC_PRIORITY_AGING,
	QC_BREAKER_THRESHOLD,
	QC_BREAKER_WINDOW,
	QC_BREAKER_MIN_OUTCOMES,
	QC_BREAKER_COOLDOWN,
	QC_MAX_IN_FLIGHT,
	QC_NCOLUMNS
};

static const char *const config_columns[QC_NCOLUMNS] = {
	[QC_QUEUE_NAME] = "queue_name",
	[QC_MAX_ATTEMPTS] = "max_attempts",
	[QC_BACKOFF_BASE] = "backoff_base",
	[QC_BACKOFF_CAP] = "backoff_cap",
	[QC_BACKOFF_JITTER] = "backoff_jitter",
	[QC_DEAD_LETTER_QUEUE] = "dead_letter_queue",
	[QC_DEFAULT_VT] = "default_vt",
	[QC_KEEP_HISTORY] = "keep_history",
	[QC_MAX_MESSAGE_SIZE] = "max_message_size",
	[QC_PAUSED] = "paused",
	[QC_IDEMPOTENCY_WINDOW] = "idempotency_window",
	[QC_PRIORITY_AGING] = "priority_aging",
	[QC_BREAKER_THRESHOLD] = "breaker_threshold",
	[QC_BREAKER_WINDOW] = "breaker_window",
	[QC_BREAKER_MIN_OUTCOMES] = "breaker_min_outcomes",
	[QC_BREAKER_COOLDOWN] = "breaker_cooldown",
	[QC_MAX_IN_FLIGHT] = "max_in_flight",
};

/* The defaults pgmq.queue_options shows for these options. */
#define DEFAULT_IDEMPOTENCY_WINDOW_US	(24 * USECS_PER_HOUR)
#define DEFAULT_BREAKER_WINDOW_US		(60 * USECS_PER_SEC)
#define DEFAULT_BREAKER_MIN_OUTCOMES	10
#define DEFAULT_BREAKER_COOLDOWN_US		(30 * USECS_PER_SEC)

/* An interval option in microseconds (a month counts 30 days, as interval comparison does). */
static int64
interval_option_us(Datum value, bool isnull, int64 when_null)
{
	Interval   *span;

	if (isnull)
		return when_null;
	span = DatumGetIntervalP(value);
	return span->time + span->day * USECS_PER_DAY + span->month * (DAYS_PER_MONTH * USECS_PER_DAY);
}

typedef struct OptionsSearch
{
	char	   *lower;			/* the queue looked for, lowercased */
	QueueOptions *out;
} OptionsSearch;

static bool
options_row_matches(const Datum *v, const bool *isnull, void *arg)
{
	OptionsSearch *search = arg;
	QueueOptions *out = search->out;

	if (strcmp(queue_name_lower(TextDatumGetCString(v[QC_QUEUE_NAME])), search->lower) != 0)
		return false;

	if (!isnull[QC_MAX_ATTEMPTS])
		out->retry.max_attempts = DatumGetInt32(v[QC_MAX_ATTEMPTS]);
	if (!isnull[QC_BACKOFF_BASE])
		out->retry.backoff_base = DatumGetFloat8(v[QC_BACKOFF_BASE]);
	if (!isnull[QC_BACKOFF_CAP])
		out->retry.backoff_cap = DatumGetFloat8(v[QC_BACKOFF_CAP]);
	if (!isnull[QC_BACKOFF_JITTER])
		(void) jitter_from_name(TextDatumGetCString(v[QC_BACKOFF_JITTER]), &out->retry.jitter);
	if (!isnull[QC_DEAD_LETTER_QUEUE])
	{
		out->has_dead_letter_queue = true;
		queue_names_resolve(TextDatumGetCString(v[QC_DEAD_LETTER_QUEUE]), &out->dead_letter);
	}
	if (!isnull[QC_DEFAULT_VT])
	{
		out->has_default_vt = true;
		out->default_vt = DatumGetInt32(v[QC_DEFAULT_VT]);
	}
	out->keep_history = !isnull[QC_KEEP_HISTORY] && DatumGetBool(v[QC_KEEP_HISTORY]);
	if (!isnull[QC_MAX_MESSAGE_SIZE])
		out->max_message_size = DatumGetInt32(v[QC_MAX_MESSAGE_SIZE]);
	out->paused = !isnull[QC_PAUSED] && DatumGetBool(v[QC_PAUSED]);
	out->idempotency_window_us = interval_option_us(v[QC_IDEMPOTENCY_WINDOW], isnull[QC_IDEMPOTENCY_WINDOW],
													DEFAULT_IDEMPOTENCY_WINDOW_US);
	out->priority_aging_us = interval_option_us(v[QC_PRIORITY_AGING], isnull[QC_PRIORITY_AGING], 0);
	if (!isnull[QC_BREAKER_THRESHOLD])
		out->breaker_threshold = DatumGetFloat8(v[QC_BREAKER_THRESHOLD]);
	out->breaker_window_us = interval_option_us(v[QC_BREAKER_WINDOW], isnull[QC_BREAKER_WINDOW],
												DEFAULT_BREAKER_WINDOW_US);
	out->breaker_min_outcomes = isnull[QC_BREAKER_MIN_OUTCOMES] ? DEFAULT_BREAKER_MIN_OUTCOMES
		: DatumGetInt32(v[QC_BREAKER_MIN_OUTCOMES]);
	out->breaker_cooldown_us = interval_option_us(v[QC_BREAKER_COOLDOWN], isnull[QC_BREAKER_COOLDOWN],
												  DEFAULT_BREAKER_COOLDOWN_US);
	if (!isnull[QC_MAX_IN_FLIGHT])
		out->max_in_flight = DatumGetInt32(v[QC_MAX_IN_FLIGHT]);
	return true;
}

/*
 * Fills out with the options of the queue registered under name (any
 * spelling): pgmq's behaviour for everything not set. Before the extension is
 * updated to a version with pgmq.queue_config, every queue has the defaults.
 */
void
queue_options_load(const char *name, QueueOptions *out)
{
	OptionsSearch search = {.lower = queue_name_lower(name), .out = out};

	memset(out, 0, sizeof(*out));
	out->retry = default_retry_policy;
	out->idempotency_window_us = DEFAULT_IDEMPOTENCY_WINDOW_US;
	out->breaker_window_us = DEFAULT_BREAKER_WINDOW_US;
	out->breaker_min_outcomes = DEFAULT_BREAKER_MIN_OUTCOMES;
	out->breaker_cooldown_us = DEFAULT_BREAKER_COOLDOWN_US;
	(void) catalog_scan("queue_config", config_columns, QC_NCOLUMNS, options_row_matches, &search);
}

/* Every queue's dead-letter queue, as pairs. */
typedef struct DeadLetterEdges
{
	List	   *from;
	List	   *to;
} DeadLetterEdges;

static bool
collect_edge(const Datum *v, const bool *isnull, void *arg)
{
	DeadLetterEdges *edges = arg;

	if (!isnull[1])
	{
		edges->from = lappend(edges->from, TextDatumGetCString(v[0]));
		edges->to = lappend(edges->to, TextDatumGetCString(v[1]));
	}
	return false;
}

static DeadLetterEdges
dead_letter_edges(void)
{
	static const char *const columns[] = {"queue_name", "dead_letter_queue"};
	DeadLetterEdges edges = {NIL, NIL};

	(void) catalog_scan("queue_config", columns, lengthof(columns), collect_edge, &edges);
	return edges;
}

/*
 * The queues (comma-separated) whose dead-letter queue is the queue
 * registered under name (any spelling), or NULL for none.
 */
char *
queues_dead_lettering_into(const char *name)
{
	DeadLetterEdges edges = dead_letter_edges();
	char	   *lower = queue_name_lower(name);
	StringInfoData users;
	ListCell   *from;
	ListCell   *to;

	initStringInfo(&users);
	forboth(from, edges.from, to, edges.to)
	{
		if (strcmp(queue_name_lower(lfirst(to)), lower) == 0)
			appendStringInfo(&users, "%s%s", users.len > 0 ? ", " : "", (char *) lfirst(from));
	}
	return users.len > 0 ? users.data : NULL;
}

static const char *
dead_letter_queue_of(const DeadLetterEdges *edges, const char *queue)
{
	ListCell   *from;
	ListCell   *to;

	forboth(from, edges->from, to, edges->to)
	{
		if (strcmp(lfirst(from), queue) == 0)
			return lfirst(to);
	}
	return NULL;
}

/*
 * Refuses a change after which dead letters could go round in a cycle. It
 * reads every queue's dead-letter queue with the latest snapshot, after the
 * statement's own changes, so it holds in every isolation level:
 * set_queue_options locks the table first, and the latest snapshot then
 * includes every change committed before it got the lock.
 */
static void
reject_dead_letter_cycle(const char *queue)
{
	DeadLetterEdges edges;
	StringInfoData path;
	const char *next = queue;

	CommandCounterIncrement();
	edges = dead_letter_edges();
	initStringInfo(&path);
	appendStringInfoString(&path, queue);
	for (int hops = 0; hops <= list_length(edges.from); hops++)
	{
		next = dead_letter_queue_of(&edges, next);
		if (next == NULL)
			return;
		appendStringInfo(&path, " -> %s", next);
		if (strcmp(next, queue) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("dead-letter queues would form a cycle: %s", path.data),
					 errhint("Dead letters must end in a queue without a dead-letter queue of its own.")));
	}
}

static void
invalidate_queue_of_row(HeapTuple row, TupleDesc desc)
{
	char	   *name;
	QueueNames	names;
	Oid			relid;

	if (row == NULL)
		return;
	name = SPI_getvalue(row, desc, SPI_fnumber(desc, "queue_name"));
	if (name == NULL)
		return;
	queue_names_resolve(name, &names);
	relid = get_relname_relid(names.queue_table, get_namespace_oid(QUEUE_SCHEMA, false));
	if (OidIsValid(relid))		/* not yet (restore) or no longer (drop) there */
		CacheInvalidateRelcacheByRelid(relid);
}

/*
 * Trigger on pgmq.queue_config: a changed row invalidates its queue's table
 * in every backend, which makes their caches read the options again (a
 * TRUNCATE invalidates every relation); a new or changed dead-letter queue
 * must not close a cycle.
 */
PG_FUNCTION_INFO_V1(queue_ext_queue_config_changed);

Datum
queue_ext_queue_config_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigger = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	changed = NULL;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigger->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("queue_config_changed() must run as an AFTER trigger")));
	if (TRIGGER_FIRED_BY_TRUNCATE(trigger->tg_event))
	{
		CacheInvalidateRelcacheAll();
		return PointerGetDatum(NULL);
	}

	desc = trigger->tg_relation->rd_att;
	invalidate_queue_of_row(trigger->tg_trigtuple, desc);
	if (TRIGGER_FIRED_BY_UPDATE(trigger->tg_event))
	{
		changed = trigger->tg_newtuple;
		invalidate_queue_of_row(changed, desc);
	}
	else if (TRIGGER_FIRED_BY_INSERT(trigger->tg_event))
		changed = trigger->tg_trigtuple;
	if (changed != NULL && SPI_getvalue(changed, desc, SPI_fnumber(desc, "dead_letter_queue")) != NULL)
		reject_dead_letter_cycle(SPI_getvalue(changed, desc, SPI_fnumber(desc, "queue_name")));
	return PointerGetDatum(NULL);
}

/* ---- a message's overrides ---- */

/* The value under key when headers is an object that has it. */
static JsonbValue *
object_field(JsonbContainer *container, const char *key)
{
	if (!JsonContainerIsObject(container))
		return NULL;
	return getKeyJsonValueFromContainer(container, key, strlen(key), NULL);
}

static JsonbValue *
header_field(Jsonb *headers, const char *key)
{
	return headers == NULL ? NULL : object_field(&headers->root, key);
}

static void
bad_header(bool strict, const char *key, const char *rule)
{
	if (strict)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("header \"%s\" must be %s", key, rule),
				 errhint("See the table of header keys in queue_ext's README.")));
}

/* A JSON number as a double, or false when v is not a number. */
static bool
number_value(JsonbValue *v, double *out)
{
	if (v == NULL || v->type != jbvNumeric)
		return false;
	/* Out of a double's range is infinite, not an error: the range checks refuse it. */
	*out = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
											  NumericGetDatum(v->val.numeric)));
	return true;
}

static void
seconds_override(JsonbContainer *backoff, const char *field, bool strict, double *target)
{
	JsonbValue *v = object_field(backoff, field);
	double		seconds;

	if (v == NULL)
		return;
	if (number_value(v, &seconds) && seconds > 0 && seconds <= BACKOFF_SECONDS_LIMIT)
		*target = seconds;
	else
		bad_header(strict, HEADER_BACKOFF,
				   "an object whose base and cap are seconds above 0 and at most 2592000 (30 days)");
}

/*
 * The overrides of a message's headers. strict: a malformed override is an
 * error (a send); otherwise it is ignored (a message already queued).
 */
static void
apply_max_attempts_override(Jsonb *headers, bool strict, int32 *max_attempts)
{
	JsonbValue *v = header_field(headers, HEADER_MAX_ATTEMPTS);
	double		number;

	if (v == NULL)
		return;
	if (number_value(v, &number) && number == floor(number) &&
		number >= 1 && number <= MAX_ATTEMPTS_LIMIT)
		*max_attempts = (int32) number;
	else
		bad_header(strict, HEADER_MAX_ATTEMPTS, "an integer from 1 to 1000000");
}

/*
 * A message's priority, 0 to PRIORITY_MAX (0 when it has none). A send
 * refuses a malformed one (strict); read order treats it as 0.
 */
int32
message_priority(Jsonb *headers, bool strict)
{
	JsonbValue *v = header_field(headers, HEADER_PRIORITY);
	double		number;

	if (v == NULL)
		return 0;
	if (number_value(v, &number) && number == floor(number) && number >= 0 && number <= PRIORITY_MAX)
		return (int32) number;
	bad_header(strict, HEADER_PRIORITY, "an integer from 0 to " CppAsString2(PRIORITY_MAX));
	return 0;
}

/* The message's idempotency key, or NULL; a send has checked its form. */
text *
message_idempotency_key(Jsonb *headers)
{
	JsonbValue *v = header_field(headers, HEADER_IDEMPOTENCY_KEY);

	if (v == NULL || v->type != jbvString)
		return NULL;
	return cstring_to_text_with_len(v->val.string.val, v->val.string.len);
}

static void
apply_header_overrides(Jsonb *headers, bool strict, RetryPolicy *policy)
{
	JsonbValue *v;

	apply_max_attempts_override(headers, strict, &policy->max_attempts);
	if ((v = header_field(headers, HEADER_BACKOFF)) != NULL)
	{
		JsonbContainer *backoff;
		JsonbValue *jitter;

		if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		{
			bad_header(strict, HEADER_BACKOFF, "an object with any of base, cap and jitter");
			return;
		}
		backoff = v->val.binary.data;
		seconds_override(backoff, "base", strict, &policy->backoff_base);
		seconds_override(backoff, "cap", strict, &policy->backoff_cap);
		jitter = object_field(backoff, "jitter");
		if (jitter != NULL)
		{
			char	   *name = jitter->type == jbvString
				? pnstrdup(jitter->val.string.val, jitter->val.string.len) : "";

			if (!jitter_from_name(name, &policy->jitter))
				bad_header(strict, HEADER_BACKOFF, "an object whose jitter is \"none\", \"full\" or \"equal\"");
		}
	}
}

/*
 * The deliveries one message is allowed (0: unlimited): its queue's, or its
 * own. Every read asks this of every row it leases, so it reads one key only.
 */
int32
message_max_attempts(const QueueOptions *options, Jsonb *headers)
{
	int32		max_attempts = options->retry.max_attempts;

	apply_max_attempts_override(headers, false, &max_attempts);
	return max_attempts;
}

/* The retry policy of one message: its queue's, with the message's overrides. */
void
message_retry_policy(const QueueOptions *options, Jsonb *headers, RetryPolicy *out)
{
	*out = options->retry;
	apply_header_overrides(headers, false, out);
}

/*
 * Seconds before a message nacked on the given attempt (1 = its first
 * delivery) is visible again: base * 2^(attempt - 1), at most cap, then
 * jittered.
 */
double
retry_delay_seconds(const RetryPolicy *policy, int32 attempt)
{
	double		delay = ldexp(policy->backoff_base, Min(Max(attempt - 1, 0), 64));

	delay = Min(delay, policy->backoff_cap);
	switch (policy->jitter)
	{
		case JITTER_NONE:
			break;
		case JITTER_FULL:
			delay = delay * pg_prng_double(&pg_global_prng_state);
			break;
		case JITTER_EQUAL:
			delay = delay / 2 + (delay / 2) * pg_prng_double(&pg_global_prng_state);
			break;
	}
	return delay;
}

/* ---- what a send checks ---- */

/* The keys queue_ext records: a sent value could void a receipt, forge a dead letter or an outcome. */
static const char *const recorded_header_keys[] = {
	HEADER_NACKED, HEADER_ERRORS, HEADER_PROGRESS, HEADER_DEAD_LETTER, HEADER_OUTCOME, HEADER_ORIGINAL,
};

/*
 * A header that names something (a FIFO group, an idempotency key) must be a
 * JSON string of 1 to max_chars characters when it is present.
 */
static void
check_key_header(Jsonb *headers, const char *key, int max_chars)
{
	JsonbValue *v = header_field(headers, key);
	int			chars;

	if (v == NULL)
		return;
	if (v->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("header \"%s\" must be a string", key),
				 errdetail("It is a JSON %s.", JsonbTypeName(v)),
				 errhint("Send it as a JSON string, e.g. \"%s\": \"42\".", key)));
	chars = pg_mbstrlen_with_len(v->val.string.val, v->val.string.len);
	if (chars == 0 || chars > max_chars)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("header \"%s\" must have 1 to %d characters", key, max_chars),
				 errdetail("It has %d.", chars)));
}

/*
 * A message's headers as a sender gives them: overrides and keys must be
 * well formed, and the keys queue_ext records are its alone.
 */
void
check_message_headers(QueueEntry *queue, Jsonb *headers)
{
	RetryPolicy scratch = default_retry_policy;

	if (headers == NULL || !JsonContainerIsObject(&headers->root))
		return;
	apply_header_overrides(headers, true, &scratch);
	check_key_header(headers, HEADER_GROUP, GROUP_KEY_MAX);
	check_key_header(headers, HEADER_IDEMPOTENCY_KEY, IDEMPOTENCY_KEY_MAX);
	if (header_field(headers, HEADER_PRIORITY) != NULL)
	{
		(void) message_priority(headers, true);
		if (queue->options.priority_aging_us == 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("queue \"%s\" does not use priorities", queue->names.name),
					 errdetail("The message has header \"%s\".", HEADER_PRIORITY),
					 errhint("Turn priorities on with pgmq.set_queue_options('%s', priority_aging => '1 minute'), "
							 "or send without the header.", queue->names.name)));
	}
	for (size_t i = 0; i < lengthof(recorded_header_keys); i++)
	{
		if (header_field(headers, recorded_header_keys[i]) != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("header \"%s\" is recorded by queue_ext and cannot be sent",
							recorded_header_keys[i]),
					 errdetail("queue_ext records it when a message is nacked, progresses, dies or ends; "
							   "a sent value could void a worker's receipt or forge a dead letter."),
					 errhint("Remove the key from the headers before sending.")));
	}
}

static int64
datum_bytes(Datum value, bool isnull)
{
	return isnull ? 0 : (int64) toast_raw_datum_size(value) - VARHDRSZ;
}

/* message + headers against the queue's max_message_size (uncompressed jsonb bytes). */
void
check_message_size(QueueEntry *queue, Datum message, bool message_null,
				   Datum headers, bool headers_null)
{
	int64		bytes;

	if (queue->options.max_message_size == 0)
		return;
	bytes = datum_bytes(message, message_null) + datum_bytes(headers, headers_null);
	if (bytes > queue->options.max_message_size)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("message too large for queue \"%s\"", queue->names.name),
				 errdetail("The message and its headers take %lld bytes; the queue's max_message_size is %d.",
						   (long long) bytes, queue->options.max_message_size),
				 errhint("Send a smaller message, or raise max_message_size with pgmq.set_queue_options().")));
}
