#!/usr/bin/env bash
# examples/node-worker with node-postgres ("pg" from npm, installed into a
# temporary copy of the example), on a throwaway cluster of its own:
# (a) likes and their notifications commit together: N likes (some sent
#     twice, concurrently) queue one notification per recorded like, whose
#     counts run 1..n per post; a duplicate like changes nothing;
# (b) a failed send rolls the like back: a message over the queue's
#     max_message_size, and a send to a queue that does not exist;
# (c) two workers drain the queue: every notification recorded exactly once,
#     a message failing once is nacked and done on its second delivery, one
#     failing always is nacked three times and dead-lettered; SIGTERM and
#     SIGINT end idle workers (sleeping in a 10 s poll) promptly with exit 0;
# (d) SIGTERM mid-batch: the worker exits 0 promptly after finishing what it
#     leased (nothing is left leased), and the rest is done by the next one;
# (e) SIGKILL mid-batch: the leases lapse, and another worker still records
#     each message exactly once;
# (f) a lease that lapses while a slow worker holds the message unacked:
#     another worker takes it, the slow worker's ack is stale and its work
#     rolls back.
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/script_helpers.sh

if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  echo "FAIL: node and npm are not installed (Debian packages nodejs and npm)"
  exit 1
fi

. test/cluster.sh
work="$(mktemp -d /tmp/qx_node_worker.XXXXXX)"
worker_pids=()
cleanup() {
  local pid
  for pid in "${worker_pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  cluster_stop
  rm -rf "$work"
}
trap cleanup EXIT
fail_details() {
  local f
  for f in "$work"/*.log; do [ -f "$f" ] && { echo "--- $(basename "$f")"; tail -n 25 "$f"; }; done
}

# shellcheck disable=SC2119 # no extra postgresql.conf lines
cluster_start

example=examples/node-worker
cp "$example"/package.json "$example"/package-lock.json "$example"/*.js "$example"/setup.sql "$work"/
(cd "$work" && nice npm install --no-audit --no-fund --loglevel=error >npm.log 2>&1) ||
  fail "npm install failed"
want_pg="$(node -p "require('./$example/package.json').dependencies.pg")"
got_pg="$(cd "$work" && node -p "require('pg/package.json').version")"
[ "$got_pg" = "$want_pg" ] || fail "npm installed pg $got_pg, package.json pins $want_pg"
echo "npm installed pg $got_pg into a temporary copy of $example"

q -c "CREATE EXTENSION queue_ext" -f "$work/setup.sql" >/dev/null
q -c "INSERT INTO posts (id, title) SELECT g, 'post ' || g FROM generate_series(1, 3) g"

like() { (cd "$work" && timeout 120 node like.js "$@"); }   # a hang fails, after 2 minutes
queued() { q -c "SELECT count(*) FROM pgmq.q_notifications"; }
# wait_for SQL SECONDS: until SQL returns t
wait_for() {
  local _
  for _ in $(seq 1 $(($2 * 10))); do
    [ "$(q -c "$1")" = t ] && return 0
    sleep 0.1
  done
  return 1
}
# start_worker NAME VAR=VALUE...: a worker in the background, its pid in $worker
start_worker() {
  local name="$1"; shift
  (cd "$work" && exec env WORKER_NAME="$name" "$@" node worker.js >"$work/$name.log" 2>&1) &
  worker=$!
  worker_pids+=("$worker")
}
# forget_worker PID: it has exited and been waited for
forget_worker() {
  local keep=() pid
  for pid in "${worker_pids[@]}"; do [ "$pid" = "$1" ] || keep+=("$pid"); done
  worker_pids=("${keep[@]}")
}
# stop_worker PID NAME SIGNAL MAX_MS: signals it, checks it exits 0 within MAX_MS
stop_worker() {
  local pid="$1" name="$2" sig="$3" max="$4" start rc=0 took
  start=$(date +%s%N)
  kill -"$sig" "$pid" 2>/dev/null || fail "worker $name had exited before SIG$sig"
  # A hang must fail the test, not stall it: at most 20 s.
  for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fail "worker $name still running 20 s after SIG$sig"; fi
  wait "$pid" || rc=$?
  forget_worker "$pid"
  took=$(ms_since "$start")
  [ "$rc" -eq 0 ] || fail "worker $name exited $rc after SIG$sig"
  [ "$took" -le "$max" ] || fail "worker $name took $took ms to stop after SIG$sig (at most $max)"
  grep -q "SIG$sig: taking no new messages" "$work/$name.log" || fail "worker $name did not log SIG$sig"
  grep -q '^\[.*\] stopped: ' "$work/$name.log" || fail "worker $name did not stop cleanly"
  echo "  worker $name: SIG$sig, exit 0 in $took ms"
}

# (a) ------------------------------------------------------------------
# 12 distinct likes (post 1: users 1-6, post 2: 1-4, post 3: 1-2) and 4
# repeats, each next to its original so that both run at once.
likes=(1:1 1:1 1:2 1:3 1:4 1:5 1:6 2:1 2:2 2:3 2:3 2:4 3:1 3:2 3:2 1:1)
like --concurrency 4 "${likes[@]}" >"$work/likes.out" || fail "like.js failed: $(cat "$work/likes.out")"
recorded=$(grep -c '"liked":true' "$work/likes.out" || true)
dups=$(grep -c '"reason":"duplicate"' "$work/likes.out" || true)
[ "$recorded/$dups" = 12/4 ] ||
  fail "like.js recorded $recorded and refused $dups as duplicates (want 12 and 4): $(cat "$work/likes.out")"
counts="$(q -c "SELECT string_agg(id || ':' || likes, ' ' ORDER BY id) FROM posts")"
[ "$counts" = "1:6 2:4 3:2" ] || fail "post counts $counts, want 1:6 2:4 3:2"
[ "$(q -c "SELECT count(*) FROM posts p WHERE likes <> (SELECT count(*) FROM likes l WHERE l.post_id = p.id)")" = 0 ] ||
  fail "a post's count differs from its likes rows"
[ "$(queued)" = 12 ] || fail "$(queued) notifications queued for 12 likes"
# One notification per likes row, and per post the counts they carry are
# 1..n, each once (each like saw the count its own update made).
[ "$(q -c "SELECT count(DISTINCT (l.post_id, l.user_id))
             FROM likes l JOIN pgmq.q_notifications m
               ON (m.message->>'post_id')::bigint = l.post_id AND (m.message->>'user_id')::bigint = l.user_id")" = 12 ] ||
  fail "the notifications do not match the likes rows one to one"
[ "$(q -c "SELECT count(DISTINCT (m.message->>'post_id', m.message->>'likes'))
             FROM pgmq.q_notifications m JOIN posts p ON p.id = (m.message->>'post_id')::bigint
            WHERE (m.message->>'likes')::int BETWEEN 1 AND p.likes")" = 12 ] ||
  fail "the counts in the notifications are not 1..n per post: $(q -c "SELECT string_agg(message::text, ' ') FROM pgmq.q_notifications")"
# The ids like.js got back are the queued messages.
ids_out="$(grep -o '"msgId":"[0-9]*"' "$work/likes.out" | grep -o '[0-9]*' | sort -n | tr '\n' ' ')"
ids_q="$(q -c "SELECT msg_id FROM pgmq.q_notifications ORDER BY msg_id" | tr '\n' ' ')"
[ "$ids_out" = "$ids_q" ] || fail "like.js returned msg ids $ids_out, the queue holds $ids_q"
out="$(like 2:1)" || fail "a duplicate like failed: $out"
echo "$out" | grep -q '"reason":"duplicate"' || fail "a repeated like was not refused: $out"
[ "$(q -c "SELECT likes FROM posts WHERE id = 2")/$(queued)" = 4/12 ] ||
  fail "a duplicate like changed the count or queued a notification"
echo "(a) 16 likes (4 repeated, at once): 12 recorded, 12 notifications with counts 1..n per post; a later duplicate changed nothing"

# (b) ------------------------------------------------------------------
# nothing_left LABEL: the failed like of post 3 by user 7 left no trace
nothing_left() {
  [ "$(q -c "SELECT count(*) FROM likes WHERE post_id = 3 AND user_id = 7")" = 0 ] || fail "$1: the like row stayed"
  [ "$(q -c "SELECT likes FROM posts WHERE id = 3")" = 2 ] || fail "$1: the post's count moved"
  [ "$(queued)" = 12 ] || fail "$1: the queue holds $(queued) messages, not 12"
}
q -c "SELECT pgmq.set_queue_options('notifications', max_message_size => 16)" >/dev/null
out="$(like 3:7)" && fail "a like whose notification is too large succeeded: $out"
echo "$out" | grep -q '"code":"54000"' || fail "an oversized notification failed otherwise: $out"
nothing_left "an oversized notification"
q -c "SELECT pgmq.reset_queue_options('notifications', ARRAY['max_message_size'])" >/dev/null
out="$(like --queue notifications_gone 3:7)" && fail "a like sending to a missing queue succeeded: $out"
echo "$out" | grep -q '"code":"42P01"' || fail "a send to a missing queue failed otherwise: $out"
nothing_left "a send to a missing queue"
out="$(like 3:7)" || fail "the like failed once the queue took it: $out"
echo "$out" | grep -q '"liked":true,"likes":3,' || fail "the like after the failed ones: $out"
[ "$(queued)" = 13 ] || fail "$(queued) notifications after 13 likes"
echo "(b) a send over max_message_size (54000) and one to a missing queue (42P01) rolled their like back; the same like then counted once"

# (c) ------------------------------------------------------------------
once="$(q -c "SELECT * FROM pgmq.send('notifications', '{\"type\": \"test\", \"fail_attempts\": 1}')")"
always="$(q -c "SELECT * FROM pgmq.send('notifications', '{\"type\": \"test\", \"fail_attempts\": 99}')")"
expected="$(q -c "SELECT msg_id FROM pgmq.q_notifications WHERE msg_id <> $always ORDER BY msg_id" | tr '\n' ' ')"
settings=(VT=10 QTY=3 MAX_POLL_SECONDS=10 POLL_INTERVAL_MS=200)
start_worker w1 "${settings[@]}"; w1=$worker
start_worker w2 "${settings[@]}"; w2=$worker
wait_for "SELECT NOT EXISTS (SELECT FROM pgmq.q_notifications)
             AND (SELECT count(*) FROM pgmq.q_notifications_dead) = 1" 40 ||
  fail "two workers did not drain the queue in 40 s: $(queued) left"
sleep 0.5   # both back in a poll that would sleep 10 s
stop_worker "$w1" w1 TERM 3000
stop_worker "$w2" w2 INT 3000
sent="$(q -c "SELECT msg_id FROM notifications_sent ORDER BY msg_id" | tr '\n' ' ')"
[ "$sent" = "$expected" ] || fail "notifications_sent holds $sent, want each of $expected once"
[ "$(q -c "SELECT read_ct FROM notifications_sent WHERE msg_id = $once")" = 2 ] ||
  fail "the message failing once was recorded at delivery $(q -c "SELECT read_ct FROM notifications_sent WHERE msg_id = $once")"
dead="$(q -c "SELECT h->>'queue', h->>'msg_id', h->>'reason', h->>'attempts', jsonb_array_length(headers->'x-queue-ext-errors')
                FROM pgmq.q_notifications_dead, LATERAL (SELECT headers->'x-queue-ext-dead-letter' AS h) d
               WHERE message->>'fail_attempts' = '99'")"
[ "$dead" = "notifications|$always|nacked|3|3" ] || fail "the message failing always: dead letter '$dead'"
[ "$(q -c "SELECT state FROM pgmq.find_job('notifications', $always)")" = dead ] || fail "find_job does not say dead"
nacks=$(cat "$work/w1.log" "$work/w2.log" | grep -c '\] nacked ' || true)
[ "$nacks" = 4 ] || fail "the workers logged $nacks nacks, want 4 (1 + 3)"
split="$(q -c "SELECT string_agg(worker || ' ' || n, ', ' ORDER BY worker) FROM (SELECT worker, count(*) n FROM notifications_sent GROUP BY worker) s")"
echo "(c) two workers recorded each of $(echo "$expected" | wc -w) notifications once ($split); failing once: done at delivery 2; failing always: nacked 3 times, dead-lettered (reason nacked)"

# (d) ------------------------------------------------------------------
q -c "SELECT count(*) FROM pgmq.send_batch('notifications',
        ARRAY(SELECT jsonb_build_object('type', 'slow', 'n', g, 'work_ms', 150) FROM generate_series(1, 30) g))" >/dev/null
slow_done="SELECT count(*) FROM notifications_sent WHERE payload->>'type' = 'slow'"
start_worker w3 VT=30 QTY=5 MAX_POLL_SECONDS=10 POLL_INTERVAL_MS=200; w3=$worker
wait_for "SELECT ($slow_done) >= 3" 30 || fail "worker w3 did not get going"
stop_worker "$w3" w3 TERM 5000
done_n="$(q -c "$slow_done")"
left="$(queued)"
leased="$(q -c "SELECT count(*) FROM pgmq.q_notifications WHERE read_ct > 0 OR vt > clock_timestamp()")"
[ "$leased" = 0 ] || fail "worker w3 left $leased messages leased: $(q -c "SELECT string_agg(msg_id || ' read_ct ' || read_ct || ' vt ' || vt, '; ') FROM pgmq.q_notifications WHERE read_ct > 0")"
[ "$((done_n + left))" = 30 ] || fail "after SIGTERM: $done_n done + $left queued is not 30"
[ "$left" -gt 0 ] || fail "worker w3 finished all 30 before SIGTERM: nothing was tested mid-run"
acked="$(sed -n 's/.*stopped: \([0-9]*\) acked.*/\1/p' "$work/w3.log")"
[ "$acked" = "$done_n" ] || fail "worker w3 says it acked $acked, $done_n are recorded"
echo "(d) SIGTERM mid-batch: w3 had done $done_n of 30, left none leased, $left untouched and visible"
start_worker w4 VT=30 QTY=5 MAX_POLL_SECONDS=10 POLL_INTERVAL_MS=200; w4=$worker
wait_for "SELECT NOT EXISTS (SELECT FROM pgmq.q_notifications)" 30 || fail "worker w4 did not finish the slow messages"
stop_worker "$w4" w4 TERM 3000
[ "$(q -c "SELECT count(*) || ' ' || count(DISTINCT msg_id) || ' ' || count(DISTINCT payload->>'n') FROM notifications_sent WHERE payload->>'type' = 'slow'")" = "30 30 30" ] ||
  fail "the slow messages were not recorded once each"
echo "    then w4 did the rest: each of the 30 recorded once"

# (e) ------------------------------------------------------------------
q -c "SELECT count(*) FROM pgmq.send_batch('notifications',
        ARRAY(SELECT jsonb_build_object('type', 'crash', 'n', g, 'work_ms', 200) FROM generate_series(1, 20) g))" >/dev/null
