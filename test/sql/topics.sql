-- Topics, as pgmq 1.13 has them: bindings of patterns to queues, routing
-- keys matched with * (one dot-free run of characters) and # (anything),
-- send_topic and send_batch_topic to every matching queue in one call, the
-- validation of keys and patterns, and tenants' view of bindings.
\i test/sql/include/outcome.psql
SET client_min_messages = warning;

-- Valid and invalid routing keys and patterns: pgmq's rules and messages.
SELECT pgmq.validate_routing_key('orders.eu-west.created_v2') AS key_ok,
       pgmq.validate_topic_pattern('orders.*.#') AS pattern_ok,
       pgmq.validate_topic_pattern('#') AS hash_only;
SELECT left(k, 12) AS bad_key, pg_temp.outcome(format('SELECT pgmq.validate_routing_key(%L)', k))
FROM unnest(ARRAY[NULL, '', '.a', 'a.', 'a..b', 'a.*', 'a.#', 'a b', 'a;b', 'é', repeat('a', 256)]) k;
SELECT left(p, 12) AS bad_pattern, pg_temp.outcome(format('SELECT pgmq.validate_topic_pattern(%L)', p))
FROM unnest(ARRAY[NULL, '', '.a', 'a.', 'a..b', 'a.**', 'a.##', 'a.*#', 'a.#*', 'a/b', repeat('a', 256)]) p;
SELECT pgmq.validate_routing_key(repeat('a', 255)) AS longest_key;

SELECT pgmq.create('tp_all'), pgmq.create('tp_orders'), pgmq.create('tp_created'),
       pgmq.create('tp_eu'), pgmq.create('tp_partial');
SELECT pgmq.bind_topic('#', 'tp_all');
SELECT pgmq.bind_topic('orders.#', 'tp_orders');
SELECT pgmq.bind_topic('*.created', 'tp_created');
SELECT pgmq.bind_topic('orders.*.created', 'tp_eu');
SELECT pgmq.bind_topic('ord*.x', 'tp_partial');
-- Binding twice is binding once.
SELECT pgmq.bind_topic('orders.#', 'tp_orders');
SELECT pattern, queue_name, compiled_regex FROM pgmq.topic_bindings ORDER BY pattern;

-- Which keys reach which queues: * is one segment (or the rest of one), # anything.
SELECT k AS routing_key, string_agg(queue_name, ', ' ORDER BY queue_name) AS queues
FROM unnest(ARRAY['orders', 'orders.created', 'orders.eu.created', 'orders.eu.west.created',
                  'users.created', 'created', 'ord.x', 'orders.x', 'ord', 'x']) k
LEFT JOIN LATERAL pgmq.test_routing(k) ON true
GROUP BY k ORDER BY k;

-- The matcher agrees with pgmq's compiled_regex on every pattern and key here.
WITH patterns(p) AS (VALUES ('#'), ('a.#'), ('#.a'), ('a.*'), ('*.a'), ('a.*.b'), ('a.#.b'), ('*'), ('a*'), ('*a'),
                            ('a*b'), ('#a'), ('a#'), ('a.*.#'), ('#.*'), ('*.#.*'), ('a-b_c.*'), ('a#b'), ('*.*')),
     keys(k) AS (VALUES ('a'), ('b'), ('a.b'), ('a.a'), ('b.a'), ('a.x.b'), ('a.x.y.b'), ('ab'), ('ba'), ('aab'),
                        ('a.b.c'), ('x.a'), ('x.y.a'), ('a-b_c.d'), ('axb'), ('a.xb'), ('abc.a')),
     bound AS (SELECT p, pgmq.bind_topic(p, 'tp_all') FROM patterns)
SELECT count(*) AS pairs,
       count(*) FILTER (WHERE (k ~ ('^' || replace(replace(replace(p, '.', '\.'), '*', '[^.]+'), '#', '.*') || '$'))
                              IS DISTINCT FROM EXISTS (SELECT FROM pgmq.test_routing(k) r WHERE r.pattern = p)) AS disagree
FROM patterns, keys, (SELECT count(*) FROM bound) b;
DELETE FROM pgmq.topic_bindings WHERE queue_name = 'tp_all' AND pattern <> '#';

