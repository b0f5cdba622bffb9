-- Partitioned queues through pg_partman, as pgmq 1.13 has them:
-- create_partitioned by msg_id and by time, every queue function on one,
-- retention through maintenance, row-level security on every partition,
-- gauges summed over partitions, convert_archive_partitioned, drop.
\i test/sql/include/outcome.psql
SET client_min_messages = warning;

-- Without pg_partman: a clear error.
SELECT pg_temp.outcome($$SELECT pgmq.create_partitioned('pt_ids')$$);
CREATE SCHEMA partman;
CREATE EXTENSION pg_partman SCHEMA partman;

-- Bad input.
SELECT pg_temp.outcome($$SELECT pgmq.create_partitioned('pt_bad', NULL)$$);
SELECT pg_temp.outcome($$SELECT pgmq.create_partitioned('pt_bad', 'often')$$);
SELECT pg_temp.outcome($$SELECT pgmq.create_partitioned('pt_bad', '0')$$);
SELECT pg_temp.outcome($$SELECT pgmq.create_partitioned('pt_bad', '-1 day')$$);
SELECT pg_temp.outcome($$SELECT pgmq.create_partitioned('pt_bad', '10', '1 day')$$);
SELECT pg_temp.outcome($$SELECT pgmq.create_partitioned('pt_bad', '10', '100', 0)$$);
SELECT pg_temp.outcome($$SELECT pgmq.create_partitioned('pt_bad', '10', '100', NULL)$$);
SELECT pg_temp.outcome($$SELECT pgmq.create_partitioned('pt;bad')$$);
SELECT count(*) AS left_behind FROM pg_class WHERE relname LIKE '%pt\_bad%';

-- By msg_id: 10 messages a partition, 2 made ahead, partitions 20 messages behind dropped.
SELECT pgmq.create_partitioned('pt_ids', '10', '20', 2);
SELECT pgmq.create_partitioned('pt_ids', '10', '20', 2);  -- again: nothing changes
SELECT queue_name, is_partitioned, is_unlogged FROM pgmq.list_queues() WHERE queue_name = 'pt_ids';
SELECT c.relname, c.relkind FROM pg_class c WHERE c.relname ~ '^[qa]_pt_ids(_p[0-9]+|_default)?$' ORDER BY 1;

-- Every queue function on it.
SELECT count(*) FROM pgmq.send_batch('pt_ids', ARRAY(SELECT jsonb_build_object('n', i) FROM generate_series(1, 25) i));
SELECT pgmq.send('pt_ids', '{"n": 26}', 60) AS delayed_id;
SELECT msg_id, read_ct, message FROM pgmq.read('pt_ids', 30, 3);
SELECT msg_id FROM pgmq.read_with_poll('pt_ids', 30, 1, 1, 100);
SELECT msg_id, message FROM pgmq.pop('pt_ids');
SELECT msg_id, read_ct FROM pgmq.set_vt('pt_ids', 1, 0);
SELECT pgmq.delete('pt_ids', 1), pgmq.archive('pt_ids', 2);
SELECT * FROM pgmq.delete('pt_ids', ARRAY[3, 999]::bigint[]);
SELECT * FROM pgmq.archive('pt_ids', ARRAY[6, 7]::bigint[]);
SELECT pgmq.ack('pt_ids', msg_id, read_ct) FROM pgmq.read('pt_ids', 30, 1);
SELECT max_attempts FROM pgmq.set_queue_options('pt_ids', max_attempts => 3);
SELECT pgmq.nack('pt_ids', msg_id, read_ct) FROM pgmq.read('pt_ids', 30, 1);
SELECT queue_length, queue_visible_length, total_messages, default_partition_length FROM pgmq.metrics('pt_ids');
SELECT count(*) AS archived FROM pgmq.a_pt_ids;
-- Gauges: each partition's, summed; exact.
SELECT depth, depth_from, archived, depth = (SELECT count(*) FROM pgmq.q_pt_ids) AS exact
FROM pgmq.queue_stats WHERE queue_name = 'pt_ids';

-- Every partition carries the queue's row-level security, and queue_ext's storage settings.
SELECT count(*) AS partitions, count(*) FILTER (WHERE c.relrowsecurity) AS protected,
       count(*) FILTER (WHERE (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) = 2) AS with_policies,
       count(*) FILTER (WHERE c.reloptions @> ARRAY['fillfactor=70'] OR c.relname LIKE 'a\_%') AS tuned
