SELECT * FROM pgmq.send('soak', '{"task":"email","to":"user@example.com","attempt":1,"body":{"subject":"hello","lines":3}}');
