SELECT pgmq.send_topic('orders.eu.created', '{"task":"email","to":"user@example.com","attempt":1,"body":{"subject":"hello","lines":3}}');
