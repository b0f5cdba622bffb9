SELECT * FROM pgmq.read('bench', 30, 1) \gset
SELECT pgmq.delete('bench', :msg_id::bigint);
