\set k random(1, 1000000000000)
SELECT * FROM pgmq.send('bench_idem', '{"task":"email","to":"user@example.com","attempt":1,"body":{"subject":"hello","lines":3}}', jsonb_build_object('x-queue-ext-idempotency-key', :k::text));
