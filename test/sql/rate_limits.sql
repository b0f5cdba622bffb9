-- Rate limits: bad input changes nothing; a send passes whole or is refused
-- whole with PT429 and a retry-after; limits of a queue, its tenant and a key
-- hold together; deliver limits and max_in_flight make reads return fewer;
-- a change takes effect at once. Limits here refill at most once a day, so
-- nothing depends on the clock.
\i test/sql/include/outcome.psql
SET client_min_messages = warning;

-- SQLSTATE, message and detail of a failing statement.
CREATE FUNCTION pg_temp.refusal(statement text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  v_detail text;
BEGIN
  EXECUTE statement;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS v_detail = PG_EXCEPTION_DETAIL;
  RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, 'API key "[0-9a-f]+"', 'API key "<prefix>"')
         || ' / ' || regexp_replace(v_detail, '[0-9]+ seconds', 'N seconds');
END $$;

CREATE ROLE qx_rl_worker;
CREATE ROLE qx_rl_other;
SELECT pgmq.create_tenant('rl_acme') > 0 AS made, pgmq.create_tenant('rl_globex') > 0 AS made;
SELECT pgmq.add_tenant_role('rl_acme', 'qx_rl_worker');
SELECT pgmq.add_tenant_role('rl_globex', 'qx_rl_other');
SELECT pgmq.create('rl_jobs'), pgmq.create('rl_other'), pgmq.create('rl_free');
SELECT pgmq.set_queue_tenant('rl_jobs', 'rl_acme'), pgmq.set_queue_tenant('rl_other', 'rl_globex');
SELECT pgmq.create_api_key('rl_acme', 'limited', '{publish,consume}') AS limited_key \gset
SELECT pgmq.create_api_key('rl_acme', 'unlimited', '{publish,consume}') AS unlimited_key \gset
SELECT substr(:'limited_key', 4, 12) AS limited_prefix \gset

-- Bad input: a clear error each, and no limit made.
SELECT pg_temp.outcome(s) FROM (VALUES
    ($$SELECT pgmq.set_rate_limit('planet', 'rl_acme', 'send', 10)$$),
    ($$SELECT pgmq.set_rate_limit(NULL, 'rl_acme', 'send', 10)$$),
    ($$SELECT pgmq.set_rate_limit('tenant', 'rl_acme', 'delete', 10)$$),
    ($$SELECT pgmq.set_rate_limit('tenant', 'rl_acme', NULL, 10)$$),
    ($$SELECT pgmq.set_rate_limit('tenant', 'rl_acme', 'deliver', 10)$$),
    ($$SELECT pgmq.set_rate_limit('tenant', 'rl_acme', 'send', 0)$$),
    ($$SELECT pgmq.set_rate_limit('tenant', 'rl_acme', 'send', -5)$$),
    ($$SELECT pgmq.set_rate_limit('tenant', 'rl_acme', 'send', 1e10)$$),
    ($$SELECT pgmq.set_rate_limit('tenant', 'rl_acme', 'send', 'NaN')$$),
    ($$SELECT pgmq.set_rate_limit('tenant', 'rl_acme', 'send', 'Infinity')$$),
    ($$SELECT pgmq.set_rate_limit('tenant', 'rl_acme', 'send', NULL)$$),
    ($$SELECT pgmq.set_rate_limit('tenant', 'rl_acme', 'send', 10, '0 seconds')$$),
    ($$SELECT pgmq.set_rate_limit('tenant', 'rl_acme', 'send', 10, '-1 minute')$$),
    ($$SELECT pgmq.set_rate_limit('tenant', 'rl_acme', 'send', 10, '2 days')$$),
    ($$SELECT pgmq.set_rate_limit('tenant', 'rl_acme', 'send', 10, NULL)$$),
    ($$SELECT pgmq.set_rate_limit('tenant', 'rl_acme', 'send', 10, '1 mon -29 days')$$),
    ($$SELECT pgmq.set_rate_limit('tenant', 'rl_acme', 'send', 1e-320)$$),
    ($$SELECT pgmq.set_rate_limit('tenant', 'rl_acme', 'send', 0.0001)$$),
    ($$SELECT pgmq.set_rate_limit('tenant', 'rl_acme', 'send', 10, '1 second', 0)$$),
    ($$SELECT pgmq.set_rate_limit('tenant', 'rl_acme', 'send', 10, '1 second', -1)$$),
    ($$SELECT pgmq.set_rate_limit('tenant', 'rl_acme', 'send', 10, '1 second', 1e12)$$),
    ($$SELECT pgmq.set_rate_limit('tenant', 'rl_acme', 'send', 10, '1 second', NULL, 'leaky')$$),
    ($$SELECT pgmq.set_rate_limit('tenant', 'rl_acme', 'send', 10, '1 second', NULL, 'sliding_window')$$),
    ($$SELECT pgmq.set_rate_limit('tenant', 'rl_acme', 'send', 10, '1 minute', 5, 'sliding_window')$$),
    ($$SELECT pgmq.set_rate_limit('tenant', 'rl_acme', 'send', 0.5, '1 minute', NULL, 'sliding_window')$$),
    ($$SELECT pgmq.set_rate_limit('tenant', 'nosuch', 'send', 10)$$),
    ($$SELECT pgmq.set_rate_limit('tenant', NULL, 'send', 10)$$),
    ($$SELECT pgmq.set_rate_limit('api_key', 'qx_000000000000', 'send', 10)$$),
    ($$SELECT pgmq.set_rate_limit('queue', 'no_such_queue', 'send', 10)$$),
    ($$SELECT pgmq.set_rate_limit('queue', 'x''; DROP TABLE pgmq.meta; --', 'send', 10)$$),
    ($$SELECT pgmq.set_rate_limit('queue', repeat('q', 60), 'send', 10)$$),
    ($$SELECT pgmq.remove_rate_limit(NULL, 'rl_acme', 'send')$$)
) AS t(s);
SELECT count(*) AS limits FROM pgmq.rate_limits;

