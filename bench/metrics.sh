#!/usr/bin/env bash
# How long the metric views take on a queue of 1 M messages, beside the
# calls that count rows (pgmq.metrics, as pgmq does it, and pgmq.job_counts),
# in one run. A database of its own holds one queue of BENCH_METRICS_FILL
# (default 1 000 000) messages, 100 of them in flight, 1 000 archived,
# dead-lettering into a second queue, with maintenance's census taken and its
# latency histograms filled; each statement runs in one pgbench client for
# 5 s, three times. Appends "statement rep latency_ms" to $1/metrics.tsv.
#
# Called by bench/run.sh against its cluster (PG* set); run alone with a
# cluster's PG* variables set: bash bench/metrics.sh OUTDIR
set -euo pipefail
out="$1"
fill="${BENCH_METRICS_FILL:-1000000}"
db=qx_bench_metrics
pgbench_bin="${QX_PG_BINDIR:-$(pg_config --bindir)}/pgbench"
mkdir -p "$out"
psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql -qX -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION queue_ext;
SELECT pgmq.create('metrics_1m'), pgmq.create('metrics_dead');
SELECT pgmq.set_queue_options('metrics_1m', max_attempts => 5, dead_letter_queue => 'metrics_dead');
INSERT INTO pgmq.q_metrics_1m (vt, message)
SELECT clock_timestamp(), '{"task":"email","to":"user@example.com","attempt":1}' FROM generate_series(1, $fill);
SELECT count(*) FROM pgmq.archive('metrics_1m', ARRAY(SELECT msg_id FROM pgmq.read('metrics_1m', 600, 1000)));
SELECT count(*) FROM pgmq.delete('metrics_1m', ARRAY(SELECT msg_id FROM pgmq.read('metrics_1m', 600, 100)));
SELECT count(*) FROM pgmq.read('metrics_1m', 600, 100);
SELECT count(*) FROM pgmq.send_batch('metrics_dead', ARRAY['{}', '{}']::jsonb[]);
VACUUM ANALYZE pgmq.q_metrics_1m, pgmq.a_metrics_1m;
SELECT count(*) FROM pgmq.run_maintenance();
SQL
# The gauge must be live and the census taken, or this measures the fallback.
[ "$(psql -qXAt -d "$db" -c "SELECT depth_from || ' ' || (states_at IS NOT NULL) FROM pgmq.queue_stats WHERE queue_name = 'metrics_1m'")" = "gauge true" ] || {
  echo "metrics bench: no gauge or census for metrics_1m" >&2; exit 1; }

statements=(
  "queue_stats|SELECT * FROM pgmq.queue_stats"
  "tenant_stats|SELECT * FROM pgmq.tenant_stats"
  "queue_latency|SELECT * FROM pgmq.queue_latency"
  "queue_latency_buckets|SELECT * FROM pgmq.queue_latency_buckets"
  "metrics|SELECT * FROM pgmq.metrics('metrics_1m')"
  "job_counts|SELECT * FROM pgmq.job_counts"
)
for rep in 1 2 3; do
  for entry in "${statements[@]}"; do
    name="${entry%%|*}"
    echo "${entry#*|};" >"$out/metrics.$name.sql"
    "$pgbench_bin" -n -c 1 -j 1 -T 5 -d "$db" -f "$out/metrics.$name.sql" >"$out/metrics.$name.$rep.log" 2>&1 ||
      { cat "$out/metrics.$name.$rep.log" >&2; exit 1; }
    lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$out/metrics.$name.$rep.log")
    printf '%s\t%s\t%s\n' "$name" "$rep" "$lat" | tee -a "$out/metrics.tsv"
  done
done
psql -qX -d postgres -c "DROP DATABASE $db"
