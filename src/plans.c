/*
 * plans.c
 *	  The SQL behind every hot-path operation: prepared once per queue, built
 *	  with a plan shape that does not depend on statistics, and run.
 *
 * Each QueuePlanKind has one statement template. queue_plan() fills in the
 * queue's quoted, schema-qualified identifiers, prepares it with SPI, keeps it
 * in the queue's cache entry and hands back the same plan on every later call;
 * values only ever travel as $n parameters. Nothing is re-planned per call.
 *
 * Plans are generic (no call pays for planning) and must not depend on table
 * statistics: a queue is empty when its plans are first built and may hold
 * millions of rows an hour later, and a plan costed for ten rows (a seq scan,
 * a hash join) is a disaster at a million. So every hot-path plan is built
 * with seq and bitmap scans disabled, which leaves the planner one sane shape:
 * walk the primary key. Reads pick ids in msg_id order in a sub-select and
 * touch the rows by "msg_id = ANY(ARRAY(...))", an index lookup whatever the
 * limit. The plan cache may rebuild a plan after an invalidation, at the next
 * execution, under the caller's settings; queue_plan() notices a plan that
 * needs building, or was rebuilt by someone else (cheap checks of validity,
 * generation and search_path on every call), and builds it itself under the
 * index-only settings.
 *
 * Time is passed in, not read inside the statement: the caller takes
 * clock_timestamp() once, so "visible now" and "invisible until now + vt" in
 * one read agree with each other, as they do in pgmq.
 *
 * Reads and pops also start at the queue's scan hint (scan_hint.c), so they
 * step over the dead entries deletes leave at the head of the index only once.
 *
 * Every function in a template is schema-qualified: the plan cache re-parses
 * a statement under the caller's search_path, and an unqualified function
 * whose pg_catalog version needs a cast (unnest(anyarray)) would lose to an
 * exact match planted earlier in it. Operators here all have exact matches in
 * pg_catalog, which is searched first unless a caller lists it later.
 * QP_FIRST_LIVE_ID is not read-only on purpose: SPI then takes a fresh
 * snapshot for it, which scan_hint.c needs (a read-only statement would run
 * on the caller's, possibly seconds old in read_with_poll).
 *
 * Template placeholders, replaced by quoted qualified names: {queue} the queue
 * table, {archive} its archive, {sequence} its msg_id sequence.
 */
#include "queue_ext.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi_priv.h"
#include "executor/tstoreReceiver.h"
#include "funcapi.h"
#include "nodes/params.h"
#include "utils/guc.h"
#include "utils/plancache.h"
#include "utils/resowner.h"
#include "lib/stringinfo.h"

#define MESSAGE_COLUMNS "msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers"
#define MESSAGE_COLUMNS_M "m.msg_id, m.read_ct, m.enqueued_at, m.last_read_at, m.vt, m.message, m.headers"

/*
 * Fragments of job statements. m is the queue row. Headers that are not an
 * object (pgmq allows any jsonb) are kept under x-queue-ext-headers once
 * queue_ext has to record something in them.
 */
#define HEADERS_OBJECT(h) \
	"(CASE WHEN pg_catalog.jsonb_typeof(" h ") = 'object' THEN " h \
	" WHEN " h " IS NULL THEN '{}'::pg_catalog.jsonb" \
	" ELSE pg_catalog.jsonb_build_object('" HEADER_ORIGINAL "', " h ") END)"

/* The current delivery was not nacked: a receipt for it is still good. */
#define NOT_NACKED \
	"(m.headers -> '" HEADER_NACKED "') IS DISTINCT FROM pg_catalog.to_jsonb(m.read_ct)"

/* No worker holds the message: never delivered, lapsed, or waiting for a retry. */
#define NOT_LEASED(now) \
	"(m.vt <= " now " OR m.read_ct = 0 OR NOT " NOT_NACKED ")"

/* The errors recorded so far, the oldest dropped once there are ERROR_HISTORY_MAX. */
#define ERRORS_SO_FAR \
	"(CASE WHEN pg_catalog.jsonb_typeof(m.headers -> '" HEADER_ERRORS "') <> 'array'" \
	" OR m.headers -> '" HEADER_ERRORS "' IS NULL THEN '[]'::pg_catalog.jsonb" \
	" WHEN pg_catalog.jsonb_array_length(m.headers -> '" HEADER_ERRORS "') >= " CppAsString2(ERROR_HISTORY_MAX) \
	" THEN (m.headers -> '" HEADER_ERRORS "') - 0" \
	" ELSE m.headers -> '" HEADER_ERRORS "' END)"

/* Headers after a nack of the current delivery with error $4 at $5. */
#define NACKED_HEADERS \
	HEADERS_OBJECT("m.headers") " || pg_catalog.jsonb_build_object(" \
	"'" HEADER_NACKED "', m.read_ct, " \
	"'" HEADER_ERRORS "', " ERRORS_SO_FAR " || pg_catalog.jsonb_build_array(" \
	"pg_catalog.jsonb_build_object('attempt', m.read_ct, 'error', $4, 'at', $5)))"

/* Nacks delivery $2 of message $1: visible again at $3, error $4 recorded at $5. */
#define NACK_UPDATE(extra_conditions) \
	"UPDATE {queue} m SET vt = $3, headers = " NACKED_HEADERS " " \
	"WHERE m.msg_id = $1 AND m.read_ct = $2" extra_conditions " RETURNING m.msg_id"

