SELECT * FROM pgmq.read('bench_part', 30, 1) \gset
SELECT pgmq.delete('bench_part', :msg_id::bigint);
