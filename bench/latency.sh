#!/usr/bin/env bash
# Send -> receive latency with a waiting reader: queue_ext's read_with_poll
# (woken by the send's commit when preloaded) beside pgmq 1.13's way of
# polling (read; if nothing, pg_sleep(poll_interval); again), both with a
# 100 ms poll interval, in one run on one cluster. One sender sends to both
# queues in turn, one message each every 10 to 50 ms (random), committing
# every send; one reader per queue records clock_timestamp() minus the send
# time carried in the message (one server clock), deletes the message and
# commits. Appends "impl p50 p90 p99 max count" to $1/latency.tsv.
#
# Called by bench/run.sh against its cluster (PG* set); run alone with a
# cluster's PG* variables set: bash bench/latency.sh OUTDIR [SECONDS]
set -euo pipefail
out="$1" secs="${2:-60}"
mkdir -p "$out"
psql -qX -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
SET client_min_messages = warning;
SELECT pgmq.drop_queue(q) FROM unnest(ARRAY['wake_ext', 'wake_pgmq']) q WHERE EXISTS (SELECT FROM pgmq.meta WHERE queue_name = q);
SELECT pgmq.create(q) FROM unnest(ARRAY['wake_ext', 'wake_pgmq']) q;
DROP TABLE IF EXISTS bench_latency;
CREATE TABLE bench_latency (impl text, ms double precision);

-- pgmq 1.13's read_with_poll, as its release script does it.
CREATE OR REPLACE FUNCTION bench_pgmq_poll(queue_name text, vt integer, qty integer,
                                           max_poll_seconds integer, poll_interval_ms integer)
RETURNS SETOF pgmq.message_record LANGUAGE plpgsql AS $$
DECLARE
    stop_at timestamptz := clock_timestamp() + make_interval(secs => max_poll_seconds);
BEGIN
    LOOP
        IF clock_timestamp() >= stop_at THEN
            RETURN;
        END IF;
        RETURN QUERY SELECT * FROM pgmq.read(queue_name, vt, qty);
        IF FOUND THEN
            RETURN;
        END IF;
        PERFORM pg_sleep(poll_interval_ms::numeric / 1000);
    END LOOP;
END $$;

CREATE OR REPLACE PROCEDURE bench_reader(impl text, seconds integer) LANGUAGE plpgsql AS $$
DECLARE
    stop_at timestamptz := clock_timestamp() + make_interval(secs => seconds);
    q text := 'wake_' || impl;
    m pgmq.message_record;
BEGIN
    WHILE clock_timestamp() < stop_at LOOP
        IF impl = 'ext' THEN
            SELECT * INTO m FROM pgmq.read_with_poll(q, 30, 1, 1, 100);
        ELSE
            SELECT * INTO m FROM bench_pgmq_poll(q, 30, 1, 1, 100);
        END IF;
        IF m.msg_id IS NOT NULL THEN
            INSERT INTO bench_latency
            VALUES (impl, extract(epoch FROM clock_timestamp() - (m.message->>'sent')::timestamptz) * 1000);
            PERFORM pgmq.delete(q, m.msg_id);
        END IF;
        COMMIT;
    END LOOP;
END $$;

CREATE OR REPLACE PROCEDURE bench_sender(seconds integer) LANGUAGE plpgsql AS $$
DECLARE
    stop_at timestamptz := clock_timestamp() + make_interval(secs => seconds);
BEGIN
    WHILE clock_timestamp() < stop_at LOOP
        PERFORM pgmq.send('wake_ext', jsonb_build_object('sent', clock_timestamp()));
        COMMIT;
        PERFORM pgmq.send('wake_pgmq', jsonb_build_object('sent', clock_timestamp()));
        COMMIT;
        PERFORM pg_sleep(0.01 + random() * 0.04);
    END LOOP;
END $$;
SQL
# The readers start first and stop a second after the sender, so every send
# has a reader waiting.
psql -qX -c "CALL bench_reader('ext', $((secs + 2)))" &
psql -qX -c "CALL bench_reader('pgmq', $((secs + 2)))" &
sleep 1
psql -qX -c "CALL bench_sender($secs)"
wait
psql -qXAt -F $'\t' -c "
SELECT impl,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2),
       round(percentile_cont(0.9) WITHIN GROUP (ORDER BY ms)::numeric, 2),
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 2),
       round(max(ms)::numeric, 2), count(*)
FROM bench_latency GROUP BY impl ORDER BY impl" | tee -a "$out/latency.tsv"
psql -qX -c "SET client_min_messages = warning" -c "SELECT pgmq.drop_queue('wake_ext'), pgmq.drop_queue('wake_pgmq')" \
     -c "DROP TABLE bench_latency" -c "DROP PROCEDURE bench_reader, bench_sender" -c "DROP FUNCTION bench_pgmq_poll" >/dev/null
