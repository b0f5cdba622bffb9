-- queue_ext 0.3.0 -> 0.4.0: tenants.
-- Tenants own queues; roles, gateway JWT claims and API keys act for a tenant;
-- permissions per queue; row-level security on the catalog and on every queue
-- and archive table; an append-only audit log; the pgmq_public RPC schema.
-- queue_ext's functions now run as the extension owner and check the caller
-- in C (src/tenancy.c); see README, "Tenants".

\echo Use "ALTER EXTENSION queue_ext UPDATE TO '0.4.0'" to load this file. \quit

------------------------------------------------------------------------------
-- The security catalog
------------------------------------------------------------------------------

CREATE TABLE pgmq.tenants (
    tenant_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug       text NOT NULL UNIQUE
               CONSTRAINT tenant_slug_format CHECK (slug ~ '^[a-z][a-z0-9_-]{0,62}$'),
    name       text NOT NULL DEFAULT '',
    status     text NOT NULL DEFAULT 'active'
               CONSTRAINT tenant_status_known CHECK (status IN ('active', 'suspended')),
    created_at timestamp with time zone NOT NULL DEFAULT now()
);
COMMENT ON TABLE pgmq.tenants IS
  'Tenants: each owns queues that no other tenant can see or use.';

CREATE TABLE pgmq.queue_tenants (
    queue_name text PRIMARY KEY,
    tenant_id  bigint NOT NULL REFERENCES pgmq.tenants
);
COMMENT ON TABLE pgmq.queue_tenants IS
  'The tenant of each tenant''s queue; a queue without a row is an operator''s queue.';

CREATE TABLE pgmq.tenant_roles (
    role      regrole PRIMARY KEY,
    tenant_id bigint NOT NULL REFERENCES pgmq.tenants ON DELETE CASCADE
);
COMMENT ON TABLE pgmq.tenant_roles IS
  'Database roles that act for a tenant (pgmq.add_tenant_role).';

CREATE TABLE pgmq.queue_grants (
    tenant_id   bigint REFERENCES pgmq.tenants ON DELETE CASCADE,
    queue_name  text,
    grantee     regrole NOT NULL,
    permissions text[] NOT NULL
                CONSTRAINT grant_permissions_known
                CHECK (permissions <@ '{publish,consume,manage}' AND cardinality(permissions) > 0),
    CONSTRAINT grant_names_something CHECK (tenant_id IS NOT NULL OR queue_name IS NOT NULL),
    CONSTRAINT queue_grants_unique UNIQUE NULLS NOT DISTINCT (tenant_id, queue_name, grantee)
);
COMMENT ON TABLE pgmq.queue_grants IS
  'Permissions of roles on one queue, or (queue_name NULL) on every queue of a tenant.';

CREATE TABLE pgmq.gateway_roles (
    role         regrole PRIMARY KEY,
    tenant_claim text[] NOT NULL DEFAULT '{tenant_id}',
    permissions  text[] NOT NULL DEFAULT '{publish,consume}'
                 CONSTRAINT gateway_permissions_known CHECK (permissions <@ '{publish,consume,manage}')
);
COMMENT ON TABLE pgmq.gateway_roles IS
  'Login roles of PostgREST-style gateways: only their sessions'' request.jwt.claims name a tenant, found at tenant_claim (a JSON path, the tenant''s slug or id); such callers get permissions on their tenant''s queues.';

CREATE TABLE pgmq.api_key_secret (
    singleton boolean PRIMARY KEY DEFAULT true CONSTRAINT one_secret CHECK (singleton),
    secret    bytea NOT NULL CONSTRAINT secret_length CHECK (length(secret) = 32)
);
COMMENT ON TABLE pgmq.api_key_secret IS
  'The server secret API key hashes are keyed with; made with the first key; readable by the extension owner only.';

CREATE TABLE pgmq.api_keys (
    key_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    bigint NOT NULL REFERENCES pgmq.tenants ON DELETE CASCADE,
    name         text NOT NULL,
    prefix       text NOT NULL UNIQUE,
    key_hash     bytea NOT NULL,
    scopes       text[] NOT NULL
                 CONSTRAINT key_scopes_known CHECK (scopes <@ '{publish,consume,manage}'),
    queues       text[],
    created_at   timestamp with time zone NOT NULL DEFAULT now(),
    expires_at   timestamp with time zone,
    revoked_at   timestamp with time zone,
    last_used_at timestamp with time zone
);
COMMENT ON TABLE pgmq.api_keys IS
  'API keys: a prefix to find them and a keyed BLAKE2b hash; the key itself is shown once, by create_api_key.';

CREATE TABLE pgmq.audit_log (
    audit_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamp with time zone NOT NULL DEFAULT clock_timestamp(),
    action       text NOT NULL,
    role_name    text NOT NULL,
    session_role text NOT NULL,
    key_prefix   text,
    tenant_id    bigint,
    queue_name   text,
    detail       jsonb
);
CREATE INDEX audit_log_tenant_idx ON pgmq.audit_log (tenant_id, at);
COMMENT ON TABLE pgmq.audit_log IS
  'Append-only record of management actions: when, who (role, login role, API key prefix), which tenant and queue, and the arguments.';

