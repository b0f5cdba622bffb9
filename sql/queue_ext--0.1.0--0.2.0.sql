-- queue_ext 0.1.0 -> 0.2.0: reliable jobs.
-- Queue options, fenced ack and nack with retries and backoff, dead letters
-- and redrive, pause and resume, cancel, progress, outcomes and job lookup.
-- Nothing here changes a pgmq function or table: a queue without options
-- behaves exactly as before. CREATE EXTENSION runs 0.1.0 and then this file.

\echo Use "ALTER EXTENSION queue_ext UPDATE TO '0.2.0'" to load this file. \quit

------------------------------------------------------------------------------
-- Queue options
------------------------------------------------------------------------------

-- One row per queue that sets an option; NULL means the default. The bounds
-- are those options.c applies to the per-message header overrides.
CREATE TABLE pgmq.queue_config (
    queue_name        varchar PRIMARY KEY
        REFERENCES pgmq.meta (queue_name) ON DELETE CASCADE,
    max_attempts      integer CHECK (max_attempts BETWEEN 1 AND 1000000),
    backoff_base      double precision CHECK (backoff_base > 0 AND backoff_base <= 2592000),
    backoff_cap       double precision CHECK (backoff_cap > 0 AND backoff_cap <= 2592000),
    backoff_jitter    text CHECK (backoff_jitter IN ('none', 'full', 'equal')),
    dead_letter_queue varchar REFERENCES pgmq.meta (queue_name),
    default_vt        integer CHECK (default_vt BETWEEN 0 AND 31536000),
    archive_retention interval CHECK (archive_retention > interval '0'),
    keep_history      boolean,
    max_message_size  integer CHECK (max_message_size > 0),
    paused            boolean,
    CHECK (dead_letter_queue <> queue_name)
);
COMMENT ON TABLE pgmq.queue_config IS
  'Job options a queue sets (NULL: the default). Change them with pgmq.set_queue_options(); read them in pgmq.queue_options.';
SELECT pg_catalog.pg_extension_config_dump('pgmq.queue_config', '');

-- Every backend caches a queue's options; a change invalidates them everywhere.
CREATE FUNCTION pgmq.queue_config_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'queue_ext_queue_config_changed' LANGUAGE C;
CREATE TRIGGER queue_config_changed
    AFTER INSERT OR UPDATE OR DELETE ON pgmq.queue_config
    FOR EACH ROW EXECUTE FUNCTION pgmq.queue_config_changed();
CREATE TRIGGER queue_config_truncated
    AFTER TRUNCATE ON pgmq.queue_config
    FOR EACH STATEMENT EXECUTE FUNCTION pgmq.queue_config_changed();
COMMENT ON FUNCTION pgmq.queue_config_changed() IS
  'Trigger on pgmq.queue_config: makes every backend re-read the changed queue''s options.';

CREATE VIEW pgmq.queue_options AS
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
       COALESCE(c.paused, false)               AS paused
FROM pgmq.meta m
LEFT JOIN pgmq.queue_config c ON c.queue_name = m.queue_name;
COMMENT ON VIEW pgmq.queue_options IS
  'Every queue''s job options, defaults filled in; max_attempts NULL is unlimited.';

-- The queue registered under a name (any spelling), or 42P01.
CREATE FUNCTION pgmq.registered_queue_name(queue_name text) RETURNS varchar
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name varchar;
BEGIN
    IF registered_queue_name.queue_name IS NULL THEN
        RAISE EXCEPTION 'queue name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- The name rules every entry point applies: 42602 for characters, 42622 for length.
    PERFORM pgmq.format_table_name(registered_queue_name.queue_name, 'q');
    PERFORM pgmq.validate_queue_name(registered_queue_name.queue_name);
    SELECT m.queue_name INTO v_name
    FROM pgmq.meta m
    WHERE lower(m.queue_name) = lower(registered_queue_name.queue_name);
    IF v_name IS NULL THEN
        RAISE EXCEPTION 'queue "%" does not exist', queue_name
            USING ERRCODE = 'undefined_table', HINT = 'Create it with pgmq.create().';
    END IF;
    RETURN v_name;
