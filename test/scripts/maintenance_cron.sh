#!/usr/bin/env bash
# pg_cron really runs the maintenance: schedule_maintenance() registers
# CALL pgmq.maintain() every minute in cron.database_name (the test cluster
# sets it to postgres, and cron.use_background_workers = on); within a minute
# and a bit cron.job_run_details shows a successful run, and the run did the
# work (an expired message is gone). unschedule_maintenance() removes the job.
set -euo pipefail
export PGDATABASE=postgres PGOPTIONS="-c client_min_messages=warning"
. "$(dirname "$0")/../script_helpers.sh"
fail_details() { q -c "SELECT status, return_message FROM cron.job_run_details ORDER BY runid DESC LIMIT 3"; }
# Queue tables outlive DROP EXTENSION (as in pgmq): drop the queue first.
cleanup() {
  psql -qX -c "SELECT pgmq.unschedule_maintenance()" -c "SELECT pgmq.drop_queue('cron_jobs')" >/dev/null 2>&1 || true
  psql -qX -c "DROP EXTENSION IF EXISTS queue_ext CASCADE" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# The cron database is postgres: start from a clean queue_ext there.
q -c "CREATE EXTENSION IF NOT EXISTS pg_cron" -c "DROP EXTENSION IF EXISTS queue_ext CASCADE" \
  -c "DROP TABLE IF EXISTS pgmq.q_cron_jobs, pgmq.a_cron_jobs" -c "CREATE EXTENSION queue_ext" >/dev/null
q -c "SELECT pgmq.create('cron_jobs')" \
  -c "SELECT pgmq.set_queue_options('cron_jobs', message_retention => '1 hour')" \
  -c "SELECT pgmq.send_batch('cron_jobs', ARRAY['{\"old\": true}', '{\"new\": true}']::jsonb[])" \
  -c "UPDATE pgmq.q_cron_jobs SET enqueued_at = now() - interval '2 hours' WHERE message ? 'old'" >/dev/null

# What Debian's pg_cron 1.4 cannot do is refused with the reason.
out="$(psql -qXAt -c "SELECT pgmq.schedule_maintenance('10 seconds')" 2>&1 || true)"
echo "$out" | grep -q 'does not accept the schedule' || fail "a seconds schedule on pg_cron 1.4: $out"
out="$(psql -qXAt -c "SELECT pgmq.schedule_maintenance('61 * * * *')" 2>&1 || true)"
echo "$out" | grep -q 'does not accept the schedule' || fail "minute 61: $out"
[ "$(q -c "SELECT count(*) FROM cron.job WHERE jobname = 'queue_ext_maintenance'")" = 0 ] || fail "a refused schedule left a job"

# Only runs that start after this point count.
since="$(q -c "SELECT clock_timestamp()")"
job="$(q -c "SELECT pgmq.schedule_maintenance()")"
[ "$(q -c "SELECT schedule || ' ' || command FROM cron.job WHERE jobid = $job")" = "* * * * * CALL pgmq.maintain()" ] \
  || fail "job $job not as scheduled"
# Scheduling again replaces the job rather than adding one.
[ "$(q -c "SELECT pgmq.schedule_maintenance()")" = "$job" ] || fail "a second job"

status=""
for _ in $(seq 1 80); do
  status="$(q -c "SELECT status FROM cron.job_run_details WHERE jobid = $job AND start_time > '$since'
                 AND status IN ('succeeded', 'failed') ORDER BY runid DESC LIMIT 1")"
  [ -n "$status" ] && break
  sleep 1
done
[ "$status" = succeeded ] || fail "no successful run of job $job (status: '${status:-none}')"
[ "$(q -c "SELECT string_agg(message::text, ',') FROM pgmq.q_cron_jobs")" = '{"new": true}' ] \
  || fail "the run did not apply message_retention"

[ "$(q -c "SELECT pgmq.unschedule_maintenance()")" = t ] || fail "unschedule"
[ "$(q -c "SELECT count(*) FROM cron.job WHERE jobid = $job")" = 0 ] || fail "job left behind"
[ "$(q -c "SELECT pgmq.unschedule_maintenance()")" = f ] || fail "unschedule twice"
echo "maintenance under pg_cron: ok"
