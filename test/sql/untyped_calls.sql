-- Drivers that send every parameter untyped (node-postgres, pgmq-js): PREPARE
-- without parameter types reproduces them. Every pgmq call shape must resolve,
-- and typed calls must still reach the documented overloads.
SELECT pgmq.create('untyped');

PREPARE send2 AS SELECT * FROM pgmq.send($1, $2);
PREPARE send3 AS SELECT * FROM pgmq.send($1, $2, $3);
PREPARE send4 AS SELECT * FROM pgmq.send($1, $2, $3, $4);
EXECUTE send2('untyped', '{"s":2}');
EXECUTE send3('untyped', '{"s":3}', '{"trace_id":"x"}');   -- headers
EXECUTE send3('untyped', '{"s":3}', '0');                   -- delay in seconds
EXECUTE send3('untyped', '{"s":3}', '3600');                -- delayed an hour
EXECUTE send3('untyped', '{"s":3}', '2000-01-01 00:00:00+00'); -- a timestamp
EXECUTE send3('untyped', '{"s":3}', NULL);                  -- NULL headers
EXECUTE send4('untyped', '{"s":4}', '{"h":4}', '0');
EXECUTE send4('untyped', '{"s":4}', '{"h":4}', '2000-01-01 00:00:00+00');
EXECUTE send3('untyped', '{"s":3}', 'next tuesday');        -- neither: 22007
SELECT msg_id, message, headers, vt > clock_timestamp() AS delayed FROM pgmq.q_untyped ORDER BY msg_id;

PREPARE batch2 AS SELECT * FROM pgmq.send_batch($1, $2);
PREPARE batch3 AS SELECT * FROM pgmq.send_batch($1, $2, $3);
PREPARE batch4 AS SELECT * FROM pgmq.send_batch($1, $2, $3, $4);
EXECUTE batch2('untyped', '{"{\"b\":1}","{\"b\":2}"}');
EXECUTE batch3('untyped', '{"{\"b\":3}"}', '{"{\"h\":3}"}');
EXECUTE batch3('untyped', '{"{\"b\":4}"}', '3600');
EXECUTE batch3('untyped', '{"{\"b\":5}"}', '2000-01-01 00:00:00+00');
EXECUTE batch4('untyped', '{"{\"b\":6}"}', '{"{\"h\":6}"}', '0');
SELECT msg_id, message, headers, vt > clock_timestamp() AS delayed
FROM pgmq.q_untyped WHERE message ? 'b' ORDER BY msg_id;

PREPARE read3 AS SELECT msg_id FROM pgmq.read($1, $2, $3);
PREPARE read4 AS SELECT msg_id FROM pgmq.read($1, $2, $3, $4);
PREPARE poll5 AS SELECT msg_id FROM pgmq.read_with_poll($1, $2, $3, $4, $5);
PREPARE pop1 AS SELECT msg_id FROM pgmq.pop($1);
PREPARE pop2 AS SELECT msg_id FROM pgmq.pop($1, $2);
EXECUTE read3('untyped', '30', '1');
EXECUTE read4('untyped', '30', '1', '{"s":4}');
EXECUTE poll5('untyped', '30', '1', '1', '10');
EXECUTE pop1('untyped');
EXECUTE pop2('untyped', '1');

-- set_vt($1, $2, $3): pgmq-js's setVt, "not unique" on pgmq 1.13.
PREPARE setvt AS SELECT msg_id, vt > clock_timestamp() + interval '50 seconds' AS moved
                 FROM pgmq.set_vt($1, $2, $3);
EXECUTE setvt('untyped', '1', '100');
EXECUTE setvt('untyped', '{2,3}', '100');
EXECUTE setvt('untyped', '1', '2000-01-01 00:00:00+00');
EXECUTE setvt('untyped', NULL, '10');
EXECUTE setvt('untyped', 'one', '10');                      -- 22P02

