#!/usr/bin/env bash
# Queue data survives pg_dump and pg_restore, and survives DROP EXTENSION
# (queue tables are not extension members, as in pgmq 1.6+). So do job
# options and state, priorities, idempotency keys, tenants, their queues and
# API keys, limits, quotas, topic bindings, partitioned (pg_partman),
# unlogged and paused queues, grants, gateway roles, maintenance steps and
# throughput history; and the restored copy works. pgmq before 1.6
# lost every queue's data in a dump; this checks with a real dump and restore.
set -euo pipefail
src=qx_dump_src
dst=qx_dump_dst
dump="$(mktemp /tmp/qx_dump.XXXXXX)"
trap 'rm -f "$dump"' EXIT
psql -qX -d postgres -c "DROP DATABASE IF EXISTS $src" -c "DROP DATABASE IF EXISTS $dst" -c "CREATE DATABASE $src"
psql -qX -v ON_ERROR_STOP=1 -d "$src" <<'SQL'
CREATE EXTENSION queue_ext;
SELECT pgmq.create('orders');
SELECT pgmq.create('QueueCased');
SELECT count(*) FROM pgmq.send_batch('orders', ARRAY(SELECT jsonb_build_object('n', i) FROM generate_series(1, 500) i));
SELECT count(*) FROM pgmq.send('orders', '{"delayed":true}', 3600);
SELECT count(*) FROM pgmq.send('QueueCased', '{"cased":true}', '{"h":1}'::jsonb);
SELECT count(*) FROM pgmq.read('orders', 600, 10);
SELECT count(*) FROM pgmq.archive('orders', ARRAY[1, 2, 3]::bigint[]);
SELECT pgmq.enable_notify_insert('orders', 100);
-- Job options and job state travel too.
SELECT pgmq.create('orders_dead');
SELECT queue_name FROM pgmq.set_queue_options('orders', max_attempts => 3, dead_letter_queue => 'orders_dead',
                                              keep_history => true, backoff_base => 5);
SELECT pgmq.nack('orders', 4, 1, 'failed once');
SELECT pgmq.ack('orders', 5, 1, '{"done": true}');
-- Ordering and dedup: a priority queue (its index uses an extension function),
-- a fifo index, and idempotency keys.
SELECT pgmq.create('urgent');
SELECT queue_name FROM pgmq.set_queue_options('urgent', priority_aging => '30 seconds');
SELECT count(*) FROM pgmq.send('urgent', '{"p": 1}', '{"x-queue-ext-priority": 1, "x-queue-ext-idempotency-key": "u1"}');
SELECT count(*) FROM pgmq.send('urgent', '{"p": 7}', '{"x-queue-ext-priority": 7}');
SELECT pgmq.create_fifo_index('orders');
-- Tenants: a tenant, its role, its queue, an API key (its hash needs the
-- server secret to travel too), a grant and the audit log.
DROP ROLE IF EXISTS qx_dump_tenant;
CREATE ROLE qx_dump_tenant;
SELECT pgmq.create_tenant('dumped');
SELECT pgmq.add_tenant_role('dumped', 'qx_dump_tenant');
SET ROLE qx_dump_tenant;
SELECT pgmq.create('tenant_q');
SELECT count(*) FROM pgmq.send('tenant_q', '{"t": 1}');
RESET ROLE;
SELECT pgmq.create_api_key('dumped', 'restored key', '{publish,consume}') AS key \gset
-- Limits and quotas: a tenant's send limit, a queue's in-flight cap and
-- message retention, a quota and its usage so far.
SELECT pgmq.set_rate_limit('tenant', 'dumped', 'send', 100, '1 minute', 20);
SELECT pgmq.set_rate_limit('queue', 'orders', 'deliver', 50000, '1 second', NULL, 'token_bucket');
SELECT queue_name FROM pgmq.set_queue_options('orders', max_in_flight => 90000, message_retention => '14 days');
SELECT pgmq.set_tenant_quota('dumped', 1000, 5000);
SELECT count(*) FROM pgmq.send('tenant_q', '{"t": 2}');
-- Topic bindings.
SELECT pgmq.bind_topic('orders.*', 'orders'), pgmq.bind_topic('#', 'urgent');
-- A queue pg_partman partitions by msg_id (100 a partition, 1 000 kept), an
-- unlogged queue, a paused one, a grant to a role without a tenant, a
-- gateway role, a maintenance step (a regprocedure in a dumped table) and
-- the throughput history maintenance writes.
CREATE SCHEMA partman;
CREATE EXTENSION pg_partman SCHEMA partman;
SELECT pgmq.create_partitioned('events', '100', '1000');
SELECT count(*) FROM pgmq.send_batch('events', ARRAY(SELECT jsonb_build_object('e', i) FROM generate_series(1, 250) i));
SELECT pgmq.create_unlogged('scratch');
SELECT count(*) FROM pgmq.send('scratch', '{"u": 1}');
SELECT pgmq.create('held');
SELECT count(*) FROM pgmq.send('held', '{"h": 1}');
SELECT pgmq.pause_queue('held');
DROP ROLE IF EXISTS qx_dump_reader;
CREATE ROLE qx_dump_reader;
SELECT pgmq.grant_queue('orders', 'qx_dump_reader', '{consume}');
DROP ROLE IF EXISTS qx_dump_gateway;
CREATE ROLE qx_dump_gateway;
SELECT pgmq.set_gateway_role('qx_dump_gateway', '{app_metadata,tenant}', '{publish}');
CREATE FUNCTION public.dump_step(batch_size integer) RETURNS bigint LANGUAGE sql AS 'SELECT 1::bigint';
INSERT INTO pgmq.maintenance_steps (step, function) VALUES ('dump_step', 'public.dump_step(integer)');
SELECT count(*) FROM pgmq.run_maintenance();
\o /tmp/qx_dump_key
SELECT :'key';
\o
SQL
key="$(grep qx_ /tmp/qx_dump_key | tr -d ' ')"
rm -f /tmp/qx_dump_key

