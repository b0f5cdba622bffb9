#!/usr/bin/env bash
# Four concurrent consumers drain 300 groups of 20 messages with the three
# grouped reads, mixed. Each records what it got in a ledger and deletes it
# in one transaction. If two consumers ever held one group at once, or a
# group's messages went out of order, some group's ledger rows (in the order
# they were written) would not run 1, 2, ... 20. Every message is seen once.
set -euo pipefail
db=qx_fifo_stress
psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql -qX -v ON_ERROR_STOP=1 -d "$db" <<'SQL'
CREATE EXTENSION queue_ext;
SELECT pgmq.create('stress');
SELECT pgmq.create_fifo_index('stress');
-- Groups interleaved at random; within a group n rises with msg_id.
SELECT count(*) FROM pgmq.send_batch('stress',
  ARRAY(SELECT jsonb_build_object('g', g, 'n', row_number() OVER (PARTITION BY g ORDER BY r))
        FROM (SELECT g, random() AS r FROM generate_series(1, 300) g, generate_series(1, 20)) s
        ORDER BY r),
  ARRAY(SELECT NULL::jsonb FROM generate_series(1, 6000)));
UPDATE pgmq.q_stress SET headers = jsonb_build_object('x-pgmq-group', 'g' || (message ->> 'g'));
CREATE UNLOGGED TABLE ledger (id bigserial, g int NOT NULL, n int NOT NULL, consumer int NOT NULL);
SQL

consume() {
  psql -qX -v ON_ERROR_STOP=1 -d "$db" <<'SQL'
DO $$
DECLARE
  batch pgmq.message_record[];
  empty_tries int := 0;
  qty int;
BEGIN
  LOOP
    qty := 1 + (random() * 4)::int;
    CASE (random() * 2)::int
      WHEN 0 THEN SELECT array_agg(r) INTO batch FROM pgmq.read_grouped('stress', 60, qty) r;
      WHEN 1 THEN SELECT array_agg(r) INTO batch FROM pgmq.read_grouped_rr('stress', 60, qty) r;
      ELSE SELECT array_agg(r) INTO batch FROM pgmq.read_grouped_head('stress', 60, qty) r;
    END CASE;
    IF batch IS NULL THEN
      EXIT WHEN NOT EXISTS (SELECT 1 FROM pgmq.q_stress) OR empty_tries > 500;
      empty_tries := empty_tries + 1;
      PERFORM pg_sleep(0.005);
      CONTINUE;
    END IF;
    -- Hold the batch a moment, so other consumers run into held groups.
    PERFORM pg_sleep(random() * 0.002);
    INSERT INTO ledger (g, n, consumer)
    SELECT (b.message ->> 'g')::int, (b.message ->> 'n')::int, current_setting('my.consumer')::int
    FROM unnest(batch) WITH ORDINALITY AS b(msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers, o)
    ORDER BY b.o;
    PERFORM pgmq.delete('stress', ARRAY(SELECT b.msg_id FROM unnest(batch) b));
    COMMIT;
  END LOOP;
END $$;
SQL
}

pids=()
for c in 1 2 3 4; do
  PGOPTIONS="-c my.consumer=$c" consume & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done

result=$(psql -qXAt -d "$db" -c "
  WITH ordered AS (
    SELECT g, n, row_number() OVER (PARTITION BY g ORDER BY id) AS pos FROM ledger)
  SELECT (SELECT count(*) FROM ledger),
         (SELECT count(*) FROM ordered WHERE n <> pos),
         (SELECT count(DISTINCT consumer) FROM ledger),
         (SELECT count(*) FROM pgmq.q_stress)")
echo "ledger rows|out of order|consumers|left: $result"
psql -qX -d postgres -c "DROP DATABASE $db"
[ "$result" = "6000|0|4|0" ]