FROM pg_class c WHERE c.relname ~ '^[qa]_pt_ids_(p[0-9]+|default)$';

-- Maintenance makes partitions ahead of the messages (premake 2: up to 40s
-- now), so none land in the default partition; then, past message 45,
-- retention (20) drops the partitions below 20.
SELECT step, affected AS made FROM pgmq.run_maintenance(queues => ARRAY['pt_ids'], general => false) WHERE step = 'partitions';
SELECT count(*) FROM pgmq.send_batch('pt_ids', ARRAY(SELECT jsonb_build_object('n', i) FROM generate_series(27, 45) i));
SELECT default_partition_length FROM pgmq.metrics('pt_ids');
SELECT step, affected > 0 AS did FROM pgmq.run_maintenance(queues => ARRAY['pt_ids'], general => false) WHERE step = 'partitions';
SELECT string_agg(c.relname, ', ' ORDER BY c.relname) AS queue_partitions
FROM pg_class c WHERE c.relname ~ '^q_pt_ids_p[0-9]+$';
SELECT min(msg_id) >= 20 AS old_gone, count(*) FROM pgmq.q_pt_ids;
SELECT count(*) FILTER (WHERE NOT c.relrowsecurity) AS unprotected
FROM pg_class c WHERE c.relname ~ '^[qa]_pt_ids_(p[0-9]+|default)$';
SELECT depth_from, depth = (SELECT count(*) FROM pgmq.q_pt_ids) AS exact FROM pgmq.queue_stats WHERE queue_name = 'pt_ids';
-- Purge empties every partition; the gauges follow.
SELECT pgmq.purge_queue('pt_ids') > 0 AS purged;
SELECT depth, depth_from FROM pgmq.queue_stats WHERE queue_name = 'pt_ids';

-- By time: daily partitions, a week kept.
SELECT pgmq.create_partitioned('pt_time', '1 day', '7 days', 2);
SELECT count(*) FROM pgmq.send_batch('pt_time', ARRAY['{"a": 1}', '{"a": 2}']::jsonb[]);
SELECT msg_id, message FROM pgmq.read('pt_time', 30, 1);
SELECT pgmq.archive('pt_time', 1), pgmq.delete('pt_time', 2);
SELECT queue_length FROM pgmq.metrics('pt_time');
SELECT count(*) AS archived FROM pgmq.a_pt_time;
SELECT pg_get_partkeydef('pgmq.q_pt_time'::regclass) AS queue_key, pg_get_partkeydef('pgmq.a_pt_time'::regclass) AS archive_key;

-- convert_archive_partitioned: a plain queue's archive becomes partitioned; the old one is kept.
SELECT pgmq.create('pt_plain');
SELECT pgmq.send('pt_plain', '{}') AS id;
SELECT pgmq.archive('pt_plain', 1);
SELECT pgmq.convert_archive_partitioned('pt_plain', '100', '1000', 2);
SELECT pgmq.convert_archive_partitioned('pt_plain', '100', '1000', 2);
SELECT pgmq.send('pt_plain', '{}') AS id;
SELECT pgmq.archive('pt_plain', 2);
SELECT (SELECT count(*) FROM pgmq.a_pt_plain) AS archived, (SELECT count(*) FROM pgmq.a_pt_plain_old) AS old_archive,
       (SELECT relkind FROM pg_class WHERE oid = 'pgmq.a_pt_plain'::regclass) AS kind;
SELECT pg_temp.outcome($$SELECT pgmq.convert_archive_partitioned('pt_missing')$$);

-- Dropping takes pg_partman's configuration and templates along.
SELECT pgmq.drop_queue('pt_ids'), pgmq.drop_queue('pt_time');
DROP TABLE pgmq.a_pt_plain_old;
SELECT pgmq.drop_queue('pt_plain');
SELECT count(*) AS partman_configs FROM partman.part_config WHERE parent_table LIKE 'pgmq.%';
SELECT count(*) AS tables_left FROM pg_class WHERE relname LIKE '%pt\_%' AND relkind IN ('r', 'p');
DROP EXTENSION pg_partman;
DROP SCHEMA partman;
