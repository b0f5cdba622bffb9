BEGIN;
SELECT coalesce(array_agg(msg_id), '{}') AS ids FROM pgmq.read_with_poll('soak', 30, 10, 1, 100) \gset
SELECT count(*) FROM pgmq.delete('soak', :ids::bigint[]);
COMMIT;