-- send_topic: one call, each matching queue once, in name order; 0 when none match.
SELECT pgmq.send_topic('orders.eu.created', '{"n": 1}') AS queues;
SELECT pgmq.send_topic('nothing.matches.here.at.all.x', '{"n": 2}', 0) AS queues;
SELECT pgmq.send_topic('users.created', '{"n": 3}', '{"x-trace": "t1"}', 30) AS queues;
SELECT queue_name, depth, visible, delayed FROM pgmq.queue_stats WHERE queue_name LIKE 'tp%' ORDER BY 1;
SELECT message, headers FROM pgmq.q_tp_created ORDER BY msg_id;
SELECT pg_temp.outcome($$SELECT pgmq.send_topic('orders.x', NULL)$$);
SELECT pg_temp.outcome($$SELECT pgmq.send_topic('orders.x', '{}', -1)$$);
SELECT pg_temp.outcome($$SELECT pgmq.send_topic('orders.x', '{}', NULL::integer)$$);
SELECT pg_temp.outcome($$SELECT pgmq.send_topic('orders.*', '{}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.send_topic(NULL, '{}')$$);

-- send_batch_topic: every message to every matching queue, with their ids.
SELECT queue_name, count(*) AS messages FROM pgmq.send_batch_topic('orders.eu.created', ARRAY['{"b": 1}', '{"b": 2}']::jsonb[])
GROUP BY queue_name ORDER BY queue_name;
SELECT queue_name, count(*) FROM pgmq.send_batch_topic('users.created', ARRAY['{}']::jsonb[], ARRAY['{"h": 1}']::jsonb[], 60)
GROUP BY queue_name ORDER BY queue_name;
SELECT count(*) FROM pgmq.send_batch_topic('orders.y', ARRAY['{}']::jsonb[], now() + interval '1 hour');
SELECT pg_temp.outcome($$SELECT pgmq.send_batch_topic('orders.x', ARRAY[]::jsonb[])$$);
SELECT pg_temp.outcome($$SELECT pgmq.send_batch_topic('orders.x', NULL::jsonb[])$$);
SELECT pg_temp.outcome($$SELECT pgmq.send_batch_topic('orders.x', ARRAY['{}']::jsonb[], ARRAY['{}', '{}']::jsonb[])$$);
SELECT pg_temp.outcome($$SELECT pgmq.send_batch_topic('orders..x', ARRAY['{}']::jsonb[])$$);

-- Binding needs a queue that exists and a valid pattern.
SELECT pg_temp.outcome($$SELECT pgmq.bind_topic('a.b', 'tp_missing')$$);
SELECT pg_temp.outcome($$SELECT pgmq.bind_topic('a.b', NULL)$$);
SELECT pg_temp.outcome($$SELECT pgmq.bind_topic('a.b', '')$$);
SELECT pg_temp.outcome($$SELECT pgmq.bind_topic('a..b', 'tp_all')$$);
SELECT pg_temp.outcome($$SELECT pgmq.bind_topic('a.b''; DROP TABLE pgmq.meta; --', 'tp_all')$$);
SELECT pg_temp.outcome($$INSERT INTO pgmq.topic_bindings (pattern, queue_name) VALUES ('a**', 'tp_all')$$);
SELECT pg_temp.outcome($$SELECT pgmq.unbind_topic(NULL, 'tp_all')$$);
SELECT pgmq.unbind_topic('orders.#', 'tp_orders') AS removed, pgmq.unbind_topic('orders.#', 'tp_orders') AS again,
       pgmq.unbind_topic('orders.#', 'tp_missing') AS missing_queue;

-- A binding made and a binding removed in a transaction route within it, and not after a rollback.
BEGIN;
SELECT pgmq.bind_topic('late.*', 'tp_orders');
SELECT pgmq.send_topic('late.one', '{}') AS queues;
ROLLBACK;
SELECT pgmq.send_topic('late.one', '{}') AS queues;
-- A dropped queue takes its bindings with it.
SELECT pgmq.drop_queue('tp_partial');
SELECT count(*) AS partial_bindings FROM pgmq.topic_bindings WHERE queue_name = 'tp_partial';
SELECT pgmq.send_topic('ord.x', '{}') AS queues;

-- Tenants: a tenant binds and routes among its own queues only; an
-- operator's key reaches no tenant queue it was not bound to, and a tenant's
-- key reaches no operator queue.
CREATE ROLE qx_tp_tenant;
SELECT pgmq.create_tenant('tp_acme') > 0 AS made;
SELECT pgmq.add_tenant_role('tp_acme', 'qx_tp_tenant');
SELECT pgmq.create('tp_acme_q');
SELECT pgmq.set_queue_tenant('tp_acme_q', 'tp_acme');
SET ROLE qx_tp_tenant;
SELECT pgmq.bind_topic('orders.#', 'tp_acme_q');
SELECT pg_temp.outcome($$SELECT pgmq.bind_topic('steal.#', 'tp_orders')$$);
SELECT pgmq.unbind_topic('#', 'tp_all') AS unbound_other;
SELECT pattern, queue_name FROM pgmq.topic_bindings;
SELECT pattern, queue_name FROM pgmq.list_topic_bindings();
SELECT pattern, queue_name FROM pgmq.test_routing('orders.eu.created');
SELECT pgmq.send_topic('orders.eu.created', '{"from": "acme"}') AS queues;
RESET ROLE;
SELECT pattern, queue_name FROM pgmq.list_topic_bindings() ORDER BY queue_name, pattern;
SELECT queue_name, depth FROM pgmq.queue_stats WHERE queue_name IN ('tp_acme_q', 'tp_all', 'tp_orders') ORDER BY 1;

SELECT pgmq.drop_queue(q) FROM unnest(ARRAY['tp_all', 'tp_orders', 'tp_created', 'tp_eu', 'tp_acme_q']) q;
SELECT count(*) AS bindings_left FROM pgmq.topic_bindings;
SELECT pgmq.drop_tenant('tp_acme');
DROP OWNED BY qx_tp_tenant;
DROP ROLE qx_tp_tenant;