-- Only operators set limits.
SET ROLE qx_rl_worker;
SELECT pg_temp.outcome($$SELECT pgmq.set_rate_limit('queue', 'rl_jobs', 'send', 1000)$$);
SELECT pg_temp.outcome($$SELECT pgmq.remove_rate_limit('tenant', 'rl_acme', 'send')$$);
RESET ROLE;

-- Buckets live in shared memory here (queue_ext is preloaded), sized by the
-- server's setting (test/cluster.sh sets it).
SHOW queue_ext.rate_limit_buckets;

-- A queue's send limit: a bucket of 3 that refills once a day.
SELECT scope, queue_name, action, method, rate, per, burst
FROM pgmq.set_rate_limit('queue', 'rl_free', 'send', 1, '1 day', 3);
SELECT pgmq.send('rl_free', '{"n": 1}') > 0 AS sent;
SELECT count(*) AS sent FROM pgmq.send_batch('rl_free', ARRAY['{"n": 2}', '{"n": 3}']::jsonb[]);
SELECT pg_temp.refusal($$SELECT pgmq.send('rl_free', '{"n": 4}')$$);
-- A batch over the limit is refused whole, and one larger than the burst can never pass.
SELECT pg_temp.refusal($$SELECT pgmq.send_batch('rl_free', ARRAY['{}', '{}']::jsonb[])$$);
SELECT pg_temp.refusal($$SELECT pgmq.send_batch('rl_free', ARRAY['{}', '{}', '{}', '{}']::jsonb[])$$);
SELECT count(*) AS messages FROM pgmq.q_rl_free;
-- The limit changes in place (same id, bucket kept but never above the new burst)...
SELECT limit_id = (SELECT limit_id FROM pgmq.rate_limits WHERE queue_name = 'rl_free') AS same_limit, burst
FROM pgmq.set_rate_limit('queue', 'rl_free', 'send', 1, '1 day', 10);
SELECT pg_temp.refusal($$SELECT pgmq.send('rl_free', '{"n": 4}')$$);
-- ... and once removed, sends pass again.
SELECT pgmq.remove_rate_limit('queue', 'rl_free', 'send') AS removed,
       pgmq.remove_rate_limit('queue', 'rl_free', 'send') AS again;
SELECT pgmq.send('rl_free', '{"n": 4}') > 0 AS sent;

