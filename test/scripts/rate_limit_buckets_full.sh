#!/usr/bin/env bash
# Shared memory holds queue_ext.rate_limit_buckets buckets (here the minimum,
# 64): a limit beyond them gets a clear error (53400) naming the setting, and
# buckets of removed limits are reclaimed when the table is full.
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/script_helpers.sh
. test/cluster.sh
cluster_start "queue_ext.rate_limit_buckets = 64"
trap cluster_stop EXIT


q -c "CREATE EXTENSION queue_ext" >/dev/null
[ "$(q -c "SHOW queue_ext.rate_limit_buckets")" = 64 ] || fail "setting"
q -c "SELECT count(*) FROM generate_series(1, 65) i, pgmq.create('b' || i) c" \
  -c "SELECT count(*) FROM generate_series(1, 65) i, pgmq.set_rate_limit('queue', 'b' || i, 'send', 1000) l" >/dev/null
# 64 queues get their buckets.
[ "$(q -c "SELECT count(*) FROM generate_series(1, 64) i, pgmq.send('b' || i, '{}') s")" = 64 ] || fail "64 sends"
out="$(psql -qXAt -v VERBOSITY=verbose -c "SELECT pgmq.send('b65', '{}')" 2>&1 || true)"
echo "$out" | grep -q '53400' || fail "no 53400 for the 65th bucket: $out"
echo "$out" | grep -q 'queue_ext.rate_limit_buckets' || fail "the error does not name the setting: $out"
# Removed limits free their buckets for others.
q -c "SELECT count(*) FROM generate_series(1, 10) i, pgmq.remove_rate_limit('queue', 'b' || i, 'send') r" >/dev/null
[ "$(q -c "SELECT pgmq.send('b65', '{}') > 0")" = t ] || fail "the 65th limit after removals"
# The limits that stayed kept their buckets (a bucket of 1000, 1 taken each).
[ "$(q -c "SELECT count(*) FROM generate_series(11, 64) i, pgmq.send('b' || i, '{}') s")" = 54 ] || fail "kept buckets"
echo "rate-limit buckets: ok"
