-- delete and archive, for one id and for arrays.
SELECT pgmq.create('ack');
SELECT count(*) FROM pgmq.send_batch('ack', ARRAY['{"a":1}', '{"a":2}', '{"a":3}', '{"a":4}', '{"a":5}']::jsonb[]);
SELECT msg_id FROM pgmq.read('ack', 30, 2);

SELECT pgmq.delete('ack', 1);
SELECT pgmq.delete('ack', 1);            -- already gone
SELECT pgmq.delete('ack', NULL::bigint); -- pgmq returns false
SELECT * FROM pgmq.delete('ack', ARRAY[2, 3, 999]::bigint[]);
SELECT count(*) FROM pgmq.delete('ack', NULL::bigint[]);
SELECT count(*) FROM pgmq.delete('ack', ARRAY[]::bigint[]);

-- archive copies last_read_at and read_ct, stamps archived_at.
SELECT msg_id FROM pgmq.read('ack', 30, 1);
SELECT pgmq.archive('ack', 4);
SELECT pgmq.archive('ack', 4);
SELECT pgmq.archive('ack', NULL::bigint);
SELECT msg_id, read_ct, last_read_at IS NOT NULL AS read_before, archived_at IS NOT NULL, message
FROM pgmq.a_ack;
SELECT * FROM pgmq.archive('ack', ARRAY[5, 999]::bigint[]);
SELECT count(*) FROM pgmq.archive('ack', NULL::bigint[]);
SELECT msg_id, message FROM pgmq.a_ack ORDER BY msg_id;
SELECT count(*) FROM pgmq.q_ack;

-- archive happens in the caller's transaction: a rollback undoes both halves.
SELECT * FROM pgmq.send('ack', '{"a":6}');
BEGIN;
SELECT pgmq.archive('ack', 6);
SELECT (SELECT count(*) FROM pgmq.q_ack) AS queued, (SELECT count(*) FROM pgmq.a_ack) AS archived;
ROLLBACK;
SELECT (SELECT count(*) FROM pgmq.q_ack) AS queued, (SELECT count(*) FROM pgmq.a_ack) AS archived;

SELECT pgmq.drop_queue('ack');
