#!/usr/bin/env bash
# The npm client pgmq-js (written for pgmq), pinned at 1.3.1, runs every one
# of its calls against queue_ext unchanged: test/js/pgmq_js_calls.mjs makes
# the client over TCP, calls each method it has (queues: create,
# createUnlogged, list, getMetrics, getAllMetrics, purge, detachArchive,
# drop; messages: send, sendBatch, read, readBatch, setVt, pop, delete,
# deleteBatch, archive, archiveBatch; close) and checks each outcome in the
# tables through a separate node-postgres client. The method list is read
# from the library's prototypes, so one the test does not call fails it.
# Pgmq.new's default prepare() runs CREATE EXTENSION IF NOT EXISTS pgmq,
# which has nothing to find here: the test checks it fails cleanly with
# 0A000, and the client is then made with skipExtensionCreation.
# Needs node and npm (Node 18 or later) and the npm registry.
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/script_helpers.sh
. test/cluster.sh
pgmq_js_version=1.3.1

command -v node >/dev/null || fail "node is not installed (needed to run pgmq-js)"
command -v npm >/dev/null || fail "npm is not installed (needed to install pgmq-js)"

QX_CLUSTER_DIR=""   # never stop a cluster this script did not start
tmp="$(mktemp -d /tmp/qx_pgmq_js.XXXXXX)"
cleanup() { cluster_stop; rm -rf "$tmp"; }
trap cleanup EXIT
# node-postgres errors do not carry the statement; the server log does.
fail_details() {
  [ -n "$QX_CLUSTER_DIR" ] || return 0
  echo "server log, errors and their statements (expected: prepare()'s extension \"pgmq\", 42P01 on js_no_such_queue and on js_main once dropped):"
  grep -E 'ERROR|STATEMENT' "$QX_CLUSTER_DIR/server.log" | tail -30
}

# The exact versions of test/js/package-lock.json (pgmq-js and its pg).
cp test/js/package.json test/js/package-lock.json "$tmp/"
(cd "$tmp" && npm ci --no-audit --no-fund) \
  >"$tmp/npm.log" 2>&1 || { cat "$tmp/npm.log"; fail "npm ci of pgmq-js@$pgmq_js_version failed"; }

# shellcheck disable=SC2119
cluster_start
q -c "SET client_min_messages = warning" -c "CREATE EXTENSION queue_ext"

PGMQ_JS_DIR="$tmp" PGMQ_JS_VERSION="$pgmq_js_version" timeout 300 node test/js/pgmq_js_calls.mjs \
  || fail "pgmq-js $pgmq_js_version against queue_ext (output above)"
