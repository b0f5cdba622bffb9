-- queue_ext 0.4.0 -> 0.5.0: rate limits, quotas and maintenance.
-- Token-bucket and sliding-window rate limits per tenant, API key or queue
-- (src/ratelimit.c), a queue's delivery rate and in-flight cap, monthly
-- quotas per tenant (src/quota.c), and pgmq.maintain(), which pg_cron runs
-- (src/maintenance.c); see README, "Limits and quotas" and "Maintenance".

\echo Use "ALTER EXTENSION queue_ext UPDATE TO '0.5.0'" to load this file. \quit

------------------------------------------------------------------------------
-- Rate limits
------------------------------------------------------------------------------

CREATE TABLE pgmq.rate_limits (
    limit_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope      text NOT NULL CONSTRAINT rate_limit_scope_known CHECK (scope IN ('tenant', 'api_key', 'queue')),
    tenant_id  bigint REFERENCES pgmq.tenants ON DELETE CASCADE,
    key_id     bigint REFERENCES pgmq.api_keys ON DELETE CASCADE,
    queue_name text,
    action     text NOT NULL CONSTRAINT rate_limit_action_known CHECK (action IN ('send', 'read', 'deliver')),
    method     text NOT NULL CONSTRAINT rate_limit_method_known CHECK (method IN ('token_bucket', 'sliding_window')),
    rate       double precision NOT NULL
               CONSTRAINT rate_limit_rate_range CHECK (rate >= 0.001 AND rate <= 1e9),
    -- In seconds, without months (whose length an interval leaves open).
    per        interval NOT NULL
               CONSTRAINT rate_limit_per_range
               CHECK (extract(epoch FROM per) BETWEEN 1 AND 86400 AND extract(month FROM per) = 0
                      AND extract(year FROM per) = 0),
    burst      double precision NOT NULL
               CONSTRAINT rate_limit_burst_range CHECK (burst >= 1 AND burst <= 1e9),
    created_at timestamp with time zone NOT NULL DEFAULT now(),
    CONSTRAINT rate_limit_target CHECK (
        (scope = 'tenant' AND tenant_id IS NOT NULL AND key_id IS NULL AND queue_name IS NULL) OR
        (scope = 'api_key' AND tenant_id IS NOT NULL AND key_id IS NOT NULL AND queue_name IS NULL) OR
        (scope = 'queue' AND tenant_id IS NULL AND key_id IS NULL AND queue_name IS NOT NULL)),
    CONSTRAINT rate_limit_deliver_is_queue CHECK (action <> 'deliver' OR scope = 'queue'),
    CONSTRAINT rate_limit_window_per_minute CHECK (method <> 'sliding_window' OR per = interval '1 minute'),
    CONSTRAINT rate_limits_unique UNIQUE NULLS NOT DISTINCT (scope, tenant_id, key_id, queue_name, action)
);
COMMENT ON TABLE pgmq.rate_limits IS
  'Rate limits: rate messages per interval per, per tenant, API key or queue and action (send, read; deliver caps a queue''s deliveries quietly). Set them with pgmq.set_rate_limit().';
SELECT pg_catalog.pg_extension_config_dump('pgmq.rate_limits', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('pgmq.rate_limits', 'limit_id')::regclass, '');
CREATE TRIGGER security_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pgmq.rate_limits
    FOR EACH STATEMENT EXECUTE FUNCTION pgmq._security_changed();

-- Bucket state when queue_ext is not preloaded (with preload it lives in
-- shared memory). Unlogged: after a crash every bucket starts full.
CREATE UNLOGGED TABLE pgmq.rate_limit_buckets (
    limit_id       bigint PRIMARY KEY,
    tokens         double precision NOT NULL,
    refilled_at    timestamp with time zone NOT NULL,
    window_start   timestamp with time zone NOT NULL,
    window_count   double precision NOT NULL,
    previous_count double precision NOT NULL
);
COMMENT ON TABLE pgmq.rate_limit_buckets IS
  'Rate-limit bucket state when queue_ext is not in shared_preload_libraries; each check locks its bucket''s row until the transaction ends.';

CREATE FUNCTION pgmq._set_rate_limit(scope text, target text, action text, rate double precision,
                                     per interval DEFAULT '1 second', burst double precision DEFAULT NULL,
                                     method text DEFAULT 'token_bucket')
RETURNS pgmq.rate_limits
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tenant bigint;
    v_key    bigint;
    v_queue  text;
    v_burst  double precision;
    v_row    pgmq.rate_limits;
