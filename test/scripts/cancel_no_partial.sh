#!/usr/bin/env bash
# A cancelled statement leaves nothing behind. read, send_batch, send_batch
# with idempotency keys and archive are stopped by statement_timeout and by
# pg_cancel_backend, alone and inside a transaction that goes on past a
# savepoint, at two moments:
#   - on queue "slow", while their rows are being written: a check
#     constraint that sleeps 2 ms a row makes each call take about 4 s;
#   - on queue "fast", after the call returned and counted its work (the
#     statement then sleeps 10 ms a returned row): what a call notes for
#     commit (throughput counters, latency samples, wake-ups) must go with
#     the cancelled statement, and with the rolled-back savepoint.
# Afterwards each queue's rows (count, read_ct, leases, newest msg_id), its
# archive, its idempotency keys, its throughput counters, its latency samples
# and its queue_stats gauges are exactly as before. Each case must end with
# 57014, and the table statistics (which count aborted work too) must show
# the cancel came where it was meant to: some rows written on "slow", every
# row on "fast". The transaction around a savepoint sends to a third queue
# before it and deletes that after, and must commit.
#
# Not a partial effect, and not checked: the msg_id sequence advances past
# the ids a cancelled send_batch took (sequences are not transactional; pgmq's
# total_messages shows it as well). Rate-limit tokens a cancelled call took
# are kept (README, "Limits and quotas"); no limit is set here.
set -euo pipefail
# shellcheck source=test/cluster.sh
. "$(dirname "$0")/../cluster.sh"
cluster_start
trap cluster_stop EXIT

psql -qX -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
CREATE EXTENSION queue_ext;
SELECT pgmq.create('slow'), pgmq.create('fast'), pgmq.create('marker');
SELECT pgmq.send_batch(q, ARRAY(SELECT jsonb_build_object('n', i) FROM generate_series(1, 2000) i))
FROM unnest(ARRAY['slow', 'fast']) q;
-- Counters, gauges and latencies have moved once before the first case.
SELECT pgmq.delete(q, msg_id) FROM unnest(ARRAY['slow', 'fast']) q, pgmq.read(q, 3600, 3);
-- queue_ext refuses queue tables with triggers; a check constraint runs its
-- function on every row written just as well.
CREATE FUNCTION public.slow_ok(jsonb) RETURNS boolean IMMUTABLE LANGUAGE plpgsql AS
  $$ BEGIN PERFORM pg_sleep(0.002); RETURN true; END $$;
ALTER TABLE pgmq.q_slow ADD CONSTRAINT slow_rows CHECK (public.slow_ok(message));
ALTER TABLE pgmq.a_slow ADD CONSTRAINT slow_rows CHECK (public.slow_ok(message));
SQL

# What a cancelled statement must not change on queue $1.
state() {
  psql -qXAt -v q="$1" <<'SQL'
SELECT concat_ws(' | ',
  (SELECT format('%s queued, read_ct %s, leased %s, newest %s', count(*), sum(read_ct),
                 count(*) FILTER (WHERE vt > now()), max(msg_id))
   FROM pgmq.q_slow HAVING :'q' = 'slow'),
  (SELECT format('%s queued, read_ct %s, leased %s, newest %s', count(*), sum(read_ct),
                 count(*) FILTER (WHERE vt > now()), max(msg_id))
   FROM pgmq.q_fast HAVING :'q' = 'fast'),
  (SELECT count(*) || ' archived' FROM pgmq.a_slow HAVING :'q' = 'slow'),
  (SELECT count(*) || ' archived' FROM pgmq.a_fast HAVING :'q' = 'fast'),
  (SELECT count(*) || ' keys' FROM pgmq.idempotency_keys WHERE queue_name = :'q'),
  (SELECT format('counters %s/%s/%s/%s', sent, read, acked, archived)
   FROM pgmq.queue_counters() WHERE queue_name = :'q'),
  (SELECT 'latency ' || string_agg(kind || ':' || samples, ',' ORDER BY kind)
   FROM pgmq.queue_latency WHERE queue_name = :'q'),
  (SELECT format('stats %s/%s/%s/%s', depth, visible, in_flight, archived)
   FROM pgmq.queue_stats WHERE queue_name = :'q'));
SQL
}

# Rows inserted, updated and deleted in queue $1's tables so far, aborted
# work included.
work() {
  psql -qXAt -c "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables
                 WHERE relid IN ('pgmq.q_$1'::regclass, 'pgmq.a_$1'::regclass)"
}