END;
$$;
COMMENT ON FUNCTION pgmq.registered_queue_name(text) IS
  'The name a queue is registered under, for any spelling of it; raises 42P01 for an unknown queue.';

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
    paused            boolean          DEFAULT NULL)
RETURNS pgmq.queue_options
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name  varchar;
    v_dlq   varchar;
    v_row   pgmq.queue_options;
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

    INSERT INTO pgmq.queue_config AS c
        (queue_name, max_attempts, backoff_base, backoff_cap, backoff_jitter, dead_letter_queue,
         default_vt, archive_retention, keep_history, max_message_size, paused)
    VALUES (v_name, set_queue_options.max_attempts, set_queue_options.backoff_base,
            set_queue_options.backoff_cap, set_queue_options.backoff_jitter, v_dlq,
            set_queue_options.default_vt, set_queue_options.archive_retention,
            set_queue_options.keep_history, set_queue_options.max_message_size,
            set_queue_options.paused)
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
        paused            = COALESCE(EXCLUDED.paused, c.paused);

    SELECT * INTO v_row FROM pgmq.queue_options o WHERE o.queue_name = v_name;
    RETURN v_row;
END;
$$;
COMMENT ON FUNCTION pgmq.set_queue_options(text, integer, double precision, double precision, text, text,
                                           integer, interval, boolean, integer, boolean) IS
  'Sets the named job options of a queue (arguments left NULL keep their value); returns the queue''s options.';

CREATE FUNCTION pgmq.reset_queue_options(queue_name text, options text[] DEFAULT NULL)
RETURNS pgmq.queue_options
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_known CONSTANT text[] := ARRAY['max_attempts', 'backoff_base', 'backoff_cap', 'backoff_jitter',
                                     'dead_letter_queue', 'default_vt', 'archive_retention',
                                     'keep_history', 'max_message_size', 'paused'];
    v_name  varchar;
    v_bad   text;
    v_row   pgmq.queue_options;
BEGIN
    LOCK TABLE pgmq.queue_config IN SHARE ROW EXCLUSIVE MODE;
    v_name := pgmq.registered_queue_name(reset_queue_options.queue_name);
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
            paused            = CASE WHEN 'paused' = ANY (reset_queue_options.options) THEN NULL ELSE c.paused END
        WHERE c.queue_name = v_name;
    END IF;
    SELECT * INTO v_row FROM pgmq.queue_options o WHERE o.queue_name = v_name;
    RETURN v_row;
END;
$$;
COMMENT ON FUNCTION pgmq.reset_queue_options(text, text[]) IS
  'Puts the named options of a queue (NULL: all of them) back to their defaults; returns the queue''s options.';

CREATE FUNCTION pgmq.pause_queue(queue_name text) RETURNS void
    LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$ SELECT FROM pgmq.set_queue_options(queue_name, paused => true) $$;
COMMENT ON FUNCTION pgmq.pause_queue(text) IS
  'Pauses a queue: sends are accepted, reads and pops return nothing until resume_queue.';

CREATE FUNCTION pgmq.resume_queue(queue_name text) RETURNS void
    LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$ SELECT FROM pgmq.set_queue_options(queue_name, paused => false) $$;
COMMENT ON FUNCTION pgmq.resume_queue(text) IS 'Lets a paused queue deliver again.';

------------------------------------------------------------------------------
-- Jobs: fenced ack and nack, dead letters, cancel, progress
------------------------------------------------------------------------------

CREATE FUNCTION pgmq.ack(queue_name text, msg_id bigint, read_ct integer, result jsonb DEFAULT NULL)
    RETURNS boolean
    AS 'MODULE_PATHNAME', 'queue_ext_ack' LANGUAGE C;
COMMENT ON FUNCTION pgmq.ack(text, bigint, integer, jsonb) IS
  'Finishes the delivery read returned with this read_ct: deletes it (archives it with its result when the queue keeps history); false for a stale receipt.';

