-- queue_ext 0.2.0 -> 0.3.0: ordering and dedup.
-- FIFO message groups the pgmq 1.13 way (the x-pgmq-group header, the
-- read_grouped family, fifo indexes), with group-level exclusion between
-- concurrent readers. Nothing here changes a queue table's columns.

\echo Use "ALTER EXTENSION queue_ext UPDATE TO '0.3.0'" to load this file. \quit

------------------------------------------------------------------------------
-- FIFO groups
------------------------------------------------------------------------------

CREATE FUNCTION pgmq.read_grouped(queue_name text, vt integer, qty integer)
    RETURNS SETOF pgmq.message_record
    AS 'MODULE_PATHNAME', 'queue_ext_read_grouped' LANGUAGE C;
COMMENT ON FUNCTION pgmq.read_grouped(text, integer, integer) IS
  'Leases up to qty messages in FIFO group order, SQS style: the oldest open group''s messages first, then the next group''s. A group is open while its oldest message is visible.';

CREATE FUNCTION pgmq.read_grouped_rr(queue_name text, vt integer, qty integer)
    RETURNS SETOF pgmq.message_record
    AS 'MODULE_PATHNAME', 'queue_ext_read_grouped_rr' LANGUAGE C;
COMMENT ON FUNCTION pgmq.read_grouped_rr(text, integer, integer) IS
  'Leases up to qty messages round robin over the open FIFO groups: every group''s oldest message, then every group''s second, and so on.';

CREATE FUNCTION pgmq.read_grouped_head(queue_name text, vt integer, qty integer)
    RETURNS SETOF pgmq.message_record
    AS 'MODULE_PATHNAME', 'queue_ext_read_grouped_head' LANGUAGE C;
COMMENT ON FUNCTION pgmq.read_grouped_head(text, integer, integer) IS
  'Leases the oldest message of each of up to qty open FIFO groups, oldest group first.';

CREATE FUNCTION pgmq.read_grouped_with_poll(queue_name text, vt integer, qty integer,
                                            max_poll_seconds integer DEFAULT 5,
                                            poll_interval_ms integer DEFAULT 100)
    RETURNS SETOF pgmq.message_record
    AS 'MODULE_PATHNAME', 'queue_ext_read_grouped_with_poll' LANGUAGE C;
COMMENT ON FUNCTION pgmq.read_grouped_with_poll(text, integer, integer, integer, integer) IS
  'Like read_grouped, but waits up to max_poll_seconds for a message, trying every poll_interval_ms.';

CREATE FUNCTION pgmq.read_grouped_rr_with_poll(queue_name text, vt integer, qty integer,
                                               max_poll_seconds integer DEFAULT 5,
                                               poll_interval_ms integer DEFAULT 100)
    RETURNS SETOF pgmq.message_record
    AS 'MODULE_PATHNAME', 'queue_ext_read_grouped_rr_with_poll' LANGUAGE C;
COMMENT ON FUNCTION pgmq.read_grouped_rr_with_poll(text, integer, integer, integer, integer) IS
  'Like read_grouped_rr, but waits up to max_poll_seconds for a message, trying every poll_interval_ms.';

CREATE FUNCTION pgmq.read_grouped_head_with_poll(queue_name text, vt integer, qty integer,
                                                 max_poll_seconds integer DEFAULT 5,
                                                 poll_interval_ms integer DEFAULT 100)
    RETURNS SETOF pgmq.message_record
    AS 'MODULE_PATHNAME', 'queue_ext_read_grouped_head_with_poll' LANGUAGE C;
COMMENT ON FUNCTION pgmq.read_grouped_head_with_poll(text, integer, integer, integer, integer) IS
  'Like read_grouped_head, but waits up to max_poll_seconds for a message, trying every poll_interval_ms.';

-- pgmq makes a GIN index on headers here. The grouped reads ask "the next
-- messages of group g after msg_id h, in order", which a btree on the group
-- expression and msg_id answers with a range scan and GIN cannot; the
-- expression is the one src/plans.c (GROUP_OF) uses, character for character.
CREATE FUNCTION pgmq._create_fifo_index_if_not_exists(queue_name text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table text := pgmq.format_table_name(pgmq.registered_queue_name(queue_name), 'q');
BEGIN
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I '
                   '((COALESCE(headers ->> %L, %L)), msg_id)',
                   v_table || '_fifo_idx', v_table, 'x-pgmq-group', '_default_fifo_group');
END;
$$;
COMMENT ON FUNCTION pgmq._create_fifo_index_if_not_exists(text) IS
  'Makes the queue''s FIFO group index (q_<name>_fifo_idx) unless it exists.';

CREATE FUNCTION pgmq.create_fifo_index(queue_name text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pgmq._create_fifo_index_if_not_exists(queue_name);
END;
$$;
COMMENT ON FUNCTION pgmq.create_fifo_index(text) IS
  'Indexes the queue''s messages by FIFO group and msg_id, so grouped reads find a group''s next messages by index.';

CREATE FUNCTION pgmq.create_fifo_indexes_all() RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_queue record;
BEGIN
    FOR v_queue IN SELECT m.queue_name FROM pgmq.meta m ORDER BY m.queue_name LOOP
        PERFORM pgmq._create_fifo_index_if_not_exists(v_queue.queue_name);
    END LOOP;
END;
$$;
COMMENT ON FUNCTION pgmq.create_fifo_indexes_all() IS
  'Runs create_fifo_index for every queue.';