# The statements, for queue Q. On "fast" each returned row sleeps 10 ms.
statements=(
  "SELECT count(*) FROM pgmq.read('Q', 600, 2000) r"
  "SELECT count(*) FROM pgmq.send_batch('Q', ARRAY(SELECT jsonb_build_object('new', i) FROM generate_series(1, 2000) i)) r"
  "SELECT count(*) FROM pgmq.send_batch('Q', ARRAY(SELECT jsonb_build_object('new', i) FROM generate_series(1, 2000) i),
     ARRAY(SELECT jsonb_build_object('x-queue-ext-idempotency-key', 'key-' || i) FROM generate_series(1, 2000) i)) r"
  "SELECT count(*) FROM pgmq.archive('Q', ARRAY(SELECT msg_id FROM pgmq.q_Q)) r"
)

fail=0

# Runs statement $4 on queue $1, cancelled by $2 (timeout | cancel), $3
# (alone | savepoint); checks it ended with 57014 and the transaction around
# a savepoint committed.
run_cancelled() {
  local queue="$1" how="$2" wrap="$3" sql="${4//Q/$1}" script out expected limit=""
  [ "$queue" = fast ] && sql="$sql WHERE pg_sleep(0.01) IS NOT NULL"
  [ "$how" = timeout ] && limit="SET LOCAL statement_timeout = '700ms';"
  if [ "$wrap" = savepoint ]; then
    script="BEGIN;
SELECT pgmq.send('marker', '{}') AS marker \\gset
SAVEPOINT s;
$limit
$sql;
ROLLBACK TO s;
SELECT pgmq.delete('marker', :marker);
COMMIT;"
  else
    script="BEGIN;
$limit
$sql;
COMMIT;"
  fi
  if [ "$how" = timeout ]; then
    expected="canceling statement due to statement timeout"
  else
    expected="canceling statement due to user request"
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
    echo "FAILED to cancel ($queue, $how, $wrap): $sql"; printf '%s\n' "$out" | head -5; fail=1
  fi
  if [ "$wrap" = savepoint ] && ! printf '%s\n' "$out" | grep -qx t; then
    echo "FAILED: the transaction around the savepoint did not go on ($queue, $how): $out"; fail=1
  fi
}

for queue in slow fast; do
  before=$(state "$queue")
  echo "$queue, before: $before"
  for sql in "${statements[@]}"; do
    for how in timeout cancel; do
      for wrap in alone savepoint; do
        done_before=$(work "$queue")
        run_cancelled "$queue" "$how" "$wrap" "$sql"
        # The statistics arrive when the cancelled backend reports them.
        for _ in $(seq 1 30); do
          done_rows=$(( $(work "$queue") - done_before ))
          [ "$done_rows" -gt 0 ] && break
          sleep 0.1
        done
        now=$(state "$queue")
        label="$queue, $how, $wrap: $(printf '%s' "${sql//Q/$queue}" | tr -s ' \n' ' ' | cut -c1-70)..."
        echo "$label $done_rows rows written before the cancel"
        # Every row: each queued message updated (read), 2 000 inserted
        # (send_batch), or each queued message deleted and inserted (archive).
        queued=$(psql -qXAt -c "SELECT count(*) FROM pgmq.q_$queue")
        case "$sql" in
          *read*) all_rows=$queued ;;
          *archive*) all_rows=$((2 * queued)) ;;
          *) all_rows=2000 ;;
        esac
        if [ "$queue" = slow ] && { [ "$done_rows" -eq 0 ] || [ "$done_rows" -ge "$all_rows" ]; }; then
          echo "FAILED: the cancel did not land in the middle of the rows"; fail=1
        fi
        if [ "$queue" = fast ] && [ "$done_rows" -lt "$all_rows" ]; then
          echo "FAILED: the call had not finished its rows when cancelled"; fail=1
        fi
        if [ "$now" != "$before" ]; then
          echo "FAILED: it left a trace"; echo "  before: $before"; echo "  after:  $now"; fail=1
        fi
      done
    done
  done
done

# The keys of the cancelled batches were never taken: the same batch now
# enqueues every message.
fresh=$(psql -qXAt -c "SELECT count(*) FROM pgmq.send_batch('fast', ARRAY(SELECT jsonb_build_object('new', i) FROM generate_series(1, 2000) i),
                         ARRAY(SELECT jsonb_build_object('x-queue-ext-idempotency-key', 'key-' || i) FROM generate_series(1, 2000) i)) id
                       WHERE id > (SELECT max(msg_id) FROM pgmq.q_fast WHERE NOT message ? 'new')")
echo "the cancelled batches' keys, sent again: $fresh of 2000 enqueued"
[ "$fresh" = 2000 ] || fail=1
[ "$(psql -qXAt -c "SELECT count(*) FROM pgmq.q_marker")" = 0 ] || { echo "FAILED: a marker was left"; fail=1; }
[ "$fail" -eq 0 ]
