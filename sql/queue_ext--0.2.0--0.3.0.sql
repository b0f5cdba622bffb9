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

------------------------------------------------------------------------------
-- Queue options for priorities, idempotency keys and the circuit breaker
------------------------------------------------------------------------------

ALTER TABLE pgmq.queue_config
    ADD COLUMN idempotency_window   interval
        CHECK (idempotency_window > interval '0' AND idempotency_window <= interval '365 days'),
    ADD COLUMN priority_aging       interval
        CHECK (priority_aging >= interval '1 millisecond' AND priority_aging <= interval '1 day'),
    ADD COLUMN breaker_threshold    double precision
        CHECK (breaker_threshold > 0 AND breaker_threshold <= 1),
    ADD COLUMN breaker_window       interval
        CHECK (breaker_window >= interval '1 second' AND breaker_window <= interval '1 day'),
    ADD COLUMN breaker_min_outcomes integer
        CHECK (breaker_min_outcomes BETWEEN 1 AND 1000000),
    ADD COLUMN breaker_cooldown     interval
        CHECK (breaker_cooldown >= interval '1 second' AND breaker_cooldown <= interval '1 day');

CREATE OR REPLACE VIEW pgmq.queue_options AS
SELECT m.queue_name::text                      AS queue_name,
       c.max_attempts,
       COALESCE(c.backoff_base, 1)             AS backoff_base,
       COALESCE(c.backoff_cap, 3600)           AS backoff_cap,
       COALESCE(c.backoff_jitter, 'none')      AS backoff_jitter,
       c.dead_letter_queue::text               AS dead_letter_queue,
       c.default_vt,
       c.archive_retention,
       COALESCE(c.keep_history, false)         AS keep_history,
       c.max_message_size,
       COALESCE(c.paused, false)               AS paused,
       COALESCE(c.idempotency_window, interval '24 hours') AS idempotency_window,
       c.priority_aging,
       c.breaker_threshold,
       COALESCE(c.breaker_window, interval '1 minute')    AS breaker_window,
       COALESCE(c.breaker_min_outcomes, 10)                AS breaker_min_outcomes,
       COALESCE(c.breaker_cooldown, interval '30 seconds') AS breaker_cooldown
FROM pgmq.meta m
LEFT JOIN pgmq.queue_config c ON c.queue_name = m.queue_name;
COMMENT ON VIEW pgmq.queue_options IS
  'Every queue''s job options, defaults filled in; max_attempts NULL is unlimited, priority_aging NULL is no priorities, breaker_threshold NULL is no circuit breaker.';

-- set_queue_options and reset_queue_options learn the new options. pause_queue
-- and resume_queue call set_queue_options by name (SQL bodies are not
-- dependencies), so they keep working across the drop.
DROP FUNCTION pgmq.set_queue_options(text, integer, double precision, double precision, text, text,
                                     integer, interval, boolean, integer, boolean);
DROP FUNCTION pgmq.reset_queue_options(text, text[]);

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
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name  varchar;
    v_dlq   varchar;
    v_row   pgmq.queue_options;
    v_aging interval;
