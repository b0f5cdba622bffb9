-- Tenants: a tenant's queues are its own by every path (functions, direct SQL,
-- listings, metrics); permissions inside a tenant; operators see everything;
-- what a hostile tenant tries gets an error or no rows, and the other
-- tenant's data stays as it was.
\i test/sql/include/outcome.psql
SET client_min_messages = warning;

CREATE ROLE qx_t_acme;
CREATE ROLE qx_t_acme_reader;
CREATE ROLE qx_t_globex;
CREATE ROLE qx_t_plain;
CREATE ROLE qx_t_super SUPERUSER;

-- Tenants and their roles; bad input first.
SELECT pgmq.create_tenant('acme', 'Acme Corp') > 0 AS made, pgmq.create_tenant('globex') > 0 AS made;
SELECT pg_temp.outcome($$SELECT pgmq.create_tenant('acme')$$);
SELECT pg_temp.outcome($$SELECT pgmq.create_tenant('Bad Slug')$$);
SELECT pg_temp.outcome($$SELECT pgmq.create_tenant('')$$);
SELECT pg_temp.outcome($$SELECT pgmq.create_tenant(NULL)$$);
SELECT pg_temp.outcome($$SELECT pgmq.create_tenant(repeat('a', 64))$$);
SELECT pgmq.add_tenant_role('acme', 'qx_t_acme');
SELECT pgmq.add_tenant_role('acme', 'qx_t_acme_reader', '{consume}');
SELECT pgmq.add_tenant_role('globex', 'qx_t_globex');
SELECT pg_temp.outcome($$SELECT pgmq.add_tenant_role('nosuch', 'qx_t_plain')$$);
SELECT pg_temp.outcome($$SELECT pgmq.add_tenant_role('acme', 'qx_t_globex')$$);
SELECT pg_temp.outcome($$SELECT pgmq.add_tenant_role('acme', 'qx_t_super')$$);
SELECT pg_temp.outcome($$SELECT pgmq.add_tenant_role('acme', 'qx_t_plain', '{read}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.add_tenant_role('acme', 'no_such_role')$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_tenant_status('acme', 'gone')$$);
SELECT slug, name, status FROM pgmq.tenants ORDER BY slug;
SELECT pg_temp.outcome(s) FROM (VALUES
    ($$SELECT pgmq.set_tenant_status(NULL, 'active')$$),
    ($$SELECT pgmq.set_tenant_status('nosuch', 'active')$$),
    ($$SELECT pgmq.remove_tenant_role(NULL)$$),
    ($$SELECT pgmq.remove_tenant_role('no_such_role')$$),
    ($$SELECT pgmq.set_gateway_role('qx_t_plain', NULL)$$),
    ($$SELECT pgmq.set_gateway_role('qx_t_plain', '{}')$$),
    ($$SELECT pgmq.set_gateway_role('qx_t_plain', '{tenant_id}', '{everything}')$$),
    ($$SELECT pgmq.set_gateway_role(NULL)$$),
    ($$SELECT pgmq.set_queue_tenant('no_such_queue', 'acme')$$),
    ($$SELECT pgmq.set_queue_tenant('bad;name', 'acme')$$),
    ($$SELECT pgmq.grant_rpc(NULL)$$),
    ($$SELECT pgmq.grant_queue(NULL, 'qx_t_plain', '{publish}')$$),
    ($$SELECT pgmq.revoke_queue('no_such_queue', 'qx_t_plain')$$)
) AS attempts(s);
SELECT pgmq.remove_tenant_role('qx_t_plain') AS removed, pgmq.remove_gateway_role('qx_t_plain') AS removed;
SELECT pgmq.queue_visible(NULL) AS operator_sees, pgmq.queue_readable('no_such_queue') AS operator_reads,
       pgmq.tenant_visible(NULL) AS operator_rows, pgmq.current_tenant() IS NULL AS no_tenant;

-- An operator's queue, and one of its messages.
SELECT pgmq.create('ops_q');
SELECT pgmq.send('ops_q', '{"op": 1}');

-- Acme makes queues: they are Acme's. Its roles use them by function and by SQL.
SET ROLE qx_t_acme;
SELECT pgmq.current_tenant();
SELECT pgmq.create('acme_jobs');
SELECT pgmq.create('acme_dlq');
SELECT pgmq.create('acme_jobs');    -- again: nothing happens, as in pgmq
SELECT * FROM pgmq.send('acme_jobs', '{"secret": "acme"}');
SELECT * FROM pgmq.send_batch('acme_jobs', ARRAY['{"n": 2}', '{"n": 3}']::jsonb[]);
SELECT queue_name FROM pgmq.set_queue_options('acme_jobs', dead_letter_queue => 'acme_dlq', max_attempts => 2);
SELECT queue_name FROM pgmq.list_queues() ORDER BY 1;
SELECT queue_name, queue_length FROM pgmq.metrics_all() ORDER BY 1;
SELECT queue_length FROM pgmq.metrics('acme_jobs');
SELECT count(*) FROM pgmq.q_acme_jobs;
SELECT queue_name FROM pgmq.meta ORDER BY 1;
SELECT queue_name, max_attempts, dead_letter_queue FROM pgmq.queue_options ORDER BY 1;
SELECT queue_name, waiting FROM pgmq.job_counts ORDER BY 1;
SELECT slug FROM pgmq.tenants;
SELECT pg_temp.outcome($$SELECT count(*) FROM pgmq.q_ops_q$$);
SELECT pg_temp.outcome($$SELECT pgmq.send('ops_q', '{}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.create_tenant('mine')$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_tenant_status('globex', 'suspended')$$);
SELECT pg_temp.outcome($$SELECT pgmq.expire_idempotency_keys()$$);
-- A dead-letter queue must be one of its own; another's answers as a missing one.
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('acme_jobs', dead_letter_queue => 'ops_q')$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('acme_jobs', dead_letter_queue => 'nowhere_q')$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('acme_jobs', max_attempts => -1, dead_letter_queue => 'ops_q')$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('acme_jobs', max_attempts => -1, dead_letter_queue => 'nowhere_q')$$);
RESET ROLE;

-- Globex: every function on Acme's queue answers as for a queue that does not exist.
SET ROLE qx_t_globex;
SELECT pgmq.current_tenant();
SELECT pg_temp.outcome(s) FROM (VALUES
    ($$SELECT pgmq.send('acme_jobs', '{}')$$),
    ($$SELECT pgmq.send_batch('acme_jobs', ARRAY['{}']::jsonb[])$$),
    ($$SELECT * FROM pgmq.read('acme_jobs', 30, 10)$$),
    ($$SELECT * FROM pgmq.read_with_poll('acme_jobs', 30, 10, 1, 100)$$),
    ($$SELECT * FROM pgmq.read_grouped('acme_jobs', 30, 10)$$),
    ($$SELECT * FROM pgmq.pop('acme_jobs')$$),
    ($$SELECT * FROM pgmq.set_vt('acme_jobs', 1, 0)$$),
    ($$SELECT pgmq.delete('acme_jobs', 1)$$),
    ($$SELECT pgmq.delete('acme_jobs', ARRAY[1, 2]::bigint[])$$),
    ($$SELECT pgmq.archive('acme_jobs', 1)$$),
    ($$SELECT pgmq.ack('acme_jobs', 1, 1)$$),
    ($$SELECT pgmq.nack('acme_jobs', 1, 1)$$),
    ($$SELECT pgmq.cancel('acme_jobs', 1)$$),
    ($$SELECT pgmq.progress('acme_jobs', 1, 1, '{}')$$),
    ($$SELECT * FROM pgmq.redrive('acme_dlq')$$),
    ($$SELECT pgmq.purge_queue('acme_jobs')$$),
    ($$SELECT * FROM pgmq.metrics('acme_jobs')$$),
    ($$SELECT * FROM pgmq.find_job('acme_jobs', 1)$$),
    ($$SELECT pgmq.set_queue_options('acme_jobs', max_attempts => 9)$$),
    ($$SELECT pgmq.reset_queue_options('acme_jobs')$$),
    ($$SELECT pgmq.pause_queue('acme_jobs')$$),
    ($$SELECT pgmq.create_fifo_index('acme_jobs')$$),
    ($$SELECT pgmq.enable_notify_insert('acme_jobs')$$),
    ($$SELECT pgmq.grant_queue('acme_jobs', 'qx_t_globex', '{consume}')$$),
    ($$SELECT pgmq.acquire_queue_lock('acme_jobs')$$)
) AS attempts(s);
SELECT pgmq.drop_queue('acme_jobs');
SELECT pgmq.disable_notify_insert('acme_jobs');
-- A name another tenant (or the operator) holds is unavailable, whatever its spelling.
SELECT pg_temp.outcome($$SELECT pgmq.create('acme_jobs')$$);
SELECT pg_temp.outcome($$SELECT pgmq.create('ACME_JOBS')$$);
SELECT pg_temp.outcome($$SELECT pgmq.create('ops_q')$$);
-- Listings, metrics, the catalog and the tables show nothing of Acme: Globex
-- has no rights on Acme's tables, and given SELECT on them by hand, row-level
-- security still shows it no row.
RESET ROLE;
GRANT SELECT ON pgmq.q_acme_jobs, pgmq.a_acme_jobs, pgmq.q_acme_dlq TO qx_t_globex;
SET ROLE qx_t_globex;
SELECT count(*) FROM pgmq.list_queues();
SELECT count(*) FROM pgmq.metrics_all();
SELECT count(*) FROM pgmq.job_counts;
SELECT count(*) FROM pgmq.meta;
SELECT count(*) FROM pgmq.queue_options;
SELECT count(*) FROM pgmq.queue_config;
SELECT count(*) FROM pgmq.queue_tenants;
SELECT count(*) FROM pgmq.q_acme_jobs;
SELECT count(*) FROM pgmq.a_acme_jobs;
SELECT count(*) FROM pgmq.q_acme_dlq;
SELECT slug FROM pgmq.tenants;
SELECT count(*) FROM pgmq.audit_log WHERE queue_name LIKE 'acme%';
SELECT pg_temp.outcome($$UPDATE pgmq.q_acme_jobs SET vt = now()$$);
SELECT pg_temp.outcome($$DELETE FROM pgmq.q_acme_jobs$$);
SELECT pg_temp.outcome($$INSERT INTO pgmq.q_acme_jobs (vt, message) VALUES (now(), '{}')$$);
SELECT pg_temp.outcome($$INSERT INTO pgmq.queue_tenants VALUES ('acme_jobs', 2)$$);
SELECT pg_temp.outcome($$SELECT * FROM pgmq.api_key_secret$$);
-- Claims or settings naming Acme change nothing outside a gateway's session.
SELECT set_config('request.jwt.claims', '{"tenant_id": "acme", "role": "authenticated"}', false) IS NOT NULL;
SELECT pgmq.current_tenant();
SELECT pg_temp.outcome($$SELECT pgmq.send('acme_jobs', '{}')$$);
SELECT count(*) FROM pgmq.q_acme_jobs;
SELECT set_config('request.jwt.claims', '', false);
SELECT pg_temp.outcome($$SET queue_ext.tenant = 'acme'$$);
-- Queue names with injections are refused before any SQL is built.
SELECT pg_temp.outcome($$SELECT pgmq.send('acme_jobs''; DROP TABLE pgmq.q_acme_jobs; --', '{}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.create('x"; DROP TABLE pgmq.meta; --')$$);
RESET ROLE;

-- A permissive policy of the operator's own cannot widen what a tenant sees.
CREATE POLICY wide_open ON pgmq.q_acme_jobs AS PERMISSIVE USING (true);
SET ROLE qx_t_globex;
SELECT count(*) FROM pgmq.q_acme_jobs;
RESET ROLE;
DROP POLICY wide_open ON pgmq.q_acme_jobs;

-- Acme's data is as it was; operators see everything.
SELECT msg_id, message FROM pgmq.q_acme_jobs ORDER BY msg_id;
SELECT queue_name FROM pgmq.list_queues() ORDER BY 1;
SELECT queue_name FROM pgmq.metrics_all() ORDER BY 1;
SELECT t.slug, q.queue_name FROM pgmq.queue_tenants q JOIN pgmq.tenants t USING (tenant_id) ORDER BY 2;
SET ROLE qx_t_super;
SELECT count(*) FROM pgmq.q_acme_jobs;
RESET ROLE;

-- Permissions inside a tenant: the reader may consume, nothing more, until granted.
SET ROLE qx_t_acme_reader;
SELECT pg_temp.outcome($$SELECT pgmq.send('acme_jobs', '{}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.purge_queue('acme_jobs')$$);
SELECT pg_temp.outcome($$SELECT pgmq.create('acme_more')$$);
SELECT pg_temp.outcome($$SELECT pgmq.grant_queue('acme_jobs', 'qx_t_acme_reader', '{publish}')$$);
SELECT msg_id FROM pgmq.read('acme_jobs', 0, 1);
SELECT count(*) FROM pgmq.q_acme_jobs;
RESET ROLE;
SET ROLE qx_t_acme;
SELECT pgmq.grant_queue('acme_jobs', 'qx_t_acme_reader', '{publish}');
SELECT pg_temp.outcome($$SELECT pgmq.grant_queue('acme_jobs', 'qx_t_acme_reader', '{read}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.grant_queue('acme_jobs', 'qx_t_acme_reader', NULL)$$);
RESET ROLE;
SET ROLE qx_t_acme_reader;
SELECT count(*) FROM pgmq.send('acme_jobs', '{"by": "reader"}');
SELECT pg_temp.outcome($$SELECT pgmq.send('acme_dlq', '{}')$$);
RESET ROLE;
SET ROLE qx_t_acme;
SELECT pgmq.revoke_queue('acme_jobs', 'qx_t_acme_reader', '{publish}');
RESET ROLE;
SET ROLE qx_t_acme_reader;
SELECT pg_temp.outcome($$SELECT pgmq.send('acme_jobs', '{}')$$);
RESET ROLE;

-- A suspended tenant can do nothing and see nothing until it is active again.
SELECT pgmq.set_tenant_status('acme', 'suspended');
SET ROLE qx_t_acme;
SELECT pg_temp.outcome($$SELECT pgmq.send('acme_jobs', '{}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.create('acme_new')$$);
SELECT count(*) FROM pgmq.q_acme_jobs;
SELECT count(*) FROM pgmq.list_queues();
RESET ROLE;
SELECT pgmq.set_tenant_status('acme', 'active');
SET ROLE qx_t_acme;
SELECT count(*) FROM pgmq.q_acme_jobs;
RESET ROLE;

-- A role without tenant uses operator queues by grant or, as pgmq lets it,
-- by table privileges; it may not make queues (operators do), even with
-- CREATE on schema pgmq.
SET ROLE qx_t_plain;
SELECT pgmq.current_tenant();
SELECT pg_temp.outcome($$SELECT pgmq.send('ops_q', '{}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.send('acme_jobs', '{}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.create('plain_q')$$);
SELECT count(*) FROM pgmq.list_queues();
RESET ROLE;
SELECT pgmq.grant_queue('ops_q', 'qx_t_plain', '{publish}');
GRANT SELECT, UPDATE ON pgmq.q_ops_q TO qx_t_plain;
SET ROLE qx_t_plain;
SELECT count(*) FROM pgmq.send('ops_q', '{"plain": true}');
SELECT count(*) FROM pgmq.read('ops_q', 0, 1);
SELECT queue_name FROM pgmq.list_queues() ORDER BY 1;
SELECT pg_temp.outcome($$SELECT pgmq.create('plain_q')$$);
-- ... but creating a queue it can already use is nothing, as in pgmq.
SELECT pg_temp.outcome($$SELECT pgmq.create('ops_q')$$);
-- Operators' audit records and grants are not its to see.
SELECT pg_temp.outcome($$SELECT count(*) FROM pgmq.audit_log$$);
RESET ROLE;
REVOKE SELECT, UPDATE ON pgmq.q_ops_q FROM qx_t_plain;
SELECT tableowner FROM pg_tables WHERE schemaname = 'pgmq' AND tablename IN ('q_ops_q', 'q_acme_jobs') ORDER BY tablename;

-- Publish alone sends but does not read: no rows by SQL, no find_job; metrics
-- (counts only) are allowed.
CREATE ROLE qx_t_acme_writer;
SELECT pgmq.add_tenant_role('acme', 'qx_t_acme_writer', '{publish}');
SET ROLE qx_t_acme_writer;
SELECT count(*) FROM pgmq.send('acme_jobs', '{"by": "writer"}');
SELECT count(*) FROM pgmq.q_acme_jobs;
SELECT pg_temp.outcome($$SELECT * FROM pgmq.find_job('acme_jobs', 1)$$);
SELECT queue_length > 0 AS counted FROM pgmq.metrics('acme_jobs');
RESET ROLE;

-- A role that bypasses row-level security (Supabase's service_role) gets no
-- table rights from queue_ext, so it reads no tenant's rows either.
CREATE ROLE qx_t_bypass BYPASSRLS;
SET ROLE qx_t_bypass;
SELECT pg_temp.outcome($$SELECT count(*) FROM pgmq.q_acme_jobs$$);
SELECT pg_temp.outcome($$SELECT count(*) FROM pgmq.meta$$);
RESET ROLE;

-- A queue table that carries a trigger of its own is refused: queue_ext
-- would run it as the extension owner.
CREATE FUNCTION public.qx_t_noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER planted BEFORE INSERT ON pgmq.q_ops_q FOR EACH ROW EXECUTE FUNCTION public.qx_t_noop();
SELECT pg_temp.outcome($$SELECT pgmq.send('ops_q', '{}')$$);
DROP TRIGGER planted ON pgmq.q_ops_q;
DROP FUNCTION public.qx_t_noop();
SELECT count(*) FROM pgmq.send('ops_q', '{"after": "trigger dropped"}');

-- A table made in advance under a queue's name is refused, not adopted.
CREATE TABLE pgmq.q_squat (msg_id bigint);
ALTER TABLE pgmq.q_squat OWNER TO qx_t_plain;
SELECT pg_temp.outcome($$SELECT pgmq.create('squat')$$);
DROP TABLE pgmq.q_squat;

-- A tenant shadows functions and operators in public, ahead of pg_catalog on
-- its search_path: queue_ext's code, running as the owner, never calls them.
GRANT CREATE ON SCHEMA public TO qx_t_globex;
SET ROLE qx_t_globex;
CREATE FUNCTION public.trap_eq(bigint, bigint) RETURNS boolean LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'trapped = as %', current_user; END $$;
CREATE OPERATOR public.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = public.trap_eq);
CREATE FUNCTION public.trap_text_eq(text, text) RETURNS boolean LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'trapped text = as %', current_user; END $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.trap_text_eq);
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'trapped now() as %', current_user; END $$;
CREATE FUNCTION public.lower(text) RETURNS text LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'trapped lower() as %', current_user; END $$;
CREATE FUNCTION public.format_table_name(text, text) RETURNS text LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'trapped format_table_name() as %', current_user; END $$;
SET search_path = public, pg_catalog;
-- The traps are live for the tenant's own SQL:
SELECT pg_temp.outcome($$SELECT 1::bigint = 2::bigint$$), pg_temp.outcome($$SELECT now()$$);
SELECT pgmq.create('globex_jobs');
SELECT * FROM pgmq.send('globex_jobs', '{"g": 1}', '{"x-queue-ext-idempotency-key": "k1"}');
SELECT msg_id FROM pgmq.read('globex_jobs', 30, 1);
SELECT pgmq.delete('globex_jobs', 1::bigint);
SELECT queue_name FROM pgmq.set_queue_options('globex_jobs', max_attempts => 3, priority_aging => '1 minute');
SELECT queue_name FROM pgmq.list_queues();
SELECT count(*) FROM pgmq.job_counts;
SELECT pgmq.purge_queue('globex_jobs');
SELECT pgmq.drop_queue('globex_jobs');
RESET search_path;
RESET ROLE;

-- The audit log: who did what, for which tenant; append-only, even for an operator.
SELECT action, role_name, t.slug, queue_name, detail
FROM pgmq.audit_log a LEFT JOIN pgmq.tenants t USING (tenant_id)
WHERE role_name LIKE 'qx_t_%' ORDER BY audit_id;
SET ROLE qx_t_acme;
SELECT DISTINCT t.slug FROM pgmq.audit_log a LEFT JOIN pgmq.tenants t USING (tenant_id);
RESET ROLE;
SELECT pg_temp.outcome($$UPDATE pgmq.audit_log SET action = 'nothing'$$);
SELECT pg_temp.outcome($$DELETE FROM pgmq.audit_log$$);
SELECT pg_temp.outcome($$TRUNCATE pgmq.audit_log$$);

-- Clean up.
SELECT pgmq.drop_queue(q) FROM unnest(ARRAY['acme_jobs', 'acme_dlq', 'ops_q']) q;
SELECT pgmq.remove_tenant_role(r::regrole)
FROM unnest(ARRAY['qx_t_acme', 'qx_t_acme_reader', 'qx_t_acme_writer', 'qx_t_globex']) r;
REVOKE CREATE ON SCHEMA public FROM qx_t_globex;
DROP OWNED BY qx_t_acme, qx_t_acme_reader, qx_t_acme_writer, qx_t_globex, qx_t_plain, qx_t_super, qx_t_bypass;
DROP ROLE qx_t_acme, qx_t_acme_reader, qx_t_acme_writer, qx_t_globex, qx_t_plain, qx_t_super, qx_t_bypass;
DELETE FROM pgmq.queue_grants;
-- drop_tenant: not while it owns a queue; then its roles lose their table rights.
SELECT pgmq.create_tenant('doomed') > 0 AS made;
CREATE ROLE qx_t_doomed;
SELECT pgmq.add_tenant_role('doomed', 'qx_t_doomed');
SET ROLE qx_t_doomed;
SELECT pgmq.create('doomed_q');
RESET ROLE;
SELECT pg_temp.outcome($$SELECT pgmq.drop_tenant('doomed')$$);
SELECT pg_temp.outcome($$SELECT pgmq.drop_tenant('nosuch')$$);
SELECT pg_temp.outcome($$SELECT pgmq.drop_tenant(NULL)$$);
SELECT has_table_privilege('qx_t_doomed', 'pgmq.meta', 'SELECT') AS reads_catalog;
SELECT pgmq.drop_queue('doomed_q');
SELECT pgmq.drop_tenant('doomed');
SELECT has_table_privilege('qx_t_doomed', 'pgmq.meta', 'SELECT') AS reads_catalog,
       (SELECT count(*) FROM pgmq.tenant_roles) AS mappings;
SET ROLE qx_t_doomed;
SELECT pgmq.current_tenant() IS NULL AS no_tenant;
RESET ROLE;
DROP ROLE qx_t_doomed;
SELECT pgmq.drop_tenant(slug) FROM pgmq.tenants;
SELECT count(*) AS tenants_left FROM pgmq.tenants;