-- Levels together: the tenant may send 5 a day, one of its keys 2.
SELECT scope, action FROM pgmq.set_rate_limit('tenant', 'rl_acme', 'send', 5, '1 day');
SELECT scope, action, burst FROM pgmq.set_rate_limit('api_key', :'limited_prefix', 'send', 2, '1 day');
SELECT scope FROM pgmq.set_rate_limit('api_key', :'limited_key', 'read', 1000);  -- a whole key names it too
BEGIN;
SELECT pgmq.authenticate(:'limited_key');
SELECT count(*) AS sent FROM pgmq.send_batch('rl_jobs', ARRAY['{"k": 1}', '{"k": 2}']::jsonb[]);
SELECT pg_temp.refusal($$SELECT pgmq.send('rl_jobs', '{"k": 3}')$$);
-- Through the RPC schema too: PostgREST turns PT429 into HTTP 429.
SELECT pg_temp.refusal($$SELECT pgmq_public.send('rl_jobs', '{"k": 3}')$$);
COMMIT;
BEGIN;
SELECT pgmq.authenticate(:'unlimited_key');
SELECT count(*) AS sent FROM pgmq.send_batch('rl_jobs', ARRAY['{"u": 1}', '{"u": 2}', '{"u": 3}']::jsonb[]);
-- The tenant's five are spent: the key without a limit of its own is refused too.
SELECT pg_temp.refusal($$SELECT pgmq.send('rl_jobs', '{"u": 4}')$$);
COMMIT;
-- So is the tenant's role, and an operator sending to the tenant's queue.
SET ROLE qx_rl_worker;
SELECT pg_temp.outcome($$SELECT pgmq.send('rl_jobs', '{"r": 1}')$$);
RESET ROLE;
SELECT pg_temp.outcome($$SELECT pgmq.send('rl_jobs', '{"op": 1}')$$);
-- Another tenant is untouched.
SELECT pgmq.send('rl_other', '{"g": 1}') > 0 AS sent;
SELECT count(*) AS acme_messages FROM pgmq.q_rl_jobs;

-- Each tenant sees its own limits only; the other tenant's and the queue
-- limits of the operator's queues stay hidden.
SELECT scope, action FROM pgmq.set_rate_limit('queue', 'rl_other', 'read', 100);
SET ROLE qx_rl_worker;
SELECT scope, action, burst FROM pgmq.rate_limits ORDER BY scope, action;
RESET ROLE;
SET ROLE qx_rl_other;
SELECT scope, queue_name, action FROM pgmq.rate_limits ORDER BY scope, action;
RESET ROLE;