BEGIN
    -- One change at a time, so two changes cannot close a dead-letter cycle together.
    LOCK TABLE pgmq.queue_config IN SHARE ROW EXCLUSIVE MODE;
    v_name := pgmq.registered_queue_name(set_queue_options.queue_name);

    IF set_queue_options.max_attempts NOT BETWEEN 1 AND 1000000 THEN
        RAISE EXCEPTION 'max_attempts must be from 1 to 1000000, got %', set_queue_options.max_attempts
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For unlimited attempts, reset it: pgmq.reset_queue_options(queue_name, ARRAY[''max_attempts'']).';
    END IF;
    IF NOT (set_queue_options.backoff_base > 0 AND set_queue_options.backoff_base <= 2592000) THEN
        RAISE EXCEPTION 'backoff_base must be seconds above 0 and at most 2592000 (30 days), got %',
                        set_queue_options.backoff_base
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT (set_queue_options.backoff_cap > 0 AND set_queue_options.backoff_cap <= 2592000) THEN
        RAISE EXCEPTION 'backoff_cap must be seconds above 0 and at most 2592000 (30 days), got %',
                        set_queue_options.backoff_cap
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF set_queue_options.backoff_jitter NOT IN ('none', 'full', 'equal') THEN
        RAISE EXCEPTION 'backoff_jitter must be none, full or equal, got "%"', set_queue_options.backoff_jitter
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF set_queue_options.default_vt NOT BETWEEN 0 AND 31536000 THEN
        RAISE EXCEPTION 'default_vt must be seconds from 0 to 31536000 (a year), got %', set_queue_options.default_vt
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF set_queue_options.archive_retention <= interval '0' THEN
        RAISE EXCEPTION 'archive_retention must be a positive interval, got %', set_queue_options.archive_retention
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF set_queue_options.max_message_size <= 0 THEN
        RAISE EXCEPTION 'max_message_size must be a positive number of bytes, got %', set_queue_options.max_message_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF NOT (set_queue_options.idempotency_window > interval '0'
            AND set_queue_options.idempotency_window <= interval '365 days') THEN
        RAISE EXCEPTION 'idempotency_window must be above 0 and at most 365 days, got %',
                        set_queue_options.idempotency_window
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT (set_queue_options.priority_aging >= interval '1 millisecond'
            AND set_queue_options.priority_aging <= interval '1 day') THEN
        RAISE EXCEPTION 'priority_aging must be from 1 millisecond to 1 day, got %', set_queue_options.priority_aging
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT (set_queue_options.breaker_threshold > 0 AND set_queue_options.breaker_threshold <= 1) THEN
        RAISE EXCEPTION 'breaker_threshold must be a share of nacks above 0 and at most 1, got %',
                        set_queue_options.breaker_threshold
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT (set_queue_options.breaker_window >= interval '1 second'
            AND set_queue_options.breaker_window <= interval '1 day') THEN
        RAISE EXCEPTION 'breaker_window must be from 1 second to 1 day, got %', set_queue_options.breaker_window
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF set_queue_options.breaker_min_outcomes NOT BETWEEN 1 AND 1000000 THEN
        RAISE EXCEPTION 'breaker_min_outcomes must be from 1 to 1000000, got %', set_queue_options.breaker_min_outcomes
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT (set_queue_options.breaker_cooldown >= interval '1 second'
            AND set_queue_options.breaker_cooldown <= interval '1 day') THEN
        RAISE EXCEPTION 'breaker_cooldown must be from 1 second to 1 day, got %', set_queue_options.breaker_cooldown
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF set_queue_options.dead_letter_queue IS NOT NULL THEN
        SELECT m.queue_name INTO v_dlq
        FROM pgmq.meta m
        WHERE lower(m.queue_name) = lower(set_queue_options.dead_letter_queue);
        IF v_dlq IS NULL THEN
            RAISE EXCEPTION 'dead-letter queue "%" does not exist', set_queue_options.dead_letter_queue
                USING ERRCODE = 'undefined_table', HINT = 'Create it with pgmq.create() first.';
        END IF;
        IF v_dlq = v_name THEN
            RAISE EXCEPTION 'queue "%" cannot be its own dead-letter queue', v_name
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        -- A cycle of dead-letter queues is refused by the table's trigger, which reads
        -- with the latest snapshot (the LOCK above makes that include every change).
    END IF;

    SELECT c.priority_aging INTO v_aging FROM pgmq.queue_config c WHERE c.queue_name = v_name;

    INSERT INTO pgmq.queue_config AS c
        (queue_name, max_attempts, backoff_base, backoff_cap, backoff_jitter, dead_letter_queue,
         default_vt, archive_retention, keep_history, max_message_size, paused,
         idempotency_window, priority_aging, breaker_threshold, breaker_window,
         breaker_min_outcomes, breaker_cooldown)
    VALUES (v_name, set_queue_options.max_attempts, set_queue_options.backoff_base,
            set_queue_options.backoff_cap, set_queue_options.backoff_jitter, v_dlq,
            set_queue_options.default_vt, set_queue_options.archive_retention,
            set_queue_options.keep_history, set_queue_options.max_message_size,
            set_queue_options.paused, set_queue_options.idempotency_window,
            set_queue_options.priority_aging, set_queue_options.breaker_threshold,
            set_queue_options.breaker_window, set_queue_options.breaker_min_outcomes,
            set_queue_options.breaker_cooldown)
    ON CONFLICT ON CONSTRAINT queue_config_pkey DO UPDATE SET
        max_attempts      = COALESCE(EXCLUDED.max_attempts, c.max_attempts),
        backoff_base      = COALESCE(EXCLUDED.backoff_base, c.backoff_base),
        backoff_cap       = COALESCE(EXCLUDED.backoff_cap, c.backoff_cap),
        backoff_jitter    = COALESCE(EXCLUDED.backoff_jitter, c.backoff_jitter),
        dead_letter_queue = COALESCE(EXCLUDED.dead_letter_queue, c.dead_letter_queue),
        default_vt        = COALESCE(EXCLUDED.default_vt, c.default_vt),
        archive_retention = COALESCE(EXCLUDED.archive_retention, c.archive_retention),
        keep_history      = COALESCE(EXCLUDED.keep_history, c.keep_history),
        max_message_size  = COALESCE(EXCLUDED.max_message_size, c.max_message_size),
        paused            = COALESCE(EXCLUDED.paused, c.paused),
        idempotency_window = COALESCE(EXCLUDED.idempotency_window, c.idempotency_window),
        priority_aging    = COALESCE(EXCLUDED.priority_aging, c.priority_aging),
        breaker_threshold = COALESCE(EXCLUDED.breaker_threshold, c.breaker_threshold),
        breaker_window    = COALESCE(EXCLUDED.breaker_window, c.breaker_window),
        breaker_min_outcomes = COALESCE(EXCLUDED.breaker_min_outcomes, c.breaker_min_outcomes),
        breaker_cooldown  = COALESCE(EXCLUDED.breaker_cooldown, c.breaker_cooldown);

    IF set_queue_options.priority_aging IS DISTINCT FROM v_aging
       AND set_queue_options.priority_aging IS NOT NULL THEN
        PERFORM pgmq._sync_priority_index(v_name);
    END IF;

    SELECT * INTO v_row FROM pgmq.queue_options o WHERE o.queue_name = v_name;
    RETURN v_row;
