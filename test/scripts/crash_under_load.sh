#!/usr/bin/env bash
# Durability under load: two producers and two consumers keep sending,
# reading and deleting with synchronous_commit on while every server process
# is killed with SIGKILL, four times. The clients write down, outside the
# database, what the server acknowledged:
#   sent.*     a send or send_batch whose commit returned,
#   unsure.*   a send whose connection was lost (psql exit 2): its commit may
#              or may not have happened,
#   deleted.*  messages read and deleted in a transaction whose commit returned,
#   maybe.*    the same when the connection was lost before COMMIT returned,
#   errors.*   anything else (an SQL error): the test fails on any.
# After each restart the queue must serve again: new acknowledged sends, and
# new committed deletes from each consumer (consumer 2 sleeps in
# read_with_poll, whose wake-up slots are gone with the old shared memory).
# At the end:
#   - every acknowledged send is in the queue or was deleted (nothing lost),
#   - no message is in the queue twice, none was deleted twice by committed
#     transactions (no double delivery), none is both deleted and still queued
#     (nothing resurrected), and nothing is there that nobody sent,
#   - the counters and gauges, which live in shared memory and start afresh
#     at the last restart, agree with the ledger and the table: the sent and
#     acked counts equal what was acknowledged since then, and queue_stats'
#     gauge (recounted once under load after the restart) equals count(*),
#   - the queue drains to empty.
set -euo pipefail
# shellcheck source=test/cluster.sh
. "$(dirname "$0")/../cluster.sh"
cluster_start "synchronous_commit = on" "fsync = on" "restart_after_crash = off"
ledger="$(mktemp -d /tmp/queue_ext_crash_ledger.XXXXXX)"
clients=()
trap 'touch "$ledger/stop"; for p in "${clients[@]}"; do wait "$p" 2>/dev/null || true; done; cluster_stop; rm -rf "$ledger"' EXIT

psql -qX -v ON_ERROR_STOP=1 -c "CREATE EXTENSION queue_ext" -c "SELECT pgmq.create('crash')" >/dev/null

# Files the given lines to ledger $1 (sent, unsure, deleted, maybe or
# errors) of client $2, from psql's exit status $3: 0 ok, 2 connection lost.
file_outcome() {
  local ok="$1" lost="$2" client="$3" status="$4"; shift 4
  case "$status" in
    0) [ $# -eq 0 ] || printf '%s\n' "$@" >>"$ledger/$ok.$client" ;;
    2) [ $# -eq 0 ] || printf '%s\n' "$@" >>"$ledger/$lost.$client"; sleep 0.2 ;;
    *) printf 'exit %s: %s\n' "$status" "$*" >>"$ledger/errors.$client"; sleep 0.2 ;;
  esac
}

# A backend that sees its postmaster die ends the session with FATAL, and
# psql can still exit 0: the outcome is as unknown as with a lost connection.
lost_if_fatal() {
  case "$out" in *FATAL:*|*"server closed the connection"*) status=2 ;; esac
}

# Producer: a send, or every fifth time a send_batch of three. The payload
# carries a tag unique to the client, so the ledger never needs msg_ids.
produce() {
  local p="$1" i=0 tag out status
  while [ ! -e "$ledger/stop" ]; do
    i=$((i + 1)); tag="p$p-$i"
    if [ $((i % 5)) -eq 0 ]; then
      status=0
      out=$(psql -qXAt -v ON_ERROR_STOP=1 -c "SELECT count(*) FROM pgmq.send_batch('crash',
              ARRAY[jsonb_build_object('tag', '$tag-a'), jsonb_build_object('tag', '$tag-b'),
                    jsonb_build_object('tag', '$tag-c')])" 2>&1) || status=$?
      lost_if_fatal; [ "$status" != 0 ] || [ "$out" = 3 ] || status="bad:$out"
      file_outcome sent unsure "$p" "$status" "$tag-a" "$tag-b" "$tag-c"
    else
      status=0
      out=$(psql -qXAt -v ON_ERROR_STOP=1 -c "SELECT count(*) FROM pgmq.send('crash', jsonb_build_object('tag', '$tag'))" 2>&1) || status=$?
      lost_if_fatal; [ "$status" != 0 ] || [ "$out" = 1 ] || status="bad:$out"
      file_outcome sent unsure "$p" "$status" "$tag"
    fi
  done
}

