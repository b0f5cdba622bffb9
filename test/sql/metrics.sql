-- metrics and metrics_all on empty, delayed, in-flight and purged queues.
SELECT pgmq.create('m_empty');
SELECT pgmq.create('m_busy');
SELECT queue_name, queue_length, newest_msg_age_sec, oldest_msg_age_sec, total_messages,
       scrape_time = now() AS scraped_now, queue_visible_length, default_partition_length
FROM pgmq.metrics('m_empty');

SELECT count(*) FROM pgmq.send_batch('m_busy', ARRAY['1', '2', '3', '4']::jsonb[]);
SELECT * FROM pgmq.send('m_busy', '5', 3600);          -- delayed
SELECT count(*) FROM pgmq.read('m_busy', 3600, 2);      -- in flight
SELECT queue_name, queue_length, queue_visible_length, total_messages,
       newest_msg_age_sec >= 0 AND oldest_msg_age_sec >= newest_msg_age_sec AS ages_ok
FROM pgmq.metrics('m_busy');

-- total_messages counts rolled-back sends (it is the sequence position).
BEGIN;
SELECT * FROM pgmq.send('m_busy', '6');
ROLLBACK;
SELECT queue_length, total_messages FROM pgmq.metrics('m_busy');

SELECT queue_name, queue_length, total_messages FROM pgmq.metrics_all() ORDER BY 1;
SELECT pgmq.drop_queue('m_empty');
SELECT pgmq.drop_queue('m_busy');
SELECT count(*) FROM pgmq.metrics_all();
