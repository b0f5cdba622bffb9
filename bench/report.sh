#!/usr/bin/env bash
# Turns bench/out/results.tsv and churn.tsv into the Markdown of RESULTS.md
# (stdout) and bench/churn.svg. Called by bench/run.sh.
set -euo pipefail
out="$1" seconds="$2" reps="$3" churn_seconds="$4" prefill="$5" ordering_fill="${6:-200000}" churn_fill="${7:-1000000}"
here="$(cd "$(dirname "$0")" && pwd)"

# Shared by the tables below: the median of a space-separated list, and the
# name each workload goes by.
awk_common='
  function median(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  BEGIN {
    names["send"] = "send 1"; names["send_batch100"] = "send_batch 100"
    names["read1_delete"] = "read 1 + delete"; names["read100_delete"] = "read 100 + delete array"
    names["read1_ack"] = "read 1 + ack"; names["read1_nack"] = "read 1 + nack"
    names["archive"] = "archive 1"; names["read_delete"] = "read 1 + delete"
  }
'

# Rows of a two-script table (label, rep, latency of each): medians, the
# throughput ratio of the second to the first, and every run.
pair_rows() {
  awk -F'\t' "$awk_common"'
    { if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 }; a[$1] = a[$1] " " $3; b[$1] = b[$1] " " $4 }
    END {
      for (i = 1; i <= n; i++) {
        ma = median(a[order[i]]); mb = median(b[order[i]])
        printf "| %s | %.3f | %.3f | %.2f | %s / %s |\n", names[order[i]], ma, mb, ma / mb, substr(a[order[i]], 2), substr(b[order[i]], 2)
      }
    }' "$1"
}

cat <<MD
# Benchmark results

