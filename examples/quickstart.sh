#!/usr/bin/env bash
# Quickstart: installs what queue_ext needs, builds and installs it, starts a
# throwaway PostgreSQL 15 cluster, makes a queue, sends, reads and deletes a
# message, prints the queue's metrics, and removes the cluster again.
set -euo pipefail
cd "$(dirname "$0")/.."

bash test/install-deps.sh
make -s && make -s install >/dev/null

# shellcheck source=test/cluster.sh
. test/cluster.sh
cluster_start
trap cluster_stop EXIT

psql -X -v ON_ERROR_STOP=1 <<'SQL'
\echo '-- CREATE EXTENSION gives schema pgmq with the pgmq API'
CREATE EXTENSION queue_ext;
SELECT pgmq.create('quickstart');

\echo '-- send a message (returns its msg_id)'
SELECT * FROM pgmq.send('quickstart', '{"hello": "world"}');

\echo '-- read it: invisible to other readers for 30 seconds'
SELECT msg_id, read_ct, message FROM pgmq.read('quickstart', 30, 1);

\echo '-- delete it once handled'
SELECT pgmq.delete('quickstart', 1);

\echo '-- metrics'
SELECT queue_name, queue_length, queue_visible_length, total_messages
FROM pgmq.metrics('quickstart');
SQL
