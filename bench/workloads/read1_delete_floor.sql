UPDATE floor_q m SET vt = clock_timestamp() + interval '30 seconds', read_ct = m.read_ct + 1, last_read_at = clock_timestamp() WHERE m.msg_id = ANY(ARRAY(SELECT msg_id FROM floor_q WHERE vt <= clock_timestamp() ORDER BY msg_id LIMIT 1 FOR UPDATE SKIP LOCKED)) RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.last_read_at, m.vt, m.message, m.headers \gset
DELETE FROM floor_q WHERE msg_id = :msg_id;
