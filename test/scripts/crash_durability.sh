#!/usr/bin/env bash
# Nothing committed is lost: the server is killed (SIGKILL to the postmaster,
# then its children) in the middle of work and restarted. Every committed
# send, delete and archive is there after recovery; the open transaction's
# work is not. An unlogged queue comes back empty, as documented.
set -euo pipefail
# shellcheck source=test/cluster.sh
. "$(dirname "$0")/../cluster.sh"
cluster_start "synchronous_commit = on" "fsync = on"
trap cluster_stop EXIT

psql -qX -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION queue_ext;
SELECT pgmq.create('durable');
SELECT pgmq.create_unlogged('fast');
SELECT count(*) FROM pgmq.send_batch('durable', ARRAY(SELECT jsonb_build_object('n', i) FROM generate_series(1, 1000) i));
SELECT count(*) FROM pgmq.send_batch('fast', ARRAY(SELECT jsonb_build_object('n', i) FROM generate_series(1, 100) i));
SELECT count(*) FROM pgmq.delete('durable', ARRAY(SELECT generate_series(1, 100)::bigint));
SELECT count(*) FROM pgmq.archive('durable', ARRAY(SELECT generate_series(101, 150)::bigint));
SELECT count(*) FROM pgmq.read('durable', 3600, 10);
SQL

# An open transaction with uncommitted sends and deletes when the server dies.
coproc open_tx { psql -qX -v ON_ERROR_STOP=1; }
echo "BEGIN; SELECT count(*) FROM pgmq.send('durable', '{\"uncommitted\":true}'); SELECT pgmq.delete('durable', 200); SELECT 'ready';" >&"${open_tx[1]}"
read -r -t 30 line <&"${open_tx[0]}"; read -r -t 30 line <&"${open_tx[0]}"; read -r -t 30 line <&"${open_tx[0]}"

postmaster=$(head -1 "$QX_CLUSTER_DIR/data/postmaster.pid")
children=$(pgrep -P "$postmaster" || true)
# shellcheck disable=SC2086
kill -9 "$postmaster" $children
for _ in $(seq 1 50); do
  kill -0 "$postmaster" 2>/dev/null || break
  sleep 0.1
done
as_postgres "$QX_PG_BINDIR/pg_ctl" -D "$QX_CLUSTER_DIR/data" -l "$QX_CLUSTER_DIR/server.log" -w -t 60 start >/dev/null

state=$(psql -qXAt -c "
  SELECT (SELECT count(*) FROM pgmq.q_durable) || '/' ||
         (SELECT count(*) FROM pgmq.a_durable) || '/' ||
         (SELECT count(*) FROM pgmq.q_durable WHERE read_ct = 1) || '/' ||
         (SELECT count(*) FROM pgmq.q_durable WHERE message ? 'uncommitted') || '/' ||
         (SELECT count(*) FROM pgmq.q_durable WHERE msg_id = 200) || '/' ||
         (SELECT count(*) FROM pgmq.q_fast)")
echo "after crash: queued/archived/leased/uncommitted/msg200/unlogged = $state"
[ "$state" = "850/50/10/0/1/0" ]

# The queue works after recovery: reads skip the still-leased ten.
psql -qXAt -c "SELECT count(*) FROM pgmq.read('durable', 30, 1000)" | grep -qx 840
psql -qXAt -c "SELECT count(*) FROM pgmq.send('fast', '{}')" | grep -qx 1
