#!/usr/bin/env bash
# A statement cancelled half-way leaves nothing behind: read, send_batch and
# archive are stopped by statement_timeout and by pg_cancel_backend in the
# middle of their rows, on their own and inside a transaction that goes on
# past a savepoint. Afterwards the queue's rows (count, read_ct, vt), its
# archive, its throughput counters and its queue_stats gauges are exactly as
# before. A check constraint that sleeps 2 ms per row makes each statement
# take about 4 s, so the cancel lands while rows are being written, whatever
# the machine's speed; the test checks that each statement really was
# cancelled.
set -euo pipefail
# shellcheck source=test/cluster.sh
. "$(dirname "$0")/../cluster.sh"
cluster_start
trap cluster_stop EXIT

psql -qX -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
CREATE EXTENSION queue_ext;
SELECT pgmq.create('c');
SELECT pgmq.send_batch('c', ARRAY(SELECT jsonb_build_object('n', i) FROM generate_series(1, 2000) i));
SELECT pgmq.delete('c', msg_id) FROM pgmq.read('c', 3600, 3);   -- counters and gauges have moved once
-- queue_ext refuses queue tables with triggers; a check constraint runs its
-- function on every row written just as well.
CREATE FUNCTION public.slow_ok(jsonb) RETURNS boolean IMMUTABLE LANGUAGE plpgsql AS
  $$ BEGIN PERFORM pg_sleep(0.002); RETURN true; END $$;
ALTER TABLE pgmq.q_c ADD CONSTRAINT slow_rows CHECK (public.slow_ok(message));
ALTER TABLE pgmq.a_c ADD CONSTRAINT slow_rows CHECK (public.slow_ok(message));
SQL

# The queue's state; the counters leave out the markers that savepoint runs
# send and delete (one sent and one acked each).
markers=0
state() {
  psql -qXAt -c "
    SELECT concat_ws(' | ',
      (SELECT count(*) || ' queued, read_ct ' || sum(read_ct) || ', leased ' || count(*) FILTER (WHERE vt > now())
         || ', max msg ' || max(msg_id) FROM pgmq.q_c),
      (SELECT count(*) || ' archived' FROM pgmq.a_c),
      (SELECT format('counters %s/%s/%s/%s', sent - $markers, read, acked - $markers, archived)
         FROM pgmq.queue_counters() WHERE queue_name = 'c'),
      (SELECT format('stats %s/%s/%s/%s', depth, visible, in_flight, archived) FROM pgmq.queue_stats WHERE queue_name = 'c'))"
}

statements=(
  "SELECT count(*) FROM pgmq.read('c', 600, 2000)"
  "SELECT count(*) FROM pgmq.send_batch('c', ARRAY(SELECT jsonb_build_object('new', i) FROM generate_series(1, 2000) i))"
  "SELECT count(*) FROM pgmq.archive('c', ARRAY(SELECT msg_id FROM pgmq.q_c))"
)

before=$(state)
echo "before: $before"
fail=0

# Runs one statement in the given way and checks the error it ended with.
#   how: timeout | cancel; wrap: alone | savepoint
run_cancelled() {
  local how="$1" wrap="$2" sql="$3" script out expected
  if [ "$wrap" = savepoint ]; then
    # The transaction survives the cancel and commits: only its own marker
    # row (a message sent before the savepoint and deleted after) touched it.
    script="BEGIN;
SELECT pgmq.send('c', '{\"marker\": true}') AS marker \\gset
SAVEPOINT s;
$sql;
ROLLBACK TO s;
SELECT pgmq.delete('c', :marker);
COMMIT;"
  else
    script="$sql;"
  fi
  if [ "$how" = timeout ]; then
    script="SET statement_timeout = '700ms';
$script"
    expected="canceling statement due to statement timeout"
  else
    expected="canceling statement due to user request"
  fi
  if [ "$how" = cancel ]; then
    (
      for _ in $(seq 1 100); do
        psql -qXAt -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity
                       WHERE application_name = 'victim' AND state = 'active'
                         AND query LIKE '%pgmq.%' AND now() - query_start > interval '700 ms'" | grep -q t && exit 0
        sleep 0.1
      done
    ) &
  fi
  out=$(printf '%s\n' "$script" | PGAPPNAME=victim psql -qXAt -v VERBOSITY=verbose 2>&1 || true)
  wait
  if ! printf '%s\n' "$out" | grep -q "57014: $expected"; then
    echo "FAILED to cancel ($how, $wrap): $sql"; printf '%s\n' "$out" | head -5; fail=1
  fi
  if [ "$wrap" = savepoint ] && ! printf '%s\n' "$out" | grep -qx t; then
    echo "FAILED: the transaction around the savepoint did not go on ($how): $out"; fail=1
  fi
}

for sql in "${statements[@]}"; do
  for how in timeout cancel; do
    for wrap in alone savepoint; do
      run_cancelled "$how" "$wrap" "$sql"
      [ "$wrap" = savepoint ] && markers=$((markers + 1))
      now=$(state)
      if [ "$now" != "$before" ]; then
        echo "FAILED: $how of '$sql' ($wrap) left a trace"; echo "  before: $before"; echo "  after:  $now"; fail=1
      fi
      echo "$how, $wrap: $(printf '%s' "${sql}" | cut -c1-60)... -> $now"
    done
  done
done
[ "$fail" -eq 0 ]
