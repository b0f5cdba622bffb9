-- queue_ext 0.1.0: install script.
-- Schema pgmq with the SQL API of pgmq 1.13: the same names, argument names,
-- defaults, result types and catalog tables. The hot path is C (queue_ext.so);
-- administrative helpers are SQL. Objects are schema-qualified throughout.

\echo Use "CREATE EXTENSION queue_ext" to load this file. \quit

------------------------------------------------------------------------------
-- Moving from pgmq (README, "Moving from pgmq"): a database that ran pgmq 1.x
-- keeps its queue tables (not extension members since pgmq 1.6) and, when
-- they were detached from the extension before DROP EXTENSION pgmq, its
-- catalog tables. They are checked whole first: either everything is
-- adopted, with its messages, ids and leases, or nothing changes and the
-- error says what to do. The catalog tables are set aside here and their
-- rows taken over once queue_ext's own exist.
------------------------------------------------------------------------------

DO $adopt$
DECLARE
    v_path     text := pg_catalog.current_setting('search_path');
    v_queue    record;
    v_problem  text;
    v_expected constant text[] := ARRAY[
        'q|msg_id|bigint|t|a|', 'q|read_ct|integer|t||0', 'q|enqueued_at|timestamp with time zone|t||now()',
        'q|last_read_at|timestamp with time zone|f||', 'q|vt|timestamp with time zone|t||',
        'q|message|jsonb|f||', 'q|headers|jsonb|f||',
        'a|msg_id|bigint|t||', 'a|read_ct|integer|t||0', 'a|enqueued_at|timestamp with time zone|t||now()',
        'a|last_read_at|timestamp with time zone|f||', 'a|archived_at|timestamp with time zone|t||now()',
        'a|vt|timestamp with time zone|t||', 'a|message|jsonb|f||', 'a|headers|jsonb|f||'];
