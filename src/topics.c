/*
 * topics.c
 *	  pgmq's topic routing: bind_topic, unbind_topic, send_topic,
 *	  send_batch_topic, test_routing, and the validation of routing keys and
 *	  patterns.
 *
 * A binding ties a pattern to a queue (pgmq.topic_bindings). A routing key
 * matches a pattern as pgmq's compiled_regex does: '*' stands for one or
 * more characters other than a dot, '#' for any characters at all, anything
 * else for itself; the whole key must match. pgmq scans the bindings with a
 * regex per send; here the bindings are read once per change of the table
 * (a statement trigger sends a relcache invalidation for it) and matched by
 * a small automaton over the pattern, in backend memory.
 *
 * Tenancy: routing sees only bindings of queues the caller may see, and
 * sending to each queue it matched needs the publish permission there, as a
 * send does; binding and unbinding need manage.
 */
#include "queue_ext.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#define TOPIC_TEXT_MAX 255

typedef struct Binding
{
	char	   *pattern;
	char	   *queue_name;
	char	   *compiled_regex;
	int			literal_prefix;	/* characters before the first wildcard */
} Binding;

static Binding *bindings = NULL;
static int	nbindings = 0;
static int	bindings_capacity = 0;
static uint64 bindings_changes = 1;	/* bumped by every invalidation */
static uint64 bindings_loaded = 0;	/* the change the bindings were read after */
static Oid	bindings_relid = InvalidOid;
static MemoryContext bindings_cxt = NULL;

/* ---- validation ---- */

/*
 * Raises unless s is a routing key (wildcards false) or a pattern: pgmq's
 * rules, with its messages, and SQLSTATE 22004 or 22023.
 */
