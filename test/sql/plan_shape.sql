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
SELECT count(*) FROM pgmq.read_grouped('shape', 30, 3);
SELECT count(*) FROM pgmq.read_grouped_rr('shape', 30, 3);
SELECT count(*) FROM pgmq.read_grouped_head('shape', 30, 3);
-- A different search_path makes the plan cache re-plan; that re-plan keeps the shape.
SET search_path = pg_catalog;
SELECT count(*) FROM pgmq.read('shape', 30, 5);
RESET search_path;

SELECT pg_stat_force_next_flush();
SELECT seq_scan - :seq_before AS hot_path_seq_scans
FROM pg_stat_user_tables WHERE relid = 'pgmq.q_shape'::regclass;

-- With the fifo index, a grouped read finds a group's next messages through it.
SELECT pgmq.create_fifo_index('shape');
SELECT count(*) FROM pgmq.send_batch('shape',
  ARRAY(SELECT to_jsonb(i) FROM generate_series(1, 100) i),
  ARRAY(SELECT jsonb_build_object('x-pgmq-group', 'g' || i % 10) FROM generate_series(1, 100) i));
SELECT pg_stat_force_next_flush();
SELECT i.idx_scan AS fifo_before, t.seq_scan AS seq_before
FROM pg_stat_user_indexes i JOIN pg_stat_user_tables t USING (relid)
WHERE i.indexrelid = 'pgmq.q_shape_fifo_idx'::regclass \gset
SELECT count(*) FROM pgmq.read_grouped('shape', 30, 5);
SELECT pg_stat_force_next_flush();
SELECT i.idx_scan - :fifo_before > 0 AS fifo_index_used, t.seq_scan - :seq_before AS seq_scans_since
FROM pg_stat_user_indexes i JOIN pg_stat_user_tables t USING (relid)
WHERE i.indexrelid = 'pgmq.q_shape_fifo_idx'::regclass;
SELECT pgmq.drop_queue('shape');