snapshot() {
  psql -qXAt -d "$1" <<'SQL'
SELECT 'queues', string_agg(queue_name || '/' || is_unlogged, ',' ORDER BY queue_name) FROM pgmq.list_queues();
SELECT 'orders', count(*), sum((message->>'n')::int), count(*) FILTER (WHERE read_ct > 0),
       count(*) FILTER (WHERE vt > now()) FROM pgmq.q_orders;
SELECT 'archive', string_agg(msg_id::text, ',' ORDER BY msg_id) FROM pgmq.a_orders;
SELECT 'cased', message, headers FROM pgmq.q_queuecased;
SELECT 'metrics', queue_name, queue_length, total_messages FROM pgmq.metrics_all();
SELECT 'options', queue_name, max_attempts, dead_letter_queue, keep_history, backoff_base FROM pgmq.queue_options;
SELECT 'jobs', msg_id, headers -> 'x-queue-ext-nacked', headers -> 'x-queue-ext-errors' -> 0 ->> 'error'
FROM pgmq.q_orders WHERE headers IS NOT NULL;
SELECT 'outcomes', msg_id, headers -> 'x-queue-ext-outcome' ->> 'state' FROM pgmq.a_orders ORDER BY msg_id;
SELECT 'keys', queue_name, idempotency_key, msg_id FROM pgmq.idempotency_keys;
SELECT 'indexes', indexname FROM pg_indexes WHERE indexname IN ('q_urgent_priority_idx', 'q_orders_fifo_idx') ORDER BY 2;
SELECT 'priority', queue_name, priority_aging FROM pgmq.queue_options WHERE queue_name = 'urgent';
SELECT 'tenants', t.slug, q.queue_name FROM pgmq.tenants t JOIN pgmq.queue_tenants q USING (tenant_id);
SELECT 'apikeys', tenant, name, scopes FROM pgmq.list_api_keys();
SELECT 'audit', count(*) FROM pgmq.audit_log;
SELECT 'limits', scope, action, method, rate, per, burst FROM pgmq.rate_limits ORDER BY limit_id;
SELECT 'caps', max_in_flight, message_retention FROM pgmq.queue_options WHERE queue_name = 'orders';
SELECT 'quota', tenant, sent, soft_limit, hard_limit FROM pgmq.tenant_quota_usage;
SELECT 'topics', pattern, queue_name, compiled_regex FROM pgmq.topic_bindings ORDER BY pattern;
SELECT 'events', count(*), sum((message->>'e')::int),
       (SELECT count(*) FROM pg_inherits WHERE inhparent = 'pgmq.q_events'::regclass) FROM pgmq.q_events;
SELECT 'partman', parent_table, partition_interval, retention FROM partman.part_config ORDER BY 1;
SELECT 'scratch', count(*) FROM pgmq.q_scratch;
SELECT 'paused', queue_name FROM pgmq.queue_options WHERE paused ORDER BY 1;
SELECT 'grants', queue_name, grantee, permissions FROM pgmq.queue_grants ORDER BY 1, 2;
SELECT 'gateway', role, tenant_claim, permissions FROM pgmq.gateway_roles ORDER BY 1;
SELECT 'steps', step, function, position FROM pgmq.maintenance_steps ORDER BY 1;
SELECT 'history', queue_name, sum(sent) FROM pgmq.throughput_history GROUP BY 1, 2 ORDER BY 2;
SQL
}

