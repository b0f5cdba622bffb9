\set id :n * 4 + :client_id + 1
\set n :n + 1
WITH gone AS (DELETE FROM floor_q WHERE msg_id = :id RETURNING msg_id, vt, read_ct, enqueued_at, last_read_at, message, headers) INSERT INTO floor_a (msg_id, vt, read_ct, enqueued_at, last_read_at, message, headers) SELECT msg_id, vt, read_ct, enqueued_at, last_read_at, message, headers FROM gone;