BEGIN
    -- This runs as a superuser over objects others may have made: nothing
    -- resolves through schema pgmq until it is found to hold only tables.
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    IF EXISTS (SELECT FROM pg_extension WHERE extname = 'pgmq') THEN
        RAISE EXCEPTION 'extension "pgmq" is installed in this database'
            USING ERRCODE = 'object_in_use',
                  DETAIL = 'queue_ext provides the pgmq API in schema pgmq itself; a database runs one of the two.',
                  HINT = 'Keep pgmq''s queues and catalog, then drop pgmq: ALTER EXTENSION pgmq DROP TABLE pgmq.meta; '
                         'ALTER EXTENSION pgmq DROP TABLE pgmq.topic_bindings; DROP EXTENSION pgmq CASCADE; '
                         'then CREATE EXTENSION queue_ext adopts them (see queue_ext''s README, "Moving from pgmq").';
    END IF;
    IF to_regnamespace('pgmq') IS NULL THEN
        PERFORM set_config('search_path', v_path, true);
        RETURN;
    END IF;

    -- The schema: a superuser's, holding tables (with their sequences and indexes) and nothing else.
    IF NOT (SELECT r.rolsuper FROM pg_namespace n JOIN pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
            WHERE n.nspname OPERATOR(pg_catalog.=) 'pgmq') THEN
        RAISE EXCEPTION 'schema pgmq exists and does not belong to a superuser'
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Its owner could put objects in it that queue_ext''s installation would run as a superuser.',
                  HINT = 'ALTER SCHEMA pgmq OWNER TO a superuser, or drop or rename the schema.';
    END IF;
    SELECT string_agg(what, ', ') INTO v_problem FROM (
        SELECT format('function %s', p.oid::regprocedure) AS what FROM pg_proc p
        WHERE p.pronamespace OPERATOR(pg_catalog.=) 'pgmq'::regnamespace::oid
        UNION ALL
        SELECT format('operator %s', o.oid::regoperator) FROM pg_operator o
        WHERE o.oprnamespace OPERATOR(pg_catalog.=) 'pgmq'::regnamespace::oid
        UNION ALL
        SELECT format('relation %s', c.oid::regclass) FROM pg_class c
        WHERE c.relnamespace OPERATOR(pg_catalog.=) 'pgmq'::regnamespace::oid
          AND c.relkind NOT IN ('r', 'p', 'S', 'i', 'I')
        UNION ALL
        SELECT format('type %s', t.oid::regtype) FROM pg_type t
        WHERE t.typnamespace OPERATOR(pg_catalog.=) 'pgmq'::regnamespace::oid
          AND t.typrelid OPERATOR(pg_catalog.=) 0 AND t.typelem OPERATOR(pg_catalog.=) 0
        LIMIT 5) objects;
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION 'schema pgmq holds objects other than tables: %', v_problem
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'A database that ran pgmq keeps only its tables after DROP EXTENSION pgmq CASCADE; drop or move the rest.';
    END IF;

    IF to_regclass('pgmq.meta') IS NULL THEN
        IF EXISTS (SELECT FROM pg_class c
                   WHERE c.relnamespace OPERATOR(pg_catalog.=) 'pgmq'::regnamespace::oid
                     AND c.relkind IN ('r', 'p') AND starts_with(c.relname::text, 'q_')) THEN
            RAISE EXCEPTION 'schema pgmq holds queue tables but no pgmq.meta'
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = 'Without pgmq''s catalog the queues'' names, as given, are unknown.',
                      HINT = 'Restore pgmq.meta (queue_name varchar UNIQUE, is_partitioned, is_unlogged, created_at) with a row '
                             'per queue, or move the tables out of schema pgmq. Before DROP EXTENSION pgmq, '
                             'ALTER EXTENSION pgmq DROP TABLE pgmq.meta keeps it.';
        END IF;
        PERFORM set_config('search_path', v_path, true);
        RETURN;
    END IF;

    -- pgmq's catalog tables, as pgmq 1.x made them: plain tables, pgmq's columns.
    SELECT string_agg(format('%s %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY a.attnum)
    INTO v_problem
    FROM pg_attribute a WHERE a.attrelid OPERATOR(pg_catalog.=) to_regclass('pgmq.meta')::oid
                          AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped;
    IF (SELECT c.relkind FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) to_regclass('pgmq.meta')::oid) OPERATOR(pg_catalog.<>) 'r'
       OR v_problem IS DISTINCT FROM 'queue_name character varying, is_partitioned boolean, is_unlogged boolean, created_at timestamp with time zone' THEN
        RAISE EXCEPTION 'pgmq.meta is not pgmq''s catalog table'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('It is a relation of kind %s with columns %s.',
                                  (SELECT c.relkind FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) to_regclass('pgmq.meta')::oid), v_problem),
                  HINT = 'Rename or move the table, then create the extension again.';
    END IF;
    IF to_regclass('pgmq.topic_bindings') IS NOT NULL THEN
        IF (SELECT c.relkind FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) to_regclass('pgmq.topic_bindings')::oid) OPERATOR(pg_catalog.<>) 'r'
           OR (SELECT count(*) FROM pg_attribute a
               WHERE a.attrelid OPERATOR(pg_catalog.=) to_regclass('pgmq.topic_bindings')::oid AND NOT a.attisdropped
                 AND a.attname IN ('pattern', 'queue_name') AND a.atttypid OPERATOR(pg_catalog.=) 'text'::regtype::oid)
              OPERATOR(pg_catalog.<>) 2 THEN
            RAISE EXCEPTION 'pgmq.topic_bindings is not pgmq''s table of topic bindings'
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Rename or move the table, then create the extension again.';
        END IF;
        -- pgmq's rules for patterns (validate_topic_pattern), so every binding can be taken over.
        EXECUTE $check$SELECT string_agg(DISTINCT b.pattern, ', ') FROM pgmq.topic_bindings b
                 WHERE b.pattern IS NULL OR length(b.pattern) NOT BETWEEN 1 AND 255
                    OR b.pattern !~ '^[a-zA-Z0-9._*#-]+$' OR b.pattern ~ '^\.|\.$|\.\.|\*\*|##|\*#|#\*'$check$
            INTO v_problem;
        IF v_problem IS NOT NULL THEN
            RAISE EXCEPTION 'pgmq.topic_bindings holds patterns pgmq would refuse: %', v_problem
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Delete or fix those bindings, then create the extension again.';
        END IF;
    END IF;
    IF to_regclass('pgmq.notify_insert_throttle') IS NOT NULL
       AND (SELECT c.relkind FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) to_regclass('pgmq.notify_insert_throttle')::oid)
           OPERATOR(pg_catalog.<>) 'r' THEN
        RAISE EXCEPTION 'pgmq.notify_insert_throttle is not pgmq''s table'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Rename or move it, then create the extension again.';
    END IF;

    -- Every queue it lists: pgmq's tables exactly, carrying nothing that
    -- would run code (the tables go to the extension owner, who works on them).
    FOR v_queue IN EXECUTE 'SELECT queue_name::text AS name, is_partitioned FROM pgmq.meta ORDER BY queue_name' LOOP
        IF v_queue.is_partitioned THEN
            RAISE EXCEPTION 'queue "%" is partitioned, which queue_ext cannot adopt yet', v_queue.name
                USING ERRCODE = 'feature_not_supported',
                      HINT = 'Move its messages to a queue that is not partitioned, or drop it, before creating the extension.';
        END IF;
        WITH tables AS (
            SELECT k, to_regclass(format('pgmq.%I', k || '_' || lower(v_queue.name)))::oid AS relid
            FROM unnest(ARRAY['q', 'a']) k),
        actual AS (
            SELECT t.k || '|' || a.attname || '|' || format_type(a.atttypid, a.atttypmod) || '|'
                   || CASE WHEN a.attnotnull THEN 't' ELSE 'f' END || '|' || a.attidentity::text || '|'
                   || coalesce(pg_get_expr(d.adbin, d.adrelid), '') AS line
            FROM tables t JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) t.relid
            LEFT JOIN pg_attrdef d ON d.adrelid OPERATOR(pg_catalog.=) a.attrelid AND d.adnum OPERATOR(pg_catalog.=) a.attnum
            WHERE a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped),
        problems AS (
            SELECT format('%s_%s is missing', k, lower(v_queue.name)) AS what FROM tables WHERE relid IS NULL
            UNION ALL
            SELECT format('%s_%s is not a plain table, inherits, is a partition or has rules', t.k, lower(v_queue.name))
            FROM tables t JOIN pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid
            WHERE c.relkind OPERATOR(pg_catalog.<>) 'r' OR c.relispartition OR c.relhassubclass OR c.relhasrules
               OR EXISTS (SELECT FROM pg_inherits i WHERE i.inhrelid OPERATOR(pg_catalog.=) t.relid)
            UNION ALL
            SELECT 'expected ' || e FROM unnest(v_expected) e
            WHERE split_part(e, '|', 1) IN (SELECT k FROM tables WHERE relid IS NOT NULL) AND e NOT IN (SELECT line FROM actual)
            UNION ALL
            SELECT 'unexpected ' || line FROM actual WHERE line NOT IN (SELECT unnest(v_expected))
            UNION ALL
            SELECT format('%s has constraint %s', t.k, con.conname) FROM tables t
            JOIN pg_constraint con ON con.conrelid OPERATOR(pg_catalog.=) t.relid WHERE con.contype NOT IN ('p', 'u')
            UNION ALL
            SELECT format('%s has index %s on an expression or with a predicate', t.k, i.indexrelid::regclass) FROM tables t
            JOIN pg_index i ON i.indrelid OPERATOR(pg_catalog.=) t.relid WHERE i.indexprs IS NOT NULL OR i.indpred IS NOT NULL
            UNION ALL
            SELECT format('%s has trigger %s', t.k, tg.tgname) FROM tables t
            JOIN pg_trigger tg ON tg.tgrelid OPERATOR(pg_catalog.=) t.relid WHERE NOT tg.tgisinternal
            UNION ALL
            SELECT format('%s has policy %s', t.k, po.polname) FROM tables t
            JOIN pg_policy po ON po.polrelid OPERATOR(pg_catalog.=) t.relid)
        SELECT string_agg(what, '; ') INTO v_problem FROM problems;
        IF v_problem IS NOT NULL THEN
            RAISE EXCEPTION 'queue "%" does not have pgmq''s tables', v_queue.name
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = format('In pgmq.q_%s or pgmq.a_%s (table|column|type|not null|identity|default): %s.',
                                      lower(v_queue.name), lower(v_queue.name), v_problem),
                      HINT = 'Fix or drop the queue''s tables, or delete its row from pgmq.meta, then create the extension again.';
        END IF;
    END LOOP;

    -- Adopted: pgmq's index on vt goes (it would stop every read from
    -- updating in place), and the tables take queue_ext's storage settings.
    FOR v_queue IN EXECUTE 'SELECT lower(queue_name::text) AS name FROM pgmq.meta' LOOP
        EXECUTE format('DROP INDEX IF EXISTS pgmq.%I', 'q_' || v_queue.name || '_vt_idx');
        EXECUTE format('ALTER TABLE pgmq.%I SET (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02, '
                       'autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_insert_scale_factor = 0.05, '
                       'autovacuum_vacuum_cost_delay = 0)', 'q_' || v_queue.name);
    END LOOP;
    -- Set aside under other names, their indexes too (index names are the schema's).
    ALTER TABLE pgmq.meta RENAME TO meta_adopted;
    IF to_regclass('pgmq.topic_bindings') IS NOT NULL THEN
        ALTER TABLE pgmq.topic_bindings RENAME TO topic_bindings_adopted;
    END IF;
    FOR v_queue IN
        SELECT i.indexrelid::regclass AS index, c.relname AS name
        FROM pg_index i JOIN pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indexrelid
        WHERE i.indrelid IN (to_regclass('pgmq.meta_adopted')::oid, to_regclass('pgmq.topic_bindings_adopted')::oid)
    LOOP
        EXECUTE format('ALTER INDEX %s RENAME TO %I', v_queue.index, v_queue.name || '_adopted');
    END LOOP;
    IF to_regclass('pgmq.notify_insert_throttle') IS NOT NULL THEN
        RAISE NOTICE 'insert notifications are not carried over: call pgmq.enable_notify_insert() again for %',
            (SELECT string_agg(t.queue_name::text, ', ') FROM pgmq.notify_insert_throttle t);
        DROP TABLE pgmq.notify_insert_throttle;
    END IF;
    PERFORM set_config('search_path', v_path, true);
END;
$adopt$;

------------------------------------------------------------------------------
-- Catalog
------------------------------------------------------------------------------

CREATE TABLE pgmq.meta (
    queue_name     varchar UNIQUE NOT NULL,
    is_partitioned boolean NOT NULL,
    is_unlogged    boolean NOT NULL,
    created_at     timestamp with time zone DEFAULT now() NOT NULL
);
COMMENT ON TABLE pgmq.meta IS
  'One row per queue: its name as given, whether it is partitioned or unlogged, and when it was made.';

-- The queues of pgmq's catalog, when one was adopted above.
DO $adopt$
BEGIN
    IF pg_catalog.to_regclass('pgmq.meta_adopted') IS NOT NULL THEN
        INSERT INTO pgmq.meta (queue_name, is_partitioned, is_unlogged, created_at)
        SELECT queue_name, is_partitioned, is_unlogged, created_at FROM pgmq.meta_adopted;
        DROP TABLE pgmq.meta_adopted CASCADE;
    END IF;
END;
$adopt$;

-- pgmq grants pg_monitor read access to the schema's tables; keep that, and
-- grant it before the other tables exist so both orders dump alike.
GRANT USAGE ON SCHEMA pgmq TO pg_monitor;
GRANT SELECT ON ALL TABLES IN SCHEMA pgmq TO pg_monitor;
GRANT SELECT ON ALL SEQUENCES IN SCHEMA pgmq TO pg_monitor;
ALTER DEFAULT PRIVILEGES IN SCHEMA pgmq GRANT SELECT ON TABLES TO pg_monitor;
ALTER DEFAULT PRIVILEGES IN SCHEMA pgmq GRANT SELECT ON SEQUENCES TO pg_monitor;

CREATE UNLOGGED TABLE pgmq.notify_insert_throttle (
    queue_name           varchar UNIQUE NOT NULL
        CONSTRAINT notify_insert_throttle_meta_queue_name_fk
            REFERENCES pgmq.meta (queue_name) ON DELETE CASCADE,
    throttle_interval_ms integer NOT NULL DEFAULT 0,
    last_notified_at     timestamp with time zone NOT NULL DEFAULT to_timestamp(0)
);
CREATE INDEX idx_notify_throttle_active
    ON pgmq.notify_insert_throttle (queue_name, last_notified_at)
    WHERE throttle_interval_ms > 0;
COMMENT ON TABLE pgmq.notify_insert_throttle IS
  'Queues that NOTIFY on insert, and the least time between two notifications (0: every insert).';

-- The catalog is extension-owned; config-dump it so pg_dump keeps its rows.
-- Queue tables are not extension members, so pg_dump dumps them as it dumps any table.
SELECT pg_catalog.pg_extension_config_dump('pgmq.meta', '');
SELECT pg_catalog.pg_extension_config_dump('pgmq.notify_insert_throttle', '');

------------------------------------------------------------------------------
-- Types (column order is part of the API: clients decode by position)
------------------------------------------------------------------------------

CREATE TYPE pgmq.message_record AS (
    msg_id       bigint,
    read_ct      integer,
    enqueued_at  timestamp with time zone,
    last_read_at timestamp with time zone,
    vt           timestamp with time zone,
    message      jsonb,
    headers      jsonb
);
COMMENT ON TYPE pgmq.message_record IS 'A message as read, popped or moved by set_vt.';

CREATE TYPE pgmq.queue_record AS (
    queue_name     varchar,
    is_partitioned boolean,
    is_unlogged    boolean,
    created_at     timestamp with time zone
);
COMMENT ON TYPE pgmq.queue_record IS 'A queue as list_queues shows it.';

CREATE TYPE pgmq.metrics_result AS (
    queue_name               text,
    queue_length             bigint,
    newest_msg_age_sec       integer,
    oldest_msg_age_sec       integer,
    total_messages           bigint,
    scrape_time              timestamp with time zone,
    queue_visible_length     bigint,
    default_partition_length bigint
);
COMMENT ON TYPE pgmq.metrics_result IS 'One queue''s metrics, as metrics and metrics_all return them.';

------------------------------------------------------------------------------
-- Queues: create, drop, purge, list, name helpers
------------------------------------------------------------------------------

CREATE FUNCTION pgmq."create"(queue_name text) RETURNS void
    AS 'MODULE_PATHNAME', 'queue_ext_create' LANGUAGE C;
COMMENT ON FUNCTION pgmq."create"(text) IS
  'Creates a queue (pgmq.q_<name>, its archive pgmq.a_<name>, a pgmq.meta row); a no-op if it exists.';

CREATE FUNCTION pgmq.create_non_partitioned(queue_name text) RETURNS void
    AS 'MODULE_PATHNAME', 'queue_ext_create' LANGUAGE C;
COMMENT ON FUNCTION pgmq.create_non_partitioned(text) IS 'Same as create(queue_name).';

CREATE FUNCTION pgmq.create_unlogged(queue_name text) RETURNS void
    AS 'MODULE_PATHNAME', 'queue_ext_create_unlogged' LANGUAGE C;
COMMENT ON FUNCTION pgmq.create_unlogged(text) IS
  'Creates a queue whose table is UNLOGGED: faster, but emptied by a crash. Its archive is logged.';

CREATE FUNCTION pgmq.drop_queue(queue_name text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'queue_ext_drop_queue' LANGUAGE C;
COMMENT ON FUNCTION pgmq.drop_queue(text) IS
  'Drops a queue, its archive and its catalog row; false, with a notice, if there is no such queue.';

CREATE FUNCTION pgmq.drop_queue(queue_name text, partitioned boolean) RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE WARNING 'drop_queue(queue_name, partitioned) is deprecated; use drop_queue(queue_name)';
    PERFORM pgmq.drop_queue(queue_name);
    RETURN true;
END;
$$;
COMMENT ON FUNCTION pgmq.drop_queue(text, boolean) IS
  'Deprecated in pgmq: drops the queue, ignoring partitioned, and returns true.';

CREATE FUNCTION pgmq.purge_queue(queue_name text) RETURNS bigint
    AS 'MODULE_PATHNAME', 'queue_ext_purge_queue' LANGUAGE C;
COMMENT ON FUNCTION pgmq.purge_queue(text) IS
  'Removes every message from a queue (TRUNCATE) and returns how many there were; total_messages is kept.';

CREATE FUNCTION pgmq.list_queues() RETURNS SETOF pgmq.queue_record
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT queue_name, is_partitioned, is_unlogged, created_at
    FROM pgmq.meta
    ORDER BY created_at, queue_name;
$$;
COMMENT ON FUNCTION pgmq.list_queues() IS 'Every queue, oldest first.';

CREATE FUNCTION pgmq.format_table_name(queue_name text, prefix text) RETURNS text
    AS 'MODULE_PATHNAME', 'queue_ext_format_table_name' LANGUAGE C STRICT;
COMMENT ON FUNCTION pgmq.format_table_name(text, text) IS
  'The table name for a queue: lower(prefix || ''_'' || queue_name); rejects $, ;, -- and ''.';

CREATE FUNCTION pgmq.validate_queue_name(queue_name text) RETURNS void
    AS 'MODULE_PATHNAME', 'queue_ext_validate_queue_name' LANGUAGE C STRICT;
COMMENT ON FUNCTION pgmq.validate_queue_name(text) IS
  'Raises an error if a queue name is longer than 47 characters (or bytes).';

CREATE FUNCTION pgmq.detach_archive(queue_name text) RETURNS void
    AS 'MODULE_PATHNAME', 'queue_ext_detach_archive' LANGUAGE C;
COMMENT ON FUNCTION pgmq.detach_archive(text) IS
  'Deprecated no-op kept for pgmq callers: archive tables are never extension members.';

CREATE FUNCTION pgmq.acquire_queue_lock(queue_name text) RETURNS void
    LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pgmq.queue_' || queue_name));
$$;
COMMENT ON FUNCTION pgmq.acquire_queue_lock(text) IS
  'Takes the transaction-scoped lock that create and drop take for a queue name.';

------------------------------------------------------------------------------
-- Sending
------------------------------------------------------------------------------

CREATE FUNCTION pgmq.send(queue_name text, msg jsonb) RETURNS SETOF bigint
    AS 'MODULE_PATHNAME', 'queue_ext_send' LANGUAGE C;
CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb) RETURNS SETOF bigint
    AS 'MODULE_PATHNAME', 'queue_ext_send_headers' LANGUAGE C;
CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, delay integer) RETURNS SETOF bigint
    AS 'MODULE_PATHNAME', 'queue_ext_send_delay_seconds' LANGUAGE C;
CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, delay timestamp with time zone) RETURNS SETOF bigint
    AS 'MODULE_PATHNAME', 'queue_ext_send_delay_at' LANGUAGE C;
CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb, delay integer) RETURNS SETOF bigint
    AS 'MODULE_PATHNAME', 'queue_ext_send_headers_delay_seconds' LANGUAGE C;
CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb, delay timestamp with time zone) RETURNS SETOF bigint
    AS 'MODULE_PATHNAME', 'queue_ext_send_headers_delay_at' LANGUAGE C;
-- For untyped driver parameters ($3 of unknown type): see src/send.c.
CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, headers_or_delay text) RETURNS SETOF bigint
    AS 'MODULE_PATHNAME', 'queue_ext_send_untyped' LANGUAGE C;
CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb, delay text) RETURNS SETOF bigint
    AS 'MODULE_PATHNAME', 'queue_ext_send_headers_untyped_delay' LANGUAGE C;

COMMENT ON FUNCTION pgmq.send(text, jsonb) IS 'Sends one message, visible now; returns its msg_id.';
COMMENT ON FUNCTION pgmq.send(text, jsonb, jsonb) IS 'Sends one message with headers, visible now.';
COMMENT ON FUNCTION pgmq.send(text, jsonb, integer) IS 'Sends one message, visible after delay seconds.';
COMMENT ON FUNCTION pgmq.send(text, jsonb, timestamp with time zone) IS 'Sends one message, visible at delay.';
COMMENT ON FUNCTION pgmq.send(text, jsonb, jsonb, integer) IS 'Sends one message with headers, visible after delay seconds.';
COMMENT ON FUNCTION pgmq.send(text, jsonb, jsonb, timestamp with time zone) IS 'Sends one message with headers, visible at delay.';
COMMENT ON FUNCTION pgmq.send(text, jsonb, text) IS
  'For untyped parameters: an integer is a delay in seconds, JSON is headers, anything else a timestamp to deliver at.';