-- pg_dump keeps their rows, and their identity sequences' positions.
SELECT pg_catalog.pg_extension_config_dump('pgmq.tenants', '');
SELECT pg_catalog.pg_extension_config_dump('pgmq.queue_tenants', '');
SELECT pg_catalog.pg_extension_config_dump('pgmq.tenant_roles', '');
SELECT pg_catalog.pg_extension_config_dump('pgmq.queue_grants', '');
SELECT pg_catalog.pg_extension_config_dump('pgmq.gateway_roles', '');
SELECT pg_catalog.pg_extension_config_dump('pgmq.api_key_secret', '');
SELECT pg_catalog.pg_extension_config_dump('pgmq.api_keys', '');
SELECT pg_catalog.pg_extension_config_dump('pgmq.audit_log', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('pgmq.tenants', 'tenant_id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('pgmq.api_keys', 'key_id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('pgmq.audit_log', 'audit_id')::regclass, '');

------------------------------------------------------------------------------
-- Cache invalidation, the append-only audit log
------------------------------------------------------------------------------

CREATE FUNCTION pgmq._security_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'queue_ext_security_changed' LANGUAGE C;
COMMENT ON FUNCTION pgmq._security_changed() IS
  'Statement trigger on the security catalog: every backend reads it again.';

CREATE TRIGGER security_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pgmq.tenants
    FOR EACH STATEMENT EXECUTE FUNCTION pgmq._security_changed();
CREATE TRIGGER security_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pgmq.queue_tenants
    FOR EACH STATEMENT EXECUTE FUNCTION pgmq._security_changed();
CREATE TRIGGER security_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pgmq.tenant_roles
    FOR EACH STATEMENT EXECUTE FUNCTION pgmq._security_changed();
CREATE TRIGGER security_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pgmq.queue_grants
    FOR EACH STATEMENT EXECUTE FUNCTION pgmq._security_changed();
CREATE TRIGGER security_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pgmq.gateway_roles
    FOR EACH STATEMENT EXECUTE FUNCTION pgmq._security_changed();
CREATE TRIGGER security_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pgmq.api_key_secret
    FOR EACH STATEMENT EXECUTE FUNCTION pgmq._security_changed();
-- Not on last_used_at, which authenticate() writes.
CREATE TRIGGER security_changed
    AFTER INSERT OR DELETE OR TRUNCATE
       OR UPDATE OF tenant_id, prefix, key_hash, scopes, queues, expires_at, revoked_at
    ON pgmq.api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION pgmq._security_changed();

CREATE FUNCTION pgmq._audit_log_refuse_change() RETURNS trigger
    AS 'MODULE_PATHNAME', 'queue_ext_audit_log_refuse_change' LANGUAGE C;
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON pgmq.audit_log
    FOR EACH ROW EXECUTE FUNCTION pgmq._audit_log_refuse_change();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON pgmq.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION pgmq._audit_log_refuse_change();

------------------------------------------------------------------------------
-- Who the caller is, row-level security tests
------------------------------------------------------------------------------

CREATE FUNCTION pgmq.queue_visible(queue_name text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'queue_ext_queue_visible' LANGUAGE C STABLE;
COMMENT ON FUNCTION pgmq.queue_visible(text) IS
  'True when the calling role may see the queue: an operator, or a caller of the queue''s tenant (none for an operator''s queue) with a permission on it. The row-level security test of queue rows.';

CREATE FUNCTION pgmq.queue_readable(queue_name text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'queue_ext_queue_readable' LANGUAGE C STABLE;
COMMENT ON FUNCTION pgmq.queue_readable(text) IS
  'True when the calling role may read the queue''s messages: an operator, or a caller of the queue''s tenant (none for an operator''s queue) with consume or manage on it. The row-level security test of queue and archive rows.';

CREATE FUNCTION pgmq.tenant_visible(tenant_id bigint) RETURNS boolean
    AS 'MODULE_PATHNAME', 'queue_ext_tenant_visible' LANGUAGE C STABLE;
COMMENT ON FUNCTION pgmq.tenant_visible(bigint) IS
  'True when the calling role may see rows of this tenant: an operator, or a caller of that tenant. Rows of no tenant (NULL) are the operators''.';

CREATE FUNCTION pgmq._caller_may(queue_name text, permission text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'queue_ext_caller_may' LANGUAGE C STABLE;
COMMENT ON FUNCTION pgmq._caller_may(text, text) IS
  'True when the caller holds the permission on the queue.';

CREATE FUNCTION pgmq.current_tenant() RETURNS text
    AS 'MODULE_PATHNAME', 'queue_ext_current_tenant' LANGUAGE C STABLE;
COMMENT ON FUNCTION pgmq.current_tenant() IS
  'The slug of the tenant the caller acts for, NULL for none.';

CREATE FUNCTION pgmq._protect_queue_tables(queue_name text) RETURNS void
    AS 'MODULE_PATHNAME', 'queue_ext_protect_queue_tables' LANGUAGE C;
REVOKE ALL ON FUNCTION pgmq._protect_queue_tables(text) FROM PUBLIC;

------------------------------------------------------------------------------
-- API keys
------------------------------------------------------------------------------

CREATE FUNCTION pgmq.authenticate(key text) RETURNS text
    AS 'MODULE_PATHNAME', 'queue_ext_authenticate' LANGUAGE C;
COMMENT ON FUNCTION pgmq.authenticate(text) IS
  'Verifies an API key and acts for its tenant, with its scopes, for the rest of the transaction; returns the tenant''s slug. A wrong, revoked or expired key: SQLSTATE 28000.';

CREATE FUNCTION pgmq.create_api_key(tenant text, name text,
                                    scopes text[] DEFAULT '{publish,consume}',
                                    queues text[] DEFAULT NULL,
                                    expires_at timestamp with time zone DEFAULT NULL)
    RETURNS text
    AS 'MODULE_PATHNAME', 'queue_ext_create_api_key' LANGUAGE C;
COMMENT ON FUNCTION pgmq.create_api_key(text, text, text[], text[], timestamp with time zone) IS
  'Makes an API key of the tenant and returns it; it is shown this once. queues NULL: every queue of the tenant.';

CREATE FUNCTION pgmq.revoke_api_key(prefix text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'queue_ext_revoke_api_key' LANGUAGE C;
COMMENT ON FUNCTION pgmq.revoke_api_key(text) IS
  'Revokes the API key with this prefix; false when it was revoked already.';

CREATE VIEW pgmq.api_key_list WITH (security_invoker = true) AS
SELECT k.prefix, t.slug AS tenant, k.name, k.scopes, k.queues,
       k.created_at, k.expires_at, k.revoked_at, k.last_used_at
FROM pgmq.api_keys k
JOIN pgmq.tenants t ON t.tenant_id = k.tenant_id;
COMMENT ON VIEW pgmq.api_key_list IS 'API keys the caller may see, without their hashes.';

CREATE FUNCTION pgmq._list_api_keys()
    RETURNS TABLE (prefix text, tenant text, name text, scopes text[], queues text[],
                   created_at timestamp with time zone, expires_at timestamp with time zone,
                   revoked_at timestamp with time zone, last_used_at timestamp with time zone)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT k.prefix, t.slug, k.name, k.scopes, k.queues,
           k.created_at, k.expires_at, k.revoked_at, k.last_used_at
    FROM pgmq.api_keys k
    JOIN pgmq.tenants t ON t.tenant_id = k.tenant_id
    WHERE pgmq.tenant_visible(k.tenant_id)
    ORDER BY t.slug, k.created_at, k.prefix;
$$;

------------------------------------------------------------------------------
-- Tenant administration (operators), permissions (managers of a queue)
------------------------------------------------------------------------------

CREATE FUNCTION pgmq._check_permissions(permissions text[]) RETURNS void
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF permissions IS NOT NULL AND (array_position(permissions, NULL) IS NOT NULL
                                    OR NOT permissions <@ '{publish,consume,manage}') THEN
        RAISE EXCEPTION 'unknown permission in %', permissions USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Permissions are publish, consume and manage.';
    END IF;
END;
$$;
COMMENT ON FUNCTION pgmq._check_permissions(text[]) IS
  'Raises unless every element is publish, consume or manage.';

CREATE FUNCTION pgmq._create_tenant(slug text, name text DEFAULT NULL) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    IF slug IS NULL OR slug !~ '^[a-z][a-z0-9_-]{0,62}$' THEN
        RAISE EXCEPTION 'invalid tenant slug: %', coalesce(quote_literal(slug), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A slug is 1 to 63 lowercase letters, digits, "_" or "-", starting with a letter.';
    END IF;
    IF EXISTS (SELECT 1 FROM pgmq.tenants t WHERE t.slug = _create_tenant.slug) THEN
        RAISE EXCEPTION 'tenant "%" already exists', slug USING ERRCODE = 'duplicate_object';
    END IF;
    INSERT INTO pgmq.tenants (slug, name) VALUES (slug, COALESCE(name, slug)) RETURNING tenant_id INTO v_id;
    RETURN v_id;
END;
$$;

CREATE FUNCTION pgmq._tenant_id(slug text) RETURNS bigint
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    IF slug IS NULL THEN
        RAISE EXCEPTION 'tenant must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT t.tenant_id INTO v_id FROM pgmq.tenants t WHERE t.slug = _tenant_id.slug;
    IF v_id IS NULL THEN
        RAISE EXCEPTION 'tenant "%" does not exist', slug USING ERRCODE = 'undefined_object';
    END IF;
    RETURN v_id;
END;
$$;

CREATE FUNCTION pgmq._set_tenant_status(slug text, status text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF status IS NULL OR status NOT IN ('active', 'suspended') THEN
        RAISE EXCEPTION 'tenant status must be active or suspended' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE pgmq.tenants t SET status = _set_tenant_status.status
    WHERE t.tenant_id = pgmq._tenant_id(_set_tenant_status.slug);
END;
$$;

-- Table rights of a tenant's roles: SELECT on the catalog tables and on the
-- tenant's queue and archive tables; row-level security shows them their
-- tenant's rows only.
CREATE FUNCTION pgmq._tenant_reads(role_name regrole, tenant bigint, grant_them boolean) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_queue text;
    v_verb text := CASE WHEN grant_them THEN 'GRANT SELECT ON %s TO %s' ELSE 'REVOKE SELECT ON %s FROM %s' END;
BEGIN
    EXECUTE format(v_verb, 'pgmq.meta, pgmq.queue_config, pgmq.tenants, pgmq.queue_tenants, pgmq.queue_grants, '
                           'pgmq.audit_log, pgmq.breaker_state, pgmq.notify_insert_throttle, '
                           'pgmq.idempotency_keys', role_name);
    EXECUTE format(CASE WHEN grant_them
                        THEN 'GRANT SELECT (key_id, tenant_id, name, prefix, scopes, queues, created_at, expires_at, revoked_at, last_used_at) ON pgmq.api_keys TO %s'
                        ELSE 'REVOKE SELECT (key_id, tenant_id, name, prefix, scopes, queues, created_at, expires_at, revoked_at, last_used_at) ON pgmq.api_keys FROM %s' END,
                   role_name);
    FOR v_queue IN SELECT t.queue_name FROM pgmq.queue_tenants t WHERE t.tenant_id = tenant LOOP
        IF to_regclass(format('pgmq.%I', pgmq.format_table_name(v_queue, 'q'))) IS NOT NULL THEN
            EXECUTE format(v_verb, format('pgmq.%I, pgmq.%I', pgmq.format_table_name(v_queue, 'q'),
                                          pgmq.format_table_name(v_queue, 'a')), role_name);
        END IF;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION pgmq._tenant_reads(regrole, bigint, boolean) IS
  'Grants (or revokes) a tenant role''s SELECT on the catalog and on the tenant''s queue tables.';

-- SELECT on a queue's tables for the roles of its tenant; pg_monitor's
-- (pgmq's default privileges give it SELECT on every table) is taken, and,
-- when the queue changes tenant, other tenants' roles lose theirs.
CREATE FUNCTION pgmq._grant_queue_reads(queue_name text, moved boolean DEFAULT false) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tables text := format('pgmq.%I, pgmq.%I', pgmq.format_table_name(queue_name::text, 'q'::text),
                            pgmq.format_table_name(queue_name::text, 'a'::text));
    v_role regrole;
BEGIN
    IF EXISTS (SELECT 1 FROM pgmq.queue_tenants q WHERE lower(q.queue_name) = lower(_grant_queue_reads.queue_name)) THEN
        EXECUTE format('REVOKE SELECT ON %s FROM pg_monitor', v_tables);
    END IF;
    FOR v_role IN
        SELECT r.role FROM pgmq.tenant_roles r
        LEFT JOIN pgmq.queue_tenants q ON q.tenant_id = r.tenant_id
             AND lower(q.queue_name) = lower(_grant_queue_reads.queue_name)
        WHERE q.queue_name IS NULL AND moved
    LOOP
        EXECUTE format('REVOKE SELECT ON %s FROM %s', v_tables, v_role);
    END LOOP;
    FOR v_role IN
        SELECT r.role FROM pgmq.tenant_roles r
        JOIN pgmq.queue_tenants q ON q.tenant_id = r.tenant_id
        WHERE lower(q.queue_name) = lower(_grant_queue_reads.queue_name)
    LOOP
        EXECUTE format('GRANT SELECT ON %s TO %s', v_tables, v_role);
    END LOOP;
END;
$$;
COMMENT ON FUNCTION pgmq._grant_queue_reads(text, boolean) IS
  'Gives SELECT on a queue''s tables to the roles of its tenant, and takes it from other tenants'' roles.';

-- A tenant goes only when it owns no queue; its roles lose what they were
-- given for it, and its keys and grants go with it. Its audit rows stay.
CREATE FUNCTION pgmq._drop_tenant(slug text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tenant bigint := pgmq._tenant_id(slug);
    v_role regrole;
BEGIN
    IF EXISTS (SELECT 1 FROM pgmq.queue_tenants q WHERE q.tenant_id = v_tenant) THEN
        RAISE EXCEPTION 'tenant "%" still owns queues', slug
            USING ERRCODE = 'dependent_objects_still_exist',
                  HINT = 'Drop its queues, or give them to another tenant with pgmq.set_queue_tenant().';
    END IF;
    FOR v_role IN SELECT r.role FROM pgmq.tenant_roles r WHERE r.tenant_id = v_tenant LOOP
        PERFORM pgmq._remove_tenant_role(v_role);
    END LOOP;
    DELETE FROM pgmq.tenants t WHERE t.tenant_id = v_tenant;
END;
$$;
COMMENT ON FUNCTION pgmq._drop_tenant(text) IS
  'The body of pgmq.drop_tenant, which runs it as the extension owner once it has checked the caller; not for PUBLIC.';

CREATE FUNCTION pgmq._add_tenant_role(tenant text, role_name regrole,
                                      permissions text[] DEFAULT '{publish,consume,manage}')
    RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tenant bigint := pgmq._tenant_id(tenant);
BEGIN
    IF role_name IS NULL THEN
        RAISE EXCEPTION 'role_name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM pgmq._check_permissions(permissions);
    IF EXISTS (SELECT 1 FROM pgmq.tenant_roles r WHERE r.role = role_name) THEN
        RAISE EXCEPTION 'role "%" already acts for a tenant', role_name USING ERRCODE = 'duplicate_object',
            HINT = 'Remove it first with pgmq.remove_tenant_role().';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles r WHERE r.oid = role_name AND (r.rolsuper OR r.rolbypassrls)) THEN
        RAISE EXCEPTION 'role "%" cannot act for a tenant: it is a superuser or bypasses row-level security', role_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO pgmq.tenant_roles (role, tenant_id) VALUES (role_name, v_tenant);
    PERFORM pgmq._tenant_reads(role_name, v_tenant, true);
    IF permissions IS NOT NULL AND cardinality(permissions) > 0 THEN
        INSERT INTO pgmq.queue_grants (tenant_id, queue_name, grantee, permissions)
        VALUES (v_tenant, NULL, role_name, permissions)
        ON CONFLICT ON CONSTRAINT queue_grants_unique DO UPDATE SET permissions = EXCLUDED.permissions;
    END IF;
END;
$$;

CREATE FUNCTION pgmq._remove_tenant_role(role_name regrole) RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tenant bigint;
BEGIN
    DELETE FROM pgmq.tenant_roles r WHERE r.role = role_name RETURNING r.tenant_id INTO v_tenant;
    DELETE FROM pgmq.queue_grants g WHERE g.tenant_id = v_tenant AND g.grantee = role_name;
    IF v_tenant IS NOT NULL THEN
        PERFORM pgmq._tenant_reads(role_name, v_tenant, false);
    END IF;
    RETURN v_tenant IS NOT NULL;
END;
$$;

CREATE FUNCTION pgmq._set_gateway_role(role_name regrole, tenant_claim text[] DEFAULT '{tenant_id}',
                                       permissions text[] DEFAULT '{publish,consume}')
    RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF role_name IS NULL OR tenant_claim IS NULL OR cardinality(tenant_claim) = 0 OR permissions IS NULL THEN
        RAISE EXCEPTION 'role_name, tenant_claim and permissions must be given' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM pgmq._check_permissions(permissions);
    INSERT INTO pgmq.gateway_roles (role, tenant_claim, permissions)
    VALUES (role_name, tenant_claim, permissions)
    ON CONFLICT (role) DO UPDATE SET tenant_claim = EXCLUDED.tenant_claim, permissions = EXCLUDED.permissions;
END;
$$;

CREATE FUNCTION pgmq._remove_gateway_role(role_name regrole) RETURNS boolean
    LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$
    WITH gone AS (DELETE FROM pgmq.gateway_roles g WHERE g.role = role_name RETURNING 1)
    SELECT EXISTS (SELECT 1 FROM gone);
$$;

CREATE FUNCTION pgmq._set_queue_tenant(queue_name text, tenant text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name text := pgmq.registered_queue_name(queue_name);
BEGIN
    DELETE FROM pgmq.queue_tenants t WHERE t.queue_name = v_name;
    -- Grants of the old tenant's roles do not follow the queue.
    DELETE FROM pgmq.queue_grants g WHERE g.queue_name = v_name;
    IF tenant IS NOT NULL THEN
        INSERT INTO pgmq.queue_tenants (queue_name, tenant_id) VALUES (v_name, pgmq._tenant_id(tenant));
    END IF;
    PERFORM pgmq._grant_queue_reads(v_name, true);
    PERFORM pgmq._protect_queue_tables(v_name);
END;
$$;

CREATE FUNCTION pgmq._grant_queue(queue_name text, role_name regrole, permissions text[]) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name text := pgmq.registered_queue_name(queue_name);
BEGIN
    IF role_name IS NULL OR permissions IS NULL OR cardinality(permissions) = 0 THEN
        RAISE EXCEPTION 'role_name and permissions must be given' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM pgmq._check_permissions(permissions);
    INSERT INTO pgmq.queue_grants AS g (tenant_id, queue_name, grantee, permissions)
    VALUES ((SELECT t.tenant_id FROM pgmq.queue_tenants t WHERE t.queue_name = v_name),
            v_name, role_name, permissions)
    ON CONFLICT ON CONSTRAINT queue_grants_unique DO UPDATE
        SET permissions = ARRAY(SELECT DISTINCT p FROM unnest(g.permissions || EXCLUDED.permissions) p ORDER BY p);
END;
$$;

CREATE FUNCTION pgmq._revoke_queue(queue_name text, role_name regrole, permissions text[] DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name text := pgmq.registered_queue_name(queue_name);
BEGIN
    IF permissions IS NOT NULL THEN
        PERFORM pgmq._check_permissions(permissions);
    END IF;
    UPDATE pgmq.queue_grants g
    SET permissions = ARRAY(SELECT p FROM unnest(g.permissions) p WHERE p <> ALL (_revoke_queue.permissions) ORDER BY p)
    WHERE g.queue_name = v_name AND g.grantee = role_name AND _revoke_queue.permissions IS NOT NULL;
    DELETE FROM pgmq.queue_grants g
    WHERE g.queue_name = v_name AND g.grantee = role_name
      AND (_revoke_queue.permissions IS NULL OR cardinality(g.permissions) = 0);
END;
$$;
-- The UPDATE above may leave an empty array for a moment; the DELETE removes it.
ALTER TABLE pgmq.queue_grants DROP CONSTRAINT grant_permissions_known;
ALTER TABLE pgmq.queue_grants ADD CONSTRAINT grant_permissions_known
    CHECK (permissions <@ '{publish,consume,manage}');

------------------------------------------------------------------------------
-- SQL functions run as the owner: pgmq.<name> is a C entry that checks the
-- caller (src/run_as_owner.c) and calls pgmq._<name>, which PUBLIC cannot.
------------------------------------------------------------------------------

ALTER FUNCTION pgmq.set_queue_options(text, integer, double precision, double precision, text, text,
    integer, interval, boolean, integer, boolean, interval, interval, double precision, interval,
    integer, interval) RENAME TO _set_queue_options;
ALTER FUNCTION pgmq.reset_queue_options(text, text[]) RENAME TO _reset_queue_options;
ALTER FUNCTION pgmq.pause_queue(text) RENAME TO _pause_queue;
ALTER FUNCTION pgmq.resume_queue(text) RENAME TO _resume_queue;
ALTER FUNCTION pgmq.find_job(text, bigint) RENAME TO _find_job;
ALTER FUNCTION pgmq.drop_queue(text, boolean) RENAME TO _drop_queue;
ALTER FUNCTION pgmq.acquire_queue_lock(text) RENAME TO _acquire_queue_lock;
ALTER FUNCTION pgmq.disable_notify_insert(text) RENAME TO _disable_notify_insert;
ALTER FUNCTION pgmq.enable_notify_insert(text, integer) RENAME TO _enable_notify_insert;
ALTER FUNCTION pgmq.update_notify_insert(text, integer) RENAME TO _update_notify_insert;
ALTER FUNCTION pgmq.create_fifo_index(text) RENAME TO _create_fifo_index;
ALTER FUNCTION pgmq.expire_idempotency_keys(integer) RENAME TO _expire_idempotency_keys;
-- PL/pgSQL bodies qualify their parameters with the function's name
-- (set_queue_options.queue_name); they are made again under the new name.
DO $$
DECLARE
    v_fn record;
BEGIN
    FOR v_fn IN
        SELECT p.oid, substr(p.proname, 2) AS old_name FROM pg_proc p
        WHERE p.pronamespace = 'pgmq'::regnamespace
          AND p.proname IN ('_set_queue_options', '_reset_queue_options', '_pause_queue', '_resume_queue',
                            '_find_job', '_drop_queue', '_acquire_queue_lock', '_disable_notify_insert',
                            '_enable_notify_insert', '_update_notify_insert', '_create_fifo_index',
                            '_expire_idempotency_keys')
    LOOP
        EXECUTE regexp_replace(pg_get_functiondef(v_fn.oid), '\m' || v_fn.old_name || '\.',
                               '_' || v_fn.old_name || '.', 'g');
    END LOOP;
END;
$$;
-- A dead-letter queue the caller may not see is one that does not exist, by
-- the same error and before any other check on it.
DO $$
DECLARE
    v_def text := pg_get_functiondef('pgmq._set_queue_options(text, integer, double precision, double precision, text, text, integer, interval, boolean, integer, boolean, interval, interval, double precision, interval, integer, interval)'::regprocedure);
    v_from text := 'WHERE lower(m.queue_name) = lower(_set_queue_options.dead_letter_queue);';
BEGIN
    IF position(v_from IN v_def) = 0 THEN
        RAISE EXCEPTION 'pgmq._set_queue_options has no dead-letter queue lookup to restrict';
    END IF;
    EXECUTE replace(v_def, v_from, 'WHERE lower(m.queue_name) = lower(_set_queue_options.dead_letter_queue)'
                                   ' AND pgmq.queue_visible(m.queue_name::text);');
END;
$$;

-- The views that call these are made again below.
DROP VIEW pgmq.job_counts;
DROP FUNCTION pgmq.job_state_counts();
DROP FUNCTION pgmq.list_queues();
DROP FUNCTION pgmq.list_notify_insert_throttles();
DROP FUNCTION pgmq.create_fifo_indexes_all();

-- Those acting on every queue see only the queues the caller may.
CREATE FUNCTION pgmq._list_queues() RETURNS SETOF pgmq.queue_record
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT queue_name, is_partitioned, is_unlogged, created_at
    FROM pgmq.meta
    WHERE pgmq.queue_visible(queue_name::text)
    ORDER BY created_at, queue_name;
$$;

CREATE FUNCTION pgmq._list_notify_insert_throttles()
    RETURNS TABLE (queue_name text, throttle_interval_ms integer,
                   last_notified_at timestamp with time zone)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.queue_name, t.throttle_interval_ms, t.last_notified_at
    FROM pgmq.notify_insert_throttle t
    WHERE pgmq.queue_visible(t.queue_name::text)
    ORDER BY t.queue_name;
$$;

CREATE FUNCTION pgmq._create_fifo_indexes_all() RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_queue record;
BEGIN
    FOR v_queue IN SELECT m.queue_name FROM pgmq.meta m
                   WHERE pgmq._caller_may(m.queue_name::text, 'manage'::text) ORDER BY m.queue_name LOOP
        PERFORM pgmq._create_fifo_index_if_not_exists(v_queue.queue_name);
    END LOOP;
END;
$$;

CREATE FUNCTION pgmq._job_state_counts()
    RETURNS TABLE (queue_name text, waiting bigint, delayed bigint, in_flight bigint, retrying bigint,
                   completed bigint, cancelled bigint, dead bigint, archived bigint)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_queue record;
    v_dead_elsewhere bigint;
BEGIN
    FOR v_queue IN
        SELECT m.queue_name AS name, c.dead_letter_queue AS dlq
        FROM pgmq.meta m LEFT JOIN pgmq.queue_config c ON c.queue_name = m.queue_name
        WHERE pgmq.queue_visible(m.queue_name::text)
        ORDER BY m.queue_name
    LOOP
        -- Skip a catalog row whose tables were dropped by hand, as metrics_all does.
        CONTINUE WHEN to_regclass(format('pgmq.%I', pgmq.format_table_name(v_queue.name, 'q'))) IS NULL
                   OR to_regclass(format('pgmq.%I', pgmq.format_table_name(v_queue.name, 'a'))) IS NULL;
        v_dead_elsewhere := 0;
        IF v_queue.dlq IS NOT NULL THEN
            EXECUTE format('SELECT count(*) FROM pgmq.%I d'
                           ' WHERE d.headers -> ''x-queue-ext-dead-letter'' ->> ''queue'' = $1',
                           pgmq.format_table_name(v_queue.dlq, 'q'))
                INTO v_dead_elsewhere USING v_queue.name;
        END IF;
        RETURN QUERY EXECUTE format(
            'SELECT $1::text, q.waiting, q.delayed, q.in_flight, q.retrying,'
            ' a.completed, a.cancelled, a.dead + $2, a.archived'
            ' FROM (SELECT count(*) FILTER (WHERE s = ''waiting'') AS waiting,'
            '              count(*) FILTER (WHERE s = ''delayed'') AS delayed,'
            '              count(*) FILTER (WHERE s = ''in_flight'') AS in_flight,'
            '              count(*) FILTER (WHERE s = ''retrying'') AS retrying'
            '       FROM (SELECT pgmq.message_state(m.vt, m.read_ct, m.headers, pg_catalog.now()) AS s'
            '             FROM pgmq.%I m) states) q,'
            '      (SELECT count(*) FILTER (WHERE s = ''completed'') AS completed,'
            '              count(*) FILTER (WHERE s = ''cancelled'') AS cancelled,'
            '              count(*) FILTER (WHERE s = ''dead'') AS dead,'
            '              count(*) FILTER (WHERE s IS NULL) AS archived'
            '       FROM (SELECT x.headers -> ''x-queue-ext-outcome'' ->> ''state'' AS s'
            '             FROM pgmq.%I x) outcomes) a',
            pgmq.format_table_name(v_queue.name, 'q'), pgmq.format_table_name(v_queue.name, 'a'))
            USING v_queue.name, v_dead_elsewhere;
    END LOOP;
END;
$$;

DO $$
DECLARE
    v_fn regprocedure;
BEGIN
    FOR v_fn IN
        SELECT p.oid::regprocedure FROM pg_proc p
        WHERE p.pronamespace = 'pgmq'::regnamespace AND p.proname LIKE '\_%'
          AND p.proname NOT IN ('_security_changed', '_audit_log_refuse_change', '_caller_may')
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', v_fn);
    END LOOP;
END;
$$;

COMMENT ON FUNCTION pgmq._audit_log_refuse_change() IS
  'Trigger keeping pgmq.audit_log append-only.';
COMMENT ON FUNCTION pgmq._protect_queue_tables(text) IS
  'Puts the row-level security policies on a queue''s tables (for queues made before 0.4.0).';
COMMENT ON FUNCTION pgmq._tenant_id(text) IS
  'The id of the tenant with this slug; an error when there is none.';
CREATE FUNCTION pgmq.set_queue_options(
    queue_name        text,
    max_attempts      integer          DEFAULT NULL,
    backoff_base      double precision DEFAULT NULL,
    backoff_cap       double precision DEFAULT NULL,
    backoff_jitter    text             DEFAULT NULL,
    dead_letter_queue text             DEFAULT NULL,
    default_vt        integer          DEFAULT NULL,
    archive_retention interval         DEFAULT NULL,
    keep_history      boolean          DEFAULT NULL,
    max_message_size  integer          DEFAULT NULL,
    paused            boolean          DEFAULT NULL,
    idempotency_window interval        DEFAULT NULL,
    priority_aging    interval         DEFAULT NULL,
    breaker_threshold double precision DEFAULT NULL,
    breaker_window    interval         DEFAULT NULL,
    breaker_min_outcomes integer       DEFAULT NULL,
    breaker_cooldown  interval         DEFAULT NULL)
RETURNS pgmq.queue_options
    AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.set_queue_options(text, integer, double precision, double precision, text, text,
    integer, interval, boolean, integer, boolean, interval, interval, double precision, interval,
    integer, interval) IS
  'Sets the named job options of a queue; options left NULL keep their value. Returns all of them. Needs manage.';
CREATE FUNCTION pgmq.reset_queue_options(queue_name text, options text[] DEFAULT NULL)
    RETURNS pgmq.queue_options AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.reset_queue_options(text, text[]) IS
  'Returns the named job options (all when NULL) of a queue to their defaults. Needs manage.';
CREATE FUNCTION pgmq.pause_queue(queue_name text) RETURNS void
    AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.pause_queue(text) IS 'Stops deliveries of the queue; sends go on. Needs manage.';
CREATE FUNCTION pgmq.resume_queue(queue_name text) RETURNS void
    AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.resume_queue(text) IS 'Resumes deliveries of a paused queue. Needs manage.';
CREATE FUNCTION pgmq.find_job(queue_name text, msg_id bigint)
    RETURNS TABLE (state text, found_in text, found_msg_id bigint, read_ct integer,
                   enqueued_at timestamp with time zone, last_read_at timestamp with time zone,
                   vt timestamp with time zone, finished_at timestamp with time zone,
                   message jsonb, headers jsonb, last_error text, progress jsonb, result jsonb)
    AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C STABLE;
COMMENT ON FUNCTION pgmq.find_job(text, bigint) IS
  'Where a message is and in which state: the queue, its archive or its dead-letter queue.';
CREATE FUNCTION pgmq.drop_queue(queue_name text, partitioned boolean) RETURNS boolean
    AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.drop_queue(text, boolean) IS
  'pgmq''s deprecated form: drops the queue; partitioned is ignored.';
CREATE FUNCTION pgmq.acquire_queue_lock(queue_name text) RETURNS void
    AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.acquire_queue_lock(text) IS
  'Takes the transaction-scoped advisory lock that create and drop take for the queue.';
CREATE FUNCTION pgmq.disable_notify_insert(queue_name text) RETURNS void
    AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.disable_notify_insert(text) IS 'Stops notifying on insert into the queue.';
CREATE FUNCTION pgmq.enable_notify_insert(queue_name text, throttle_interval_ms integer DEFAULT 250)
    RETURNS void AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.enable_notify_insert(text, integer) IS
  'Notifies pgmq.q_<name>.INSERT listeners when messages are sent, at most once per throttle interval.';
CREATE FUNCTION pgmq.update_notify_insert(queue_name text, throttle_interval_ms integer)
    RETURNS void AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.update_notify_insert(text, integer) IS
  'Changes the throttle interval of a queue that already notifies on insert.';
CREATE FUNCTION pgmq.create_fifo_index(queue_name text) RETURNS void
    AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.create_fifo_index(text) IS
  'Indexes the queue''s messages by FIFO group and msg_id, so grouped reads find a group''s next messages by index.';
CREATE FUNCTION pgmq.expire_idempotency_keys(batch_size integer DEFAULT 10000) RETURNS bigint
    AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.expire_idempotency_keys(integer) IS
  'Deletes up to batch_size idempotency keys past their window; returns how many. Operators only.';
CREATE FUNCTION pgmq.list_queues() RETURNS SETOF pgmq.queue_record
    AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C STABLE;
COMMENT ON FUNCTION pgmq.list_queues() IS 'Every queue the caller may see, oldest first.';
CREATE FUNCTION pgmq.list_notify_insert_throttles()
    RETURNS TABLE (queue_name text, throttle_interval_ms integer,
                   last_notified_at timestamp with time zone)
    AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C STABLE;
COMMENT ON FUNCTION pgmq.list_notify_insert_throttles() IS
  'Queues the caller may see that notify on insert, with their throttles.';
CREATE FUNCTION pgmq.create_fifo_indexes_all() RETURNS void
    AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.create_fifo_indexes_all() IS
  'Runs create_fifo_index for every queue the caller manages.';
CREATE FUNCTION pgmq.job_state_counts()
    RETURNS TABLE (queue_name text, waiting bigint, delayed bigint, in_flight bigint, retrying bigint,
                   completed bigint, cancelled bigint, dead bigint, archived bigint)
    AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C STABLE;
COMMENT ON FUNCTION pgmq.job_state_counts() IS
  'Messages per state per queue the caller may see; scans every queue and archive table (see pgmq.job_counts).';
CREATE VIEW pgmq.job_counts AS SELECT * FROM pgmq.job_state_counts();
COMMENT ON VIEW pgmq.job_counts IS
  'Per queue: waiting, delayed, in_flight, retrying, completed, cancelled, dead (in its archive and its dead-letter queue), archived.';

CREATE FUNCTION pgmq.list_api_keys()
    RETURNS TABLE (prefix text, tenant text, name text, scopes text[], queues text[],
                   created_at timestamp with time zone, expires_at timestamp with time zone,
                   revoked_at timestamp with time zone, last_used_at timestamp with time zone)
    AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C STABLE;
COMMENT ON FUNCTION pgmq.list_api_keys() IS
  'API keys the caller may see (its tenant''s; an operator''s: all), never their secrets.';
CREATE FUNCTION pgmq.create_tenant(slug text, name text DEFAULT NULL) RETURNS bigint
    AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.create_tenant(text, text) IS 'Makes a tenant; returns its id. Operators only.';
CREATE FUNCTION pgmq.drop_tenant(slug text) RETURNS void
    AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.drop_tenant(text) IS
  'Removes a tenant that owns no queue, with its role mappings (and their table rights), keys and grants. Operators only.';
CREATE FUNCTION pgmq.set_tenant_status(slug text, status text) RETURNS void
    AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.set_tenant_status(text, text) IS
  'Suspends (status suspended) or reactivates (active) a tenant. Operators only.';
CREATE FUNCTION pgmq.add_tenant_role(tenant text, role_name regrole,
                                     permissions text[] DEFAULT '{publish,consume,manage}')
    RETURNS void AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.add_tenant_role(text, regrole, text[]) IS
  'Makes a role act for the tenant, with these permissions on all of its queues. Operators only.';
CREATE FUNCTION pgmq.remove_tenant_role(role_name regrole) RETURNS boolean
    AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.remove_tenant_role(regrole) IS 'The role no longer acts for a tenant. Operators only.';
CREATE FUNCTION pgmq.set_gateway_role(role_name regrole, tenant_claim text[] DEFAULT '{tenant_id}',
                                      permissions text[] DEFAULT '{publish,consume}')
    RETURNS void AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.set_gateway_role(regrole, text[], text[]) IS
  'Declares a gateway''s login role (PostgREST''s authenticator): its sessions'' JWT claims name the tenant at tenant_claim, and get permissions on its queues. Operators only.';
CREATE FUNCTION pgmq.remove_gateway_role(role_name regrole) RETURNS boolean
    AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.remove_gateway_role(regrole) IS 'Forgets a gateway login role. Operators only.';
CREATE FUNCTION pgmq.set_queue_tenant(queue_name text, tenant text) RETURNS void
    AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.set_queue_tenant(text, text) IS
  'Gives an existing queue to a tenant (NULL: to the operator); its grants are dropped. Operators only.';
CREATE FUNCTION pgmq.grant_queue(queue_name text, role_name regrole, permissions text[]) RETURNS void
    AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.grant_queue(text, regrole, text[]) IS
  'Grants publish, consume or manage on the queue to a role. Needs manage.';
CREATE FUNCTION pgmq.revoke_queue(queue_name text, role_name regrole, permissions text[] DEFAULT NULL)
    RETURNS void AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.revoke_queue(text, regrole, text[]) IS
  'Revokes the named permissions (all when NULL) on the queue from a role. Needs manage.';

------------------------------------------------------------------------------
-- Row-level security for direct SQL
------------------------------------------------------------------------------

DO $$
DECLARE
    v_table text;
BEGIN
    FOREACH v_table IN ARRAY ARRAY['meta', 'queue_config', 'idempotency_keys', 'breaker_state',
                                   'notify_insert_throttle', 'queue_tenants']
    LOOP
        EXECUTE format('ALTER TABLE pgmq.%I ENABLE ROW LEVEL SECURITY', v_table);
        EXECUTE format('CREATE POLICY queue_ext_rows ON pgmq.%I AS PERMISSIVE USING (true)', v_table);
        EXECUTE format('CREATE POLICY queue_ext_tenant ON pgmq.%I AS RESTRICTIVE '
                       'USING (pgmq.queue_visible(queue_name::text))', v_table);
    END LOOP;
    FOREACH v_table IN ARRAY ARRAY['tenants', 'tenant_roles', 'queue_grants', 'api_keys', 'audit_log']
    LOOP
        EXECUTE format('ALTER TABLE pgmq.%I ENABLE ROW LEVEL SECURITY', v_table);
        EXECUTE format('CREATE POLICY queue_ext_rows ON pgmq.%I AS PERMISSIVE USING (true)', v_table);
        EXECUTE format('CREATE POLICY queue_ext_tenant ON pgmq.%I AS RESTRICTIVE '
                       'USING (pgmq.tenant_visible(tenant_id))', v_table);
    END LOOP;
    -- No policy: nobody but the owner sees a row.
    ALTER TABLE pgmq.gateway_roles ENABLE ROW LEVEL SECURITY;
    ALTER TABLE pgmq.api_key_secret ENABLE ROW LEVEL SECURITY;
END;
$$;

-- Every role may call queue_ext's functions (each checks its caller). A
-- tenant's roles may read, by direct SQL, what row-level security shows them
-- (pgmq._grant_tenant_reads, run by add_tenant_role); nobody else gets
-- table rights: PUBLIC grants would let roles that bypass row-level security
-- (Supabase's service_role) read every tenant's rows.
GRANT USAGE ON SCHEMA pgmq TO PUBLIC;
-- pg_monitor got SELECT on every table of the schema (pgmq's grant): not on secrets.
REVOKE ALL ON pgmq.api_key_secret FROM PUBLIC, pg_monitor;
-- pgmq's default privileges give pg_monitor SELECT on every new table: not
-- on tenants' data, which a monitoring role that bypasses row-level security
-- would read whole.
REVOKE SELECT ON pgmq.api_keys, pgmq.tenants, pgmq.queue_tenants, pgmq.tenant_roles, pgmq.queue_grants,
                 pgmq.gateway_roles, pgmq.audit_log FROM pg_monitor;
REVOKE ALL ON pgmq.gateway_roles, pgmq.tenant_roles FROM PUBLIC;
GRANT SELECT ON pgmq.api_key_list, pgmq.queue_options, pgmq.job_counts, pgmq.circuit_breakers TO PUBLIC;

-- Views read their tables as the caller, so row-level security applies to the caller.
ALTER VIEW pgmq.queue_options SET (security_invoker = true);
ALTER VIEW pgmq.circuit_breakers SET (security_invoker = true);

-- Queue tables now belong to the extension owner, which queue_ext's functions
-- run as: a table owned by another role could carry triggers, defaults or
-- index expressions that the owner would run. Queues made before 0.4.0 by
-- other roles pass to the owner; their former owners keep the table rights
-- and get publish, consume and manage on the queue. CREATE on schema pgmq
-- would let a role plant functions or tables that the owner finds, so only
-- the owner keeps it (queues are made through pgmq.create).
DO $$
DECLARE
    v_owner regrole := (SELECT e.extowner::regrole FROM pg_extension e WHERE e.extname = 'queue_ext');
    v_table record;
    v_grant record;
BEGIN
    -- Functions, operators or types someone planted in pgmq would be found by
    -- name in code that runs as the owner.
    IF EXISTS (SELECT 1 FROM pg_proc p WHERE p.pronamespace = 'pgmq'::regnamespace
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                               AND d.objid = p.oid AND d.deptype = 'e'))
       OR EXISTS (SELECT 1 FROM pg_operator o WHERE o.oprnamespace = 'pgmq'::regnamespace) THEN
        RAISE EXCEPTION 'schema pgmq holds functions or operators that are not queue_ext''s'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'queue_ext 0.4.0 runs as the extension owner, which would find them by name.',
                  HINT = 'Move or drop them, then update again.';
    END IF;
    FOR v_table IN
        SELECT c.oid::regclass AS name, c.relowner::regrole AS old_owner, m.queue_name::text AS queue
        FROM pgmq.meta m
        JOIN pg_class c ON c.oid IN (to_regclass(format('pgmq.%I', pgmq.format_table_name(m.queue_name::text, 'q'::text))),
                                     to_regclass(format('pgmq.%I', pgmq.format_table_name(m.queue_name::text, 'a'::text))))
        WHERE c.relowner <> v_owner
    LOOP
        RAISE NOTICE 'table % passes from role % to the extension owner; % keeps its table rights and gets publish, consume and manage on queue "%"',
            v_table.name, v_table.old_owner, v_table.old_owner, v_table.queue;
        EXECUTE format('ALTER TABLE %s OWNER TO %s', v_table.name, v_owner);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO %s', v_table.name, v_table.old_owner);
        INSERT INTO pgmq.queue_grants (tenant_id, queue_name, grantee, permissions)
        VALUES (NULL, v_table.queue, v_table.old_owner, '{publish,consume,manage}')
        ON CONFLICT ON CONSTRAINT queue_grants_unique DO NOTHING;
    END LOOP;
    -- TRIGGER would let a role add code the owner runs; TRUNCATE ignores row-level security.
    FOR v_grant IN
        SELECT c.oid::regclass AS name, a.grantee, a.privilege_type
        FROM pgmq.meta m
        JOIN pg_class c ON c.oid IN (to_regclass(format('pgmq.%I', pgmq.format_table_name(m.queue_name::text, 'q'::text))),
                                     to_regclass(format('pgmq.%I', pgmq.format_table_name(m.queue_name::text, 'a'::text)))),
             aclexplode(c.relacl) a
        WHERE a.grantee <> c.relowner AND a.privilege_type IN ('TRIGGER', 'TRUNCATE', 'REFERENCES')
    LOOP
        EXECUTE format('REVOKE %s ON %s FROM %s CASCADE', v_grant.privilege_type, v_grant.name,
                       CASE WHEN v_grant.grantee = 0 THEN 'PUBLIC' ELSE v_grant.grantee::regrole::text END);
    END LOOP;
    -- CREATE on pgmq would let a role plant objects the owner finds by name.
    FOR v_grant IN
        SELECT DISTINCT a.grantee FROM pg_namespace n, aclexplode(n.nspacl) a
        WHERE n.nspname = 'pgmq' AND a.privilege_type = 'CREATE' AND a.grantee <> n.nspowner
    LOOP
        RAISE NOTICE 'CREATE on schema pgmq is taken from %: queues are made with pgmq.create',
            CASE WHEN v_grant.grantee = 0 THEN 'PUBLIC' ELSE v_grant.grantee::regrole::text END;
        EXECUTE format('REVOKE CREATE ON SCHEMA pgmq FROM %s CASCADE',
                       CASE WHEN v_grant.grantee = 0 THEN 'PUBLIC' ELSE v_grant.grantee::regrole::text END);
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_namespace n, aclexplode(n.nspacl) a
               WHERE n.nspname = 'pgmq' AND a.privilege_type = 'CREATE' AND a.grantee <> n.nspowner) THEN
        RAISE EXCEPTION 'could not take CREATE on schema pgmq from every role but its owner';
    END IF;
END;
$$;

-- Queues made before 0.4.0 get the same policies as new ones.
SELECT pgmq._protect_queue_tables(queue_name) FROM pgmq.meta;

------------------------------------------------------------------------------
-- Supabase-style RPC: pgmq_public, for edge functions through PostgREST
------------------------------------------------------------------------------

CREATE SCHEMA pgmq_public;
COMMENT ON SCHEMA pgmq_public IS
  'The functions Supabase Queues exposes to edge functions, with its argument names; tenant and permissions are checked as for pgmq.';

CREATE FUNCTION pgmq_public.send(queue_name text, message jsonb, sleep_seconds integer DEFAULT 0)
    RETURNS SETOF bigint AS 'MODULE_PATHNAME', 'queue_ext_send_delay_seconds' LANGUAGE C;
COMMENT ON FUNCTION pgmq_public.send(text, jsonb, integer) IS
  'Sends a message, visible after sleep_seconds; returns its id.';
CREATE FUNCTION pgmq_public.send_batch(queue_name text, messages jsonb[], sleep_seconds integer DEFAULT 0)
    RETURNS SETOF bigint AS 'MODULE_PATHNAME', 'queue_ext_send_batch_delay_seconds' LANGUAGE C;
COMMENT ON FUNCTION pgmq_public.send_batch(text, jsonb[], integer) IS
  'Sends messages, visible after sleep_seconds; returns their ids.';
CREATE FUNCTION pgmq_public.read(queue_name text, sleep_seconds integer, n integer)
    RETURNS SETOF pgmq.message_record AS 'MODULE_PATHNAME', 'queue_ext_read' LANGUAGE C;
COMMENT ON FUNCTION pgmq_public.read(text, integer, integer) IS
  'Leases up to n messages, invisible to other readers for sleep_seconds.';
CREATE FUNCTION pgmq_public.pop(queue_name text)
    RETURNS SETOF pgmq.message_record AS 'MODULE_PATHNAME', 'queue_ext_pop' LANGUAGE C;
COMMENT ON FUNCTION pgmq_public.pop(text) IS 'Reads and deletes the oldest visible message.';
CREATE FUNCTION pgmq_public.archive(queue_name text, message_id bigint)
    RETURNS boolean AS 'MODULE_PATHNAME', 'queue_ext_archive' LANGUAGE C;
COMMENT ON FUNCTION pgmq_public.archive(text, bigint) IS 'Moves a message to the archive.';
CREATE FUNCTION pgmq_public.delete(queue_name text, message_id bigint)
    RETURNS boolean AS 'MODULE_PATHNAME', 'queue_ext_delete' LANGUAGE C;
COMMENT ON FUNCTION pgmq_public.delete(text, bigint) IS 'Deletes a message.';
CREATE FUNCTION pgmq_public.pre_request() RETURNS void
    AS 'MODULE_PATHNAME', 'queue_ext_pre_request' LANGUAGE C;
COMMENT ON FUNCTION pgmq_public.pre_request() IS
  'For PostgREST''s db-pre-request: authenticates the API key of the request''s x-api-key header, if it has one.';

REVOKE ALL ON SCHEMA pgmq_public FROM PUBLIC;

CREATE FUNCTION pgmq._grant_rpc(role_name regrole) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF role_name IS NULL THEN
        RAISE EXCEPTION 'role_name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- regrole's text form is already a quoted identifier.
    EXECUTE format('GRANT USAGE ON SCHEMA pgmq_public TO %s', role_name);
    EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pgmq_public TO %s', role_name);
END;
$$;
REVOKE ALL ON FUNCTION pgmq._grant_rpc(regrole) FROM PUBLIC;
CREATE FUNCTION pgmq.grant_rpc(role_name regrole) RETURNS void
    AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.grant_rpc(regrole) IS
  'Lets a role call pgmq_public (PostgREST''s anon, authenticated, ...). Operators only.';

-- Supabase's roles, where they exist.
DO $$
DECLARE
    v_role text;
BEGIN
    FOREACH v_role IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
            PERFORM pgmq._grant_rpc(v_role::regrole);
        END IF;
    END LOOP;
END;
$$;

-- The bodies of pgmq.<name>, which runs them as the owner after checking its caller.
DO $$
DECLARE
    v_fn record;
BEGIN
    FOR v_fn IN
        SELECT p.oid::regprocedure AS impl, substr(p.proname, 2) AS public_name FROM pg_proc p
        WHERE p.pronamespace = 'pgmq'::regnamespace AND p.proname LIKE '\_%'
          AND obj_description(p.oid, 'pg_proc') IS NULL
          AND EXISTS (SELECT 1 FROM pg_proc q WHERE q.pronamespace = p.pronamespace
                      AND q.proname = substr(p.proname, 2))
    LOOP
        EXECUTE format('COMMENT ON FUNCTION %s IS %L', v_fn.impl,
                       format('The body of pgmq.%s, which runs it as the extension owner once it has checked the caller; not for PUBLIC.',
                              v_fn.public_name));
    END LOOP;
END;
$$;
