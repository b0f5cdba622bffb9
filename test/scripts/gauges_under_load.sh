#!/usr/bin/env bash
# The gauges behind pgmq.queue_stats stay exact under concurrent load: four
# pgbench clients send, send in batches, roll back to savepoints, read and
# delete, archive and pop, while another session keeps making the gauges
# unknown (a two-phase commit) and maintenance recounts them under that load.
# Afterwards the gauges equal count(*) of the queue and its archive, and the
# recounts really ran while writers were busy. (That the SHARE lock is
# taken and waited for is shown by the isolation spec gauge_recount.)
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/script_helpers.sh
db=qx_gauges
work="$(mktemp -d)"
psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
trap 'rm -rf "$work"; psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true' EXIT
q -d "$db" -c "CREATE EXTENSION queue_ext" -c "SELECT pgmq.create('load')" \
  -c "SELECT pgmq.send_batch('load', ARRAY(SELECT '{}'::jsonb FROM generate_series(1, 2000)))" >/dev/null

cat >"$work/send_batch.sql" <<'SQL'
SELECT count(*) FROM pgmq.send_batch('load', ARRAY['{}', '{}', '{}']::jsonb[]);
SQL
cat >"$work/savepoint.sql" <<'SQL'
BEGIN;
SELECT pgmq.send('load', '{}');
SAVEPOINT s;
SELECT pgmq.send('load', '{}');
ROLLBACK TO SAVEPOINT s;
COMMIT;
SQL
cat >"$work/read_delete.sql" <<'SQL'
SELECT pgmq.delete('load', msg_id) FROM pgmq.read('load', 30, 2);
SQL
cat >"$work/archive.sql" <<'SQL'
SELECT pgmq.archive('load', msg_id) FROM pgmq.read('load', 30, 1);
SQL
cat >"$work/pop.sql" <<'SQL'
SELECT count(*) FROM pgmq.pop('load');
SQL
cat >"$work/rollback.sql" <<'SQL'
BEGIN;
SELECT pgmq.delete('load', msg_id) FROM pgmq.read('load', 30, 3);
ROLLBACK;
SQL

pgbench -n -d "$db" -c 4 -j 2 -T 10 \
  -f "$work/send_batch.sql@4" -f "$work/savepoint.sql@2" -f "$work/read_delete.sql@3" \
  -f "$work/archive.sql@1" -f "$work/pop.sql@1" -f "$work/rollback.sql@1" >"$work/pgbench.log" 2>&1 &
bench=$!

# While it runs: lose the gauges, recount them under load, over and over.
recounts=0
rounds=0
while kill -0 "$bench" 2>/dev/null; do
  rounds=$((rounds + 1))
  q -d "$db" -c "BEGIN" -c "SELECT pgmq.send('load', '{}')" -c "PREPARE TRANSACTION 'gl_$rounds'" \
    -c "COMMIT PREPARED 'gl_$rounds'" >/dev/null
  n="$(q -d "$db" -c "SELECT coalesce(sum(affected), 0) FROM pgmq.run_maintenance(queues => ARRAY['load'], general => false) WHERE step = 'gauges'")"
  recounts=$((recounts + n))
  sleep 0.2
done
wait "$bench" || { cat "$work/pgbench.log"; fail "pgbench failed"; }
grep -q "number of failed transactions: 0" "$work/pgbench.log" || { cat "$work/pgbench.log"; fail "pgbench transactions failed"; }

# Every round made the queue's gauge unknown; most must have been recounted while the load ran.
[ "$recounts" -ge $((rounds / 2)) ] || fail "only $recounts recounts in $rounds rounds under load"
# The last round may have left it unknown: recount at rest, then compare.
q -d "$db" -c "SELECT pgmq.run_maintenance(queues => ARRAY['load'], general => false)" >/dev/null
got="$(q -d "$db" -c "SELECT s.depth_from, s.depth = (SELECT count(*) FROM pgmq.q_load), s.archived = (SELECT count(*) FROM pgmq.a_load) FROM pgmq.queue_stats s WHERE s.queue_name = 'load'")"
[ "$got" = "gauge|t|t" ] || fail "gauges drifted: $got; $(q -d "$db" -c "SELECT depth, archived FROM pgmq.queue_stats") against $(q -d "$db" -c "SELECT (SELECT count(*) FROM pgmq.q_load), (SELECT count(*) FROM pgmq.a_load)")"
echo "gauges under load: ok ($rounds rounds, $recounts recounts, $(grep -o 'number of transactions actually processed: [0-9]*' "$work/pgbench.log" | grep -o '[0-9]*$') transactions)"
