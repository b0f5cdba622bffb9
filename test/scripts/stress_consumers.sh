#!/usr/bin/env bash
# Four concurrent consumers drain 100 000 messages: each message is seen
# exactly once, none is left. Each consumer records what it read and deletes
# it in one transaction, so a duplicate delivery would show up as a duplicate
# row in the ledger. Run twice: on a plain queue, and on a queue with
# priorities (priorities 0 to 9 in turn), whose reads pick and lock their
# rows in C.
set -euo pipefail
db=qx_stress

setup() {
  psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
  psql -qX -v ON_ERROR_STOP=1 -d "$db" -v priorities="$1" <<'SQL'
CREATE EXTENSION queue_ext;
SELECT pgmq.create('stress');
SELECT FROM pgmq.set_queue_options('stress', priority_aging => '1 second') WHERE :priorities;
SELECT count(*) FROM pgmq.send_batch('stress',
  ARRAY(SELECT jsonb_build_object('n', i) FROM generate_series(1, 100000) i),
  ARRAY(SELECT CASE WHEN :priorities THEN jsonb_build_object('x-queue-ext-priority', i % 10) END
        FROM generate_series(1, 100000) i));
CREATE UNLOGGED TABLE ledger (n int NOT NULL, msg_id bigint NOT NULL, consumer int NOT NULL);
SQL
}

consume() {
  psql -qX -v ON_ERROR_STOP=1 -d "$db" -v consumer="$1" <<'SQL'
DO $$
DECLARE
  batch pgmq.message_record[];
  empty_tries int := 0;
BEGIN
  LOOP
    SELECT array_agg(r) INTO batch FROM pgmq.read('stress', 60, 1 + (random() * 19)::int) r;
    IF batch IS NULL THEN
      -- Others may hold the rest; stop once the queue is really empty.
      EXIT WHEN NOT EXISTS (SELECT 1 FROM pgmq.q_stress) OR empty_tries > 200;
      empty_tries := empty_tries + 1;
      PERFORM pg_sleep(0.01);
      CONTINUE;
    END IF;
    INSERT INTO ledger SELECT (b.message->>'n')::int, b.msg_id, current_setting('my.consumer')::int
    FROM unnest(batch) b;
    PERFORM pgmq.delete('stress', ARRAY(SELECT b.msg_id FROM unnest(batch) b));
    COMMIT;
  END LOOP;
END $$;
SQL
}

failed=0
for priorities in false true; do
  setup "$priorities"
  pids=()
  for c in 1 2 3 4; do
    PGOPTIONS="-c my.consumer=$c" consume "$c" & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done

  result=$(psql -qXAt -d "$db" -c "
    SELECT count(*), count(DISTINCT n), min(n), max(n), count(DISTINCT consumer),
           (SELECT count(*) FROM pgmq.q_stress)
    FROM ledger")
  echo "priorities $priorities: ledger rows|distinct|min|max|consumers|left: $result"
  psql -qX -d postgres -c "DROP DATABASE $db"
  [ "$result" = "100000|100000|1|100000|4|0" ] || failed=1
done
[ "$failed" = 0 ]