/* A message's headers with queue_ext's fence removed, as it leaves its queue. */
#define LEAVING_HEADERS(h) "(" HEADERS_OBJECT(h) " - '" HEADER_NACKED "')"

/*
 * Archives the rows of CTE "gone" with an outcome: state, time, attempts,
 * and an extra jsonb object merged in (the result, the reason).
 */
#define ARCHIVE_WITH_OUTCOME(state, at, attempts, extra) \
	"INSERT INTO {archive} (" MESSAGE_COLUMNS ") " \
	"SELECT g.msg_id, " attempts ", g.enqueued_at, g.last_read_at, g.vt, g.message, " \
	LEAVING_HEADERS("g.headers") " || pg_catalog.jsonb_build_object('" HEADER_OUTCOME "', " \
	"pg_catalog.jsonb_build_object('state', " state ", 'at', " at ", 'attempts', " attempts ") || " extra ") " \
	"FROM gone g"

/* A message's FIFO group; the expression pgmq.create_fifo_index indexes, verbatim. */
#define GROUP_OF(h) \
	"COALESCE(" h " ->> '" HEADER_GROUP "', '" DEFAULT_GROUP "')"

#define RESULT_OBJECT(r) \
	"(CASE WHEN " r " IS NULL THEN '{}'::pg_catalog.jsonb ELSE pg_catalog.jsonb_build_object('result', " r ") END)"

typedef struct PlanTemplate
{
	const char *sql;
	int			nargs;
	Oid			argtypes[9];
	bool		index_paths_only;	/* plan with seq and bitmap scans disabled */
	bool		read_only;
	int			expected_rc;	/* what SPI returns when the statement ran */
	const char *operation;		/* for error messages */
} PlanTemplate;

