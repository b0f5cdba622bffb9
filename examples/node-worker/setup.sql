-- examples/node-worker/setup.sql owns the example's schema: the application
-- tables (posts, likes, notifications_sent) and the queues (notifications,
-- and notifications_dead for its dead letters), with the job options the
-- worker relies on. Run it once in a database where queue_ext is installed
-- (CREATE EXTENSION queue_ext).

-- What the like counter writes (app.js).
CREATE TABLE posts (
  id    bigint PRIMARY KEY,
  title text NOT NULL,
  likes integer NOT NULL DEFAULT 0 CHECK (likes >= 0)
);
CREATE TABLE likes (
  post_id  bigint NOT NULL REFERENCES posts (id),
  user_id  bigint NOT NULL,
  liked_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (post_id, user_id)      -- one like per user and post
);

-- What the worker writes (worker.js), in the transaction that acks the
-- message. There is deliberately no unique constraint on msg_id: the ack's
-- receipt check alone keeps one row per message, and the test counts them.
CREATE TABLE notifications_sent (
  msg_id   bigint NOT NULL,
  read_ct  integer NOT NULL,           -- the delivery that got through
  worker   text NOT NULL,
  payload  jsonb NOT NULL,
  sent_at  timestamptz NOT NULL DEFAULT now()
);

-- The queue. A failed notification is retried after 1 s and 2 s (nack's
-- backoff); after its third failed attempt it goes to notifications_dead.
SELECT pgmq.create('notifications');
SELECT pgmq.create('notifications_dead');
SELECT max_attempts, backoff_base, dead_letter_queue
  FROM pgmq.set_queue_options('notifications', max_attempts => 3, backoff_base => 1,
                              dead_letter_queue => 'notifications_dead');
