-- FIFO message groups, the pgmq 1.13 way: the x-pgmq-group header and the
-- read_grouped family. A group is open while its oldest message is visible;
-- past the head, a group's messages go out in order up to the first one that
-- is not visible.
\i test/sql/include/outcome.psql

-- pgmq's documented example: groups A (5 messages), B (3), C (2), sent interleaved.
SELECT pgmq.create('fifo');
CREATE FUNCTION pg_temp.fill() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pgmq.purge_queue('fifo');
  PERFORM pgmq.send('fifo', jsonb_build_object('g', g, 'n', n), jsonb_build_object('x-pgmq-group', g))
  FROM (VALUES ('A', 1), ('B', 1), ('C', 1), ('A', 2), ('B', 2), ('C', 2),
               ('A', 3), ('B', 3), ('A', 4), ('A', 5)) AS v(g, n);
END $$;
-- What a read returned, in its order: group letter and number, e.g. "A1 A2 B1".
CREATE FUNCTION pg_temp.got(msgs pgmq.message_record[]) RETURNS text LANGUAGE sql AS $$
  SELECT coalesce(string_agg(m.message ->> 'g' || (m.message ->> 'n'), ' ' ORDER BY m.o), '-')
  FROM unnest(msgs) WITH ORDINALITY AS m(msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers, o);
$$;

-- read_grouped (SQS style): the oldest group first, then the next.
SELECT pg_temp.fill();
SELECT pg_temp.got(array(SELECT pgmq.read_grouped('fifo', 30, 10))) AS all_ten;
SELECT pg_temp.fill();
SELECT pg_temp.got(array(SELECT pgmq.read_grouped('fifo', 30, 3))) AS three_from_a;
-- A is leased now: closed, so B and C are next; nothing of A is jumped to.
SELECT pg_temp.got(array(SELECT pgmq.read_grouped('fifo', 30, 4))) AS then_b_and_c;
SELECT pg_temp.got(array(SELECT pgmq.read_grouped('fifo', 30, 10))) AS all_closed;

-- read_grouped_head: one per group, oldest group first.
SELECT pg_temp.fill();
SELECT pg_temp.got(array(SELECT pgmq.read_grouped_head('fifo', 30, 10))) AS heads;
SELECT pg_temp.got(array(SELECT pgmq.read_grouped_head('fifo', 30, 10))) AS heads_leased;
SELECT pg_temp.fill();
SELECT pg_temp.got(array(SELECT pgmq.read_grouped_head('fifo', 30, 2))) AS two_heads;

-- read_grouped_rr: layer by layer across the open groups.
SELECT pg_temp.fill();
SELECT pg_temp.got(array(SELECT pgmq.read_grouped_rr('fifo', 30, 10))) AS layers;
SELECT pg_temp.fill();
SELECT pg_temp.got(array(SELECT pgmq.read_grouped_rr('fifo', 30, 5))) AS five_layered;

-- Round robin over many groups takes whole layers; uneven groups top up the
-- room from the groups that have more.
SELECT pgmq.purge_queue('fifo');
SELECT count(*) FROM (SELECT pgmq.send('fifo', jsonb_build_object('g', 'G' || g, 'n', n), jsonb_build_object('x-pgmq-group', 'G' || g))
                      FROM generate_series(1, 3) n, generate_series(1, 50) g ORDER BY n, g) s;
SELECT count(*) AS got, count(*) FILTER (WHERE message ->> 'n' = '3') AS third_layer,
       count(DISTINCT message ->> 'g') AS groups
FROM pgmq.read_grouped_rr('fifo', 30, 100);
SELECT pgmq.purge_queue('fifo');
SELECT count(*) FROM (SELECT pgmq.send('fifo', jsonb_build_object('g', 'B', 'n', n), '{"x-pgmq-group": "B"}')
                      FROM generate_series(1, 60) n) s;
SELECT count(*) FROM (SELECT pgmq.send('fifo', jsonb_build_object('g', 'S' || g, 'n', 1), jsonb_build_object('x-pgmq-group', 'S' || g))
                      FROM generate_series(1, 9) g) s;
SELECT count(*) AS got, count(*) FILTER (WHERE message ->> 'g' = 'B') AS from_big,
       max((message ->> 'n')::int) FILTER (WHERE message ->> 'g' = 'B') AS big_upto
FROM pgmq.read_grouped_rr('fifo', 30, 30);

