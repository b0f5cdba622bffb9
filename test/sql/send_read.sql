-- send and send_batch in every overload; read, pop, set_vt semantics.
-- Times are projected as comparisons (vt > now()) so the output is stable.
SELECT pgmq.create('sr');

-- Every send overload; each returns the new msg_id.
SELECT * FROM pgmq.send('sr', '{"n":1}');
SELECT * FROM pgmq.send('sr', '{"n":2}', '{"h":2}'::jsonb);
SELECT * FROM pgmq.send('sr', '{"n":3}', 0);
SELECT * FROM pgmq.send('sr', '{"n":4}', now() - interval '1 second');
SELECT * FROM pgmq.send('sr', '{"n":5}', '{"h":5}'::jsonb, 0);
SELECT * FROM pgmq.send('sr', '{"n":6}', '{"h":6}'::jsonb, clock_timestamp());
-- pgmq accepts a NULL message and NULL headers.
SELECT * FROM pgmq.send('sr', NULL);
SELECT * FROM pgmq.send('sr', '{"n":8}', NULL::jsonb);

-- read returns the oldest visible first, increments read_ct, sets vt ahead.
SELECT msg_id, read_ct, message, headers, vt > clock_timestamp() AS leased,
       last_read_at IS NOT NULL AS read_stamped
FROM pgmq.read('sr', 30, 3);
-- Leased messages are skipped by the next read.
SELECT msg_id, read_ct FROM pgmq.read('sr', 30, 3);
-- qty 0 returns nothing; NULL qty returns every visible message.
SELECT count(*) FROM pgmq.read('sr', 30, 0);
SELECT msg_id FROM pgmq.read('sr', 30, NULL);
SELECT count(*) FROM pgmq.read('sr', 30, 10);

-- set_vt moves a lease: vt 0 makes the message visible again at once.
SELECT msg_id, read_ct, vt <= clock_timestamp() AS visible FROM pgmq.set_vt('sr', 1, 0);
SELECT msg_id, read_ct FROM pgmq.read('sr', 30, 5);
SELECT msg_id, vt = '2030-01-01 00:00:00+00' AS moved
FROM pgmq.set_vt('sr', 2, '2030-01-01 00:00:00+00'::timestamptz);
SELECT msg_id, vt > clock_timestamp() FROM pgmq.set_vt('sr', ARRAY[3, 4]::bigint[], 100);
SELECT msg_id FROM pgmq.set_vt('sr', ARRAY[5, 6, 999]::bigint[], clock_timestamp() - interval '1 hour');
SELECT msg_id, read_ct FROM pgmq.read('sr', 30, 5);
-- Missing ids: no rows.
SELECT count(*) FROM pgmq.set_vt('sr', 999, 10);
SELECT count(*) FROM pgmq.set_vt('sr', NULL::bigint, 10);

-- vt 0 in read leaves the message visible; a negative vt too (pgmq accepts it).
SELECT pgmq.purge_queue('sr');
SELECT * FROM pgmq.send('sr', '{"n":"again"}');
SELECT msg_id, read_ct FROM pgmq.read('sr', 0, 1);
SELECT msg_id, read_ct FROM pgmq.read('sr', -5, 1);
SELECT msg_id, read_ct FROM pgmq.read('sr', 30, 1);
SELECT count(*) FROM pgmq.read('sr', 30, 1);

-- A lapsed vt redelivers with read_ct incremented.
SELECT msg_id FROM pgmq.set_vt('sr', 9, clock_timestamp());
SELECT msg_id, read_ct FROM pgmq.read('sr', 30, 1);

-- Delayed sends stay invisible until their time.
SELECT pgmq.purge_queue('sr');
SELECT * FROM pgmq.send('sr', '{"delayed":true}', 3600);
SELECT * FROM pgmq.send('sr', '{"delayed":true}', clock_timestamp() + interval '1 hour');
SELECT count(*) FROM pgmq.read('sr', 30, 10);
SELECT queue_length, queue_visible_length FROM pgmq.metrics('sr');
-- A negative delay is visible at once (pgmq accepts it).
SELECT * FROM pgmq.send('sr', '{"delayed":false}', -10);
SELECT message FROM pgmq.read('sr', 30, 10);

