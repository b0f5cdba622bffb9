BEGIN;
SET LOCAL ROLE postgres;
SELECT set_config('request.headers', '{"user-agent":"bench"}', true);
SELECT pgmq_public.pre_request();
SELECT * FROM pgmq_public.send('bench_op', '{"task":"email","to":"user@example.com","attempt":1,"body":{"subject":"hello","lines":3}}', 0);
END;
