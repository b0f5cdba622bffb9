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

-- A changed aging keeps the index (it files messages by level, the aging
-- applies when reading); reads go on with the new aging.
SELECT priority_aging FROM pgmq.set_queue_options('prio', priority_aging => '10 minutes');
SELECT pg_get_indexdef('pgmq.q_prio_priority_idx'::regclass);
SELECT pgmq.send('prio', '{"n": 3}', '{"x-queue-ext-priority": 1}');
SELECT message ->> 'n' AS n FROM pgmq.read('prio', 30, 5);
-- Reads and pops go through the index, never a scan of the queue.
SELECT pg_stat_force_next_flush();
SELECT i.idx_scan AS idx_before, t.seq_scan AS seq_before
FROM pg_stat_user_indexes i JOIN pg_stat_user_tables t USING (relid)
WHERE i.indexrelid = 'pgmq.q_prio_priority_idx'::regclass \gset
SELECT count(*) FROM pgmq.send_batch('prio', ARRAY['{"n": 4}', '{"n": 5}']::jsonb[],
                                     ARRAY['{"x-queue-ext-priority": 2}', '{}']::jsonb[]);
SELECT message ->> 'n' AS n FROM pgmq.read('prio', 30, 1);
SELECT message ->> 'n' AS n FROM pgmq.pop('prio');
SELECT pg_stat_force_next_flush();
SELECT i.idx_scan > :idx_before AS index_used, t.seq_scan - :seq_before AS seq_scans
FROM pg_stat_user_indexes i JOIN pg_stat_user_tables t USING (relid)
WHERE i.indexrelid = 'pgmq.q_prio_priority_idx'::regclass;

-- Each level's mark passes consumed messages, never live ones: after many
-- reads and deletes (marks advance between statements), an urgent message
-- sent later, a message made visible again and one inserted with an old
-- enqueue time (as a dead letter keeps its own) are all read. Within a level
-- the order is msg_id order: the old one waits its turn in level 0.
SELECT pgmq.purge_queue('prio');
SELECT priority_aging FROM pgmq.set_queue_options('prio', priority_aging => '1 minute');
SELECT count(*) FROM pgmq.send_batch('prio', ARRAY(SELECT jsonb_build_object('n', i) FROM generate_series(1, 40) i));
CREATE FUNCTION pg_temp.take_and_delete(n int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  taken int := 0;
  m record;
BEGIN
  FOR i IN 1..n LOOP
    SELECT * INTO m FROM pgmq.read('prio', 30, 1);
    EXIT WHEN m IS NULL;
    PERFORM pgmq.delete('prio', m.msg_id);
    taken := taken + 1;
  END LOOP;
  RETURN taken;
END $$;
SELECT pg_temp.take_and_delete(10);
SELECT pg_sleep(0.02);
SELECT pg_temp.take_and_delete(10);
SELECT pg_sleep(0.02);
SELECT msg_id AS held FROM pgmq.read('prio', 300, 1) \gset
SELECT pg_temp.take_and_delete(5);
SELECT pg_sleep(0.02);
SELECT pgmq.send('prio', '{"n": "urgent"}', '{"x-queue-ext-priority": 9}');
SELECT message ->> 'n' AS n FROM pgmq.read('prio', 30, 1);
SELECT count(*) AS made_visible FROM pgmq.set_vt('prio', :held, 0);
INSERT INTO pgmq.q_prio (enqueued_at, vt, message) VALUES (now() - interval '1 hour', now(), '{"n": "old"}');
SELECT pg_sleep(0.02);
SELECT message ->> 'n' AS n FROM pgmq.read('prio', 30, 2);
SELECT pg_sleep(0.02);
SELECT string_agg(message ->> 'n', ', ') AS the_rest FROM pgmq.read('prio', 30, 100);
SELECT count(*) AS left_visible FROM pgmq.q_prio WHERE vt <= now();

-- Without its index a queue with priorities cannot be read: a clear error.
DROP INDEX pgmq.q_prio_priority_idx;
SELECT pg_temp.outcome($$SELECT * FROM pgmq.read('prio', 30, 1)$$);
-- Nor with another index under its name.
CREATE INDEX q_prio_priority_idx ON pgmq.q_prio (msg_id, read_ct);
SELECT pg_temp.outcome($$SELECT * FROM pgmq.pop('prio')$$);
DROP INDEX pgmq.q_prio_priority_idx;
SELECT pgmq._sync_priority_index('prio');
-- An enqueued_at of -infinity (only a direct INSERT can write one) ranks first.
INSERT INTO pgmq.q_prio (enqueued_at, vt, message, headers)
VALUES ('-infinity', now(), '{"n": "minus infinity"}', '{"x-queue-ext-priority": 3}');
SELECT message ->> 'n' AS n FROM pgmq.pop('prio');
SELECT count(*) AS made_visible FROM pgmq.set_vt('prio', array(SELECT msg_id FROM pgmq.q_prio), 0);
SELECT message ->> 'n' AS readable_again FROM pgmq.read('prio', 30, 1);

-- Turned off: the index goes, reads are by msg_id again, priority headers are refused.
SELECT priority_aging FROM pgmq.reset_queue_options('prio', ARRAY['priority_aging']);
SELECT count(*) AS priority_indexes FROM pg_indexes WHERE indexname = 'q_prio_priority_idx';
SELECT count(*) AS made_visible FROM pgmq.set_vt('prio', array(SELECT msg_id FROM pgmq.q_prio), 0);
SELECT message ->> 'n' AS n FROM pgmq.read('prio', 30, 5);
SELECT pg_temp.outcome($$SELECT pgmq.send('prio', '{}', '{"x-queue-ext-priority": 1}')$$);

-- The rank and the level itself.
SELECT pgmq.message_rank('2000-01-01 00:00:10+00', '{"x-queue-ext-priority": 2}', 1000000) AS two_levels_ahead,
       pgmq.message_rank('2000-01-01 00:00:10+00', NULL, 1000000) AS no_headers,
       pgmq.message_rank('2000-01-01 00:00:10+00', '"not an object"', 1000000) AS not_an_object,
       pgmq.message_rank('2000-01-01 00:00:10+00', '{"x-queue-ext-priority": 77}', 1000000) AS out_of_range_is_0;
SELECT pgmq.message_priority('{"x-queue-ext-priority": 7}') AS seven, pgmq.message_priority(NULL) AS no_headers,
       pgmq.message_priority('{"x-queue-ext-priority": "7"}') AS text_is_0, pgmq.message_priority('[1]') AS array_is_0;

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
