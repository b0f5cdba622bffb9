# bench/setup.sh: how every benchmark starts. Sourced from the repository's
# root by bench/run.sh, bench/scale.sh and bench/soak.sh: installs the
# packages, builds and installs queue_ext, and starts a throwaway cluster
# with the benchmarks' settings (room for big queues, no checkpoint in the
# middle of a run, autovacuum logged), stopped at exit. Sets pgbench_bin.
bash test/install-deps.sh
make -s && make -s install >/dev/null

# shellcheck source=test/cluster.sh
. test/cluster.sh
cluster_start "shared_buffers = 1GB" "max_wal_size = 8GB" "checkpoint_timeout = 30min" \
              "log_autovacuum_min_duration = 0"
trap cluster_stop EXIT
pgbench_bin="$QX_PG_BINDIR/pgbench"
