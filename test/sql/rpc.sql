-- pgmq_public through a PostgREST-style gateway, emulated statement for
-- statement as PostgREST runs a request: the gateway logs in as its
-- authenticator, then per request BEGIN; SET LOCAL ROLE; request.jwt.claims
-- and request.headers with set_config(..., true); the pre-request function;
-- the RPC with named arguments; COMMIT.
\i test/sql/include/outcome.psql
SET client_min_messages = warning;

-- Supabase's roles and the gateway's login role.
CREATE ROLE anon NOLOGIN;
CREATE ROLE authenticated NOLOGIN;
CREATE ROLE service_role NOLOGIN;
CREATE ROLE qx_r_authenticator NOINHERIT;
GRANT anon, authenticated, service_role TO qx_r_authenticator;
SELECT pgmq.grant_rpc('anon'), pgmq.grant_rpc('authenticated'), pgmq.grant_rpc('service_role');
SELECT pgmq.set_gateway_role('qx_r_authenticator', '{app_metadata,tenant}');

-- Exactly Supabase Queues' functions, argument names and result types.
SELECT p.proname || '(' || pg_get_function_arguments(p.oid) || ') -> ' || pg_get_function_result(p.oid) AS signature
FROM pg_proc p WHERE p.pronamespace = 'pgmq_public'::regnamespace ORDER BY 1;

SELECT pgmq.create_tenant('r_acme') > 0 AS made, pgmq.create_tenant('r_globex') > 0 AS made;
SELECT pgmq.create('r_acme_jobs');
SELECT pgmq.create('r_globex_jobs');
SELECT pgmq.create('r_ops');
SELECT pgmq.set_queue_tenant('r_acme_jobs', 'r_acme');
SELECT pgmq.set_queue_tenant('r_globex_jobs', 'r_globex');
SELECT pgmq.create_api_key('r_acme', 'edge function', '{publish,consume}') AS acme_key \gset
SELECT pgmq.create_api_key('r_globex', 'edge function', '{consume}') AS globex_key \gset

-- No broad table rights: the RPC roles hold none on queue tables.
SELECT r, has_table_privilege(r, 'pgmq.q_r_acme_jobs', 'INSERT') AS can_insert,
       has_table_privilege(r, 'pgmq.q_r_acme_jobs', 'UPDATE') AS can_update,
       has_table_privilege(r, 'pgmq.q_r_acme_jobs', 'DELETE') AS can_delete
FROM unnest(ARRAY['anon', 'authenticated', 'service_role']) r;

SET SESSION AUTHORIZATION qx_r_authenticator;

-- A request of an Acme user: the JWT names the tenant.
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"role": "authenticated", "sub": "u1", "app_metadata": {"tenant": "r_acme"}}', true) IS NOT NULL;
SELECT set_config('request.headers', '{"user-agent": "edge"}', true) IS NOT NULL;
SELECT pgmq_public.pre_request();
SELECT pgmq.current_tenant();
SELECT * FROM pgmq_public.send(queue_name => 'r_acme_jobs', message => '{"order": 1}', sleep_seconds => 0);
SELECT * FROM pgmq_public.send_batch(queue_name => 'r_acme_jobs', messages => ARRAY['{"order": 2}', '{"order": 3}']::jsonb[], sleep_seconds => 0);
SELECT * FROM pgmq_public.send(queue_name => 'r_acme_jobs', message => '{"order": 4}');
COMMIT;

BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"role": "authenticated", "app_metadata": {"tenant": "r_acme"}}', true) IS NOT NULL;
SELECT pgmq_public.pre_request();
SELECT msg_id, read_ct, message FROM pgmq_public.read(queue_name => 'r_acme_jobs', sleep_seconds => 30, n => 2);
SELECT pgmq_public.delete(queue_name => 'r_acme_jobs', message_id => 1);
SELECT pgmq_public.archive(queue_name => 'r_acme_jobs', message_id => 2);
SELECT msg_id, message FROM pgmq_public.pop(queue_name => 'r_acme_jobs');
COMMIT;

-- The same user aiming at Globex's queue, or the operator's: as if there were none.
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"role": "authenticated", "app_metadata": {"tenant": "r_acme"}}', true) IS NOT NULL;
SELECT pgmq_public.pre_request();
SELECT pg_temp.outcome(s) FROM (VALUES
    ($$SELECT pgmq_public.send('r_globex_jobs', '{}')$$),
    ($$SELECT pgmq_public.send_batch('r_globex_jobs', ARRAY['{}']::jsonb[])$$),
    ($$SELECT * FROM pgmq_public.read('r_globex_jobs', 30, 10)$$),
    ($$SELECT * FROM pgmq_public.pop('r_globex_jobs')$$),
    ($$SELECT pgmq_public.delete('r_globex_jobs', 1)$$),
    ($$SELECT pgmq_public.archive('r_globex_jobs', 1)$$),
    ($$SELECT pgmq_public.send('r_ops', '{}')$$)
) AS attempts(s);
-- Managing needs manage, which the gateway's claims do not give.
SELECT pg_temp.outcome($$SELECT pgmq.purge_queue('r_acme_jobs')$$);
COMMIT;

