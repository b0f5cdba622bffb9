-- queue_ext 0.5.0 -> 0.6.0: queue stats that do not count rows.
-- pgmq.queue_stats and pgmq.tenant_stats read depth from gauges kept at
-- commit in shared memory (src/gauges.c) and the state split of large queues
-- from maintenance's census (src/queue_stats.c); see README, "Metrics".
\echo Use "ALTER EXTENSION queue_ext UPDATE TO '0.6.0'" to load this file. \quit

-- The state split of queues too large to count on every look.
CREATE UNLOGGED TABLE pgmq.queue_census (
    queue_name varchar PRIMARY KEY REFERENCES pgmq.meta (queue_name) ON DELETE CASCADE,
    counted_at timestamp with time zone NOT NULL,
    visible    bigint NOT NULL,
    in_flight  bigint NOT NULL,
    delayed    bigint NOT NULL,
    retrying   bigint NOT NULL,
    stale      bigint NOT NULL
);
COMMENT ON TABLE pgmq.queue_census IS
  'Messages per state of each queue holding more than 10 000, as maintenance last counted them; pgmq.queue_stats shows them with counted_at.';
-- No policy: nobody but the owner reads it; pgmq.queue_stats shows each caller its own queues.
ALTER TABLE pgmq.queue_census ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON pgmq.queue_census FROM PUBLIC, pg_monitor;

CREATE FUNCTION pgmq._queue_stats()
    RETURNS TABLE (queue_name text, depth bigint, visible bigint, in_flight bigint, delayed bigint,
                   retrying bigint, stale bigint, dead_lettered bigint, archived bigint,
                   oldest_msg_age_sec integer, newest_msg_age_sec integer, depth_from text,
                   states_at timestamp with time zone, scrape_time timestamp with time zone)
    AS 'MODULE_PATHNAME', 'queue_ext_queue_stats' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION pgmq._queue_stats() IS
  'The rows of pgmq.queue_stats.';

CREATE VIEW pgmq.queue_stats AS SELECT * FROM pgmq._queue_stats();
COMMENT ON VIEW pgmq.queue_stats IS
  'Per queue the caller may see: depth (from the gauge kept at commit, or counted when depth_from = ''count''), messages visible, in flight, delayed, retrying and enqueued over an hour ago (stale), counted at states_at (now for queues of at most 10 000 messages, the last census otherwise), the depth of its dead-letter queue, its archived rows, and the age of its oldest and newest message.';

CREATE VIEW pgmq.tenant_stats WITH (security_invoker = true) AS
SELECT t.slug AS tenant, count(*)::bigint AS queues,
       sum(s.depth)::bigint AS depth, sum(s.visible)::bigint AS visible,
       sum(s.in_flight)::bigint AS in_flight, sum(s.delayed)::bigint AS delayed,
       sum(s.retrying)::bigint AS retrying, sum(s.stale)::bigint AS stale,
       sum(s.archived)::bigint AS archived, max(s.oldest_msg_age_sec) AS oldest_msg_age_sec
FROM pgmq._queue_stats() s
LEFT JOIN pgmq.queue_tenants q ON lower(q.queue_name) = lower(s.queue_name)
LEFT JOIN pgmq.tenants t ON t.tenant_id = q.tenant_id
GROUP BY t.slug;
COMMENT ON VIEW pgmq.tenant_stats IS
  'pgmq.queue_stats summed per tenant (NULL: the operators'' queues), over the queues the caller may see.';

GRANT SELECT ON pgmq.queue_stats, pgmq.tenant_stats TO PUBLIC;

CREATE FUNCTION pgmq._census_queue(queue_name text) RETURNS bigint
    AS 'MODULE_PATHNAME', 'queue_ext_census_queue' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION pgmq._census_queue(text) IS
  'Maintenance: counts the states of a queue of more than 10 000 messages into pgmq.queue_census; 1 when it did.';
CREATE FUNCTION pgmq._recount_gauges(queue_name text) RETURNS bigint
    AS 'MODULE_PATHNAME', 'queue_ext_recount_gauges' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION pgmq._recount_gauges(text) IS
  'Maintenance: counts the rows of a queue and its archive whose gauges are unknown (after a restart), under a SHARE lock held for the count only; how many it set.';
REVOKE ALL ON FUNCTION pgmq._census_queue(text), pgmq._recount_gauges(text) FROM PUBLIC;


------------------------------------------------------------------------------
-- Latency: enqueue -> first read, read -> ack (src/latency.c)
------------------------------------------------------------------------------

CREATE FUNCTION pgmq._latency_histograms()
    RETURNS TABLE (queue_name text, kind text, counts bigint[])
    AS 'MODULE_PATHNAME', 'queue_ext_latency_histograms' LANGUAGE C STABLE;
COMMENT ON FUNCTION pgmq._latency_histograms() IS
  'Per queue the caller may see and kind (first_read: enqueue -> first read; ack: read -> delete, archive or ack), the 56 bucket counts of its latency histogram since the server started (no rows unless queue_ext is preloaded).';
CREATE FUNCTION pgmq._latency_percentile(counts bigint[], fraction double precision) RETURNS double precision
    AS 'MODULE_PATHNAME', 'queue_ext_latency_percentile' LANGUAGE C IMMUTABLE STRICT;
COMMENT ON FUNCTION pgmq._latency_percentile(bigint[], double precision) IS
  'The latency in milliseconds below which fraction of a histogram''s samples fall (within about 19 %); NULL without samples.';

