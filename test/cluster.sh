# test/cluster.sh: start and stop a throwaway PostgreSQL 15 cluster.
# Sourced by the test runner, the quickstart and the benchmark.
#
# PostgreSQL refuses to run as root, so as root the cluster runs as the
# "postgres" OS user, in a directory that user owns. Clients connect over a
# Unix socket in that directory, so no other server's port is touched.
#
#   cluster_start [extra postgresql.conf lines...]  exports PGHOST PGPORT PGUSER PGDATABASE
#   cluster_stop
#   cluster_restart_immediate   crash (SIGQUIT-style immediate stop) and restart

QX_PG_BINDIR="${QX_PG_BINDIR:-$(pg_config --bindir)}"

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

qx_free_port() {
  local port
  for port in $(seq 55432 55532); do
    if ! (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && [ ! -e "/tmp/.s.PGSQL.$port" ]; then
      echo "$port"; return 0
    fi
  done
  echo "no free port in 55432-55532" >&2
  return 1
}

cluster_start() {
  QX_CLUSTER_DIR="$(mktemp -d /tmp/queue_ext_cluster.XXXXXX)"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$QX_CLUSTER_DIR"
  QX_PORT="$(qx_free_port)"
  as_postgres "$QX_PG_BINDIR/initdb" -D "$QX_CLUSTER_DIR/data" -U postgres \
      --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$QX_CLUSTER_DIR/initdb.log" 2>&1 || {
    cat "$QX_CLUSTER_DIR/initdb.log" >&2; return 1; }
  {
    echo "port = $QX_PORT"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$QX_CLUSTER_DIR'"
    echo "shared_preload_libraries = 'pg_cron,queue_ext'"
    echo "cron.database_name = 'postgres'"
    # pg_cron's jobs run in background workers, not libpq connections (trust
    # on a socket would do, but workers need no connection settings at all).
    echo "cron.use_background_workers = on"
    echo "max_worker_processes = 16"
    # Not the default, so a test can tell the setting reached the server.
    echo "queue_ext.rate_limit_buckets = 1024"
    echo "max_connections = 120"
    echo "max_prepared_transactions = 10"
    echo "log_min_messages = warning"
    for line in "$@"; do echo "$line"; done
  } | as_postgres tee -a "$QX_CLUSTER_DIR/data/postgresql.conf" >/dev/null
  # A free port can be taken by another cluster between the check and the
  # start (other sessions start clusters too): then take another.
  local attempt
  for attempt in 1 2 3 4 5; do
    as_postgres "$QX_PG_BINDIR/pg_ctl" -D "$QX_CLUSTER_DIR/data" -l "$QX_CLUSTER_DIR/server.log" \
        -w -t 60 start >/dev/null && break
    if [ "$attempt" -lt 5 ] && grep -q "Address already in use" "$QX_CLUSTER_DIR/server.log"; then
      QX_PORT="$(qx_free_port)"
      echo "port = $QX_PORT" | as_postgres tee -a "$QX_CLUSTER_DIR/data/postgresql.conf" >/dev/null
      continue
    fi
    cat "$QX_CLUSTER_DIR/server.log" >&2; return 1
  done
  export PGHOST="$QX_CLUSTER_DIR" PGPORT="$QX_PORT" PGUSER=postgres PGDATABASE=postgres
}

cluster_stop() {
  [ -n "${QX_CLUSTER_DIR:-}" ] && [ -d "$QX_CLUSTER_DIR/data" ] || return 0
  as_postgres "$QX_PG_BINDIR/pg_ctl" -D "$QX_CLUSTER_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$QX_CLUSTER_DIR"
  QX_CLUSTER_DIR=""
}

cluster_restart_immediate() {
  as_postgres "$QX_PG_BINDIR/pg_ctl" -D "$QX_CLUSTER_DIR/data" -m immediate -w stop >/dev/null
  as_postgres "$QX_PG_BINDIR/pg_ctl" -D "$QX_CLUSTER_DIR/data" -l "$QX_CLUSTER_DIR/server.log" \
      -w -t 60 start >/dev/null
}
