/*
 * audit.c
 *	  The audit log: one row per management action, saying when, who (role,
 *	  login role, API key prefix) and for which tenant.
 *
 * pgmq.audit_log is append-only: its triggers refuse UPDATE, DELETE and
 * TRUNCATE, and only queue_ext's own code (running as the owner) inserts, so
 * no tenant can write, forge or erase a row; row-level security shows a
 * tenant its own rows. The row is written in the caller's transaction, so an
 * action that rolls back leaves no record of having happened.
 */
#include "queue_ext.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"

static SPIPlanPtr audit_plan = NULL;

/*
 * Records action (for the tenant tenant_id, 0: the operator's; on queue when
 * given) with detail, a JSON object or NULL. Runs as the owner.
 */
void
audit_record(const char *action, int64 tenant_id, const char *queue, const char *detail)
{
	static const Oid argtypes[7] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT8OID, TEXTOID, JSONBOID};
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	const char *key_prefix;

	/* Between installing a new library and ALTER EXTENSION queue_ext UPDATE there is no log yet. */
	if (!OidIsValid(get_relname_relid("audit_log", get_namespace_oid(QUEUE_SCHEMA, false))))
		return;
	key_prefix = caller_key_prefix();
	spi_connect_or_error();
	if (audit_plan == NULL)
		audit_plan = spi_prepare_kept("INSERT INTO pgmq.audit_log "
									  "(action, role_name, session_role, key_prefix, tenant_id, queue_name, detail) "
									  "VALUES ($1, $2, $3, $4, $5, $6, $7)",
									  7, argtypes);
	values[0] = CStringGetTextDatum(action);
	values[1] = CStringGetTextDatum(GetUserNameFromId(queue_ext_caller(), false));
	values[2] = CStringGetTextDatum(GetUserNameFromId(GetSessionUserId(), false));
	values[3] = key_prefix ? CStringGetTextDatum(key_prefix) : (Datum) 0;
	nulls[3] = key_prefix ? ' ' : 'n';
	values[4] = Int64GetDatum(tenant_id);
	nulls[4] = tenant_id != 0 ? ' ' : 'n';
	values[5] = queue ? CStringGetTextDatum(queue) : (Datum) 0;
	nulls[5] = queue ? ' ' : 'n';
	values[6] = detail ? DirectFunctionCall1(jsonb_in, CStringGetDatum(detail)) : (Datum) 0;
	nulls[6] = detail ? ' ' : 'n';
	if (SPI_execute_plan(audit_plan, values, nulls, false, 0) != SPI_OK_INSERT)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not write the audit record")));
	SPI_finish();
}

/* audit_log_refuse_change(): the trigger that keeps the audit log append-only */
PG_FUNCTION_INFO_V1(queue_ext_audit_log_refuse_change);

Datum
queue_ext_audit_log_refuse_change(PG_FUNCTION_ARGS)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("the audit log is append-only"),
			 errdetail("Rows of pgmq.audit_log cannot be updated or deleted, nor the table truncated.")));
	PG_RETURN_NULL();
}