static void
check_topic_text(const char *what, const char *s, bool wildcards)
{
	size_t		len = s == NULL ? 0 : strlen(s);

	if (len == 0)
		ereport(ERROR,
				(errcode(s == NULL ? ERRCODE_NULL_VALUE_NOT_ALLOWED : ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s cannot be NULL or empty", what)));
	if (len > TOPIC_TEXT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s length cannot exceed %d characters, got %zu characters", what, TOPIC_TEXT_MAX, len)));
	for (const char *c = s; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
			  *c == '.' || *c == '_' || *c == '-' || (wildcards && (*c == '*' || *c == '#'))))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s contains invalid characters. Only alphanumeric, dots, hyphens, %s are allowed. Got: %s",
							what, wildcards ? "underscores, *, and #" : "and underscores", s),
					 wildcards ? 0 : errhint("Wildcards (* and #) belong in patterns, not in routing keys.")));
	if (s[0] == '.')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s cannot start with a dot. Got: %s", what, s)));
	if (s[len - 1] == '.')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s cannot end with a dot. Got: %s", what, s)));
	if (strstr(s, "..") != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s cannot contain consecutive dots. Got: %s", what, s)));
	if (!wildcards)
		return;
	if (strstr(s, "**") != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pattern cannot contain consecutive stars (**). Use # for multi-segment matching. Got: %s", s)));
	if (strstr(s, "##") != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pattern cannot contain consecutive hashes (##). A single # already matches zero or more segments. Got: %s", s)));
	if (strstr(s, "*#") != NULL || strstr(s, "#*") != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pattern cannot contain adjacent wildcards (*# or #*). Separate wildcards with dots. Got: %s", s)));
}

static char *
text_arg_or_null(FunctionCallInfo fcinfo, int argno)
{
	return PG_ARGISNULL(argno) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/* validate_routing_key(routing_key) -> true, or raises */
PG_FUNCTION_INFO_V1(queue_ext_validate_routing_key);
Datum
queue_ext_validate_routing_key(PG_FUNCTION_ARGS)
{
	check_topic_text("routing_key", text_arg_or_null(fcinfo, 0), false);
	PG_RETURN_BOOL(true);
}

/* validate_topic_pattern(pattern) -> true, or raises */
PG_FUNCTION_INFO_V1(queue_ext_validate_topic_pattern);
Datum
queue_ext_validate_topic_pattern(PG_FUNCTION_ARGS)
{
	check_topic_text("pattern", text_arg_or_null(fcinfo, 0), true);
	PG_RETURN_BOOL(true);
}

/* ---- matching ---- */

/*
 * Whether key matches pattern (both valid): the set of key positions the
 * pattern read so far can end at, advanced one pattern character at a time.
 */
static bool
topic_matches(const Binding *binding, const char *key, int key_len)
{
	const char *pattern = binding->pattern;
	bool		at[TOPIC_TEXT_MAX + 1];
	bool		next[TOPIC_TEXT_MAX + 1];

	if (strncmp(pattern, key, binding->literal_prefix) != 0)
		return false;
	memset(at, 0, sizeof(bool) * (key_len + 1));
	at[binding->literal_prefix] = true;
	for (const char *p = pattern + binding->literal_prefix; *p; p++)
	{
		bool		any = false;

		if (*p == '#')
		{
			/* Any characters: every position from the first reachable one on. */
			bool		reached = false;

			for (int j = 0; j <= key_len; j++)
				any |= next[j] = reached = reached || at[j];
		}
		else if (*p == '*')
		{
			/* One or more characters, no dot among them. */
			bool		run = false;

			next[0] = false;
			for (int j = 1; j <= key_len; j++)
			{
				run = key[j - 1] != '.' && (run || at[j - 1]);
				any |= next[j] = run;
			}
		}
		else
		{
			next[0] = false;
			for (int j = 1; j <= key_len; j++)
				any |= next[j] = at[j - 1] && key[j - 1] == *p;
		}
		if (!any)
			return false;
		memcpy(at, next, sizeof(bool) * (key_len + 1));
	}
	return at[key_len];
}

/* pgmq's compiled_regex for a pattern: dots escaped, * as [^.]+, # as .* */
static char *
compiled_regex(const char *pattern)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '^');
	for (const char *p = pattern; *p; p++)
	{
		if (*p == '.')
			appendStringInfoString(&buf, "\\.");
		else if (*p == '*')
			appendStringInfoString(&buf, "[^.]+");
		else if (*p == '#')
			appendStringInfoString(&buf, ".*");
		else
			appendStringInfoChar(&buf, *p);
	}
	appendStringInfoChar(&buf, '$');
	return buf.data;
}

/* ---- the bindings, as this backend last read them ---- */

static void
forget_bindings(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == bindings_relid)
	{
		bindings_changes++;
		/* Looked up again: the table may have been dropped and made anew. */
		bindings_relid = InvalidOid;
	}
}

static bool
load_binding(const Datum *values, const bool *nulls, void *arg)
{
	Binding    *binding;

	if (nulls[0] || nulls[1])
		return false;
	if (nbindings == bindings_capacity)
	{
		bindings_capacity = Max(16, bindings_capacity * 2);
		bindings = bindings == NULL
			? MemoryContextAlloc(bindings_cxt, sizeof(Binding) * bindings_capacity)
			: repalloc(bindings, sizeof(Binding) * bindings_capacity);
	}
	binding = &bindings[nbindings++];
	binding->pattern = MemoryContextStrdup(bindings_cxt, TextDatumGetCString(values[0]));
	binding->queue_name = MemoryContextStrdup(bindings_cxt, TextDatumGetCString(values[1]));
	binding->compiled_regex = MemoryContextStrdup(bindings_cxt, compiled_regex(binding->pattern));
	binding->literal_prefix = strcspn(binding->pattern, "*#");
	return false;
}

static int
binding_order(const void *a, const void *b)
{
	const Binding *x = a;
	const Binding *y = b;
	int			c = strcmp(x->pattern, y->pattern);

	return c != 0 ? c : strcmp(x->queue_name, y->queue_name);
}

/* Reads pgmq.topic_bindings again when it changed; an invalidation during the read means reading again. */
static void
bindings_load(void)
{
	static const char *const columns[] = {"pattern", "queue_name"};
	static bool callback_registered = false;

	if (!callback_registered)
	{
		bindings_cxt = AllocSetContextCreate(TopMemoryContext, "queue_ext topic bindings",
											 ALLOCSET_DEFAULT_SIZES);
		CacheRegisterRelcacheCallback(forget_bindings, (Datum) 0);
		callback_registered = true;
	}
	/* A binding another session committed, even inside this transaction block. */
	AcceptInvalidationMessages();
	while (bindings_loaded != bindings_changes || !OidIsValid(bindings_relid))
	{
		uint64		change = bindings_changes;

		bindings_loaded = 0;	/* until a read completes: an error leaves nothing valid */
		bindings_relid = get_relname_relid("topic_bindings", get_namespace_oid(QUEUE_SCHEMA, false));
		MemoryContextReset(bindings_cxt);
		bindings = NULL;
		nbindings = bindings_capacity = 0;
		(void) catalog_scan("topic_bindings", columns, lengthof(columns), load_binding, NULL);
		if (nbindings > 0)
			qsort(bindings, nbindings, sizeof(Binding), binding_order);
		bindings_loaded = change;
		if (!OidIsValid(bindings_relid))
			break;				/* no table (before the update to 0.6.0): no bindings */
	}
}

static int
name_order(const ListCell *a, const ListCell *b)
{
	return strcmp(strVal(lfirst(a)), strVal(lfirst(b)));
}

/* The queues key routes to that the caller may see, by name, each once; NIL when none. */
static List *
routed_queues(const char *key)
{
	int			key_len = strlen(key);
	List	   *names = NIL;

	bindings_load();
	for (int i = 0; i < nbindings; i++)
	{
		QueueEntry *queue;

		if (!topic_matches(&bindings[i], key, key_len) ||
			list_member(names, makeString(bindings[i].queue_name)))
			continue;
		queue = queue_find(bindings[i].queue_name);
		if (queue != NULL && queue_visible_to_caller(queue))
			names = lappend(names, makeString(pstrdup(bindings[i].queue_name)));
	}
	list_sort(names, name_order);
	return names;
}

/* ---- binding ---- */

static QueueEntry *
bound_queue_arg(FunctionCallInfo fcinfo, int argno)
{
	char	   *name = text_arg_or_null(fcinfo, argno);

	if (name == NULL || name[0] == '\0')
		ereport(ERROR,
				(errcode(name == NULL ? ERRCODE_NULL_VALUE_NOT_ALLOWED : ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("queue_name cannot be NULL or empty")));
	return queue_lookup(name, NEED_MANAGE);
}

/* bind_topic(pattern, queue_name): messages sent with a key the pattern matches go to the queue too */
QUEUE_EXT_ENTRY(queue_ext_bind_topic)
{
	static SPIPlanPtr plan = NULL;
	char	   *pattern = text_arg_or_null(fcinfo, 0);
	QueueEntry *queue;
	Datum		values[2];

	check_topic_text("pattern", pattern, true);
	queue = bound_queue_arg(fcinfo, 1);
	spi_connect_or_error();
	if (plan == NULL)
	{
		Oid			argtypes[2] = {TEXTOID, TEXTOID};

		plan = spi_prepare_kept("INSERT INTO pgmq.topic_bindings (pattern, queue_name) VALUES ($1, $2) "
								"ON CONFLICT ON CONSTRAINT topic_bindings_unique_pattern_queue DO NOTHING",
								2, argtypes);
	}
	values[0] = CStringGetTextDatum(pattern);
	values[1] = CStringGetTextDatum(queue->registered_name);
	if (SPI_execute_plan(plan, values, NULL, false, 0) != SPI_OK_INSERT)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not bind pattern \"%s\" to queue \"%s\"", pattern, queue->names.name)));
	SPI_finish();
	PG_RETURN_VOID();
}

/* unbind_topic(pattern, queue_name) -> boolean: false when there was no such binding */
QUEUE_EXT_ENTRY(queue_ext_unbind_topic)
{
	static SPIPlanPtr plan = NULL;
	char	   *pattern = text_arg_or_null(fcinfo, 0);
	char	   *name = text_arg_or_null(fcinfo, 1);
	QueueEntry *queue;
	Datum		values[2];
	uint64		removed;

	if (pattern == NULL || pattern[0] == '\0')
		ereport(ERROR,
				(errcode(pattern == NULL ? ERRCODE_NULL_VALUE_NOT_ALLOWED : ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pattern cannot be NULL or empty")));
	if (name == NULL || name[0] == '\0')
		(void) bound_queue_arg(fcinfo, 1);	/* raises */
	/* A queue that is gone, or that the caller cannot see, has no bindings to remove. */
	queue = strlen(name) <= QUEUE_NAME_MAX_LEN ? queue_find(name) : NULL;
	if (queue == NULL || !queue_visible_to_caller(queue))
		PG_RETURN_BOOL(false);
	queue_check_access(queue, NEED_MANAGE);
	spi_connect_or_error();
	if (plan == NULL)
	{
		Oid			argtypes[2] = {TEXTOID, TEXTOID};

		plan = spi_prepare_kept("DELETE FROM pgmq.topic_bindings WHERE pattern = $1 AND queue_name = $2",
								2, argtypes);
	}
	values[0] = CStringGetTextDatum(pattern);
	values[1] = CStringGetTextDatum(queue->registered_name);
	if (SPI_execute_plan(plan, values, NULL, false, 0) != SPI_OK_DELETE)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not unbind pattern \"%s\" from queue \"%s\"", pattern, queue->names.name)));
	removed = SPI_processed;
	SPI_finish();
	PG_RETURN_BOOL(removed > 0);
}

PG_FUNCTION_INFO_V1(queue_ext_topic_bindings_changed);

/* Statement trigger on pgmq.topic_bindings: every backend reads the bindings again. */
Datum
queue_ext_topic_bindings_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("_topic_bindings_changed() must be called as a trigger")));
	CacheInvalidateRelcacheByRelid(RelationGetRelid(((TriggerData *) fcinfo->context)->tg_relation));
	return PointerGetDatum(NULL);
}

