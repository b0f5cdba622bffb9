-- Latency histograms (queue_ext is preloaded here): enqueue -> first read
-- and read -> ack per queue, counted when the transaction commits; the
-- percentile arithmetic on a known histogram; the per-minute roll-up; what a
-- tenant sees; bad input to the percentile function.
\i test/sql/include/outcome.psql
SET client_min_messages = warning;

-- Ten samples in bucket 11 (0.1 ms * 2^4.5 .. 0.1 ms * 2^5, i.e. 2.26 to 3.2 ms):
-- the median is interpolated geometrically inside it, the maximum is its top.
SELECT round(pgmq._latency_percentile(array_fill(0::bigint, ARRAY[10]) || ARRAY[10::bigint] || array_fill(0::bigint, ARRAY[45]), 0.5)::numeric, 3) AS p50,
       round(pgmq._latency_percentile(array_fill(0::bigint, ARRAY[10]) || ARRAY[10::bigint] || array_fill(0::bigint, ARRAY[45]), 1)::numeric, 3) AS p100;
-- The first bucket is linear from 0; the last has no top, so it gives its bottom (about 3.7 hours).
SELECT pgmq._latency_percentile(ARRAY[4::bigint] || array_fill(0::bigint, ARRAY[55]), 0.5) AS p50_first,
       round(pgmq._latency_percentile(array_fill(0::bigint, ARRAY[55]) || ARRAY[1::bigint], 0.99)::numeric / 3600000, 2) AS hours_last;
SELECT pgmq._latency_percentile(array_fill(0::bigint, ARRAY[56]), 0.5) AS no_samples;
SELECT pg_temp.outcome($$SELECT pgmq._latency_percentile(array_fill(1::bigint, ARRAY[56]), 0)$$);
SELECT pg_temp.outcome($$SELECT pgmq._latency_percentile(array_fill(1::bigint, ARRAY[56]), 1.5)$$);
SELECT pg_temp.outcome($$SELECT pgmq._latency_percentile(array_fill(1::bigint, ARRAY[56]), 'NaN')$$);
SELECT pg_temp.outcome($$SELECT pgmq._latency_percentile(ARRAY[1, 2, 3]::bigint[], 0.5)$$);
SELECT pgmq._latency_percentile(NULL, 0.5) AS null_histogram;

CREATE ROLE qx_lat_tenant;
SELECT pgmq.create_tenant('lat_acme') > 0 AS made;
SELECT pgmq.add_tenant_role('lat_acme', 'qx_lat_tenant');
SELECT pgmq.create('lat_jobs'), pgmq.create('lat_acme_q');
SELECT pgmq.set_queue_tenant('lat_acme_q', 'lat_acme');

-- Sent, left waiting 0.3 s, read; then held 0.2 s before the ack.
SELECT count(*) FROM pgmq.send_batch('lat_jobs', ARRAY['{}', '{}', '{}', '{}', '{}', '{}']::jsonb[]);
SELECT pg_sleep(0.3);
CREATE TEMP TABLE leased AS SELECT msg_id, read_ct FROM pgmq.read('lat_jobs', 60, 4);
SELECT pg_sleep(0.2);
-- Each way of finishing counts: delete, delete of many, archive of many, ack.
SELECT pgmq.delete('lat_jobs', (SELECT min(msg_id) FROM leased));
SELECT count(*) FROM pgmq.delete('lat_jobs', ARRAY(SELECT msg_id FROM leased ORDER BY msg_id OFFSET 1 LIMIT 1));
SELECT count(*) FROM pgmq.archive('lat_jobs', ARRAY(SELECT msg_id FROM leased ORDER BY msg_id OFFSET 2 LIMIT 1));
SELECT pgmq.ack('lat_jobs', msg_id, read_ct) FROM leased ORDER BY msg_id OFFSET 3;
-- Not counted: a rolled-back read and ack, a pop, a message deleted unread, a second delivery.
BEGIN;
SELECT pgmq.delete('lat_jobs', msg_id) FROM pgmq.read('lat_jobs', 60, 1);
ROLLBACK;
SELECT count(*) AS popped FROM pgmq.pop('lat_jobs');
SELECT pgmq.delete('lat_jobs', (SELECT max(msg_id) FROM pgmq.q_lat_jobs));
SELECT count(*) FROM pgmq.send('lat_jobs', '{}');
SELECT count(*) FROM pgmq.read('lat_jobs', 0, 1);
SELECT count(*) AS redelivered FROM pgmq.read('lat_jobs', 60, 1) WHERE read_ct = 2;

SELECT queue_name, kind, samples,
       p50_ms BETWEEN 240 AND 5000 AS p50_waited, p99_ms >= p95_ms AND p95_ms >= p50_ms AS ordered
FROM pgmq.queue_latency WHERE queue_name = 'lat_jobs' AND kind = 'first_read';
SELECT queue_name, kind, samples, p50_ms BETWEEN 160 AND 5000 AS p50_held, p99_ms < 5000 AS bounded
FROM pgmq.queue_latency WHERE queue_name = 'lat_jobs' AND kind = 'ack';
-- As Prometheus buckets: cumulative, the last one (le = +Inf) holding every sample.
SELECT kind, count(*) AS buckets, max(count) AS total, bool_and(le_ms > 0) AS bounds
FROM pgmq.queue_latency_buckets WHERE queue_name = 'lat_jobs' GROUP BY kind ORDER BY kind;
SELECT kind, count FROM pgmq.queue_latency_buckets WHERE queue_name = 'lat_jobs' AND le_ms = 'Infinity' ORDER BY kind;

-- Maintenance writes the minute's percentiles beside its counts.
SELECT step FROM pgmq.run_maintenance() WHERE step = 'throughput';
SELECT read, first_read_p50_ms BETWEEN 240 AND 5000 AS first_read, ack_p50_ms BETWEEN 160 AND 5000 AS ack
FROM pgmq.throughput_history WHERE queue_name = 'lat_jobs';

-- The tenant sees its own queue's latencies only.
SELECT pgmq.send('lat_acme_q', '{}') > 0 AS sent;
SELECT count(*) FROM pgmq.read('lat_acme_q', 60, 1);
SET ROLE qx_lat_tenant;
SELECT queue_name, kind, samples FROM pgmq.queue_latency ORDER BY kind;
SELECT DISTINCT queue_name FROM pgmq.queue_latency_buckets;
SELECT count(*) FROM pgmq.latency_marks;
RESET ROLE;

SELECT pgmq.drop_queue('lat_jobs'), pgmq.drop_queue('lat_acme_q');
SELECT count(*) AS left_behind FROM pgmq.queue_latency WHERE queue_name LIKE 'lat%';
SELECT pgmq.drop_tenant('lat_acme');
DROP OWNED BY qx_lat_tenant;
DROP ROLE qx_lat_tenant;
