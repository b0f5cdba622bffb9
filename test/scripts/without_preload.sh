#!/usr/bin/env bash
# What needs shared memory, on a server where queue_ext is not in
# shared_preload_libraries (only pg_cron is). Rate limits, the in-flight cap,
# quotas, throughput counters, latency and queue stats: buckets are rows of
# pgmq.rate_limit_buckets, still shared by every session, and a session
# whose transaction holds a bucket makes the others wait for it (here: a
# lock_timeout error instead of a wait). Queue stats have no gauges and count
# every queue on each look (depth_from = 'count'), the states of large ones
# included.
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/script_helpers.sh
. test/cluster.sh
cluster_start "shared_preload_libraries = 'pg_cron'"
trap cluster_stop EXIT


q -c "CREATE EXTENSION queue_ext" >/dev/null
[ "$(q -c "SHOW shared_preload_libraries")" = "pg_cron" ] || fail "queue_ext is preloaded"
q -c "SELECT pgmq.create('np_jobs')" \
  -c "SELECT pgmq.set_rate_limit('queue', 'np_jobs', 'send', 1, '1 day', 3)" >/dev/null

# One session takes two, another gets one more and is then refused whole.
[ "$(q -c "SELECT count(*) FROM pgmq.send_batch('np_jobs', ARRAY['{}', '{}']::jsonb[])")" = 2 ] || fail "first two"
out="$(psql -qXAt -c "SELECT count(*) FROM pgmq.send_batch('np_jobs', ARRAY['{}', '{}']::jsonb[])" 2>&1 || true)"
echo "$out" | grep -q 'rate limit exceeded: send of queue "np_jobs"' || fail "batch over the limit passed: $out"
[ "$(q -c "SELECT pgmq.send('np_jobs', '{}') > 0")" = t ] || fail "third send"
out="$(psql -qXAt -v VERBOSITY=verbose -c "SELECT pgmq.send('np_jobs', '{}')" 2>&1 || true)"
echo "$out" | grep -q 'PT429' || fail "no PT429: $out"
[ "$(q -c "SELECT count(*) FROM pgmq.q_np_jobs")" = 3 ] || fail "messages"
[ "$(q -c "SELECT count(*) FROM pgmq.rate_limit_buckets")" = 1 ] || fail "bucket row"

# A transaction holding the bucket makes another session's send wait.
q -c "SELECT pgmq.set_rate_limit('queue', 'np_jobs', 'send', 1000, '1 second')" >/dev/null
coproc holder { psql -qXAt -v ON_ERROR_STOP=1; }
echo "BEGIN; SELECT pgmq.send('np_jobs', '{\"held\": true}') > 0;" >&"${holder[1]}"
read -r -t 30 held <&"${holder[0]}"
[ "$held" = t ] || fail "holder did not send"
out="$(psql -qXAt -c "SET lock_timeout = '300ms'" -c "SELECT pgmq.send('np_jobs', '{}')" 2>&1 || true)"
echo "$out" | grep -q 'lock timeout' || fail "second session did not wait for the bucket: $out"
echo "COMMIT; SELECT 'done';" >&"${holder[1]}"
read -r -t 30 done_line <&"${holder[0]}"
[ "$done_line" = done ] || fail "holder commit"
[ "$(q -c "SELECT pgmq.send('np_jobs', '{}') > 0")" = t ] || fail "send after the holder committed"
echo "\\q" >&"${holder[1]}"

# max_in_flight without shared memory: the same lock and count.
q -c "SELECT pgmq.purge_queue('np_jobs')" -c "SELECT pgmq.remove_rate_limit('queue', 'np_jobs', 'send')" \
  -c "SELECT pgmq.set_queue_options('np_jobs', max_in_flight => 2)" \
  -c "SELECT pgmq.send_batch('np_jobs', ARRAY['{}', '{}', '{}']::jsonb[])" >/dev/null
[ "$(q -c "SELECT count(*) FROM pgmq.read('np_jobs', 30, 10)")" = 2 ] || fail "in-flight cap"
[ "$(q -c "SELECT count(*) FROM pgmq.read('np_jobs', 30, 10)")" = 0 ] || fail "in-flight cap, second read"

# A deliver limit: reads return fewer.
q -c "SELECT pgmq.create('np_deliver')" -c "SELECT pgmq.set_rate_limit('queue', 'np_deliver', 'deliver', 1, '1 day', 2)" \
  -c "SELECT pgmq.send_batch('np_deliver', ARRAY['{}', '{}', '{}']::jsonb[])" >/dev/null
[ "$(q -c "SELECT count(*) FROM pgmq.read('np_deliver', 30, 10)")" = 2 ] || fail "deliver limit"
[ "$(q -c "SELECT count(*) FROM pgmq.read('np_deliver', 30, 10)")" = 0 ] || fail "deliver limit, second read"

# Quotas need no shared memory.
q -c "SELECT pgmq.create_tenant('np_t')" -c "SELECT pgmq.create('np_t_q')" -c "SELECT pgmq.set_queue_tenant('np_t_q', 'np_t')" \
  -c "SELECT pgmq.set_tenant_quota('np_t', NULL, 2)" >/dev/null
[ "$(q -c "SELECT count(*) FROM pgmq.send_batch('np_t_q', ARRAY['{}', '{}']::jsonb[])")" = 2 ] || fail "quota sends"
out="$(psql -qXAt -c "SELECT pgmq.send('np_t_q', '{}')" 2>&1 || true)"
echo "$out" | grep -q 'monthly quota of tenant "np_t" exceeded' || fail "quota: $out"
# Throughput counters need shared memory: without it nothing is counted,
# and maintenance rolls up nothing.
[ "$(q -c "SELECT count(*) FROM pgmq.queue_counters()")" = 0 ] || fail "counters without preload"
[ "$(q -c "SELECT count(*) FROM pgmq.run_maintenance() WHERE step = 'throughput'")" = 0 ] || fail "throughput rolled up"
[ "$(q -c "SELECT count(*) FROM pgmq.throughput_history")" = 0 ] || fail "throughput history without preload"

# Queue stats count rows: exact, live, and the same for a queue past the census size.
q -c "SELECT pgmq.create('np_stats')" -c "SELECT pgmq.send_batch('np_stats', ARRAY(SELECT '{}'::jsonb FROM generate_series(1, 10001)))" \
  -c "SELECT pgmq.read('np_stats', 60, 3)" -c "SELECT pgmq.archive('np_stats', 10001)" >/dev/null
[ "$(q -c "SELECT depth, visible, in_flight, archived, depth_from, states_at = scrape_time FROM pgmq.queue_stats WHERE queue_name = 'np_stats'")" \
  = "10000|9997|3|1|count|t" ] || fail "queue stats without preload: $(q -c "SELECT * FROM pgmq.queue_stats WHERE queue_name = 'np_stats'")"
[ "$(q -c "SELECT count(*) FROM pgmq.run_maintenance() WHERE step IN ('gauges', 'census')")" = 0 ] || fail "gauges or census without preload"
[ "$(q -c "SELECT count(*) FROM pgmq.queue_census")" = 0 ] || fail "census rows without preload"
# Latency histograms need shared memory: none, and no percentiles in the history.
q -c "SELECT pgmq.delete('np_stats', msg_id) FROM pgmq.read('np_stats', 60, 2)" >/dev/null
[ "$(q -c "SELECT count(*) FROM pgmq.queue_latency")" = 0 ] || fail "latency without preload"
[ "$(q -c "SELECT count(*) FROM pgmq.queue_latency_buckets")" = 0 ] || fail "latency buckets without preload"
echo "without preload: ok"
