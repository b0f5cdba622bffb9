#!/usr/bin/env bash
# Durability under load: two producers and two consumers keep sending,
# reading and deleting with synchronous_commit on while every server process
# is killed with SIGKILL, four times. The clients write down, outside the
# database, what the server acknowledged:
#   sent.*     a send or send_batch whose commit returned,
#   unsure.*   a send whose outcome the crash hid (no answer to the commit),
#   deleted.*  messages read and deleted in a transaction whose commit returned,
#   maybe.*    the same when the crash hid the commit's answer.
# After each restart the queue must serve again (new acknowledged sends), and
# at the end:
#   - every acknowledged send is in the queue or was deleted (nothing lost),
#   - no message is in the queue twice, none was deleted twice by committed
#     transactions (no double delivery), none is both deleted and still queued
#     (nothing resurrected), and nothing is there that nobody sent,
#   - pgmq.metrics and pgmq.queue_stats agree with the table, and the queue
#     drains to empty.
set -euo pipefail
# shellcheck source=test/cluster.sh
. "$(dirname "$0")/../cluster.sh"
cluster_start "synchronous_commit = on" "fsync = on" "restart_after_crash = off"
ledger="$(mktemp -d /tmp/queue_ext_crash_ledger.XXXXXX)"
trap 'touch "$ledger/stop"; wait; cluster_stop; rm -rf "$ledger"' EXIT

psql -qX -v ON_ERROR_STOP=1 -c "CREATE EXTENSION queue_ext" -c "SELECT pgmq.create('crash')" >/dev/null

# Producer: a send, or every fifth time a send_batch of three. The payload
# carries a tag unique to the client, so the ledger never needs msg_ids.
produce() {
  local p="$1" i=0 tag out
  while [ ! -e "$ledger/stop" ]; do
    i=$((i + 1)); tag="p$p-$i"
    if [ $((i % 5)) -eq 0 ]; then
      out=$(psql -qXAt -v ON_ERROR_STOP=1 -c "SELECT count(*) FROM pgmq.send_batch('crash',
              ARRAY[jsonb_build_object('tag', '$tag-a'), jsonb_build_object('tag', '$tag-b'),
                    jsonb_build_object('tag', '$tag-c')])" 2>/dev/null) || out=""
      if [ "$out" = 3 ]; then
        printf '%s\n' "$tag-a" "$tag-b" "$tag-c" >>"$ledger/sent.$p"
      else
        printf '%s\n' "$tag-a" "$tag-b" "$tag-c" >>"$ledger/unsure.$p"; sleep 0.2
      fi
    else
      out=$(psql -qXAt -v ON_ERROR_STOP=1 -c "SELECT count(*) FROM pgmq.send('crash', jsonb_build_object('tag', '$tag'))" 2>/dev/null) || out=""
      if [ "$out" = 1 ]; then
        echo "$tag" >>"$ledger/sent.$p"
      else
        echo "$tag" >>"$ledger/unsure.$p"; sleep 0.2
      fi
    fi
  done
}

# Consumer: read up to five and delete exactly those, in one transaction. The
# tags are printed before COMMIT and "committed" after it, so a crash between
# the two leaves the batch in the "maybe" ledger. Consumer 2 reads with
# read_with_poll, whose sleep must survive the server going away.
consume() {
  local c="$1" read_call out tags
  if [ "$c" = 2 ]; then read_call="pgmq.read_with_poll('crash', 30, 5, 1, 50)"; else read_call="pgmq.read('crash', 30, 5)"; fi
  while [ ! -e "$ledger/stop" ]; do
    out=$(psql -qXAt -v ON_ERROR_STOP=1 2>/dev/null <<SQL
BEGIN;
SELECT coalesce(array_agg(msg_id), '{}') AS ids, count(*) AS n,
       coalesce(string_agg(message->>'tag', ' '), '') AS tags
FROM $read_call \gset
SELECT CASE WHEN count(*) = :n THEN 'deleted' ELSE ('deleted ' || count(*) || ' of ' || :n)::int::text END FROM pgmq.delete('crash', :'ids'::bigint[]);
\echo tags :tags
COMMIT;
\echo committed
SQL
    ) && true
    tags=$(printf '%s\n' "$out" | sed -n 's/^tags //p')
    if printf '%s\n' "$out" | grep -qx committed; then
      [ -n "$tags" ] && printf '%s\n' $tags >>"$ledger/deleted.$c"
      [ -n "$tags" ] || sleep 0.05
    else
      [ -n "$tags" ] && printf '%s\n' $tags >>"$ledger/maybe.$c"
      sleep 0.2
    fi
  done
}

acknowledged_sends() { { cat "$ledger"/sent.* 2>/dev/null || true; } | wc -l; }

# Kills every process of the cluster at once: the postmaster is stopped first
# so that it forks nothing while its children are listed.
kill_cluster() {
  local postmaster children
  postmaster=$(head -1 "$QX_CLUSTER_DIR/data/postmaster.pid")
  kill -STOP "$postmaster"
  children=$(pgrep -P "$postmaster" || true)
  # shellcheck disable=SC2086
  kill -KILL "$postmaster" $children
  for pid in $postmaster $children; do
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  done
  echo "killed postmaster $postmaster and $(echo "$children" | wc -w) children"
}

for p in 1 2; do produce "$p" & done
for c in 1 2; do consume "$c" & done

for round in 1 2 3 4; do
  before=$(acknowledged_sends)
  sleep "$((2 + RANDOM % 3))"
  during=$(acknowledged_sends)
  [ "$during" -gt "$before" ] || { echo "round $round: no send was acknowledged before the kill"; exit 1; }
  kill_cluster
  as_postgres "$QX_PG_BINDIR/pg_ctl" -D "$QX_CLUSTER_DIR/data" -l "$QX_CLUSTER_DIR/server.log" -w -t 60 start >/dev/null
  echo "round $round: $during sends acknowledged so far, server restarted"
done
sleep 3
touch "$ledger/stop"
wait
[ "$(acknowledged_sends)" -gt "$during" ] || { echo "no send was acknowledged after the last restart"; exit 1; }

# The ledgers and the queue, as sorted lists of tags.
cat "$ledger"/sent.* | sort >"$ledger/all_sent"
cat "$ledger"/unsure.* 2>/dev/null | sort >"$ledger/all_unsure" || true
cat "$ledger"/deleted.* 2>/dev/null | sort >"$ledger/all_deleted" || true
cat "$ledger"/maybe.* 2>/dev/null | sort >"$ledger/all_maybe" || true
psql -qXAt -c "SELECT message->>'tag' FROM pgmq.q_crash" | sort >"$ledger/queued"

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

# The counters agree with the table, and the queue still drains.
agree=$(psql -qXAt -c "SELECT (SELECT queue_length FROM pgmq.metrics('crash')) = (SELECT count(*) FROM pgmq.q_crash)
                          AND (SELECT depth FROM pgmq.queue_stats WHERE queue_name = 'crash') = (SELECT count(*) FROM pgmq.q_crash)")
echo "metrics and queue_stats agree with the table: $agree"
[ "$agree" = t ] || fail=1
drained=$(psql -qXAt -c "SELECT count(*) FROM pgmq.delete('crash', ARRAY(SELECT msg_id FROM pgmq.read('crash', 30, 1000000)))")
left=$(psql -qXAt -c "SELECT count(*) FROM pgmq.q_crash")
echo "drained $drained, left $left"
[ "$drained" -eq "$(wc -l <"$ledger/queued")" ] && [ "$left" -eq 0 ] || fail=1
[ "$fail" -eq 0 ]
