-- Throughput counters (queue_ext is preloaded here): messages sent, read,
-- acked, archived, nacked and dead-lettered per queue, counted when the
-- transaction commits, rolled up by maintenance into throughput_history;
-- a tenant sees its own queues' only.
\i test/sql/include/outcome.psql
SET client_min_messages = warning;
CREATE ROLE qx_tp_tenant;
SELECT pgmq.create_tenant('tp_acme') > 0 AS made;
SELECT pgmq.add_tenant_role('tp_acme', 'qx_tp_tenant');
SELECT pgmq.create('tp_jobs'), pgmq.create('tp_dead'), pgmq.create('tp_acme_q');
SELECT pgmq.set_queue_tenant('tp_acme_q', 'tp_acme');
SELECT max_attempts FROM pgmq.set_queue_options('tp_jobs', max_attempts => 1, dead_letter_queue => 'tp_dead');

SELECT count(*) FROM pgmq.send_batch('tp_jobs', ARRAY['{}', '{}', '{}', '{}', '{}']::jsonb[]);
-- An idempotent resend enqueues nothing and counts nothing; a rolled-back send counts nothing.
SELECT pgmq.send('tp_jobs', '{}', '{"x-queue-ext-idempotency-key": "k"}'::jsonb) > 0 AS sent;
SELECT pgmq.send('tp_jobs', '{}', '{"x-queue-ext-idempotency-key": "k"}'::jsonb) > 0 AS resent;
BEGIN;
SELECT pgmq.send('tp_jobs', '{}') > 0 AS sent;
ROLLBACK;
-- Work rolled back to a savepoint or by an exception block counts nothing;
-- released savepoints count with their transaction: three more sent.
BEGIN;
SELECT pgmq.send('tp_jobs', '{}') > 0 AS sent;
SAVEPOINT a;
SELECT pgmq.send('tp_jobs', '{}') > 0 AS sent;
ROLLBACK TO a;
SAVEPOINT b;
SAVEPOINT c;
SELECT count(*) FROM pgmq.send_batch('tp_jobs', ARRAY['{}', '{}']::jsonb[]);
RELEASE c;
RELEASE b;
DO $$ BEGIN PERFORM pgmq.send('tp_jobs', '{}'); RAISE EXCEPTION 'undone'; EXCEPTION WHEN raise_exception THEN NULL; END $$;
COMMIT;
SELECT pgmq.delete('tp_jobs', msg_id) FROM pgmq.read('tp_jobs', 30, 1);
SELECT pgmq.archive('tp_jobs', msg_id) FROM pgmq.read('tp_jobs', 30, 1);
SELECT pgmq.ack('tp_jobs', msg_id, read_ct) FROM pgmq.read('tp_jobs', 30, 1);
-- One attempt allowed: this nack dead-letters.
SELECT pgmq.nack('tp_jobs', msg_id, read_ct) FROM pgmq.read('tp_jobs', 30, 1);
SELECT count(*) AS popped FROM pgmq.pop('tp_jobs');
SELECT * FROM pgmq.queue_counters() WHERE queue_name LIKE 'tp%' ORDER BY 1;

-- Maintenance adds the growth to this minute's history, once.
SELECT step FROM pgmq.run_maintenance() WHERE step = 'throughput';
SELECT count(*) AS again FROM pgmq.run_maintenance() WHERE step = 'throughput';
SELECT pgmq.send('tp_jobs', '{}') > 0 AS sent;
SELECT pgmq.send('tp_acme_q', '{}') > 0 AS sent;
SELECT step FROM pgmq.run_maintenance() WHERE step = 'throughput';
SELECT queue_name, sum(sent) AS sent, sum(read) AS read, sum(acked) AS acked, sum(archived) AS archived,
       sum(nacked) AS nacked, sum(dead_lettered) AS dead_lettered
FROM pgmq.throughput_history WHERE queue_name LIKE 'tp%' GROUP BY queue_name ORDER BY 1;

-- Per tenant, summed over its queues.
SELECT tenant, sum(sent) AS sent FROM pgmq.tenant_throughput WHERE tenant = 'tp_acme' GROUP BY tenant;

-- The tenant sees its own queue's counters and history only.
SET ROLE qx_tp_tenant;
SELECT queue_name, sent FROM pgmq.queue_counters() WHERE queue_name LIKE 'tp%';
SELECT queue_name, sum(sent) AS sent FROM pgmq.throughput_history GROUP BY queue_name;
SELECT tenant, sum(sent) AS sent FROM pgmq.tenant_throughput GROUP BY tenant;
RESET ROLE;

SELECT pgmq.drop_queue('tp_jobs'), pgmq.drop_queue('tp_dead'), pgmq.drop_queue('tp_acme_q');
SELECT pgmq.drop_tenant('tp_acme');
DROP OWNED BY qx_tp_tenant;
DROP ROLE qx_tp_tenant;