COMMENT ON FUNCTION pgmq.send(text, jsonb, jsonb, text) IS
  'For an untyped delay: an integer is seconds, anything else a timestamp.';

CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[]) RETURNS SETOF bigint
    AS 'MODULE_PATHNAME', 'queue_ext_send_batch' LANGUAGE C;
CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[]) RETURNS SETOF bigint
    AS 'MODULE_PATHNAME', 'queue_ext_send_batch_headers' LANGUAGE C;
CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], delay integer) RETURNS SETOF bigint
    AS 'MODULE_PATHNAME', 'queue_ext_send_batch_delay_seconds' LANGUAGE C;
CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], delay timestamp with time zone) RETURNS SETOF bigint
    AS 'MODULE_PATHNAME', 'queue_ext_send_batch_delay_at' LANGUAGE C;
CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay integer) RETURNS SETOF bigint
    AS 'MODULE_PATHNAME', 'queue_ext_send_batch_headers_delay_seconds' LANGUAGE C;
CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay timestamp with time zone) RETURNS SETOF bigint
    AS 'MODULE_PATHNAME', 'queue_ext_send_batch_headers_delay_at' LANGUAGE C;
CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers_or_delay text) RETURNS SETOF bigint
    AS 'MODULE_PATHNAME', 'queue_ext_send_batch_untyped' LANGUAGE C;
CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay text) RETURNS SETOF bigint
    AS 'MODULE_PATHNAME', 'queue_ext_send_batch_headers_untyped_delay' LANGUAGE C;

COMMENT ON FUNCTION pgmq.send_batch(text, jsonb[]) IS 'Sends messages in one statement; returns their msg_ids in order.';
COMMENT ON FUNCTION pgmq.send_batch(text, jsonb[], jsonb[]) IS 'Sends messages with one headers object each.';
COMMENT ON FUNCTION pgmq.send_batch(text, jsonb[], integer) IS 'Sends messages, visible after delay seconds.';
COMMENT ON FUNCTION pgmq.send_batch(text, jsonb[], timestamp with time zone) IS 'Sends messages, visible at delay.';
COMMENT ON FUNCTION pgmq.send_batch(text, jsonb[], jsonb[], integer) IS 'Sends messages with headers, visible after delay seconds.';
COMMENT ON FUNCTION pgmq.send_batch(text, jsonb[], jsonb[], timestamp with time zone) IS 'Sends messages with headers, visible at delay.';
COMMENT ON FUNCTION pgmq.send_batch(text, jsonb[], text) IS
  'For untyped parameters: an integer is a delay in seconds, an array literal is headers, anything else a timestamp.';
COMMENT ON FUNCTION pgmq.send_batch(text, jsonb[], jsonb[], text) IS
  'For an untyped delay: an integer is seconds, anything else a timestamp.';

