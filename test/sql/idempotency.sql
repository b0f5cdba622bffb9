-- Idempotency keys: a send whose x-queue-ext-idempotency-key was sent to the
-- same queue within the queue's idempotency_window (default 24 hours)
-- enqueues nothing and returns the first msg_id.
\i test/sql/include/outcome.psql

SELECT pgmq.create('idem');
SELECT pgmq.create('idem_other');
SELECT idempotency_window FROM pgmq.queue_options WHERE queue_name = 'idem';

SELECT * FROM pgmq.send('idem', '{"try": 1}', '{"x-queue-ext-idempotency-key": "order-42"}');
SELECT * FROM pgmq.send('idem', '{"try": 2}', '{"x-queue-ext-idempotency-key": "order-42"}');
-- Every send overload: with a delay, a timestamp, untyped parameters.
SELECT * FROM pgmq.send('idem', '{"try": 3}', '{"x-queue-ext-idempotency-key": "order-42"}', 10);
SELECT * FROM pgmq.send('idem', '{"try": 4}', '{"x-queue-ext-idempotency-key": "order-42"}', now());
PREPARE untyped AS SELECT * FROM pgmq.send($1, $2, $3);
EXECUTE untyped('idem', '{"try": 5}', '{"x-queue-ext-idempotency-key": "order-42"}');
-- Another key, and the same key on another queue, are new messages.
SELECT * FROM pgmq.send('idem', '{"try": 6}', '{"x-queue-ext-idempotency-key": "order-43"}');
SELECT * FROM pgmq.send('idem_other', '{"try": 7}', '{"x-queue-ext-idempotency-key": "order-42"}');
SELECT msg_id, message FROM pgmq.q_idem ORDER BY msg_id;

-- The key holds after the message was consumed (as SQS deduplication does).
SELECT pgmq.delete('idem', 1);
SELECT * FROM pgmq.send('idem', '{"try": 8}', '{"x-queue-ext-idempotency-key": "order-42"}');
SELECT count(*) AS messages FROM pgmq.q_idem;

-- Batches: each message by its own key; a key repeated in a batch returns
-- its first message's id; messages without keys go in as usual, in order.
SELECT * FROM pgmq.send_batch('idem', ARRAY['{"b": 1}', '{"b": 2}', '{"b": 3}', '{"b": 4}']::jsonb[],
  ARRAY['{"x-queue-ext-idempotency-key": "batch-1"}', NULL, '{"x-queue-ext-idempotency-key": "batch-1"}',
        '{"x-queue-ext-idempotency-key": "order-43"}']::jsonb[]);
SELECT msg_id, message FROM pgmq.q_idem WHERE message ? 'b' ORDER BY msg_id;

-- A rolled-back send leaves no key behind.
BEGIN;
SELECT * FROM pgmq.send('idem', '{"try": "rolled back"}', '{"x-queue-ext-idempotency-key": "order-44"}') \gset first_
ROLLBACK;
SELECT * FROM pgmq.send('idem', '{"try": "again"}', '{"x-queue-ext-idempotency-key": "order-44"}') \gset second_
SELECT :first_send <> :second_send AS new_message,
       (SELECT message ->> 'try' FROM pgmq.q_idem WHERE msg_id = :second_send) AS stored;

-- After the window, the key is free again. (Expired rows are ignored by
-- sends and removed by maintenance.)
SELECT idempotency_window FROM pgmq.set_queue_options('idem', idempotency_window => '1 second');
SELECT * FROM pgmq.send('idem', '{"try": "short"}', '{"x-queue-ext-idempotency-key": "short"}') \gset short_
SELECT pg_sleep(1.2);
SELECT * FROM pgmq.send('idem', '{"try": "later"}', '{"x-queue-ext-idempotency-key": "short"}') \gset later_
SELECT :later_send > :short_send AS enqueued_again;
SELECT idempotency_key, msg_id = :later_send AS points_at_new FROM pgmq.idempotency_keys
WHERE queue_name = 'idem' AND idempotency_key = 'short';

-- The maintenance hook deletes expired keys only, in batches.
SELECT idempotency_window FROM pgmq.set_queue_options('idem_other', idempotency_window => '1 second');
SELECT count(*) FROM (SELECT pgmq.send('idem_other', '{}', jsonb_build_object('x-queue-ext-idempotency-key', 'exp-' || i))
                      FROM generate_series(1, 3) i) s;
SELECT pg_sleep(1.2);
SELECT count(*) AS expired_keys FROM pgmq.idempotency_keys WHERE expires_at <= clock_timestamp();
SELECT pgmq.expire_idempotency_keys(2) AS first_batch;
SELECT pgmq.expire_idempotency_keys() AS second_batch;
SELECT pgmq.expire_idempotency_keys() AS nothing_left;
SELECT count(*) AS live_keys_kept FROM pgmq.idempotency_keys WHERE expires_at > clock_timestamp();
SELECT pg_temp.outcome($$SELECT pgmq.expire_idempotency_keys(0)$$);
SELECT pg_temp.outcome($$SELECT pgmq.expire_idempotency_keys(NULL)$$);

-- Keys survive in pg_dump (config-dumped); drop_queue removes the queue's keys.
SELECT count(*) > 0 AS dumped FROM pg_extension e, unnest(e.extconfig) c
WHERE e.extname = 'queue_ext' AND c = 'pgmq.idempotency_keys'::regclass;
SELECT pgmq.drop_queue('idem_other');
SELECT count(*) AS keys_of_dropped_queue FROM pgmq.idempotency_keys WHERE queue_name = 'idem_other';

-- Bad input: clear errors, nothing enqueued.
SELECT count(*) AS before FROM pgmq.q_idem \gset
SELECT pg_temp.outcome($$SELECT pgmq.send('idem', '{}', '{"x-queue-ext-idempotency-key": ""}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.send('idem', '{}', '{"x-queue-ext-idempotency-key": 42}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.send('idem', '{}', '{"x-queue-ext-idempotency-key": {"a": 1}}')$$);
SELECT pg_temp.outcome(format($$SELECT pgmq.send('idem', '{}', jsonb_build_object('x-queue-ext-idempotency-key', %L))$$, repeat('k', 129)));
SELECT pg_temp.outcome($$SELECT pgmq.send_batch('idem', ARRAY['{}', '{}']::jsonb[], ARRAY['{"x-queue-ext-idempotency-key": "fine"}', '{"x-queue-ext-idempotency-key": null}']::jsonb[])$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('idem', idempotency_window => '0 seconds')$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('idem', idempotency_window => '400 days')$$);
SELECT count(*) - :before AS enqueued_by_bad_input FROM pgmq.q_idem;
SELECT pgmq.drop_queue('idem');
