#!/usr/bin/env bash
# ALTER EXTENSION queue_ext UPDATE from 0.1.0, the first release, to the
# current version: queues made before the update keep their messages, ids and
# leases, work under the new library before the update (no pgmq.queue_config
# yet: every queue has the defaults), and gain the job and group functions and
# row-level security after it.
set -euo pipefail
db=qx_upgrade
psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
trap 'psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db" -c "DROP DATABASE IF EXISTS ${db}_fresh" -c "DROP ROLE IF EXISTS qx_legacy_app" >/dev/null 2>&1 || true' EXIT

q() { psql -qXAt -v ON_ERROR_STOP=1 -d "$db" "$@"; }

q <<'SQL'
CREATE EXTENSION queue_ext VERSION '0.1.0';
SELECT pgmq.create('legacy');
SELECT count(*) FROM pgmq.send_batch('legacy', ARRAY(SELECT jsonb_build_object('n', i) FROM generate_series(1, 100) i));
SELECT count(*) FROM pgmq.read('legacy', 600, 10);
SELECT pgmq.archive('legacy', 1);
-- A queue an application role owns, as pgmq's create leaves it when that
-- role runs it (with CREATE on schema pgmq).
DROP ROLE IF EXISTS qx_legacy_app;
CREATE ROLE qx_legacy_app;
GRANT USAGE, CREATE ON SCHEMA pgmq TO qx_legacy_app;
SELECT pgmq.create('legacy_app');
ALTER TABLE pgmq.q_legacy_app OWNER TO qx_legacy_app;
ALTER TABLE pgmq.a_legacy_app OWNER TO qx_legacy_app;
SQL
[ "$(q -c "SELECT extversion FROM pg_extension WHERE extname = 'queue_ext'")" = "0.1.0" ]

# The current library serves a 0.1.0 catalog: reads, deletes and metrics work.
[ "$(q -c "SELECT count(*) FROM pgmq.read('legacy', 600, 5)")" = "5" ]
[ "$(q -c "SELECT pgmq.delete('legacy', 2)")" = "t" ]
[ "$(q -c "SELECT queue_length FROM pgmq.metrics('legacy')")" = "98" ]
if q -c "SELECT pgmq.ack('legacy', 3, 1)" 2>/dev/null; then
  echo "pgmq.ack exists before the update"; exit 1
fi

before="$(q -c "SELECT string_agg(msg_id || ':' || read_ct || ':' || (vt > now()), ',' ORDER BY msg_id) FROM pgmq.q_legacy")"
q -c "ALTER EXTENSION queue_ext UPDATE"
current="$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" queue_ext.control)"
[ "$(q -c "SELECT extversion FROM pg_extension WHERE extname = 'queue_ext'")" = "$current" ]
after="$(q -c "SELECT string_agg(msg_id || ':' || read_ct || ':' || (vt > now()), ',' ORDER BY msg_id) FROM pgmq.q_legacy")"
[ "$before" = "$after" ] || { echo "messages changed by the update"; exit 1; }
[ "$(q -c "SELECT string_agg(msg_id::text, ',') FROM pgmq.a_legacy")" = "1" ]
# The application role's queue passes to the extension owner (its triggers
# would otherwise run as the owner); the role keeps its table rights, gets
# publish, consume and manage, and loses CREATE on schema pgmq.
[ "$(q -c "SELECT string_agg(tableowner, ',') FROM pg_tables WHERE tablename IN ('q_legacy_app', 'a_legacy_app')")" = "postgres,postgres" ]
[ "$(q -c "SELECT has_schema_privilege('qx_legacy_app', 'pgmq', 'CREATE')")" = "f" ]
q <<'SQL' | tee /dev/stderr | tr '\n' ' ' | grep -qx '1 1 1 t '
SET ROLE qx_legacy_app;
SELECT * FROM pgmq.send('legacy_app', '{"after": "update"}');
SELECT count(*) FROM pgmq.read('legacy_app', 30, 5);
SELECT count(*) FROM pgmq.q_legacy_app;
SELECT pgmq.purge_queue('legacy_app') = 1;
SQL
# Queues made before 0.4.0 get the row-level security of new ones.
[ "$(q -c "SELECT count(*) FROM pg_policy WHERE polrelid IN ('pgmq.q_legacy'::regclass, 'pgmq.a_legacy'::regclass)")" = "4" ]
[ "$(q -c "SELECT bool_and(relrowsecurity) FROM pg_class WHERE oid IN ('pgmq.q_legacy'::regclass, 'pgmq.a_legacy'::regclass)")" = "t" ]

# A message leased before the update is acked with its receipt, another nacked
# into the archive with the new options, and new ids continue.
q <<'SQL' | tee /dev/stderr | tr '\n' ' ' | grep -qx 't t t dead 101 '
SELECT pgmq.ack('legacy', 3, 1);
SELECT max_attempts = 1 FROM pgmq.set_queue_options('legacy', max_attempts => 1);
SELECT pgmq.nack('legacy', 4, 1, 'after the update');
SELECT headers -> 'x-queue-ext-outcome' ->> 'state' FROM pgmq.a_legacy WHERE msg_id = 4;
SELECT * FROM pgmq.send('legacy', '{"new": true}');
SQL
# Grouped reads see the legacy messages as one default group, whose head
# (msg 5, leased before the update) keeps it closed.
[ "$(q -c "SELECT count(*) FROM pgmq.read_grouped_head('legacy', 600, 5)")" = "0" ]
# The upgraded extension has exactly the objects, and the same function
# definitions, as a fresh install of the current version. (A fresh install
# runs the same scripts today; this guards the day a version gets a full
# install script of its own.)
members() {
  psql -qXAt -v ON_ERROR_STOP=1 -d "$1" <<'SQL'
SELECT pg_describe_object(d.classid, d.objid, d.objsubid),
       CASE WHEN d.classid = 'pg_proc'::regclass THEN md5(pg_get_functiondef(d.objid)) END
FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
WHERE e.extname = 'queue_ext' AND d.deptype = 'e'
ORDER BY 1;
SQL
}
psql -qX -d postgres -c "DROP DATABASE IF EXISTS ${db}_fresh" -c "CREATE DATABASE ${db}_fresh"
psql -qX -v ON_ERROR_STOP=1 -d "${db}_fresh" -c "CREATE EXTENSION queue_ext"
upgraded="$(members "$db")"
fresh="$(members "${db}_fresh")"
[ "$upgraded" = "$fresh" ] || { diff <(echo "$upgraded") <(echo "$fresh"); exit 1; }
echo "upgrade from 0.1.0 kept $(q -c "SELECT count(*) FROM pgmq.q_legacy") messages; $(echo "$fresh" | wc -l) extension objects match a fresh install"