static const PlanTemplate plan_templates[QP_COUNT] = {
	[QP_SEND] = {
		"INSERT INTO {queue} (vt, message, headers) VALUES ($1, $2, $3) RETURNING msg_id",
		3, {TIMESTAMPTZOID, JSONBOID, JSONBOID}, true, false,
		SPI_OK_INSERT_RETURNING, "send"
	},
	/*
	 * A send with an idempotency key ($5, of queue $4): claims the key until
	 * $6 unless it is live at $7, and inserts the message under the msg_id it
	 * claimed (taken from the queue's sequence, as a plain send's).
	 */
	[QP_SEND_KEYED] = {
		"WITH claim AS ("
		" INSERT INTO pgmq.idempotency_keys AS k (queue_name, idempotency_key, msg_id, expires_at)"
		" VALUES ($4, $5, pg_catalog.nextval('{sequence}'::pg_catalog.regclass), $6)"
		" ON CONFLICT (queue_name, idempotency_key) DO UPDATE"
		" SET msg_id = EXCLUDED.msg_id, expires_at = EXCLUDED.expires_at WHERE k.expires_at <= $7"
		" RETURNING k.msg_id) "
		"INSERT INTO {queue} (msg_id, vt, message, headers) OVERRIDING SYSTEM VALUE "
		"SELECT c.msg_id, $1, $2, $3 FROM claim c RETURNING msg_id",
		7, {TIMESTAMPTZOID, JSONBOID, JSONBOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID},
		true, false, SPI_OK_INSERT_RETURNING, "send"
	},
	/* The msg_id a live key ($2 of queue $1) was first sent as. */
	[QP_IDEMPOTENT_MSG_ID] = {
		"SELECT k.msg_id FROM pgmq.idempotency_keys k WHERE k.queue_name = $1 AND k.idempotency_key = $2",
		2, {TEXTOID, TEXTOID}, true, false,
		SPI_OK_SELECT, "send"
	},
	[QP_SEND_BATCH] = {
		"INSERT INTO {queue} (vt, message, headers) "
		"SELECT $1, b.message, b.headers "
		"FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3)) AS b(message, headers) "
		"RETURNING msg_id",
		3, {TIMESTAMPTZOID, JSONBARRAYOID, JSONBARRAYOID}, true, false,
		SPI_OK_INSERT_RETURNING, "send_batch"
	},
	[QP_READ] = {
		"UPDATE {queue} m SET vt = $3, read_ct = m.read_ct + 1, last_read_at = $2 "
		"WHERE m.msg_id = ANY(ARRAY("
		" SELECT msg_id FROM {queue} WHERE msg_id >= $4 AND vt <= $2"
		" ORDER BY msg_id LIMIT $1 FOR UPDATE SKIP LOCKED)) "
		"RETURNING " MESSAGE_COLUMNS_M,
		4, {INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID}, true, false,
		SPI_OK_UPDATE_RETURNING, "read"
	},
	[QP_READ_CONDITIONAL] = {
		"UPDATE {queue} m SET vt = $3, read_ct = m.read_ct + 1, last_read_at = $2 "
		"WHERE m.msg_id = ANY(ARRAY("
		" SELECT msg_id FROM {queue} WHERE msg_id >= $4 AND vt <= $2 AND message @> $5"
		" ORDER BY msg_id LIMIT $1 FOR UPDATE SKIP LOCKED)) "
		"RETURNING " MESSAGE_COLUMNS_M,
		5, {INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID, JSONBOID}, true, false,
		SPI_OK_UPDATE_RETURNING, "read"
	},
	[QP_POP] = {
		"DELETE FROM {queue} m "
		"WHERE m.msg_id = ANY(ARRAY("
		" SELECT msg_id FROM {queue} WHERE msg_id >= $3 AND vt <= $2"
		" ORDER BY msg_id LIMIT $1 FOR UPDATE SKIP LOCKED)) "
		"RETURNING " MESSAGE_COLUMNS_M,
		3, {INT8OID, TIMESTAMPTZOID, INT8OID}, true, false,
		SPI_OK_DELETE_RETURNING, "pop"
	},
	[QP_SET_VT_ONE] = {
		"UPDATE {queue} SET vt = $1 WHERE msg_id = $2 RETURNING " MESSAGE_COLUMNS,
		2, {TIMESTAMPTZOID, INT8OID}, true, false,
		SPI_OK_UPDATE_RETURNING, "set_vt"
	},
	[QP_SET_VT_MANY] = {
		"UPDATE {queue} SET vt = $1 WHERE msg_id = ANY($2) RETURNING " MESSAGE_COLUMNS,
		2, {TIMESTAMPTZOID, INT8ARRAYOID}, true, false,
		SPI_OK_UPDATE_RETURNING, "set_vt"
	},
	/*
	 * Deletes, archives and acks return each message's last_read_at (after
	 * its msg_id where the ids are the call's result): the read -> ack
	 * latency (latency.c).
	 */
	[QP_DELETE_ONE] = {
		"DELETE FROM {queue} WHERE msg_id = $1 RETURNING last_read_at",
		1, {INT8OID}, true, false,
		SPI_OK_DELETE_RETURNING, "delete"
	},
	[QP_DELETE_MANY] = {
		"DELETE FROM {queue} WHERE msg_id = ANY($1) RETURNING msg_id, last_read_at",
		1, {INT8ARRAYOID}, true, false,
		SPI_OK_DELETE_RETURNING, "delete"
	},
	[QP_ARCHIVE_ONE] = {
		"WITH gone AS (DELETE FROM {queue} WHERE msg_id = $1 RETURNING " MESSAGE_COLUMNS ") "
		"INSERT INTO {archive} (" MESSAGE_COLUMNS ") SELECT " MESSAGE_COLUMNS " FROM gone "
		"RETURNING last_read_at",
		1, {INT8OID}, true, false,
		SPI_OK_INSERT_RETURNING, "archive"
	},
	[QP_ARCHIVE_MANY] = {
		"WITH gone AS (DELETE FROM {queue} WHERE msg_id = ANY($1) RETURNING " MESSAGE_COLUMNS ") "
		"INSERT INTO {archive} (" MESSAGE_COLUMNS ") SELECT " MESSAGE_COLUMNS " FROM gone "
		"RETURNING msg_id, last_read_at",
		1, {INT8ARRAYOID}, true, false,
		SPI_OK_INSERT_RETURNING, "archive"
	},
	[QP_METRICS] = {
		"SELECT pg_catalog.count(*)::bigint,"
		" pg_catalog.count(*) FILTER (WHERE vt <= pg_catalog.now())::bigint,"
		" EXTRACT(epoch FROM (pg_catalog.now() - pg_catalog.max(enqueued_at)))::int,"
		" EXTRACT(epoch FROM (pg_catalog.now() - pg_catalog.min(enqueued_at)))::int,"
		" pg_catalog.now(),"
		" (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {sequence}) "
		"FROM {queue}",
		0, {InvalidOid}, false, true,
		SPI_OK_SELECT, "metrics"
	},
	/*
	 * Messages per state at $1 (pgmq.message_state's rules), and those
	 * enqueued before $2: one pass over the queue, for small queues and the
	 * census of large ones.
	 */
	[QP_STATE_COUNTS] = {
		"SELECT pg_catalog.count(*)::bigint,"
		" pg_catalog.count(*) FILTER (WHERE m.vt <= $1)::bigint,"
		" pg_catalog.count(*) FILTER (WHERE m.vt > $1 AND m.read_ct > 0 AND " NOT_NACKED ")::bigint,"
		" pg_catalog.count(*) FILTER (WHERE m.vt > $1 AND m.read_ct = 0)::bigint,"
		" pg_catalog.count(*) FILTER (WHERE m.vt > $1 AND m.read_ct > 0 AND NOT " NOT_NACKED ")::bigint,"
		" pg_catalog.count(*) FILTER (WHERE m.enqueued_at < $2)::bigint "
		"FROM {queue} m",
		2, {TIMESTAMPTZOID, TIMESTAMPTZOID}, false, true,
		SPI_OK_SELECT, "counting the messages of"
	},
	/* Rows of the queue, or of its archive, where their gauges are unknown. */
	[QP_QUEUE_ROWS] = {
		"SELECT pg_catalog.count(*) FROM {queue}",
		0, {InvalidOid}, false, true,
		SPI_OK_SELECT, "counting the rows of"
	},
	[QP_ARCHIVE_ROWS] = {
		"SELECT pg_catalog.count(*) FROM {archive}",
		0, {InvalidOid}, false, true,
		SPI_OK_SELECT, "counting the archived rows of"
	},
	/* The first and the last message's enqueued_at, from the two ends of the primary key. */
	[QP_AGE_ENDS] = {
		"SELECT (SELECT enqueued_at FROM {queue} ORDER BY msg_id LIMIT 1),"
		" (SELECT enqueued_at FROM {queue} ORDER BY msg_id DESC LIMIT 1)",
		0, {InvalidOid}, true, true,
		SPI_OK_SELECT, "reading the age of"
	},
	[QP_SEQUENCE_POSITION] = {
		"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {sequence}",
		0, {InvalidOid}, false, true,
		SPI_OK_SELECT, "reading the msg_id sequence of"
	},
	[QP_FIRST_LIVE_ID] = {
		"SELECT pg_catalog.min(msg_id) FROM {queue} WHERE msg_id >= $1",
		1, {INT8OID}, true, false,
		SPI_OK_SELECT, "finding the first message of"
	},
	[QP_ACK] = {
		"DELETE FROM {queue} m WHERE m.msg_id = $1 AND m.read_ct = $2 AND " NOT_NACKED
		" RETURNING m.last_read_at",
		2, {INT8OID, INT4OID}, true, false,
		SPI_OK_DELETE_RETURNING, "ack"
	},
	[QP_ACK_ARCHIVE] = {
		"WITH gone AS (DELETE FROM {queue} m WHERE m.msg_id = $1 AND m.read_ct = $2 AND " NOT_NACKED
		" RETURNING m.*) "
		ARCHIVE_WITH_OUTCOME("'completed'", "$3", "g.read_ct", RESULT_OBJECT("$4::pg_catalog.jsonb"))
		" RETURNING last_read_at",
		4, {INT8OID, INT4OID, TIMESTAMPTZOID, JSONBOID}, true, false,
		SPI_OK_INSERT_RETURNING, "ack"
	},
	[QP_ACK_MANY] = {
		"DELETE FROM {queue} m "
		"USING ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS r(msg_id, read_ct) "
		"WHERE m.msg_id = r.msg_id AND m.read_ct = r.read_ct AND " NOT_NACKED " "
		"RETURNING m.msg_id, m.last_read_at",
		2, {INT8ARRAYOID, INT4ARRAYOID}, true, false,
		SPI_OK_DELETE_RETURNING, "ack_batch"
	},
	[QP_ACK_MANY_ARCHIVE] = {
		"WITH gone AS (DELETE FROM {queue} m "
		"USING ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS r(msg_id, read_ct) "
		"WHERE m.msg_id = r.msg_id AND m.read_ct = r.read_ct AND " NOT_NACKED " RETURNING m.*) "
		ARCHIVE_WITH_OUTCOME("'completed'", "$3", "g.read_ct", RESULT_OBJECT("$4::pg_catalog.jsonb"))
		" RETURNING msg_id, last_read_at",
		4, {INT8ARRAYOID, INT4ARRAYOID, TIMESTAMPTZOID, JSONBOID}, true, false,
		SPI_OK_INSERT_RETURNING, "ack_batch"
	},
	/* The common nack: no per-message overrides, so the caller computed vt ($3). */
	[QP_NACK] = {
		NACK_UPDATE(" AND " NOT_NACKED
					" AND NOT COALESCE(m.headers ?| ARRAY['" HEADER_MAX_ATTEMPTS "', '"
					HEADER_BACKOFF "'], false)"),
		5, {INT8OID, INT4OID, TIMESTAMPTZOID, TEXTOID, TIMESTAMPTZOID}, true, false,
		SPI_OK_UPDATE_RETURNING, "nack"
	},
	/* Any other nack: lock the delivery and read its overrides first. */
	[QP_NACK_LOCK] = {
		"SELECT m.headers FROM {queue} m "
		"WHERE m.msg_id = $1 AND m.read_ct = $2 AND " NOT_NACKED " FOR UPDATE",
		2, {INT8OID, INT4OID}, true, false,
		SPI_OK_SELECT, "nack"
	},
	[QP_NACK_RECORD] = {
		NACK_UPDATE(""),
		5, {INT8OID, INT4OID, TIMESTAMPTZOID, TEXTOID, TIMESTAMPTZOID}, true, false,
		SPI_OK_UPDATE_RETURNING, "nack"
	},
	/*
	 * Dead letters leave their queue with a record of where they came from
	 * ($2: queue, attempts: read_ct - $3, $4: now, $5: reason) ...
	 */
	[QP_DEAD_LETTER_TAKE] = {
		"DELETE FROM {queue} m WHERE m.msg_id = ANY($1) "
		"RETURNING m.enqueued_at, m.message, " LEAVING_HEADERS("m.headers")
		" || pg_catalog.jsonb_build_object('" HEADER_DEAD_LETTER "', pg_catalog.jsonb_build_object("
		"'queue', $2, 'msg_id', m.msg_id, 'attempts', m.read_ct - $3, "
		"'enqueued_at', m.enqueued_at, 'dead_at', $4, 'reason', $5))",
		5, {INT8ARRAYOID, TEXTOID, INT4OID, TIMESTAMPTZOID, TEXTOID}, true, false,
		SPI_OK_DELETE_RETURNING, "dead-lettering"
	},
	/* ... and arrive in the dead-letter queue (this plan is the dead-letter queue's) ... */
	[QP_DEAD_LETTER_RECEIVE] = {
		"INSERT INTO {queue} (enqueued_at, vt, message, headers) "
		"SELECT d.enqueued_at, $1, d.message, d.headers "
		"FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3), pg_catalog.unnest($4))"
		" AS d(enqueued_at, message, headers) "
		"RETURNING msg_id",
		4, {TIMESTAMPTZOID, TIMESTAMPTZARRAYOID, JSONBARRAYOID, JSONBARRAYOID}, true, false,
		SPI_OK_INSERT_RETURNING, "dead-lettering into"
	},
	/* ... or, when the queue has no dead-letter queue, in its own archive. */
	[QP_DEAD_TO_ARCHIVE] = {
		"WITH gone AS (DELETE FROM {queue} m WHERE m.msg_id = ANY($1) RETURNING m.*) "
		ARCHIVE_WITH_OUTCOME("'dead'", "$4", "g.read_ct - $3",
							 "pg_catalog.jsonb_build_object('reason', $5)")
		" RETURNING msg_id",
		5, {INT8ARRAYOID, TEXTOID, INT4OID, TIMESTAMPTZOID, TEXTOID}, true, false,
		SPI_OK_INSERT_RETURNING, "dead-lettering"
	},
	/* Redrive: the dead letters a queue holds as a dead-letter queue ... */
	[QP_DEAD_LETTER_IDS] = {
		"SELECT pg_catalog.array_agg(m.msg_id ORDER BY m.msg_id) FROM {queue} m "
		"WHERE pg_catalog.jsonb_typeof(m.headers) = 'object' AND m.headers ? '" HEADER_DEAD_LETTER "'",
		0, {InvalidOid}, false, true,
		SPI_OK_SELECT, "redrive"
	},
	[QP_REDRIVE_TAKE] = {
		"DELETE FROM {queue} m WHERE m.msg_id = ANY($1) AND " NOT_LEASED("$2")
		" AND pg_catalog.jsonb_typeof(m.headers) = 'object' AND m.headers ? '" HEADER_DEAD_LETTER "' "
		"RETURNING m.msg_id, m.headers -> '" HEADER_DEAD_LETTER "' ->> 'queue', m.message, "
		"NULLIF(m.headers - '" HEADER_DEAD_LETTER "' - '" HEADER_NACKED "', '{}'::pg_catalog.jsonb)",
		2, {INT8ARRAYOID, TIMESTAMPTZOID}, true, false,
		SPI_OK_DELETE_RETURNING, "redrive"
	},
	/* ... and those in its own archive. */
	[QP_ARCHIVED_DEAD_IDS] = {
		"SELECT pg_catalog.array_agg(a.msg_id ORDER BY a.msg_id) FROM {archive} a "
		"WHERE a.headers -> '" HEADER_OUTCOME "' ->> 'state' = 'dead'",
		0, {InvalidOid}, false, true,
		SPI_OK_SELECT, "redrive"
	},
	[QP_REDRIVE_TAKE_ARCHIVED] = {
		"DELETE FROM {archive} a WHERE a.msg_id = ANY($1)"
		" AND a.headers -> '" HEADER_OUTCOME "' ->> 'state' = 'dead' "
		"RETURNING a.msg_id, NULL::pg_catalog.text, a.message, "
		"NULLIF(a.headers - '" HEADER_OUTCOME "' - '" HEADER_NACKED "', '{}'::pg_catalog.jsonb)",
		1, {INT8ARRAYOID}, true, false,
		SPI_OK_DELETE_RETURNING, "redrive"
	},
	[QP_CANCEL] = {
		"DELETE FROM {queue} m WHERE m.msg_id = $1 AND " NOT_LEASED("$2"),
		2, {INT8OID, TIMESTAMPTZOID}, true, false,
		SPI_OK_DELETE, "cancel"
	},
	[QP_CANCEL_ARCHIVE] = {
		"WITH gone AS (DELETE FROM {queue} m WHERE m.msg_id = $1 AND " NOT_LEASED("$2")
		" RETURNING m.*) "
		ARCHIVE_WITH_OUTCOME("'cancelled'", "$2", "g.read_ct", "'{}'::pg_catalog.jsonb"),
		2, {INT8OID, TIMESTAMPTZOID}, true, false,
		SPI_OK_INSERT, "cancel"
	},
	/* Progress ($3, NULL: keep) and a heartbeat (vt $4, NULL: keep), fenced. */
	[QP_PROGRESS] = {
		"UPDATE {queue} m SET vt = COALESCE($4, m.vt), "
		"headers = CASE WHEN $3::pg_catalog.jsonb IS NULL THEN m.headers ELSE "
		HEADERS_OBJECT("m.headers") " || pg_catalog.jsonb_build_object('" HEADER_PROGRESS "', $3) END "
		"WHERE m.msg_id = $1 AND m.read_ct = $2 AND " NOT_NACKED " "
		"RETURNING m.msg_id",
		4, {INT8OID, INT4OID, JSONBOID, TIMESTAMPTZOID}, true, false,
		SPI_OK_UPDATE_RETURNING, "progress"
	},
	/*
	 * Priorities (priority.c) pick and lock messages themselves; a pop takes
	 * the locked messages $1 and returns them in the order $1 lists them.
	 */
	[QP_POP_LOCKED] = {
		"WITH gone AS (DELETE FROM {queue} m WHERE m.msg_id = ANY($1) RETURNING " MESSAGE_COLUMNS_M ") "
		"SELECT g.msg_id, g.read_ct, g.enqueued_at, g.last_read_at, g.vt, g.message, g.headers "
		"FROM gone g JOIN ROWS FROM (pg_catalog.unnest($1)) WITH ORDINALITY AS o(msg_id, ord) "
		"ON o.msg_id = g.msg_id ORDER BY o.ord",
		1, {INT8ARRAYOID}, true, false,
		SPI_OK_SELECT, "pop"
	},
	/* The circuit breaker (breaker.c): the queue's row ($1: registered name) ... */
	[QP_BREAKER_LOCK] = {
		"SELECT b.state, b.window_started_at, b.acks, b.nacks, b.prev_acks, b.prev_nacks, "
		"b.opened_at, b.trips, b.trial_msg_id FROM pgmq.breaker_state b WHERE b.queue_name = $1 FOR UPDATE",
		1, {TEXTOID}, true, false,
		SPI_OK_SELECT, "counting outcomes for the circuit breaker of"
	},
	[QP_BREAKER_CREATE] = {
		"INSERT INTO pgmq.breaker_state (queue_name, window_started_at) VALUES ($1, $2) "
		"ON CONFLICT (queue_name) DO NOTHING",
		2, {TEXTOID, TIMESTAMPTZOID}, true, false,
		SPI_OK_INSERT, "counting outcomes for the circuit breaker of"
	},
	[QP_BREAKER_SAVE] = {
		"UPDATE pgmq.breaker_state SET state = $2, window_started_at = $3, acks = $4, nacks = $5, "
		"prev_acks = $6, prev_nacks = $7, opened_at = $8, trips = $9, "
		"trial_until = CASE WHEN $2 = 'half_open' THEN trial_until END, "
		"trial_msg_id = CASE WHEN $2 = 'half_open' THEN trial_msg_id END "
		"WHERE queue_name = $1",
		9, {TEXTOID, TEXTOID, TIMESTAMPTZOID, INT8OID, INT8OID, INT8OID, INT8OID, TIMESTAMPTZOID, INT8OID},
		true, false, SPI_OK_UPDATE, "counting outcomes for the circuit breaker of"
	},
	/*
	 * ... and the trial: open past its cooldown ($3), or a trial lapsed at $2;
	 * leased until $4. A reader that finds another taking it skips, never waits.
	 */
	[QP_BREAKER_TRIAL] = {
		"UPDATE pgmq.breaker_state SET state = 'half_open', trial_until = $4, trial_msg_id = NULL "
		"WHERE queue_name = (SELECT b.queue_name FROM pgmq.breaker_state b "
		" WHERE b.queue_name = $1 AND ((b.state = 'open' AND b.opened_at <= $3) "
		" OR (b.state = 'half_open' AND b.trial_until <= $2)) FOR UPDATE SKIP LOCKED) "
		"RETURNING queue_name",
		4, {TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID}, true, false,
		SPI_OK_UPDATE_RETURNING, "the circuit breaker trial of"
	},
	/* The message a trial read delivered ($2): its outcome decides. */
	[QP_BREAKER_TRIAL_MESSAGE] = {
		"UPDATE pgmq.breaker_state SET trial_msg_id = $2 WHERE queue_name = $1 AND state = 'half_open'",
		2, {TEXTOID, INT8OID}, true, false,
		SPI_OK_UPDATE, "the circuit breaker trial of"
	},
	/* Where the trial message ($1) stands: gone (no row), nacked, or still out. */
	[QP_BREAKER_TRIAL_FATE] = {
		"SELECT NOT " NOT_NACKED " FROM {queue} m WHERE m.msg_id = $1",
		1, {INT8OID}, true, false,
		SPI_OK_SELECT, "the circuit breaker trial of"
	},
	/* A trial read that found nothing: open again, as it was. */
	[QP_BREAKER_TRIAL_UNUSED] = {
		"UPDATE pgmq.breaker_state SET state = 'open', trial_until = NULL "
		"WHERE queue_name = $1 AND state = 'half_open'",
		1, {TEXTOID}, true, false,
		SPI_OK_UPDATE, "the circuit breaker trial of"
	},
	/*
	 * FIFO groups (group_read.c). The scan walks the queue in msg_id order
	 * from after $1, every row whatever its vt, to find each group's head.
	 */
	[QP_GROUP_SCAN] = {
		"SELECT m.msg_id, m.vt <= $3, " GROUP_OF("m.headers") " FROM {queue} m "
		"WHERE m.msg_id > $1 ORDER BY m.msg_id LIMIT $2",
		3, {INT8OID, INT8OID, TIMESTAMPTZOID}, true, false,
		SPI_OK_SELECT, "read_grouped"
	},
	/* Locks those of messages $1 still visible at $2; a locked one is another reader's. */
	[QP_GROUP_LOCK] = {
		"SELECT m.msg_id FROM {queue} m WHERE m.msg_id = ANY($1) AND m.vt <= $2 "
		"ORDER BY m.msg_id FOR UPDATE SKIP LOCKED",
		2, {INT8ARRAYOID, TIMESTAMPTZOID}, true, false,
		SPI_OK_SELECT, "read_grouped"
	},
	/* The next $3 messages of group $1 after its head $2 (the fifo index serves this). */
	[QP_GROUP_FOLLOWERS] = {
		"SELECT m.msg_id, m.vt <= $4 FROM {queue} m "
		"WHERE " GROUP_OF("m.headers") " = $1 AND m.msg_id > $2 ORDER BY m.msg_id LIMIT $3",
		4, {TEXTOID, INT8OID, INT8OID, TIMESTAMPTZOID}, true, false,
		SPI_OK_SELECT, "read_grouped"
	},
	/* Locks and leases those of heads $1 still visible at $2, in msg_id order. */
	[QP_GROUP_LEASE_HEADS] = {
		"UPDATE {queue} m SET vt = $3, read_ct = m.read_ct + 1, last_read_at = $2 "
		"WHERE m.msg_id = ANY(ARRAY("
		" SELECT h.msg_id FROM {queue} h WHERE h.msg_id = ANY($1) AND h.vt <= $2"
		" ORDER BY h.msg_id FOR UPDATE SKIP LOCKED)) "
		"RETURNING " MESSAGE_COLUMNS_M,
		3, {INT8ARRAYOID, TIMESTAMPTZOID, TIMESTAMPTZOID}, true, false,
		SPI_OK_UPDATE_RETURNING, "read_grouped"
	},
	/* Leases the locked message $1[1] (one of those below, without the ordering). */
	[QP_LEASE_LOCKED_ONE] = {
		"UPDATE {queue} m SET vt = $3, read_ct = m.read_ct + 1, last_read_at = $2 "
		"WHERE m.msg_id = ($1)[1] RETURNING " MESSAGE_COLUMNS_M,
		3, {INT8ARRAYOID, TIMESTAMPTZOID, TIMESTAMPTZOID}, true, false,
		SPI_OK_UPDATE_RETURNING, "read"
	},
	/*
	 * Leases the locked messages $1, returned in the order $1 lists them
	 * (grouped reads and priority reads).
	 */
	/*
	 * Messages whose last allowed delivery lapsed (maintenance dead-letters
	 * them): read max_attempts times, the message's own override first, as
	 * options.c reads it; $2 is the queue's max_attempts.
	 */
	[QP_EXHAUSTED_IDS] = {
		"SELECT pg_catalog.array_agg(e.msg_id ORDER BY e.msg_id) FROM ("
		" SELECT m.msg_id FROM {queue} m WHERE m.vt <= $1 AND m.read_ct >= "
		"  CASE WHEN pg_catalog.jsonb_typeof(m.headers -> '" HEADER_MAX_ATTEMPTS "') = 'number'"
		"   AND (m.headers ->> '" HEADER_MAX_ATTEMPTS "')::numeric BETWEEN 1 AND 1000000"
		"   AND (m.headers ->> '" HEADER_MAX_ATTEMPTS "')::numeric"
		"       = pg_catalog.floor((m.headers ->> '" HEADER_MAX_ATTEMPTS "')::numeric)"
		"  THEN (m.headers ->> '" HEADER_MAX_ATTEMPTS "')::numeric ELSE $2 END"
		" ORDER BY m.msg_id LIMIT $3 FOR UPDATE SKIP LOCKED) e",
		3, {TIMESTAMPTZOID, INT4OID, INT8OID}, false, false,
		SPI_OK_SELECT, "maintenance"
	},
	/* Messages a consumer holds: leased, and not nacked (max_in_flight counts them up to the cap). */
	[QP_IN_FLIGHT] = {
		"SELECT pg_catalog.count(*)::bigint FROM (SELECT 1 FROM {queue} m "
		"WHERE m.vt > $1 AND m.read_ct > 0 AND " NOT_NACKED " LIMIT $2) s",
		/*
		 * Through the queue's in-flight index (vt, read_ct > 0), never a scan
		 * of the backlog; not read-only: a snapshot of its own, taken after
		 * the in-flight lock.
		 */
		2, {TIMESTAMPTZOID, INT8OID}, true, false,
		SPI_OK_SELECT, "read"
	},
	[QP_LEASE_LOCKED] = {
		"WITH leased AS (UPDATE {queue} m SET vt = $3, read_ct = m.read_ct + 1, last_read_at = $2 "
		"WHERE m.msg_id = ANY($1) RETURNING " MESSAGE_COLUMNS_M ") "
		"SELECT l.msg_id, l.read_ct, l.enqueued_at, l.last_read_at, l.vt, l.message, l.headers "
		"FROM leased l JOIN ROWS FROM (pg_catalog.unnest($1)) WITH ORDINALITY AS o(msg_id, ord) "
		"ON o.msg_id = l.msg_id ORDER BY o.ord",
		3, {INT8ARRAYOID, TIMESTAMPTZOID, TIMESTAMPTZOID}, true, false,
		SPI_OK_SELECT, "read_grouped"
	},
};