CREATE VIEW pgmq.queue_latency AS
SELECT h.queue_name, h.kind,
       (SELECT sum(c) FROM unnest(h.counts) c)::bigint AS samples,
       pgmq._latency_percentile(h.counts, 0.5) AS p50_ms,
       pgmq._latency_percentile(h.counts, 0.95) AS p95_ms,
       pgmq._latency_percentile(h.counts, 0.99) AS p99_ms
FROM pgmq._latency_histograms() h;
COMMENT ON VIEW pgmq.queue_latency IS
  'Per queue the caller may see: latency from enqueue to first read (kind first_read) and from read to ack (kind ack), percentiles in milliseconds since the server started; per minute in pgmq.throughput_history.';

-- Prometheus' histogram layout: cumulative counts per upper bound (le).
CREATE VIEW pgmq.queue_latency_buckets AS
SELECT h.queue_name, h.kind, b.i::integer AS bucket,
       CASE WHEN b.i = array_length(h.counts, 1) THEN 'Infinity'::double precision
            ELSE 0.1 * power(2, (b.i - 1) / 2.0) END AS le_ms,
       (sum(b.c) OVER (PARTITION BY h.queue_name, h.kind ORDER BY b.i))::bigint AS count
FROM pgmq._latency_histograms() h, unnest(h.counts) WITH ORDINALITY AS b(c, i);
COMMENT ON VIEW pgmq.queue_latency_buckets IS
  'The histograms behind pgmq.queue_latency as Prometheus histograms: per queue, kind and bucket (1 to 56, bounds a factor of sqrt(2) apart; odd ones a factor of 2), how many latencies were at most le_ms, since the server started.';

GRANT SELECT ON pgmq.queue_latency, pgmq.queue_latency_buckets TO PUBLIC;

ALTER TABLE pgmq.throughput_history
    ADD COLUMN first_read_p50_ms double precision, ADD COLUMN first_read_p95_ms double precision,
    ADD COLUMN first_read_p99_ms double precision, ADD COLUMN ack_p50_ms double precision,
    ADD COLUMN ack_p95_ms double precision, ADD COLUMN ack_p99_ms double precision;
COMMENT ON TABLE pgmq.throughput_history IS
  'Messages per queue and minute (the minute maintenance rolled them up in), from pgmq.queue_counters(), and the latency percentiles of that roll-up (milliseconds; enqueue -> first read, read -> ack); kept 7 days.';

-- What the last roll-up saw of each histogram.
CREATE UNLOGGED TABLE pgmq.latency_marks (
    queue_name text NOT NULL,
    kind       text NOT NULL,
    counts     bigint[] NOT NULL,
    PRIMARY KEY (queue_name, kind)
);
COMMENT ON TABLE pgmq.latency_marks IS
  'The histograms pgmq._latency_histograms() showed at the last roll-up into pgmq.throughput_history.';
ALTER TABLE pgmq.latency_marks ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON pgmq.latency_marks FROM PUBLIC, pg_monitor;

