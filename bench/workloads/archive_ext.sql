\set id :n * 4 + :client_id + 1
\set n :n + 1
SELECT pgmq.archive('bench', :id::bigint);
