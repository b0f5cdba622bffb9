#!/usr/bin/env bash
# test/sanitize.sh: queue_ext's pg_regress tests and isolation specs against
# an AddressSanitizer build of queue_ext. Not part of CI (test/run.sh); run by
# hand, it takes about 2 minutes on 2 cores. docs/SANITIZERS.md explains
# what it covers and what it cannot see.
#
# What it does:
#  1. installs the Debian packages (test/install-deps.sh) and gcc's ASan
#     runtime (libasan8) when missing;
#  2. builds queue_ext with -fsanitize=address -fno-omit-frame-pointer in a
#     copy of the source (the checkout is not touched) and installs it into a
#     private relocated copy of PostgreSQL 15 (the system install is not
#     touched either);
#  3. starts a throwaway cluster (test/cluster.sh) and restarts its server
#     through a wrapper that puts the ASan runtime in LD_PRELOAD (Debian's
#     postgres is not instrumented, and the runtime must be loaded before
#     anything else) and sends every ASan/LSan report of every process
#     (postmaster, backends, background workers) to files asan.<pid>;
#  4. proves the detection works with a canary library (a heap overflow and
#     a leak must both show up in the report files), then runs
#     `make installcheck` (pg_regress, then the isolation specs);
#  5. stops the server (each exiting process runs its leak check) and scans
#     the report files.
#
# Verdict: PASS only when every pg_regress test and isolation spec passed,
# the canary was caught, no process reported an ASan error, and no direct
# leak was allocated under queue_ext.so or libsodium (leaks of PostgreSQL's
# own one-shot allocations are out of scope: counted, not failed on).
#
# Environment: QX_ASAN_KEEP=1 keeps the work directory (build, reports,
# private PostgreSQL) even on success; it is always kept on failure.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
top="$(pwd)"
renice -n 10 -p $$ >/dev/null 2>&1 || true
started=$(date +%s)

die() { echo "sanitize: $*" >&2; echo "sanitize: FAIL"; exit 1; }

# --- 1. packages --------------------------------------------------------
bash test/install-deps.sh >/dev/null || die "test/install-deps.sh failed"
asan_runtime() {
  local f
  f="$(gcc -print-file-name=libasan.so 2>/dev/null)"
  [ -e "$f" ] && readlink -f "$f"
}
if ! asan_runtime >/dev/null; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  # gcc-12's AddressSanitizer runtime (normally already pulled in by gcc).
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q libasan8 >/dev/null \
    || die "apt-get install libasan8 failed"
fi
runtime="$(asan_runtime)" || die "gcc has no libasan.so"
echo "== ASan runtime: $runtime"

# --- 2. build and private install ------------------------------------------
work="$(mktemp -d /tmp/queue_ext_asan.XXXXXX)"
chmod 755 "$work"
build="$work/build"
pgroot="$work/pg"
reports="$work/reports"
mkdir -p "$build" "$reports" "$pgroot/usr/lib/postgresql" "$pgroot/usr/share/postgresql"
cp -a Makefile queue_ext.control src sql test expected "$build/"

pgver="$(pg_config --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')"
cp -a "/usr/lib/postgresql/$pgver" "$pgroot/usr/lib/postgresql/"
cp -aL "/usr/share/postgresql/$pgver" "$pgroot/usr/share/postgresql/"
bindir="$pgroot/usr/lib/postgresql/$pgver/bin"
libdir="$pgroot$(pg_config --pkglibdir)"

asan_flags="-fsanitize=address -fno-omit-frame-pointer -g"
echo "== building queue_ext with $asan_flags"
if ! { make -s -C "$build" clean \
       && make -s -C "$build" -j2 COPT="$asan_flags" \
       && make -s -C "$build" install DESTDIR="$pgroot"; } >"$work/build.log" 2>&1; then
  cat "$work/build.log"
  die "build failed (work directory $work)"
