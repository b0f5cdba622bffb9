-- Reliable jobs: fenced ack and nack, retry schedules, dead letters, redrive,
-- cancel, progress, outcomes, lookup and counts.
\i test/sql/include/outcome.psql
-- Seconds between a message's last nack and the time it is visible again.
CREATE FUNCTION pg_temp.retry_delay(q text, id bigint) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE d numeric;
BEGIN
    EXECUTE format('SELECT round(extract(epoch FROM vt - (headers -> ''x-queue-ext-errors'' -> -1 ->> ''at'')::timestamptz), 3)'
                   ' FROM pgmq.%I WHERE msg_id = $1', 'q_' || q) INTO d USING id;
    RETURN d;
END;
$$;
-- Makes every waiting retry of a queue visible now (instead of sleeping through the backoff).
CREATE FUNCTION pg_temp.skip_wait(q text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('UPDATE pgmq.%I SET vt = clock_timestamp() - interval ''1 second''', 'q_' || q);
END;
$$;

SELECT pgmq.create('jobs');

-- 1. Fenced ack: only the current delivery's read_ct finishes the message.
SELECT pgmq.send('jobs', '{"task": 1}');
SELECT msg_id, read_ct FROM pgmq.read('jobs', 0, 1);       -- delivery 1, lease lapses at once
SELECT msg_id, read_ct FROM pgmq.read('jobs', 30, 1);      -- delivery 2, to another worker
SELECT pgmq.ack('jobs', 1, 1);                             -- stale receipt: false, nothing changes
SELECT pgmq.nack('jobs', 1, 1, 'late');                    -- stale too
SELECT pgmq.progress('jobs', 1, 1, '{"p": 1}');            -- stale too
SELECT msg_id, read_ct, headers FROM pgmq.q_jobs;
SELECT pgmq.ack('jobs', 1, 3);                             -- a receipt from the future: false
SELECT pgmq.ack('jobs', 1, 2);                             -- the current one
SELECT pgmq.ack('jobs', 1, 2);                             -- already acked: false
SELECT count(*) FROM pgmq.q_jobs;
SELECT count(*) FROM pgmq.a_jobs;                          -- no history by default: deleted
SELECT pgmq.ack('jobs', NULL, 1);                          -- no message: false, as pgmq's delete
-- A message never delivered has no receipt yet.
SELECT pgmq.send('jobs', '{"task": 2}');
SELECT pg_temp.outcome($$SELECT pgmq.ack('jobs', 2, 0)$$);
SELECT pgmq.cancel('jobs', 2);

-- 2. Retry with backoff: base * 2^(attempt - 1), capped. "5 attempts from 2 s".
SELECT max_attempts, backoff_base FROM pgmq.set_queue_options('jobs', max_attempts => 5, backoff_base => 2);
SELECT pgmq.send('jobs', '{"task": 3}');
SELECT read_ct, pgmq.nack('jobs', msg_id, read_ct, 'attempt ' || read_ct) AS nacked,
       pg_temp.retry_delay('jobs', msg_id) AS delay_s
FROM pgmq.read('jobs', 30, 1);
-- Waiting for a retry: the receipt is void, the message is not readable yet.
SELECT pgmq.ack('jobs', 3, 1);
SELECT pgmq.nack('jobs', 3, 1);
SELECT count(*) FROM pgmq.read('jobs', 30, 1);
SELECT state, last_error FROM pgmq.find_job('jobs', 3);
SELECT pg_temp.skip_wait('jobs');
SELECT read_ct, pgmq.nack('jobs', msg_id, read_ct, 'attempt ' || read_ct), pg_temp.retry_delay('jobs', msg_id)
FROM pgmq.read('jobs', 30, 1);
SELECT pg_temp.skip_wait('jobs');
SELECT read_ct, pgmq.nack('jobs', msg_id, read_ct, 'attempt ' || read_ct), pg_temp.retry_delay('jobs', msg_id)
FROM pgmq.read('jobs', 30, 1);
SELECT pg_temp.skip_wait('jobs');
SELECT read_ct, pgmq.nack('jobs', msg_id, read_ct, 'attempt ' || read_ct), pg_temp.retry_delay('jobs', msg_id)
FROM pgmq.read('jobs', 30, 1);
-- The errors so far travel with the message, so the next worker sees them.
SELECT jsonb_path_query_array(headers, '$."x-queue-ext-errors"[*].error') AS errors,
       headers -> 'x-queue-ext-nacked' AS nacked_delivery
FROM pgmq.q_jobs;
-- 3. The fifth attempt is the last: its nack dead-letters the message (no dead-letter
-- queue: into the archive, with its history), in the nack's own transaction.
SELECT pg_temp.skip_wait('jobs');
BEGIN;
SELECT read_ct, pgmq.nack('jobs', msg_id, read_ct, 'attempt ' || read_ct) FROM pgmq.read('jobs', 30, 1);
SELECT (SELECT count(*) FROM pgmq.q_jobs) AS queued, (SELECT count(*) FROM pgmq.a_jobs) AS archived;
ROLLBACK;
SELECT msg_id, read_ct FROM pgmq.q_jobs;                    -- the rollback undid read and nack
SELECT pg_temp.skip_wait('jobs');
SELECT read_ct, pgmq.nack('jobs', msg_id, read_ct, 'attempt ' || read_ct) FROM pgmq.read('jobs', 30, 1);
SELECT count(*) FROM pgmq.q_jobs;
SELECT msg_id, read_ct, message,
       (headers -> 'x-queue-ext-outcome') - 'at' AS outcome,
       jsonb_array_length(headers -> 'x-queue-ext-errors') AS errors
FROM pgmq.a_jobs;
SELECT state, found_in, found_msg_id, read_ct, last_error FROM pgmq.find_job('jobs', 3);

-- "2 s, 4 s, 8 s", and a cap.
SELECT max_attempts FROM pgmq.set_queue_options('jobs', max_attempts => 4, backoff_cap => 5);
SELECT pgmq.send('jobs', '{"task": 4}');
SELECT read_ct, pg_temp.retry_delay('jobs', msg_id) FROM pgmq.read('jobs', 30, 1), pgmq.nack('jobs', msg_id, read_ct);
SELECT pg_temp.skip_wait('jobs');
SELECT read_ct, pg_temp.retry_delay('jobs', msg_id) FROM pgmq.read('jobs', 30, 1), pgmq.nack('jobs', msg_id, read_ct);
SELECT pg_temp.skip_wait('jobs');
SELECT read_ct, pg_temp.retry_delay('jobs', msg_id) FROM pgmq.read('jobs', 30, 1), pgmq.nack('jobs', msg_id, read_ct);
SELECT pg_temp.skip_wait('jobs');
SELECT read_ct, n FROM pgmq.read('jobs', 30, 1), pgmq.nack('jobs', msg_id, read_ct) AS n;
SELECT headers -> 'x-queue-ext-outcome' ->> 'state' AS state FROM pgmq.a_jobs WHERE msg_id = 4;

-- Per-message overrides win over the queue's: two attempts, 0.5 s doubling.
SELECT pgmq.send('jobs', '{"task": 5}', '{"x-queue-ext-max-attempts": 2, "x-queue-ext-backoff": {"base": 0.5}, "trace": "t5"}');
SELECT read_ct, pg_temp.retry_delay('jobs', msg_id) FROM pgmq.read('jobs', 30, 1), pgmq.nack('jobs', msg_id, read_ct);
SELECT pg_temp.skip_wait('jobs');
SELECT read_ct, n FROM pgmq.read('jobs', 30, 1), pgmq.nack('jobs', msg_id, read_ct) AS n;
SELECT headers -> 'trace' AS trace, headers -> 'x-queue-ext-outcome' ->> 'attempts' AS attempts
FROM pgmq.a_jobs WHERE msg_id = 5;
-- ... also to allow more attempts than the queue does.
SELECT pgmq.send('jobs', '{"task": 6}', '{"x-queue-ext-max-attempts": 6}');
SELECT read_ct, pg_temp.retry_delay('jobs', msg_id) FROM pgmq.read('jobs', 30, 1), pgmq.nack('jobs', msg_id, read_ct);
SELECT pg_temp.skip_wait('jobs');
SELECT read_ct FROM pgmq.read('jobs', 30, 1), pgmq.nack('jobs', msg_id, read_ct);
SELECT pg_temp.skip_wait('jobs');
SELECT read_ct FROM pgmq.read('jobs', 30, 1), pgmq.nack('jobs', msg_id, read_ct);
SELECT pg_temp.skip_wait('jobs');
SELECT read_ct FROM pgmq.read('jobs', 30, 1), pgmq.nack('jobs', msg_id, read_ct);
SELECT pg_temp.skip_wait('jobs');
SELECT read_ct, pg_temp.retry_delay('jobs', msg_id) FROM pgmq.read('jobs', 30, 1), pgmq.nack('jobs', msg_id, read_ct);
SELECT count(*) FROM pgmq.q_jobs;
SELECT pgmq.purge_queue('jobs');

-- Jitter stays inside its documented range: full in [0, d], equal in [d/2, d].
SELECT backoff_jitter FROM pgmq.set_queue_options('jobs', backoff_base => 100, backoff_cap => 100,
                                                  backoff_jitter => 'full', max_attempts => 100);
SELECT count(*) FROM pgmq.send_batch('jobs', (SELECT array_agg('{}'::jsonb) FROM generate_series(1, 200)));
SELECT count(*) FROM pgmq.read('jobs', 30, 200) r, pgmq.nack('jobs', r.msg_id, r.read_ct) n WHERE n;
SELECT min(d) >= 0 AND max(d) <= 100 AS in_range, min(d) < 50 AND max(d) > 50 AS spread
FROM (SELECT pg_temp.retry_delay('jobs', msg_id) AS d FROM pgmq.q_jobs) x;
SELECT pg_temp.skip_wait('jobs');
SELECT backoff_jitter FROM pgmq.set_queue_options('jobs', backoff_jitter => 'equal');
SELECT count(*) FROM pgmq.read('jobs', 30, 200) r, pgmq.nack('jobs', r.msg_id, r.read_ct) n WHERE n;
SELECT min(d) >= 50 AND max(d) <= 100 AS in_range, min(d) < 75 AND max(d) > 75 AS spread
FROM (SELECT pg_temp.retry_delay('jobs', msg_id) AS d FROM pgmq.q_jobs) x;
SELECT pgmq.purge_queue('jobs');
SELECT queue_name FROM pgmq.reset_queue_options('jobs');

-- A crashed worker: a lease that lapses on the last allowed delivery dead-letters the
-- message at the next read instead of delivering it again (SQS redrive policy).
SELECT max_attempts FROM pgmq.set_queue_options('jobs', max_attempts => 2);
SELECT pgmq.purge_queue('jobs');
SELECT pgmq.send('jobs', '{"task": 7}');
SELECT msg_id, read_ct FROM pgmq.read('jobs', 0, 5);
SELECT msg_id, read_ct FROM pgmq.read('jobs', 0, 5);
SELECT msg_id, read_ct FROM pgmq.read('jobs', 0, 5);       -- nothing: it died instead
SELECT msg_id, read_ct, headers -> 'x-queue-ext-outcome' ->> 'reason' AS reason,
       headers -> 'x-queue-ext-outcome' ->> 'attempts' AS attempts
FROM pgmq.a_jobs WHERE msg_id = 207;
-- Messages that still have attempts left are delivered beside it.
SELECT pgmq.send('jobs', '{"task": 8}');
SELECT msg_id, read_ct FROM pgmq.read('jobs', 0, 5);
SELECT pgmq.send('jobs', '{"task": 9}');
SELECT msg_id, read_ct FROM pgmq.read('jobs', 0, 5);
-- 208 is dead, 209 is delivered: a dead letter does not take a delivery's place.
SELECT msg_id, read_ct FROM pgmq.read('jobs', 30, 1);
SELECT msg_id FROM pgmq.a_jobs WHERE msg_id IN (208, 209);
SELECT pgmq.purge_queue('jobs');
-- read_with_poll dead-letters the same way.
SELECT pgmq.send('jobs', '{"task": 10}');
SELECT msg_id, read_ct FROM pgmq.read_with_poll('jobs', 0, 1, 1, 10);
SELECT msg_id, read_ct FROM pgmq.read_with_poll('jobs', 0, 1, 1, 10);
SELECT count(*) FROM pgmq.read_with_poll('jobs', 30, 1, 1, 10);
SELECT msg_id FROM pgmq.a_jobs WHERE msg_id = 210;

-- With a dead-letter queue, dead letters become messages there, with their history.
SELECT pgmq.create('jobs_dlq');
SELECT dead_letter_queue FROM pgmq.set_queue_options('jobs', dead_letter_queue => 'jobs_dlq');
SELECT pgmq.send('jobs', '{"task": 11}', '{"trace": "t11"}');
SELECT read_ct, pgmq.nack('jobs', msg_id, read_ct, 'first') FROM pgmq.read('jobs', 30, 1);
SELECT pg_temp.skip_wait('jobs');
SELECT read_ct, pgmq.nack('jobs', msg_id, read_ct, 'second') FROM pgmq.read('jobs', 30, 1);
SELECT count(*) FROM pgmq.q_jobs;
SELECT msg_id, read_ct, message, headers -> 'trace' AS trace,
       (headers -> 'x-queue-ext-dead-letter') - 'dead_at' - 'enqueued_at' AS dead_letter,
       (headers -> 'x-queue-ext-dead-letter' ->> 'enqueued_at')::timestamptz = enqueued_at AS first_enqueue_kept,
       jsonb_path_query_array(headers, '$."x-queue-ext-errors"[*].error') AS errors,
       headers ? 'x-queue-ext-nacked' AS fence_left_behind
FROM pgmq.q_jobs_dlq;
SELECT state, found_in, found_msg_id, read_ct, last_error FROM pgmq.find_job('jobs', 211);
-- A lapsed lease dead-letters into the dead-letter queue too.
SELECT pgmq.send('jobs', '{"task": 12}');
SELECT msg_id, read_ct FROM pgmq.read('jobs', 0, 1);
SELECT msg_id, read_ct FROM pgmq.read('jobs', 0, 1);
SELECT count(*) FROM pgmq.read('jobs', 0, 1);
SELECT msg_id, headers -> 'x-queue-ext-dead-letter' ->> 'msg_id' AS from_id,
       headers -> 'x-queue-ext-dead-letter' ->> 'reason' AS reason,
       headers -> 'x-queue-ext-dead-letter' ->> 'attempts' AS attempts
FROM pgmq.q_jobs_dlq ORDER BY msg_id;
-- A dead letter is an ordinary message of the dead-letter queue: it can be read and acked.
SELECT msg_id, read_ct FROM pgmq.read('jobs_dlq', 30, 1);
SELECT pgmq.ack('jobs_dlq', 1, 1);

-- 3b. Redrive: some, then all, back to the queue each came from, attempts anew.
SELECT pgmq.send('jobs', '{"task": 13}');
SELECT msg_id, read_ct FROM pgmq.read('jobs', 0, 1);
SELECT msg_id, read_ct FROM pgmq.read('jobs', 0, 1);
SELECT count(*) FROM pgmq.read('jobs', 0, 1);
SELECT msg_id, headers -> 'x-queue-ext-dead-letter' ->> 'msg_id' AS from_id FROM pgmq.q_jobs_dlq ORDER BY msg_id;
SELECT * FROM pgmq.redrive('jobs_dlq', ARRAY[2]);
SELECT * FROM pgmq.redrive('jobs_dlq', ARRAY[2]);          -- already gone: nothing
SELECT msg_id, read_ct, message, headers FROM pgmq.q_jobs ORDER BY msg_id;
-- A dead letter a worker holds stays put.
SELECT msg_id FROM pgmq.read('jobs_dlq', 30, 1);
SELECT * FROM pgmq.redrive('jobs_dlq');
SELECT msg_id FROM pgmq.q_jobs_dlq;
SELECT pgmq.set_vt('jobs_dlq', 3, 0) IS NOT NULL;
SELECT * FROM pgmq.redrive('jobs_dlq', to_queue => 'jobs');
SELECT count(*) FROM pgmq.q_jobs_dlq;
-- Dead letters kept in a queue's own archive go back into it.
SELECT queue_name FROM pgmq.reset_queue_options('jobs', ARRAY['dead_letter_queue']);
SELECT msg_id FROM pgmq.a_jobs WHERE headers -> 'x-queue-ext-outcome' ->> 'state' = 'dead' ORDER BY msg_id;
SELECT * FROM pgmq.redrive('jobs', ARRAY[3, 4, 999]);
SELECT msg_id, read_ct, message FROM pgmq.q_jobs WHERE msg_id > 214 ORDER BY msg_id;
SELECT count(*) FROM pgmq.redrive('jobs');
SELECT count(*) FROM pgmq.a_jobs WHERE headers -> 'x-queue-ext-outcome' ->> 'state' = 'dead';
-- Redrive errors: nothing moves.
SELECT pg_temp.outcome($$SELECT * FROM pgmq.redrive('nope')$$);
SELECT pg_temp.outcome($$SELECT * FROM pgmq.redrive('jobs', to_queue => 'nope')$$);
SELECT pg_temp.outcome($$SELECT * FROM pgmq.redrive('jobs', ARRAY[[1], [2]])$$);
-- (A send refuses the dead-letter header; rows made by direct SQL can still carry one.)
SELECT pg_temp.outcome($$SELECT pgmq.send('jobs_dlq', '{}', '{"x-queue-ext-dead-letter": {"queue": "payments"}}')$$);
INSERT INTO pgmq.q_jobs_dlq (vt, message, headers) VALUES (now(), '{"forged": true}', '{"x-queue-ext-dead-letter": {"queue": "gone"}}');
SELECT pg_temp.outcome($$SELECT * FROM pgmq.redrive('jobs_dlq')$$);
INSERT INTO pgmq.q_jobs_dlq (vt, message, headers) VALUES (now(), '{"forged": true}', '{"x-queue-ext-dead-letter": {}}');
SELECT pg_temp.outcome($$SELECT * FROM pgmq.redrive('jobs_dlq')$$);
SELECT count(*) FROM pgmq.q_jobs_dlq;
SELECT pgmq.purge_queue('jobs_dlq');
SELECT pgmq.purge_queue('jobs');

-- 5. Cancel: a message no worker holds.
SELECT queue_name FROM pgmq.reset_queue_options('jobs');
SELECT pgmq.send('jobs', '{"task": "waiting"}') AS waiting_id \gset
SELECT pgmq.send('jobs', '{"task": "delayed"}', 3600) AS delayed_id \gset
SELECT pgmq.send('jobs', '{"task": "held"}') AS held_id \gset
SELECT count(*) FROM pgmq.read('jobs', 30, 3);            -- waiting and held, not the delayed one
SELECT pgmq.cancel('jobs', :delayed_id) AS delayed_cancelled;
SELECT pgmq.cancel('jobs', :held_id) AS held_cancelled;
SELECT pgmq.cancel('jobs', :waiting_id) AS waiting_is_held_too;
SELECT pgmq.nack('jobs', :waiting_id, 1);
SELECT pgmq.cancel('jobs', :waiting_id) AS retrying_cancelled;
SELECT pgmq.cancel('jobs', :waiting_id) AS already_gone;
SELECT pgmq.cancel('jobs', NULL);
SELECT pg_temp.outcome($$SELECT pgmq.cancel('nope', 1)$$);

-- Progress and heartbeat, fenced by the receipt.
SELECT pgmq.progress('jobs', :held_id, 1, '{"done": 10}');
SELECT pgmq.progress('jobs', :held_id, 1, vt => 600);
SELECT headers -> 'x-queue-ext-progress' AS progress,
       vt > clock_timestamp() + interval '590 seconds' AS extended
FROM pgmq.q_jobs WHERE msg_id = :held_id;
SELECT pgmq.progress('jobs', :held_id, 1, '{"done": 50}');  -- replaces it
SELECT progress FROM pgmq.find_job('jobs', :held_id);
SELECT pgmq.progress('jobs', :held_id, 2, '{"done": 99}');  -- stale
SELECT pg_temp.outcome($$SELECT pgmq.progress('jobs', 1, 1, vt => -5)$$);
SELECT pg_temp.outcome($$SELECT pgmq.progress('jobs', 1, NULL)$$);
SELECT pg_temp.outcome($$SELECT pgmq.progress('jobs', 1, -1)$$);
SELECT pg_temp.outcome($$SELECT pgmq.progress('nope', 1, 1)$$);
-- After a crash the next worker finds the progress where it left it.
SELECT pgmq.set_vt('jobs', :held_id, 0) IS NOT NULL;
SELECT read_ct, headers -> 'x-queue-ext-progress' AS progress FROM pgmq.read('jobs', 30, 1);
SELECT pgmq.ack('jobs', :held_id, 2);

-- 6. Outcomes: a queue that keeps history archives completed and cancelled jobs.
SELECT keep_history FROM pgmq.set_queue_options('jobs', keep_history => true);
SELECT pgmq.send('jobs', '{"task": "to complete"}') AS done_id \gset
SELECT pgmq.send('jobs', '{"task": "to cancel"}', 3600) AS cancel_id \gset
SELECT count(*) FROM pgmq.read('jobs', 30, 1);
SELECT pgmq.ack('jobs', :done_id, 1, '{"emails_sent": 3}');
SELECT pgmq.cancel('jobs', :cancel_id);
SELECT msg_id, read_ct, (headers -> 'x-queue-ext-outcome') - 'at' AS outcome FROM pgmq.a_jobs
WHERE msg_id IN (:done_id, :cancel_id) ORDER BY msg_id;
SELECT state, found_in, read_ct, result, finished_at IS NOT NULL AS finished FROM pgmq.find_job('jobs', :done_id);
SELECT state FROM pgmq.find_job('jobs', :cancel_id);
-- pgmq's own archive and delete keep their meaning.
SELECT pgmq.send('jobs', '{"task": "archived"}') AS arch_id \gset
SELECT pgmq.archive('jobs', :arch_id);
SELECT state FROM pgmq.find_job('jobs', :arch_id);
SELECT count(*) FROM pgmq.find_job('jobs', 999999);
SELECT pg_temp.outcome($$SELECT * FROM pgmq.find_job('nope', 1)$$);

-- Batch forms: each receipt checked on its own.
SELECT count(*) FROM pgmq.send_batch('jobs', ARRAY['{"b": 1}', '{"b": 2}', '{"b": 3}', '{"b": 4}']::jsonb[]);
SELECT array_agg(msg_id ORDER BY msg_id) AS ids FROM pgmq.read('jobs', 30, 4) \gset
SELECT * FROM pgmq.ack_batch('jobs', :'ids'::bigint[], ARRAY[1, 2, 1, 1], '{"batch": true}');
SELECT * FROM pgmq.nack_batch('jobs', :'ids'::bigint[], ARRAY[1, 1, 1, 1], 'batch failed');
SELECT msg_id, headers -> 'x-queue-ext-nacked' AS nacked FROM pgmq.q_jobs WHERE message ? 'b' ORDER BY msg_id;
SELECT count(*) FROM pgmq.a_jobs WHERE headers -> 'x-queue-ext-outcome' -> 'result' = '{"batch": true}';
SELECT pg_temp.outcome($$SELECT * FROM pgmq.ack_batch('jobs', ARRAY[1, 2], ARRAY[1])$$);
SELECT pg_temp.outcome($$SELECT * FROM pgmq.ack_batch('jobs', ARRAY[1, 2], ARRAY[1, 0])$$);
SELECT pg_temp.outcome($$SELECT * FROM pgmq.nack_batch('jobs', ARRAY[1, 2], ARRAY[1, NULL])$$);
SELECT pg_temp.outcome($$SELECT * FROM pgmq.ack_batch('jobs', ARRAY[1, NULL], ARRAY[1, 1])$$);
SELECT pg_temp.outcome($$SELECT * FROM pgmq.ack_batch('jobs', NULL, ARRAY[1])$$);
SELECT pg_temp.outcome($$SELECT * FROM pgmq.nack_batch('jobs', ARRAY[[1]], ARRAY[[1]])$$);
SELECT pg_temp.outcome($$SELECT * FROM pgmq.ack_batch('nope', ARRAY[1], ARRAY[1])$$);

-- Counts per state.
SELECT pgmq.purge_queue('jobs');
SELECT pgmq.send('jobs', '{}');
SELECT pgmq.send('jobs', '{}', 3600);
SELECT pgmq.send('jobs', '{}');
SELECT pgmq.send('jobs', '{}');
SELECT count(*) FROM pgmq.read('jobs', 30, 1) r WHERE r.msg_id > 0;
SELECT pgmq.nack('jobs', msg_id, read_ct) FROM pgmq.read('jobs', 30, 1);
SELECT * FROM pgmq.job_counts WHERE queue_name LIKE 'jobs%' ORDER BY queue_name;

-- Bad input and unknown queues: clear errors.
SELECT pg_temp.outcome($$SELECT pgmq.ack('nope', 1, 1)$$);
SELECT pg_temp.outcome($$SELECT pgmq.nack('nope', 1, 1)$$);
SELECT pg_temp.outcome($$SELECT pgmq.ack(NULL, 1, 1)$$);
SELECT pg_temp.outcome($$SELECT pgmq.ack('jobs', 1, NULL)$$);
SELECT pg_temp.outcome($$SELECT pgmq.nack('jobs', 1, -2)$$);
SELECT pg_temp.outcome($$SELECT pgmq.nack('bad;name', 1, 1)$$);
SELECT pg_temp.outcome($$SELECT pgmq.ack('jobs', 1, 1, 'not json')$$);
SELECT pg_temp.outcome($$SELECT * FROM pgmq.find_job('bad;name', 1)$$);
SELECT pg_temp.outcome($$SELECT * FROM pgmq.find_job(repeat('x', 48), 1)$$);
SELECT pg_temp.outcome($$SELECT * FROM pgmq.find_job(NULL, 1)$$);
-- The helpers: a state for each case, NULL for NULL; a name for any spelling.
SELECT pgmq.message_state(now() - interval '1 s', 3, NULL, now()) AS visible,
       pgmq.message_state(now() + interval '1 h', 0, NULL, now()) AS never_read,
       pgmq.message_state(now() + interval '1 h', 2, '{"x-queue-ext-nacked": 2}', now()) AS nacked,
       pgmq.message_state(now() + interval '1 h', 3, '{"x-queue-ext-nacked": 2}', now()) AS leased,
       pgmq.message_state(NULL, 1, NULL, now()) IS NULL AS null_in_null_out;
SELECT pgmq.registered_queue_name('JOBS');
SELECT pg_temp.outcome($$SELECT pgmq.registered_queue_name('nope')$$);
SELECT pg_temp.outcome($$SELECT pgmq.registered_queue_name('a--b')$$);
SELECT pg_temp.outcome($$SELECT pgmq.registered_queue_name(NULL)$$);

-- Dead letters record the queue's registered name, whatever spelling the caller used.
SELECT pgmq.create('Spelled');
SELECT pgmq.create('spelled_dlq');
SELECT queue_name FROM pgmq.set_queue_options('SPELLED', max_attempts => 1, dead_letter_queue => 'spelled_dlq');
SELECT pgmq.send('spelled', '{"n": 1}');
SELECT pgmq.nack('sPeLLeD', msg_id, read_ct) FROM pgmq.read('SPELLED', 30, 1);
SELECT headers -> 'x-queue-ext-dead-letter' ->> 'queue' AS origin FROM pgmq.q_spelled_dlq;
SELECT state, found_in FROM pgmq.find_job('spelled', 1);
SELECT dead FROM pgmq.job_counts WHERE queue_name = 'Spelled';
SELECT queue_name FROM pgmq.reset_queue_options('spelled');
SELECT pgmq.drop_queue('spelled_dlq');
SELECT pgmq.drop_queue('Spelled');

-- A header override too large for a double, in a row made by direct SQL, is ignored
-- (the queue's value applies) instead of stalling every read.
SELECT pgmq.purge_queue('jobs') >= 0;
SELECT max_attempts FROM pgmq.set_queue_options('jobs', max_attempts => 1);
INSERT INTO pgmq.q_jobs (vt, message, headers) VALUES (now(), '{"huge": true}', '{"x-queue-ext-max-attempts": 1e400, "x-queue-ext-backoff": {"base": 1e400}}');
SELECT read_ct, pgmq.nack('jobs', msg_id, read_ct, 'huge') FROM pgmq.read('jobs', 30, 1);
SELECT headers -> 'x-queue-ext-outcome' ->> 'state' AS state FROM pgmq.a_jobs WHERE message ? 'huge';
SELECT queue_name FROM pgmq.reset_queue_options('jobs');

-- A role with privileges on a queue's tables and sequence only (no access to
-- queue_ext's catalog tables) can use the queue and its job functions, options and all.
CREATE ROLE qx_worker;
GRANT USAGE ON SCHEMA pgmq TO qx_worker;
GRANT SELECT, INSERT, UPDATE, DELETE ON pgmq.q_jobs, pgmq.a_jobs TO qx_worker;
GRANT SELECT ON SEQUENCE pgmq.q_jobs_msg_id_seq TO qx_worker;
SELECT max_attempts FROM pgmq.set_queue_options('jobs', max_attempts => 2, keep_history => true);
SET ROLE qx_worker;
SELECT count(*) FROM pgmq.send('jobs', '{"by": "worker"}');
SELECT pgmq.nack('jobs', msg_id, read_ct, 'worker nack') FROM pgmq.read('jobs', 30, 1);
SELECT pg_temp.outcome($$SELECT count(*) FROM pgmq.queue_config$$);
RESET ROLE;
SELECT pg_temp.skip_wait('jobs');
SET ROLE qx_worker;
SELECT read_ct, pgmq.ack('jobs', msg_id, read_ct, '{"ok": 1}') FROM pgmq.read('jobs', 30, 1);
RESET ROLE;
SELECT headers -> 'x-queue-ext-outcome' ->> 'state' AS state FROM pgmq.a_jobs WHERE message ->> 'by' = 'worker';
SET ROLE qx_worker;
SELECT queue_length FROM pgmq.metrics('jobs');
RESET ROLE;
REVOKE ALL ON pgmq.q_jobs, pgmq.a_jobs, pgmq.q_jobs_msg_id_seq FROM qx_worker;
REVOKE USAGE ON SCHEMA pgmq FROM qx_worker;
DROP ROLE qx_worker;
SELECT queue_name FROM pgmq.reset_queue_options('jobs');

-- Headers that are not an object are kept, under x-queue-ext-headers, once a nack writes.
SELECT queue_name FROM pgmq.reset_queue_options('jobs');
SELECT pgmq.send('jobs', '{"odd": true}', '["a", "b"]') AS odd_id \gset
SELECT read_ct FROM pgmq.read('jobs', 30, 10) WHERE msg_id = :odd_id;
SELECT pgmq.nack('jobs', :odd_id, 1, 'odd');
SELECT headers -> 'x-queue-ext-headers' AS kept, headers -> 'x-queue-ext-nacked' AS nacked
FROM pgmq.q_jobs WHERE msg_id = :odd_id;

SELECT pgmq.drop_queue('jobs');
SELECT pgmq.drop_queue('jobs_dlq');
