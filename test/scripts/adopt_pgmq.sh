#!/usr/bin/env bash
# Moving a database from pgmq 1.x to queue_ext (README, "Moving from pgmq").
# No registry here ships pgmq, so a stand-in extension named pgmq makes
# pgmq 1.13's catalog tables exactly (columns, constraints, indexes, and as
# extension members), and the queues are made as pgmq.create() makes them
# (identity msg_id, vt and archived_at indexes), filled, read, archived and
# bound to topics. Then:
# - CREATE EXTENSION queue_ext refuses while pgmq is installed, saying how;
# - after the steps it names, CREATE EXTENSION queue_ext adopts every queue
#   with its messages, ids, leases, archive and bindings, and they work;
# - a layout it cannot adopt is refused whole, naming what is wrong.
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/script_helpers.sh
. test/cluster.sh
db=qx_adopt
sharedir="$("$QX_PG_BINDIR/pg_config" --sharedir)/extension"
cleanup() {
  psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db" -c "DROP DATABASE IF EXISTS ${db}_bad" >/dev/null 2>&1 || true
  psql -qX -d postgres -c "DROP ROLE IF EXISTS qx_adopt_owner" >/dev/null 2>&1 || true
  rm -f "$sharedir/pgmq.control" "$sharedir/pgmq--1.13.0.sql"
}
trap cleanup EXIT

# The stand-in: pgmq 1.13's catalog tables as its release makes them.
cat >"$sharedir/pgmq.control" <<'EOF'
comment = 'stand-in for pgmq 1.13 in queue_ext''s adoption test (catalog tables only)'
default_version = '1.13.0'
relocatable = false
schema = pgmq
superuser = true
EOF
cat >"$sharedir/pgmq--1.13.0.sql" <<'EOF'
CREATE TABLE pgmq.meta (
    queue_name varchar NOT NULL CONSTRAINT meta_queue_name_key UNIQUE,
    is_partitioned boolean NOT NULL,
    is_unlogged boolean NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);
CREATE UNLOGGED TABLE pgmq.notify_insert_throttle (
    queue_name varchar NOT NULL CONSTRAINT notify_insert_throttle_queue_name_key UNIQUE
        CONSTRAINT notify_insert_throttle_meta_queue_name_fk REFERENCES pgmq.meta (queue_name) ON DELETE CASCADE,
    throttle_interval_ms integer NOT NULL DEFAULT 0,
    last_notified_at timestamp with time zone NOT NULL DEFAULT to_timestamp(0)
);
CREATE INDEX idx_notify_throttle_active ON pgmq.notify_insert_throttle (queue_name, last_notified_at)
    WHERE throttle_interval_ms > 0;
CREATE TABLE pgmq.topic_bindings (
    pattern text NOT NULL,
    queue_name text NOT NULL
        CONSTRAINT topic_bindings_meta_queue_name_fk REFERENCES pgmq.meta (queue_name) ON DELETE CASCADE,
    bound_at timestamp with time zone NOT NULL DEFAULT now(),
    compiled_regex text GENERATED ALWAYS AS
        ('^' || replace(replace(replace(pattern, '.', '\.'), '*', '[^.]+'), '#', '.*') || '$') STORED,
    CONSTRAINT topic_bindings_unique_pattern_queue UNIQUE (pattern, queue_name)
);
CREATE INDEX idx_topic_bindings_covering ON pgmq.topic_bindings (pattern) INCLUDE (queue_name, compiled_regex);
SELECT pg_catalog.pg_extension_config_dump('pgmq.meta', '');
SELECT pg_catalog.pg_extension_config_dump('pgmq.notify_insert_throttle', '');
SELECT pg_catalog.pg_extension_config_dump('pgmq.topic_bindings', '');
CREATE FUNCTION pgmq.notify_queue_listeners() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('pgmq.' || TG_TABLE_NAME || '.' || TG_OP, NULL); RETURN NEW; END $$;
EOF

