-- The circuit breaker (opt-in per queue): when the share of nacks among the
-- acks and nacks of the recent window reaches breaker_threshold (with at
-- least breaker_min_outcomes outcomes), reads deliver nothing for
-- breaker_cooldown; then one read gets one trial message (half open); its
-- ack closes the breaker, its nack opens it again.
\i test/sql/include/outcome.psql

SELECT pgmq.create('cb');
SELECT count(*) FROM pgmq.send_batch('cb', ARRAY(SELECT jsonb_build_object('n', i) FROM generate_series(1, 30) i));
-- Without the option a queue has no breaker: nacks change nothing.
SELECT count(*) FROM pgmq.circuit_breakers;

SELECT breaker_threshold, breaker_window, breaker_min_outcomes, breaker_cooldown
FROM pgmq.set_queue_options('cb', breaker_threshold => 0.5, breaker_min_outcomes => 4,
                            breaker_cooldown => '2 seconds', backoff_base => 3600);
SELECT queue_name, state, threshold, window_acks, window_nacks, nack_share, trips FROM pgmq.circuit_breakers;

-- A slow worker holds a message from before the breaker opens.
CREATE TEMP TABLE slow AS SELECT msg_id, read_ct FROM pgmq.read('cb', 300, 1);

-- 2 acks and 1 nack: below the minimum number of outcomes, and below the share.
CREATE TEMP TABLE got AS SELECT msg_id, read_ct FROM pgmq.read('cb', 30, 3);
SELECT pgmq.ack('cb', msg_id, read_ct) FROM got WHERE msg_id IN (SELECT msg_id FROM got ORDER BY msg_id LIMIT 2);
SELECT pgmq.nack('cb', msg_id, read_ct, 'failed') FROM got WHERE msg_id = (SELECT max(msg_id) FROM got);
SELECT state, window_acks, window_nacks, round(nack_share::numeric, 3) AS nack_share FROM pgmq.circuit_breakers;

-- One more nack: 4 outcomes, half of them nacks: open.
SELECT pgmq.nack('cb', msg_id, read_ct, 'failed') FROM pgmq.read('cb', 30, 1);
SELECT state, trips, opened_at IS NOT NULL AS opened, trial_from > opened_at AS cools_down
FROM pgmq.circuit_breakers;
-- Open: reads of every kind deliver nothing; sends are accepted.
SELECT count(*) AS read FROM pgmq.read('cb', 30, 5);
SELECT count(*) AS grouped FROM pgmq.read_grouped('cb', 30, 5);
SELECT count(*) AS popped FROM pgmq.pop('cb', 5);
-- (A poll that outlasted the cooldown would take the trial; this one does not.)
SELECT count(*) AS polled FROM pgmq.read_with_poll('cb', 30, 5, 1, 50);
SELECT count(*) AS sent FROM pgmq.send('cb', '{"n": 31}');

-- After the cooldown: one read is the trial and gets one message; the rest get none.
SELECT pg_sleep(1.2);
SELECT state FROM pgmq.circuit_breakers;
DROP TABLE got;
CREATE TEMP TABLE got AS SELECT msg_id, read_ct FROM pgmq.read('cb', 30, 5);
SELECT count(*) AS trial_messages FROM got;
SELECT state, trial_until > now() AS trial_leased, trial_msg_id = (SELECT msg_id FROM got) AS trial_recorded
FROM pgmq.circuit_breakers;
SELECT count(*) AS others_during_trial FROM pgmq.read('cb', 30, 5);
-- Only the trial message's outcome decides: the slow worker's ack does not close it.
SELECT pgmq.ack('cb', msg_id, read_ct) AS slow_worker_acks FROM slow;
SELECT state FROM pgmq.circuit_breakers;
-- The trial fails: open again.
SELECT pgmq.nack('cb', msg_id, read_ct, 'still failing') FROM got;
SELECT state, trips FROM pgmq.circuit_breakers;
SELECT count(*) AS while_open FROM pgmq.read('cb', 30, 5);

-- Next trial succeeds: closed, counts start over, reads deliver again.
SELECT pg_sleep(2.1);
DROP TABLE got;
CREATE TEMP TABLE got AS SELECT msg_id, read_ct FROM pgmq.read('cb', 30, 5);
SELECT count(*) AS trial_messages FROM got;
SELECT pgmq.ack('cb', msg_id, read_ct) FROM got;
SELECT state, window_acks, window_nacks, trips FROM pgmq.circuit_breakers;
SELECT count(*) AS delivered_again FROM pgmq.read('cb', 30, 5);

-- A trial whose lease ends without an outcome lets the next read try again.
SELECT pgmq.set_vt('cb', array(SELECT msg_id FROM pgmq.q_cb), 0) IS NULL AS unused \g /dev/null
SELECT count(*) FROM (SELECT pgmq.nack('cb', msg_id, read_ct, 'x') FROM pgmq.read('cb', 30, 4)) s;
SELECT state FROM pgmq.circuit_breakers;
SELECT pg_sleep(2.1);
SELECT count(*) AS trial_with_lapsing_lease FROM pgmq.read('cb', 1, 5);
SELECT count(*) AS during_lease FROM pgmq.read('cb', 30, 5);
SELECT pg_sleep(1.1);
DROP TABLE got;
CREATE TEMP TABLE got AS SELECT msg_id, read_ct FROM pgmq.read('cb', 30, 5);
SELECT count(*) AS next_trial FROM got;
SELECT pgmq.ack('cb', msg_id, read_ct) AS closes FROM got;

-- A trial is not used up by a read that could not deliver: qty 0, a filter
-- that matches nothing, or an empty queue leave the breaker open for the
-- next read; pop takes no trial at all.
SELECT count(*) FROM (SELECT pgmq.nack('cb', msg_id, read_ct, 'x') FROM pgmq.read('cb', 30, 4)) s;
SELECT state FROM pgmq.breaker_state WHERE queue_name = 'cb';
SELECT pg_sleep(2.1);
SELECT count(*) AS qty_zero FROM pgmq.read('cb', 30, 0);
SELECT count(*) AS no_match FROM pgmq.read('cb', 30, 5, '{"no": "such message"}');
SELECT count(*) AS popped FROM pgmq.pop('cb', 5);
SELECT state FROM pgmq.breaker_state WHERE queue_name = 'cb';
SELECT count(*) AS trial_messages FROM pgmq.read('cb', 30, 5);
SELECT state FROM pgmq.breaker_state WHERE queue_name = 'cb';

-- Turning the breaker off forgets its state: reads deliver at once.
SELECT breaker_threshold FROM pgmq.reset_queue_options('cb', ARRAY['breaker_threshold']);
SELECT count(*) AS breakers FROM pgmq.circuit_breakers;
SELECT count(*) > 0 AS delivering FROM pgmq.read('cb', 30, 5);

-- Bad input.
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('cb', breaker_threshold => 0)$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('cb', breaker_threshold => 1.5)$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('cb', breaker_threshold => 'NaN')$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('cb', breaker_min_outcomes => 0)$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('cb', breaker_window => '0.5 seconds')$$);
SELECT pg_temp.outcome($$SELECT pgmq.set_queue_options('cb', breaker_cooldown => '2 days')$$);
SELECT pg_temp.outcome($$SELECT pgmq.reset_queue_options('cb', ARRAY['breaker_thresold'])$$);
SELECT breaker_threshold, breaker_min_outcomes FROM pgmq.queue_options WHERE queue_name = 'cb';
SELECT pgmq.drop_queue('cb');
SELECT count(*) AS state_rows_left FROM pgmq.breaker_state WHERE queue_name = 'cb';