------------------------------------------------------------------------------
-- Reading
------------------------------------------------------------------------------

CREATE FUNCTION pgmq.read(queue_name text, vt integer, qty integer, conditional jsonb DEFAULT '{}')
    RETURNS SETOF pgmq.message_record
    AS 'MODULE_PATHNAME', 'queue_ext_read' LANGUAGE C;
COMMENT ON FUNCTION pgmq.read(text, integer, integer, jsonb) IS
  'Leases up to qty visible messages, oldest first, for vt seconds; conditional filters by jsonb containment.';

CREATE FUNCTION pgmq.read_with_poll(queue_name text, vt integer, qty integer,
                                    max_poll_seconds integer DEFAULT 5,
                                    poll_interval_ms integer DEFAULT 100,
                                    conditional jsonb DEFAULT '{}')
    RETURNS SETOF pgmq.message_record
    AS 'MODULE_PATHNAME', 'queue_ext_read_with_poll' LANGUAGE C;
COMMENT ON FUNCTION pgmq.read_with_poll(text, integer, integer, integer, integer, jsonb) IS
  'Like read, but waits up to max_poll_seconds for a message, trying every poll_interval_ms.';

CREATE FUNCTION pgmq.pop(queue_name text, qty integer DEFAULT 1) RETURNS SETOF pgmq.message_record
    AS 'MODULE_PATHNAME', 'queue_ext_pop' LANGUAGE C;
COMMENT ON FUNCTION pgmq.pop(text, integer) IS 'Reads and deletes up to qty visible messages in one step.';

