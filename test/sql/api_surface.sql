-- The SQL surface matches pgmq 1.13: every function, its argument names,
-- defaults and result type; the composite types in column order; the catalog.
SELECT p.proname || '(' || pg_get_function_arguments(p.oid) || ')' ||
       COALESCE(' -> ' || pg_get_function_result(p.oid), ' (procedure)') AS signature
FROM pg_proc p
WHERE p.pronamespace = 'pgmq'::regnamespace
ORDER BY 1;

SELECT t.typname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_type t JOIN pg_attribute a ON a.attrelid = t.typrelid
WHERE t.typnamespace = 'pgmq'::regnamespace AND t.typtype = 'c'
  AND t.typname IN ('message_record', 'queue_record', 'metrics_result')
ORDER BY 1, 2;

SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid) AS default
FROM pg_class c
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
WHERE c.relnamespace = 'pgmq'::regnamespace AND c.relname IN ('meta', 'notify_insert_throttle', 'queue_config', 'queue_options', 'job_counts')
ORDER BY 1, 2;

-- Every object the extension makes carries a comment.
SELECT p.oid::regprocedure AS uncommented
FROM pg_proc p
WHERE p.pronamespace = 'pgmq'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL;

-- Queue tables as pgmq lays them out.
SELECT pgmq.create('api_probe');
SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid) AS default, a.attidentity
FROM pg_class c
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
WHERE c.relnamespace = 'pgmq'::regnamespace AND c.relname IN ('q_api_probe', 'a_api_probe')
ORDER BY 1, 2;
SELECT indexrelid::regclass, pg_get_indexdef(indexrelid)
FROM pg_index WHERE indrelid IN ('pgmq.q_api_probe'::regclass, 'pgmq.a_api_probe'::regclass)
ORDER BY 1::text;
SELECT relname, reloptions FROM pg_class WHERE relname IN ('q_api_probe', 'a_api_probe') ORDER BY 1;

-- Queue tables are not extension members (pg_dump dumps them; DROP EXTENSION leaves them).
SELECT count(*) AS member_queue_tables
FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'queue_ext')
  AND c.relname IN ('q_api_probe', 'a_api_probe');
SELECT pgmq.drop_queue('api_probe');