# A queue as pgmq.create(name) makes it (tables not extension members).
make_queue() {  # make_queue NAME [unlogged]
  local t unlogged=false; t="$(echo "$1" | tr '[:upper:]' '[:lower:]')"
  [ -n "${2:-}" ] && unlogged=true
  cat <<SQL
CREATE ${2:-} TABLE pgmq.q_$t (
    msg_id bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY, read_ct integer DEFAULT 0 NOT NULL,
    enqueued_at timestamp with time zone DEFAULT now() NOT NULL, last_read_at timestamp with time zone,
    vt timestamp with time zone NOT NULL, message jsonb, headers jsonb);
CREATE TABLE pgmq.a_$t (
    msg_id bigint PRIMARY KEY, read_ct integer DEFAULT 0 NOT NULL,
    enqueued_at timestamp with time zone DEFAULT now() NOT NULL, last_read_at timestamp with time zone,
    archived_at timestamp with time zone DEFAULT now() NOT NULL, vt timestamp with time zone NOT NULL,
    message jsonb, headers jsonb);
CREATE INDEX q_${t}_vt_idx ON pgmq.q_$t (vt ASC);
CREATE INDEX archived_at_idx_$t ON pgmq.a_$t (archived_at);
INSERT INTO pgmq.meta (queue_name, is_partitioned, is_unlogged) VALUES ('$1', false, $unlogged);
SQL
}

psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
q -d "$db" >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION pgmq;
$(make_queue orders)
$(make_queue QueueCased)
$(make_queue scratch UNLOGGED)
-- 100 orders sent, 10 leased for an hour (read once), 5 archived, 3 deleted.
INSERT INTO pgmq.q_orders (vt, message, headers)
SELECT now(), jsonb_build_object('n', i), CASE WHEN i = 1 THEN '{"x-pgmq-group": "g1"}'::jsonb END FROM generate_series(1, 100) i;
UPDATE pgmq.q_orders SET read_ct = 1, last_read_at = now(), vt = now() + interval '1 hour' WHERE msg_id BETWEEN 11 AND 20;
WITH gone AS (DELETE FROM pgmq.q_orders WHERE msg_id BETWEEN 21 AND 25 RETURNING *)
INSERT INTO pgmq.a_orders (msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers)
SELECT msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers FROM gone;
DELETE FROM pgmq.q_orders WHERE msg_id BETWEEN 26 AND 28;
INSERT INTO pgmq.q_queuecased (vt, message) VALUES (now(), '{"cased": true}');
INSERT INTO pgmq.q_scratch (vt, message) VALUES (now(), '{"scratch": true}');
INSERT INTO pgmq.topic_bindings (pattern, queue_name) VALUES ('orders.#', 'orders'), ('*.cased', 'QueueCased');
INSERT INTO pgmq.notify_insert_throttle (queue_name, throttle_interval_ms) VALUES ('orders', 250);
CREATE TRIGGER trigger_notify_queue_insert_listeners AFTER INSERT ON pgmq.q_orders
    FOR EACH STATEMENT EXECUTE FUNCTION pgmq.notify_queue_listeners();
SQL
before="$(q -d "$db" -c "SELECT string_agg(msg_id || ':' || read_ct || ':' || (vt > now()), ',' ORDER BY msg_id) FROM pgmq.q_orders")"

# While pgmq is installed: refused, with the way out.
out="$(psql -qXAt -v VERBOSITY=verbose -d "$db" -c "CREATE EXTENSION queue_ext" 2>&1 || true)"
echo "$out" | grep -q '55006' || fail "no 55006 while pgmq is installed: $out"
echo "$out" | grep -q 'ALTER EXTENSION pgmq DROP TABLE pgmq.meta' || fail "no steps in the refusal: $out"
[ "$(q -d "$db" -c "SELECT count(*) FROM pg_extension WHERE extname = 'queue_ext'")" = 0 ] || fail "queue_ext half made"

# The steps the hint gives, then the adoption.
q -d "$db" -c "ALTER EXTENSION pgmq DROP TABLE pgmq.meta" -c "ALTER EXTENSION pgmq DROP TABLE pgmq.topic_bindings" \
  -c "SET client_min_messages = warning" -c "DROP EXTENSION pgmq CASCADE" >/dev/null
q -d "$db" -c "CREATE EXTENSION queue_ext" >/dev/null
# Insert notifications went with pgmq (its throttle table and trigger function): none here until enabled again.
[ "$(q -d "$db" -c "SELECT count(*) FROM pgmq.notify_insert_throttle")" = 0 ] || fail "throttles"
[ "$(q -d "$db" -c "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'pgmq.q_orders'::regclass AND NOT tgisinternal")" = 0 ] || fail "pgmq's trigger"

# Every queue, with its name as given, its messages, ids and leases.
[ "$(q -d "$db" -c "SELECT string_agg(queue_name || '/' || is_unlogged, ',' ORDER BY queue_name) FROM pgmq.list_queues()")" = \
  "QueueCased/false,orders/false,scratch/true" ] || fail "queues $(q -d "$db" -c "SELECT * FROM pgmq.list_queues()")"
