-- pgmq 1.13's read_grouped, the way its release script goes about it (our
-- statement, written from its documented algorithm): every group's oldest
-- visible message by a scan and GROUP BY of the whole queue, the groups
-- ordered by that message, their visible messages ranked, the first 10
-- locked and leased. Rolled back, so every run sees the same queue.
BEGIN;
WITH heads AS (
    SELECT COALESCE(headers ->> 'x-pgmq-group', '_default_fifo_group') AS grp, min(msg_id) AS head
    FROM pgmq.q_bench_fifo WHERE vt <= clock_timestamp()
    GROUP BY 1
), open_groups AS (
    SELECT h.grp, h.head, row_number() OVER (ORDER BY h.head) AS group_rank
    FROM heads h
    WHERE NOT EXISTS (SELECT 1 FROM pgmq.q_bench_fifo e
                      WHERE COALESCE(e.headers ->> 'x-pgmq-group', '_default_fifo_group') = h.grp
                        AND e.msg_id < h.head AND e.vt > clock_timestamp())
), ranked AS (
    SELECT m.msg_id, g.group_rank,
           row_number() OVER (PARTITION BY g.grp ORDER BY m.msg_id) AS in_group
    FROM open_groups g
    CROSS JOIN LATERAL (
        SELECT q.msg_id FROM pgmq.q_bench_fifo q
        WHERE COALESCE(q.headers ->> 'x-pgmq-group', '_default_fifo_group') = g.grp
          AND q.vt <= clock_timestamp()
        ORDER BY q.msg_id LIMIT 10) m
), picked AS (
    SELECT q.msg_id FROM pgmq.q_bench_fifo q
    WHERE q.msg_id IN (SELECT r.msg_id FROM ranked r ORDER BY r.group_rank, r.in_group LIMIT 10)
    FOR UPDATE SKIP LOCKED
)
UPDATE pgmq.q_bench_fifo m SET vt = clock_timestamp() + interval '30 seconds', read_ct = m.read_ct + 1,
       last_read_at = clock_timestamp()
FROM picked p WHERE m.msg_id = p.msg_id;
ROLLBACK;