-- delete and archive as pgmq-js calls them (id typed, the rest untyped).
PREPARE del AS SELECT pgmq.delete($1, $2::bigint);
PREPARE dels AS SELECT pgmq.delete($1, $2::bigint[]);
PREPARE arch AS SELECT pgmq.archive($1, $2::bigint);
PREPARE archs AS SELECT pgmq.archive($1, $2::bigint[]);
EXECUTE del('untyped', '1');
EXECUTE dels('untyped', '{2,3}');
EXECUTE arch('untyped', '4');
EXECUTE archs('untyped', '{5,6}');
-- ... and fully untyped, as a plain node-postgres caller writes them.
SELECT * FROM pgmq.send_batch('untyped', ARRAY['{"d":1}', '{"d":2}']::jsonb[]);
PREPARE del_untyped AS SELECT pgmq.delete($1, $2);
PREPARE arch_untyped AS SELECT pgmq.archive($1, $2);
EXECUTE del_untyped('untyped', '16');
EXECUTE del_untyped('untyped', '16');
EXECUTE arch_untyped('untyped', '15');
EXECUTE del_untyped('untyped', NULL);
EXECUTE del_untyped('untyped', '{16,17}');                 -- arrays need bigint[]
EXECUTE arch_untyped('untyped', 'x');                      -- 22P02
PREPARE metrics1 AS SELECT queue_name, queue_length FROM pgmq.metrics($1);
EXECUTE metrics1('untyped');
PREPARE create1 AS SELECT pgmq.create($1);
EXECUTE create1('untyped_2');
PREPARE drop1 AS SELECT pgmq.drop_queue($1);
EXECUTE drop1('untyped_2');

-- pgmq's own documented call: send('q', '{..}', '{..}') with two literals.
SELECT * FROM pgmq.send('untyped', '{"doc":1}', '{"trace_id":"abc"}');
SELECT headers FROM pgmq.q_untyped WHERE message = '{"doc":1}';

-- Typed calls still resolve to the documented overloads: a view records the
-- function each call resolved to in pg_depend, without running it.
CREATE FUNCTION pg_temp.resolves_to(call text) RETURNS regprocedure LANGUAGE plpgsql AS $$
DECLARE result regprocedure;
BEGIN
  EXECUTE 'CREATE TEMP VIEW resolution_probe AS SELECT ' || call;
  SELECT d.refobjid::regprocedure INTO result
  FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
  WHERE r.ev_class = 'resolution_probe'::regclass AND d.refclassid = 'pg_proc'::regclass
    AND d.refobjid::regprocedure::text LIKE 'pgmq.%';
  DROP VIEW resolution_probe;
  RETURN result;
END $$;
SELECT call, pg_temp.resolves_to(call) FROM (VALUES
  ($$pgmq.send('q', '{}')$$),
  ($$pgmq.send('q', '{}'::jsonb, '{}'::jsonb)$$),
  ($$pgmq.send('q', '{}', 5)$$),
  ($$pgmq.send('q', '{}', now())$$),
  ($$pgmq.send('q', '{}', '2024-01-01'::timestamp)$$),
  ($$pgmq.send('q', '{}', '{}'::jsonb, 5)$$),
  ($$pgmq.send('q', '{}', '{}'::jsonb, now())$$),
  ($$pgmq.send('q', '{}', '{"a":1}')$$),
  ($$pgmq.send_batch('q', ARRAY['{}'::jsonb])$$),
  ($$pgmq.send_batch('q', ARRAY['{}'::jsonb], ARRAY['{}'::jsonb])$$),
  ($$pgmq.send_batch('q', ARRAY['{}'::jsonb], 5)$$),
  ($$pgmq.send_batch('q', ARRAY['{}'::jsonb], now())$$),
  ($$pgmq.send_batch('q', ARRAY['{}'::jsonb], ARRAY['{}'::jsonb], 5)$$),
  ($$pgmq.send_batch('q', ARRAY['{}'::jsonb], ARRAY['{}'::jsonb], now())$$),
  ($$pgmq.set_vt('q', 1, 5)$$),
  ($$pgmq.set_vt('q', 1::bigint, now())$$),
  ($$pgmq.set_vt('q', ARRAY[1], 5)$$),
  ($$pgmq.set_vt('q', ARRAY[1::bigint], now())$$),
  ($$pgmq.set_vt('q', '1', '5')$$),
  ($$pgmq.delete('q', 1)$$),
  ($$pgmq.delete('q', ARRAY[1])$$),
  ($$pgmq.archive('q', 1)$$),
  ($$pgmq.archive('q', ARRAY[1])$$),
  ($$pgmq.delete('q', '1')$$),
  ($$pgmq.delete('q', 1::bigint)$$),
  ($$pgmq.read('q', 30, 1)$$),
  ($$pgmq.pop('q')$$)
) AS calls(call);

