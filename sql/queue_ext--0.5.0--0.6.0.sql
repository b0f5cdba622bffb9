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

CREATE OR REPLACE FUNCTION pgmq._maintain_queue(queue_name text, batch_size integer)
RETURNS TABLE (step text, affected bigint)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_options pgmq.queue_options;
    v_step    text;
    v_sql     text;
    v_keep    interval;
BEGIN
    SELECT * INTO v_options FROM pgmq.queue_options o WHERE o.queue_name = _maintain_queue.queue_name;
    FOREACH v_step IN ARRAY ARRAY['dead_letter', 'message_retention', 'archive_retention', 'gauges', 'census'] LOOP
        v_keep := CASE v_step WHEN 'message_retention' THEN v_options.message_retention
                              WHEN 'archive_retention' THEN v_options.archive_retention END;
        CONTINUE WHEN v_step IN ('message_retention', 'archive_retention') AND v_keep IS NULL;
        step := v_step;
        BEGIN
            IF v_step = 'dead_letter' THEN
                -- Exhausted messages: delivered as often as allowed and never acked.
                affected := pgmq._dead_letter_exhausted(queue_name, batch_size);
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
  'Maintenance of one queue: dead letters, message retention, archive retention (up to batch_size rows each), then the recount of unknown gauges and the census of a large queue''s states.';