-- A deliver limit (BullMQ's limiter) makes reads return fewer, without an error.
SELECT count(*) FROM pgmq.send_batch('rl_free', ARRAY['{}', '{}', '{}', '{}', '{}']::jsonb[]);
SELECT scope, action, burst FROM pgmq.set_rate_limit('queue', 'rl_free', 'deliver', 1, '1 day', 3);
SELECT count(*) AS delivered FROM pgmq.read('rl_free', 30, 2);
SELECT count(*) AS delivered FROM pgmq.read('rl_free', 30, 10);
SELECT count(*) AS delivered FROM pgmq.read('rl_free', 30, 10);
SELECT count(*) AS popped FROM pgmq.pop('rl_free', 5);
SELECT pgmq.remove_rate_limit('queue', 'rl_free', 'deliver');
-- What a read does not deliver goes back to the bucket.
SELECT scope FROM pgmq.set_rate_limit('queue', 'rl_free', 'deliver', 1, '1 day', 2);
SELECT count(*) AS delivered FROM pgmq.read('rl_free', 30, 10, '{"no": "match"}');
SELECT count(*) AS delivered FROM pgmq.read('rl_free', 30, 10);
SELECT pgmq.remove_rate_limit('queue', 'rl_free', 'deliver');

-- A read limit refuses reads with PT429 once spent.
SELECT count(*) FROM pgmq.send_batch('rl_free', ARRAY['{}', '{}', '{}']::jsonb[]);
SELECT scope FROM pgmq.set_rate_limit('queue', 'rl_free', 'read', 1, '1 day', 2);
SELECT count(*) AS delivered FROM pgmq.read('rl_free', 30, 5);
SELECT pg_temp.refusal($$SELECT * FROM pgmq.read('rl_free', 30, 1)$$);
SELECT pg_temp.refusal($$SELECT * FROM pgmq.pop('rl_free')$$);
SELECT pg_temp.refusal($$SELECT * FROM pgmq.read_with_poll('rl_free', 30, 1, 1, 100)$$);
SELECT pgmq.remove_rate_limit('queue', 'rl_free', 'read');

-- A sliding window allows rate messages in any minute.
SELECT method, rate, per, burst FROM pgmq.set_rate_limit('queue', 'rl_free', 'send', 3, '1 minute', NULL, 'sliding_window');
SELECT count(*) AS sent FROM pgmq.send_batch('rl_free', ARRAY['{}', '{}', '{}']::jsonb[]);
SELECT pg_temp.refusal($$SELECT pgmq.send('rl_free', '{}')$$);
SELECT pgmq.remove_rate_limit('queue', 'rl_free', 'send');

-- max_in_flight caps the messages leased and not yet acked (BullMQ's concurrency).
SELECT pgmq.purge_queue('rl_free') >= 0 AS purged;
SELECT max_in_flight FROM pgmq.set_queue_options('rl_free', max_in_flight => 2);
-- A capped queue counts through a partial index on vt, not a scan of its backlog.
SELECT indexname FROM pg_indexes WHERE tablename = 'q_rl_free' ORDER BY 1;
SELECT pg_temp.outcome(s) FROM (VALUES
    ($$SELECT pgmq.set_queue_options('rl_free', max_in_flight => 0)$$),
    ($$SELECT pgmq.set_queue_options('rl_free', max_in_flight => 1000001)$$),
    ($$SELECT pgmq.set_queue_options('rl_free', message_retention => '-1 day')$$)
) AS t(s);
SELECT count(*) FROM pgmq.send_batch('rl_free', ARRAY['{"i": 1}', '{"i": 2}', '{"i": 3}', '{"i": 4}']::jsonb[]);
SELECT msg_id AS first_id FROM pgmq.read('rl_free', 30, 10) ORDER BY msg_id LIMIT 1 \gset
SELECT count(*) AS delivered FROM pgmq.read('rl_free', 30, 10);
SELECT pgmq.delete('rl_free', :first_id);
SELECT count(*) AS delivered FROM pgmq.read('rl_free', 30, 10);
-- A nacked message waiting for its retry is not in flight.
SELECT pgmq.nack('rl_free', msg_id, read_ct) FROM pgmq.q_rl_free WHERE vt > now() AND read_ct > 0 ORDER BY msg_id LIMIT 1;
SELECT count(*) AS delivered FROM pgmq.read('rl_free', 30, 10);
-- A pop takes messages for good: the cap does not apply.
SELECT count(*) FROM pgmq.send_batch('rl_free', ARRAY['{"i": 5}', '{"i": 6}', '{"i": 7}']::jsonb[]);
SELECT count(*) AS delivered FROM pgmq.read('rl_free', 30, 10);
SELECT count(*) AS popped FROM pgmq.pop('rl_free', 10);
-- Under REPEATABLE READ the count could miss other readers' leases: refused.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT pg_temp.outcome($$SELECT * FROM pgmq.read('rl_free', 30, 1)$$);
ROLLBACK;
SELECT max_in_flight FROM pgmq.reset_queue_options('rl_free', ARRAY['max_in_flight']);
SELECT indexname FROM pg_indexes WHERE tablename = 'q_rl_free' ORDER BY 1;

-- When another queue's table has the in-flight index's name, the cap is refused, clearly.
SELECT pgmq.create('rl_cap'), pgmq.create('rl_cap_in_flight_idx');
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('rl_cap', max_in_flight => 1)$$);
SELECT pgmq.drop_queue('rl_cap'), pgmq.drop_queue('rl_cap_in_flight_idx');

-- Limits go with what they limit.
SELECT (pgmq.set_rate_limit('queue', 'rl_free', 'send', 10)).limit_id > 0 AS set;
SELECT pgmq.drop_queue('rl_free');
SELECT count(*) AS queue_limits_left FROM pgmq.rate_limits WHERE queue_name = 'rl_free';
SELECT scope FROM pgmq.set_rate_limit('tenant', 'rl_globex', 'send', 10);
SELECT pgmq.drop_queue('rl_other');
SELECT pgmq.drop_tenant('rl_globex');
SELECT scope, action FROM pgmq.rate_limits ORDER BY scope, action;

-- Every change is in the audit log.
SELECT action, detail->>'scope' AS scope, detail->>'action' AS limited FROM pgmq.audit_log
WHERE action LIKE 'rate limit%' ORDER BY audit_id LIMIT 3;

SELECT pgmq.drop_queue('rl_jobs');
SELECT pgmq.drop_tenant('rl_acme');
DROP OWNED BY qx_rl_worker, qx_rl_other;
DROP ROLE qx_rl_worker, qx_rl_other;
