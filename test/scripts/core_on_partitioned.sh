#!/usr/bin/env bash
# The core regression tests, on partitioned queues: pg_regress runs
# send_read, ack and jobs with every pgmq.create(name) in them (input and
# expected output alike) made pgmq.create_partitioned(name, '3', NULL) (three
# messages a partition, so the tests cross partitions and fill the default
# one), in a database with pg_partman, and their results must match the
# expected output of plain queues line for line.
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/script_helpers.sh
. test/cluster.sh
work="$(mktemp -d /tmp/qx_core_part.XXXXXX)"
db=qx_core_partitioned
trap 'rm -rf "$work"; psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true' EXIT
pg_regress="$("$QX_PG_BINDIR/pg_config" --pkglibdir)/pgxs/src/test/regress/pg_regress"
tests=(send_read ack jobs)

mkdir -p "$work/sql" "$work/expected" "$work/sql/include"
cp test/sql/include/* "$work/sql/include/"
partition() {  # the same statement text, so echoed input lines stay alike; the column keeps its name
  sed -E "s/pgmq\.create\('([^']*)'\)/pgmq.create_partitioned('\1', '3', NULL) AS create/g" "$1"
}
for t in "${tests[@]}"; do
  partition "test/sql/$t.sql" >"$work/sql/$t.sql"
  partition "expected/$t.out" >"$work/expected/$t.out"
  grep -q create_partitioned "$work/sql/$t.sql" || fail "$t makes no queue to partition"
done
# The tests \i their includes from test/sql: point them at the copies.
sed -i "s#test/sql/include/#$work/sql/include/#g" "$work"/sql/*.sql "$work"/expected/*.out

psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null
if ! "$pg_regress" --inputdir="$work" --outputdir="$work" --dbname="$db" \
    --host="$PGHOST" --port="$PGPORT" --user=postgres \
    --load-extension=pg_partman --load-extension=queue_ext "${tests[@]}" >"$work/run.log" 2>&1; then
  cat "$work/run.log"; head -80 "$work/regression.diffs" 2>/dev/null
  fail "the core tests differ on partitioned queues"
fi
grep -c " ok " "$work/run.log" | grep -qx "${#tests[@]}" || { cat "$work/run.log"; fail "not every test ran"; }
echo "core tests on partitioned queues: ok (${tests[*]})"