fi
so="$libdir/queue_ext.so"
# The library must really be instrumented, or the run proves nothing.
# (grep -c, not grep -q: under pipefail an early exit of grep fails the pipe)
[ "$(readelf -d "$so" | grep -c 'NEEDED.*libasan')" -gt 0 ] || die "$so does not link libasan"
[ "$(nm -D --undefined-only "$so" | grep -c '__asan_report_')" -gt 0 ] || die "$so has no ASan checks"

# A canary library: one function overflows a heap block, one leaks blocks.
cat >"$work/qx_asan_canary.c" <<'EOF'
#include "postgres.h"
#include "fmgr.h"
#include <stdlib.h>
#include <string.h>

PG_MODULE_MAGIC;

static void *volatile sink;

PG_FUNCTION_INFO_V1(qx_asan_canary_overflow);
Datum
qx_asan_canary_overflow(PG_FUNCTION_ARGS)
{
	int32		past = PG_GETARG_INT32(0);
	volatile char *block = malloc(16);
	int32		got;

	/* volatile: a store into a block about to be freed is otherwise dropped */
	block[16 + past] = 1;		/* past = 0: one byte past the end */
	got = block[16 + past];
	free((void *) block);
	PG_RETURN_INT32(got);
}

PG_FUNCTION_INFO_V1(qx_asan_canary_leak);
Datum
qx_asan_canary_leak(PG_FUNCTION_ARGS)
{
	int32		n = PG_GETARG_INT32(0);

	for (int32 i = 0; i < n; i++)
	{
		sink = malloc(48);
		memset(sink, i, 48);
	}
	sink = NULL;
	PG_RETURN_INT32(n);
}
EOF
# shellcheck disable=SC2086 # $asan_flags is a list of flags
gcc -O1 $asan_flags -fPIC -shared -I"$(pg_config --includedir-server)" \
    "$work/qx_asan_canary.c" -o "$libdir/qx_asan_canary.so" >>"$work/build.log" 2>&1 \
  || { cat "$work/build.log"; die "canary build failed"; }

# A start-up shim, preloaded right after the runtime. Debian's postgres links
# libgpg-error (via libsystemd -> libgcrypt), whose constructor runs before
# the runtime's own (a preloaded library is initialised late) and calls
# bindtextdomain(), which takes glibc's gettext lock for writing and then
# calls malloc(). That first malloc() initialises ASan, whose start-up calls
# dlerror(), which takes the same lock for reading: glibc refuses (EDEADLK),
# unlocks anyway and leaves the lock corrupt, and postgres hangs for ever in
# its own bindtextdomain() call in main(). The shim's bindtextdomain() calls
# malloc() before the lock is taken, so ASan initialises outside it, then
# hands over to glibc's. It is not instrumented and does nothing else.
cat >"$work/asan_init_shim.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>

typedef char *(*bindtextdomain_fn) (const char *, const char *);

char *
bindtextdomain(const char *domain, const char *dir)
{
	static bindtextdomain_fn next;

	if (next == NULL)
	{
		void	   *volatile first = malloc(1);	/* initialises ASan */

		free(first);
		next = (bindtextdomain_fn) dlsym(RTLD_NEXT, "bindtextdomain");
	}
	return next(domain, dir);
}
EOF
gcc -O2 -fPIC -shared "$work/asan_init_shim.c" -o "$work/asan_init_shim.so" -ldl >>"$work/build.log" 2>&1 \
  || { cat "$work/build.log"; die "shim build failed"; }
chmod -R a+rX "$work"

# --- 3. cluster with the ASan runtime preloaded ----------------------------
supp="$work/sanitize.supp"
cp test/sanitize.supp "$supp"
# One option a line; a quoted value may hold spaces. {%m} puts the module of
# every frame in the reports, which the leak scope below is decided on.
cat >"$work/asan.options" <<EOF
log_path=$reports/asan
abort_on_error=1
detect_leaks=1
leak_check_at_exit=1
exitcode=0
fast_unwind_on_malloc=0
malloc_context_size=40
allocator_may_return_null=1
detect_stack_use_after_return=0
stack_trace_format="    #%n %p %F %L {%m}"
EOF
cat >"$work/postgres-asan" <<EOF
#!/bin/sh
LD_PRELOAD="$runtime $work/asan_init_shim.so" ASAN_OPTIONS="include=$work/asan.options" \\
LSAN_OPTIONS="suppressions=$supp:print_suppressions=1" \\
  exec "$bindir/postgres" "\$@"