/* ---- routing ---- */

/* test_routing(routing_key) -> setof (pattern, queue_name, compiled_regex): the bindings the key matches */
QUEUE_EXT_ENTRY(queue_ext_test_routing)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *key = text_arg_or_null(fcinfo, 0);
	int			key_len;

	check_topic_text("routing_key", key, false);
	key_len = strlen(key);
	srf_begin(fcinfo);
	bindings_load();
	for (int i = 0; i < nbindings; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};
		QueueEntry *queue;

		if (!topic_matches(&bindings[i], key, key_len))
			continue;
		queue = queue_find(bindings[i].queue_name);
		if (queue == NULL || !queue_visible_to_caller(queue))
			continue;
		values[0] = CStringGetTextDatum(bindings[i].pattern);
		values[1] = CStringGetTextDatum(bindings[i].queue_name);
		values[2] = CStringGetTextDatum(bindings[i].compiled_regex);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* The routing key of a send_topic call, checked; the message, not NULL. */
static char *
routing_key_arg(FunctionCallInfo fcinfo)
{
	char	   *key = text_arg_or_null(fcinfo, 0);

	check_topic_text("routing_key", key, false);
	return key;
}

/* Where send_topic's msg_ids go: nowhere (not DestNone, which SPI takes a SELECT into for a utility statement). */
static bool
discard_receive(TupleTableSlot *slot, DestReceiver *self)
{
	return true;
}