BEGIN
    IF scope IS NULL OR scope NOT IN ('tenant', 'api_key', 'queue') THEN
        RAISE EXCEPTION 'rate limit scope must be tenant, api_key or queue, got %', coalesce(quote_literal(scope), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF action IS NULL OR action NOT IN ('send', 'read', 'deliver') THEN
        RAISE EXCEPTION 'rate limit action must be send, read or deliver, got %', coalesce(quote_literal(action), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF action = 'deliver' AND scope <> 'queue' THEN
        RAISE EXCEPTION 'a deliver limit caps a queue''s deliveries: its scope must be queue'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'To refuse a tenant''s or a key''s reads over a rate, limit the read action.';
    END IF;
    IF method IS NULL OR method NOT IN ('token_bucket', 'sliding_window') THEN
        RAISE EXCEPTION 'rate limit method must be token_bucket or sliding_window, got %', coalesce(quote_literal(method), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF rate IS NULL OR NOT (rate >= 0.001 AND rate <= 1e9) THEN
        RAISE EXCEPTION 'rate must be from 0.001 to 1000000000 messages per interval, got %', coalesce(rate::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF per IS NULL OR NOT (extract(epoch FROM per) BETWEEN 1 AND 86400) OR extract(month FROM per) <> 0
       OR extract(year FROM per) <> 0 THEN
        RAISE EXCEPTION 'per must be an interval from 1 second to 1 day, got %', coalesce(per::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF method = 'sliding_window' THEN
        IF per <> interval '1 minute' THEN
            RAISE EXCEPTION 'a sliding window counts per minute: per must be 1 minute, got %', per
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF burst IS NOT NULL THEN
            RAISE EXCEPTION 'a sliding window has no burst: at most rate messages in any minute'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF rate < 1 THEN
            RAISE EXCEPTION 'a sliding window allows a whole number of messages a minute: rate must be at least 1, got %', rate
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_burst := floor(rate);
    ELSE
        IF burst IS NOT NULL AND NOT (burst >= 1 AND burst <= 1e9) THEN
            RAISE EXCEPTION 'burst must be from 1 to 1000000000 messages, got %', burst
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        -- By default a bucket holds one interval's messages.
        v_burst := COALESCE(burst, greatest(1, ceil(rate)));
    END IF;
    IF target IS NULL THEN
        RAISE EXCEPTION 'rate limit target must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;

    IF scope = 'tenant' THEN
        v_tenant := pgmq._tenant_id(target);
    ELSIF scope = 'api_key' THEN
        SELECT k.key_id, k.tenant_id INTO v_key, v_tenant FROM pgmq.api_keys k
        WHERE k.prefix = CASE WHEN target LIKE 'qx\_%' THEN substr(target, 4, 12) ELSE target END;
        IF v_key IS NULL THEN
            RAISE EXCEPTION 'API key "%" does not exist', target
                USING ERRCODE = 'undefined_object',
                      HINT = 'Name a key by its prefix, as pgmq.list_api_keys() shows it.';
        END IF;
    ELSE
        v_queue := pgmq.registered_queue_name(target);
    END IF;

    INSERT INTO pgmq.rate_limits AS r (scope, tenant_id, key_id, queue_name, action, method, rate, per, burst)
    VALUES (scope, v_tenant, v_key, v_queue, action, method, rate, per, v_burst)
    ON CONFLICT ON CONSTRAINT rate_limits_unique DO UPDATE SET
        method = EXCLUDED.method, rate = EXCLUDED.rate, per = EXCLUDED.per, burst = EXCLUDED.burst
    RETURNING * INTO v_row;
    RETURN v_row;
END;
$$;

CREATE FUNCTION pgmq._remove_rate_limit(scope text, target text, action text) RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_deleted integer;
BEGIN
    IF scope IS NULL OR target IS NULL OR action IS NULL THEN
        RAISE EXCEPTION 'scope, target and action must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    DELETE FROM pgmq.rate_limits r
    WHERE r.scope = _remove_rate_limit.scope AND r.action = _remove_rate_limit.action
      AND CASE _remove_rate_limit.scope
              WHEN 'tenant' THEN r.tenant_id = (SELECT t.tenant_id FROM pgmq.tenants t WHERE t.slug = target)
              WHEN 'api_key' THEN r.key_id = (SELECT k.key_id FROM pgmq.api_keys k WHERE k.prefix =
                  CASE WHEN target LIKE 'qx\_%' THEN substr(target, 4, 12) ELSE target END)
              ELSE lower(r.queue_name) = lower(target)
          END;
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    -- Its bucket, when the buckets are rows (ids are never used again).
    DELETE FROM pgmq.rate_limit_buckets b
    WHERE NOT EXISTS (SELECT 1 FROM pgmq.rate_limits r WHERE r.limit_id = b.limit_id);
    RETURN v_deleted > 0;
END;
$$;

COMMENT ON FUNCTION pgmq._set_rate_limit(text, text, text, double precision, interval, double precision, text) IS
  'set_rate_limit, run as the owner after the caller was found to be an operator.';
COMMENT ON FUNCTION pgmq._remove_rate_limit(text, text, text) IS
  'remove_rate_limit, run as the owner after the caller was found to be an operator.';

CREATE FUNCTION pgmq.set_rate_limit(scope text, target text, action text, rate double precision,
                                    per interval DEFAULT '1 second', burst double precision DEFAULT NULL,
                                    method text DEFAULT 'token_bucket')
    RETURNS pgmq.rate_limits AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.set_rate_limit(text, text, text, double precision, interval, double precision, text) IS
  'Limits a tenant (by slug), an API key (by prefix) or a queue to rate messages per interval per, for an action: send and read raise PT429 past it, deliver makes reads of a queue return fewer. A token bucket holds burst messages (default: one interval''s); a sliding window allows rate in any minute. Replaces the limit of the same target and action. Operators only.';
CREATE FUNCTION pgmq.remove_rate_limit(scope text, target text, action text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.remove_rate_limit(text, text, text) IS
  'Removes a rate limit; false when there was none. Operators only.';

------------------------------------------------------------------------------
-- Monthly quotas
------------------------------------------------------------------------------

CREATE TABLE pgmq.tenant_quotas (
    tenant_id  bigint PRIMARY KEY REFERENCES pgmq.tenants ON DELETE CASCADE,
    soft_limit bigint CONSTRAINT quota_soft_range CHECK (soft_limit > 0),
    hard_limit bigint CONSTRAINT quota_hard_range CHECK (hard_limit > 0),
    CONSTRAINT quota_limits_something CHECK (soft_limit IS NOT NULL OR hard_limit IS NOT NULL),
    CONSTRAINT quota_soft_below_hard CHECK (soft_limit <= hard_limit)
);
COMMENT ON TABLE pgmq.tenant_quotas IS
  'Messages a tenant may send a month (UTC calendar month): past soft_limit sends warn, past hard_limit they are refused with PT429.';
SELECT pg_catalog.pg_extension_config_dump('pgmq.tenant_quotas', '');
CREATE TRIGGER security_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pgmq.tenant_quotas
    FOR EACH STATEMENT EXECUTE FUNCTION pgmq._security_changed();

-- One row per tenant, month and backend slot: a backend only ever updates its
-- own slot's row, so counting never waits on another session's transaction.
-- Maintenance folds past months into slot 0.
CREATE TABLE pgmq.tenant_usage (
    tenant_id bigint NOT NULL REFERENCES pgmq.tenants ON DELETE CASCADE,
    period    date NOT NULL,
    slot      integer NOT NULL,
    sent      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, period, slot)
);
COMMENT ON TABLE pgmq.tenant_usage IS
  'Messages sent to the queues of tenants that have a quota, per month (its first day, UTC), in one row per backend slot; read the totals in pgmq.tenant_quota_usage.';
SELECT pg_catalog.pg_extension_config_dump('pgmq.tenant_usage', '');

CREATE FUNCTION pgmq._set_tenant_quota(tenant text, soft_limit bigint, hard_limit bigint) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tenant bigint := pgmq._tenant_id(tenant);
BEGIN
    IF soft_limit IS NULL AND hard_limit IS NULL THEN
        RAISE EXCEPTION 'a quota needs a soft_limit, a hard_limit or both'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'To remove a tenant''s quota, call pgmq.remove_tenant_quota(tenant).';
    END IF;
    IF soft_limit <= 0 OR hard_limit <= 0 THEN
        RAISE EXCEPTION 'quota limits must be positive numbers of messages, got soft % and hard %',
                        coalesce(soft_limit::text, 'NULL'), coalesce(hard_limit::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF soft_limit > hard_limit THEN
        RAISE EXCEPTION 'soft_limit (%) must not be above hard_limit (%)', soft_limit, hard_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO pgmq.tenant_quotas AS q (tenant_id, soft_limit, hard_limit)
    VALUES (v_tenant, soft_limit, hard_limit)
    ON CONFLICT (tenant_id) DO UPDATE SET soft_limit = EXCLUDED.soft_limit, hard_limit = EXCLUDED.hard_limit;
END;
$$;

CREATE FUNCTION pgmq._remove_tenant_quota(tenant text) RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_deleted integer;
BEGIN
    DELETE FROM pgmq.tenant_quotas q WHERE q.tenant_id = pgmq._tenant_id(tenant);
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted > 0;
END;
$$;

COMMENT ON FUNCTION pgmq._set_tenant_quota(text, bigint, bigint) IS
  'set_tenant_quota, run as the owner after the caller was found to be an operator.';
COMMENT ON FUNCTION pgmq._remove_tenant_quota(text) IS
  'remove_tenant_quota, run as the owner after the caller was found to be an operator.';

CREATE FUNCTION pgmq.set_tenant_quota(tenant text, soft_limit bigint DEFAULT NULL, hard_limit bigint DEFAULT NULL)
    RETURNS void AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.set_tenant_quota(text, bigint, bigint) IS
  'Sets a tenant''s monthly quota of messages sent: a NOTICE past soft_limit, PT429 past hard_limit. Operators only.';
CREATE FUNCTION pgmq.remove_tenant_quota(tenant text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.remove_tenant_quota(text) IS
  'Removes a tenant''s quota (its usage is still counted until the month ends); false when it had none. Operators only.';

CREATE VIEW pgmq.tenant_quota_usage WITH (security_invoker = true) AS
SELECT t.slug                                                   AS tenant,
       date_trunc('month', now() AT TIME ZONE 'UTC')::date      AS period,
       COALESCE(u.sent, 0)                                      AS sent,
       q.soft_limit,
       q.hard_limit,
       COALESCE(u.sent, 0) >= q.soft_limit                      AS over_soft_limit,
       COALESCE(u.sent, 0) >= q.hard_limit                      AS at_hard_limit
FROM pgmq.tenant_quotas q
JOIN pgmq.tenants t ON t.tenant_id = q.tenant_id
LEFT JOIN (SELECT s.tenant_id, sum(s.sent)::bigint AS sent FROM pgmq.tenant_usage s
           WHERE s.period = date_trunc('month', now() AT TIME ZONE 'UTC')::date
           GROUP BY s.tenant_id) u ON u.tenant_id = q.tenant_id;
COMMENT ON VIEW pgmq.tenant_quota_usage IS
  'This month''s messages sent by each tenant with a quota, against its soft and hard limits.';

------------------------------------------------------------------------------
-- Consumer-side limits and message retention: queue options
------------------------------------------------------------------------------

ALTER TABLE pgmq.queue_config
    ADD COLUMN max_in_flight     integer  CHECK (max_in_flight BETWEEN 1 AND 1000000),
    ADD COLUMN message_retention interval CHECK (message_retention > interval '0');

-- WITH again: CREATE OR REPLACE VIEW resets the options a view does not restate.
CREATE OR REPLACE VIEW pgmq.queue_options WITH (security_invoker = true) AS
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
       COALESCE(c.breaker_cooldown, interval '30 seconds') AS breaker_cooldown,
       c.max_in_flight,
       c.message_retention
FROM pgmq.meta m
LEFT JOIN pgmq.queue_config c ON c.queue_name = m.queue_name;
COMMENT ON VIEW pgmq.queue_options IS
  'Every queue''s job options, defaults filled in; max_attempts NULL is unlimited, priority_aging NULL is no priorities, breaker_threshold NULL is no circuit breaker, max_in_flight NULL is no cap, message_retention NULL keeps messages until consumed.';

-- Queue tables have no index on vt (reads walk msg_id): a capped queue gets
-- a partial one, so counting its messages in flight reads only the leased
-- and retrying ones, not the backlog.
CREATE FUNCTION pgmq._sync_in_flight_index(queue_name text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET client_min_messages = warning
AS $$
DECLARE
    v_name  varchar := pgmq.registered_queue_name(queue_name);
    v_table text := pgmq.format_table_name(v_name, 'q');
    v_index text := v_table || '_in_flight_idx';
    v_found regclass := to_regclass(format('pgmq.%I', v_index));
BEGIN
    -- The name may belong to something else: a queue named <name>_in_flight_idx has that table.
    IF v_found IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM pg_index i WHERE i.indexrelid = v_found AND i.indrelid = format('pgmq.%I', v_table)::regclass) THEN
        RAISE EXCEPTION 'cannot cap queue "%": the name of its in-flight index, %, is taken', v_name, v_found
            USING ERRCODE = 'duplicate_table';
    END IF;
    IF EXISTS (SELECT 1 FROM pgmq.queue_config c WHERE c.queue_name = v_name AND c.max_in_flight IS NOT NULL) THEN
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (vt) WHERE read_ct > 0', v_index, v_table);
    ELSIF v_found IS NOT NULL THEN
        EXECUTE format('DROP INDEX pgmq.%I', v_index);
    END IF;
END;
$$;
COMMENT ON FUNCTION pgmq._sync_in_flight_index(text) IS
  'Makes the queue''s in-flight index when it has max_in_flight, drops it when it has not.';

DROP FUNCTION pgmq.set_queue_options(text, integer, double precision, double precision, text, text,
                                     integer, interval, boolean, integer, boolean, interval, interval,
                                     double precision, interval, integer, interval);
DROP FUNCTION pgmq._set_queue_options(text, integer, double precision, double precision, text, text,
                                      integer, interval, boolean, integer, boolean, interval, interval,
                                      double precision, interval, integer, interval);

CREATE FUNCTION pgmq._set_queue_options(
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
    breaker_cooldown  interval         DEFAULT NULL,
    max_in_flight     integer          DEFAULT NULL,
    message_retention interval         DEFAULT NULL)
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
    v_name := pgmq.registered_queue_name(_set_queue_options.queue_name);

    IF _set_queue_options.max_attempts NOT BETWEEN 1 AND 1000000 THEN
        RAISE EXCEPTION 'max_attempts must be from 1 to 1000000, got %', _set_queue_options.max_attempts
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For unlimited attempts, reset it: pgmq.reset_queue_options(queue_name, ARRAY[''max_attempts'']).';
    END IF;
    IF NOT (_set_queue_options.backoff_base > 0 AND _set_queue_options.backoff_base <= 2592000) THEN
        RAISE EXCEPTION 'backoff_base must be seconds above 0 and at most 2592000 (30 days), got %',
                        _set_queue_options.backoff_base
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT (_set_queue_options.backoff_cap > 0 AND _set_queue_options.backoff_cap <= 2592000) THEN
        RAISE EXCEPTION 'backoff_cap must be seconds above 0 and at most 2592000 (30 days), got %',
                        _set_queue_options.backoff_cap
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF _set_queue_options.backoff_jitter NOT IN ('none', 'full', 'equal') THEN
        RAISE EXCEPTION 'backoff_jitter must be none, full or equal, got "%"', _set_queue_options.backoff_jitter
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF _set_queue_options.default_vt NOT BETWEEN 0 AND 31536000 THEN
        RAISE EXCEPTION 'default_vt must be seconds from 0 to 31536000 (a year), got %', _set_queue_options.default_vt
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF _set_queue_options.archive_retention <= interval '0' THEN
        RAISE EXCEPTION 'archive_retention must be a positive interval, got %', _set_queue_options.archive_retention
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF _set_queue_options.max_message_size <= 0 THEN
        RAISE EXCEPTION 'max_message_size must be a positive number of bytes, got %', _set_queue_options.max_message_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT (_set_queue_options.idempotency_window > interval '0'
            AND _set_queue_options.idempotency_window <= interval '365 days') THEN
        RAISE EXCEPTION 'idempotency_window must be above 0 and at most 365 days, got %',
                        _set_queue_options.idempotency_window
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT (_set_queue_options.priority_aging >= interval '1 millisecond'
            AND _set_queue_options.priority_aging <= interval '1 day') THEN
        RAISE EXCEPTION 'priority_aging must be from 1 millisecond to 1 day, got %', _set_queue_options.priority_aging
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT (_set_queue_options.breaker_threshold > 0 AND _set_queue_options.breaker_threshold <= 1) THEN
        RAISE EXCEPTION 'breaker_threshold must be a share of nacks above 0 and at most 1, got %',
                        _set_queue_options.breaker_threshold
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT (_set_queue_options.breaker_window >= interval '1 second'
            AND _set_queue_options.breaker_window <= interval '1 day') THEN
        RAISE EXCEPTION 'breaker_window must be from 1 second to 1 day, got %', _set_queue_options.breaker_window
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF _set_queue_options.breaker_min_outcomes NOT BETWEEN 1 AND 1000000 THEN
        RAISE EXCEPTION 'breaker_min_outcomes must be from 1 to 1000000, got %', _set_queue_options.breaker_min_outcomes
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT (_set_queue_options.breaker_cooldown >= interval '1 second'
            AND _set_queue_options.breaker_cooldown <= interval '1 day') THEN
        RAISE EXCEPTION 'breaker_cooldown must be from 1 second to 1 day, got %', _set_queue_options.breaker_cooldown
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF _set_queue_options.max_in_flight NOT BETWEEN 1 AND 1000000 THEN
        RAISE EXCEPTION 'max_in_flight must be from 1 to 1000000 messages, got %', _set_queue_options.max_in_flight
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'To remove the cap, reset it: pgmq.reset_queue_options(queue_name, ARRAY[''max_in_flight'']).';
    END IF;
    IF _set_queue_options.message_retention <= interval '0' THEN
        RAISE EXCEPTION 'message_retention must be a positive interval, got %', _set_queue_options.message_retention
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF _set_queue_options.dead_letter_queue IS NOT NULL THEN
        -- A dead-letter queue the caller may not see is one that does not exist.
        SELECT m.queue_name INTO v_dlq
        FROM pgmq.meta m
        WHERE lower(m.queue_name) = lower(_set_queue_options.dead_letter_queue)
          AND pgmq.queue_visible(m.queue_name::text);
        IF v_dlq IS NULL THEN
            RAISE EXCEPTION 'dead-letter queue "%" does not exist', _set_queue_options.dead_letter_queue
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
         breaker_min_outcomes, breaker_cooldown, max_in_flight, message_retention)
    VALUES (v_name, _set_queue_options.max_attempts, _set_queue_options.backoff_base,
            _set_queue_options.backoff_cap, _set_queue_options.backoff_jitter, v_dlq,
            _set_queue_options.default_vt, _set_queue_options.archive_retention,
            _set_queue_options.keep_history, _set_queue_options.max_message_size,
            _set_queue_options.paused, _set_queue_options.idempotency_window,
            _set_queue_options.priority_aging, _set_queue_options.breaker_threshold,
            _set_queue_options.breaker_window, _set_queue_options.breaker_min_outcomes,
            _set_queue_options.breaker_cooldown, _set_queue_options.max_in_flight,
            _set_queue_options.message_retention)
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
        breaker_cooldown  = COALESCE(EXCLUDED.breaker_cooldown, c.breaker_cooldown),
        max_in_flight     = COALESCE(EXCLUDED.max_in_flight, c.max_in_flight),
        message_retention = COALESCE(EXCLUDED.message_retention, c.message_retention);

    IF _set_queue_options.priority_aging IS DISTINCT FROM v_aging
       AND _set_queue_options.priority_aging IS NOT NULL THEN
        PERFORM pgmq._sync_priority_index(v_name);
    END IF;
    IF _set_queue_options.max_in_flight IS NOT NULL THEN
        PERFORM pgmq._sync_in_flight_index(v_name);
    END IF;

    SELECT * INTO v_row FROM pgmq.queue_options o WHERE o.queue_name = v_name;
    RETURN v_row;
END;
$$;
REVOKE ALL ON FUNCTION pgmq._set_queue_options(text, integer, double precision, double precision, text, text,
    integer, interval, boolean, integer, boolean, interval, interval, double precision, interval,
    integer, interval, integer, interval) FROM PUBLIC;
COMMENT ON FUNCTION pgmq._set_queue_options(text, integer, double precision, double precision, text, text,
    integer, interval, boolean, integer, boolean, interval, interval, double precision, interval,
    integer, interval, integer, interval) IS
  'set_queue_options, run as the owner after the caller''s manage permission was checked.';

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
    breaker_cooldown  interval         DEFAULT NULL,
    max_in_flight     integer          DEFAULT NULL,
    message_retention interval         DEFAULT NULL)
RETURNS pgmq.queue_options
    AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.set_queue_options(text, integer, double precision, double precision, text, text,
    integer, interval, boolean, integer, boolean, interval, interval, double precision, interval,
    integer, interval, integer, interval) IS
  'Sets the named job options of a queue; options left NULL keep their value. Returns all of them. Needs manage.';

-- reset_queue_options learns the two new options.
CREATE OR REPLACE FUNCTION pgmq._reset_queue_options(queue_name text, options text[] DEFAULT NULL)
RETURNS pgmq.queue_options
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_known CONSTANT text[] := ARRAY['max_attempts', 'backoff_base', 'backoff_cap', 'backoff_jitter',
                                     'dead_letter_queue', 'default_vt', 'archive_retention',
                                     'keep_history', 'max_message_size', 'paused',
                                     'idempotency_window', 'priority_aging', 'breaker_threshold',
                                     'breaker_window', 'breaker_min_outcomes', 'breaker_cooldown',
                                     'max_in_flight', 'message_retention'];
    v_name  varchar;
    v_bad   text;
    v_row   pgmq.queue_options;
    v_aging interval;
    v_opts  text[] := _reset_queue_options.options;
    v_flight integer;
BEGIN
    LOCK TABLE pgmq.queue_config IN SHARE ROW EXCLUSIVE MODE;
    v_name := pgmq.registered_queue_name(_reset_queue_options.queue_name);
    SELECT c.priority_aging, c.max_in_flight INTO v_aging, v_flight FROM pgmq.queue_config c WHERE c.queue_name = v_name;
    IF v_opts IS NULL THEN
        DELETE FROM pgmq.queue_config c WHERE c.queue_name = v_name;
    ELSE
        SELECT o INTO v_bad FROM unnest(v_opts) o WHERE o IS NULL OR o <> ALL (v_known) LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'unknown queue option "%"', v_bad
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Options are: ' || array_to_string(v_known, ', ') || '.';
        END IF;
        UPDATE pgmq.queue_config c SET
            max_attempts      = CASE WHEN 'max_attempts' = ANY (v_opts) THEN NULL ELSE c.max_attempts END,
            backoff_base      = CASE WHEN 'backoff_base' = ANY (v_opts) THEN NULL ELSE c.backoff_base END,
            backoff_cap       = CASE WHEN 'backoff_cap' = ANY (v_opts) THEN NULL ELSE c.backoff_cap END,
            backoff_jitter    = CASE WHEN 'backoff_jitter' = ANY (v_opts) THEN NULL ELSE c.backoff_jitter END,
            dead_letter_queue = CASE WHEN 'dead_letter_queue' = ANY (v_opts) THEN NULL ELSE c.dead_letter_queue END,
            default_vt        = CASE WHEN 'default_vt' = ANY (v_opts) THEN NULL ELSE c.default_vt END,
            archive_retention = CASE WHEN 'archive_retention' = ANY (v_opts) THEN NULL ELSE c.archive_retention END,
            keep_history      = CASE WHEN 'keep_history' = ANY (v_opts) THEN NULL ELSE c.keep_history END,
            max_message_size  = CASE WHEN 'max_message_size' = ANY (v_opts) THEN NULL ELSE c.max_message_size END,
            paused            = CASE WHEN 'paused' = ANY (v_opts) THEN NULL ELSE c.paused END,
            idempotency_window = CASE WHEN 'idempotency_window' = ANY (v_opts) THEN NULL ELSE c.idempotency_window END,
            priority_aging    = CASE WHEN 'priority_aging' = ANY (v_opts) THEN NULL ELSE c.priority_aging END,
            breaker_threshold = CASE WHEN 'breaker_threshold' = ANY (v_opts) THEN NULL ELSE c.breaker_threshold END,
            breaker_window    = CASE WHEN 'breaker_window' = ANY (v_opts) THEN NULL ELSE c.breaker_window END,
            breaker_min_outcomes = CASE WHEN 'breaker_min_outcomes' = ANY (v_opts) THEN NULL ELSE c.breaker_min_outcomes END,
            breaker_cooldown  = CASE WHEN 'breaker_cooldown' = ANY (v_opts) THEN NULL ELSE c.breaker_cooldown END,
            max_in_flight     = CASE WHEN 'max_in_flight' = ANY (v_opts) THEN NULL ELSE c.max_in_flight END,
            message_retention = CASE WHEN 'message_retention' = ANY (v_opts) THEN NULL ELSE c.message_retention END
        WHERE c.queue_name = v_name;
    END IF;
    IF v_aging IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM pgmq.queue_config c WHERE c.queue_name = v_name AND c.priority_aging IS NOT NULL) THEN
        PERFORM pgmq._sync_priority_index(v_name);
    END IF;
    IF v_flight IS NOT NULL THEN
        PERFORM pgmq._sync_in_flight_index(v_name);
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

------------------------------------------------------------------------------
-- Throughput
------------------------------------------------------------------------------

CREATE FUNCTION pgmq.queue_counters()
RETURNS TABLE (queue_name text, sent bigint, read bigint, acked bigint, archived bigint,
               nacked bigint, dead_lettered bigint)
    AS 'MODULE_PATHNAME', 'queue_ext_queue_counters' LANGUAGE C STABLE;
COMMENT ON FUNCTION pgmq.queue_counters() IS
  'Messages sent, read, acked (deleted, acked or popped), archived, nacked and dead-lettered per queue since the server started, counted at commit in shared memory (no rows unless queue_ext is preloaded). The caller''s queues only.';

CREATE TABLE pgmq.throughput_history (
    queue_name    text NOT NULL,
    minute        timestamp with time zone NOT NULL,
    sent          bigint NOT NULL DEFAULT 0,
    read          bigint NOT NULL DEFAULT 0,
    acked         bigint NOT NULL DEFAULT 0,
    archived      bigint NOT NULL DEFAULT 0,
    nacked        bigint NOT NULL DEFAULT 0,
    dead_lettered bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (queue_name, minute)
);
COMMENT ON TABLE pgmq.throughput_history IS
  'Messages per queue and minute (the minute maintenance rolled them up in), from pgmq.queue_counters(); kept 7 days.';
SELECT pg_catalog.pg_extension_config_dump('pgmq.throughput_history', '');

CREATE VIEW pgmq.tenant_throughput WITH (security_invoker = true) AS
SELECT t.slug AS tenant, h.minute,
       sum(h.sent)::bigint AS sent, sum(h.read)::bigint AS read, sum(h.acked)::bigint AS acked,
       sum(h.archived)::bigint AS archived, sum(h.nacked)::bigint AS nacked,
       sum(h.dead_lettered)::bigint AS dead_lettered
FROM pgmq.throughput_history h
JOIN pgmq.queue_tenants q ON lower(q.queue_name) = lower(h.queue_name)
JOIN pgmq.tenants t ON t.tenant_id = q.tenant_id
GROUP BY t.slug, h.minute;
COMMENT ON VIEW pgmq.tenant_throughput IS
  'pgmq.throughput_history summed over each tenant''s queues, per minute.';

-- What the last roll-up saw; counters below it mean the server restarted.
CREATE UNLOGGED TABLE pgmq.throughput_marks (
    queue_name    text PRIMARY KEY,
    sent          bigint NOT NULL,
    read          bigint NOT NULL,
    acked         bigint NOT NULL,
    archived      bigint NOT NULL,
    nacked        bigint NOT NULL,
    dead_lettered bigint NOT NULL
);
COMMENT ON TABLE pgmq.throughput_marks IS
  'The counters pgmq.queue_counters() showed at the last roll-up into pgmq.throughput_history.';

CREATE FUNCTION pgmq._throughput_rollup(batch_size integer) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_queues bigint;
BEGIN
    -- One statement: the marks it reads are those from before it moves them.
    WITH counts AS MATERIALIZED (SELECT * FROM pgmq.queue_counters()),
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
    added AS (
        INSERT INTO pgmq.throughput_history AS h
            (queue_name, minute, sent, read, acked, archived, nacked, dead_lettered)
        SELECT d.queue_name, date_trunc('minute', now()), d.sent, d.read, d.acked, d.archived, d.nacked, d.dead_lettered
        FROM deltas d
        WHERE d.sent + d.read + d.acked + d.archived + d.nacked + d.dead_lettered > 0
        ON CONFLICT (queue_name, minute) DO UPDATE SET
            sent = h.sent + EXCLUDED.sent, read = h.read + EXCLUDED.read, acked = h.acked + EXCLUDED.acked,
            archived = h.archived + EXCLUDED.archived, nacked = h.nacked + EXCLUDED.nacked,
            dead_lettered = h.dead_lettered + EXCLUDED.dead_lettered
        RETURNING 1),
    marked AS (
        INSERT INTO pgmq.throughput_marks AS m
        SELECT * FROM counts
        ON CONFLICT (queue_name) DO UPDATE SET
            sent = EXCLUDED.sent, read = EXCLUDED.read, acked = EXCLUDED.acked, archived = EXCLUDED.archived,
            nacked = EXCLUDED.nacked, dead_lettered = EXCLUDED.dead_lettered
        RETURNING 1)
    SELECT (SELECT count(*) FROM added) INTO v_queues;

    DELETE FROM pgmq.throughput_history h
    WHERE h.ctid = ANY (ARRAY(SELECT o.ctid FROM pgmq.throughput_history o
                              WHERE o.minute < now() - interval '7 days' LIMIT batch_size));
    RETURN v_queues;
END;
$$;
COMMENT ON FUNCTION pgmq._throughput_rollup(integer) IS
  'Adds what pgmq.queue_counters() grew by since the last roll-up to this minute of pgmq.throughput_history, and drops history older than 7 days; returns how many queues had work.';

------------------------------------------------------------------------------
-- Maintenance
------------------------------------------------------------------------------

-- Steps other features add to maintenance (the metrics roll-up registers
-- here): each is a function taking batch_size and returning the rows it
-- handled, run by pgmq.run_maintenance() after queue_ext's own steps.
CREATE TABLE pgmq.maintenance_steps (
    step     text PRIMARY KEY CONSTRAINT maintenance_step_name CHECK (step ~ '^[a-z][a-z0-9_]{0,62}$'),
    function regprocedure NOT NULL,
    position integer NOT NULL DEFAULT 100
);
COMMENT ON TABLE pgmq.maintenance_steps IS
  'Further steps of pgmq.run_maintenance(): function(batch_size integer) returning bigint, owned by the extension owner or a superuser, run in position order as the extension owner with search_path pinned to pg_catalog. Only the owner may add rows.';
SELECT pg_catalog.pg_extension_config_dump('pgmq.maintenance_steps', '');

-- A step runs as the extension owner: a function someone else owns could be
-- replaced by its owner after it was registered. Checked when a step is
-- registered and again before every run (the function may have been dropped
-- or given away since: regprocedure keeps no dependency).
CREATE FUNCTION pgmq._maintenance_step_problem(fn regprocedure) RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_proc pg_proc;
BEGIN
    SELECT * INTO v_proc FROM pg_proc p WHERE p.oid = fn;
    IF NOT FOUND THEN
        RETURN 'its function does not exist';
    END IF;
    IF v_proc.pronargs <> 1 OR v_proc.proargtypes[0] <> 'integer'::regtype
       OR v_proc.prorettype <> 'bigint'::regtype OR v_proc.proretset OR v_proc.prokind <> 'f' THEN
        RETURN format('must be a function(batch_size integer) returning bigint, not %s', fn);
    END IF;
    IF v_proc.proowner IS DISTINCT FROM (SELECT e.extowner FROM pg_extension e WHERE e.extname = 'queue_ext')
       AND NOT COALESCE((SELECT r.rolsuper FROM pg_roles r WHERE r.oid = v_proc.proowner), false) THEN
        RETURN format('it runs as the extension owner: its function %s must belong to the owner or a superuser', fn);
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION pgmq._maintenance_step_problem(regprocedure) IS
  'Why a function cannot be a maintenance step (NULL: it can).';

CREATE FUNCTION pgmq._maintenance_step_check() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_problem text := pgmq._maintenance_step_problem(NEW.function);
BEGIN
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION 'maintenance step %: %', NEW.step, v_problem
            USING ERRCODE = CASE WHEN v_problem LIKE '%owner%' THEN 'insufficient_privilege'
                                 ELSE 'invalid_parameter_value' END;
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION pgmq._maintenance_step_check() IS
  'Trigger on pgmq.maintenance_steps: a step is a function(integer) returning bigint that the extension owner or a superuser owns.';
CREATE TRIGGER maintenance_step_check BEFORE INSERT OR UPDATE ON pgmq.maintenance_steps
    FOR EACH ROW EXECUTE FUNCTION pgmq._maintenance_step_check();

CREATE FUNCTION pgmq._dead_letter_exhausted(queue_name text, batch_size integer) RETURNS bigint
    AS 'MODULE_PATHNAME', 'queue_ext_dead_letter_exhausted' LANGUAGE C;
COMMENT ON FUNCTION pgmq._dead_letter_exhausted(text, integer) IS
  'Moves up to batch_size messages of the queue whose last allowed delivery has lapsed to its dead letters; returns how many.';

-- One queue's steps: how many rows each handled. Each step runs in a
-- subtransaction of its own, so one that fails (a dead-letter queue given to
-- another tenant) does not keep the others from running.
CREATE FUNCTION pgmq._maintain_queue(queue_name text, batch_size integer)
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
    FOREACH v_step IN ARRAY ARRAY['dead_letter', 'message_retention', 'archive_retention'] LOOP
        v_keep := CASE v_step WHEN 'message_retention' THEN v_options.message_retention
                              WHEN 'archive_retention' THEN v_options.archive_retention END;
        CONTINUE WHEN v_step <> 'dead_letter' AND v_keep IS NULL;
        step := v_step;
        BEGIN
            IF v_step = 'dead_letter' THEN
                -- Exhausted messages: delivered as often as allowed and never acked.
                affected := pgmq._dead_letter_exhausted(queue_name, batch_size);
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
  'Maintenance of one queue: dead letters, message retention, archive retention, up to batch_size rows each.';

-- Past months' usage rows, one per backend slot, folded into slot 0.
CREATE FUNCTION pgmq._fold_tenant_usage(batch_size integer) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_folded bigint;
BEGIN
    WITH gone AS (
        DELETE FROM pgmq.tenant_usage u
        WHERE (u.tenant_id, u.period, u.slot) IN (
            SELECT s.tenant_id, s.period, s.slot FROM pgmq.tenant_usage s
            WHERE s.period < date_trunc('month', now() AT TIME ZONE 'UTC')::date AND s.slot <> 0
            ORDER BY s.tenant_id, s.period, s.slot LIMIT batch_size FOR UPDATE SKIP LOCKED)
        RETURNING u.tenant_id, u.period, u.sent),
    folded AS (
        INSERT INTO pgmq.tenant_usage AS t (tenant_id, period, slot, sent)
        SELECT g.tenant_id, g.period, 0, sum(g.sent) FROM gone g GROUP BY g.tenant_id, g.period
        ON CONFLICT (tenant_id, period, slot) DO UPDATE SET sent = t.sent + EXCLUDED.sent
        RETURNING 1)
    SELECT count(*) INTO v_folded FROM gone;
    RETURN v_folded;
END;
$$;
COMMENT ON FUNCTION pgmq._fold_tenant_usage(integer) IS
  'Folds up to batch_size per-backend usage rows of past months into one row per tenant and month.';

-- The work of one pass. Each queue and each general step runs in a
-- subtransaction of its own: one that fails (a queue dropped meanwhile, a
-- dead-letter queue given to another tenant, a registered step that
-- raises) is reported, with a WARNING, and the others go on.
CREATE FUNCTION pgmq._run_maintenance(batch_size integer DEFAULT 10000, queues text[] DEFAULT NULL,
                                      general boolean DEFAULT true)
RETURNS TABLE (step text, queue_name text, affected bigint)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_queue text;
    v_step  record;
    v_done  record;
    v_n     bigint;
    v_problem text;
BEGIN
    IF batch_size IS NULL OR batch_size NOT BETWEEN 1 AND 1000000 THEN
        RAISE EXCEPTION 'batch_size must be from 1 to 1000000 rows, got %', coalesce(batch_size::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF general IS NULL THEN
        RAISE EXCEPTION 'general must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- Every queue named must exist (42P01 otherwise, as everywhere).
    PERFORM pgmq.registered_queue_name(q) FROM unnest(queues) q;

    FOR v_queue IN
        SELECT m.queue_name::text FROM pgmq.meta m
        WHERE queues IS NULL OR lower(m.queue_name) IN (SELECT lower(q) FROM unnest(queues) q)
        ORDER BY m.queue_name
    LOOP
        BEGIN
            FOR v_done IN SELECT * FROM pgmq._maintain_queue(v_queue, batch_size) LOOP
                IF v_done.affected > 0 OR v_done.step LIKE '% failed: %' THEN
                    step := v_done.step; queue_name := v_queue; affected := v_done.affected; RETURN NEXT;
                END IF;
            END LOOP;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'maintenance of queue "%" failed: % (%)', v_queue, SQLERRM, SQLSTATE;
            step := 'queue failed: ' || SQLSTATE; queue_name := v_queue; affected := 0; RETURN NEXT;
        END;
    END LOOP;
    IF NOT general THEN
        RETURN;
    END IF;

    FOR v_step IN
        SELECT 'idempotency_keys' AS step, 'pgmq._expire_idempotency_keys(integer)'::regprocedure AS function, 0 AS position
        UNION ALL
        SELECT 'tenant_usage', 'pgmq._fold_tenant_usage(integer)'::regprocedure, 0
        UNION ALL
        SELECT 'throughput', 'pgmq._throughput_rollup(integer)'::regprocedure, 0
        UNION ALL
        SELECT s.step, s.function, s.position FROM pgmq.maintenance_steps s
        ORDER BY 3, 1
    LOOP
        BEGIN
            v_problem := pgmq._maintenance_step_problem(v_step.function);
            IF v_problem IS NOT NULL THEN
                RAISE EXCEPTION 'maintenance step %: %', v_step.step, v_problem
                    USING ERRCODE = 'object_not_in_prerequisite_state';
            END IF;
            -- The registered signature is (integer): the cast picks that function and no overload.
            EXECUTE format('SELECT %s($1::integer)', v_step.function::regproc) INTO v_n USING batch_size;
            IF v_n > 0 THEN
                step := v_step.step; queue_name := NULL; affected := v_n; RETURN NEXT;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'maintenance step "%" failed: % (%)', v_step.step, SQLERRM, SQLSTATE;
            step := v_step.step || ' failed: ' || SQLSTATE; queue_name := NULL; affected := 0; RETURN NEXT;
        END;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION pgmq._run_maintenance(integer, text[], boolean) IS
  'run_maintenance, run as the owner after the caller was found to be an operator.';

CREATE FUNCTION pgmq.run_maintenance(batch_size integer DEFAULT 10000, queues text[] DEFAULT NULL,
                                     general boolean DEFAULT true)
RETURNS TABLE (step text, queue_name text, affected bigint)
    AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.run_maintenance(integer, text[], boolean) IS
  'One pass of maintenance in the caller''s transaction: for each queue (all, or those named) up to batch_size exhausted messages dead-lettered, messages past message_retention and archived rows past archive_retention deleted; then, when general, expired idempotency keys, past months'' usage and the steps in pgmq.maintenance_steps. Returns what it did, and what failed. Operators only.';

CREATE PROCEDURE pgmq.maintain(batch_size integer DEFAULT 10000, max_passes integer DEFAULT 100)
    LANGUAGE plpgsql
AS $$
DECLARE
    v_queue  text;
    v_passes integer;
    v_work   bigint;
BEGIN
    IF max_passes IS NULL OR max_passes < 1 THEN
        RAISE EXCEPTION 'max_passes must be a positive number, got %', coalesce(max_passes::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Checked (operators only, batch_size) before any work.
    PERFORM pgmq.run_maintenance(batch_size, '{}', false);
    -- Queue by queue, committing after every pass: deletes land in bounded
    -- batches that vacuum can reclaim, and no lock or snapshot is held
    -- across queues.
    FOR v_queue IN SELECT m.queue_name::text FROM pgmq.meta m ORDER BY m.queue_name LOOP
        v_passes := 0;
        LOOP
            BEGIN
                SELECT COALESCE(pg_catalog.max(r.affected), 0) INTO v_work
                FROM pgmq.run_maintenance(batch_size, ARRAY[v_queue], false) r;
            EXCEPTION WHEN undefined_table THEN
                v_work := 0;    -- dropped since the list was made
            END;
            v_passes := v_passes + 1;
            COMMIT;
            EXIT WHEN v_work < batch_size OR v_passes >= max_passes;
        END LOOP;
    END LOOP;
    v_passes := 0;
    LOOP
        SELECT COALESCE(pg_catalog.max(r.affected), 0) INTO v_work
        FROM pgmq.run_maintenance(batch_size, '{}', true) r;
        v_passes := v_passes + 1;
        COMMIT;
        EXIT WHEN v_work < batch_size OR v_passes >= max_passes;
    END LOOP;
END;
$$;
COMMENT ON PROCEDURE pgmq.maintain(integer, integer) IS
  'Runs maintenance queue by queue, then its general steps, committing after every pass of up to batch_size rows, until a pass leaves no full batch (or max_passes). CALL it outside a transaction block; pg_cron runs it (pgmq.schedule_maintenance). Operators only.';

CREATE FUNCTION pgmq._schedule_maintenance(schedule text DEFAULT '* * * * *') RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_version text;
    v_job     bigint;
    v_message text;
BEGIN
    IF schedule IS NULL OR btrim(schedule) = '' THEN
        RAISE EXCEPTION 'schedule must not be NULL or empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT e.extversion INTO v_version FROM pg_extension e WHERE e.extname = 'pg_cron';
    IF v_version IS NULL THEN
        RAISE EXCEPTION 'pg_cron is not installed in this database'
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'pgmq.maintain() runs without pg_cron; only its schedule needs it.',
                  HINT = 'Add pg_cron to shared_preload_libraries, set cron.database_name to this database, then CREATE EXTENSION pg_cron. Or run CALL pgmq.maintain() from another scheduler.';
    END IF;
    BEGIN
        EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO v_job
            USING 'queue_ext_maintenance', schedule, 'CALL pgmq.maintain()';
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT;
        IF v_message NOT LIKE 'invalid schedule%' THEN
            RAISE;
        END IF;
        RAISE EXCEPTION 'pg_cron % does not accept the schedule %', v_version, quote_literal(schedule)
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'pg_cron said: ' || v_message,
                  HINT = CASE WHEN string_to_array(split_part(v_version, '-', 1), '.')::int[] < ARRAY[1, 5] THEN
                      'pg_cron ' || v_version || ' takes five-field cron schedules (minute hour day month weekday), the most frequent being ''* * * * *'', every minute; ''N seconds'' needs pg_cron 1.5 or later.'
                  ELSE 'Use a five-field cron schedule, or ''N seconds'' with N from 1 to 59.' END;
    END;
    RETURN v_job;
END;
$$;

CREATE FUNCTION pgmq._unschedule_maintenance() RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension e WHERE e.extname = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed in this database'
            USING ERRCODE = 'feature_not_supported';
    END IF;
    EXECUTE 'SELECT j.jobid FROM cron.job j WHERE j.jobname = $1 AND j.username = current_user'
        INTO v_job USING 'queue_ext_maintenance';
    IF v_job IS NULL THEN
        RETURN false;
    END IF;
    EXECUTE 'SELECT cron.unschedule($1)' USING v_job;
    RETURN true;
END;
$$;

COMMENT ON FUNCTION pgmq._schedule_maintenance(text) IS
  'schedule_maintenance, run as the owner after the caller was found to be an operator.';
COMMENT ON FUNCTION pgmq._unschedule_maintenance() IS
  'unschedule_maintenance, run as the owner after the caller was found to be an operator.';

CREATE FUNCTION pgmq.schedule_maintenance(schedule text DEFAULT '* * * * *') RETURNS bigint
    AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.schedule_maintenance(text) IS
  'Has pg_cron CALL pgmq.maintain() on this schedule, as the extension owner (job queue_ext_maintenance, replaced when scheduled again); returns the job id. Operators only.';
CREATE FUNCTION pgmq.unschedule_maintenance() RETURNS boolean
    AS 'MODULE_PATHNAME', 'queue_ext_as_owner' LANGUAGE C;
COMMENT ON FUNCTION pgmq.unschedule_maintenance() IS
  'Removes the pg_cron job of pgmq.schedule_maintenance(); false when there was none. Operators only.';

------------------------------------------------------------------------------
-- Rights
------------------------------------------------------------------------------

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

ALTER TABLE pgmq.rate_limits ENABLE ROW LEVEL SECURITY;
CREATE POLICY queue_ext_rows ON pgmq.rate_limits AS PERMISSIVE USING (true);
CREATE POLICY queue_ext_tenant ON pgmq.rate_limits AS RESTRICTIVE
    USING (CASE WHEN scope = 'queue' THEN pgmq.queue_visible(queue_name) ELSE pgmq.tenant_visible(tenant_id) END);
ALTER TABLE pgmq.tenant_quotas ENABLE ROW LEVEL SECURITY;
CREATE POLICY queue_ext_rows ON pgmq.tenant_quotas AS PERMISSIVE USING (true);
CREATE POLICY queue_ext_tenant ON pgmq.tenant_quotas AS RESTRICTIVE USING (pgmq.tenant_visible(tenant_id));
ALTER TABLE pgmq.throughput_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY queue_ext_rows ON pgmq.throughput_history AS PERMISSIVE USING (true);
CREATE POLICY queue_ext_tenant ON pgmq.throughput_history AS RESTRICTIVE USING (pgmq.queue_visible(queue_name));
ALTER TABLE pgmq.throughput_marks ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgmq.tenant_usage ENABLE ROW LEVEL SECURITY;
CREATE POLICY queue_ext_rows ON pgmq.tenant_usage AS PERMISSIVE USING (true);
CREATE POLICY queue_ext_tenant ON pgmq.tenant_usage AS RESTRICTIVE USING (pgmq.tenant_visible(tenant_id));
-- No policy: nobody but the owner sees a row.
ALTER TABLE pgmq.rate_limit_buckets ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgmq.maintenance_steps ENABLE ROW LEVEL SECURITY;

-- pgmq's default privileges give pg_monitor SELECT on new tables: not on tenants' data.
REVOKE ALL ON pgmq.rate_limits, pgmq.rate_limit_buckets, pgmq.tenant_quotas, pgmq.tenant_usage,
              pgmq.maintenance_steps, pgmq.throughput_history, pgmq.throughput_marks FROM PUBLIC, pg_monitor;
REVOKE ALL ON SEQUENCE pgmq.rate_limits_limit_id_seq FROM PUBLIC, pg_monitor;
GRANT SELECT ON pgmq.tenant_quota_usage, pgmq.tenant_throughput TO PUBLIC;

-- Tenant roles read their own limits, quota and usage.
DO $$
DECLARE
    v_role regrole;
BEGIN
    FOR v_role IN SELECT r.role FROM pgmq.tenant_roles r LOOP
        EXECUTE format('GRANT SELECT ON pgmq.rate_limits, pgmq.tenant_quotas, pgmq.tenant_usage, pgmq.throughput_history TO %s', v_role);
    END LOOP;
END;
$$;
DO $$
DECLARE
    v_def text := pg_get_functiondef('pgmq._tenant_reads(regrole, bigint, boolean)'::regprocedure);
    v_from text := '''pgmq.idempotency_keys''';
BEGIN
    IF position(v_from IN v_def) = 0 THEN
        RAISE EXCEPTION 'pgmq._tenant_reads has no table list to extend';
    END IF;
    EXECUTE replace(v_def, v_from, '''pgmq.idempotency_keys, pgmq.rate_limits, pgmq.tenant_quotas, pgmq.tenant_usage, pgmq.throughput_history''');
END;
$$;