-- A claim naming an unknown tenant is refused; no claim means no tenant.
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"role": "authenticated", "app_metadata": {"tenant": "nobody"}}', true) IS NOT NULL;
SELECT pg_temp.outcome($$SELECT pgmq_public.send('r_acme_jobs', '{}')$$);
COMMIT;
BEGIN;
SET LOCAL ROLE anon;
SELECT set_config('request.jwt.claims', '{"role": "anon"}', true) IS NOT NULL;
SELECT pgmq_public.pre_request();
SELECT pgmq.current_tenant() IS NULL AS no_tenant;
SELECT pg_temp.outcome($$SELECT pgmq_public.send('r_acme_jobs', '{}')$$);
SELECT pg_temp.outcome($$SELECT pgmq_public.send('r_ops', '{}')$$);
COMMIT;

-- An edge function with an API key: anon role, the key in x-api-key.
BEGIN;
SET LOCAL ROLE anon;
SELECT set_config('request.jwt.claims', '{"role": "anon"}', true) IS NOT NULL;
SELECT set_config('request.headers', json_build_object('x-api-key', :'acme_key')::text, true) IS NOT NULL;
SELECT pgmq_public.pre_request();
SELECT pgmq.current_tenant();
SELECT msg_id, message FROM pgmq_public.read('r_acme_jobs', 0, 10);
SELECT count(*) FROM pgmq_public.send('r_acme_jobs', '{"by": "key"}');
COMMIT;

-- A key wins over claims: Globex's key with claims naming Acme acts for Globex.
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"role": "authenticated", "app_metadata": {"tenant": "r_acme"}}', true) IS NOT NULL;
SELECT set_config('request.headers', json_build_object('x-api-key', :'globex_key')::text, true) IS NOT NULL;
SELECT pgmq_public.pre_request();
SELECT pgmq.current_tenant();
SELECT pg_temp.outcome($$SELECT * FROM pgmq_public.read('r_acme_jobs', 0, 1)$$);
SELECT pg_temp.outcome($$SELECT pgmq_public.send('r_globex_jobs', '{}')$$);
COMMIT;

-- A wrong, truncated or non-string key stops the request with 28000.
BEGIN;
SET LOCAL ROLE anon;
SELECT set_config('request.headers', json_build_object('x-api-key', left(:'acme_key', 40))::text, true) IS NOT NULL;
SELECT pg_temp.outcome($$SELECT pgmq_public.pre_request()$$);
SELECT set_config('request.headers', '{"x-api-key": 12345}', true) IS NOT NULL;
SELECT pg_temp.outcome($$SELECT pgmq_public.pre_request()$$);
SELECT set_config('request.headers', 'not json', true) IS NOT NULL;
SELECT pg_temp.outcome($$SELECT pgmq_public.pre_request()$$);
COMMIT;

RESET SESSION AUTHORIZATION;

-- Claims count only in the gateway's sessions: the same claims in a session
-- that did not log in as the authenticator name no tenant.
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"role": "authenticated", "app_metadata": {"tenant": "r_acme"}}', true) IS NOT NULL;
SELECT pgmq.current_tenant() IS NULL AS no_tenant;
SELECT pg_temp.outcome($$SELECT pgmq_public.send('r_acme_jobs', '{}')$$);
COMMIT;

-- A role outside the RPC grants cannot reach pgmq_public at all.
CREATE ROLE qx_r_other;
SET ROLE qx_r_other;
SELECT pg_temp.outcome($$SELECT pgmq_public.send('r_acme_jobs', '{}')$$);
RESET ROLE;

-- What Acme's queue holds now: its own messages only, nothing lost.
SELECT msg_id, message FROM pgmq.q_r_acme_jobs ORDER BY msg_id;
SELECT msg_id, message FROM pgmq.a_r_acme_jobs ORDER BY msg_id;
SELECT count(*) AS globex_messages FROM pgmq.q_r_globex_jobs;

-- Clean up.
SELECT pgmq.drop_queue(q) FROM unnest(ARRAY['r_acme_jobs', 'r_globex_jobs', 'r_ops']) q;
SELECT pgmq.remove_gateway_role('qx_r_authenticator');
DROP OWNED BY anon, authenticated, service_role, qx_r_authenticator, qx_r_other;
DROP ROLE anon, authenticated, service_role, qx_r_authenticator, qx_r_other;
DELETE FROM pgmq.tenants;
