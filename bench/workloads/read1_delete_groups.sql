SELECT * FROM pgmq.read_grouped('bench_groups', 30, 1) \gset
SELECT pgmq.delete('bench_groups', :msg_id::bigint);
