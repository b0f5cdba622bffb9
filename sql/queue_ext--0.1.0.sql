-- queue_ext 0.1.0: install script.
-- Schema pgmq with the SQL API of pgmq 1.13: the same names, argument names,
-- defaults, result types and catalog tables. The hot path is C (queue_ext.so);
-- administrative helpers are SQL. Objects are schema-qualified throughout.

\echo Use "CREATE EXTENSION queue_ext" to load this file. \quit

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
