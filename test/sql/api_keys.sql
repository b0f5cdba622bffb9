-- API keys: made once from libsodium's CSPRNG, stored only as a keyed hash;
-- a key acts for its tenant, with its scopes and queues, for one transaction;
-- a wrong, truncated, revoked or expired key gets one and the same error.
\i test/sql/include/outcome.psql
SET client_min_messages = warning;

CREATE ROLE qx_k_acme;
SELECT pgmq.create_tenant('k_acme') > 0 AS made, pgmq.create_tenant('k_globex') > 0 AS made;
SELECT pgmq.add_tenant_role('k_acme', 'qx_k_acme');
SET ROLE qx_k_acme;
SELECT pgmq.create('k_jobs');
SELECT pgmq.create('k_other');
RESET ROLE;
SELECT pgmq.create('k_ops');

SELECT pgmq.create_api_key('k_acme', 'worker', '{publish,consume}') AS worker_key \gset
SELECT pgmq.create_api_key('k_acme', 'reader', '{consume}', ARRAY['k_jobs']) AS reader_key \gset
SELECT pgmq.create_api_key('k_globex', 'globex') AS globex_key \gset
SELECT pgmq.create_api_key('k_acme', 'short-lived', '{publish}', NULL, now() + interval '1 hour') AS expiring_key \gset

-- The key: qx_, a 12-digit prefix, 32 random bytes; no two alike. Only the
-- prefix and a 32-byte hash are kept.
SELECT :'worker_key' ~ '^qx_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$' AS well_formed,
       :'worker_key' <> :'reader_key' AS different;
SELECT name, prefix = substr(:'worker_key', 4, 12) AS prefix_of_worker, length(key_hash) AS hash_bytes
FROM pgmq.api_keys ORDER BY key_id;
SELECT count(*) AS rows_holding_the_secret
FROM pgmq.api_keys k
WHERE position(convert_to(split_part(:'worker_key', '_', 3), 'UTF8') IN k.key_hash) > 0
   OR k.name = :'worker_key' OR k.prefix = :'worker_key';
SELECT length(secret) AS server_secret_bytes FROM pgmq.api_key_secret;
SELECT tenant, name, scopes, queues, revoked_at IS NULL AS live FROM pgmq.list_api_keys() ORDER BY tenant, name;
SELECT column_name FROM information_schema.columns
WHERE table_schema = 'pgmq' AND table_name = 'api_key_list' ORDER BY ordinal_position;

