-- Bad input gets a clear error with a proper SQLSTATE, and nothing is created
-- or lost. Each case prints "SQLSTATE: message", so the expected code is pinned.
SELECT pgmq.create('guarded');
SELECT * FROM pgmq.send('guarded', '{"keep":"me"}');

\i test/sql/include/outcome.psql

-- Unknown queue: 42P01 naming the queue, from every entry point.
SELECT statement, pg_temp.outcome(statement) FROM (VALUES
  ($$SELECT pgmq.send('missing', '{}')$$),
  ($$SELECT pgmq.send_batch('missing', ARRAY['{}']::jsonb[])$$),
  ($$SELECT pgmq.read('missing', 30, 1)$$),
  ($$SELECT pgmq.read_with_poll('missing', 30, 1, 1, 10)$$),
  ($$SELECT pgmq.pop('missing')$$),
  ($$SELECT pgmq.set_vt('missing', 1, 30)$$),
  ($$SELECT pgmq.set_vt('missing', ARRAY[1], now())$$),
  ($$SELECT pgmq.delete('missing', 1)$$),
  ($$SELECT pgmq.delete('missing', NULL::bigint)$$),
  ($$SELECT pgmq.delete('missing', ARRAY[1]::bigint[])$$),
  ($$SELECT pgmq.archive('missing', 1)$$),
  ($$SELECT pgmq.archive('missing', ARRAY[1]::bigint[])$$),
  ($$SELECT pgmq.purge_queue('missing')$$),
  ($$SELECT pgmq.metrics('missing')$$),
  ($$SELECT pgmq.enable_notify_insert('missing')$$),
  ($$SELECT pgmq.update_notify_insert('missing', 10)$$)
) AS cases(statement);
-- With its hint, as a client sees it:
SELECT * FROM pgmq.read('missing', 30, 1);

-- NULL queue name: 22004.
SELECT statement, pg_temp.outcome(statement) FROM (VALUES
  ($$SELECT pgmq.create(NULL)$$),
  ($$SELECT pgmq.create_unlogged(NULL)$$),
  ($$SELECT pgmq.send(NULL, '{}')$$),
  ($$SELECT pgmq.send_batch(NULL, ARRAY['{}']::jsonb[])$$),
  ($$SELECT pgmq.read(NULL, 30, 1)$$),
  ($$SELECT pgmq.pop(NULL)$$),
  ($$SELECT pgmq.delete(NULL, 1)$$),
  ($$SELECT pgmq.archive(NULL, 1)$$),
  ($$SELECT pgmq.metrics(NULL)$$),
  ($$SELECT pgmq.purge_queue(NULL)$$),
  ($$SELECT pgmq.drop_queue(NULL)$$)
) AS cases(statement);

