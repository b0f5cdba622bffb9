#!/usr/bin/env bash
# The one test command: installs the Debian packages, builds and installs
# queue_ext, starts a throwaway cluster (pg_cron and queue_ext preloaded), runs
# every pg_regress test, every isolation spec and every script test in
# test/scripts/, stops the cluster and ends with "N passed, N failed".
# Exits non-zero when anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
top="$(pwd)"

bash test/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }

if ! { make -s clean && make -s && make -s install; } >build.log 2>&1; then
  cat build.log
  echo "0 passed, 1 failed"
  exit 1
fi
rm -f build.log

# shellcheck source=test/cluster.sh
. test/cluster.sh
cluster_start || { echo "0 passed, 1 failed"; exit 1; }
trap cluster_stop EXIT

passed=0
failed=0
failed_names=()

# Counts pg_regress's per-test lines ("test name ... ok" / "... FAILED").
count_regress_output() {
  local log="$1" kind="$2"
  local ok bad
  ok=$(grep -cE '^(test| ) *[^ ]+ +\.\.\. ok' "$log" || true)
  bad=$(grep -cE '\.\.\. FAILED|\.\.\. failed' "$log" || true)
  passed=$((passed + ok))
  failed=$((failed + bad))
  if [ "$bad" -gt 0 ]; then
    while read -r name; do failed_names+=("$kind:$name"); done \
      < <(grep -E '\.\.\. (FAILED|failed)' "$log" | sed -E 's/^(test| ) *([^ ]+).*/\2/')
  fi
  if [ "$ok" -eq 0 ] && [ "$bad" -eq 0 ]; then
    failed=$((failed + 1)); failed_names+=("$kind:did-not-run")
  fi
}

echo "== pg_regress"
make installcheck ISOLATION= >regress.log 2>&1
cat regress.log | grep -E '^(test| ) |tests? (passed|failed)' || true
count_regress_output regress.log regress
[ -f regression.diffs ] && cat regression.diffs

echo "== isolation"
make installcheck REGRESS= >isolation.log 2>&1
cat isolation.log | grep -E '^(test| ) |tests? (passed|failed)' || true
count_regress_output isolation.log isolation
[ -f output_iso/regression.diffs ] && cat output_iso/regression.diffs

echo "== scripts"
for t in test/scripts/*.sh; do
  name="$(basename "$t" .sh)"
  start=$(date +%s)
  if bash "$t" >"/tmp/queue_ext_$name.log" 2>&1; then
    passed=$((passed + 1)); echo "script $name ... ok ($(( $(date +%s) - start )) s)"
  else
    failed=$((failed + 1)); failed_names+=("script:$name")
    echo "script $name ... FAILED ($(( $(date +%s) - start )) s)"
    cat "/tmp/queue_ext_$name.log"
  fi
done

rm -f regress.log isolation.log
[ ${#failed_names[@]} -gt 0 ] && echo "failed: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