# Consumer: read up to five and delete exactly those, in one transaction. The
# tags are printed before COMMIT and "committed" after it; a lost connection
# files the batch as "maybe" (its commit may have happened or not).
consume() {
  local c="$1" read_call out tags status
  if [ "$c" = 2 ]; then read_call="pgmq.read_with_poll('crash', 30, 5, 1, 50)"; else read_call="pgmq.read('crash', 30, 5)"; fi
  while [ ! -e "$ledger/stop" ]; do
    status=0
    out=$(psql -qXAt -v ON_ERROR_STOP=1 2>&1 <<SQL
BEGIN;
SELECT coalesce(array_agg(msg_id), '{}') AS ids, count(*) AS n,
       coalesce(string_agg(coalesce(message->>'tag', 'untagged-' || msg_id), ' '), '') AS tags
FROM $read_call \gset
SELECT CASE WHEN count(*) = :n THEN 'deleted' ELSE ('deleted ' || count(*) || ' of ' || :n)::int::text END FROM pgmq.delete('crash', :'ids'::bigint[]);
\echo tags :tags
COMMIT;
\echo committed
SQL
    ) || status=$?
    lost_if_fatal
    tags=$(printf '%s\n' "$out" | sed -n 's/^tags //p')
    if [ "$status" = 0 ] && ! printf '%s\n' "$out" | grep -qx committed; then status="no commit: $out"; fi
    # shellcheck disable=SC2086
    file_outcome deleted maybe "$c" "$status" $tags
    [ -n "$tags" ] || sleep 0.05
  done
}

lines() { { cat "$ledger"/$1 2>/dev/null || true; } | wc -l; }

# Kills every process of the cluster at once: the postmaster is stopped first
# so that it forks nothing while its children are listed. Waits until each is
# gone, at most 30 s: a new postmaster refuses to start while the old one's
# pid exists, even as a zombie (the orphans are reaped by init).
kill_cluster() {
  local postmaster children state
  postmaster=$(head -1 "$QX_CLUSTER_DIR/data/postmaster.pid")
  kill -STOP "$postmaster"
  children=$(pgrep -P "$postmaster" || true)
  # shellcheck disable=SC2086
  kill -KILL "$postmaster" $children
  for pid in $postmaster $children; do
    for _ in $(seq 1 300); do
      state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null || echo gone)
      [ "$state" = gone ] && break
      sleep 0.1
    done
    [ "$state" = gone ] || { echo "process $pid is still there 30 s after SIGKILL (state $state)"; exit 1; }
  done
  echo "killed postmaster $postmaster and $(echo "$children" | wc -w) children"
}

start_server() {
  as_postgres "$QX_PG_BINDIR/pg_ctl" -D "$QX_CLUSTER_DIR/data" -l "$QX_CLUSTER_DIR/server.log" -w -t 60 start \
    >"$ledger/pg_ctl.log" 2>&1 || { cat "$ledger/pg_ctl.log"; tail -5 "$QX_CLUSTER_DIR/server.log"; exit 1; }
}

# Waits up to 30 s for the ledger files $1 to grow past $2 lines.
grows_past() {
  for _ in $(seq 1 300); do
    [ "$(lines "$1")" -gt "$2" ] && return 0
    sleep 0.1
  done
  return 1
}

for p in 1 2; do produce "$p" & clients+=($!); done
for c in 1 2; do consume "$c" & clients+=($!); done

for round in 1 2 3 4; do
  sent_before=$(lines 'sent.*'); c1=$(lines deleted.1); c2=$(lines deleted.2)
  grows_past 'sent.*' "$sent_before" || { echo "round $round: no send acknowledged"; exit 1; }
  grows_past deleted.1 "$c1" || { echo "round $round: consumer 1 deleted nothing"; exit 1; }
  grows_past deleted.2 "$c2" || { echo "round $round: consumer 2 (read_with_poll) deleted nothing"; exit 1; }
  sleep "$((2 + RANDOM % 3))"
  kill_cluster
  # What was acknowledged before this restart; counters start afresh after it.
  sent_at_restart=$(lines 'sent.*'); deleted_at_restart=$(lines 'deleted.*')
  start_server
  echo "round $round: $sent_at_restart sends and $deleted_at_restart deletes acknowledged so far, server restarted"
