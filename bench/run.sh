#!/usr/bin/env bash
# Benchmark: queue_ext against the raw-SQL floor, in one run, on one throwaway
# cluster. Writes bench/RESULTS.md (medians and ratios) and raw logs to
# bench/out/. Not a test: nothing here passes or fails.
#
# Each operation runs with pgbench -M prepared, 4 clients, 2 threads, for
# BENCH_SECONDS (default 20), at synchronous_commit off and on. Its floor is
# hand-written prepared SQL doing the same work on an identically shaped table
# (CREATE TABLE ... LIKE pgmq.q_bench INCLUDING ALL, same storage options):
# the very statements queue_ext prepares, without the function call around
# them. Every run starts from freshly made and filled tables; queue_ext and
# floor runs alternate within each of BENCH_REPS repetitions (default 3), and
# the report gives the median of each.
#
# Then paired runs (BENCH_PAIRED_REPS, default 3, synchronous_commit off): one
# pgbench mixes the queue_ext and the floor script at equal weight, so both
# see the same moments, load and I/O, and the per-script latencies compare
# them. Separate runs drift with the machine's I/O (relation extension, WAL);
# paired runs cancel that out.
#
# Then the job runs (BENCH_PAIRED_REPS, synchronous_commit off): one pgbench
# mixes read 1 + delete, read 1 + ack and read 1 + nack on one queue at equal
# weight; the per-script latencies compare ack and nack with plain delete.
#
# Then the ordering runs (BENCH_PAIRED_REPS): read 1 + delete with priorities
# and with FIFO groups (1 k groups), and send with idempotency keys, each
# paired with its plain form; and a grouped read on 1 M messages in 10 k
# groups beside pgmq 1.13's way of doing it.
#
# Then the tenancy runs (BENCH_PAIRED_REPS): send and read 1 + delete through
# pgmq_public as a PostgREST request, by an operator and with a tenant's API
# key, in one pgbench.
#
# Then the limits runs (BENCH_PAIRED_REPS): send and read 1 + delete on a
# queue whose tenant and whose own limits (send, read, deliver) are set far
# above the load, beside the same calls on a queue without limits, in one
# pgbench.
#
# Then the topic runs (BENCH_PAIRED_REPS): send_topic under 100 bindings
# beside a plain send, in one pgbench.
#
# Then the partitioned runs (BENCH_PAIRED_REPS): read 1 + delete on a queue
# pg_partman partitions beside a plain one, in one pgbench.
#
# Then the wake-up run (bench/latency.sh, BENCH_LATENCY_SECONDS, default 60):
# send -> receive latency with a waiting reader, queue_ext's read_with_poll
# beside pgmq 1.13's 100 ms poll.
#
# Then the metrics run (bench/metrics.sh): the metric views on a queue of
# 1 M messages beside pgmq.metrics and pgmq.job_counts, which count rows.
#
# Then the churn run: 4 clients doing read 1 + delete for BENCH_CHURN_SECONDS
# (default 60) on a fresh queue of BENCH_CHURN_FILL (default 3 M) messages, throughput every 5 s.
#
#   bash bench/run.sh            # the full run, about 70 minutes
#   BENCH_SECONDS=5 BENCH_REPS=1 BENCH_CHURN_SECONDS=20 bash bench/run.sh   # a smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
top="$(pwd)"
seconds="${BENCH_SECONDS:-20}"
reps="${BENCH_REPS:-3}"
churn_seconds="${BENCH_CHURN_SECONDS:-60}"
churn_reps="${BENCH_CHURN_REPS:-2}"
churn_fill="${BENCH_CHURN_FILL:-3000000}"
paired_reps="${BENCH_PAIRED_REPS:-3}"
prefill="${BENCH_PREFILL:-1000000}"
out="$top/bench/out"
mkdir -p "$out"
rm -f "$out"/*.log "$out"/results.tsv "$out"/churn.tsv "$out"/paired.tsv "$out"/jobs.tsv \
      "$out"/ordering.tsv "$out"/grouped.tsv "$out"/tenancy.tsv "$out"/limits.tsv "$out"/latency.tsv \
      "$out"/metrics.tsv "$out"/topics.tsv "$out"/partitioned.tsv

# shellcheck source=bench/setup.sh
. bench/setup.sh
psql -qX -c "CREATE EXTENSION queue_ext" >/dev/null

# Fresh queue and floor tables; the one under test ($1: ext, floor or both)
# filled with $2 messages.
reset_tables() {
  local impl="$1" fill="$2" targets
  case "$impl" in
    ext) targets="pgmq.q_bench" ;;
    floor) targets="floor_q" ;;
    *) targets="pgmq.q_bench floor_q" ;;
  esac
  psql -qX -v ON_ERROR_STOP=1 >/dev/null <<SQL
SELECT pgmq.drop_queue('bench') FROM pgmq.meta WHERE queue_name = 'bench';
DROP TABLE IF EXISTS floor_q, floor_a;
SELECT pgmq.create('bench');
SELECT format('CREATE TABLE floor_q (LIKE pgmq.q_bench INCLUDING ALL) WITH (%s)',
              array_to_string(reloptions, ', '))
FROM pg_class WHERE oid = 'pgmq.q_bench'::regclass \gexec
CREATE TABLE floor_a (LIKE pgmq.a_bench INCLUDING ALL);
$(for t in $targets; do
  echo "INSERT INTO $t (vt, message) SELECT clock_timestamp(), '{\"task\":\"email\",\"to\":\"user@example.com\",\"attempt\":1,\"body\":{\"subject\":\"hello\",\"lines\":3}}' FROM generate_series(1, $fill);"
done)
VACUUM ANALYZE pgmq.q_bench, pgmq.a_bench, floor_q, floor_a;
CHECKPOINT;
SQL
}

# Runs one workload; prints its tps.
run_pgbench() {
  local workload="$1" sync="$2" secs="$3" log="$4"; shift 4
  PGOPTIONS="-c synchronous_commit=$sync" "$pgbench_bin" -n -M prepared -c 4 -j 2 -T "$secs" \
    -D n=0 -f "bench/workloads/$workload.sql" "$@" >"$log" 2>&1 || { cat "$log" >&2; return 1; }
  sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$log"
}

# One pgbench mixing the given scripts (-f ...@weight) at synchronous_commit
# off; appends "label rep latency..." (each script's average, in order) to
# $out/$tsv.tsv. Extra pgbench options may follow the scripts.
paired_pgbench() {
  local tsv="$1" label="$2" rep="$3"; shift 3
  local log="$out/$tsv.$label.$rep.log" lat
  PGOPTIONS="-c synchronous_commit=off" "$pgbench_bin" -n -M prepared -c 4 -j 2 -T "$seconds" "$@" \
    >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
  lat=$(sed -n 's/^ - latency average = \([0-9.]*\) ms/\1/p' "$log" | paste -sd' ')
  printf '%s\t%s\t%s\n' "$label" "$rep" "${lat// /$'\t'}" | tee -a "$out/$tsv.tsv"
}

ops=(send send_batch100 read1_delete read1_ack read1_nack read100_delete archive)
needs_fill() {
  case "$1" in
    read100*) echo $((prefill * 3)) ;;   # moves ~100 messages a transaction
    read*|archive) echo "$prefill" ;;
    *) echo 0 ;;
  esac
}

for sync in off on; do
  for rep in $(seq 1 "$reps"); do
    for op in "${ops[@]}"; do
      order=(ext floor); [ $((rep % 2)) -eq 0 ] && order=(floor ext)
      for impl in "${order[@]}"; do
        reset_tables "$impl" "$(needs_fill "$op")"
        tps=$(run_pgbench "${op}_$impl" "$sync" "$seconds" "$out/$op.$impl.$sync.$rep.log")
        left=$(psql -qXAt -c "SELECT (SELECT count(*) FROM pgmq.q_bench) + (SELECT count(*) FROM floor_q)")
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$op" "$sync" "$impl" "$rep" "$tps" "$left" | tee -a "$out/results.tsv"
      done
    done
  done
done

for rep in $(seq 1 "$paired_reps"); do
  for op in "${ops[@]}"; do
    reset_tables both "$(needs_fill "$op")"
    paired_pgbench paired "$op" "$rep" -D n=0 \
      -f "bench/workloads/${op}_ext.sql@1" -f "bench/workloads/${op}_floor.sql@1"
  done
done

for rep in $(seq 1 "$paired_reps"); do
  reset_tables ext "$prefill"
  PGOPTIONS="-c synchronous_commit=off" "$pgbench_bin" -n -M prepared -c 4 -j 2 -T "$seconds" -D n=0 \
    -f bench/workloads/read1_delete_ext.sql@1 -f bench/workloads/read1_ack_ext.sql@1 \
    -f bench/workloads/read1_nack_ext.sql@1 >"$out/jobs.$rep.log" 2>&1 || { cat "$out/jobs.$rep.log" >&2; exit 1; }
  lat=$(sed -n 's/^ - latency average = \([0-9.]*\) ms/\1/p' "$out/jobs.$rep.log" | paste -sd' ')
  printf '%s\t%s\n' "$rep" "${lat// /$'\t'}" | tee -a "$out/jobs.tsv"
done

# Ordering and dedup beside their plain forms: each pgbench mixes the plain
# script on queue "bench" with the variant on its own queue, equal weight;
# the keyed send also beside its raw-SQL floor (the same two inserts, key
# claim and message, on copies of the key table and the queue table).
ordering_fill="${BENCH_ORDERING_FILL:-200000}"
payload='{"task":"email","to":"user@example.com","attempt":1,"body":{"subject":"hello","lines":3}}'
ordering_tables() {
  psql -qX -v ON_ERROR_STOP=1 >/dev/null <<SQL
SELECT pgmq.drop_queue(queue_name) FROM pgmq.meta
WHERE queue_name IN ('bench', 'bench_prio', 'bench_groups', 'bench_idem');
DROP TABLE IF EXISTS floor_q, floor_a;
SELECT pgmq.create(q) FROM unnest(ARRAY['bench', 'bench_prio', 'bench_groups', 'bench_idem']) q;
DROP TABLE IF EXISTS floor_keys;
SELECT format('CREATE TABLE floor_q (LIKE pgmq.q_bench_idem INCLUDING ALL) WITH (%s)',
              array_to_string(reloptions, ', '))
FROM pg_class WHERE oid = 'pgmq.q_bench_idem'::regclass \gexec
CREATE TABLE floor_keys (LIKE pgmq.idempotency_keys INCLUDING ALL);
SELECT FROM pgmq.set_queue_options('bench_prio', priority_aging => '1 minute');
SELECT pgmq.create_fifo_index('bench_groups');
INSERT INTO pgmq.q_bench (vt, message) SELECT clock_timestamp(), '$payload' FROM generate_series(1, $ordering_fill);
INSERT INTO pgmq.q_bench_prio (vt, message, headers)
SELECT clock_timestamp(), '$payload', jsonb_build_object('x-queue-ext-priority', i % 10) FROM generate_series(1, $ordering_fill) i;
INSERT INTO pgmq.q_bench_groups (vt, message, headers)
SELECT clock_timestamp(), '$payload', jsonb_build_object('x-pgmq-group', 'g' || i % 1000) FROM generate_series(1, $ordering_fill) i;
VACUUM ANALYZE pgmq.q_bench, pgmq.q_bench_prio, pgmq.q_bench_groups, pgmq.q_bench_idem;
CHECKPOINT;
SQL
}
for rep in $(seq 1 "$paired_reps"); do
  for pair in "priorities read1_delete_ext read1_delete_prio" "groups read1_delete_ext read1_delete_groups" \
              "idempotency send_headers_plain send_headers_idem send_idem_floor"; do
    read -r name plain variant floor <<<"$pair"
    ordering_tables
    paired_pgbench ordering "$name" "$rep" -D n=0 \
      -f "bench/workloads/$plain.sql@1" -f "bench/workloads/$variant.sql@1" \
      ${floor:+-f "bench/workloads/$floor.sql@1"}
  done
done

# Tenancy: the same PostgREST-style request (BEGIN; SET LOCAL ROLE;
# request.headers; the pre-request function; the pgmq_public call; END) as
# an operator on an operator's queue, and as a tenant's edge function with an
# API key (role without privileges, key in x-api-key) on the tenant's queue,
# in one pgbench at equal weight.
tenancy_tables() {
  psql -qX -v ON_ERROR_STOP=1 >/dev/null <<SQL
SET client_min_messages = warning;
SELECT pgmq.drop_queue(queue_name) FROM pgmq.meta WHERE queue_name LIKE 'bench%';
DELETE FROM pgmq.api_keys; DELETE FROM pgmq.queue_grants; DELETE FROM pgmq.tenants;
SELECT 'CREATE ROLE qx_bench_rpc' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'qx_bench_rpc') \gexec
SELECT pgmq.grant_rpc('qx_bench_rpc');
SELECT pgmq.create_tenant('bench_t');
SELECT pgmq.create(q) FROM unnest(ARRAY['bench_op', 'bench_tenant']) q;
SELECT pgmq.set_queue_tenant('bench_tenant', 'bench_t');
INSERT INTO pgmq.q_bench_op (vt, message) SELECT clock_timestamp(), '$payload' FROM generate_series(1, $ordering_fill);
INSERT INTO pgmq.q_bench_tenant (vt, message) SELECT clock_timestamp(), '$payload' FROM generate_series(1, $ordering_fill);
VACUUM ANALYZE pgmq.q_bench_op, pgmq.q_bench_tenant;
CHECKPOINT;
SQL
  psql -qXAt -c "SELECT pgmq.create_api_key('bench_t', 'bench', '{publish,consume}')"
}
for rep in $(seq 1 "$paired_reps"); do
  for op in send read_delete; do
    key="$(tenancy_tables)"
    paired_pgbench tenancy "$op" "$rep" -D "key=$key" \
      -f "bench/workloads/rpc_${op}_operator.sql@1" -f "bench/workloads/rpc_${op}_key.sql@1"
  done
done

# Rate limits that do not bite: the limited queue belongs to a tenant with
# send and read limits of its own, and has its own send, read and deliver
# limits, all far above what 4 clients can do; the plain queue has none.
limits_tables() {
  psql -qX -v ON_ERROR_STOP=1 >/dev/null <<SQL
SET client_min_messages = warning;
SELECT pgmq.drop_queue(queue_name) FROM pgmq.meta WHERE queue_name LIKE 'bench%';
DELETE FROM pgmq.rate_limits; DELETE FROM pgmq.api_keys; DELETE FROM pgmq.queue_grants; DELETE FROM pgmq.tenants;
SELECT pgmq.create_tenant('bench_lt');
SELECT pgmq.create(q) FROM unnest(ARRAY['bench', 'bench_limited']) q;
SELECT pgmq.set_queue_tenant('bench_limited', 'bench_lt');
SELECT count(*) FROM unnest(ARRAY['send', 'read']) a, pgmq.set_rate_limit('tenant', 'bench_lt', a, 1e8, '1 second', 1e8) l;
SELECT count(*) FROM unnest(ARRAY['send', 'read', 'deliver']) a, pgmq.set_rate_limit('queue', 'bench_limited', a, 1e8, '1 second', 1e8) l;
INSERT INTO pgmq.q_bench (vt, message) SELECT clock_timestamp(), '$payload' FROM generate_series(1, $ordering_fill);
INSERT INTO pgmq.q_bench_limited (vt, message) SELECT clock_timestamp(), '$payload' FROM generate_series(1, $ordering_fill);
VACUUM ANALYZE pgmq.q_bench, pgmq.q_bench_limited;
CHECKPOINT;
SQL
}
for rep in $(seq 1 "$paired_reps"); do
  for op in send read1_delete; do
    limits_tables
    paired_pgbench limits "$op" "$rep" -D n=0 \
      -f "bench/workloads/${op}_ext.sql@1" -f "bench/workloads/${op}_limited.sql@1"
  done
done
psql -qX -c "DELETE FROM pgmq.rate_limits" -c "DELETE FROM pgmq.tenants WHERE slug = 'bench_lt' AND NOT EXISTS (SELECT FROM pgmq.queue_tenants q WHERE q.tenant_id = tenants.tenant_id)" >/dev/null

# Topics: send_topic under 100 bindings (99 patterns the key does not match,
# on a second queue, and one it does), which sends one message, beside a
# plain send, in one pgbench.
topic_tables() {
  psql -qX -v ON_ERROR_STOP=1 >/dev/null <<SQL
SET client_min_messages = warning;
SELECT pgmq.drop_queue(queue_name) FROM pgmq.meta WHERE queue_name LIKE 'bench%';
SELECT pgmq.create(q) FROM unnest(ARRAY['bench', 'bench_topic', 'bench_topic_other']) q;
SELECT count(pgmq.bind_topic(format('orders.r%s.#', i), 'bench_topic_other')) FROM generate_series(1, 99) i;
SELECT pgmq.bind_topic('orders.*.created', 'bench_topic');
CHECKPOINT;
SQL
}
for rep in $(seq 1 "$paired_reps"); do
  topic_tables
  paired_pgbench topics send "$rep" -D n=0 \
    -f bench/workloads/send_ext.sql@1 -f bench/workloads/send_topic100.sql@1
done

# Partitioned queues: read 1 + delete on a queue pg_partman partitions by
# msg_id (100 000 a partition) beside the same on a plain queue, both filled
# alike, in one pgbench.
partition_tables() {
  psql -qX -v ON_ERROR_STOP=1 >/dev/null <<SQL
SET client_min_messages = warning;
SELECT pgmq.drop_queue(queue_name) FROM pgmq.meta WHERE queue_name LIKE 'bench%';
CREATE SCHEMA IF NOT EXISTS partman;
CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman;
SELECT pgmq.create('bench');
SELECT pgmq.create_partitioned('bench_part', '100000', NULL, 4);
INSERT INTO pgmq.q_bench (vt, message) SELECT clock_timestamp(), '$payload' FROM generate_series(1, $ordering_fill);
INSERT INTO pgmq.q_bench_part (vt, message) SELECT clock_timestamp(), '$payload' FROM generate_series(1, $ordering_fill);
VACUUM ANALYZE pgmq.q_bench, pgmq.q_bench_part;
CHECKPOINT;
SQL
}
for rep in $(seq 1 "$paired_reps"); do
  partition_tables
  paired_pgbench partitioned read1_delete "$rep" -D n=0 \
    -f bench/workloads/read1_delete_ext.sql@1 -f bench/workloads/read1_delete_part.sql@1
done

# A grouped read of 10 on 1 M messages in 10 k groups (sent round robin, with
# the fifo index), beside the same read done pgmq 1.13's way, one client,
# rolled back each time so every read sees the same queue.
psql -qX -v ON_ERROR_STOP=1 >/dev/null <<SQL
SELECT pgmq.drop_queue(queue_name) FROM pgmq.meta WHERE queue_name LIKE 'bench%';
SELECT pgmq.create('bench_fifo');
INSERT INTO pgmq.q_bench_fifo (vt, message, headers)
SELECT clock_timestamp(), '$payload', jsonb_build_object('x-pgmq-group', 'g' || i % 10000) FROM generate_series(1, 1000000) i;
SELECT pgmq.create_fifo_index('bench_fifo');
VACUUM ANALYZE pgmq.q_bench_fifo;
CHECKPOINT;
SQL
for rep in $(seq 1 "$paired_reps"); do
  for impl in ext pgmq_style; do
    "$pgbench_bin" -n -M prepared -c 1 -j 1 -T 10 -f "bench/workloads/grouped10_$impl.sql" \
      >"$out/grouped.$impl.$rep.log" 2>&1 || { cat "$out/grouped.$impl.$rep.log" >&2; exit 1; }
    lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$out/grouped.$impl.$rep.log")
    printf '%s\t%s\t%s\n' "$impl" "$rep" "$lat" | tee -a "$out/grouped.tsv"
  done
done

bash bench/latency.sh "$out" "${BENCH_LATENCY_SECONDS:-60}"
bash bench/metrics.sh "$out"

for rep in $(seq 1 "$churn_reps"); do
  for impl in ext floor; do
    reset_tables "$impl" "$churn_fill"
    run_pgbench "read1_delete_$impl" off "$churn_seconds" "$out/churn.$impl.$rep.log" -P 5 >/dev/null
    sed -n 's/^progress: \([0-9.]*\) s, \([0-9.]*\) tps.*/\1\t\2/p' "$out/churn.$impl.$rep.log" |
      while IFS=$'\t' read -r t tps; do printf '%s\t%s\t%s\t%s\n' "$impl" "$rep" "$t" "$tps"; done >>"$out/churn.tsv"
  done
done

bash bench/report.sh "$out" "$seconds" "$reps" "$churn_seconds" "$prefill" "$ordering_fill" "$churn_fill" > bench/RESULTS.md
cat bench/RESULTS.md