Measured $(date -u +%Y-%m-%d) by \`bench/run.sh\` on this project's machine:
$(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB,
$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1),
$(psql -qXAt -c 'SHOW server_version' 2>/dev/null || pg_config --version),
queue_ext $(git -C "$here/.." rev-parse --short HEAD 2>/dev/null || echo '(no git)').

pgbench -M prepared, 4 clients, 2 threads, ${seconds} s a run, ${reps} runs of
each (queue_ext and floor alternating, fresh tables every run); the figures
are medians in transactions per second. The floor is hand-written prepared
SQL doing the same work on an identically shaped table (the statements
queue_ext prepares, without the function call), measured in the same run.
Read, read 100 and archive runs start on a queue of ${prefill} messages.
Absolute numbers depend on the machine and on what else it was doing; the
ratios are what to compare.

| operation | synchronous_commit | queue_ext tps | floor tps | ratio | runs (queue_ext / floor) |
|---|---|---:|---:|---:|---|
MD

awk -F'\t' "$awk_common"'
  { key = $1 "\t" $2; vals[key, $3] = vals[key, $3] " " sprintf("%.0f", $5)
    if (!(key in seen)) { seen[key] = 1; order[++n] = key } }
  END {
    for (i = 1; i <= n; i++) {
      split(order[i], k, "\t")
      e = median(vals[order[i], "ext"]); f = median(vals[order[i], "floor"])
      printf "| %s | %s | %.0f | %.0f | %.2f | %s / %s |\n", names[k[1]], k[2], e, f, (f > 0 ? e / f : 0), substr(vals[order[i], "ext"], 2), substr(vals[order[i], "floor"], 2)
    }
  }' "$out/results.tsv"

if [ -s "$out/paired.tsv" ]; then
cat <<MD

## Paired runs (synchronous_commit off)

Separate runs drift with the machine's I/O: relation extension and WAL
writes make one 20 s run of a write-heavy workload differ from the next by
up to a third, for queue_ext and floor alike. A paired run mixes the
queue_ext and the floor script at equal weight in one pgbench (4 clients,
${seconds} s), so both see the same moments, load and I/O; the table gives
each script's median latency over $(cut -f2 "$out/paired.tsv" | sort -u | wc -l) runs and the throughput ratio
they imply (floor latency / queue_ext latency).

| operation | queue_ext latency (ms) | floor latency (ms) | ratio | runs (queue_ext / floor, ms) |
|---|---:|---:|---:|---|
MD
awk -F'\t' "$awk_common"'
  { if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 }; e[$1] = e[$1] " " $3; f[$1] = f[$1] " " $4 }
  END {
    for (i = 1; i <= n; i++) {
      me = median(e[order[i]]); mf = median(f[order[i]])
      printf "| %s | %.3f | %.3f | %.2f | %s / %s |\n", names[order[i]], me, mf, mf / me, substr(e[order[i]], 2), substr(f[order[i]], 2)
    }
  }' "$out/paired.tsv"
fi

if [ -s "$out/jobs.tsv" ]; then
cat <<MD

## Jobs: ack and nack beside plain delete (synchronous_commit off)

One pgbench (4 clients, ${seconds} s) mixes three scripts at equal weight on one
queue of ${prefill} messages: read 1 + delete (pgmq's way), read 1 + ack (the
fenced ack, which also checks the receipt) and read 1 + nack (which records the
error in the headers and schedules the retry with the default backoff, 1 s
doubling with every attempt, so nacked messages come round again). Median
latency of each script over $(wc -l < "$out/jobs.tsv") runs; the ratio is the throughput each
implies relative to read 1 + delete (goal: 0.9 or more). All three share
the queue, so the nacked messages waiting for their retry at its head slow
every script alike; the separate and paired runs above show nack on its own
against its floor.

| script | latency (ms) | ratio to read 1 + delete | runs (ms) |
|---|---:|---:|---|
MD
awk -F'\t' "$awk_common"'
  { d = d " " $2; a = a " " $3; k = k " " $4 }
  END {
    md = median(d); ma = median(a); mk = median(k)
    printf "| read 1 + delete | %.3f | 1.00 | %s |\n", md, substr(d, 2)
    printf "| read 1 + ack | %.3f | %.2f | %s |\n", ma, md / ma, substr(a, 2)
    printf "| read 1 + nack | %.3f | %.2f | %s |\n", mk, md / mk, substr(k, 2)
  }' "$out/jobs.tsv"
fi

if [ -s "$out/ordering.tsv" ]; then
cat <<MD

## Ordering and dedup beside their plain forms (synchronous_commit off)

Each pgbench (4 clients, ${seconds} s) mixes a plain script and its variant at
equal weight, each on its own queue filled alike (${ordering_fill} messages for the
reads): read 1 + delete on a plain queue beside read 1 + delete on a queue
with priorities (priority_aging 1 minute, priorities 0 to 9 in turn) and
beside read_grouped 1 + delete on a queue of 1 000 FIFO groups (sent in
turn, with the fifo index); send with a header beside send with an
idempotency key (a random key, so nearly every send is new), and, in the
same pgbench, the raw-SQL floor of the keyed send: hand-written prepared SQL
doing its two inserts (the key claim and the message) on copies of the key
table and the queue table. Median latency of each script over $(cut -f2 "$out/ordering.tsv" | sort -u | wc -l) runs;
the ratio is the throughput the variant implies relative to the plain form
(goal: 0.8 or more).

| variant | plain latency (ms) | variant latency (ms) | ratio | runs (plain / variant, ms) |
|---|---:|---:|---:|---|
MD
awk -F'\t' "$awk_common"'
  BEGIN { label["priorities"] = "read 1 + delete, with priorities"
          label["groups"] = "read_grouped 1 + delete, 1 k groups"
          label["idempotency"] = "send with an idempotency key" }
  { if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 }; p[$1] = p[$1] " " $3; v[$1] = v[$1] " " $4
    if (NF >= 5) f[$1] = f[$1] " " $5 }
  END {
    for (i = 1; i <= n; i++) {
      mp = median(p[order[i]]); mv = median(v[order[i]])
      printf "| %s | %.3f | %.3f | %.2f | %s / %s |\n", label[order[i]], mp, mv, mp / mv, substr(p[order[i]], 2), substr(v[order[i]], 2)
      if (order[i] in f) {
        mf = median(f[order[i]])
        printf "| %s, raw-SQL floor | %.3f | %.3f | %.2f | %s / %s |\n", label[order[i]], mp, mf, mp / mf, substr(p[order[i]], 2), substr(f[order[i]], 2)
      }
    }
  }' "$out/ordering.tsv"
fi

if [ -s "$out/tenancy.tsv" ]; then
cat <<MD

## Tenants: pgmq_public with an API key beside an operator (synchronous_commit off)

Each pgbench (4 clients, ${seconds} s) mixes two scripts at equal weight, each
a whole PostgREST-style request: BEGIN; SET LOCAL ROLE; request.headers;
pgmq_public.pre_request(); the pgmq_public call; END. One is an operator
(a superuser) on an operator's queue; the other a tenant's edge function: a
role with no table privileges, its API key in the x-api-key header (verified
by pre_request), on the tenant's queue (row-level security, tenant and scope
checks). Queues filled alike (${ordering_fill} messages). Median latency of each
script over $(cut -f2 "$out/tenancy.tsv" | sort -u | wc -l) runs; the ratio is the throughput the keyed request
implies relative to the operator's (goal: 0.7 or more).

| call | operator latency (ms) | API key latency (ms) | ratio | runs (operator / key, ms) |
|---|---:|---:|---:|---|
MD
pair_rows "$out/tenancy.tsv"
fi

if [ -s "$out/limits.tsv" ]; then
cat <<MD

## Rate limits that do not bite (synchronous_commit off)

Each pgbench (4 clients, ${seconds} s) mixes a call on a queue without limits
and the same call on a queue under five limits, all far above the load: its
tenant's send and read limits and its own send, read and deliver limits
(token buckets in shared memory; a send passes two buckets, a read three).
Queues filled alike (${ordering_fill} messages). Median latency of each script over
$(cut -f2 "$out/limits.tsv" | sort -u | wc -l) runs; the ratio is the throughput the limited call implies relative to
the unlimited one (goal: 0.95 or more).

| call | no limit latency (ms) | limited latency (ms) | ratio | runs (no limit / limited, ms) |
|---|---:|---:|---:|---|
MD
pair_rows "$out/limits.tsv"
fi

if [ -s "$out/topics.tsv" ]; then
cat <<MD

## Topics (synchronous_commit off)

Each pgbench (4 clients, ${seconds} s) mixes a plain send with a send_topic
whose routing key is matched against 100 bindings (99 that do not match it,
one that does: one message sent). Median latency of each script over
$(cut -f2 "$out/topics.tsv" | sort -u | wc -l) runs; the ratio is the throughput send_topic implies relative to send.

| call | send latency (ms) | send_topic latency (ms) | ratio | runs (send / send_topic, ms) |
|---|---:|---:|---:|---|
MD
pair_rows "$out/topics.tsv"
fi

if [ -s "$out/partitioned.tsv" ]; then
cat <<MD

## A partitioned queue (synchronous_commit off)

Each pgbench (4 clients, ${seconds} s) mixes read 1 + delete on a plain queue
and on a queue pg_partman partitions by msg_id (100 000 messages a
partition), both filled alike (${ordering_fill} messages). Median latency of each script
over $(cut -f2 "$out/partitioned.tsv" | sort -u | wc -l) runs; the ratio is the throughput the partitioned queue
implies relative to the plain one.

| call | plain latency (ms) | partitioned latency (ms) | ratio | runs (plain / partitioned, ms) |
|---|---:|---:|---:|---|
MD
pair_rows "$out/partitioned.tsv"
fi

if [ -s "$out/latency.tsv" ]; then
cat <<MD

## Send to receive with a waiting reader (synchronous_commit on)

One sender sends to two queues in turn, a message to each every 10 to 50 ms
(random), committing every send; on each queue one reader waits with a
100 ms poll interval: queue_ext's read_with_poll (woken by the send's commit,
queue_ext being preloaded) and pgmq 1.13's way (read; if nothing,
pg_sleep(poll interval); again; \`bench/latency.sh\`). The latency is the
reader's clock_timestamp() after the read minus the send's, one server
clock, in milliseconds, so it includes the send's commit (flushed: the
server default). Goal for queue_ext: p99 under 5 ms.

| reader | p50 | p90 | p99 | max | messages |
|---|---:|---:|---:|---:|---:|
MD
awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s |\n", ($1 == "ext" ? "queue_ext read_with_poll" : "pgmq 1.13 poll"), $2, $3, $4, $5, $6 }' "$out/latency.tsv"
fi

if [ -s "$out/metrics.tsv" ]; then
cat <<MD

## Metric views on a queue of 1 M messages

One queue of ${BENCH_METRICS_FILL:-1000000} messages (100 in flight, 1 000 archived, a
dead-letter queue), maintenance's census taken (\`bench/metrics.sh\`). Each
statement in one pgbench client for 5 s; median latency over 3 runs, and how
many times faster than pgmq.metrics, which counts the queue's rows as pgmq
does (pgmq.job_counts counts them by state, through a SQL function per row).

| statement | latency (ms) | against pgmq.metrics | runs (ms) |
|---|---:|---:|---|
MD
awk -F'\t' "$awk_common"'
  { if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 }; runs[$1] = runs[$1] " " $3 }
  END {
    base = median(runs["metrics"])
    for (i = 1; i <= k; i++) {
      name = order[i]; med = median(runs[name]); list = runs[name]; sub(/^ /, "", list); gsub(/ /, ", ", list)
      printf "| %s | %s | %s | %s |\n", name, med, (med > 0 ? sprintf(base / med >= 10 ? "%.0fx" : "%.2fx", base / med) : "-"), list
    }
  }' "$out/metrics.tsv"
fi

if [ -s "$out/grouped.tsv" ]; then
cat <<MD

## A grouped read on 1 M messages in 10 k groups

One client, read_grouped(queue, 30, 10) in a transaction that is rolled back
(so every read sees the same queue: 1 000 000 messages sent in turn to 10 000
groups, with the fifo index), beside the same read done pgmq 1.13's way
(\`bench/workloads/grouped10_pgmq_style.sql\`: every group's oldest visible
message by a scan and GROUP BY of the whole queue, then the groups' visible
messages ranked, as its release script does; written for this benchmark, and
given the btree fifo index, which pgmq's own GIN index would not serve).
Median latency over $(cut -f2 "$out/grouped.tsv" | sort -u | wc -l) runs of 10 s.

| read | latency (ms) | runs (ms) |
|---|---:|---|
MD
awk -F'\t' "$awk_common"'
  { v[$1] = v[$1] " " $3 }
  END {
    printf "| queue_ext read_grouped 10 | %.3f | %s |\n", median(v["ext"]), substr(v["ext"], 2)
    printf "| pgmq 1.13 way | %.3f | %s |\n", median(v["pgmq_style"]), substr(v["pgmq_style"], 2)
  }' "$out/grouped.tsv"
fi

cat <<MD

## Under churn

4 clients doing read 1 + delete at synchronous_commit off for ${churn_seconds} s on
a fresh queue of ${churn_fill} messages; tps in each 5 s interval, and the last
and the lowest interval as fractions of the first. The last alone can mislead:
when autovacuum finally cleans the table, the floor recovers for a while.
The plot is \`bench/churn.svg\`.

MD

awk -F'\t' '
  { key = $1 " run " $2; t[key, $3] = $4; if (!(key in seen)) { seen[key] = 1; order[++n] = key }
    if (!($3 in tseen)) { tseen[$3] = 1; times[++m] = $3 }
    if (!(key in first)) first[key] = $4; last[key] = $4
    if (!(key in low) || $4 + 0 < low[key] + 0) low[key] = $4 }
  END {
    printf "| interval ending (s) |"; for (i = 1; i <= n; i++) printf " %s |", order[i]; printf "\n|---:|"
    for (i = 1; i <= n; i++) printf "---:|"; printf "\n"
    for (j = 1; j <= m; j++) { printf "| %s |", times[j]; for (i = 1; i <= n; i++) printf " %.0f |", t[order[i], times[j]]; printf "\n" }
    printf "| **last / first** |"; for (i = 1; i <= n; i++) printf " **%.2f** |", last[order[i]] / first[order[i]]; printf "\n"
    printf "| **lowest / first** |"; for (i = 1; i <= n; i++) printf " **%.2f** |", low[order[i]] / first[order[i]]; printf "\n"
  }' "$out/churn.tsv"

# The plot: one polyline per run, tps against time.
awk -F'\t' -v W=640 -v H=320 '
  { key = $1 " run " $2; if (!(key in seen)) { seen[key] = 1; order[++n] = key }
    pts[key] = pts[key] " " $3 "," $4; if ($4 + 0 > ymax) ymax = $4 + 0; if ($3 + 0 > xmax) xmax = $3 + 0 }
  END {
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"11\">\n", W + 160, H + 50
    printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
    printf "<line x1=\"50\" y1=\"10\" x2=\"50\" y2=\"%d\" stroke=\"black\"/><line x1=\"50\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", H + 10, H + 10, W + 50, H + 10
    printf "<text x=\"5\" y=\"15\">%d tps</text><text x=\"30\" y=\"%d\">0</text><text x=\"%d\" y=\"%d\">%d s</text>\n", ymax, H + 14, W + 30, H + 30, xmax
    split("#1f77b4 #aec7e8 #d62728 #ff9896", colours, " ")
    for (i = 1; i <= n; i++) {
      printf "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"%s\" points=\"", colours[(i - 1) % 4 + 1]
      c = split(pts[order[i]], p, " ")
      for (j = 1; j <= c; j++) { split(p[j], xy, ","); printf "%.1f,%.1f ", 50 + xy[1] / xmax * W, H + 10 - xy[2] / ymax * H }
      printf "\"/>\n<text x=\"%d\" y=\"%d\" fill=\"%s\">%s</text>\n", W + 60, 20 + i * 15, colours[(i - 1) % 4 + 1], order[i]
    }
    printf "</svg>\n"
  }' "$out/churn.tsv" > "$here/churn.svg"
