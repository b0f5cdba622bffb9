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
 * would after the queue were altered. They are read with the latest snapshot,
 * not the caller's: a repeatable-read transaction must not cache options
 * older than the invalidation that made it read them.
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
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/pg_prng.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/snapmgr.h"

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

static Datum
config_value(HeapTuple row, TupleDesc desc, int column, bool *isnull)
{
	return SPI_getbinval(row, desc, column, isnull);
}

/*
 * Fills out with the options of the queue registered under name (any
 * spelling): pgmq's behaviour for everything not set. Before the extension is
 * updated to a version with pgmq.queue_config, every queue has the defaults.
 */
void
queue_options_load(const char *name, QueueOptions *out)
{
	Oid			nsp = get_namespace_oid(QUEUE_SCHEMA, true);
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	HeapTuple	row;
	TupleDesc	desc;
	Datum		value;
	bool		isnull;
	int			rc;

	memset(out, 0, sizeof(*out));
	out->retry = default_retry_policy;
	if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid("queue_config", nsp)))
		return;

	args[0] = CStringGetTextDatum(name);
	spi_connect_or_error();
	PushActiveSnapshot(GetLatestSnapshot());
	rc = SPI_execute_with_args("SELECT max_attempts, backoff_base, backoff_cap, backoff_jitter,"
							   " dead_letter_queue::pg_catalog.text, default_vt, keep_history,"
							   " max_message_size, paused "
							   "FROM pgmq.queue_config "
							   "WHERE pg_catalog.lower(queue_name::pg_catalog.text)"
							   " OPERATOR(pg_catalog.=) pg_catalog.lower($1)",
							   1, argtypes, args, NULL, true, 1);
	PopActiveSnapshot();
	if (rc != SPI_OK_SELECT)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not read the options of queue \"%s\"", name),
				 errdetail("SPI returned %s.", SPI_result_code_string(rc))));
	if (SPI_processed == 0)
	{
		SPI_finish();
		return;
	}
	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;

	value = config_value(row, desc, 1, &isnull);
	if (!isnull)
		out->retry.max_attempts = DatumGetInt32(value);
	value = config_value(row, desc, 2, &isnull);
	if (!isnull)
		out->retry.backoff_base = DatumGetFloat8(value);
	value = config_value(row, desc, 3, &isnull);
	if (!isnull)
		out->retry.backoff_cap = DatumGetFloat8(value);
	value = config_value(row, desc, 4, &isnull);
	if (!isnull)
		(void) jitter_from_name(TextDatumGetCString(value), &out->retry.jitter);
	value = config_value(row, desc, 5, &isnull);
	if (!isnull)
	{
		out->has_dead_letter_queue = true;
		queue_names_resolve(TextDatumGetCString(value), &out->dead_letter);
	}
	value = config_value(row, desc, 6, &isnull);
	if (!isnull)
	{
		out->has_default_vt = true;
		out->default_vt = DatumGetInt32(value);
	}
	value = config_value(row, desc, 7, &isnull);
	out->keep_history = !isnull && DatumGetBool(value);
	value = config_value(row, desc, 8, &isnull);
	if (!isnull)
		out->max_message_size = DatumGetInt32(value);
	value = config_value(row, desc, 9, &isnull);
	out->paused = !isnull && DatumGetBool(value);
	SPI_finish();
}

/*
 * The queues (comma-separated) whose dead-letter queue is the queue
 * registered under name, or NULL for none. SPI must be connected.
 */
char *
queues_dead_lettering_into(const char *name)
{
	Oid			nsp = get_namespace_oid(QUEUE_SCHEMA, true);
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	bool		isnull;
	Datum		users;

	if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid("queue_config", nsp)))
		return NULL;
	args[0] = CStringGetTextDatum(name);
	if (SPI_execute_with_args("SELECT pg_catalog.string_agg(queue_name::pg_catalog.text, ', '"
							  " ORDER BY queue_name) FROM pgmq.queue_config "
							  "WHERE pg_catalog.lower(dead_letter_queue::pg_catalog.text)"
							  " OPERATOR(pg_catalog.=) pg_catalog.lower($1)",
							  1, argtypes, args, NULL, false, 1) != SPI_OK_SELECT)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not read which queues dead-letter into \"%s\"", name)));
	users = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? NULL : TextDatumGetCString(users);
}

/*
 * Trigger on pgmq.queue_config: a changed row invalidates its queue's table
 * in every backend, which makes their caches read the options again (a
 * TRUNCATE invalidates every relation).
 */
PG_FUNCTION_INFO_V1(queue_ext_queue_config_changed);

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

Datum
queue_ext_queue_config_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigger = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigger->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("queue_config_changed() must run as an AFTER trigger")));
	if (TRIGGER_FIRED_BY_TRUNCATE(trigger->tg_event))
	{
		CacheInvalidateRelcacheAll();
		return PointerGetDatum(NULL);
	}

	invalidate_queue_of_row(trigger->tg_trigtuple, trigger->tg_relation->rd_att);
	if (TRIGGER_FIRED_BY_UPDATE(trigger->tg_event))
		invalidate_queue_of_row(trigger->tg_newtuple, trigger->tg_relation->rd_att);
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
	*out = DatumGetFloat8(DirectFunctionCall1(numeric_float8,
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
 * Applies a message's overrides to policy. strict: a malformed override is
 * an error (a send); otherwise it is ignored (a message already queued).
 */
static void
apply_header_overrides(Jsonb *headers, bool strict, RetryPolicy *policy)
{
	JsonbValue *v;
	double		number;

	if ((v = header_field(headers, HEADER_MAX_ATTEMPTS)) != NULL)
	{
		if (number_value(v, &number) && number == floor(number) &&
			number >= 1 && number <= MAX_ATTEMPTS_LIMIT)
			policy->max_attempts = (int32) number;
		else
			bad_header(strict, HEADER_MAX_ATTEMPTS, "an integer from 1 to 1000000");
	}
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

/*
 * A message's headers as a sender gives them: overrides must be well formed,
 * and the key that fences receipts is queue_ext's alone.
 */
void
check_message_headers(QueueEntry *queue, Jsonb *headers)
{
	RetryPolicy scratch = default_retry_policy;

	if (headers == NULL || !JsonContainerIsObject(&headers->root))
		return;
	apply_header_overrides(headers, true, &scratch);
	if (header_field(headers, HEADER_NACKED) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("header \"%s\" is set by queue_ext and cannot be sent", HEADER_NACKED),
				 errdetail("It marks a delivery that was nacked; a sent value could void a worker's receipt."),
				 errhint("Remove the key from the headers before sending.")));
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