CREATE OR REPLACE FUNCTION pgmq._throughput_rollup(batch_size integer) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_queues bigint;
BEGIN
    -- One statement: the marks it reads are those from before it moves them.
    WITH counts AS MATERIALIZED (SELECT * FROM pgmq.queue_counters()),
    histograms AS MATERIALIZED (SELECT * FROM pgmq._latency_histograms()),
    grown AS (
        SELECT c.queue_name,
               -- Below the mark: the server restarted, and everything counted since is new.
               CASE WHEN m.queue_name IS NULL OR c.sent < m.sent OR c.read < m.read OR c.acked < m.acked
                         OR c.archived < m.archived OR c.nacked < m.nacked OR c.dead_lettered < m.dead_lettered
                    THEN false ELSE true END AS continues,
               c.sent, c.read, c.acked, c.archived, c.nacked, c.dead_lettered,
               m.sent AS m_sent, m.read AS m_read, m.acked AS m_acked, m.archived AS m_archived,
               m.nacked AS m_nacked, m.dead_lettered AS m_dead_lettered
        FROM counts c LEFT JOIN pgmq.throughput_marks m ON m.queue_name = c.queue_name),
    deltas AS (
        SELECT g.queue_name,
               g.sent - CASE WHEN g.continues THEN g.m_sent ELSE 0 END AS sent,
               g.read - CASE WHEN g.continues THEN g.m_read ELSE 0 END AS read,
               g.acked - CASE WHEN g.continues THEN g.m_acked ELSE 0 END AS acked,
               g.archived - CASE WHEN g.continues THEN g.m_archived ELSE 0 END AS archived,
               g.nacked - CASE WHEN g.continues THEN g.m_nacked ELSE 0 END AS nacked,
               g.dead_lettered - CASE WHEN g.continues THEN g.m_dead_lettered ELSE 0 END AS dead_lettered
        FROM grown g),
    latency_grown AS (
        SELECT h.queue_name, h.kind,
               CASE WHEN m.counts IS NULL
                         OR EXISTS (SELECT 1 FROM unnest(h.counts, m.counts) AS u(now_c, mark_c) WHERE now_c < mark_c)
                    THEN h.counts
                    ELSE ARRAY(SELECT u.now_c - u.mark_c
                               FROM unnest(h.counts, m.counts) WITH ORDINALITY AS u(now_c, mark_c, i) ORDER BY u.i) END AS delta
        FROM histograms h LEFT JOIN pgmq.latency_marks m ON m.queue_name = h.queue_name AND m.kind = h.kind),
    latency AS (
        SELECT l.queue_name,
               max(pgmq._latency_percentile(l.delta, 0.5)) FILTER (WHERE l.kind = 'first_read') AS first_read_p50_ms,
               max(pgmq._latency_percentile(l.delta, 0.95)) FILTER (WHERE l.kind = 'first_read') AS first_read_p95_ms,
               max(pgmq._latency_percentile(l.delta, 0.99)) FILTER (WHERE l.kind = 'first_read') AS first_read_p99_ms,
               max(pgmq._latency_percentile(l.delta, 0.5)) FILTER (WHERE l.kind = 'ack') AS ack_p50_ms,
               max(pgmq._latency_percentile(l.delta, 0.95)) FILTER (WHERE l.kind = 'ack') AS ack_p95_ms,
               max(pgmq._latency_percentile(l.delta, 0.99)) FILTER (WHERE l.kind = 'ack') AS ack_p99_ms
        FROM latency_grown l GROUP BY l.queue_name),
    added AS (
        INSERT INTO pgmq.throughput_history AS h
            (queue_name, minute, sent, read, acked, archived, nacked, dead_lettered,
             first_read_p50_ms, first_read_p95_ms, first_read_p99_ms, ack_p50_ms, ack_p95_ms, ack_p99_ms)
        SELECT d.queue_name, date_trunc('minute', now()), d.sent, d.read, d.acked, d.archived, d.nacked, d.dead_lettered,
               l.first_read_p50_ms, l.first_read_p95_ms, l.first_read_p99_ms, l.ack_p50_ms, l.ack_p95_ms, l.ack_p99_ms
        FROM deltas d LEFT JOIN latency l ON l.queue_name = d.queue_name
        WHERE d.sent + d.read + d.acked + d.archived + d.nacked + d.dead_lettered > 0
        ON CONFLICT (queue_name, minute) DO UPDATE SET
            sent = h.sent + EXCLUDED.sent, read = h.read + EXCLUDED.read, acked = h.acked + EXCLUDED.acked,
            archived = h.archived + EXCLUDED.archived, nacked = h.nacked + EXCLUDED.nacked,
            dead_lettered = h.dead_lettered + EXCLUDED.dead_lettered,
            -- A second roll-up in one minute: its own percentiles, where it had samples.
            first_read_p50_ms = COALESCE(EXCLUDED.first_read_p50_ms, h.first_read_p50_ms),
            first_read_p95_ms = COALESCE(EXCLUDED.first_read_p95_ms, h.first_read_p95_ms),
            first_read_p99_ms = COALESCE(EXCLUDED.first_read_p99_ms, h.first_read_p99_ms),
            ack_p50_ms = COALESCE(EXCLUDED.ack_p50_ms, h.ack_p50_ms),
            ack_p95_ms = COALESCE(EXCLUDED.ack_p95_ms, h.ack_p95_ms),
            ack_p99_ms = COALESCE(EXCLUDED.ack_p99_ms, h.ack_p99_ms)
        RETURNING 1),
    marked AS (
        INSERT INTO pgmq.throughput_marks AS m
        SELECT * FROM counts
        ON CONFLICT (queue_name) DO UPDATE SET
            sent = EXCLUDED.sent, read = EXCLUDED.read, acked = EXCLUDED.acked, archived = EXCLUDED.archived,
            nacked = EXCLUDED.nacked, dead_lettered = EXCLUDED.dead_lettered
        RETURNING 1),
    latency_marked AS (
        INSERT INTO pgmq.latency_marks AS m
        SELECT h.queue_name, h.kind, h.counts FROM histograms h
        ON CONFLICT (queue_name, kind) DO UPDATE SET counts = EXCLUDED.counts
        RETURNING 1)
    SELECT (SELECT count(*) FROM added) INTO v_queues;

    DELETE FROM pgmq.throughput_history h
    WHERE h.ctid = ANY (ARRAY(SELECT o.ctid FROM pgmq.throughput_history o
                              WHERE o.minute < now() - interval '7 days' LIMIT batch_size));
    RETURN v_queues;
END;
$$;
COMMENT ON FUNCTION pgmq._throughput_rollup(integer) IS
  'Adds what pgmq.queue_counters() grew by since the last roll-up to this minute of pgmq.throughput_history, with the latency percentiles of what the histograms grew by, and drops history older than 7 days; returns how many queues had work.';

------------------------------------------------------------------------------
-- Topics: pgmq 1.13's routing of one message to the queues whose patterns
-- match its routing key (src/topics.c)
------------------------------------------------------------------------------

