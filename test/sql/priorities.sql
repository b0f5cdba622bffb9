-- Priorities with aging: x-queue-ext-priority 0 (default) to 9 (most urgent)
-- on a queue that sets priority_aging. A message counts as enqueued
-- priority * priority_aging earlier; reads take the smallest rank first.
\i test/sql/include/outcome.psql

SELECT pgmq.create('prio');
-- Off by default: a priority header is refused, not ignored.
SELECT pg_temp.outcome($$SELECT pgmq.send('prio', '{}', '{"x-queue-ext-priority": 5}')$$);
SELECT priority_aging FROM pgmq.set_queue_options('prio', priority_aging => '1 minute');
SELECT indexrelid::regclass, pg_get_indexdef(indexrelid) FROM pg_index
WHERE indrelid = 'pgmq.q_prio'::regclass AND indexrelid::regclass::text LIKE '%priority%';

-- Sent in one transaction (one enqueued_at): urgent first, FIFO within a priority.
SELECT count(*) FROM (
  SELECT pgmq.send('prio', jsonb_build_object('n', n), jsonb_build_object('x-queue-ext-priority', p))
  FROM (VALUES (1, 0), (2, 5), (3, 9), (4, 5), (5, 0), (6, 9)) AS v(n, p)) s;
SELECT pgmq.send('prio', '{"n": 7}');
SELECT message ->> 'n' AS n, headers -> 'x-queue-ext-priority' AS priority FROM pgmq.read('prio', 30, 10);

-- pop and a conditional read follow the same order.
SELECT pgmq.purge_queue('prio');
SELECT count(*) FROM (
  SELECT pgmq.send('prio', jsonb_build_object('n', n, 'kind', k), jsonb_build_object('x-queue-ext-priority', p))
  FROM (VALUES (1, 'a', 1), (2, 'b', 2), (3, 'a', 3), (4, 'b', 4)) AS v(n, k, p)) s;
SELECT message ->> 'n' AS n FROM pgmq.read('prio', 30, 10, '{"kind": "a"}');
SELECT message ->> 'n' AS n FROM pgmq.pop('prio', 10);

-- Aging bounds the wait. The enqueue times are set as if the messages had
-- been sent a second apart (a steady stream), with priority_aging 1 second:
-- a priority-0 message is overtaken only by priority-9 messages sent less
-- than 9 seconds after it, however many follow.
SELECT pgmq.purge_queue('prio');
SELECT priority_aging FROM pgmq.set_queue_options('prio', priority_aging => '1 second');
SELECT pgmq.send('prio', '{"n": "low"}', '{"x-queue-ext-priority": 0}');
SELECT count(*) FROM (
  SELECT pgmq.send('prio', jsonb_build_object('n', 'urgent ' || k), '{"x-queue-ext-priority": 9}')
  FROM generate_series(1, 20) k) s;
UPDATE pgmq.q_prio SET enqueued_at = timestamptz '2026-01-01 00:00:00'
  + make_interval(secs => COALESCE(substring(message ->> 'n' FROM '[0-9]+')::int, 0));
-- Read one at a time, as workers do: the low one comes after urgent 1..8
-- (ranks 1-9 .. 8-9 are below its 0; urgent 9 ties and loses on msg_id).
CREATE FUNCTION pg_temp.read_one_at_a_time(n int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  got text[] := '{}';
BEGIN
  FOR i IN 1..n LOOP
    got := got || (SELECT message ->> 'n' FROM pgmq.read('prio', 30, 1));
  END LOOP;
  RETURN array_to_string(got, ', ');
END $$;
SELECT pg_temp.read_one_at_a_time(11) AS read_order;
-- With the default priority everywhere a queue with priorities reads in enqueue order.
SELECT pgmq.purge_queue('prio');
SELECT pgmq.send('prio', '{"n": 1}');
SELECT pgmq.send('prio', '{"n": 2}');
SELECT message ->> 'n' AS n FROM pgmq.read('prio', 30, 5);

-- A changed aging rebuilds the index and this backend's plans; reads go on.
SELECT priority_aging FROM pgmq.set_queue_options('prio', priority_aging => '10 minutes');
SELECT pg_get_indexdef('pgmq.q_prio_priority_idx'::regclass);
SELECT pgmq.send('prio', '{"n": 3}', '{"x-queue-ext-priority": 1}');
SELECT message ->> 'n' AS n FROM pgmq.read('prio', 30, 5);
-- The read can use the index, not a sort of the queue (its plan is built so).
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT m.msg_id FROM pgmq.q_prio m
WHERE m.vt <= now() ORDER BY pgmq.message_rank(m.enqueued_at, m.headers, 600000000), m.msg_id LIMIT 1;
RESET enable_seqscan;

-- Turned off: the index goes, reads are by msg_id again, priority headers are refused.
SELECT priority_aging FROM pgmq.reset_queue_options('prio', ARRAY['priority_aging']);
SELECT count(*) AS priority_indexes FROM pg_indexes WHERE indexname = 'q_prio_priority_idx';
SELECT count(*) AS made_visible FROM pgmq.set_vt('prio', array(SELECT msg_id FROM pgmq.q_prio), 0);
SELECT message ->> 'n' AS n FROM pgmq.read('prio', 30, 5);
SELECT pg_temp.outcome($$SELECT pgmq.send('prio', '{}', '{"x-queue-ext-priority": 1}')$$);

-- The rank itself.
SELECT pgmq.message_rank('2000-01-01 00:00:10+00', '{"x-queue-ext-priority": 2}', 1000000) AS two_levels_ahead,
       pgmq.message_rank('2000-01-01 00:00:10+00', NULL, 1000000) AS no_headers,
       pgmq.message_rank('2000-01-01 00:00:10+00', '"not an object"', 1000000) AS not_an_object,
       pgmq.message_rank('2000-01-01 00:00:10+00', '{"x-queue-ext-priority": 77}', 1000000) AS out_of_range_is_0;

-- Bad input: out of range, not an integer, bad aging.
SELECT priority_aging FROM pgmq.set_queue_options('prio', priority_aging => '1 minute');
SELECT pg_temp.outcome($$SELECT pgmq.send('prio', '{}', '{"x-queue-ext-priority": 10}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.send('prio', '{}', '{"x-queue-ext-priority": -1}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.send('prio', '{}', '{"x-queue-ext-priority": 1.5}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.send('prio', '{}', '{"x-queue-ext-priority": "9"}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.send_batch('prio', ARRAY['{}', '{}']::jsonb[], ARRAY['{"x-queue-ext-priority": 1}', '{"x-queue-ext-priority": 99}']::jsonb[])$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('prio', priority_aging => '0 seconds')$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('prio', priority_aging => '2 days')$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('prio', priority_aging => '-1 minute')$$);
SELECT count(*) AS messages_kept FROM pgmq.q_prio;
SELECT pgmq.drop_queue('prio');
