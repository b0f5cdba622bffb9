SELECT * FROM pgmq.send('bench_limited', '{"task":"email","to":"user@example.com","attempt":1,"body":{"subject":"hello","lines":3}}');