-- Acking the head opens the group at its next message.
SELECT pg_temp.fill();
SELECT msg_id FROM pgmq.read_grouped_head('fifo', 30, 1);
SELECT pg_temp.got(array(SELECT pgmq.read_grouped_head('fifo', 30, 10))) AS a_closed;
SELECT pgmq.delete('fifo', (SELECT min(msg_id) FROM pgmq.q_fifo));
SELECT count(*) AS made_visible FROM pgmq.set_vt('fifo', array(SELECT msg_id FROM pgmq.q_fifo), 0);
SELECT pg_temp.got(array(SELECT pgmq.read_grouped_head('fifo', 30, 10))) AS a2_is_head;

-- A nacked head waits for its retry, and so does its group.
SELECT pg_temp.fill();
SELECT max_attempts, backoff_base FROM pgmq.set_queue_options('fifo', backoff_base => 60);
SELECT msg_id, read_ct FROM pgmq.read_grouped_head('fifo', 30, 1);
SELECT pgmq.nack('fifo', (SELECT min(msg_id) FROM pgmq.q_fifo), 1, 'failed');
SELECT pg_temp.got(array(SELECT pgmq.read_grouped('fifo', 30, 10))) AS a_waits_for_retry;

-- A delayed message closes its group when it is the head, and ends the run
-- of a group it follows: nothing after it goes out before it.
SELECT pgmq.purge_queue('fifo');
SELECT pgmq.send('fifo', '{"g": "D", "n": 1}', '{"x-pgmq-group": "D"}', 3600);
SELECT pgmq.send('fifo', '{"g": "D", "n": 2}', '{"x-pgmq-group": "D"}');
SELECT pgmq.send('fifo', '{"g": "E", "n": 1}', '{"x-pgmq-group": "E"}');
SELECT pgmq.send('fifo', '{"g": "E", "n": 2}', '{"x-pgmq-group": "E"}', 3600);
SELECT pgmq.send('fifo', '{"g": "E", "n": 3}', '{"x-pgmq-group": "E"}');
SELECT pg_temp.got(array(SELECT pgmq.read_grouped('fifo', 30, 10))) AS delays_respected;
SELECT count(*) AS made_visible FROM pgmq.set_vt('fifo', array(SELECT msg_id FROM pgmq.q_fifo WHERE message ->> 'n' <> '2' OR message ->> 'g' <> 'E'), 0);
SELECT pg_temp.got(array(SELECT pgmq.read_grouped_rr('fifo', 30, 10))) AS rr_delays_respected;

-- Messages without the header are one group, "_default_fifo_group", as in pgmq.
SELECT pgmq.purge_queue('fifo');
SELECT pgmq.send('fifo', '{"g": "none", "n": 1}');
SELECT pgmq.send('fifo', '{"g": "none", "n": 2}', '{"other": 1}');
SELECT pgmq.send('fifo', '{"g": "F", "n": 1}', '{"x-pgmq-group": "F"}');
SELECT pgmq.send('fifo', '{"g": "none", "n": 3}', '"not an object"');
SELECT pg_temp.got(array(SELECT pgmq.read_grouped_head('fifo', 30, 10))) AS default_group_head;
SELECT pg_temp.got(array(SELECT pgmq.read_grouped('fifo', 30, 10))) AS default_group_closed;

-- A message delivered past its last allowed attempt is dead-lettered, not
-- delivered, and its group opens at the next message in the same read.
SELECT pgmq.purge_queue('fifo');
SELECT max_attempts, backoff_base FROM pgmq.set_queue_options('fifo', max_attempts => 1);
SELECT pgmq.send('fifo', '{"g": "H", "n": 1}', '{"x-pgmq-group": "H"}');
SELECT pgmq.send('fifo', '{"g": "H", "n": 2}', '{"x-pgmq-group": "H"}');
SELECT pg_temp.got(array(SELECT pgmq.read_grouped_head('fifo', 0, 1))) AS first_delivery;
SELECT pg_temp.got(array(SELECT pgmq.read_grouped_head('fifo', 30, 1))) AS after_lapse;
SELECT message, headers -> 'x-queue-ext-outcome' ->> 'state' AS state FROM pgmq.a_fifo;
SELECT max_attempts, backoff_base FROM pgmq.reset_queue_options('fifo');