crash_done="SELECT count(*) FROM notifications_sent WHERE payload->>'type' = 'crash'"
start_worker w5 VT=2 QTY=5 MAX_POLL_SECONDS=10 POLL_INTERVAL_MS=200; w5=$worker
wait_for "SELECT ($crash_done) >= 2" 30 || fail "worker w5 did not get going"
kill -KILL "$w5"; wait "$w5" 2>/dev/null || true; forget_worker "$w5"
# Leased by w5 and not done (read_ct counts deliveries; a lease that lapsed
# meanwhile is still one w5 had).
held="$(q -c "SELECT count(*) FROM pgmq.q_notifications WHERE read_ct > 0")"
start_worker w6 VT=30 QTY=5 MAX_POLL_SECONDS=10 POLL_INTERVAL_MS=200; w6=$worker
wait_for "SELECT NOT EXISTS (SELECT FROM pgmq.q_notifications)" 40 || fail "worker w6 did not finish after the crash"
stop_worker "$w6" w6 TERM 3000
[ "$(q -c "SELECT count(*) || ' ' || count(DISTINCT msg_id) || ' ' || count(DISTINCT payload->>'n') FROM notifications_sent WHERE payload->>'type' = 'crash'")" = "20 20 20" ] ||
  fail "after a crash the messages were not recorded once each"