CREATE FUNCTION pgmq.ack_batch(queue_name text, msg_ids bigint[], read_cts integer[], result jsonb DEFAULT NULL)
    RETURNS SETOF bigint
    AS 'MODULE_PATHNAME', 'queue_ext_ack_batch' LANGUAGE C;
COMMENT ON FUNCTION pgmq.ack_batch(text, bigint[], integer[], jsonb) IS
  'ack for many deliveries (read_cts in the order of msg_ids); returns the ids acked.';

CREATE FUNCTION pgmq.nack(queue_name text, msg_id bigint, read_ct integer, error text DEFAULT NULL)
    RETURNS boolean
    AS 'MODULE_PATHNAME', 'queue_ext_nack' LANGUAGE C;
COMMENT ON FUNCTION pgmq.nack(text, bigint, integer, text) IS
  'Gives a delivery back to be retried after the backoff, or dead-letters it after its last attempt; false for a stale receipt.';

CREATE FUNCTION pgmq.nack_batch(queue_name text, msg_ids bigint[], read_cts integer[], error text DEFAULT NULL)
    RETURNS SETOF bigint
    AS 'MODULE_PATHNAME', 'queue_ext_nack_batch' LANGUAGE C;
COMMENT ON FUNCTION pgmq.nack_batch(text, bigint[], integer[], text) IS
  'nack for many deliveries (read_cts in the order of msg_ids); returns the ids nacked.';

CREATE FUNCTION pgmq.cancel(queue_name text, msg_id bigint) RETURNS boolean
    AS 'MODULE_PATHNAME', 'queue_ext_cancel' LANGUAGE C;
COMMENT ON FUNCTION pgmq.cancel(text, bigint) IS
  'Removes a message no worker holds (archived as cancelled when the queue keeps history); false otherwise.';

CREATE FUNCTION pgmq.progress(queue_name text, msg_id bigint, read_ct integer,
                              progress jsonb DEFAULT NULL, vt integer DEFAULT NULL)
    RETURNS boolean
    AS 'MODULE_PATHNAME', 'queue_ext_progress' LANGUAGE C;
COMMENT ON FUNCTION pgmq.progress(text, bigint, integer, jsonb, integer) IS
  'Records progress on a held delivery and/or extends its lease to vt seconds from now; false for a stale receipt.';

CREATE FUNCTION pgmq.redrive(queue_name text, msg_ids bigint[] DEFAULT NULL, to_queue text DEFAULT NULL)
    RETURNS TABLE (dead_msg_id bigint, sent_to text, msg_id bigint)
    AS 'MODULE_PATHNAME', 'queue_ext_redrive' LANGUAGE C;
COMMENT ON FUNCTION pgmq.redrive(text, bigint[], text) IS
  'Sends the dead letters a queue holds (NULL msg_ids: all) back to the queues they came from, or to to_queue.';

------------------------------------------------------------------------------
-- Where a job is: lookup and counts per state
------------------------------------------------------------------------------

-- The state of a message in its queue table at a given time (see README, "Job states").
CREATE FUNCTION pgmq.message_state(vt timestamp with time zone, read_ct integer, headers jsonb,
                                   at timestamp with time zone)
    RETURNS text
    LANGUAGE sql IMMUTABLE
AS $$
    SELECT CASE
        WHEN vt IS NULL OR read_ct IS NULL OR at IS NULL THEN NULL
        WHEN vt <= at THEN 'waiting'
        WHEN read_ct = 0 THEN 'delayed'
        WHEN (headers -> 'x-queue-ext-nacked') = pg_catalog.to_jsonb(read_ct) THEN 'retrying'
        ELSE 'in_flight'
    END
$$;
COMMENT ON FUNCTION pgmq.message_state(timestamp with time zone, integer, jsonb, timestamp with time zone) IS
  'waiting, delayed, retrying or in_flight: the state of a queued message at a time.';