done
# The gauge is unknown after the restart; recounted once while the load goes on.
psql -qXAt -c "SELECT pgmq._recount_gauges('crash')" >/dev/null
sent_before=$(lines 'sent.*'); c1=$(lines deleted.1); c2=$(lines deleted.2)
grows_past 'sent.*' "$sent_before" || { echo "after the last restart: no send acknowledged"; exit 1; }
grows_past deleted.1 "$c1" || { echo "after the last restart: consumer 1 deleted nothing"; exit 1; }
grows_past deleted.2 "$c2" || { echo "after the last restart: consumer 2 deleted nothing"; exit 1; }
sleep 2
touch "$ledger/stop"
for p in "${clients[@]}"; do wait "$p" || { echo "a client died"; exit 1; }; done
clients=()

if [ "$(lines 'errors.*')" -gt 0 ]; then
  echo "clients met errors other than a lost connection:"; cat "$ledger"/errors.*; exit 1
fi

# The ledgers and the queue, as sorted lists of tags.
sorted() { { cat "$ledger"/$1 2>/dev/null || true; } | sort; }
sorted 'sent.*' >"$ledger/all_sent"
sorted 'unsure.*' >"$ledger/all_unsure"
sorted 'deleted.*' >"$ledger/all_deleted"
sorted 'maybe.*' >"$ledger/all_maybe"
psql -qXAt -c "SELECT coalesce(message->>'tag', 'untagged-' || msg_id) FROM pgmq.q_crash" | sort >"$ledger/queued"

fail=0
check() {  # check <what> <lines that must be empty>
  local n; n=$(printf '%s' "$2" | grep -c . || true)
  echo "$1: $n"
  [ "$n" -eq 0 ] || { printf '%s\n' "$2" | head -5; fail=1; }
}
sort -u "$ledger/all_deleted" "$ledger/all_maybe" "$ledger/queued" >"$ledger/accounted"
sort -u "$ledger/all_sent" "$ledger/all_unsure" >"$ledger/sendable"
check "acknowledged sends missing" "$(comm -23 "$ledger/all_sent" "$ledger/accounted")"
check "messages queued twice" "$(uniq -d "$ledger/queued")"
check "messages deleted twice by committed transactions" "$(uniq -d "$ledger/all_deleted")"
check "deleted messages back in the queue" "$(comm -12 "$ledger/all_deleted" <(sort -u "$ledger/queued"))"
check "messages nobody sent" "$(comm -23 <(sort -u "$ledger/queued" "$ledger/all_deleted") "$ledger/sendable")"
echo "acknowledged $(wc -l <"$ledger/all_sent") sends ($(wc -l <"$ledger/all_unsure") unsure), \
$(wc -l <"$ledger/all_deleted") deletes ($(wc -l <"$ledger/all_maybe") unsure), $(wc -l <"$ledger/queued") left"

# Counters since the last restart: every send and delete acknowledged after
# it, and nothing else (no connection was lost after it).
expected="$(( $(wc -l <"$ledger/all_sent") - sent_at_restart ))/$(( $(wc -l <"$ledger/all_deleted") - deleted_at_restart ))"
counted=$(psql -qXAt -c "SELECT sent || '/' || acked FROM pgmq.queue_counters() WHERE queue_name = 'crash'")
echo "sent/acked since the last restart: ledger $expected, counters $counted"
[ "$counted" = "$expected" ] || fail=1
gauge=$(psql -qXAt -c "SELECT depth_from || ' ' || (depth = (SELECT count(*) FROM pgmq.q_crash))
                        FROM pgmq.queue_stats WHERE queue_name = 'crash'")
echo "queue_stats depth source and agreement with count(*): $gauge"
[ "$gauge" = "gauge true" ] || fail=1
drained=$(psql -qXAt -c "SELECT count(*) FROM pgmq.delete('crash', ARRAY(SELECT msg_id FROM pgmq.read('crash', 30, 1000000)))")
left=$(psql -qXAt -c "SELECT count(*) FROM pgmq.q_crash")
echo "drained $drained, left $left"
[ "$drained" -eq "$(wc -l <"$ledger/queued")" ] && [ "$left" -eq 0 ] || fail=1
[ "$fail" -eq 0 ]