CREATE FUNCTION pgmq.validate_routing_key(routing_key text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'queue_ext_validate_routing_key' LANGUAGE C IMMUTABLE;
COMMENT ON FUNCTION pgmq.validate_routing_key(text) IS
  'True for a routing key send_topic takes (1 to 255 of a-z, A-Z, 0-9, dot, hyphen, underscore; no dot first, last or twice in a row); raises 22023 (22004 for NULL) saying what is wrong otherwise.';
CREATE FUNCTION pgmq.validate_topic_pattern(pattern text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'queue_ext_validate_topic_pattern' LANGUAGE C IMMUTABLE;
COMMENT ON FUNCTION pgmq.validate_topic_pattern(text) IS
  'True for a pattern bind_topic takes (a routing key''s characters and the wildcards * and #, never two of them side by side); raises 22023 (22004 for NULL) saying what is wrong otherwise.';

CREATE TABLE pgmq.topic_bindings (
    pattern        text NOT NULL CHECK (pgmq.validate_topic_pattern(pattern)),
    queue_name     text NOT NULL
        CONSTRAINT topic_bindings_meta_queue_name_fk REFERENCES pgmq.meta (queue_name) ON DELETE CASCADE,
    bound_at       timestamp with time zone NOT NULL DEFAULT now(),
    -- The regex pgmq matches keys with (dots literal, * one segment's characters, # anything);
    -- queue_ext matches the pattern itself, to the same effect.
    compiled_regex text GENERATED ALWAYS AS
        ('^' || replace(replace(replace(pattern, '.', '\.'), '*', '[^.]+'), '#', '.*') || '$') STORED,
    CONSTRAINT topic_bindings_unique_pattern_queue UNIQUE (pattern, queue_name)
);
CREATE INDEX idx_topic_bindings_covering ON pgmq.topic_bindings (pattern) INCLUDE (queue_name, compiled_regex);
COMMENT ON TABLE pgmq.topic_bindings IS
  'Which queues a routing key reaches: a message sent with send_topic goes to every queue one of whose patterns matches its key.';
SELECT pg_catalog.pg_extension_config_dump('pgmq.topic_bindings', '');

CREATE FUNCTION pgmq._topic_bindings_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'queue_ext_topic_bindings_changed' LANGUAGE C;
COMMENT ON FUNCTION pgmq._topic_bindings_changed() IS
  'Statement trigger on pgmq.topic_bindings: every session reads the bindings again before its next routing.';
CREATE TRIGGER topic_bindings_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pgmq.topic_bindings
    FOR EACH STATEMENT EXECUTE FUNCTION pgmq._topic_bindings_changed();

ALTER TABLE pgmq.topic_bindings ENABLE ROW LEVEL SECURITY;
CREATE POLICY queue_ext_rows ON pgmq.topic_bindings AS PERMISSIVE USING (true);
CREATE POLICY queue_ext_tenant ON pgmq.topic_bindings AS RESTRICTIVE USING (pgmq.queue_visible(queue_name));
REVOKE ALL ON pgmq.topic_bindings FROM PUBLIC, pg_monitor;
GRANT SELECT ON pgmq.topic_bindings TO PUBLIC;

-- The bindings of pgmq's catalog, when CREATE EXTENSION adopted one (queue_ext--0.1.0.sql).
DO $adopt$
BEGIN
    IF pg_catalog.to_regclass('pgmq.topic_bindings_adopted') IS NOT NULL THEN
        -- Older pgmq releases made the table without bound_at.
        EXECUTE pg_catalog.format('INSERT INTO pgmq.topic_bindings (pattern, queue_name, bound_at)'
                       ' SELECT b.pattern, b.queue_name, %s FROM pgmq.topic_bindings_adopted b'
                       ' WHERE EXISTS (SELECT FROM pgmq.meta m WHERE m.queue_name OPERATOR(pg_catalog.=) b.queue_name)'
                       ' ON CONFLICT DO NOTHING',
                       CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_attribute a
                                         WHERE a.attrelid OPERATOR(pg_catalog.=) 'pgmq.topic_bindings_adopted'::pg_catalog.regclass::pg_catalog.oid
                                           AND a.attname OPERATOR(pg_catalog.=) 'bound_at' AND NOT a.attisdropped)
                            THEN 'b.bound_at' ELSE 'pg_catalog.now()' END);
        DROP TABLE pgmq.topic_bindings_adopted;
    END IF;
END;
$adopt$;

CREATE FUNCTION pgmq.bind_topic(pattern text, queue_name text) RETURNS void
    AS 'MODULE_PATHNAME', 'queue_ext_bind_topic' LANGUAGE C;
COMMENT ON FUNCTION pgmq.bind_topic(text, text) IS
  'Messages sent with send_topic under a key the pattern matches go to the queue (* one dot-free run of characters, # any characters). Binding twice is binding once. Needs manage on the queue.';
CREATE FUNCTION pgmq.unbind_topic(pattern text, queue_name text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'queue_ext_unbind_topic' LANGUAGE C;
COMMENT ON FUNCTION pgmq.unbind_topic(text, text) IS
  'Removes a binding; false when there was none. Needs manage on the queue.';
CREATE FUNCTION pgmq.test_routing(routing_key text)
    RETURNS TABLE (pattern text, queue_name text, compiled_regex text)
    AS 'MODULE_PATHNAME', 'queue_ext_test_routing' LANGUAGE C STABLE;
COMMENT ON FUNCTION pgmq.test_routing(text) IS
  'The bindings a routing key matches, by pattern, without sending anything.';

CREATE FUNCTION pgmq.send_topic(routing_key text, msg jsonb) RETURNS integer
    AS 'MODULE_PATHNAME', 'queue_ext_send_topic' LANGUAGE C;
CREATE FUNCTION pgmq.send_topic(routing_key text, msg jsonb, delay integer) RETURNS integer
    AS 'MODULE_PATHNAME', 'queue_ext_send_topic_delay' LANGUAGE C;
CREATE FUNCTION pgmq.send_topic(routing_key text, msg jsonb, headers jsonb, delay integer) RETURNS integer
    AS 'MODULE_PATHNAME', 'queue_ext_send_topic_headers_delay' LANGUAGE C;
COMMENT ON FUNCTION pgmq.send_topic(text, jsonb) IS
  'Sends msg to every queue whose bound pattern matches routing_key (each once, by name); returns how many. Needs publish on each.';
COMMENT ON FUNCTION pgmq.send_topic(text, jsonb, integer) IS
  'send_topic, visible after delay seconds (not negative).';
COMMENT ON FUNCTION pgmq.send_topic(text, jsonb, jsonb, integer) IS
  'send_topic with headers, visible after delay seconds (not negative).';

CREATE FUNCTION pgmq.send_batch_topic(routing_key text, msgs jsonb[])
    RETURNS TABLE (queue_name text, msg_id bigint)
    AS 'MODULE_PATHNAME', 'queue_ext_send_batch_topic' LANGUAGE C;
CREATE FUNCTION pgmq.send_batch_topic(routing_key text, msgs jsonb[], headers jsonb[])
    RETURNS TABLE (queue_name text, msg_id bigint)
    AS 'MODULE_PATHNAME', 'queue_ext_send_batch_topic_headers' LANGUAGE C;
CREATE FUNCTION pgmq.send_batch_topic(routing_key text, msgs jsonb[], delay integer)
    RETURNS TABLE (queue_name text, msg_id bigint)
    AS 'MODULE_PATHNAME', 'queue_ext_send_batch_topic_delay_seconds' LANGUAGE C;
CREATE FUNCTION pgmq.send_batch_topic(routing_key text, msgs jsonb[], delay timestamp with time zone)
    RETURNS TABLE (queue_name text, msg_id bigint)
    AS 'MODULE_PATHNAME', 'queue_ext_send_batch_topic_delay_at' LANGUAGE C;
CREATE FUNCTION pgmq.send_batch_topic(routing_key text, msgs jsonb[], headers jsonb[], delay integer)
    RETURNS TABLE (queue_name text, msg_id bigint)
    AS 'MODULE_PATHNAME', 'queue_ext_send_batch_topic_headers_delay_seconds' LANGUAGE C;
CREATE FUNCTION pgmq.send_batch_topic(routing_key text, msgs jsonb[], headers jsonb[],
                                      delay timestamp with time zone)
    RETURNS TABLE (queue_name text, msg_id bigint)
    AS 'MODULE_PATHNAME', 'queue_ext_send_batch_topic_headers_delay_at' LANGUAGE C;
COMMENT ON FUNCTION pgmq.send_batch_topic(text, jsonb[]) IS
  'Sends the batch to every queue whose bound pattern matches routing_key; returns each message''s queue and msg_id.';
COMMENT ON FUNCTION pgmq.send_batch_topic(text, jsonb[], jsonb[]) IS
  'send_batch_topic with one headers object per message.';
COMMENT ON FUNCTION pgmq.send_batch_topic(text, jsonb[], integer) IS
  'send_batch_topic, visible after delay seconds.';
COMMENT ON FUNCTION pgmq.send_batch_topic(text, jsonb[], timestamp with time zone) IS
  'send_batch_topic, visible at delay.';
COMMENT ON FUNCTION pgmq.send_batch_topic(text, jsonb[], jsonb[], integer) IS
  'send_batch_topic with headers, visible after delay seconds.';
COMMENT ON FUNCTION pgmq.send_batch_topic(text, jsonb[], jsonb[], timestamp with time zone) IS
  'send_batch_topic with headers, visible at delay.';

CREATE FUNCTION pgmq._list_topic_bindings()
    RETURNS TABLE (pattern text, queue_name text, bound_at timestamp with time zone, compiled_regex text)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT b.pattern, b.queue_name, b.bound_at, b.compiled_regex
    FROM pgmq.topic_bindings b
    WHERE pgmq.queue_visible(b.queue_name)
    ORDER BY b.bound_at DESC, b.pattern, b.queue_name;
$$;
CREATE FUNCTION pgmq._list_topic_bindings(queue_name text)
    RETURNS TABLE (pattern text, queue_name text, bound_at timestamp with time zone, compiled_regex text)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT b.pattern, b.queue_name, b.bound_at, b.compiled_regex
    FROM pgmq.topic_bindings b
    WHERE b.queue_name = $1 AND pgmq.queue_visible(b.queue_name)
    ORDER BY b.bound_at DESC, b.pattern;
$$;
COMMENT ON FUNCTION pgmq._list_topic_bindings() IS 'list_topic_bindings(), run as the owner.';
COMMENT ON FUNCTION pgmq._list_topic_bindings(text) IS 'list_topic_bindings(queue_name), run as the owner.';
REVOKE ALL ON FUNCTION pgmq._list_topic_bindings(), pgmq._list_topic_bindings(text) FROM PUBLIC;
CREATE FUNCTION pgmq.list_topic_bindings()
    RETURNS TABLE (pattern text, queue_name text, bound_at timestamp with time zone, compiled_regex text)
    AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C STABLE;
COMMENT ON FUNCTION pgmq.list_topic_bindings() IS 'The bindings of the queues the caller may see, newest first.';
CREATE FUNCTION pgmq.list_topic_bindings(queue_name text)
    RETURNS TABLE (pattern text, queue_name text, bound_at timestamp with time zone, compiled_regex text)
    AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C STABLE;
COMMENT ON FUNCTION pgmq.list_topic_bindings(text) IS 'The bindings of one queue, newest first.';

------------------------------------------------------------------------------
-- Partitioned queues through pg_partman (src/catalog.c, src/partitions.c)
------------------------------------------------------------------------------

-- pg_partman's schema, or an error that says how to get it.
CREATE FUNCTION pgmq._partman_schema() RETURNS name
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_schema name;
BEGIN
    SELECT n.nspname INTO v_schema
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_partman';
    IF v_schema IS NULL THEN
        RAISE EXCEPTION 'partitioned queues need pg_partman, which is not installed in this database'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'CREATE SCHEMA partman; CREATE EXTENSION pg_partman SCHEMA partman; (Debian: the package postgresql-15-partman).';
    END IF;
    RETURN v_schema;
END;
$$;
COMMENT ON FUNCTION pgmq._partman_schema() IS 'The schema of pg_partman; raises 0A000 when it is not installed.';

-- The column a partition interval partitions by: a number of messages
-- partitions by msg_id, a time interval by enqueued_at (archived_at in the archive).
CREATE FUNCTION pgmq._partition_column(partition_interval text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF partition_interval IS NULL THEN
        RAISE EXCEPTION 'partition_interval must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF partition_interval ~ '^\s*[0-9]+\s*$' THEN
        IF partition_interval::numeric < 1 OR partition_interval::numeric > 9223372036854775807 THEN
            RAISE EXCEPTION 'partition_interval must be at least 1 message, got %', partition_interval
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN 'msg_id';
    END IF;
    BEGIN
        IF partition_interval::interval <= interval '0' THEN
            RAISE EXCEPTION 'partition_interval must be positive, got %', partition_interval
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow THEN
        RAISE EXCEPTION 'partition_interval must be a number of messages or a time interval, got %', partition_interval
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example ''10000'' (messages per partition) or ''1 day''.';
    END;
    RETURN 'enqueued_at';
END;
$$;
COMMENT ON FUNCTION pgmq._partition_column(text) IS
  'msg_id for a number of messages per partition, enqueued_at for a time interval; raises 22023 for anything else.';

-- Hands a partitioned parent to pg_partman (4 calls native range
-- partitioning 'native', 5 'range'), with queue_ext's retention settings;
-- pg_partman's own runs over every table leave it alone (automatic
-- maintenance off): queue_ext's partitions step makes and protects its
-- partitions in one go.
CREATE FUNCTION pgmq._partman_parent(parent text, control text, partition_interval text,
                                     retention_interval text, premake integer, start_partition text)
RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_partman name := pgmq._partman_schema();
    v_type    text := CASE WHEN (SELECT split_part(extversion, '.', 1)::int FROM pg_extension WHERE extname = 'pg_partman') >= 5
                           THEN 'range' ELSE 'native' END;
BEGIN
    EXECUTE format('SELECT %I.create_parent(p_parent_table := $1, p_control := $2, p_type := $3,'
                   ' p_interval := $4, p_premake := $5, p_start_partition := $6)', v_partman)
        USING parent, control, v_type, partition_interval, premake, start_partition;
    EXECUTE format('UPDATE %I.part_config SET retention = $1, retention_keep_table = false,'
                   ' retention_keep_index = false, automatic_maintenance = ''off'' WHERE parent_table = $2', v_partman)
        USING retention_interval, parent;
END;
$$;
COMMENT ON FUNCTION pgmq._partman_parent(text, text, text, text, integer, text) IS
  'Registers a partitioned queue table or archive with pg_partman, with retention and automatic maintenance off.';

-- The tables of a partitioned queue: both parents, pg_partman's setup with
-- retention, the indexes reads and acks use. Does nothing when the queue
-- table exists.
CREATE FUNCTION pgmq._make_partitioned_tables(queue_name text, partition_interval text,
                                              retention_interval text, premake integer)
RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_partman   name := pgmq._partman_schema();
    v_column    text := pgmq._partition_column(partition_interval);
    v_q         text := pgmq.format_table_name(queue_name, 'q');
    v_a         text := pgmq.format_table_name(queue_name, 'a');
    v_a_column  text;
BEGIN
    IF premake IS NULL OR premake < 1 THEN
        RAISE EXCEPTION 'premake must be at least 1, got %', premake USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF retention_interval IS NOT NULL AND pgmq._partition_column(retention_interval) <> v_column THEN
        RAISE EXCEPTION 'retention_interval must be of the same kind as partition_interval (%), got %',
            CASE v_column WHEN 'msg_id' THEN 'a number of messages' ELSE 'a time interval' END, retention_interval
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.to_regclass(format('pgmq.%I', v_q)) IS NOT NULL THEN
        RETURN;
    END IF;
    v_a_column := CASE v_column WHEN 'enqueued_at' THEN 'archived_at' ELSE v_column END;

    EXECUTE format('CREATE TABLE pgmq.%I ('
                   ' msg_id bigint GENERATED BY DEFAULT AS IDENTITY,'
                   ' read_ct integer DEFAULT 0 NOT NULL,'
                   ' enqueued_at timestamp with time zone DEFAULT pg_catalog.now() NOT NULL,'
                   ' last_read_at timestamp with time zone,'
                   ' vt timestamp with time zone NOT NULL,'
                   ' message jsonb,'
                   ' headers jsonb) PARTITION BY RANGE (%I)', v_q, v_column);
    EXECUTE format('CREATE TABLE pgmq.%I ('
                   ' msg_id bigint NOT NULL,'
                   ' read_ct integer DEFAULT 0 NOT NULL,'
                   ' enqueued_at timestamp with time zone DEFAULT pg_catalog.now() NOT NULL,'
                   ' last_read_at timestamp with time zone,'
                   ' archived_at timestamp with time zone DEFAULT pg_catalog.now() NOT NULL,'
                   ' vt timestamp with time zone NOT NULL,'
                   ' message jsonb,'
                   ' headers jsonb) PARTITION BY RANGE (%I)', v_a, v_a_column);
    -- Reads walk msg_id; acks find by it: an index on it in every partition,
    -- and on the partition column when that is another.
    EXECUTE format('CREATE INDEX %I ON pgmq.%I (msg_id)', v_q || '_msg_id_idx', v_q);
    EXECUTE format('CREATE INDEX %I ON pgmq.%I (msg_id)', v_a || '_msg_id_idx', v_a);
    IF v_column <> 'msg_id' THEN
        EXECUTE format('CREATE INDEX %I ON pgmq.%I (%I)', v_q || '_part_idx', v_q, v_column);
    END IF;
    EXECUTE format('CREATE INDEX %I ON pgmq.%I (archived_at)', 'archived_at_idx_' || lower(queue_name), v_a);

    PERFORM pgmq._partman_parent('pgmq.' || v_q, v_column, partition_interval, retention_interval, premake, NULL);
    PERFORM pgmq._partman_parent('pgmq.' || v_a, v_a_column, partition_interval, retention_interval, premake, NULL);
END;
$$;
COMMENT ON FUNCTION pgmq._make_partitioned_tables(text, text, text, integer) IS
  'create_partitioned''s tables: both parents, pg_partman''s setup and retention, the indexes on msg_id.';

-- pg_partman's setup of a queue being dropped: its configuration and template tables.
CREATE FUNCTION pgmq._partman_forget(queue_name text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_partman name;
    v_parent  text;
    v_template text;
BEGIN
    SELECT n.nspname INTO v_partman
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_partman';
    IF v_partman IS NULL THEN
        RETURN;
    END IF;
    FOREACH v_parent IN ARRAY ARRAY['pgmq.' || pgmq.format_table_name(queue_name, 'q'),
                                    'pgmq.' || pgmq.format_table_name(queue_name, 'a')] LOOP
        EXECUTE format('DELETE FROM %I.part_config WHERE parent_table = $1 RETURNING template_table', v_partman)
            INTO v_template USING v_parent;
        -- Only pg_partman's own template of this table, whatever part_config says.
        IF to_regclass(v_template) IS NOT NULL
           AND (SELECT c.relnamespace FROM pg_class c WHERE c.oid = to_regclass(v_template)) = v_partman::regnamespace
           AND (SELECT c.relname FROM pg_class c WHERE c.oid = to_regclass(v_template)) = 'template_' || replace(v_parent, '.', '_') THEN
            EXECUTE format('DROP TABLE %s', to_regclass(v_template));
        END IF;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION pgmq._partman_forget(text) IS
  'Removes a partitioned queue''s pg_partman configuration and template tables, before drop_queue drops its tables.';

CREATE FUNCTION pgmq._maintain_partitions(queue_name text) RETURNS bigint
    AS 'MODULE_PATHNAME', 'queue_ext_maintain_partitions' LANGUAGE C STRICT;
COMMENT ON FUNCTION pgmq._maintain_partitions(text) IS
  'Maintenance: pg_partman''s run_maintenance for a partitioned queue and its archive (premade partitions, retention), then row-level security on new partitions; how many partitions it made or dropped.';

REVOKE ALL ON FUNCTION pgmq._partman_schema(), pgmq._partition_column(text),
    pgmq._partman_parent(text, text, text, text, integer, text),
    pgmq._make_partitioned_tables(text, text, text, integer), pgmq._partman_forget(text),
    pgmq._maintain_partitions(text) FROM PUBLIC;

CREATE FUNCTION pgmq.create_partitioned(queue_name text, partition_interval text DEFAULT '10000',
                                        retention_interval text DEFAULT '100000', premake integer DEFAULT 4)
    RETURNS void AS 'MODULE_PATHNAME', 'queue_ext_create_partitioned' LANGUAGE C;
COMMENT ON FUNCTION pgmq.create_partitioned(text, text, text, integer) IS
  'Makes a queue whose table and archive pg_partman partitions: by msg_id for a number of messages per partition, by time (enqueued_at, archived_at) for an interval; maintenance drops partitions past retention_interval (NULL: keeps them). Needs pg_partman.';

-- pgmq's way to partition an existing archive: the old one is kept as a_<name>_old.
CREATE FUNCTION pgmq._convert_archive_partitioned(table_name text, partition_interval text DEFAULT '10000',
                                                  retention_interval text DEFAULT '100000',
                                                  leading_partition integer DEFAULT 10)
RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_partman name := pgmq._partman_schema();
    v_name    text := pgmq.registered_queue_name(table_name);
    v_a       text := pgmq.format_table_name(v_name, 'a');
    v_column  text := pgmq._partition_column(partition_interval);
    v_start   bigint;
    v_oldest  bigint;
BEGIN
    IF leading_partition IS NULL OR leading_partition < 1 THEN
        RAISE EXCEPTION 'leading_partition must be at least 1, got %', leading_partition
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (SELECT relkind FROM pg_class WHERE oid = format('pgmq.%I', v_a)::regclass) = 'p' THEN
        RAISE NOTICE 'archive of queue "%" is partitioned already', v_name;
        RETURN;
    END IF;
    IF v_column = 'enqueued_at' THEN
        v_column := 'archived_at';
    END IF;
    EXECUTE format('ALTER TABLE pgmq.%I RENAME TO %I', v_a, v_a || '_old');
    EXECUTE format('ALTER INDEX pgmq.%I RENAME TO %I', 'archived_at_idx_' || lower(v_name), 'archived_at_idx_' || lower(v_name) || '_old');
    EXECUTE format('CREATE TABLE pgmq.%I (LIKE pgmq.%I INCLUDING DEFAULTS INCLUDING STORAGE INCLUDING COMMENTS)'
                   ' PARTITION BY RANGE (%I)', v_a, v_a || '_old', v_column);
    EXECUTE format('CREATE INDEX %I ON pgmq.%I (msg_id)', v_a || '_msg_id_idx', v_a);
    EXECUTE format('CREATE INDEX %I ON pgmq.%I (archived_at)', 'archived_at_idx_' || lower(v_name), v_a);
    -- By msg_id, partitions start where the ids to archive are (the oldest
    -- message still queued, else the sequence's position), not at 0.
    IF v_column = 'msg_id' THEN
        SELECT coalesce(s.last_value, 0) INTO v_start FROM pg_sequences s
        WHERE s.schemaname = 'pgmq' AND s.sequencename = pgmq.format_table_name(v_name, 'q') || '_msg_id_seq';
        EXECUTE format('SELECT min(msg_id) FROM pgmq.%I', pgmq.format_table_name(v_name, 'q')) INTO v_oldest;
        v_start := least(coalesce(v_oldest, v_start), coalesce(v_start, 0));
    END IF;
    PERFORM pgmq._partman_parent('pgmq.' || v_a, v_column, partition_interval, retention_interval,
                                 leading_partition, v_start::text);
    PERFORM pgmq._protect_queue_tables(v_name);
    RAISE NOTICE 'the rows of the old archive are in pgmq.%; move them with INSERT INTO pgmq.% SELECT * FROM pgmq.%',
        v_a || '_old', v_a, v_a || '_old';
END;
$$;
COMMENT ON FUNCTION pgmq._convert_archive_partitioned(text, text, text, integer) IS
  'convert_archive_partitioned, run as the owner.';
REVOKE ALL ON FUNCTION pgmq._convert_archive_partitioned(text, text, text, integer) FROM PUBLIC;
CREATE FUNCTION pgmq.convert_archive_partitioned(table_name text, partition_interval text DEFAULT '10000',
                                                 retention_interval text DEFAULT '100000',
                                                 leading_partition integer DEFAULT 10)
    RETURNS void AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.convert_archive_partitioned(text, text, text, integer) IS
  'Replaces a queue''s archive with one pg_partman partitions (as pgmq does, the old one stays as a_<name>_old). Needs manage on the queue and pg_partman.';

CREATE OR REPLACE FUNCTION pgmq._maintain_queue(queue_name text, batch_size integer)
RETURNS TABLE (step text, affected bigint)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_options pgmq.queue_options;
    v_step    text;
    v_sql     text;
    v_keep    interval;
    v_partitioned boolean := (SELECT m.is_partitioned FROM pgmq.meta m WHERE m.queue_name = _maintain_queue.queue_name);
BEGIN
    SELECT * INTO v_options FROM pgmq.queue_options o WHERE o.queue_name = _maintain_queue.queue_name;
    FOREACH v_step IN ARRAY ARRAY['dead_letter', 'message_retention', 'archive_retention', 'partitions', 'gauges', 'census'] LOOP
        v_keep := CASE v_step WHEN 'message_retention' THEN v_options.message_retention
                              WHEN 'archive_retention' THEN v_options.archive_retention END;
        CONTINUE WHEN v_step IN ('message_retention', 'archive_retention') AND v_keep IS NULL;
        CONTINUE WHEN v_step = 'partitions' AND NOT coalesce(v_partitioned, false);
        step := v_step;
        BEGIN
            IF v_step = 'dead_letter' THEN
                -- Exhausted messages: delivered as often as allowed and never acked.
                affected := pgmq._dead_letter_exhausted(queue_name, batch_size);
            ELSIF v_step = 'partitions' THEN
                -- pg_partman: partitions made ahead, those past retention dropped.
                affected := pgmq._maintain_partitions(queue_name);
            ELSIF v_step = 'gauges' THEN
                affected := pgmq._recount_gauges(queue_name);
            ELSIF v_step = 'census' THEN
                -- After the retention steps: it counts what they left.
                affected := pgmq._census_queue(queue_name);
            ELSE
                v_sql := CASE v_step
                    WHEN 'message_retention' THEN
                        'DELETE FROM pgmq.%1$I q WHERE q.msg_id = ANY (ARRAY('
                        ' SELECT e.msg_id FROM pgmq.%1$I e WHERE e.enqueued_at < pg_catalog.now() OPERATOR(pg_catalog.-) $1'
                        ' ORDER BY e.msg_id LIMIT $2 FOR UPDATE SKIP LOCKED))'
                    ELSE
                        'DELETE FROM pgmq.%1$I a WHERE a.msg_id = ANY (ARRAY('
                        ' SELECT e.msg_id FROM pgmq.%1$I e WHERE e.archived_at < pg_catalog.now() OPERATOR(pg_catalog.-) $1'
                        ' ORDER BY e.archived_at LIMIT $2 FOR UPDATE SKIP LOCKED))' END;
                EXECUTE format(v_sql, pgmq.format_table_name(queue_name,
                                                             CASE v_step WHEN 'message_retention' THEN 'q' ELSE 'a' END))
                USING v_keep, batch_size;
                GET DIAGNOSTICS affected = ROW_COUNT;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'maintenance step % of queue "%" failed: % (%)', v_step, queue_name, SQLERRM, SQLSTATE;
            step := v_step || ' failed: ' || SQLSTATE;
            affected := 0;
        END;
        RETURN NEXT;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION pgmq._maintain_queue(text, integer) IS
  'Maintenance of one queue: dead letters, message retention, archive retention (up to batch_size rows each), pg_partman''s maintenance of a partitioned queue, then the recount of unknown gauges and the census of a large queue''s states.';
