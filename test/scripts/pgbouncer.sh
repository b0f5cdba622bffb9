#!/usr/bin/env bash
# Through Debian's PgBouncer in transaction mode, in front of the test
# cluster: many clients share one server connection, and
# - send, read and ack stay correct (every message delivered once);
# - tenant context never outlives its transaction: an API key authenticated
#   in one client's transaction, or JWT claims a gateway set in one request,
#   give nothing to the next client served by the same server backend;
# - read_with_poll works (no LISTEN: it sleeps in shared memory and is woken
#   by the send's commit, through the pooler).
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/script_helpers.sh
. test/cluster.sh
db=qx_bouncer
work="$(mktemp -d /tmp/qx_bouncer.XXXXXX)"
chown postgres "$work"
bouncer_port="$(qx_free_port)"
cleanup() {
  [ -f "$work/pgbouncer.pid" ] && kill "$(cat "$work/pgbouncer.pid")" 2>/dev/null || true
  psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  psql -qX -d postgres -c "DROP ROLE IF EXISTS qx_b_app" -c "DROP ROLE IF EXISTS qx_b_authenticator" \
    -c "DROP ROLE IF EXISTS b_web" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail_details() { tail -20 "$work/pgbouncer.log" 2>/dev/null; }

psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql -qX -d postgres -c "DROP ROLE IF EXISTS qx_b_app" -c "DROP ROLE IF EXISTS qx_b_authenticator" \
  -c "DROP ROLE IF EXISTS b_web" -c "CREATE ROLE qx_b_app LOGIN" -c "CREATE ROLE qx_b_authenticator LOGIN NOINHERIT" >/dev/null
q -d "$db" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION queue_ext;
SELECT pgmq.create('b_jobs'), pgmq.create('b_acme'), pgmq.create('b_wake');
SELECT pgmq.create_tenant('b_acme_t');
SELECT pgmq.set_queue_tenant('b_acme', 'b_acme_t');
CREATE ROLE b_web NOLOGIN;
GRANT b_web TO qx_b_authenticator;
SELECT pgmq.grant_rpc('b_web');
SELECT pgmq.set_gateway_role('qx_b_authenticator', '{tenant}');
SQL
key="$(q -d "$db" -c "SELECT pgmq.create_api_key('b_acme_t', 'bouncer test', '{publish,consume}')")"

cat >"$work/userlist.txt" <<EOF
"postgres" ""
"qx_b_app" ""
"qx_b_authenticator" ""
EOF
# One server connection per pool, so consecutive transactions of different
# clients meet the same backend; a second alias for the waiting reader.
cat >"$work/pgbouncer.ini" <<EOF
[databases]
$db = host=$PGHOST port=$PGPORT dbname=$db pool_size=1
${db}_poll = host=$PGHOST port=$PGPORT dbname=$db pool_size=3
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncer_port
unix_socket_dir =
auth_type = trust
auth_file = $work/userlist.txt
pool_mode = transaction
max_client_conn = 100
logfile = $work/pgbouncer.log
pidfile = $work/pgbouncer.pid
ignore_startup_parameters = extra_float_digits
EOF
chown postgres "$work"/*
as_postgres pgbouncer -d "$work/pgbouncer.ini"
for _ in $(seq 1 50); do
  psql -qXAt -h 127.0.0.1 -p "$bouncer_port" -U postgres -d "$db" -c "SELECT 1" >/dev/null 2>&1 && break
  sleep 0.1
done
bq() { local user="$1"; shift; psql -qXAt -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$bouncer_port" -U "$user" "$@"; }
[ "$(bq postgres -d "$db" -c "SELECT 1")" = 1 ] || fail "no connection through pgbouncer"

# Send, read and ack: 8 clients at once, 50 messages each, over one server connection.
for c in $(seq 1 8); do
  bq postgres -d "$db" -c "SELECT count(*) FROM pgmq.send_batch('b_jobs', ARRAY(SELECT jsonb_build_object('c', $c, 'n', i) FROM generate_series(1, 50) i))" >/dev/null &
done
wait
for c in $(seq 1 8); do
  (for _ in $(seq 1 10); do
     bq postgres -d "$db" -c "BEGIN" -c "SELECT pgmq.ack('b_jobs', msg_id, read_ct) FROM pgmq.read('b_jobs', 60, 5)" -c "COMMIT" >>"$work/acked.$c"
   done) &
done
wait
acked="$(cat "$work"/acked.* | grep -c '^t$')"
[ "$acked" = 400 ] || fail "acked $acked of 400 through pgbouncer"
[ "$(q -d "$db" -c "SELECT count(*) FROM pgmq.q_b_jobs")" = 0 ] || fail "messages left"

# An API key authenticated in one client's transaction ...
pid_a="$(bq qx_b_app -d "$db" -c "BEGIN" -c "SELECT pgmq.authenticate('$key')" \
  -c "SELECT count(*) FROM pgmq.send('b_acme', '{\"by\": \"key\"}')" -c "SELECT pg_backend_pid()" -c "COMMIT" | tail -1)"
# ... gives nothing to the next client on the same backend.
out="$(bq qx_b_app -d "$db" -c "SELECT pg_backend_pid()" -c "SELECT count(*) FROM pgmq.list_queues() WHERE queue_name = 'b_acme'" 2>&1)"
[ "$(echo "$out" | head -1)" = "$pid_a" ] || fail "not the same server backend ($pid_a, $out): the test proves nothing"
[ "$(echo "$out" | tail -1)" = 0 ] || fail "the next client sees the tenant's queue: $out"
out="$(bq qx_b_app -d "$db" -c "SELECT pgmq.send('b_acme', '{}')" 2>&1 || true)"
echo "$out" | grep -q 'queue "b_acme" does not exist' || fail "the next client sent to the tenant's queue: $out"

# JWT claims a gateway set for one request ...
out="$(bq qx_b_authenticator -d "$db" -c "BEGIN" -c "SET LOCAL ROLE b_web" \
  -c "SELECT set_config('request.jwt.claims', '{\"role\": \"b_web\", \"tenant\": \"b_acme_t\"}', true) IS NOT NULL" \
  -c "SELECT count(*) FROM pgmq_public.send(queue_name => 'b_acme', message => '{\"by\": \"jwt\"}')" \
  -c "SELECT pg_backend_pid()" -c "COMMIT")"
[ "$(echo "$out" | sed -n 2p)" = 1 ] || fail "gateway request did not send: $out"
pid_g="$(echo "$out" | tail -1)"
# ... are gone for the next request, on the same backend, that sets none.
out="$(bq qx_b_authenticator -d "$db" -c "BEGIN" -c "SET LOCAL ROLE b_web" -c "SELECT pg_backend_pid()" \
  -c "SELECT count(*) FROM pgmq_public.send(queue_name => 'b_acme', message => '{}')" -c "COMMIT" 2>&1 || true)"
[ "$(echo "$out" | head -1)" = "$pid_g" ] || fail "not the same server backend for the gateway ($pid_g, $out)"
echo "$out" | grep -q 'does not exist\|permission denied\|42501' || fail "a request without claims sent to the tenant's queue: $out"
[ "$(q -d "$db" -c "SELECT string_agg(message->>'by', ',' ORDER BY msg_id) FROM pgmq.q_b_acme")" = "key,jwt" ] ||
  fail "tenant queue holds $(q -d "$db" -c "SELECT string_agg(message::text, ',') FROM pgmq.q_b_acme")"

# A waiting reader through the pooler is woken by a send's commit, long
# before its 5 s poll interval would find the message.
bq postgres -d "${db}_poll" -c "SELECT message->>'w' FROM pgmq.read_with_poll('b_wake', 30, 1, 10, 5000)" >"$work/woken" &
reader=$!
# Send only once the reader is in its sleep (its first attempt found nothing).
for _ in $(seq 1 100); do
  [ "$(q -d "$db" -c "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%read_with_poll(''b_wake''%' AND state = 'active' AND pid <> pg_backend_pid()")" = 1 ] && break
  sleep 0.05
done
sleep 0.2
start=$(date +%s%N)
bq postgres -d "${db}_poll" -c "SELECT count(*) FROM pgmq.send('b_wake', '{\"w\": \"up\"}')" >/dev/null
wait "$reader"
ms=$(ms_since "$start")
[ "$(cat "$work/woken")" = up ] || fail "reader got: $(cat "$work/woken")"
[ "$ms" -lt 2500 ] || fail "woken $ms ms after the send: polled, not woken"
echo "pgbouncer: ok (400 acks over one server connection; tenant context stays in its transaction; woken after $ms ms)"