[ "$(q -d "$db" -c "SELECT string_agg(msg_id || ':' || read_ct || ':' || (vt > now()), ',' ORDER BY msg_id) FROM pgmq.q_orders")" = "$before" ] ||
  fail "messages changed"
[ "$(q -d "$db" -c "SELECT queue_length || '/' || queue_visible_length FROM pgmq.metrics('orders')")" = "92/82" ] || fail "metrics"
[ "$(q -d "$db" -c "SELECT count(*) FROM pgmq.a_orders")" = 5 ] || fail "archive"
# pgmq's vt index is gone (reads update in place); the primary key and archive index stay.
[ "$(q -d "$db" -c "SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE tablename IN ('q_orders', 'a_orders')")" = \
  "a_orders_pkey,archived_at_idx_orders,q_orders_pkey" ] || fail "indexes"
# Reads skip the leased ten; new ids continue after the old ones; archive, delete, ack work.
[ "$(q -d "$db" -c "SELECT string_agg(msg_id::text, ',') FROM pgmq.read('orders', 30, 3)")" = "1,2,3" ] || fail "read"
[ "$(q -d "$db" -c "SELECT string_agg(msg_id::text, ',' ORDER BY msg_id) FROM pgmq.read('orders', 30, 12) WHERE msg_id > 3")" = \
  "4,5,6,7,8,9,10,29,30,31,32,33" ] || fail "read past the leased"
[ "$(q -d "$db" -c "SELECT * FROM pgmq.send('orders', '{\"after\": true}')")" = 101 ] || fail "new ids"
[ "$(q -d "$db" -c "SELECT pgmq.archive('orders', 1) AND pgmq.delete('orders', 2)")" = t ] || fail "archive and delete"
[ "$(q -d "$db" -c "SELECT count(*) FROM pgmq.read('QueueCased', 30, 5)")" = 1 ] || fail "QueueCased"
# The bindings route, the adopted queues take job options, row-level security, tenants.
[ "$(q -d "$db" -c "SELECT pgmq.send_topic('orders.eu', '{}')")" = 1 ] || fail "adopted binding"
[ "$(q -d "$db" -c "SELECT pgmq.send_topic('x.cased', '{}')")" = 1 ] || fail "adopted binding of QueueCased"
q -d "$db" -c "SELECT pgmq.set_queue_options('orders', max_attempts => 3)" -c "SELECT pgmq.create_tenant('adopter')" \
  -c "SELECT pgmq.set_queue_tenant('QueueCased', 'adopter')" >/dev/null
[ "$(q -d "$db" -c "SELECT relrowsecurity FROM pg_class WHERE oid = 'pgmq.q_orders'::regclass")" = t ] || fail "no row-level security"
# Gauges: these tables were made after the server started, so the hooks
# counted them from their creation, before queue_ext existed (after a
# restart maintenance recounts them: queue_stats.sql).
q -d "$db" -c "SELECT count(*) FROM pgmq.run_maintenance()" >/dev/null
[ "$(q -d "$db" -c "SELECT string_agg(depth_from || '/' || (depth = (SELECT count(*) FROM pgmq.q_orders)), ',') FROM pgmq.queue_stats WHERE queue_name = 'orders'")" = "gauge/true" ] ||
  fail "gauge of an adopted queue"

# Layouts it cannot adopt are refused whole.
bad() {  # bad DESCRIPTION SQL EXPECTED
  psql -qX -d postgres -c "DROP DATABASE IF EXISTS ${db}_bad" -c "CREATE DATABASE ${db}_bad" >/dev/null
  q -d "${db}_bad" -c "SET client_min_messages = warning" -c "CREATE EXTENSION pgmq" -c "$2" \
    -c "ALTER EXTENSION pgmq DROP TABLE pgmq.meta" -c "DROP EXTENSION pgmq CASCADE" >/dev/null
  local got; got="$(psql -qXAt -v VERBOSITY=verbose -d "${db}_bad" -c "CREATE EXTENSION queue_ext" 2>&1 | tr '\n' ' ' || true)"
  echo "$got" | grep -q "$3" || fail "$1: $got"
  [ "$(q -d "${db}_bad" -c "SELECT to_regclass('pgmq.meta') IS NOT NULL AND to_regclass('pgmq.meta_adopted') IS NULL")" = t ] ||
    fail "$1: changed something"
}
bad "a column of another type" "$(make_queue jobs) ALTER TABLE pgmq.q_jobs ALTER COLUMN message TYPE json;" \
  'queue "jobs" does not have pgmq.s tables.*q|message|jsonb|f|'