-- The poll forms: wait for a message, or return nothing in time.
SELECT pgmq.purge_queue('fifo');
SELECT count(*) FROM pgmq.read_grouped_with_poll('fifo', 30, 1, 0);
SELECT count(*) FROM pgmq.read_grouped_rr_with_poll('fifo', 30, 1, 1, 10);
SELECT pgmq.send('fifo', '{"g": "P", "n": 1}', '{"x-pgmq-group": "P"}');
SELECT pgmq.send('fifo', '{"g": "P", "n": 2}', '{"x-pgmq-group": "P"}');
SELECT pg_temp.got(array(SELECT pgmq.read_grouped_with_poll('fifo', 30, 5, 1, 10))) AS polled;
SELECT count(*) AS made_visible FROM pgmq.set_vt('fifo', array(SELECT msg_id FROM pgmq.q_fifo), 0);
SELECT pg_temp.got(array(SELECT pgmq.read_grouped_head_with_poll('fifo', 30, 5))) AS polled_head;
SELECT count(*) AS made_visible FROM pgmq.set_vt('fifo', array(SELECT msg_id FROM pgmq.q_fifo), 0);
SELECT pg_temp.got(array(SELECT pgmq.read_grouped_rr_with_poll('fifo', 30, 5, 1, 10))) AS polled_rr;

-- A paused queue delivers nothing to grouped reads either.
SELECT count(*) AS made_visible FROM pgmq.set_vt('fifo', array(SELECT msg_id FROM pgmq.q_fifo), 0);
SELECT pgmq.pause_queue('fifo');
SELECT count(*) FROM pgmq.read_grouped('fifo', 30, 5);
SELECT count(*) FROM pgmq.read_grouped_head_with_poll('fifo', 30, 5, 1, 10);
SELECT pgmq.resume_queue('fifo');

-- The fifo index: the group expression and msg_id; idempotent; for every queue.
SELECT pgmq.create_fifo_index('fifo');
SELECT pgmq.create_fifo_index('FIFO');
SELECT pgmq.create('fifo_two');
SELECT pgmq.create_fifo_indexes_all();
SELECT indexrelid::regclass, pg_get_indexdef(indexrelid)
FROM pg_index WHERE indrelid IN ('pgmq.q_fifo'::regclass, 'pgmq.q_fifo_two'::regclass)
  AND indexrelid::regclass::text LIKE '%fifo_idx'
ORDER BY 1::text;
-- Grouped reads still work, through the index, and follow it into new groups.
SELECT pgmq.purge_queue('fifo');
SELECT pg_temp.fill();
SELECT pg_temp.got(array(SELECT pgmq.read_grouped('fifo', 30, 7))) AS indexed;

-- Bad input: clear errors, nothing lost.
SELECT pg_temp.outcome($$SELECT pgmq.send('fifo', '{}', '{"x-pgmq-group": 5}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.send('fifo', '{}', '{"x-pgmq-group": null}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.send('fifo', '{}', '{"x-pgmq-group": ""}')$$);
SELECT pg_temp.outcome(format($$SELECT pgmq.send('fifo', '{}', jsonb_build_object('x-pgmq-group', %L))$$, repeat('g', 129)));
SELECT pg_temp.outcome(format($$SELECT pgmq.send('fifo', '{}', jsonb_build_object('x-pgmq-group', %L))$$, repeat('é', 128)));
SELECT pg_temp.outcome($$SELECT pgmq.send_batch('fifo', ARRAY['{}', '{}']::jsonb[], ARRAY['{"x-pgmq-group": "ok"}', '{"x-pgmq-group": ["no"]}']::jsonb[])$$);
SELECT pg_temp.outcome($$SELECT pgmq.read_grouped('missing', 30, 1)$$);
SELECT pg_temp.outcome($$SELECT pgmq.read_grouped_rr('bad;name', 30, 1)$$);
SELECT pg_temp.outcome($$SELECT pgmq.read_grouped_head(NULL, 30, 1)$$);
SELECT pg_temp.outcome($$SELECT pgmq.read_grouped('fifo', NULL, 1)$$);
SELECT pg_temp.outcome($$SELECT pgmq.read_grouped('fifo', 30, -1)$$);
SELECT pg_temp.outcome($$SELECT pgmq.read_grouped_with_poll('fifo', 30, 1, NULL)$$);
SELECT pg_temp.outcome($$SELECT pgmq.create_fifo_index('missing')$$);
SELECT pg_temp.outcome($$SELECT pgmq.create_fifo_index('x"; DROP TABLE pgmq.meta; --')$$);
SELECT count(*) AS messages_kept FROM pgmq.q_fifo;
SELECT count(*) FROM pgmq.read_grouped('fifo', 30, 0);

SELECT pgmq.drop_queue('fifo');
SELECT pgmq.drop_queue('fifo_two');