static void
discard_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

static void
discard_nothing(DestReceiver *self)
{
}

static DestReceiver discard_ids = {
	.receiveSlot = discard_receive,
	.rStartup = discard_startup,
	.rShutdown = discard_nothing,
	.rDestroy = discard_nothing,
	.mydest = DestTuplestore,
};

/* send_topic(routing_key, msg[, headers], delay) -> integer: how many queues got the message */
static Datum
send_topic(FunctionCallInfo fcinfo, int headers_argno, int delay_argno)
{
	char	   *key = routing_key_arg(fcinfo);
	Datum		headers = (Datum) 0;
	bool		headers_null = true;
	int32		delay = 0;
	TimestampTz vt;
	List	   *names;
	ListCell   *lc;
	int			sent_to = 0;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("msg cannot be NULL")));
	if (headers_argno >= 0 && !PG_ARGISNULL(headers_argno))
	{
		headers = PG_GETARG_DATUM(headers_argno);
		headers_null = false;
	}
	if (delay_argno >= 0)
		delay = int32_arg_not_null(fcinfo, delay_argno, "delay");
	if (delay < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("delay cannot be negative, got: %d", delay)));
	vt = timestamp_after_seconds(delay);

	names = routed_queues(key);
	foreach(lc, names)
	{
		QueueEntry *queue = queue_lookup(strVal(lfirst(lc)), NEED_PUBLISH);

		(void) send_to_queue(queue, vt, PG_GETARG_DATUM(1), false, headers, headers_null, &discard_ids);
		sent_to++;
	}
	PG_RETURN_INT32(sent_to);
}