EOF
chmod 755 "$work/postgres-asan" "$work/asan.options" "$supp"
chown postgres:postgres "$reports"

export QX_PG_BINDIR="$bindir"
# shellcheck source=test/cluster.sh
. test/cluster.sh
finish() {
  # A server that will not stop fast (say, asked to during crash recovery)
  # is stopped immediately, so that none is left behind.
  if [ -n "${QX_CLUSTER_DIR:-}" ] && [ -f "$QX_CLUSTER_DIR/data/postmaster.pid" ]; then
    as_postgres "$bindir/pg_ctl" -D "$QX_CLUSTER_DIR/data" -m fast -w -t 60 stop >/dev/null 2>&1 \
      || as_postgres "$bindir/pg_ctl" -D "$QX_CLUSTER_DIR/data" -m immediate -w -t 60 stop >/dev/null 2>&1
  fi
  cluster_stop
  if [ "${keep:-1}" = 1 ]; then echo "sanitize: work directory kept: $work"; else rm -rf "$work"; fi
}
trap finish EXIT
# cluster_start writes the test configuration and starts a plain server,
# which cannot load the instrumented queue_ext.so (no ASan runtime in it): it
# starts without queue_ext, is stopped, gets queue_ext back in its preload
# list and is started through the wrapper (pg_ctl -p names the program).
cluster_start "shared_preload_libraries = 'pg_cron'" >/dev/null || die "cluster_start failed"
as_postgres "$bindir/pg_ctl" -D "$QX_CLUSTER_DIR/data" -m fast -w stop >/dev/null \
  || die "could not stop the plain server"
echo "shared_preload_libraries = 'pg_cron,queue_ext'" \
  | as_postgres tee -a "$QX_CLUSTER_DIR/data/postgresql.conf" >/dev/null
rm -f "$reports"/asan.*
as_postgres "$bindir/pg_ctl" -D "$QX_CLUSTER_DIR/data" -p "$work/postgres-asan" \
    -l "$QX_CLUSTER_DIR/server.log" -w -t 180 start >/dev/null \
  || { cat "$QX_CLUSTER_DIR/server.log"; die "the ASan server did not start"; }
pm_pid="$(head -1 "$QX_CLUSTER_DIR/data/postmaster.pid")"
grep -q "$runtime" "/proc/$pm_pid/maps" || die "the postmaster has no ASan runtime mapped"
grep -q "$so" "/proc/$pm_pid/maps" || die "the postmaster did not preload $so"
echo "== server $pm_pid runs with $(basename "$runtime") preloaded and $so"

wait_ready() {
  local _
  for _ in $(seq 1 120); do
    psql -qXAt -d postgres -c "SELECT 1" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  return 1
}

# Reads one report file (one process) and prints a line per finding:
# "error - FILE" for any ASan error (or a LeakSanitizer that could not run),
# "direct|indirect in|out FILE" per leak record, a record running from
# "Direct/Indirect leak of" to the blank line. A record is "in" scope when
# one of its frames lies in a module matching the regex $2 (the {%m} part of
# each frame). Direct in-scope records are copied to $work/inscope/.
classify() {
  awk -v file="$1" -v scope="$2" -v out="$work/inscope/$(basename "$1")" '
    function flush() {
      if (rec != "") {
        kind = (rec ~ /^Direct/) ? "direct" : "indirect"
        where = (rec ~ scope) ? "in" : "out"
        print kind, where, file
        if (kind == "direct" && where == "in") print rec "\n" > out
      }
      rec = ""
    }
    /ERROR: AddressSanitizer|ERROR: LeakSanitizer has encountered|AddressSanitizer:DEADLYSIGNAL/ { flush(); print "error", "-", file; next }
    /^(Direct|Indirect) leak of/ { flush(); rec = $0; next }
    rec != "" && /^$/ { flush(); next }
    rec != "" { rec = rec "\n" $0 }
    END { flush() }
  ' "$1"
}
mkdir -p "$work/inscope"
scope_re='/(queue_ext|libsodium)\.so[.0-9]*\}'

