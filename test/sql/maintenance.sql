-- Maintenance: one pass of pgmq.run_maintenance() dead-letters exhausted
-- messages, deletes messages past message_retention and archived rows past
-- archive_retention (in batches, skipping locked rows), expires idempotency
-- keys and runs the steps registered in pgmq.maintenance_steps;
-- pgmq.maintain() repeats it committing after each pass. Operators only.
-- (The throughput roll-up, also a step, has a test of its own: throughput.)
\i test/sql/include/outcome.psql
SET client_min_messages = warning;
CREATE ROLE qx_maint_plain;

SELECT pgmq.create('mt_jobs'), pgmq.create('mt_dead'), pgmq.create('mt_plain');
SELECT queue_name, max_attempts, dead_letter_queue, archive_retention, message_retention
FROM pgmq.set_queue_options('mt_jobs', max_attempts => 2, dead_letter_queue => 'mt_dead',
                            archive_retention => '1 day', message_retention => '7 days');
SELECT max_attempts FROM pgmq.set_queue_options('mt_plain', max_attempts => 1);

-- mt_jobs: 1 delivered twice and lapsed (exhausted), 2 delivered once and
-- lapsed, 3 with its own max_attempts of 1 delivered once, 4 delivered twice
-- but still leased, 5 enqueued 8 days ago, 6 fresh.
SELECT count(*) FROM pgmq.send_batch('mt_jobs', ARRAY['{"n": 1}', '{"n": 2}', '{"n": 3}', '{"n": 4}', '{"n": 5}', '{"n": 6}']::jsonb[],
    ARRAY['{}', '{}', '{"x-queue-ext-max-attempts": 1}', '{}', '{}', '{}']::jsonb[]);
UPDATE pgmq.q_mt_jobs SET read_ct = 2, vt = now() - interval '1 minute' WHERE message->>'n' = '1';
UPDATE pgmq.q_mt_jobs SET read_ct = 1, vt = now() - interval '1 minute' WHERE message->>'n' IN ('2', '3');
UPDATE pgmq.q_mt_jobs SET read_ct = 2, vt = now() + interval '1 hour' WHERE message->>'n' = '4';
UPDATE pgmq.q_mt_jobs SET enqueued_at = now() - interval '8 days' WHERE message->>'n' = '5';
-- Archived rows: one 2 days old, one fresh.
SELECT pgmq.archive('mt_jobs', msg_id) FROM pgmq.send('mt_jobs', '{"archived": "old"}') AS msg_id;
SELECT pgmq.archive('mt_jobs', msg_id) FROM pgmq.send('mt_jobs', '{"archived": "new"}') AS msg_id;
UPDATE pgmq.a_mt_jobs SET archived_at = now() - interval '2 days' WHERE message->>'archived' = 'old';
-- mt_plain has no dead-letter queue: its exhausted message goes to its archive.
SELECT pgmq.send('mt_plain', '{"p": 1}') > 0 AS sent;
UPDATE pgmq.q_mt_plain SET read_ct = 1, vt = now() - interval '1 second';
-- An expired idempotency key.
SELECT pgmq.send('mt_plain', '{"p": 2}', '{"x-queue-ext-idempotency-key": "k"}'::jsonb) > 0 AS sent;
UPDATE pgmq.idempotency_keys SET expires_at = now() - interval '1 second' WHERE queue_name = 'mt_plain';

-- Bad input and callers that are not operators change nothing.
SELECT pg_temp.outcome(s) FROM (VALUES
    ($$SELECT * FROM pgmq.run_maintenance(0)$$),
    ($$SELECT * FROM pgmq.run_maintenance(-1)$$),
    ($$SELECT * FROM pgmq.run_maintenance(NULL)$$),
    ($$SELECT * FROM pgmq.run_maintenance(10000000)$$)
) AS t(s);
SET ROLE qx_maint_plain;
SELECT pg_temp.outcome($$SELECT * FROM pgmq.run_maintenance()$$);
SELECT pg_temp.outcome($$CALL pgmq.maintain()$$);
SELECT pg_temp.outcome($$SELECT pgmq.schedule_maintenance()$$);
SELECT pg_temp.outcome($$INSERT INTO pgmq.maintenance_steps VALUES ('evil', 'pg_catalog.now()'::regprocedure)$$);
RESET ROLE;
SELECT count(*) AS jobs FROM pgmq.q_mt_jobs;