/*
 * Expands a template's placeholders: quoted, schema-qualified names.
 */
static char *
plan_sql(const char *template, const QueueEntry *queue)
{
	static const char *const placeholders[] = {"{queue}", "{archive}", "{sequence}"};
	const char *values[] = {
		qualified_identifier(queue->names.queue_table),
		qualified_identifier(queue->names.archive_table),
		qualified_identifier(queue->names.sequence),
	};
	StringInfoData buf;
	const char *p = template;

	initStringInfo(&buf);
	while (*p)
	{
		size_t		i;

		for (i = 0; i < lengthof(placeholders); i++)
		{
			size_t		len = strlen(placeholders[i]);

			if (strncmp(p, placeholders[i], len) == 0)
			{
				appendStringInfoString(&buf, values[i]);
				p += len;
				break;
			}
		}
		if (i == lengthof(placeholders))
			appendStringInfoChar(&buf, *p++);
	}
	return buf.data;
}

/*
 * True unless the plan's current generic plan is the one we built: the next
 * execution would (re)build it, or the plan cache already rebuilt it under
 * the caller's settings (an invalidation can arrive while it takes its locks).
 */
static bool
generic_plan_needs_build(SPIPlanPtr plan, int built_generation)
{
	CachedPlanSource *source = linitial(plan->plancache_list);

	return !source->is_valid ||
		source->gplan == NULL || !source->gplan->is_valid ||
		source->generation != built_generation ||
		(source->search_path != NULL &&
		 !OverrideSearchPathMatchesCurrent(source->search_path));
}