before="$(snapshot "$src")"
pg_dump -Fc -d "$src" -f "$dump"
psql -qX -d postgres -c "CREATE DATABASE $dst"
pg_restore -d "$dst" "$dump"
after="$(snapshot "$dst")"
echo "source:";   echo "$before"
echo "restored:"; echo "$after"
[ "$before" = "$after" ] || { echo "restored data differs"; exit 1; }

# The restored queue keeps working, and new ids continue after the old ones.
# Visible now: 497 rows less 5 still leased, 1 retrying and 1 delayed, plus the new one.
next=$(psql -qXAt -d "$dst" -c "SELECT * FROM pgmq.send('orders', '{\"after\":\"restore\"}')")
[ "$next" -gt 501 ] || { echo "msg_id $next reuses an old id"; exit 1; }
psql -qXAt -d "$dst" -c "SELECT count(*) FROM pgmq.read('orders', 30, 1000)" | grep -qx 491
# ... with its options: the restored max_attempts 3 and dead-letter queue apply.
psql -qXAt -v ON_ERROR_STOP=1 -d "$dst" <<'SQL' | tee /dev/stderr | grep -qx "dead:1"
UPDATE pgmq.q_orders SET vt = now() WHERE msg_id = 4;
SELECT pgmq.nack('orders', 4, read_ct) FROM pgmq.read('orders', 30, 1);
UPDATE pgmq.q_orders SET vt = now() WHERE msg_id = 4;
SELECT pgmq.nack('orders', 4, read_ct) FROM pgmq.read('orders', 30, 1);
SELECT 'dead:' || count(*) FROM pgmq.q_orders_dead;
SQL

# ... the partitioned queue takes messages into its partitions and reads
# them, the paused queue stays paused, and the restored step runs.
[ "$(psql -qXAt -d "$dst" -c "SELECT count(*) FROM pgmq.send_batch('events', ARRAY['{}', '{}']::jsonb[])")" = 2 ]
[ "$(psql -qXAt -d "$dst" -c "SELECT count(*) FROM pgmq.read('events', 30, 1000)")" = 252 ]
[ "$(psql -qXAt -d "$dst" -c "SELECT count(*) FROM pgmq.read('held', 30, 10)")" = 0 ]
psql -qXAt -v ON_ERROR_STOP=1 -d "$dst" -c "SELECT step FROM pgmq.run_maintenance()" | grep -qx dump_step

# ... the restored bindings route.
[ "$(psql -qXAt -d "$dst" -c "SELECT pgmq.send_topic('orders.restored', '{}')")" = "2" ]

# ... priorities read through the restored index, and a restored idempotency
# key still returns its first msg_id.
[ "$(psql -qXAt -d "$dst" -c "SELECT message ->> 'p' FROM pgmq.read('urgent', 30, 1)")" = "7" ]
[ "$(psql -qXAt -d "$dst" -c "SELECT * FROM pgmq.send('urgent', '{}', '{\"x-queue-ext-idempotency-key\": \"u1\"}')")" = "1" ]

# ... the API key made before the dump authenticates, for its tenant, and
# sees the tenant's queue (and only it); a tenant role still sees its rows.
psql -qXAt -v ON_ERROR_STOP=1 -d "$dst" <<SQL | tee /dev/stderr | tr '\n' ' ' | grep -q "^dumped tenant_q 2 "
BEGIN;
SELECT pgmq.authenticate('$key');
SELECT queue_name FROM pgmq.list_queues();
COMMIT;
SET ROLE qx_dump_tenant;
SELECT count(*) FROM pgmq.q_tenant_q;
SQL

# DROP EXTENSION ... CASCADE leaves queue tables and their data in place: it
# drops only what calls the extension's functions (each queue's row-level
# security policy, a notify trigger, a priority index).
psql -qX -v ON_ERROR_STOP=1 -d "$src" -c "SET client_min_messages = warning" -c "DROP EXTENSION queue_ext CASCADE"
left=$(psql -qXAt -d "$src" -c "SELECT (SELECT count(*) FROM pgmq.q_orders) || '/' || (SELECT count(*) FROM pgmq.a_orders)")
echo "after DROP EXTENSION: q_orders/a_orders = $left"
[ "$left" = "497/4" ]

psql -qX -d postgres -c "DROP DATABASE $src" -c "DROP DATABASE $dst" -c "DROP ROLE qx_dump_tenant, qx_dump_reader, qx_dump_gateway"