SELECT * FROM pgmq.run_maintenance() WHERE step <> 'throughput' ORDER BY step, queue_name;
SELECT message->>'n' AS n, read_ct FROM pgmq.q_mt_jobs ORDER BY msg_id;
SELECT message->>'n' AS n, headers->'x-queue-ext-dead-letter'->>'reason' AS reason,
       headers->'x-queue-ext-dead-letter'->>'attempts' AS attempts FROM pgmq.q_mt_dead ORDER BY msg_id;
SELECT message->>'archived' AS archived FROM pgmq.a_mt_jobs ORDER BY msg_id;
SELECT message->>'p' AS p, headers->'x-queue-ext-outcome'->>'state' AS state FROM pgmq.a_mt_plain;
SELECT count(*) AS keys FROM pgmq.idempotency_keys WHERE queue_name = 'mt_plain';
-- Nothing left to do: an empty report.
SELECT count(*) AS steps FROM pgmq.run_maintenance() WHERE step <> 'throughput';

-- Batches: at most batch_size rows per queue and step each pass; maintain()
-- passes until the work is done.
SELECT count(*) FROM pgmq.send_batch('mt_jobs', ARRAY(SELECT '{"bulk": 1}'::jsonb FROM generate_series(1, 25)));
UPDATE pgmq.q_mt_jobs SET enqueued_at = now() - interval '30 days' WHERE message ? 'bulk';
SELECT step, affected FROM pgmq.run_maintenance(10) WHERE step <> 'throughput';
CALL pgmq.maintain(batch_size => 10);
SELECT count(*) AS bulk_left FROM pgmq.q_mt_jobs WHERE message ? 'bulk';
SELECT pg_temp.outcome($$CALL pgmq.maintain(max_passes => 0)$$);
-- Inside a transaction block the procedure cannot commit: run_maintenance() is the way there.
BEGIN;
SELECT pg_temp.outcome($$CALL pgmq.maintain()$$);
ROLLBACK;

