#!/usr/bin/env bash
# read_with_poll woken by a committed send (src/wakeup.c): with queue_ext
# preloaded (the test cluster) a reader polling every 10 s gets a message
# sent a second later at once; a rolled-back send, or one delayed into the
# future, wakes nobody into a wrong result; statement_timeout and
# pg_cancel_backend still end a sleeping reader. Without preload (a cluster
# of its own) the reader polls, as pgmq does, and still gets the message.
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/script_helpers.sh
db=qx_poll_wakeup
psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
export PGDATABASE=$db

q -c "CREATE EXTENSION queue_ext" -c "SELECT pgmq.create('wake')" >/dev/null

# A reader polling every 10 s; a send commits after 1 s.
start=$(date +%s%N)
(sleep 1; q -c "SELECT pgmq.send('wake', jsonb_build_object('sent', clock_timestamp()))" >/dev/null) &
got="$(q -c "SELECT (clock_timestamp() - (message->>'sent')::timestamptz) < interval '1 second'
             FROM pgmq.read_with_poll('wake', 30, 1, 20, 10000)")"
wait
took=$(ms_since "$start")
[ "$got" = t ] || fail "the reader did not get the message promptly: '$got'"
[ "$took" -lt 5000 ] || fail "the reader slept through the commit (${took} ms)"
q -c "SELECT pgmq.purge_queue('wake')" >/dev/null

# A rolled-back send and a delayed send wake the reader, which finds nothing
# and sleeps on until its 3 s are up. (Besides sends, a delete that frees
# room on a capped queue wakes readers too.)
start=$(date +%s%N)
(sleep 0.5; q -c "BEGIN" -c "SELECT pgmq.send('wake', '{\"rolled\": \"back\"}')" -c "ROLLBACK" >/dev/null
 sleep 0.5; q -c "SELECT pgmq.send('wake', '{\"later\": true}', 3600)" >/dev/null) &
got="$(q -c "SELECT count(*) FROM pgmq.read_with_poll('wake', 30, 1, 3, 10000)")"
wait
took=$(ms_since "$start")
[ "$got" = 0 ] || fail "a rolled-back or delayed send was read: $got"
[ "$took" -ge 2900 ] || fail "the reader returned early (${took} ms)"

# On a queue capped at one message in flight, a reader waits while another
# holds the lease; the holder's delete frees the room and wakes it.
q -c "SELECT pgmq.create('capped')" -c "SELECT pgmq.set_queue_options('capped', max_in_flight => 1)" \
  -c "SELECT pgmq.send_batch('capped', ARRAY['{\"n\": 1}', '{\"n\": 2}']::jsonb[])" >/dev/null
held="$(q -c "SELECT msg_id FROM pgmq.read('capped', 60, 1)")"
start=$(date +%s%N)
(sleep 1; q -c "SELECT pgmq.delete('capped', $held::bigint)" >/dev/null) &
got="$(q -c "SELECT message->>'n' FROM pgmq.read_with_poll('capped', 30, 1, 20, 10000)")"
wait
took=$(ms_since "$start")
[ "$got" = 2 ] || fail "the capped queue's waiting reader got '$got'"
[ "$took" -lt 5000 ] || fail "the delete that freed the cap did not wake the reader (${took} ms)"

# statement_timeout ends a sleeping reader.
start=$(date +%s%N)
out="$(psql -qXAt -c "SET statement_timeout = '300ms'" -c "SELECT * FROM pgmq.read_with_poll('wake', 30, 1, 10, 10000)" 2>&1 || true)"
took=$(ms_since "$start")
echo "$out" | grep -q 'statement timeout' || fail "no statement timeout: $out"
[ "$took" -lt 3000 ] || fail "statement_timeout took ${took} ms"

# So does pg_cancel_backend.
psql -qXAt -c "SET application_name = 'qx_sleeping_reader'" \
     -c "SELECT * FROM pgmq.read_with_poll('wake', 30, 1, 20, 10000)" >/tmp/qx_cancel.log 2>&1 &
reader=$!
for _ in $(seq 1 50); do
  [ "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'qx_sleeping_reader' AND state = 'active'")" = 1 ] && break
  sleep 0.1
done
start=$(date +%s%N)
q -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'qx_sleeping_reader'" >/dev/null
wait "$reader" || true
took=$(ms_since "$start")
grep -q 'canceling statement due to user request' /tmp/qx_cancel.log || fail "cancel: $(cat /tmp/qx_cancel.log)"
[ "$took" -lt 3000 ] || fail "cancel took ${took} ms"
rm -f /tmp/qx_cancel.log
psql -qX -d postgres -c "DROP DATABASE $db"

# Without preload: polling, every 200 ms here.
. test/cluster.sh
cluster_start "shared_preload_libraries = 'pg_cron'"
trap cluster_stop EXIT
q -c "CREATE EXTENSION queue_ext" -c "SELECT pgmq.create('polled')" >/dev/null
(sleep 1; q -c "SELECT pgmq.send('polled', '{\"polled\": true}')" >/dev/null) &
got="$(q -c "SELECT message->>'polled' FROM pgmq.read_with_poll('polled', 30, 1, 10, 200)")"
wait
[ "$got" = true ] || fail "the polling reader without preload: '$got'"
echo "poll wake-ups: ok"
