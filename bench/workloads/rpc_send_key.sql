BEGIN;
SET LOCAL ROLE qx_bench_rpc;
SELECT set_config('request.headers', json_build_object('user-agent', 'bench', 'x-api-key', :key::text)::text, true);
SELECT pgmq_public.pre_request();
SELECT * FROM pgmq_public.send('bench_tenant', '{"task":"email","to":"user@example.com","attempt":1,"body":{"subject":"hello","lines":3}}', 0);
END;