END;
$$;
COMMENT ON FUNCTION pgmq.set_queue_options(text, integer, double precision, double precision, text, text,
                                           integer, interval, boolean, integer, boolean, interval,
                                           interval, double precision, interval, integer, interval) IS
  'Sets the named job options of a queue (arguments left NULL keep their value); returns the queue''s options.';

CREATE FUNCTION pgmq.reset_queue_options(queue_name text, options text[] DEFAULT NULL)
RETURNS pgmq.queue_options
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_known CONSTANT text[] := ARRAY['max_attempts', 'backoff_base', 'backoff_cap', 'backoff_jitter',
                                     'dead_letter_queue', 'default_vt', 'archive_retention',
                                     'keep_history', 'max_message_size', 'paused',
                                     'idempotency_window', 'priority_aging', 'breaker_threshold',
                                     'breaker_window', 'breaker_min_outcomes', 'breaker_cooldown'];
    v_name  varchar;
    v_bad   text;
    v_row   pgmq.queue_options;
    v_aging interval;
BEGIN
    LOCK TABLE pgmq.queue_config IN SHARE ROW EXCLUSIVE MODE;
    v_name := pgmq.registered_queue_name(reset_queue_options.queue_name);
    SELECT c.priority_aging INTO v_aging FROM pgmq.queue_config c WHERE c.queue_name = v_name;
    IF reset_queue_options.options IS NULL THEN
        DELETE FROM pgmq.queue_config c WHERE c.queue_name = v_name;
    ELSE
        SELECT o INTO v_bad FROM unnest(reset_queue_options.options) o
        WHERE o IS NULL OR o <> ALL (v_known) LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'unknown queue option "%"', v_bad
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Options are: ' || array_to_string(v_known, ', ') || '.';
        END IF;
        UPDATE pgmq.queue_config c SET
            max_attempts      = CASE WHEN 'max_attempts' = ANY (reset_queue_options.options) THEN NULL ELSE c.max_attempts END,
            backoff_base      = CASE WHEN 'backoff_base' = ANY (reset_queue_options.options) THEN NULL ELSE c.backoff_base END,
            backoff_cap       = CASE WHEN 'backoff_cap' = ANY (reset_queue_options.options) THEN NULL ELSE c.backoff_cap END,
            backoff_jitter    = CASE WHEN 'backoff_jitter' = ANY (reset_queue_options.options) THEN NULL ELSE c.backoff_jitter END,
            dead_letter_queue = CASE WHEN 'dead_letter_queue' = ANY (reset_queue_options.options) THEN NULL ELSE c.dead_letter_queue END,
            default_vt        = CASE WHEN 'default_vt' = ANY (reset_queue_options.options) THEN NULL ELSE c.default_vt END,
            archive_retention = CASE WHEN 'archive_retention' = ANY (reset_queue_options.options) THEN NULL ELSE c.archive_retention END,
            keep_history      = CASE WHEN 'keep_history' = ANY (reset_queue_options.options) THEN NULL ELSE c.keep_history END,
            max_message_size  = CASE WHEN 'max_message_size' = ANY (reset_queue_options.options) THEN NULL ELSE c.max_message_size END,
            paused            = CASE WHEN 'paused' = ANY (reset_queue_options.options) THEN NULL ELSE c.paused END,
            idempotency_window = CASE WHEN 'idempotency_window' = ANY (reset_queue_options.options) THEN NULL ELSE c.idempotency_window END,
            priority_aging    = CASE WHEN 'priority_aging' = ANY (reset_queue_options.options) THEN NULL ELSE c.priority_aging END,
            breaker_threshold = CASE WHEN 'breaker_threshold' = ANY (reset_queue_options.options) THEN NULL ELSE c.breaker_threshold END,
            breaker_window    = CASE WHEN 'breaker_window' = ANY (reset_queue_options.options) THEN NULL ELSE c.breaker_window END,
            breaker_min_outcomes = CASE WHEN 'breaker_min_outcomes' = ANY (reset_queue_options.options) THEN NULL ELSE c.breaker_min_outcomes END,
            breaker_cooldown  = CASE WHEN 'breaker_cooldown' = ANY (reset_queue_options.options) THEN NULL ELSE c.breaker_cooldown END
        WHERE c.queue_name = v_name;
    END IF;
    IF v_aging IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM pgmq.queue_config c WHERE c.queue_name = v_name AND c.priority_aging IS NOT NULL) THEN
        PERFORM pgmq._sync_priority_index(v_name);
    END IF;
    -- A breaker turned off forgets its state; turned on again, it starts closed.
    DELETE FROM pgmq.breaker_state b
    WHERE b.queue_name = v_name
      AND NOT EXISTS (SELECT 1 FROM pgmq.queue_config c
                      WHERE c.queue_name = v_name AND c.breaker_threshold IS NOT NULL);
    SELECT * INTO v_row FROM pgmq.queue_options o WHERE o.queue_name = v_name;
    RETURN v_row;
