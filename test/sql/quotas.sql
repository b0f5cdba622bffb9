-- Monthly quotas: a tenant's sends are counted (an idempotent resend counts
-- nothing, a rolled-back send leaves no count), a NOTICE past the soft limit,
-- PT429 past the hard limit with nothing sent; bad input changes nothing.
\i test/sql/include/outcome.psql
SET client_min_messages = notice;

CREATE ROLE qx_quota_worker;
CREATE ROLE qx_quota_plain;
SELECT pgmq.create_tenant('quota_acme') > 0 AS made, pgmq.create_tenant('quota_free') > 0 AS made;
SELECT pgmq.add_tenant_role('quota_acme', 'qx_quota_worker');
SELECT pgmq.create('quota_jobs'), pgmq.create('quota_free_jobs');
SELECT pgmq.set_queue_tenant('quota_jobs', 'quota_acme'), pgmq.set_queue_tenant('quota_free_jobs', 'quota_free');

SELECT pg_temp.outcome(s) FROM (VALUES
    ($$SELECT pgmq.set_tenant_quota('quota_acme')$$),
    ($$SELECT pgmq.set_tenant_quota('quota_acme', 0, 10)$$),
    ($$SELECT pgmq.set_tenant_quota('quota_acme', 5, -1)$$),
    ($$SELECT pgmq.set_tenant_quota('quota_acme', 10, 5)$$),
    ($$SELECT pgmq.set_tenant_quota('nosuch', 5, 10)$$),
    ($$SELECT pgmq.set_tenant_quota(NULL, 5, 10)$$),
    ($$SELECT pgmq.remove_tenant_quota('nosuch')$$)
) AS t(s);
SELECT count(*) AS quotas FROM pgmq.tenant_quotas;
SET ROLE qx_quota_worker;
SELECT pg_temp.outcome($$SELECT pgmq.set_tenant_quota('quota_acme', 1000000, 1000000)$$);
RESET ROLE;

SELECT pgmq.set_tenant_quota('quota_acme', 3, 5);
SELECT pgmq.send('quota_jobs', '{"n": 1}') > 0 AS sent;
-- An idempotent resend returns the first msg_id and counts nothing.
SELECT pgmq.send('quota_jobs', '{"n": 2}', '{"x-queue-ext-idempotency-key": "once"}'::jsonb) AS first \gset
SELECT pgmq.send('quota_jobs', '{"n": 2}', '{"x-queue-ext-idempotency-key": "once"}'::jsonb) = :first AS same;
SELECT count(*) FROM pgmq.send_batch('quota_jobs', ARRAY['{"n": 3}', '{"n": 2}']::jsonb[],
    ARRAY['{}', '{"x-queue-ext-idempotency-key": "once"}']::jsonb[]);
-- A send that rolls back leaves no count.
BEGIN;
SELECT pgmq.send('quota_jobs', '{"rolled": "back"}') > 0 AS sent;
ROLLBACK;
SELECT tenant, sent, soft_limit, hard_limit, over_soft_limit, at_hard_limit FROM pgmq.tenant_quota_usage;
-- Past the soft limit: a notice, once per transaction.
BEGIN;
SELECT pgmq.send('quota_jobs', '{"n": 4}') > 0 AS sent;
COMMIT;
-- The hard limit refuses a batch that would pass it, whole.
SELECT pg_temp.outcome($$SELECT pgmq.send_batch('quota_jobs', ARRAY['{}', '{}']::jsonb[])$$);
SET ROLE qx_quota_worker;
SELECT pgmq.send('quota_jobs', '{"n": 5}') > 0 AS sent;
SELECT pg_temp.outcome($$SELECT pgmq.send('quota_jobs', '{"n": 6}')$$);
-- The tenant sees its own usage.
SELECT tenant, sent, at_hard_limit FROM pgmq.tenant_quota_usage;
RESET ROLE;
SELECT count(*) AS messages FROM pgmq.q_quota_jobs;
-- Other tenants, and tenants without a quota, are not counted.
SELECT count(*) FROM pgmq.send_batch('quota_free_jobs', ARRAY['{}', '{}', '{}', '{}', '{}', '{}']::jsonb[]);
SELECT count(*) AS usage_rows FROM pgmq.tenant_usage u JOIN pgmq.tenants t USING (tenant_id) WHERE t.slug = 'quota_free';
-- A role of no tenant reads nobody's.
SET ROLE qx_quota_plain;
SELECT pg_temp.outcome($$SELECT count(*) FROM pgmq.tenant_quota_usage$$);
RESET ROLE;
-- Raised without restart: sends pass again.
SELECT pgmq.set_tenant_quota('quota_acme', NULL, 100);
SELECT pgmq.send('quota_jobs', '{"n": 6}') > 0 AS sent;
SELECT pgmq.remove_tenant_quota('quota_acme') AS removed, pgmq.remove_tenant_quota('quota_acme') AS again;
SELECT pgmq.send('quota_jobs', '{"n": 7}') > 0 AS sent;
-- Maintenance folds past months' rows, one per backend slot, into one.
INSERT INTO pgmq.tenant_usage (tenant_id, period, slot, sent)
SELECT t.tenant_id, date '2020-01-01', s, 10 FROM pgmq.tenants t, generate_series(1, 3) s WHERE t.slug = 'quota_acme';
SELECT step, affected FROM pgmq.run_maintenance() WHERE step = 'tenant_usage';
SELECT period, slot, sent FROM pgmq.tenant_usage u JOIN pgmq.tenants t USING (tenant_id)
WHERE t.slug = 'quota_acme' AND period = '2020-01-01';

SELECT pgmq.drop_queue('quota_jobs'), pgmq.drop_queue('quota_free_jobs');
SELECT pgmq.drop_tenant('quota_acme'), pgmq.drop_tenant('quota_free');
DROP OWNED BY qx_quota_worker, qx_quota_plain;
DROP ROLE qx_quota_worker, qx_quota_plain;