CREATE FUNCTION pgmq.set_vt(queue_name text, msg_id bigint, vt integer) RETURNS SETOF pgmq.message_record
    AS 'MODULE_PATHNAME', 'queue_ext_set_vt_seconds' LANGUAGE C;
CREATE FUNCTION pgmq.set_vt(queue_name text, msg_id bigint, vt timestamp with time zone) RETURNS SETOF pgmq.message_record
    AS 'MODULE_PATHNAME', 'queue_ext_set_vt_at' LANGUAGE C;
CREATE FUNCTION pgmq.set_vt(queue_name text, msg_ids bigint[], vt integer) RETURNS SETOF pgmq.message_record
    AS 'MODULE_PATHNAME', 'queue_ext_set_vt_many_seconds' LANGUAGE C;
CREATE FUNCTION pgmq.set_vt(queue_name text, msg_ids bigint[], vt timestamp with time zone) RETURNS SETOF pgmq.message_record
    AS 'MODULE_PATHNAME', 'queue_ext_set_vt_many_at' LANGUAGE C;
-- For untyped driver parameters (pgmq-js setVt): see src/read.c.
CREATE FUNCTION pgmq.set_vt(queue_name text, msg_id text, vt text) RETURNS SETOF pgmq.message_record
    AS 'MODULE_PATHNAME', 'queue_ext_set_vt_untyped' LANGUAGE C;

COMMENT ON FUNCTION pgmq.set_vt(text, bigint, integer) IS 'Makes a message visible again vt seconds from now.';
COMMENT ON FUNCTION pgmq.set_vt(text, bigint, timestamp with time zone) IS 'Makes a message visible again at vt.';
COMMENT ON FUNCTION pgmq.set_vt(text, bigint[], integer) IS 'Makes messages visible again vt seconds from now.';
COMMENT ON FUNCTION pgmq.set_vt(text, bigint[], timestamp with time zone) IS 'Makes messages visible again at vt.';
COMMENT ON FUNCTION pgmq.set_vt(text, text, text) IS
  'For untyped parameters: msg_id ''{1,2}'' is an array; an integer vt is seconds, anything else a timestamp.';

------------------------------------------------------------------------------
-- Finishing
------------------------------------------------------------------------------

CREATE FUNCTION pgmq.delete(queue_name text, msg_id bigint) RETURNS boolean
    AS 'MODULE_PATHNAME', 'queue_ext_delete' LANGUAGE C;
CREATE FUNCTION pgmq.delete(queue_name text, msg_ids bigint[]) RETURNS SETOF bigint
    AS 'MODULE_PATHNAME', 'queue_ext_delete_many' LANGUAGE C;
CREATE FUNCTION pgmq.archive(queue_name text, msg_id bigint) RETURNS boolean
    AS 'MODULE_PATHNAME', 'queue_ext_archive' LANGUAGE C;
CREATE FUNCTION pgmq.archive(queue_name text, msg_ids bigint[]) RETURNS SETOF bigint
    AS 'MODULE_PATHNAME', 'queue_ext_archive_many' LANGUAGE C;

