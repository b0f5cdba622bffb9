#!/usr/bin/env bash
# Operators scrape queue_ext with Debian's prometheus-postgres-exporter and
# examples/prometheus/queue_ext_queries.yaml: the real exporter runs against
# the test cluster and /metrics shows each queue's depth, visible, in-flight,
# delayed, retrying and dead-lettered messages, its archive, its oldest
# message's age (pgmq.queue_stats), the throughput counters of shared memory
# and the latency histograms.
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/script_helpers.sh
. test/cluster.sh
db=qx_prometheus
psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
export PGDATABASE=$db
exporter_pid=""
cleanup() {
  [ -n "$exporter_pid" ] && kill "$exporter_pid" 2>/dev/null || true
  psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
}
trap cleanup EXIT

q >/dev/null <<'SQL'
CREATE EXTENSION queue_ext;
SELECT pgmq.create('orders'), pgmq.create('orders_dead'), pgmq.create('idle');
SELECT pgmq.set_queue_options('orders', max_attempts => 1, dead_letter_queue => 'orders_dead');
SELECT pgmq.send_batch('orders', ARRAY(SELECT jsonb_build_object('n', i) FROM generate_series(1, 7) i));
SELECT pgmq.send('orders', '{"later": true}', 3600);
-- Two leased, one nacked into the dead-letter queue (one attempt allowed).
SELECT count(*) FROM pgmq.read('orders', 600, 2);
SELECT pgmq.nack('orders', msg_id, read_ct) FROM pgmq.read('orders', 600, 1);
UPDATE pgmq.q_orders SET enqueued_at = now() - interval '90 seconds' WHERE msg_id = 1;
-- One finished after its read.
SELECT pgmq.send('orders', '{"quick": true}');
SELECT pgmq.delete('orders', msg_id) FROM pgmq.read('orders', 600, 1, '{"quick": true}');
SQL

port="$(qx_free_port)"
DATA_SOURCE_NAME="host=$PGHOST port=$PGPORT user=postgres dbname=$db sslmode=disable" \
  prometheus-postgres-exporter --web.listen-address="127.0.0.1:$port" \
    --extend.query-path=examples/prometheus/queue_ext_queries.yaml \
    --disable-default-metrics --disable-settings-metrics >/tmp/qx_exporter.log 2>&1 &
exporter_pid=$!
metrics=""
for _ in $(seq 1 50); do
  metrics="$(curl -sf "http://127.0.0.1:$port/metrics" || true)"
  echo "$metrics" | grep -q '^queue_ext_queue_depth' && break
  sleep 0.2
done
metric() {  # metric NAME QUEUE -> value
  echo "$metrics" | grep "^queue_ext_queue_$1{" | grep "queue=\"$2\"" | awk '{print $NF}' | head -1
}
[ -n "$(metric depth orders)" ] || { cat /tmp/qx_exporter.log; fail "no queue_ext metrics: $(echo "$metrics" | grep -i -m5 'error\|queue_ext')"; }
# orders: 8 sent, 1 dead-lettered out of it; 2 leased, 1 delayed, 4 visible.
[ "$(metric depth orders)" = 7 ] || fail "depth $(metric depth orders)"
[ "$(metric visible orders)" = 4 ] || fail "visible $(metric visible orders)"
[ "$(metric in_flight orders)" = 2 ] || fail "in_flight $(metric in_flight orders)"
[ "$(metric delayed orders)" = 1 ] || fail "delayed $(metric delayed orders)"
[ "$(metric dead_lettered orders)" = 1 ] || fail "dead_lettered $(metric dead_lettered orders)"
[ "$(metric archived orders)" = 0 ] || fail "archived $(metric archived orders)"
[ "$(metric states_age_seconds orders)" = 0 ] || fail "states_age_seconds $(metric states_age_seconds orders)"
age="$(metric oldest_age_seconds orders)"
[ "${age%.*}" -ge 89 ] || fail "oldest_age_seconds $age"
[ "$(metric depth idle)" = 0 ] || fail "idle depth $(metric depth idle)"
echo "$metrics" | grep -q '^# TYPE queue_ext_throughput_sent_total counter' || fail "sent_total is not a counter"
# The shared-memory counters: 9 sent, 4 read, 1 nacked and dead-lettered.

tmetric() { echo "$metrics" | grep "^queue_ext_throughput_$1{" | grep "queue=\"$2\"" | awk '{print $NF}' | head -1; }
[ "$(tmetric sent_total orders)" = 9 ] || fail "sent_total $(tmetric sent_total orders)"
[ "$(tmetric read_total orders)" = 4 ] || fail "read_total $(tmetric read_total orders)"
[ "$(tmetric nacked_total orders)" = 1 ] || fail "nacked_total $(tmetric nacked_total orders)"
[ "$(tmetric dead_lettered_total orders)" = 1 ] || fail "dead_lettered_total $(tmetric dead_lettered_total orders)"
# Latency histograms: 4 first reads and 1 ack, all of them under +Inf.
lmetric() { echo "$metrics" | grep "^queue_ext_latency_bucket{" | grep "queue=\"$1\"" | grep "kind=\"$2\"" | grep "le=\"$3\"" | awk '{print $NF}' | head -1; }
[ "$(lmetric orders first_read +Inf)" = 4 ] || fail "first_read +Inf $(lmetric orders first_read +Inf); $(echo "$metrics" | grep -m3 queue_ext_latency)"
[ "$(lmetric orders ack +Inf)" = 1 ] || fail "ack +Inf $(lmetric orders ack +Inf)"
[ "$(echo "$metrics" | grep '^queue_ext_latency_bucket{' | grep 'queue="orders"' | grep -c 'kind="ack"')" = 29 ] || fail "ack buckets"
rm -f /tmp/qx_exporter.log
echo "prometheus exporter: ok"