/* send_topic(routing_key, msg) */
QUEUE_EXT_ENTRY(queue_ext_send_topic)
{
	return send_topic(fcinfo, -1, -1);
}

/* send_topic(routing_key, msg, delay integer) */
QUEUE_EXT_ENTRY(queue_ext_send_topic_delay)
{
	return send_topic(fcinfo, -1, 2);
}

/* send_topic(routing_key, msg, headers, delay integer) */
QUEUE_EXT_ENTRY(queue_ext_send_topic_headers_delay)
{
	return send_topic(fcinfo, 2, 3);
}

/* Where a batch's msg_ids go: appended to the call's result beside their queue's name. */
typedef struct RoutedIds
{
	DestReceiver pub;
	ReturnSetInfo *rsinfo;
	const char *queue_name;
} RoutedIds;

static bool
routed_id_receive(TupleTableSlot *slot, DestReceiver *self)
{
	RoutedIds  *r = (RoutedIds *) self;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	values[0] = CStringGetTextDatum(r->queue_name);
	values[1] = slot_getattr(slot, 1, &nulls[1]);
	tuplestore_putvalues(r->rsinfo->setResult, r->rsinfo->setDesc, values, nulls);
	return true;
}

/* send_batch_topic(routing_key, msgs[, headers][, delay]) -> setof (queue_name, msg_id) */
static Datum
send_batch_topic(FunctionCallInfo fcinfo, int headers_argno, int delay_argno, bool delay_is_timestamp)
{
	char	   *key = routing_key_arg(fcinfo);
	ArrayType  *msgs = PG_ARGISNULL(1) ? NULL : PG_GETARG_ARRAYTYPE_P(1);
	ArrayType  *headers = headers_argno >= 0 && !PG_ARGISNULL(headers_argno)
		? PG_GETARG_ARRAYTYPE_P(headers_argno) : NULL;
	TimestampTz vt = GetCurrentTimestamp();
	RoutedIds	receiver = {
		.pub = {
			.receiveSlot = routed_id_receive,
			.rStartup = discard_startup,
			.rShutdown = discard_nothing,
			.rDestroy = discard_nothing,
			.mydest = DestTuplestore,
		},
		.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo,
	};
	List	   *names;
	ListCell   *lc;

	(void) check_batch_arrays(msgs, msgs == NULL, headers);
	if (delay_argno >= 0 && delay_is_timestamp)
	{
		reject_null_arg(fcinfo, delay_argno, "delay");
		vt = PG_GETARG_TIMESTAMPTZ(delay_argno);
	}
	else if (delay_argno >= 0)
		vt = timestamp_after_seconds(int32_arg_not_null(fcinfo, delay_argno, "delay"));

	srf_begin(fcinfo);
	names = routed_queues(key);
	foreach(lc, names)
	{
		QueueEntry *queue = queue_lookup(strVal(lfirst(lc)), NEED_PUBLISH);

		receiver.queue_name = queue->registered_name;
		(void) send_batch_to_queue(queue, vt, msgs, headers, &receiver.pub);
	}
	return (Datum) 0;
}

QUEUE_EXT_ENTRY(queue_ext_send_batch_topic)
{
	return send_batch_topic(fcinfo, -1, -1, false);
}

QUEUE_EXT_ENTRY(queue_ext_send_batch_topic_headers)
{
	return send_batch_topic(fcinfo, 2, -1, false);
}

QUEUE_EXT_ENTRY(queue_ext_send_batch_topic_delay_seconds)
{
	return send_batch_topic(fcinfo, -1, 2, false);
}

QUEUE_EXT_ENTRY(queue_ext_send_batch_topic_delay_at)
{
	return send_batch_topic(fcinfo, -1, 2, true);
}

QUEUE_EXT_ENTRY(queue_ext_send_batch_topic_headers_delay_seconds)
{
	return send_batch_topic(fcinfo, 2, 3, false);
}

QUEUE_EXT_ENTRY(queue_ext_send_batch_topic_headers_delay_at)
{
	return send_batch_topic(fcinfo, 2, 3, true);
}