/*
 * Builds the generic plan now, with only index paths open to the planner;
 * returns the plan source's generation, to recognise this plan later.
 */
static int
build_index_only_generic_plan(SPIPlanPtr plan)
{
	int			nestlevel = NewGUCNestLevel();
	CachedPlan *cplan;

	(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_bitmapscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	cplan = SPI_plan_get_cached_plan(plan);
	if (cplan != NULL)
		ReleaseCachedPlan(cplan, CurrentResourceOwner);
	AtEOXact_GUC(true, nestlevel);
	return ((CachedPlanSource *) linitial(plan->plancache_list))->generation;
}

/* Returns the queue's plan for kind, preparing it on first use. SPI must be connected. */
static SPIPlanPtr
queue_plan(QueueEntry *queue, QueuePlanKind kind)
{
	const PlanTemplate *tpl = &plan_templates[kind];
	char	   *sql;
	SPIPlanPtr	plan;

	if (queue->plans[kind] != NULL)
	{
		plan = queue->plans[kind];
		if (tpl->index_paths_only &&
			generic_plan_needs_build(plan, queue->plan_generations[kind]))
			queue->plan_generations[kind] = build_index_only_generic_plan(plan);
		return plan;
	}

	sql = plan_sql(tpl->sql, queue);

	plan = SPI_prepare_cursor(sql, tpl->nargs, (Oid *) tpl->argtypes,
							  CURSOR_OPT_GENERIC_PLAN);
	if (plan == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not prepare a statement for queue \"%s\"",
						queue->names.name),
				 errdetail("SPI_prepare failed: %s.", SPI_result_code_string(SPI_result))));
	if (SPI_keepplan(plan) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not keep the prepared statement for queue \"%s\"",
						queue->names.name)));

	queue->plans[kind] = plan;
	pfree(sql);
	if (tpl->index_paths_only)
		queue->plan_generations[kind] = build_index_only_generic_plan(plan);
	return plan;
}