END;
$$;
COMMENT ON FUNCTION pgmq.reset_queue_options(text, text[]) IS
  'Puts the named options of a queue (NULL: all of them) back to their defaults; returns the queue''s options.';

-- A message's place in a queue that uses priorities: its enqueue time
-- (microseconds since 2000-01-01) moved earlier by priority * aging; smaller
-- is read first (src/priority.c has the whole rule).
CREATE FUNCTION pgmq.message_rank(enqueued_at timestamptz, headers jsonb, aging_us bigint)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'queue_ext_message_rank' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION pgmq.message_rank(timestamptz, jsonb, bigint) IS
  'Read order in a queue with priorities: enqueued_at minus x-queue-ext-priority times aging_us, in microseconds; smaller is read first.';

-- A message's priority level, 0 when it has none (or a malformed one, which
-- only a direct INSERT can store). Immutable: each queue with priorities
-- indexes it (q_<name>_priority_idx on (pgmq.message_priority(headers), msg_id)).
CREATE FUNCTION pgmq.message_priority(headers jsonb)
    RETURNS integer
    AS 'MODULE_PATHNAME', 'queue_ext_message_priority' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION pgmq.message_priority(jsonb) IS
  'The x-queue-ext-priority of a message''s headers, 0 to 9; 0 when absent or malformed.';

-- Makes or drops a queue's priority index to match its priority_aging.
CREATE FUNCTION pgmq._sync_priority_index(queue_name text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET client_min_messages = warning
AS $$
DECLARE
    v_name  varchar := pgmq.registered_queue_name(queue_name);
    v_table text := pgmq.format_table_name(v_name, 'q');
BEGIN
    IF EXISTS (SELECT 1 FROM pgmq.queue_config c WHERE c.queue_name = v_name AND c.priority_aging IS NOT NULL) THEN
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (pgmq.message_priority(headers), msg_id)',
                       v_table || '_priority_idx', v_table);
    ELSE
        EXECUTE format('DROP INDEX IF EXISTS pgmq.%I', v_table || '_priority_idx');
    END IF;
END;
$$;
COMMENT ON FUNCTION pgmq._sync_priority_index(text) IS
  'Makes the queue''s priority index when it has priority_aging, drops it when it has not.';

-- Idempotency keys: the first msg_id a key was sent as, per queue, until it expires.
-- Keys compare as bytes (COLLATE "C"): they are identifiers, and equality is
-- all that matters; the database's collation would only make every lookup
-- slower.
CREATE TABLE pgmq.idempotency_keys (
    queue_name      varchar COLLATE "C" NOT NULL,
    idempotency_key text    COLLATE "C" NOT NULL,
    msg_id          bigint      NOT NULL,
    expires_at      timestamptz NOT NULL,
    PRIMARY KEY (queue_name, idempotency_key)
);
CREATE INDEX idempotency_keys_expires_at_idx ON pgmq.idempotency_keys (expires_at);
COMMENT ON TABLE pgmq.idempotency_keys IS
  'Idempotency keys sent within their queue''s window: a send with a live key enqueues nothing and returns msg_id. Expired rows are ignored, and removed by maintenance.';
