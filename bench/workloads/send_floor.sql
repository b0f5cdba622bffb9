INSERT INTO floor_q (vt, message, headers) VALUES (clock_timestamp(), '{"task":"email","to":"user@example.com","attempt":1,"body":{"subject":"hello","lines":3}}', NULL) RETURNING msg_id;
