SELECT * FROM pgmq.read('bench_limited', 30, 1) \gset
SELECT pgmq.delete('bench_limited', :msg_id::bigint);