redelivered="$(q -c "SELECT count(*) FROM notifications_sent WHERE payload->>'type' = 'crash' AND read_ct > 1")"
[ "$redelivered" = "$held" ] ||
  fail "$held messages were leased by the killed worker, $redelivered were recorded at a later delivery"
echo "(e) SIGKILL mid-batch: $held leases lapsed after 2 s, w6 recorded each of the 20 once ($redelivered at delivery 2)"

# (f) ------------------------------------------------------------------
# A slow worker's lapsed lease: w7 leases two messages for 1 s and works
# 6 s on each; while it works on the first, the second's lease lapses and
# w8 (started as soon as w7 holds both: it has 5 s to lease it) takes it. w7's ack of its old delivery is then stale: it rolls back, and
# only w8's delivery is recorded.
q -c "SELECT count(*) FROM pgmq.send_batch('notifications',
        ARRAY(SELECT jsonb_build_object('type', 'lapse', 'n', g, 'work_ms', 6000) FROM generate_series(1, 2) g))" >/dev/null
first="$(q -c "SELECT min(msg_id) FROM pgmq.q_notifications")"
second="$(q -c "SELECT max(msg_id) FROM pgmq.q_notifications")"
start_worker w7 VT=1 QTY=2 MAX_POLL_SECONDS=10 POLL_INTERVAL_MS=200; w7=$worker
wait_for "SELECT count(*) = 2 FROM pgmq.q_notifications WHERE read_ct = 1" 20 || fail "worker w7 did not lease both"
start_worker w8 VT=30 QTY=1 MAX_POLL_SECONDS=10 POLL_INTERVAL_MS=200; w8=$worker
wait_for "SELECT count(*) = 2 FROM notifications_sent WHERE payload->>'type' = 'lapse'" 40 ||
  fail "the two slow messages were not recorded"
wait_for "SELECT NOT EXISTS (SELECT FROM pgmq.q_notifications)" 10 || fail "a slow message stayed queued"
sleep 3  # w7 is done with its stale delivery too
stop_worker "$w7" w7 TERM 3000
stop_worker "$w8" w8 TERM 3000
lapse="$(q -c "SELECT string_agg(msg_id || ' ' || worker || ' ' || read_ct, ', ' ORDER BY msg_id) FROM notifications_sent WHERE payload->>'type' = 'lapse'")"
[ "$lapse" = "$first w7 1, $second w8 2" ] ||
  fail "after a lapsed lease: recorded $lapse, want $first by w7 at delivery 1, $second by w8 at delivery 2"
grep -q "\] stale $second (attempt 1)" "$work/w7.log" || fail "worker w7 did not find its delivery of $second stale"
echo "(f) a lease that lapsed while w7 worked: w8 took it and recorded it, w7's ack was stale and its work rolled back"

# Nothing else was recorded, and nothing recorded twice.
[ "$(q -c "SELECT count(*) - count(DISTINCT msg_id) FROM notifications_sent")" = 0 ] || fail "a message was recorded twice"
echo "node-postgres example worker: ok"
