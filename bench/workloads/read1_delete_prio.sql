SELECT * FROM pgmq.read('bench_prio', 30, 1) \gset
SELECT pgmq.delete('bench_prio', :msg_id::bigint);
