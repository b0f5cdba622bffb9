-- Queue options: set, read, reset; pause and resume; default_vt; max_message_size;
-- per-message overrides checked at send; dead-letter queue rules; bad input.
\i test/sql/include/outcome.psql

SELECT pgmq.create('opts');
SELECT pgmq.create('opts_dlq');
SELECT pgmq.create('opts_other');

-- A queue without options shows pgmq's behaviour: unlimited attempts, nothing paused.
SELECT * FROM pgmq.queue_options ORDER BY queue_name;

-- Named arguments, as an RPC gateway passes them; NULL leaves a value alone.
SELECT * FROM pgmq.set_queue_options('opts', max_attempts => 5, backoff_base => 2);
SELECT * FROM pgmq.set_queue_options(queue_name => 'opts', backoff_jitter => 'full',
                                     dead_letter_queue => 'opts_dlq', default_vt => 45,
                                     archive_retention => '7 days', keep_history => true,
                                     max_message_size => 1000);
SELECT * FROM pgmq.set_queue_options('opts', backoff_cap => 60);
SELECT queue_name, max_attempts, backoff_base, backoff_cap, backoff_jitter FROM pgmq.queue_config;

-- Reset some, then all.
SELECT max_attempts, backoff_jitter, keep_history
FROM pgmq.reset_queue_options('opts', ARRAY['max_attempts', 'backoff_jitter']);
SELECT * FROM pgmq.reset_queue_options('opts');
SELECT count(*) FROM pgmq.queue_config;

-- Any spelling of a queue's name finds it; options are kept under the registered one.
SELECT queue_name, max_attempts FROM pgmq.set_queue_options('OPTS', max_attempts => 3);
SELECT queue_name FROM pgmq.queue_config;
SELECT queue_name FROM pgmq.reset_queue_options('opts');

-- Bad input: clear errors, nothing changed.
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('nope', max_attempts => 3)$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options(NULL, max_attempts => 3)$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('opts', max_attempts => 0)$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('opts', max_attempts => -1)$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('opts', max_attempts => 1000001)$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('opts', backoff_base => 0)$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('opts', backoff_base => -2)$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('opts', backoff_base => 'NaN')$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('opts', backoff_cap => 'Infinity')$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('opts', backoff_cap => 1e9)$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('opts', backoff_jitter => 'random')$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('opts', default_vt => -1)$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('opts', archive_retention => '-1 day')$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('opts', max_message_size => 0)$$);
SELECT pg_temp.outcome($$SELECT pgmq.reset_queue_options('opts', ARRAY['max_attempts', 'colour'])$$);
SELECT pg_temp.outcome($$SELECT pgmq.reset_queue_options('opts', ARRAY[NULL])$$);
SELECT pg_temp.outcome($$SELECT pgmq.reset_queue_options('nope')$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('bad$name', paused => true)$$);
SELECT pg_temp.outcome($$SELECT pgmq.pause_queue(repeat('q', 48))$$);
SELECT count(*) FROM pgmq.queue_config;

-- Dead-letter queues: must exist, must not be the queue itself, must not close a cycle.
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('opts', dead_letter_queue => 'missing')$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('opts', dead_letter_queue => 'opts')$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('opts', dead_letter_queue => 'Opts')$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('opts', dead_letter_queue => 'x''; DROP TABLE pgmq.meta; --')$$);
SELECT dead_letter_queue FROM pgmq.set_queue_options('opts', dead_letter_queue => 'opts_dlq');
SELECT dead_letter_queue FROM pgmq.set_queue_options('opts_dlq', dead_letter_queue => 'opts_other');
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('opts_other', dead_letter_queue => 'opts')$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('opts_other', dead_letter_queue => 'opts_dlq')$$);
-- The constraints hold for direct SQL too.
SELECT pg_temp.outcome($$UPDATE pgmq.queue_config SET dead_letter_queue = queue_name$$);
SELECT pg_temp.outcome($$UPDATE pgmq.queue_config SET max_attempts = 0$$);
-- A dead-letter queue in use cannot be dropped; nothing is lost trying.
SELECT pg_temp.outcome($$SELECT pgmq.drop_queue('opts_dlq')$$);
SELECT pg_temp.outcome($$SELECT pgmq.drop_queue('opts_other')$$);
SELECT count(*) FROM pgmq.list_queues();
SELECT queue_name FROM pgmq.reset_queue_options('opts_dlq');
SELECT pgmq.drop_queue('opts_other');
-- Dropping a queue drops its options.
SELECT queue_name FROM pgmq.reset_queue_options('opts');
SELECT pgmq.create('opts_other');
SELECT max_attempts FROM pgmq.set_queue_options('opts_other', max_attempts => 9);
SELECT pgmq.drop_queue('opts_other');
SELECT count(*) FROM pgmq.queue_config WHERE queue_name = 'opts_other';
SELECT pgmq.create('opts_other');
SELECT max_attempts FROM pgmq.queue_options WHERE queue_name = 'opts_other';

