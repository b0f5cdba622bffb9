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

SELECT pgmq.drop_queue('untyped');
