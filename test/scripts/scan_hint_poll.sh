#!/usr/bin/env bash
# The read low-water mark (src/scan_hint.c) and read_with_poll: a message sent
# in a long transaction has a lower msg_id than messages read and deleted
# after it. A poller is already waiting when that transaction commits; it must
# return the message. (The step that moves the mark must look with a fresh
# snapshot: the poller's statement snapshot predates the commit.)
set -euo pipefail
db=qx_hint_poll
psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
export PGDATABASE=$db
psql -qX -v ON_ERROR_STOP=1 -c "CREATE EXTENSION queue_ext" -c "SELECT pgmq.create('poll_hint')" >/dev/null

# The long transaction takes msg_id 1 and stays open.
coproc late { psql -qXAt -v ON_ERROR_STOP=1; }
echo "BEGIN; SELECT * FROM pgmq.send('poll_hint', '\"late\"');" >&"${late[1]}"
read -r -t 30 late_id <&"${late[0]}"

# Ids 2..4 are committed, read and deleted meanwhile.
psql -qXAt -v ON_ERROR_STOP=1 -c "SELECT count(*) FROM pgmq.send_batch('poll_hint', ARRAY['1', '2', '3']::jsonb[])" >/dev/null
psql -qXAt -v ON_ERROR_STOP=1 -c "SELECT count(*) FROM (SELECT pgmq.delete('poll_hint', msg_id) FROM pgmq.read('poll_hint', 30, 10)) d" | grep -qx 3

# The poller's session first reads once (nothing is visible): that opens a
# round of its mark, listing the late transaction. Then, in a new transaction
# of the same session, it waits up to 6 s, trying every 150 ms (longer than
# the mark's 5 ms step), so the first try after the late commit finishes
# the round, inside a statement whose snapshot predates that commit.
result="$(mktemp)"
trap 'rm -f "$result"' EXIT
psql -qXAt -v ON_ERROR_STOP=1 -c "SELECT count(*) FROM pgmq.read('poll_hint', 30, 10)" \
  -c "SELECT msg_id || ':' || message FROM pgmq.read_with_poll('poll_hint', 30, 10, 6, 150)" >"$result" &
poller=$!
sleep 1
echo "COMMIT;" >&"${late[1]}"
wait "$poller"
echo "late message id: $late_id; the poller returned: $(cat "$result")"
psql -qX -d postgres -c "DROP DATABASE $db" >/dev/null 2>&1 || true
[ "$(cat "$result")" = "$(printf '0\n%s' "$late_id:\"late\"")" ]