-- Pause: sends are accepted; read, read_with_poll and pop return nothing until resume.
SELECT pgmq.send('opts', '{"n": 1}');
SELECT pgmq.pause_queue('opts');
SELECT paused FROM pgmq.queue_options WHERE queue_name = 'opts';
SELECT pgmq.send('opts', '{"n": 2}');
SELECT count(*) FROM pgmq.read('opts', 30, 10);
SELECT count(*) FROM pgmq.read_with_poll('opts', 30, 10, 1, 100);
SELECT count(*) FROM pgmq.pop('opts', 10);
SELECT queue_length FROM pgmq.metrics('opts');
SELECT pgmq.resume_queue('opts');
SELECT msg_id, read_ct, message FROM pgmq.read('opts', 30, 10);
-- A pause in a rolled-back transaction never happened.
BEGIN;
SELECT pgmq.pause_queue('opts');
ROLLBACK;
SELECT pgmq.send('opts', '{"n": 3}');
SELECT msg_id FROM pgmq.read('opts', 30, 10);
SELECT pg_temp.outcome($$SELECT pgmq.pause_queue('nope')$$);

-- default_vt: a read whose vt is NULL takes it; without one a NULL vt is still an error.
SELECT pg_temp.outcome($$SELECT * FROM pgmq.read('opts', NULL, 1)$$);
SELECT default_vt FROM pgmq.set_queue_options('opts', default_vt => 600);
SELECT pgmq.send('opts', '{"n": 4}');
SELECT msg_id, vt > clock_timestamp() + interval '590 seconds' AS leased_for_default
FROM pgmq.read('opts', NULL, 1);
SELECT pgmq.send('opts', '{"n": 5}');
SELECT msg_id, vt < clock_timestamp() + interval '60 seconds' AS explicit_vt_wins
FROM pgmq.read('opts', 30, 1);

-- max_message_size counts message and headers (jsonb bytes); a batch is refused whole.
SELECT max_message_size FROM pgmq.set_queue_options('opts', max_message_size => 64);
SELECT pg_temp.outcome($$SELECT pgmq.send('opts', jsonb_build_object('text', repeat('x', 100)))$$);
SELECT pg_temp.outcome($$SELECT pgmq.send('opts', '{}', jsonb_build_object('h', repeat('x', 100)))$$);
SELECT pg_temp.outcome($$SELECT pgmq.send_batch('opts', ARRAY['{"ok": 1}', jsonb_build_object('text', repeat('x', 100))])$$);
SELECT pg_temp.outcome($$SELECT pgmq.send_batch('opts', ARRAY['{"ok": 1}', '{"ok": 2}']::jsonb[], ARRAY['{}', jsonb_build_object('h', repeat('x', 100))])$$);
SELECT count(*) FROM pgmq.send('opts', '{"small": true}');
SELECT count(*) FROM pgmq.send('opts', NULL::jsonb);
SELECT count(*) FROM pgmq.send_batch('opts', ARRAY['{"a": 1}', '{"b": 2}']::jsonb[]);
SELECT queue_name FROM pgmq.reset_queue_options('opts', ARRAY['max_message_size']);
SELECT count(*) FROM pgmq.send('opts', jsonb_build_object('text', repeat('x', 100)));

-- Per-message overrides are checked when sent.
SELECT count(*) FROM pgmq.send('opts', '{}', '{"x-queue-ext-max-attempts": 2, "x-queue-ext-backoff": {"base": 0.5, "cap": 10, "jitter": "equal"}}');
SELECT pg_temp.outcome($$SELECT pgmq.send('opts', '{}', '{"x-queue-ext-max-attempts": 0}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.send('opts', '{}', '{"x-queue-ext-max-attempts": 2.5}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.send('opts', '{}', '{"x-queue-ext-max-attempts": "3"}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.send('opts', '{}', '{"x-queue-ext-max-attempts": 1e12}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.send('opts', '{}', '{"x-queue-ext-backoff": 5}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.send('opts', '{}', '{"x-queue-ext-backoff": {"base": -1}}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.send('opts', '{}', '{"x-queue-ext-backoff": {"cap": 1e9}}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.send('opts', '{}', '{"x-queue-ext-backoff": {"jitter": "lots"}}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.send('opts', '{}', '{"x-queue-ext-max-attempts": 1e400}')$$);
-- The keys queue_ext records cannot be sent.
SELECT pg_temp.outcome($$SELECT pgmq.send('opts', '{}', '{"x-queue-ext-nacked": 1}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.send('opts', '{}', '{"x-queue-ext-errors": []}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.send('opts', '{}', '{"x-queue-ext-progress": 5}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.send('opts', '{}', '{"x-queue-ext-dead-letter": {"queue": "opts"}}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.send('opts', '{}', '{"x-queue-ext-outcome": {}}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.send('opts', '{}', '{"x-queue-ext-headers": []}')$$);
SELECT pg_temp.outcome($$SELECT pgmq.send_batch('opts', ARRAY['{}', '{}']::jsonb[], ARRAY['{}', '{"x-queue-ext-max-attempts": -3}']::jsonb[])$$);
-- Headers that are not an object carry no overrides, as in pgmq.
SELECT count(*) FROM pgmq.send('opts', '{}', '["x-queue-ext-max-attempts"]');
SELECT count(*) FROM pgmq.send('opts', '{}', '"plain"');

SELECT pgmq.drop_queue('opts');
SELECT pgmq.drop_queue('opts_dlq');
SELECT pgmq.drop_queue('opts_other');
SELECT count(*) FROM pgmq.queue_config;