/*
 * Runs the queue's statement of the given kind with these parameter values
 * (nulls may be NULL: no NULLs). Rows the statement returns go to dest when
 * it is given, otherwise they are left in SPI_tuptable. Returns the number of
 * rows processed. SPI must be connected.
 *
 * Reads and pops come back in msg_id order without a sort: their plans are
 * forced to a btree scan over the sorted array of picked ids.
 */
uint64
queue_execute_to(QueueEntry *queue, QueuePlanKind kind, const Datum *values,
				 const bool *nulls, DestReceiver *dest)
{
	const PlanTemplate *tpl = &plan_templates[kind];
	SPIPlanPtr	plan = queue_plan(queue, kind);
	SPIExecuteOptions options = {0};
	MemoryContext caller = CurrentMemoryContext;
	int			rc;

	if (tpl->nargs > 0)
	{
		options.params = makeParamList(tpl->nargs);
		for (int i = 0; i < tpl->nargs; i++)
		{
			ParamExternData *param = &options.params->params[i];

			param->value = values[i];
			param->isnull = nulls != NULL && nulls[i];
			param->pflags = PARAM_FLAG_CONST;
			param->ptype = tpl->argtypes[i];
		}
	}
	options.read_only = tpl->read_only;
	options.dest = dest;

	rc = SPI_execute_plan_extended(plan, &options);
	/* SPI leaves its procedure context current; a caller's own (per attempt) comes back. */
	MemoryContextSwitchTo(caller);
	if (options.params != NULL)
		pfree(options.params);	/* read_with_poll runs many statements per call */
	if (rc != tpl->expected_rc)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("%s on queue \"%s\" failed", tpl->operation, queue->names.name),
				 errdetail("SPI returned %s.", SPI_result_code_string(rc))));
	return SPI_processed;
}

