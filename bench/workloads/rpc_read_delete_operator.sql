BEGIN;
SET LOCAL ROLE postgres;
SELECT set_config('request.headers', '{"user-agent":"bench"}', true);
SELECT pgmq_public.pre_request();
SELECT msg_id FROM pgmq_public.read('bench_op', 30, 1) \gset
SELECT pgmq_public.delete('bench_op', :msg_id::bigint);
END;
