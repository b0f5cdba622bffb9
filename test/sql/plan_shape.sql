-- Hot-path plans walk the primary key whatever the statistics say: a queue
-- analyzed while tiny (where a planner would pick a seq scan) must not read
-- by seq scan when it later holds more. pg_stat counts every seq scan.
SELECT pgmq.create('shape');
SELECT count(*) FROM pgmq.send_batch('shape', ARRAY['1', '2', '3']::jsonb[]);
ANALYZE pgmq.q_shape;
SELECT count(*) FROM pgmq.send_batch('shape', ARRAY(SELECT to_jsonb(i) FROM generate_series(4, 2000) i));

SELECT pg_stat_force_next_flush();
SELECT seq_scan AS seq_before FROM pg_stat_user_tables WHERE relid = 'pgmq.q_shape'::regclass \gset

SELECT count(*) FROM pgmq.read('shape', 30, 5);
SELECT count(*) FROM pgmq.read('shape', 30, 5, '{"a":1}');
SELECT count(*) FROM pgmq.pop('shape', 5);
SELECT count(*) FROM pgmq.set_vt('shape', 1, 0);
SELECT count(*) FROM pgmq.set_vt('shape', ARRAY[2, 3]::bigint[], 0);
SELECT pgmq.delete('shape', 1);
SELECT count(*) FROM pgmq.delete('shape', ARRAY[2]::bigint[]);
SELECT pgmq.archive('shape', 3);
SELECT count(*) FROM pgmq.archive('shape', ARRAY[4]::bigint[]);
SELECT count(*) FROM pgmq.send('shape', '{}');
-- A different search_path makes the plan cache re-plan; that re-plan keeps the shape.
SET search_path = pg_catalog;
SELECT count(*) FROM pgmq.read('shape', 30, 5);
RESET search_path;

SELECT pg_stat_force_next_flush();
SELECT seq_scan - :seq_before AS hot_path_seq_scans
FROM pg_stat_user_tables WHERE relid = 'pgmq.q_shape'::regclass;
SELECT pgmq.drop_queue('shape');