/* A receiver that puts rows straight into a set-returning call's result. */
DestReceiver *
srf_receiver(FunctionCallInfo fcinfo)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	DestReceiver *dest = CreateTuplestoreDestReceiver();

	SetTuplestoreDestReceiverParams(dest, rsinfo->setResult,
									rsinfo->econtext->ecxt_per_query_memory,
									false, NULL, NULL);
	return dest;
}

/*
 * queue_execute_to, with the returned rows going straight into the result of
 * the set-returning call rows_to (no intermediate copy) when it is given.
 */
uint64
queue_execute(QueueEntry *queue, QueuePlanKind kind, const Datum *values,
			  const bool *nulls, FunctionCallInfo rows_to)
{
	DestReceiver *dest = rows_to != NULL ? srf_receiver(rows_to) : NULL;
	uint64		n = queue_execute_to(queue, kind, values, nulls, dest);

	if (dest != NULL)
		dest->rDestroy(dest);
	return n;
}

/* Prepares a statement of queue_ext's own catalog and keeps it for the backend's life. SPI is connected. */
SPIPlanPtr
spi_prepare_kept(const char *sql, int nargs, const Oid *argtypes)
{
	SPIPlanPtr	plan = SPI_prepare(sql, nargs, (Oid *) argtypes);

	if (plan == NULL || SPI_keepplan(plan) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not prepare a statement of queue_ext's catalog"),
				 errdetail("%s: %s", SPI_result_code_string(SPI_result), sql)));
	return plan;
}

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

/* Sets up a materialised SETOF result whose rows queue_execute() fills in. */
void
srf_begin(FunctionCallInfo fcinfo)
{
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
}
