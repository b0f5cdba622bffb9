\set k random(1, 1000000000000)
SELECT * FROM pgmq.send('bench', '{"task":"email","to":"user@example.com","attempt":1,"body":{"subject":"hello","lines":3}}', jsonb_build_object('trace', :k::text));
