/*
 * quota.c
 *	  Tenants' monthly quotas: counting the messages sent to a tenant's
 *	  queues, warning past the soft limit, refusing past the hard limit.
 *
 * Only tenants with a quota (pgmq.tenant_quotas, held by
 * security_catalog.c) are counted. A send counts the messages it enqueued,
 * so a resend that its idempotency key turned into the first message's
 * msg_id counts nothing. The count is a row per tenant, UTC calendar month
 * and backend slot (pgmq.tenant_usage), added to in the sending transaction:
 * a backend only ever writes its own slot's row, so counting never waits on
 * another session, and a rolled-back send leaves no count behind. The
 * month's total is the sum of the rows the send can see; a send that would
 * take it past the hard limit raises PT429, which undoes the send. Sends of
 * other sessions that commit at the same moment are not yet visible to it,
 * so concurrent transactions can pass the hard limit by their own sizes.
 */
#include "queue_ext.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/proc.h"

#define ERRCODE_TOO_MANY_REQUESTS MAKE_SQLSTATE('P','T','4','2','9')

static SPIPlanPtr count_plan = NULL;

/* The last transaction warned about a tenant's soft limit: one notice each. */
static LocalTransactionId warned_lxid = InvalidLocalTransactionId;
static int64 warned_tenant = 0;

/*
 * Counts sent messages against the quota of queue's tenant; raises PT429
 * when they take it past its hard limit. SPI must be connected.
 */
void
quota_count_sent(QueueEntry *queue, int64 sent)
{
	int64		soft_limit;
	int64		hard_limit;
	Datum		values[4];
	bool		isnull;
	int64		total;
	double		to_next_month;
	Tenant		tenant;

	if (sent <= 0 || queue->tenant_id == 0 ||
		!tenant_quota_find(queue->tenant_id, &soft_limit, &hard_limit))
		return;

	if (count_plan == NULL)
	{
		Oid			types[4] = {INT8OID, TIMESTAMPTZOID, INT4OID, INT8OID};

		count_plan = spi_prepare_kept(
			"WITH month AS (SELECT pg_catalog.date_trunc('month', $2 AT TIME ZONE 'UTC') AS start), "
			"counted AS (INSERT INTO pgmq.tenant_usage AS u (tenant_id, period, slot, sent) "
			" SELECT $1, month.start::date, $3, $4 FROM month "
			" ON CONFLICT (tenant_id, period, slot) DO UPDATE SET sent = u.sent + EXCLUDED.sent RETURNING 1) "
			"SELECT (SELECT COALESCE(pg_catalog.sum(s.sent), 0)::bigint FROM pgmq.tenant_usage s, month "
			"        WHERE s.tenant_id = $1 AND s.period = month.start::date), "
			"       EXTRACT(epoch FROM month.start + interval '1 month' - ($2 AT TIME ZONE 'UTC'))::float8 "
			"FROM month",
			4, types);
	}
	values[0] = Int64GetDatum(queue->tenant_id);
	values[1] = TimestampTzGetDatum(GetCurrentTimestamp());
	values[2] = Int32GetDatum(MyBackendId);
	values[3] = Int64GetDatum(sent);
	if (SPI_execute_plan(count_plan, values, NULL, false, 0) != SPI_OK_SELECT || SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not count the messages sent against the tenant's quota")));
	/* The sum was taken before this statement's own addition. */
	total = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) + sent;
	to_next_month = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));

	if (!tenant_find(NULL, queue->tenant_id, &tenant))
		strlcpy(tenant.slug, "?", sizeof(tenant.slug));
	if (hard_limit > 0 && total > hard_limit)
		ereport(ERROR,
				(errcode(ERRCODE_TOO_MANY_REQUESTS),
				 errmsg("monthly quota of tenant \"%s\" exceeded", tenant.slug),
				 errdetail("Sending %lld more would make %lld of the %lld messages allowed this month; nothing was sent. Retry after %.0f seconds.",
						   (long long) sent, (long long) total, (long long) hard_limit,
						   Max(1, to_next_month)),
				 errhint("An operator can raise the quota with pgmq.set_tenant_quota().")));
	if (soft_limit > 0 && total >= soft_limit &&
		!(warned_lxid == MyProc->lxid && warned_tenant == queue->tenant_id))
	{
		warned_lxid = MyProc->lxid;
		warned_tenant = queue->tenant_id;
		ereport(NOTICE,
				(errmsg("tenant \"%s\" has sent %lld messages this month; its soft limit is %lld",
						tenant.slug, (long long) total, (long long) soft_limit),
				 hard_limit > 0
				 ? errdetail("Sends are refused past %lld.", (long long) hard_limit)
				 : errdetail("The quota has no hard limit: sends go on.")));
	}
}