-- The hook: a registered step runs after queue_ext's own, with the batch
-- size, as the owner with the search path pinned to pg_catalog (even a
-- step's own SET search_path gives way to it), so a step qualifies its names.
CREATE TABLE maint_hook_calls (batch_size integer);
CREATE FUNCTION maint_hook(batch_size integer) RETURNS bigint LANGUAGE sql
    AS $$ INSERT INTO public.maint_hook_calls VALUES (batch_size); SELECT 3::bigint $$;
INSERT INTO pgmq.maintenance_steps (step, function) VALUES ('test_rollup', 'maint_hook(integer)');
SELECT * FROM pgmq.run_maintenance(50) WHERE step <> 'throughput';
SELECT * FROM maint_hook_calls;
SELECT pg_temp.outcome($$INSERT INTO pgmq.maintenance_steps VALUES ('Bad Name', 'maint_hook(integer)')$$);
-- A step is a function(integer) returning bigint, owned by the owner or a
-- superuser (it runs as the owner: another owner could replace its body).
CREATE FUNCTION maint_wrong(text) RETURNS bigint LANGUAGE sql AS $$ SELECT 0::bigint $$;
CREATE ROLE qx_maint_owner;
CREATE FUNCTION maint_foreign(batch_size integer) RETURNS bigint LANGUAGE sql AS $$ SELECT 0::bigint $$;
ALTER FUNCTION maint_foreign(integer) OWNER TO qx_maint_owner;
SELECT pg_temp.outcome($$INSERT INTO pgmq.maintenance_steps VALUES ('wrong', 'maint_wrong(text)')$$);
SELECT pg_temp.outcome($$INSERT INTO pgmq.maintenance_steps VALUES ('foreign', 'maint_foreign(integer)')$$);
SELECT pg_temp.outcome($$INSERT INTO pgmq.maintenance_steps VALUES ('ghost', '123456789'::regprocedure)$$);
-- A step that fails is reported, and the rest of the pass goes on.
CREATE FUNCTION maint_broken(batch_size integer) RETURNS bigint LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'broken step'; END $$;
INSERT INTO pgmq.maintenance_steps (step, function, position) VALUES ('broken', 'maint_broken(integer)', 1);
-- A step whose function was dropped, or given to another owner, since it
-- was registered is checked again before it runs.
CREATE FUNCTION maint_gone(batch_size integer) RETURNS bigint LANGUAGE sql AS $$ SELECT 0::bigint $$;
INSERT INTO pgmq.maintenance_steps (step, function, position) VALUES ('gone', 'maint_gone(integer)', 2);
DROP FUNCTION maint_gone(integer);
SELECT * FROM pgmq.run_maintenance(50) WHERE step <> 'throughput';
DELETE FROM pgmq.maintenance_steps;
DROP FUNCTION maint_wrong(text), maint_foreign(integer), maint_broken(integer);
DROP ROLE qx_maint_owner;

-- So does a queue whose maintenance fails: here its dead-letter queue went
-- to a tenant, and dead letters never cross tenants.
SELECT pgmq.create('mt_orphan'), pgmq.create('mt_orphan_dlq');
SELECT max_attempts FROM pgmq.set_queue_options('mt_orphan', max_attempts => 1, dead_letter_queue => 'mt_orphan_dlq',
                                                message_retention => '1 day');
SELECT pgmq.create_tenant('mt_tenant') > 0 AS made;
SELECT pgmq.set_queue_tenant('mt_orphan_dlq', 'mt_tenant');
SELECT count(*) FROM pgmq.send_batch('mt_orphan', ARRAY['{"exhausted": true}', '{"expired": true}']::jsonb[]);
UPDATE pgmq.q_mt_orphan SET read_ct = 1, vt = now() - interval '1 second' WHERE message ? 'exhausted';
UPDATE pgmq.q_mt_orphan SET enqueued_at = now() - interval '2 days' WHERE message ? 'expired';
SELECT count(*) FROM pgmq.send_batch('mt_jobs', ARRAY(SELECT '{"bulk": 2}'::jsonb FROM generate_series(1, 3)));
UPDATE pgmq.q_mt_jobs SET enqueued_at = now() - interval '30 days' WHERE message ? 'bulk';
SELECT * FROM pgmq.run_maintenance() WHERE step <> 'throughput' ORDER BY queue_name;
-- The dead letter could not move; the expired message went all the same.
SELECT message FROM pgmq.q_mt_orphan;
-- Named queues only, and without the general steps; an unknown queue is 42P01.
SELECT * FROM pgmq.run_maintenance(10, ARRAY['mt_jobs'], false);
SELECT pg_temp.outcome($$SELECT * FROM pgmq.run_maintenance(10, ARRAY['no_such_queue'])$$);
SELECT pg_temp.outcome($$SELECT * FROM pgmq.run_maintenance(10, NULL, NULL)$$);
SELECT pgmq.drop_queue('mt_orphan'), pgmq.drop_queue('mt_orphan_dlq');
SELECT pgmq.drop_tenant('mt_tenant');

-- Scheduling: what the installed pg_cron does not accept is refused with its
-- reason; pg_cron missing in this database (it lives in cron.database_name) is a clear error.
SELECT pg_temp.outcome($$SELECT pgmq.schedule_maintenance(NULL)$$);
SELECT pg_temp.outcome($$SELECT pgmq.schedule_maintenance('')$$);
SELECT pg_temp.outcome($$SELECT pgmq.schedule_maintenance()$$);
SELECT pg_temp.outcome($$SELECT pgmq.unschedule_maintenance()$$);

SELECT pgmq.drop_queue('mt_jobs'), pgmq.drop_queue('mt_dead'), pgmq.drop_queue('mt_plain');
DROP ROLE qx_maint_plain;
