SELECT * FROM pgmq.read('bench', 30, 1) \gset
SELECT pgmq.nack('bench', :msg_id::bigint, :read_ct::integer, 'worker failed');
