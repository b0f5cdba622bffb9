BEGIN;
SET LOCAL ROLE qx_bench_rpc;
SELECT set_config('request.headers', json_build_object('user-agent', 'bench', 'x-api-key', :key::text)::text, true);
SELECT pgmq_public.pre_request();
SELECT msg_id FROM pgmq_public.read('bench_tenant', 30, 1) \gset
SELECT pgmq_public.delete('bench_tenant', :msg_id::bigint);
END;