-- The job functions, as a driver sends them (every parameter untyped) and as a
-- PostgREST-style gateway calls them (named arguments).
SELECT pgmq.purge_queue('untyped') >= 0;
PREPARE job_send AS SELECT * FROM pgmq.send($1, $2, $3);
EXECUTE job_send('untyped', '{"job":1}', '{"x-queue-ext-max-attempts":3}');
EXECUTE job_send('untyped', '{"job":2}', '{}');
EXECUTE job_send('untyped', '{"job":3}', '{}');
EXECUTE job_send('untyped', '{"job":4}', '{}');
PREPARE job_read AS SELECT msg_id, read_ct FROM pgmq.read($1, $2, $3);
EXECUTE job_read('untyped', '30', '4');
PREPARE job_ack AS SELECT pgmq.ack($1, $2, $3);
PREPARE job_ack_result AS SELECT pgmq.ack($1, $2, $3, $4);
PREPARE job_nack AS SELECT pgmq.nack($1, $2, $3, $4);
PREPARE job_progress AS SELECT pgmq.progress($1, $2, $3, $4, $5);
PREPARE job_cancel AS SELECT pgmq.cancel($1, $2);
EXECUTE job_progress('untyped', '18', '1', '{"p":1}', '60');
EXECUTE job_ack('untyped', '18', '1');
EXECUTE job_ack_result('untyped', '19', '1', '{"ok":true}');
EXECUTE job_nack('untyped', '20', '1', 'failed');
EXECUTE job_cancel('untyped', '20');
PREPARE job_ack_batch AS SELECT * FROM pgmq.ack_batch($1, $2, $3);
PREPARE job_nack_batch AS SELECT * FROM pgmq.nack_batch($1, $2, $3, $4);
EXECUTE job_nack_batch('untyped', '{21}', '{1}', 'again');
EXECUTE job_ack_batch('untyped', '{21}', '{1}');   -- nacked: the receipt is void
PREPARE job_options AS SELECT max_attempts FROM pgmq.set_queue_options($1, $2);
EXECUTE job_options('untyped', '7');
PREPARE job_redrive AS SELECT * FROM pgmq.redrive($1);
EXECUTE job_redrive('untyped');
PREPARE job_find AS SELECT state FROM pgmq.find_job($1, $2);
EXECUTE job_find('untyped', '21');
-- Named arguments, in another order, as PostgREST passes a JSON body.
SELECT pgmq.send(queue_name => 'untyped', msg => '{"job":5}');
SELECT msg_id, read_ct FROM pgmq.read(queue_name => 'untyped', vt => 30, qty => 1);
SELECT pgmq.progress(read_ct => 1, msg_id => 22, queue_name => 'untyped', progress => '{"half":true}', vt => 60);
SELECT pgmq.nack(error => 'boom', read_ct => 1, msg_id => 22, queue_name => 'untyped');
SELECT pgmq.ack(result => '{}', read_ct => 1, msg_id => 22, queue_name => 'untyped');
SELECT pgmq.cancel(msg_id => 22, queue_name => 'untyped');
SELECT max_attempts, paused FROM pgmq.set_queue_options(paused => false, queue_name => 'untyped', max_attempts => 2);
SELECT * FROM pgmq.redrive(queue_name => 'untyped', msg_ids => ARRAY[1]);
SELECT pgmq.pause_queue(queue_name => 'untyped');
SELECT pgmq.resume_queue(queue_name => 'untyped');
SELECT state FROM pgmq.find_job(msg_id => 21, queue_name => 'untyped');

SELECT pgmq.drop_queue('untyped');