-- Names pgmq rejects ($ ; -- ' and over 47 characters) and the empty name;
-- malicious names never reach SQL.
SELECT statement, pg_temp.outcome(statement) FROM (VALUES
  ($$SELECT pgmq.create('bad$name')$$),
  ($$SELECT pgmq.create('x''; DROP TABLE pgmq.meta; --')$$),
  ($$SELECT pgmq.create('a--b')$$),
  ($$SELECT pgmq.create('semi;colon')$$),
  ($$SELECT pgmq.create(repeat('n', 48))$$),
  ($$SELECT pgmq.create(repeat('é', 30))$$),
  ($$SELECT pgmq.create('')$$),
  ($$SELECT pgmq.send('x''; DROP TABLE pgmq.meta; --', '{}')$$),
  ($$SELECT pgmq.read('guarded"; DROP TABLE pgmq.meta; --', 30, 1)$$),
  ($$SELECT pgmq.read(repeat('n', 48), 30, 1)$$),
  ($$SELECT pgmq.drop_queue('x''; DROP TABLE pgmq.meta; --')$$)
) AS cases(statement);
-- One with its detail and hint, as a client sees it:
SELECT pgmq.create('x''; DROP TABLE pgmq.meta; --');

-- Names that need quoting but are allowed work, and stay one queue each.
SELECT pgmq.create('with space');
SELECT pgmq.create('with"quote');
SELECT pgmq.create('back\slash');
SELECT pgmq.create('Ünïcödé');
SELECT * FROM pgmq.send('with"quote', '{"q":1}');
SELECT message FROM pgmq.read('with"quote', 30, 1);
SELECT * FROM pgmq.send('Ünïcödé', '{"u":1}');
SELECT message FROM pgmq.read('Ünïcödé', 30, 1);
SELECT relname FROM pg_class WHERE relname LIKE 'q\_%' AND relkind = 'r' ORDER BY 1;
SELECT pgmq.drop_queue('with space'), pgmq.drop_queue('with"quote'),
       pgmq.drop_queue('back\slash'), pgmq.drop_queue('Ünïcödé');

-- NULL numbers where pgmq fails with a not-null violation: 22004 naming the
-- argument. Negative qty: 2201W, as LIMIT -1 gives. Huge numbers.
SELECT statement, pg_temp.outcome(statement) FROM (VALUES
  ($$SELECT pgmq.read('guarded', NULL, 1)$$),
  ($$SELECT pgmq.read_with_poll('guarded', NULL, 1)$$),
  ($$SELECT pgmq.read_with_poll('guarded', 30, 1, NULL, 100)$$),
  ($$SELECT pgmq.read_with_poll('guarded', 30, 1, 1, NULL)$$),
  ($$SELECT pgmq.read_with_poll('guarded', 30, 1, -1, 100)$$),
  ($$SELECT pgmq.read_with_poll('guarded', 30, 1, 3601, 100)$$),
  ($$SELECT pgmq.read_with_poll('guarded', 30, 1, 2147483647, 100)$$),
  ($$SELECT pgmq.read_with_poll('guarded', 30, 1, 1, -100)$$),
  ($$SELECT pgmq.read_with_poll('guarded', 30, 1, 1, 3600001)$$),
  ($$SELECT pgmq.read_grouped_with_poll('guarded', 30, 1, -5, 100)$$),
  ($$SELECT pgmq.set_vt('guarded', 1, NULL::integer)$$),
  ($$SELECT pgmq.set_vt('guarded', 1, NULL::timestamptz)$$),
  ($$SELECT pgmq.set_vt('guarded', ARRAY[1], NULL::integer)$$),
  ($$SELECT pgmq.send('guarded', '{}', NULL::integer)$$),
  ($$SELECT pgmq.send('guarded', '{}', NULL::timestamptz)$$),
  ($$SELECT pgmq.send('guarded', '{}', '{}'::jsonb, NULL::integer)$$),
  ($$SELECT pgmq.send_batch('guarded', ARRAY['{}']::jsonb[], NULL::integer)$$),
  ($$SELECT pgmq.read('guarded', 30, -1)$$),
  ($$SELECT pgmq.read_with_poll('guarded', 30, -1)$$),
  ($$SELECT pgmq.pop('guarded', -1)$$),
  ($$SELECT pgmq.send('guarded', '{}', 99999999999)$$),
  ($$SELECT pgmq.read('guarded', 30, 2147483648)$$),
  ($$SET queue_ext.max_read_qty = 0$$)
) AS cases(statement);

-- The largest vt and delay are accepted (68 years ahead), and undone here.
SELECT msg_id, vt > now() + interval '60 years' AS far FROM pgmq.read('guarded', 2147483647, 1);
SELECT msg_id, vt <= clock_timestamp() FROM pgmq.set_vt('guarded', 1, 0);
SELECT msg_id, vt < now() - interval '60 years' AS long_ago FROM pgmq.set_vt('guarded', 1, -2147483647);
SELECT msg_id FROM pgmq.set_vt('guarded', 1, 0);
-- A huge qty is capped at queue_ext.max_read_qty, not an error.
SHOW queue_ext.max_read_qty;
SELECT count(*) FROM pgmq.read('guarded', 0, 2147483647);
SET queue_ext.max_read_qty = 1;
SELECT count(*) FROM pgmq.send_batch('guarded', ARRAY['2', '3']::jsonb[]);
SELECT count(*) FROM pgmq.read('guarded', 0, 10);
SELECT count(*) FROM pgmq.read('guarded', 0, NULL);
RESET queue_ext.max_read_qty;
SELECT count(*) FROM pgmq.delete('guarded', ARRAY[2, 3]::bigint[]);

-- Invalid JSON is rejected before anything is sent: 22P02.
SELECT statement, pg_temp.outcome(statement) FROM (VALUES
  ($$SELECT pgmq.send('guarded', '{"broken":')$$),
  ($$SELECT pgmq.send('guarded', '{}', '{not json')$$),
  ($$SELECT pgmq.send_batch('guarded', ARRAY['{"ok":1}', '{bad']::jsonb[])$$),
  ($$SELECT pgmq.read('guarded', 30, 1, '{oops')$$)
) AS cases(statement);

-- Batches: NULL or empty msgs, mismatched headers, two dimensions.
SELECT statement, pg_temp.outcome(statement) FROM (VALUES
  ($$SELECT pgmq.send_batch('guarded', NULL::jsonb[])$$),
  ($$SELECT pgmq.send_batch('guarded', ARRAY[]::jsonb[])$$),
  ($$SELECT pgmq.send_batch('guarded', ARRAY['1', '2']::jsonb[], ARRAY['{}']::jsonb[])$$),
  ($$SELECT pgmq.send_batch('guarded', ARRAY['1']::jsonb[], ARRAY[]::jsonb[])$$),
  ($$SELECT pgmq.send_batch('guarded', ARRAY[['1', '2'], ['3', '4']]::jsonb[])$$),
  ($$SELECT pgmq.send_batch('guarded', ARRAY['1', '2']::jsonb[], ARRAY[['{}'], ['{}']]::jsonb[])$$)
) AS cases(statement);

-- Notify throttles: negative or NULL intervals, a queue without notify.
SELECT statement, pg_temp.outcome(statement) FROM (VALUES
  ($$SELECT pgmq.enable_notify_insert('guarded', -1)$$),
  ($$SELECT pgmq.enable_notify_insert('guarded', NULL)$$),
  ($$SELECT pgmq.update_notify_insert('guarded', -5)$$),
  ($$SELECT pgmq.update_notify_insert('guarded', 10)$$),
  ($$SELECT pgmq.enable_notify_insert('bad;name')$$)
) AS cases(statement);

-- Nothing was created, nothing was lost.
SELECT queue_name FROM pgmq.list_queues();
SELECT msg_id, message FROM pgmq.q_guarded;
SELECT relname AS queue_tables FROM pg_class
WHERE relnamespace = 'pgmq'::regnamespace AND relkind IN ('r', 'p') AND relname ~ '^[qa]_'
ORDER BY 1;
SELECT count(*) FROM pgmq.meta;
SELECT count(*) FROM pgmq.notify_insert_throttle;
SELECT pgmq.drop_queue('guarded');
