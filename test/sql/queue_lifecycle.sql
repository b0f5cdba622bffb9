-- create, create_unlogged, list_queues, drop_queue, purge_queue, name helpers.
SELECT pgmq.create('lifecycle');
SELECT pgmq.create('lifecycle');            -- again: a no-op
SELECT pgmq.create_non_partitioned('lifecycle_np');
SELECT pgmq.create_unlogged('lifecycle_unlogged');
SELECT queue_name, is_partitioned, is_unlogged FROM pgmq.list_queues();
SELECT relname, relpersistence FROM pg_class
WHERE relname IN ('q_lifecycle_unlogged', 'a_lifecycle_unlogged') ORDER BY 1;

-- create_unlogged on an existing logged queue leaves it logged (pgmq 1.13).
SELECT pgmq.create_unlogged('lifecycle');
SELECT relpersistence FROM pg_class WHERE relname = 'q_lifecycle';

-- Names pgmq accepts: hyphens and mixed case; tables are lowercased.
SELECT pgmq.create('queue-hyphened');
SELECT pgmq.create('QueueCased');
SELECT * FROM pgmq.send('queue-hyphened', '{"x":1}');
SELECT * FROM pgmq.send('QueueCased', '{"x":1}');
SELECT count(*) FROM pgmq.q_queuecased;
SELECT count(*) FROM pgmq."q_queue-hyphened";
SELECT queue_name FROM pgmq.list_queues() WHERE queue_name IN ('QueueCased', 'queue-hyphened') ORDER BY 1;
-- Another spelling of an existing name would share its tables: refused.
SELECT pgmq.create('queuecased');

-- Dropping by another spelling drops the one registered queue, catalog row included.
SELECT pgmq.create('MixedDrop');
SELECT pgmq.drop_queue('MIXEDDROP');
SELECT count(*) FROM pgmq.meta WHERE lower(queue_name) = 'mixeddrop';
SELECT to_regclass('pgmq.q_mixeddrop');

-- purge returns how many messages it removed and keeps total_messages.
SELECT * FROM pgmq.send_batch('lifecycle', ARRAY['1', '2', '3']::jsonb[]);
SELECT pgmq.purge_queue('lifecycle');
SELECT queue_length, total_messages FROM pgmq.metrics('lifecycle');
SELECT pgmq.purge_queue('lifecycle');

-- drop: true, then false with a notice; the deprecated form warns and returns true.
SELECT pgmq.drop_queue('lifecycle_np');
SELECT pgmq.drop_queue('lifecycle_np');
SELECT pgmq.drop_queue('lifecycle_unlogged', false);
SELECT to_regclass('pgmq.q_lifecycle_np'), to_regclass('pgmq.a_lifecycle_np');
-- A dropped queue is gone for the hot path too, in this session (cached plans).
SELECT * FROM pgmq.send('lifecycle_np', '{}');
-- Re-created under the same name, it works again.
SELECT pgmq.create('lifecycle_np');
SELECT * FROM pgmq.send('lifecycle_np', '{}');

-- Helpers pgmq users call.
SELECT pgmq.format_table_name('QueueCased', 'q'), pgmq.format_table_name('x', 'a');
SELECT pgmq.format_table_name('bad;name', 'q');
SELECT pgmq.validate_queue_name(repeat('a', 47));
SELECT pgmq.validate_queue_name(repeat('a', 48));
SELECT pgmq.detach_archive('lifecycle');
SELECT pgmq.acquire_queue_lock('lifecycle');

SELECT pgmq.drop_queue(queue_name) FROM pgmq.list_queues();
SELECT count(*) FROM pgmq.meta;