-- For an untyped id (delete($1, $2) from a driver): see src/ack.c.
CREATE FUNCTION pgmq.delete(queue_name text, msg_id text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'queue_ext_delete_untyped' LANGUAGE C;
CREATE FUNCTION pgmq.archive(queue_name text, msg_id text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'queue_ext_archive_untyped' LANGUAGE C;

COMMENT ON FUNCTION pgmq.delete(text, text) IS
  'For an untyped id: deletes one message; an array of ids must be passed as bigint[].';
COMMENT ON FUNCTION pgmq.archive(text, text) IS
  'For an untyped id: archives one message; an array of ids must be passed as bigint[].';
COMMENT ON FUNCTION pgmq.delete(text, bigint) IS 'Deletes a message; false if there was none with that id.';
COMMENT ON FUNCTION pgmq.delete(text, bigint[]) IS 'Deletes messages; returns the ids that were deleted.';
COMMENT ON FUNCTION pgmq.archive(text, bigint) IS 'Moves a message to the archive table; false if there was none.';
COMMENT ON FUNCTION pgmq.archive(text, bigint[]) IS 'Moves messages to the archive table; returns the ids moved.';

------------------------------------------------------------------------------
-- Metrics
------------------------------------------------------------------------------

CREATE FUNCTION pgmq.metrics(queue_name text) RETURNS pgmq.metrics_result
    AS 'MODULE_PATHNAME', 'queue_ext_metrics' LANGUAGE C;
CREATE FUNCTION pgmq.metrics_all() RETURNS SETOF pgmq.metrics_result
    AS 'MODULE_PATHNAME', 'queue_ext_metrics_all' LANGUAGE C;
COMMENT ON FUNCTION pgmq.metrics(text) IS 'Length, visible length, message ages and total sends of one queue.';
COMMENT ON FUNCTION pgmq.metrics_all() IS 'metrics for every queue in pgmq.meta.';

------------------------------------------------------------------------------
-- NOTIFY on insert (pgmq's documented, throttled notifications)
------------------------------------------------------------------------------

CREATE FUNCTION pgmq.notify_queue_listeners() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_queue_name text := TG_ARGV[0];
BEGIN
    UPDATE pgmq.notify_insert_throttle t
       SET last_notified_at = clock_timestamp()
     WHERE t.queue_name = v_queue_name
       AND (t.throttle_interval_ms = 0
            OR clock_timestamp() - t.last_notified_at
               >= t.throttle_interval_ms * interval '1 millisecond');
    IF FOUND THEN
        PERFORM pg_notify('pgmq.q_' || v_queue_name || '.' || TG_OP, NULL);
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION pgmq.notify_queue_listeners() IS
  'Trigger: NOTIFY pgmq.q_<name>.INSERT, at most once per throttle interval.';

CREATE FUNCTION pgmq.disable_notify_insert(queue_name text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table regclass := to_regclass(format('pgmq.%I', pgmq.format_table_name(queue_name, 'q')));
BEGIN
    IF v_table IS NULL THEN
        RAISE NOTICE 'queue "%" does not exist, skipping', queue_name;
    ELSE
        EXECUTE format('DROP TRIGGER IF EXISTS trigger_notify_queue_insert_listeners ON %s', v_table);
    END IF;
    DELETE FROM pgmq.notify_insert_throttle t WHERE t.queue_name = disable_notify_insert.queue_name;
END;
$$;
COMMENT ON FUNCTION pgmq.disable_notify_insert(text) IS 'Stops NOTIFY on insert for a queue.';

CREATE FUNCTION pgmq.enable_notify_insert(queue_name text, throttle_interval_ms integer DEFAULT 250)
    RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table regclass;
BEGIN
    IF throttle_interval_ms IS NULL OR throttle_interval_ms < 0 THEN
        RAISE EXCEPTION 'throttle_interval_ms must be non-negative, got %', throttle_interval_ms
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_table := to_regclass(format('pgmq.%I', pgmq.format_table_name(queue_name, 'q')));
    IF v_table IS NULL THEN
        RAISE EXCEPTION 'queue "%" does not exist', queue_name
            USING ERRCODE = 'undefined_table', HINT = 'Create it with pgmq.create().';
    END IF;

    PERFORM pgmq.disable_notify_insert(queue_name);
    INSERT INTO pgmq.notify_insert_throttle (queue_name, throttle_interval_ms)
    VALUES (queue_name, throttle_interval_ms)
    ON CONFLICT ON CONSTRAINT notify_insert_throttle_queue_name_key DO UPDATE
        SET throttle_interval_ms = EXCLUDED.throttle_interval_ms,
            last_notified_at = to_timestamp(0);

    EXECUTE format('CREATE CONSTRAINT TRIGGER trigger_notify_queue_insert_listeners '
                   'AFTER INSERT ON %s DEFERRABLE FOR EACH ROW '
                   'EXECUTE FUNCTION pgmq.notify_queue_listeners(%L)',
                   v_table, queue_name);
END;
$$;
COMMENT ON FUNCTION pgmq.enable_notify_insert(text, integer) IS
  'NOTIFY pgmq.q_<name>.INSERT when messages arrive, at most once per throttle_interval_ms.';

CREATE FUNCTION pgmq.update_notify_insert(queue_name text, throttle_interval_ms integer)
    RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF throttle_interval_ms IS NULL OR throttle_interval_ms < 0 THEN
        RAISE EXCEPTION 'throttle_interval_ms must be non-negative, got %', throttle_interval_ms
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pgmq.meta m WHERE m.queue_name = update_notify_insert.queue_name) THEN
        RAISE EXCEPTION 'queue "%" does not exist', queue_name
            USING ERRCODE = 'undefined_table', HINT = 'Create it with pgmq.create().';
    END IF;
    UPDATE pgmq.notify_insert_throttle t
       SET throttle_interval_ms = update_notify_insert.throttle_interval_ms,
           last_notified_at = to_timestamp(0)
     WHERE t.queue_name = update_notify_insert.queue_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'queue "%" does not have notify_insert enabled', queue_name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Enable it first with pgmq.enable_notify_insert().';
    END IF;
END;
$$;
COMMENT ON FUNCTION pgmq.update_notify_insert(text, integer) IS
  'Changes the throttle interval of a queue that already notifies on insert.';

CREATE FUNCTION pgmq.list_notify_insert_throttles()
    RETURNS TABLE (queue_name text, throttle_interval_ms integer,
                   last_notified_at timestamp with time zone)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.queue_name, t.throttle_interval_ms, t.last_notified_at
    FROM pgmq.notify_insert_throttle t
    ORDER BY t.queue_name;
$$;
COMMENT ON FUNCTION pgmq.list_notify_insert_throttles() IS 'Queues that notify on insert, with their throttles.';
