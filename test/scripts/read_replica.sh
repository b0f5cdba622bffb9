#!/usr/bin/env bash
# Metrics on a streaming read replica of the test cluster (docs/SCALING.md):
# the replica has no gauges of the primary's commits (they live in the
# primary's shared memory), so pgmq.queue_stats counts rows there
# (depth_from = 'count') and gets the same numbers; pgmq.metrics and
# metrics_all work; the throughput history maintenance wrote on the primary
# is there; writes (a read leases, so it writes) are refused as on any
# standby, and so is the recount.
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/script_helpers.sh
. test/cluster.sh
db=qx_replica
standby="$(mktemp -d /tmp/qx_standby.XXXXXX)"
chown postgres "$standby"
standby_port="$(qx_free_port)"
cleanup() {
  as_postgres "$QX_PG_BINDIR/pg_ctl" -D "$standby/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$standby"
  psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
}
trap cleanup EXIT
fail_details() { tail -20 "$standby/server.log" 2>/dev/null; }

psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
q -d "$db" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION queue_ext;
SELECT pgmq.create('r_jobs'), pgmq.create('r_big');
SELECT pgmq.send_batch('r_jobs', ARRAY(SELECT jsonb_build_object('n', i) FROM generate_series(1, 20) i));
SELECT pgmq.send('r_jobs', '{"later": true}', 3600);
SELECT count(*) FROM pgmq.read('r_jobs', 600, 5);
SELECT pgmq.archive('r_jobs', 6);
SELECT pgmq.send_batch('r_big', ARRAY(SELECT '{}'::jsonb FROM generate_series(1, 10001)));
SELECT count(*) FROM pgmq.run_maintenance();
SQL
primary="$(q -d "$db" -c "SELECT depth || '/' || visible || '/' || in_flight || '/' || delayed || '/' || archived FROM pgmq.queue_stats WHERE queue_name = 'r_jobs'")"
[ "$primary" = "20/14/5/1/1" ] || fail "primary stats $primary"

as_postgres "$QX_PG_BINDIR/pg_basebackup" -D "$standby/data" -R -X stream -h "$PGHOST" -p "$PGPORT" -U postgres >/dev/null
{
  echo "port = $standby_port"
  echo "unix_socket_directories = '$standby'"
  echo "listen_addresses = ''"
  echo "cron.database_name = 'postgres'"
} | as_postgres tee -a "$standby/data/postgresql.conf" >/dev/null
as_postgres "$QX_PG_BINDIR/pg_ctl" -D "$standby/data" -l "$standby/server.log" -w -t 60 start >/dev/null
sq() { psql -qXAt -h "$standby" -p "$standby_port" -d "$db" "$@"; }
[ "$(sq -c "SELECT pg_is_in_recovery()")" = t ] || fail "the standby is not in recovery"

# A change on the primary reaches the replica, and its stats count it.
q -d "$db" -c "SELECT pgmq.send('r_jobs', '{\"after\": \"backup\"}')" >/dev/null
lsn="$(q -d "$db" -c "SELECT pg_current_wal_lsn()")"
for _ in $(seq 1 100); do
  [ "$(sq -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'")" = t ] && break
  sleep 0.1
done
got="$(sq -c "SELECT depth || '/' || visible || '/' || in_flight || '/' || delayed || '/' || archived || '/' || depth_from FROM pgmq.queue_stats WHERE queue_name = 'r_jobs'")"
[ "$got" = "21/15/5/1/1/count" ] || fail "replica stats $got"
# A large queue too: counted on the spot, its states included (the census is unlogged, so not on replicas).
got="$(sq -c "SELECT depth || '/' || visible || '/' || depth_from || '/' || (states_at = scrape_time) FROM pgmq.queue_stats WHERE queue_name = 'r_big'")"
[ "$got" = "10001/10001/count/true" ] || fail "replica stats of the large queue $got"
[ "$(sq -c "SELECT queue_length FROM pgmq.metrics('r_jobs')")" = 21 ] || fail "metrics on the replica"
[ "$(sq -c "SELECT count(*) FROM pgmq.metrics_all()")" = 2 ] || fail "metrics_all on the replica"
# The history maintenance rolled up on the primary is replicated; the
# replica's own counters and histograms are empty.
[ "$(sq -c "SELECT sum(sent) FROM pgmq.throughput_history WHERE queue_name = 'r_jobs'")" = 21 ] || fail "history on the replica: $(sq -c "SELECT * FROM pgmq.throughput_history")"
[ "$(sq -c "SELECT count(*) FROM pgmq.queue_counters()")" = 0 ] || fail "counters on the replica"
# Reads lease (they write): refused, as on any standby; so is the recount.
out="$(sq -c "SELECT * FROM pgmq.read('r_jobs', 30, 1)" 2>&1 || true)"
echo "$out" | grep -q "read-only transaction" || fail "a read on the replica: $out"
[ "$(sq -c "SELECT pgmq._recount_gauges('r_jobs')")" = 0 ] || fail "a recount on the replica"
echo "read replica: ok"