CREATE FUNCTION pgmq.find_job(queue_name text, msg_id bigint)
    RETURNS TABLE (state text, found_in text, found_msg_id bigint, read_ct integer,
                   enqueued_at timestamp with time zone, last_read_at timestamp with time zone,
                   vt timestamp with time zone, finished_at timestamp with time zone,
                   message jsonb, headers jsonb, last_error text, progress jsonb, result jsonb)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name varchar := pgmq.registered_queue_name(find_job.queue_name);
    v_dlq  varchar;
BEGIN
    -- Queued: waiting, delayed, in flight or retrying.
    RETURN QUERY EXECUTE format(
        'SELECT pgmq.message_state(m.vt, m.read_ct, m.headers, pg_catalog.clock_timestamp()), $1::text,'
        ' m.msg_id, m.read_ct, m.enqueued_at, m.last_read_at, m.vt, NULL::timestamptz, m.message, m.headers,'
        ' m.headers -> ''x-queue-ext-errors'' -> -1 ->> ''error'', m.headers -> ''x-queue-ext-progress'', NULL::jsonb'
        ' FROM pgmq.%I m WHERE m.msg_id = $2',
        pgmq.format_table_name(v_name, 'q')) USING v_name, find_job.msg_id;
    IF FOUND THEN RETURN; END IF;

    -- Finished: its outcome (completed, cancelled, dead), or archived by pgmq.archive.
    RETURN QUERY EXECUTE format(
        'SELECT COALESCE(a.headers -> ''x-queue-ext-outcome'' ->> ''state'', ''archived''), $1::text,'
        ' a.msg_id, a.read_ct, a.enqueued_at, a.last_read_at, a.vt, a.archived_at, a.message, a.headers,'
        ' a.headers -> ''x-queue-ext-errors'' -> -1 ->> ''error'', a.headers -> ''x-queue-ext-progress'','
        ' a.headers -> ''x-queue-ext-outcome'' -> ''result'''
        ' FROM pgmq.%I a WHERE a.msg_id = $2',
        pgmq.format_table_name(v_name, 'a')) USING v_name, find_job.msg_id;
    IF FOUND THEN RETURN; END IF;

    -- Dead, in the queue's dead-letter queue (under a new msg_id there).
    SELECT c.dead_letter_queue INTO v_dlq FROM pgmq.queue_config c WHERE c.queue_name = v_name;
    IF v_dlq IS NOT NULL THEN
        RETURN QUERY EXECUTE format(
            'SELECT ''dead''::text, $3::text, d.msg_id, (d.headers -> ''x-queue-ext-dead-letter'' ->> ''attempts'')::int,'
            ' d.enqueued_at, d.last_read_at, d.vt, (d.headers -> ''x-queue-ext-dead-letter'' ->> ''dead_at'')::timestamptz,'
            ' d.message, d.headers, d.headers -> ''x-queue-ext-errors'' -> -1 ->> ''error'','
            ' d.headers -> ''x-queue-ext-progress'', NULL::jsonb'
            ' FROM pgmq.%I d'
            ' WHERE d.headers -> ''x-queue-ext-dead-letter'' ->> ''queue'' = $1'
            ' AND d.headers -> ''x-queue-ext-dead-letter'' -> ''msg_id'' = pg_catalog.to_jsonb($2)',
            pgmq.format_table_name(v_dlq, 'q')) USING v_name, find_job.msg_id, v_dlq;
    END IF;
END;
$$;
COMMENT ON FUNCTION pgmq.find_job(text, bigint) IS
  'Where a job is and how it stands: queued (waiting, delayed, in_flight, retrying), finished (completed, cancelled, dead, archived) or dead in the dead-letter queue.';

CREATE FUNCTION pgmq.job_state_counts()
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
COMMENT ON FUNCTION pgmq.job_state_counts() IS
  'Messages per state per queue; scans every queue and archive table (see pgmq.job_counts).';

CREATE VIEW pgmq.job_counts AS SELECT * FROM pgmq.job_state_counts();
COMMENT ON VIEW pgmq.job_counts IS
  'Per queue: waiting, delayed, in_flight, retrying, completed, cancelled, dead (in its archive and its dead-letter queue), archived.';
