SELECT * FROM pgmq.send('scale_empty', '{"task":"email","to":"user@example.com","attempt":1,"body":{"subject":"hello","lines":3}}');
SELECT coalesce(array_agg(msg_id), '{}') AS ids FROM pgmq.read('scale_empty', 30, 1) \gset
SELECT count(*) FROM pgmq.delete('scale_empty', :ids::bigint[]);