# --- 4. canary, then the suite -----------------------------------------------
# The canary proves the whole chain: runtime preloaded, instrumented code
# loaded by a backend, reports written per process, and classify() finding
# an error and an in-scope direct leak (scope: the canary's own module).
psql -qXAt -v ON_ERROR_STOP=1 -d postgres >/dev/null <<'EOF' || die "canary setup failed"
CREATE DATABASE qx_asan_canary;
\c qx_asan_canary
CREATE FUNCTION canary_overflow(int) RETURNS int AS 'qx_asan_canary', 'qx_asan_canary_overflow' LANGUAGE C STRICT;
CREATE FUNCTION canary_leak(int) RETURNS int AS 'qx_asan_canary', 'qx_asan_canary_leak' LANGUAGE C STRICT;
EOF
leak_pid="$(psql -qXAt -d qx_asan_canary -c "SELECT pg_backend_pid()" -c "SELECT canary_leak(64)" | head -1)"
# The leak check runs as that backend exits: let it finish before the
# overflow below makes the postmaster kill every backend.
for _ in $(seq 1 60); do [ -d "/proc/$leak_pid" ] || break; sleep 0.5; done
overflow_pid="$(psql -qXAt -d qx_asan_canary -c "SELECT pg_backend_pid()" -c "SELECT canary_overflow(0)" 2>/dev/null | head -1)"
# The overflow aborts its backend; the postmaster then restarts all backends.
wait_ready || die "the server did not come back after the canary"
canary_ok=1
if [ -z "$leak_pid" ] || [ ! -f "$reports/asan.$leak_pid" ] \
   || ! classify "$reports/asan.$leak_pid" '/qx_asan_canary\.so\}' | grep -q '^direct in '; then
  canary_ok=0; echo "canary: no in-scope leak found for backend ${leak_pid:-?}"
fi
if [ -z "$overflow_pid" ] || [ ! -f "$reports/asan.$overflow_pid" ] \
   || ! grep -q 'ERROR: AddressSanitizer: heap-buffer-overflow' "$reports/asan.$overflow_pid" \
   || ! classify "$reports/asan.$overflow_pid" "$scope_re" | grep -q '^error '; then
  canary_ok=0; echo "canary: no heap-buffer-overflow report found for backend ${overflow_pid:-?}"
