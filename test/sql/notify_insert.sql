-- enable/update/disable_notify_insert and list_notify_insert_throttles.
SELECT pgmq.create('notified');
SELECT pgmq.create('QueueCasedNotify');

SELECT pgmq.enable_notify_insert('notified', 0);
SELECT pgmq.enable_notify_insert('QueueCasedNotify');
SELECT queue_name, throttle_interval_ms FROM pgmq.list_notify_insert_throttles();
SELECT tgname FROM pg_trigger WHERE tgrelid = 'pgmq.q_notified'::regclass;

-- Delivery itself (channel names, throttling) is tested in test/specs/notify_insert.spec.
SELECT count(*) FROM pgmq.send('notified', '{}');
SELECT count(*) FROM pgmq.send('QueueCasedNotify', '{}');

SELECT pgmq.update_notify_insert('notified', 60000);
SELECT queue_name, throttle_interval_ms FROM pgmq.list_notify_insert_throttles();
SELECT count(*) FROM pgmq.send('notified', '{}');
SELECT last_notified_at > now() - interval '1 minute' AS notified_recently
FROM pgmq.notify_insert_throttle WHERE queue_name = 'notified';

SELECT pgmq.disable_notify_insert('notified');
SELECT count(*) FROM pgmq.send('notified', '{}');
SELECT queue_name FROM pgmq.list_notify_insert_throttles();
SELECT pgmq.update_notify_insert('notified', 10);
SELECT pgmq.disable_notify_insert('missing_queue');

-- Dropping a queue removes its throttle row.
SELECT pgmq.drop_queue('QueueCasedNotify');
SELECT count(*) FROM pgmq.notify_insert_throttle;
SELECT pgmq.drop_queue('notified');