bad "a catalog row without tables" "INSERT INTO pgmq.meta VALUES ('ghost', false, false);" \
  'queue "ghost" does not have pgmq.s tables'
bad "a partitioned queue" "$(make_queue parts) UPDATE pgmq.meta SET is_partitioned = true;" \
  '0A000.*queue "parts" is partitioned'
# Tables that would make the extension owner run someone's code.
bad "an index on an expression" "$(make_queue jobs) CREATE INDEX ON pgmq.q_jobs ((message ->> 'x'));" \
  'q has index .* on an expression'
bad "a default that calls a function" "$(make_queue jobs) ALTER TABLE pgmq.q_jobs ALTER COLUMN read_ct SET DEFAULT length('x');" \
  'unexpected q|read_ct|integer|t||length'
bad "an extra column" "$(make_queue jobs) ALTER TABLE pgmq.a_jobs ADD COLUMN extra integer;" \
  'unexpected a|extra|integer'
bad "a check constraint" "$(make_queue jobs) ALTER TABLE pgmq.q_jobs ADD CHECK (read_ct >= 0);" \
  'q has constraint q_jobs_read_ct_check'

# A schema that is not a plain leftover of pgmq.
fresh_bad() {  # fresh_bad DESCRIPTION SQL EXPECTED
  psql -qX -d postgres -c "DROP DATABASE IF EXISTS ${db}_bad" -c "CREATE DATABASE ${db}_bad" >/dev/null
  q -d "${db}_bad" -c "$2" >/dev/null
  local got; got="$(psql -qXAt -d "${db}_bad" -c "CREATE EXTENSION queue_ext" 2>&1 || true)"
  echo "$got" | grep -q "$3" || fail "$1: $got"
}
fresh_bad "tables without a catalog" "CREATE SCHEMA pgmq; CREATE TABLE pgmq.q_lost (msg_id bigint);" \
  'schema pgmq holds queue tables but no pgmq.meta'
fresh_bad "a view as the catalog" "CREATE SCHEMA pgmq; CREATE VIEW pgmq.meta AS SELECT 'x'::varchar AS queue_name;" \
  'schema pgmq holds objects other than tables: relation pgmq.meta'
fresh_bad "a function planted in the schema" "CREATE SCHEMA pgmq; CREATE FUNCTION pgmq.lower(text) RETURNS text LANGUAGE sql AS 'SELECT 1::text';" \
  'schema pgmq holds objects other than tables: function pgmq.lower(text)'
psql -qX -d postgres -c "DROP ROLE IF EXISTS qx_adopt_owner" -c "CREATE ROLE qx_adopt_owner" >/dev/null
fresh_bad "a schema another role owns" "CREATE SCHEMA pgmq AUTHORIZATION qx_adopt_owner;" \
  'schema pgmq exists and does not belong to a superuser'
psql -qX -d postgres -c "DROP DATABASE IF EXISTS ${db}_bad" -c "DROP ROLE qx_adopt_owner" >/dev/null

# An older pgmq's topic_bindings, without bound_at: adopted all the same.
psql -qX -d postgres -c "DROP DATABASE IF EXISTS ${db}_bad" -c "CREATE DATABASE ${db}_bad" >/dev/null
q -d "${db}_bad" >/dev/null <<SQL
CREATE SCHEMA pgmq;
CREATE TABLE pgmq.meta (queue_name varchar NOT NULL UNIQUE, is_partitioned boolean NOT NULL, is_unlogged boolean NOT NULL,
                        created_at timestamp with time zone DEFAULT now() NOT NULL);
CREATE TABLE pgmq.topic_bindings (pattern text NOT NULL, queue_name text NOT NULL REFERENCES pgmq.meta (queue_name));
$(make_queue old)
INSERT INTO pgmq.topic_bindings VALUES ('old.*', 'old');
SQL
q -d "${db}_bad" -c "CREATE EXTENSION queue_ext" >/dev/null
[ "$(q -d "${db}_bad" -c "SELECT pgmq.send_topic('old.one', '{}')")" = 1 ] || fail "binding without bound_at"
echo "adopt pgmq: ok"