SELECT pg_catalog.pg_extension_config_dump('pgmq.idempotency_keys', '');

-- The maintenance hook for expired keys: deletes up to batch_size of them,
-- oldest first, skipping rows a send is re-claiming; returns how many it
-- deleted. The maintenance procedure (a later release) calls it until it
-- returns less than batch_size.
CREATE FUNCTION pgmq.expire_idempotency_keys(batch_size integer DEFAULT 10000) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_deleted bigint;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be a positive number of keys, got %', batch_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM pgmq.idempotency_keys k
    WHERE k.ctid = ANY (ARRAY(
        SELECT e.ctid FROM pgmq.idempotency_keys e
        WHERE e.expires_at <= clock_timestamp()
        ORDER BY e.expires_at
        LIMIT batch_size
        FOR UPDATE SKIP LOCKED))
      AND k.expires_at <= clock_timestamp();
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END;
$$;
COMMENT ON FUNCTION pgmq.expire_idempotency_keys(integer) IS
  'Deletes up to batch_size expired idempotency keys (oldest first); returns how many. Maintenance calls it.';

------------------------------------------------------------------------------
-- Circuit breaker
------------------------------------------------------------------------------

-- Runtime state of the breakers of queues that set breaker_threshold (see
-- src/breaker.c). Unlogged and not dumped: after a crash or a restore every
-- breaker starts closed.
CREATE UNLOGGED TABLE pgmq.breaker_state (
    queue_name        varchar     PRIMARY KEY,
    state             text        NOT NULL DEFAULT 'closed'
        CHECK (state IN ('closed', 'open', 'half_open')),
    window_started_at timestamptz NOT NULL,
    acks              bigint      NOT NULL DEFAULT 0,
    nacks             bigint      NOT NULL DEFAULT 0,
    prev_acks         bigint      NOT NULL DEFAULT 0,
    prev_nacks        bigint      NOT NULL DEFAULT 0,
    opened_at         timestamptz,
    trial_until       timestamptz,
    trial_msg_id      bigint,
    trips             bigint      NOT NULL DEFAULT 0
);
COMMENT ON TABLE pgmq.breaker_state IS
  'Circuit breaker state per queue (written by ack and nack, read through pgmq.circuit_breakers).';

CREATE VIEW pgmq.circuit_breakers AS
SELECT o.queue_name,
       CASE WHEN b.state = 'open' AND b.opened_at + o.breaker_cooldown <= clock_timestamp()
            THEN 'half_open'
            ELSE COALESCE(b.state, 'closed') END AS state,
       o.breaker_threshold                      AS threshold,
       w.acks                                   AS window_acks,
       w.nacks                                  AS window_nacks,
       CASE WHEN w.acks + w.nacks > 0 THEN w.nacks / (w.acks + w.nacks) END AS nack_share,
       b.opened_at,
       CASE WHEN b.state = 'open' THEN b.opened_at + o.breaker_cooldown END AS trial_from,
       b.trial_until,
       b.trial_msg_id,
       COALESCE(b.trips, 0)                     AS trips
FROM pgmq.queue_options o
LEFT JOIN pgmq.breaker_state b ON b.queue_name = o.queue_name
-- The sliding window as src/breaker.c counts it: e windows have passed since
-- the stored window began; the previous window is weighted by its overlap.
CROSS JOIN LATERAL (
    SELECT extract(epoch FROM clock_timestamp() - b.window_started_at)::double precision
           / extract(epoch FROM o.breaker_window)::double precision AS e
) age
CROSS JOIN LATERAL (
    SELECT COALESCE(CASE WHEN age.e < 1 THEN b.acks + b.prev_acks * (1 - age.e)
                         WHEN age.e < 2 THEN b.acks * (2 - age.e)
                         ELSE 0 END, 0)::double precision AS acks,
           COALESCE(CASE WHEN age.e < 1 THEN b.nacks + b.prev_nacks * (1 - age.e)
                         WHEN age.e < 2 THEN b.nacks * (2 - age.e)
                         ELSE 0 END, 0)::double precision AS nacks
) w
WHERE o.breaker_threshold IS NOT NULL;
COMMENT ON VIEW pgmq.circuit_breakers IS
  'The circuit breaker of every queue that has one: its state, the acks and nacks of its sliding window, when it opened, when it tries again and the trial message.';