-- A key acts for its tenant with its scopes, until the transaction ends.
BEGIN;
SELECT pgmq.authenticate(:'worker_key');
SELECT pgmq.current_tenant();
SELECT count(*) FROM pgmq.send('k_jobs', '{"by": "key"}');
SELECT count(*) FROM pgmq.read('k_jobs', 0, 10);
SELECT queue_name FROM pgmq.list_queues() ORDER BY 1;
SELECT pg_temp.outcome($$SELECT pgmq.purge_queue('k_jobs')$$);
SELECT pg_temp.outcome($$SELECT pgmq.create('k_new')$$);
SELECT pg_temp.outcome($$SELECT pgmq.send('k_ops', '{}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.create_tenant('by_key')$$);
COMMIT;
SELECT pgmq.current_tenant() IS NULL AS operator_again;

-- A key limited to one queue and one scope.
BEGIN;
SELECT pgmq.authenticate(:'reader_key');
SELECT count(*) FROM pgmq.read('k_jobs', 0, 10);
SELECT pg_temp.outcome($$SELECT pgmq.send('k_jobs', '{}')$$);
SELECT pg_temp.outcome($$SELECT * FROM pgmq.read('k_other', 0, 1)$$);
SELECT queue_name FROM pgmq.list_queues();
ROLLBACK;

-- Another tenant's key sees nothing of k_acme.
BEGIN;
SELECT pgmq.authenticate(:'globex_key');
SELECT pg_temp.outcome($$SELECT pgmq.send('k_jobs', '{}')$$);
SELECT count(*) FROM pgmq.list_queues();
ROLLBACK;

-- A key authenticated in a subtransaction that rolls back is forgotten.
BEGIN;
SAVEPOINT before_key;
SELECT pgmq.authenticate(:'reader_key');
ROLLBACK TO SAVEPOINT before_key;
SELECT pgmq.current_tenant() IS NULL AS forgotten;
COMMIT;

-- Wrong, truncated, padded, re-cased, malformed, empty, NULL: one error for all.
SELECT k.label, pg_temp.outcome(format('SELECT pgmq.authenticate(%L)', k.key)) FROM (VALUES
    ('last character changed', left(:'worker_key', -1) || CASE right(:'worker_key', 1) WHEN 'A' THEN 'B' ELSE 'A' END),
    ('truncated', left(:'worker_key', 30)),
    ('one character more', :'worker_key' || 'x'),
    ('upper-cased', upper(:'worker_key')),
    ('unknown prefix', 'qx_000000000000_' || repeat('A', 43)),
    ('secret of another key', left(:'worker_key', 16) || split_part(:'reader_key', '_', 3)),
    ('empty', ''),
    ('not a key', 'not a key')
) AS k(label, key);
SELECT pg_temp.outcome($$SELECT pgmq.authenticate(NULL)$$);

-- Revoked, expired, or of a suspended tenant: the same error.
SELECT pgmq.revoke_api_key(substr(:'reader_key', 4, 12));
SELECT pgmq.revoke_api_key(substr(:'reader_key', 4, 12)) AS revoked_again;
SELECT pg_temp.outcome(format('SELECT pgmq.authenticate(%L)', :'reader_key'));
UPDATE pgmq.api_keys SET expires_at = now() - interval '1 second' WHERE name = 'short-lived';
SELECT pg_temp.outcome(format('SELECT pgmq.authenticate(%L)', :'expiring_key'));
SELECT pgmq.set_tenant_status('k_globex', 'suspended');
SELECT pg_temp.outcome(format('SELECT pgmq.authenticate(%L)', :'globex_key'));
SELECT pgmq.set_tenant_status('k_globex', 'active');
SELECT pgmq.authenticate(:'globex_key');

-- Last use is recorded (committed authentications only).
SELECT name, last_used_at IS NOT NULL AS used FROM pgmq.api_keys ORDER BY key_id;

-- Bad input to create_api_key and revoke_api_key; nothing is made.
SELECT pg_temp.outcome(s) FROM (VALUES
    ($$SELECT pgmq.create_api_key('nosuch', 'x')$$),
    ($$SELECT pgmq.create_api_key(NULL, 'x')$$),
    ($$SELECT pgmq.create_api_key('k_acme', NULL)$$),
    ($$SELECT pgmq.create_api_key('k_acme', '')$$),
    ($$SELECT pgmq.create_api_key('k_acme', repeat('n', 201))$$),
    ($$SELECT pgmq.create_api_key('k_acme', 'x', NULL)$$),
    ($$SELECT pgmq.create_api_key('k_acme', 'x', '{}')$$),
    ($$SELECT pgmq.create_api_key('k_acme', 'x', '{admin}')$$),
    ($$SELECT pgmq.create_api_key('k_acme', 'x', ARRAY[NULL]::text[])$$),
    ($$SELECT pgmq.create_api_key('k_acme', 'x', '{publish}', ARRAY['bad;name'])$$),
    ($$SELECT pgmq.create_api_key('k_acme', 'x', '{publish}', ARRAY[NULL]::text[])$$),
    ($$SELECT pgmq.create_api_key('k_acme', 'x', '{publish}', NULL, now() - interval '1 day')$$),
    ($$SELECT pgmq.revoke_api_key('nope')$$),
    ($$SELECT pgmq.revoke_api_key(NULL)$$)
) AS attempts(s);
SELECT count(*) AS keys FROM pgmq.api_keys;

-- A tenant's role manages its own tenant's keys only, and never reads a hash.
SET ROLE qx_k_acme;
SELECT pgmq.create_api_key('k_acme', 'made by tenant', '{consume}') IS NOT NULL AS made;
SELECT pg_temp.outcome($$SELECT pgmq.create_api_key('k_globex', 'x')$$);
SELECT regexp_replace(pg_temp.outcome(format('SELECT pgmq.revoke_api_key(%L)', substr(:'globex_key', 4, 12))),
                      '"[0-9a-f]{12}"', '"<globex key prefix>"');
SELECT tenant, name FROM pgmq.list_api_keys() ORDER BY name;
SELECT count(*) FROM pgmq.api_keys;
SELECT pg_temp.outcome($$SELECT key_hash FROM pgmq.api_keys$$);
SELECT pg_temp.outcome($$SELECT * FROM pgmq.api_key_secret$$);
RESET ROLE;

-- A key cannot make a key with scopes it lacks; one with manage and no queue
-- list can make queues and keys for its tenant.
SELECT pgmq.create_api_key('k_acme', 'admin', '{publish,consume,manage}') AS admin_key \gset
BEGIN;
SELECT pgmq.authenticate(:'worker_key');
SELECT pg_temp.outcome($$SELECT pgmq.create_api_key('k_acme', 'escalate', '{manage}')$$);
ROLLBACK;
BEGIN;
SELECT pgmq.authenticate(:'admin_key');
SELECT pgmq.create('k_made_by_key');
SELECT pgmq.create_api_key('k_acme', 'child', '{publish}') IS NOT NULL AS made;
COMMIT;
SELECT t.slug FROM pgmq.queue_tenants q JOIN pgmq.tenants t USING (tenant_id) WHERE q.queue_name = 'k_made_by_key';
SELECT action, role_name, key_prefix = substr(:'admin_key', 4, 12) AS by_admin_key, queue_name
FROM pgmq.audit_log
WHERE (action LIKE 'api key%' OR key_prefix IS NOT NULL)
  AND tenant_id IN (SELECT tenant_id FROM pgmq.tenants WHERE slug LIKE 'k\_%')
ORDER BY audit_id;

-- Clean up.
SELECT pgmq.drop_queue(q) FROM unnest(ARRAY['k_jobs', 'k_other', 'k_ops', 'k_made_by_key']) q;
SELECT pgmq.remove_tenant_role('qx_k_acme');
DROP OWNED BY qx_k_acme;
DROP ROLE qx_k_acme;
DELETE FROM pgmq.tenants;
