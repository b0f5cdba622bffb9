# test/script_helpers.sh: what the script tests in test/scripts/ share.
# Sourced, not run (test/run.sh runs only test/scripts/*.sh).
#
#   q ARGS...      psql, unaligned and quiet, stopping at the first error
#   fail MESSAGE   prints "FAIL: MESSAGE" and exits 1 (a script may define
#                  fail_details to print more first)
#   ms_since NS    milliseconds since NS (from date +%s%N)

q() { psql -qXAt -v ON_ERROR_STOP=1 "$@"; }
fail() {
  echo "FAIL: $*"
  if declare -F fail_details >/dev/null; then fail_details || true; fi
  exit 1
}
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
