-- pgmq.queue_stats (queue_ext is preloaded here): depth and archived rows
-- from the gauges kept at commit, checked against count(*) after every kind
-- of change, the API's and hand-written SQL's; the state split, counted on
-- the spot for small queues and by maintenance's census for large ones; what
-- makes a gauge unknown and how maintenance recounts it; tenants' view.
SET client_min_messages = warning;

-- "gauge q: depth D of N, archived A of M": D and A must equal the counts N and M.
CREATE FUNCTION pg_temp.gauge_check(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  s record;
  n bigint;
  a bigint;
BEGIN
  SELECT * INTO s FROM pgmq.queue_stats WHERE queue_name = q;
  EXECUTE format('SELECT count(*) FROM pgmq.%I', pgmq.format_table_name(q, 'q')) INTO n;
  EXECUTE format('SELECT count(*) FROM pgmq.%I', pgmq.format_table_name(q, 'a')) INTO a;
  RETURN format('%s %s: depth %s of %s, archived %s of %s', s.depth_from, q, s.depth, n, s.archived, a);
END $$;

SELECT pgmq.create('qs_jobs'), pgmq.create('qs_dead');
SELECT pg_temp.gauge_check('qs_jobs');

-- The API's own changes.
SELECT count(*) FROM pgmq.send_batch('qs_jobs', ARRAY['{}', '{}', '{}', '{}', '{}', '{}']::jsonb[]);
SELECT pgmq.send('qs_jobs', '{"later": true}', 600) > 0 AS delayed_sent;
SELECT count(*) AS leased FROM pgmq.read('qs_jobs', 60, 2);
SELECT depth, visible, in_flight, delayed, retrying, stale, dead_lettered, archived, depth_from,
       states_at = scrape_time AS counted_now, oldest_msg_age_sec < 60 AS young
FROM pgmq.queue_stats WHERE queue_name = 'qs_jobs';
SELECT pgmq.delete('qs_jobs', 1), pgmq.archive('qs_jobs', 2);
SELECT count(*) AS popped FROM pgmq.pop('qs_jobs');
SELECT pgmq.ack('qs_jobs', msg_id, read_ct) FROM pgmq.read('qs_jobs', 60, 1);
SELECT pg_temp.gauge_check('qs_jobs');

-- A nack with attempts left: retrying. Without: into the dead-letter queue, whose depth shows.
SELECT max_attempts FROM pgmq.set_queue_options('qs_jobs', max_attempts => 2, dead_letter_queue => 'qs_dead',
                                                backoff_base => 600);
SELECT pgmq.nack('qs_jobs', msg_id, read_ct) FROM pgmq.read('qs_jobs', 60, 1);
SELECT visible, in_flight, delayed, retrying, dead_lettered FROM pgmq.queue_stats WHERE queue_name = 'qs_jobs';
SELECT pgmq.set_vt('qs_jobs', msg_id, 0) IS NOT NULL AS due FROM pgmq.q_qs_jobs WHERE read_ct = 1;
SELECT pgmq.nack('qs_jobs', msg_id, read_ct) FROM pgmq.read('qs_jobs', 60, 1);
SELECT depth, retrying, dead_lettered FROM pgmq.queue_stats WHERE queue_name = 'qs_jobs';
SELECT pg_temp.gauge_check('qs_jobs'), pg_temp.gauge_check('qs_dead');
SELECT count(*) AS redriven FROM pgmq.redrive('qs_dead');
SELECT dead_lettered FROM pgmq.queue_stats WHERE queue_name = 'qs_jobs';
SELECT pg_temp.gauge_check('qs_jobs'), pg_temp.gauge_check('qs_dead');

-- Rolled back, whole or to a savepoint: nothing counts.
BEGIN;
SELECT pgmq.send('qs_jobs', '{}') > 0 AS sent;
-- The transaction's own change shows in its own view.
SELECT pg_temp.gauge_check('qs_jobs');
ROLLBACK;
BEGIN;
SELECT pgmq.send('qs_jobs', '{}') > 0 AS sent;
SAVEPOINT s;
SELECT count(*) FROM pgmq.send_batch('qs_jobs', ARRAY['{}', '{}']::jsonb[]);
SELECT pgmq.delete('qs_jobs', (SELECT min(msg_id) FROM pgmq.q_qs_jobs));
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT pg_temp.gauge_check('qs_jobs');

-- Hand-written SQL moves the gauges too: DELETE, INSERT, UPDATE, a writable CTE, COPY, TRUNCATE.
DELETE FROM pgmq.q_qs_jobs WHERE msg_id = (SELECT max(msg_id) FROM pgmq.q_qs_jobs);
INSERT INTO pgmq.q_qs_jobs (vt, message) SELECT now(), '{}' FROM generate_series(1, 3);
UPDATE pgmq.q_qs_jobs SET message = '{"edited": true}';
WITH gone AS (DELETE FROM pgmq.q_qs_jobs WHERE msg_id = (SELECT min(msg_id) FROM pgmq.q_qs_jobs) RETURNING *)
INSERT INTO pgmq.a_qs_jobs (msg_id, read_ct, enqueued_at, vt, message) SELECT msg_id, read_ct, enqueued_at, vt, message FROM gone;
SELECT pg_temp.gauge_check('qs_jobs');
COPY pgmq.q_qs_jobs (vt, message) FROM stdin;
2026-01-01 00:00:00+00	{"copied": 1}
2026-01-01 00:00:00+00	{"copied": 2}
\.
SELECT pg_temp.gauge_check('qs_jobs');
BEGIN;
TRUNCATE pgmq.a_qs_jobs;
INSERT INTO pgmq.a_qs_jobs (msg_id, vt, message) VALUES (1000, now(), '{}');
COMMIT;
SELECT pg_temp.gauge_check('qs_jobs');

-- A message enqueued over an hour ago is stale. The ages are those of the
-- first and the last msg_id (the primary key's two ends), so this row,
-- inserted by hand last with an old enqueued_at, is the "newest".
INSERT INTO pgmq.q_qs_jobs (enqueued_at, vt, message) VALUES (now() - interval '2 hours', now(), '{}');
SELECT stale, newest_msg_age_sec >= 7200 AS last_is_old FROM pgmq.queue_stats WHERE queue_name = 'qs_jobs';

-- Retention and purge.
SELECT message_retention FROM pgmq.set_queue_options('qs_jobs', message_retention => '1 hour');
SELECT step, affected FROM pgmq.run_maintenance(queues => ARRAY['qs_jobs'], general => false);
SELECT pg_temp.gauge_check('qs_jobs');
SELECT pgmq.purge_queue('qs_jobs') > 0 AS purged;
SELECT pg_temp.gauge_check('qs_jobs');

-- Two-phase commit: COMMIT PREPARED runs elsewhere, so the gauge is unknown
-- and the view counts, until maintenance recounts it.
SELECT pgmq.send('qs_jobs', '{}') > 0 AS sent;
BEGIN;
SELECT pgmq.send('qs_jobs', '{}') > 0 AS sent;
PREPARE TRANSACTION 'qs_prepared';
COMMIT PREPARED 'qs_prepared';
SELECT pg_temp.gauge_check('qs_jobs');
SELECT step, affected FROM pgmq.run_maintenance(queues => ARRAY['qs_jobs'], general => false);
SELECT pg_temp.gauge_check('qs_jobs');
-- A recount in a transaction that changed the table itself leaves its own
-- changes to its commit: exact whether it commits or rolls back.
BEGIN;
SELECT pgmq.send('qs_jobs', '{}') > 0 AS sent;
PREPARE TRANSACTION 'qs_prepared_3';
COMMIT PREPARED 'qs_prepared_3';
BEGIN;
SELECT pgmq.send('qs_jobs', '{}') > 0 AS sent;
SELECT step, affected FROM pgmq.run_maintenance(queues => ARRAY['qs_jobs'], general => false);
SELECT pg_temp.gauge_check('qs_jobs');
COMMIT;
SELECT pg_temp.gauge_check('qs_jobs');
BEGIN;
SELECT pgmq.send('qs_jobs', '{}') > 0 AS sent;
PREPARE TRANSACTION 'qs_prepared_4';
COMMIT PREPARED 'qs_prepared_4';
BEGIN;
SELECT count(*) FROM pgmq.send_batch('qs_jobs', ARRAY['{}', '{}', '{}']::jsonb[]);
SELECT pgmq._recount_gauges('qs_jobs') AS recounted;
ROLLBACK;
SELECT pg_temp.gauge_check('qs_jobs');
-- Called directly, outside maintenance: no lock is left behind (another
-- session's write would wait for it; here a warning would show).
BEGIN;
SELECT pgmq.send('qs_jobs', '{}') > 0 AS sent;
PREPARE TRANSACTION 'qs_prepared_5';
COMMIT PREPARED 'qs_prepared_5';
BEGIN;
SELECT pgmq._recount_gauges('qs_jobs') AS recounted;
SELECT count(*) AS share_locks_held FROM pg_locks
WHERE relation = 'pgmq.q_qs_jobs'::regclass AND mode = 'ShareLock' AND pid = pg_backend_pid();
COMMIT;
SELECT pg_temp.gauge_check('qs_jobs');
-- A table emptied in this transaction is not recounted in it.
BEGIN;
SELECT pgmq.send('qs_jobs', '{}') > 0 AS sent;
PREPARE TRANSACTION 'qs_prepared_6';
COMMIT PREPARED 'qs_prepared_6';
BEGIN;
TRUNCATE pgmq.q_qs_jobs;
SELECT pgmq._recount_gauges('qs_jobs') AS recounted;
ROLLBACK;
SELECT pgmq._recount_gauges('qs_jobs') AS recounted;
SELECT pg_temp.gauge_check('qs_jobs');
-- Changes made with track_counts off are in no count: the gauge is lost until a recount.
BEGIN;
SET LOCAL track_counts = off;
SELECT pgmq.send('qs_jobs', '{}') > 0 AS sent;
COMMIT;
SELECT pg_temp.gauge_check('qs_jobs');
SELECT pgmq._recount_gauges('qs_jobs') AS recounted;
-- pgmq.create of a queue that exists makes no table and keeps the gauges.
SELECT pgmq.create('qs_jobs');
SELECT pg_temp.gauge_check('qs_jobs');

-- A large queue: its states come from maintenance's census, with its time;
-- its depth stays live.
SELECT pgmq.create('qs_big');
SELECT count(*) FROM pgmq.send_batch('qs_big', ARRAY(SELECT '{}'::jsonb FROM generate_series(1, 10001)));
SELECT depth, visible, states_at, depth_from FROM pgmq.queue_stats WHERE queue_name = 'qs_big';
SELECT step, affected FROM pgmq.run_maintenance(queues => ARRAY['qs_big'], general => false);
SELECT count(*) AS leased FROM pgmq.read('qs_big', 60, 5);
SELECT depth, visible, in_flight, states_at < scrape_time AS from_census FROM pgmq.queue_stats WHERE queue_name = 'qs_big';
SELECT step, affected FROM pgmq.run_maintenance(queues => ARRAY['qs_big'], general => false);
SELECT depth, visible, in_flight FROM pgmq.queue_stats WHERE queue_name = 'qs_big';
SELECT count(*) AS census_rows FROM pgmq.queue_census WHERE queue_name = 'qs_big';
SELECT pgmq.drop_queue('qs_big');
SELECT count(*) AS census_rows FROM pgmq.queue_census WHERE queue_name = 'qs_big';

-- A tenant sees its own queues' stats, and its own totals.
CREATE ROLE qx_qs_tenant;
SELECT pgmq.create_tenant('qs_acme') > 0 AS made;
SELECT pgmq.add_tenant_role('qs_acme', 'qx_qs_tenant');
SELECT pgmq.create('qs_acme_q');
SELECT pgmq.set_queue_tenant('qs_acme_q', 'qs_acme');
SELECT count(*) FROM pgmq.send_batch('qs_acme_q', ARRAY['{}', '{}']::jsonb[]);
SELECT tenant, queues, depth FROM pgmq.tenant_stats WHERE tenant = 'qs_acme';
SET ROLE qx_qs_tenant;
SELECT queue_name, depth, visible FROM pgmq.queue_stats;
SELECT tenant, queues, depth, visible FROM pgmq.tenant_stats;
SELECT count(*) FROM pgmq.queue_census;
SELECT pgmq._census_queue('qs_acme_q');
SELECT pgmq._recount_gauges('qs_acme_q');
RESET ROLE;

SELECT pgmq.drop_queue('qs_jobs'), pgmq.drop_queue('qs_dead'), pgmq.drop_queue('qs_acme_q');
SELECT count(*) AS left_behind FROM pgmq.queue_stats WHERE queue_name LIKE 'qs%';
SELECT pgmq.drop_tenant('qs_acme');
DROP OWNED BY qx_qs_tenant;
DROP ROLE qx_qs_tenant;