-- conditional filters by jsonb containment; '{}' and NULL mean no filter.
SELECT pgmq.purge_queue('sr');
SELECT count(*) FROM pgmq.send_batch('sr', ARRAY['{"kind":"a","n":1}', '{"kind":"b","n":2}',
                                                 '{"kind":"a","n":3}', '[1,2]']::jsonb[]);
SELECT message FROM pgmq.read('sr', 30, 10, '{"kind":"a"}');
SELECT message FROM pgmq.read('sr', 30, 10, '[]');
SELECT message FROM pgmq.read('sr', 0, 10, '{}');
SELECT message FROM pgmq.read('sr', 0, 10, NULL);

-- Send then read in one transaction returns the message (vt uses clock_timestamp()).
SELECT pgmq.purge_queue('sr');
BEGIN;
SELECT * FROM pgmq.send('sr', '{"same":"tx"}');
SELECT message FROM pgmq.read('sr', 30, 1);
COMMIT;

-- A reader whose transaction rolls back leaves the message as it was.
SELECT * FROM pgmq.send('sr', '{"rolled":"back"}');
BEGIN;
SELECT message, read_ct FROM pgmq.read('sr', 30, 1);
ROLLBACK;
SELECT message, read_ct FROM pgmq.read('sr', 30, 1);

-- send_batch in every overload: ids come back in message order.
SELECT pgmq.purge_queue('sr');
SELECT * FROM pgmq.send_batch('sr', ARRAY['{"b":1}', '{"b":2}']::jsonb[]);
SELECT * FROM pgmq.send_batch('sr', ARRAY['{"b":3}', '{"b":4}']::jsonb[], ARRAY['{"h":3}', '{"h":4}']::jsonb[]);
SELECT * FROM pgmq.send_batch('sr', ARRAY['{"b":5}']::jsonb[], 0);
SELECT * FROM pgmq.send_batch('sr', ARRAY['{"b":6}']::jsonb[], clock_timestamp());
SELECT * FROM pgmq.send_batch('sr', ARRAY['{"b":7}']::jsonb[], ARRAY['{"h":7}']::jsonb[], 0);
SELECT * FROM pgmq.send_batch('sr', ARRAY['{"b":8}']::jsonb[], ARRAY['{"h":8}']::jsonb[], clock_timestamp());
SELECT * FROM pgmq.send_batch('sr', ARRAY['{"b":9}', NULL]::jsonb[], NULL::jsonb[]);
SELECT * FROM pgmq.send_batch('sr', ARRAY['{"b":10}']::jsonb[], 3600);
SELECT msg_id, message, headers FROM pgmq.read('sr', 30, 100);

-- pop deletes visible messages without touching read_ct.
SELECT pgmq.purge_queue('sr');
SELECT count(*) FROM pgmq.send_batch('sr', ARRAY['{"p":1}', '{"p":2}', '{"p":3}']::jsonb[]);
SELECT msg_id, read_ct, message FROM pgmq.pop('sr');
SELECT msg_id FROM pgmq.read('sr', 30, 1);
SELECT msg_id, read_ct FROM pgmq.pop('sr', 10);
SELECT queue_length FROM pgmq.metrics('sr');

-- read_with_poll: returns at once when a message is there, waits otherwise;
-- max_poll_seconds 0 returns nothing without reading.
SELECT * FROM pgmq.send('sr', '{"poll":1}');
SELECT message FROM pgmq.read_with_poll('sr', 30, 1);
SELECT count(*) FROM pgmq.read_with_poll('sr', 30, 1, 1, 50);
SELECT * FROM pgmq.send('sr', '{"poll":2}');
SELECT count(*) FROM pgmq.read_with_poll('sr', 30, 1, 0, 100);
SELECT message FROM pgmq.read_with_poll('sr', 30, 5, 1, 100, '{"poll":2}');
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) FROM pgmq.read_with_poll('sr', 30, 1, 1, 100);
SELECT clock_timestamp() - :'t0'::timestamptz >= interval '900 ms' AS waited_about_a_second;

SELECT pgmq.drop_queue('sr');