fi
rm -f "$work/inscope"/*
[ "$canary_ok" = 1 ] && echo "== canary: overflow (backend $overflow_pid) and leak (backend $leak_pid) caught"
psql -qXAt -d postgres -c "DROP DATABASE qx_asan_canary" >/dev/null

cd "$build" || die "no build directory"
suite_start=$(date +%s)
echo "== pg_regress"
make installcheck ISOLATION= >"$work/regress.log" 2>&1
regress_rc=$?
grep -E '^(test| ) |tests? (passed|failed)|^ok |^not ok ' "$work/regress.log" || true
[ -f regression.diffs ] && cp regression.diffs "$work/regress.diffs"
# After an ASan abort the server restarts all backends and recovers.
wait_ready || echo "sanitize: the server is not accepting connections"
echo "== isolation"
make installcheck REGRESS= >"$work/isolation.log" 2>&1
iso_rc=$?
grep -E '^(test| ) |tests? (passed|failed)|^ok |^not ok ' "$work/isolation.log" || true
[ -f output_iso/regression.diffs ] && cp output_iso/regression.diffs "$work/isolation.diffs"
wait_ready || echo "sanitize: the server is not accepting connections"
suite_secs=$(( $(date +%s) - suite_start ))
cd "$top" || exit 1

count_ok() { grep -cE '^(test| ) *[^ ]+ +\.\.\. ok' "$1" || true; }
count_bad() { grep -cE '\.\.\. (FAILED|failed)' "$1" || true; }
r_ok=$(count_ok "$work/regress.log"); r_bad=$(count_bad "$work/regress.log")
i_ok=$(count_ok "$work/isolation.log"); i_bad=$(count_bad "$work/isolation.log")

# --- 5. stop (leak checks run as each process exits) and scan -------------
stopped=1
as_postgres "$bindir/pg_ctl" -D "$QX_CLUSTER_DIR/data" -m fast -w -t 120 stop >/dev/null \
  || { stopped=0; echo "sanitize: the server did not stop within 120 s (its exit leak checks are missing)"; }
# Backends that died of a signal, other than the canary's deliberate abort.
crashes=$(grep -E 'was terminated by signal|terminated by exception' "$QX_CLUSTER_DIR/server.log" \
            | grep -vc "PID $overflow_pid)" || true)
cp "$QX_CLUSTER_DIR/server.log" "$work/server.log"

# Every report file but the canary backends'.
scan="$work/scan.txt"
: >"$scan"
for f in "$reports"/asan.*; do
  [ -e "$f" ] || continue
  pid="${f##*.}"
  { [ "$pid" = "$overflow_pid" ] || [ "$pid" = "$leak_pid" ]; } && continue
  classify "$f" "$scope_re" >>"$scan"
done
errors=$(grep -c '^error ' "$scan" || true)
leaks_in=$(grep -c '^direct in ' "$scan" || true)
leaks_out=$(grep -c '^direct out ' "$scan" || true)
indirect=$(grep -c '^indirect ' "$scan" || true)
files=$(find "$reports" -name 'asan.*' | wc -l)
# LSan's "Suppressions used:" table: a "count bytes template" heading, then
# one line per suppression, closed by a line of dashes.
suppressed=$(cat "$reports"/asan.* 2>/dev/null \
  | awk '/^Suppressions used:/ {s=1; next} s && /^ *[0-9]+ +[0-9]+ / {n += $1; next} /^---/ {s=0} END {print n+0}')

echo "== ASan reports ($files files in $reports)"
while read -r f; do
  echo "--- $f"; cat "$f"
done < <(awk '$1 == "error" {print $3}' "$scan" | sort -u)
for f in "$work"/inscope/asan.*; do
  [ -e "$f" ] || continue
  echo "--- in-scope direct leaks in $reports/$(basename "$f")"; cat "$f"
done
echo "pg_regress: $r_ok ok, $r_bad failed (exit $regress_rc); isolation: $i_ok ok, $i_bad failed (exit $iso_rc); suite ${suite_secs}s"
echo "asan: $errors error reports, $leaks_in in-scope direct leaks;" \
     "out of scope: $leaks_out direct and $indirect indirect leak records, $suppressed suppressed leak objects;" \
     "processes killed by a signal (canary aside): $crashes"

[ -f "$work/regress.diffs" ] && cat "$work/regress.diffs"
[ -f "$work/isolation.diffs" ] && cat "$work/isolation.diffs"

passed=$(( r_ok + i_ok ))
failed=$(( r_bad + i_bad ))
verdict=PASS
{ [ "$regress_rc" -ne 0 ] || [ "$iso_rc" -ne 0 ] || [ "$failed" -gt 0 ] || [ "$r_ok" -eq 0 ] || [ "$i_ok" -eq 0 ]; } && verdict=FAIL
[ "$canary_ok" = 1 ] || verdict=FAIL
[ "$errors" -eq 0 ] && [ "$leaks_in" -eq 0 ] || verdict=FAIL
[ "$crashes" -eq 0 ] || verdict=FAIL
[ "$stopped" = 1 ] || verdict=FAIL
echo "took $(( $(date +%s) - started ))s"
echo "sanitize: $verdict"
echo "$passed passed, $failed failed"
[ "$verdict" = PASS ] && keep="${QX_ASAN_KEEP:-0}"
[ "$verdict" = PASS ]
