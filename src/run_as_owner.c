/*
 * run_as_owner.c
 *	  Running queue_ext's SQL-callable functions as the extension owner, and
 *	  remembering who called them.
 *
 * Queue tables belong to the extension owner and carry row-level security,
 * so a tenant's role has no rights on them; queue_ext's functions do the work
 * as the owner after tenancy.c has checked the caller. That is what SECURITY
 * DEFINER does, but fmgr's SECURITY DEFINER path rebuilds its cache and, with
 * a pinned search_path, sets and restores a GUC on every call of a prepared
 * statement, which costs the hot path more than its own work. So the C entry
 * points are declared plain and switch identity themselves (QUEUE_EXT_ENTRY):
 * the user id as SECURITY DEFINER switches it (SECURITY_LOCAL_USERID_CHANGE,
 * restored by transaction abort on error), and the search path pinned to
 * pg_catalog alone with an override, so nothing a caller puts on the search
 * path (a function or operator planted in public, a temporary table) can be
 * picked up while running as the owner.
 *
 * Functions written in SQL or PL/pgSQL run as the owner through
 * queue_ext_as_owner(): pgmq.<name> is declared LANGUAGE C with that symbol,
 * and calls pgmq._<name>, which has the same arguments and cannot be executed
 * by PUBLIC, after checking the permission that owner_call_rules lists for it.
 *
 * The caller is the role that was current when the outermost queue_ext
 * function was entered; a queue_ext function called from inside another one
 * (running as the owner) keeps that caller, so an internal call is not an
 * operator's call.
 */
#include "queue_ext.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_proc.h"
#include "commands/extension.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

static Oid	cached_extension_owner = InvalidOid;
static Oid	current_caller = InvalidOid;
static int	owner_call_depth = 0;

/* Called from queue_cache.c's relcache callback: a dropped and re-created extension may have another owner. */
void
extension_owner_forget(void)
{
	cached_extension_owner = InvalidOid;
}

/* The role that owns the queue_ext extension. */
Oid
extension_owner(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;

	if (OidIsValid(cached_extension_owner))
		return cached_extension_owner;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("queue_ext"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
		cached_extension_owner = ((Form_pg_extension) GETSTRUCT(tuple))->extowner;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	if (!OidIsValid(cached_extension_owner))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"queue_ext\" is not installed in this database"),
				 errhint("Run CREATE EXTENSION queue_ext.")));
	return cached_extension_owner;
}

/* The role on whose behalf queue_ext is working now. */
Oid
queue_ext_caller(void)
{
	return owner_call_depth > 0 ? current_caller : GetUserId();
}

/*
 * Runs body(fcinfo) as the extension owner with the search path pinned to
 * pg_catalog. On error the transaction's abort restores the user id and drops
 * the override; the caller is restored here.
 */
Datum
call_as_owner(FunctionCallInfo fcinfo, PGFunction body)
{
	static OverrideSearchPath pinned_path = {NIL, true, false, 0};
	Oid			owner = extension_owner();
	Oid			saved_user;
	int			saved_context;
	Oid			outer_caller = current_caller;
	Datum		result;

	GetUserIdAndSecContext(&saved_user, &saved_context);
	if (owner_call_depth == 0 || saved_user != owner)
		current_caller = saved_user;

	PushOverrideSearchPath(&pinned_path);
	SetUserIdAndSecContext(owner, saved_context | SECURITY_LOCAL_USERID_CHANGE);
	owner_call_depth++;
	PG_TRY();
	{
		result = body(fcinfo);
	}
	PG_FINALLY();
	{
		owner_call_depth--;
		current_caller = outer_caller;
	}
	PG_END_TRY();
	SetUserIdAndSecContext(saved_user, saved_context);
	PopOverrideSearchPath();
	return result;
}

/*
 * What pgmq.<name>, written in SQL, needs of its caller: a permission on the
 * queue named by its first argument, or to be an operator. Functions without
 * a queue argument that every role may call filter their rows themselves
 * (queue_visible()).
 */
typedef struct OwnerCallRule
{
	const char *name;
	QueueRequirement need;
	const char *audit_action;	/* recorded, with the arguments, after the call returns; NULL: none */
	int			dead_letter_argno;	/* a dead-letter queue argument, which must be the queue's tenant's; 0: none */
	bool		missing_skips;	/* a missing queue is a notice, not an error, as in pgmq */
} OwnerCallRule;

static const OwnerCallRule owner_call_rules[] = {
	{"set_queue_options", NEED_MANAGE, "queue options changed", 5, false},
	{"reset_queue_options", NEED_MANAGE, "queue options changed", 0, false},
	{"pause_queue", NEED_MANAGE, "queue paused", 0, false},
	{"resume_queue", NEED_MANAGE, "queue resumed", 0, false},
	{"drop_queue", NEED_MANAGE, NULL, 0, false},	/* drop_queue(name) records it */
	{"acquire_queue_lock", NEED_MANAGE, NULL, 0, false},
	{"enable_notify_insert", NEED_MANAGE, "queue options changed", 0, false},
	{"disable_notify_insert", NEED_MANAGE, "queue options changed", 0, true},
	{"update_notify_insert", NEED_MANAGE, "queue options changed", 0, false},
	{"create_fifo_index", NEED_MANAGE, NULL, 0, false},
	{"find_job", NEED_CONSUME, NULL, 0, false},
	{"list_queues", NEED_NOTHING, NULL, 0, false},
	{"job_state_counts", NEED_NOTHING, NULL, 0, false},
	{"list_notify_insert_throttles", NEED_NOTHING, NULL, 0, false},
	{"create_fifo_indexes_all", NEED_NOTHING, NULL, 0, false},
	{"expire_idempotency_keys", NEED_OPERATOR, NULL, 0, false},
	{"list_api_keys", NEED_NOTHING, NULL, 0, false},
	{"list_topic_bindings", NEED_NOTHING, NULL, 0, false},
	{"convert_archive_partitioned", NEED_MANAGE, "archive partitioned", 0, false},
	{"grant_queue", NEED_MANAGE, "permission granted", 0, false},
	{"revoke_queue", NEED_MANAGE, "permission revoked", 0, false},
	{"create_tenant", NEED_OPERATOR, "tenant created", 0, false},
	{"set_tenant_status", NEED_OPERATOR, "tenant status changed", 0, false},
	{"drop_tenant", NEED_OPERATOR, "tenant dropped", 0, false},
	{"add_tenant_role", NEED_OPERATOR, "tenant role added", 0, false},
	{"remove_tenant_role", NEED_OPERATOR, "tenant role removed", 0, false},
	{"set_gateway_role", NEED_OPERATOR, "gateway role set", 0, false},
	{"remove_gateway_role", NEED_OPERATOR, "gateway role removed", 0, false},
	{"grant_rpc", NEED_OPERATOR, "rpc granted", 0, false},
	{"set_queue_tenant", NEED_OPERATOR, "queue tenant changed", 0, false},
	{"set_rate_limit", NEED_OPERATOR, "rate limit set", 0, false},
	{"remove_rate_limit", NEED_OPERATOR, "rate limit removed", 0, false},
	{"set_tenant_quota", NEED_OPERATOR, "tenant quota set", 0, false},
	{"remove_tenant_quota", NEED_OPERATOR, "tenant quota removed", 0, false},
	{"run_maintenance", NEED_OPERATOR, NULL, 0, false},
	{"schedule_maintenance", NEED_OPERATOR, "maintenance scheduled", 0, false},
	{"unschedule_maintenance", NEED_OPERATOR, "maintenance unscheduled", 0, false},
};

typedef struct OwnerCallTarget
{
	const OwnerCallRule *rule;
	FmgrInfo	flinfo;			/* pgmq._<name> */
	char	  **argnames;		/* for the audit record */
	Oid		   *argtypes;
} OwnerCallTarget;

static OwnerCallTarget *
owner_call_target(FunctionCallInfo fcinfo)
{
	OwnerCallTarget *target = fcinfo->flinfo->fn_extra;
	HeapTuple	proc;
	Form_pg_proc form;
	char	   *impl_name;
	Oid			impl;

	if (target != NULL)
		return target;

	proc = SearchSysCache1(PROCOID, ObjectIdGetDatum(fcinfo->flinfo->fn_oid));
	if (!HeapTupleIsValid(proc))
		elog(ERROR, "cache lookup failed for function %u", fcinfo->flinfo->fn_oid);
	form = (Form_pg_proc) GETSTRUCT(proc);

	target = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(OwnerCallTarget));
	for (size_t i = 0; i < lengthof(owner_call_rules); i++)
		if (strcmp(owner_call_rules[i].name, NameStr(form->proname)) == 0)
			target->rule = &owner_call_rules[i];
	if (target->rule == NULL)
		elog(ERROR, "pgmq.%s has no rule for running as the owner", NameStr(form->proname));

	{
		Oid		   *argtypes;
		char	  **argnames;
		char	   *argmodes;
		int			nargs = get_func_arg_info(proc, &argtypes, &argnames, &argmodes);
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

		target->argtypes = palloc(sizeof(Oid) * Max(nargs, 1));
		target->argnames = palloc0(sizeof(char *) * Max(nargs, 1));
		for (int i = 0; i < nargs; i++)
		{
			target->argtypes[i] = argtypes[i];
			target->argnames[i] = argnames != NULL ? pstrdup(argnames[i]) : psprintf("arg%d", i + 1);
		}
		MemoryContextSwitchTo(old);
	}
	impl_name = psprintf("_%s", NameStr(form->proname));
	impl = GetSysCacheOid3(PROCNAMEARGSNSP, Anum_pg_proc_oid,
						   CStringGetDatum(impl_name),
						   PointerGetDatum(&form->proargtypes),
						   ObjectIdGetDatum(form->pronamespace));
	if (!OidIsValid(impl))
		elog(ERROR, "function pgmq.%s is missing", impl_name);
	ReleaseSysCache(proc);

	fmgr_info_cxt(impl, &target->flinfo, fcinfo->flinfo->fn_mcxt);
	fcinfo->flinfo->fn_extra = target;
	return target;
}

/* The call's arguments but the queue, as a JSON object of their text forms, for the audit log. */
static char *
arguments_json(FunctionCallInfo fcinfo, OwnerCallTarget *target, int first)
{
	StringInfoData buf;
	bool		any = false;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int i = first; i < fcinfo->nargs; i++)
	{
		Oid			output;
		bool		varlena;

		if (fcinfo->args[i].isnull)
			continue;
		getTypeOutputInfo(target->argtypes[i], &output, &varlena);
		if (any)
			appendStringInfoString(&buf, ", ");
		escape_json(&buf, target->argnames[i]);
		appendStringInfoString(&buf, ": ");
		escape_json(&buf, OidOutputFunctionCall(output, fcinfo->args[i].value));
		any = true;
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * After a call that set a dead-letter queue: the queue it resolved to must be
 * one the caller may publish to, of the queue's tenant. (set_queue_options
 * itself finds only queues the caller can see, so another tenant's is
 * reported as missing, by the same error and at the same point.) Raising
 * here undoes the call.
 */
static void
check_dead_letter_argument(FunctionCallInfo fcinfo, int argno, const char *name)
{
	QueueEntry *queue;
	QueueEntry *dead_letter;

	if (argno <= 0 || argno >= fcinfo->nargs || fcinfo->args[argno].isnull)
		return;
	queue = queue_lookup(name, NEED_NOTHING);	/* again: the call changed its options */
	if (!queue->options.has_dead_letter_queue ||
		(dead_letter = queue_find(queue->options.dead_letter.name)) == NULL)
		return;
	queue_check_access(dead_letter, NEED_PUBLISH);
	if (dead_letter->tenant_id != queue->tenant_id)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dead-letter queue \"%s\" must belong to the tenant of queue \"%s\"",
						dead_letter->names.name, queue->names.name)));
}

static Datum
call_implementation(FunctionCallInfo fcinfo)
{
	OwnerCallTarget *target = owner_call_target(fcinfo);
	LOCAL_FCINFO(inner, FUNC_MAX_ARGS);
	char	   *queue = NULL;
	QueueEntry *entry = NULL;
	int64		tenant_id = 0;
	Datum		result;

	if (target->rule->need == NEED_OPERATOR)
		require_operator(target->rule->name);
	else if (target->rule->need != NEED_NOTHING)
	{
		queue = queue_name_arg(fcinfo, 0);
		if (target->rule->missing_skips)
		{
			entry = queue_find(queue);
			if (entry == NULL || queue_hidden_from_caller(entry))
			{
				ereport(NOTICE,
						(errmsg("queue \"%s\" does not exist, skipping", queue)));
				fcinfo->isnull = true;
				return (Datum) 0;
			}
		}
		entry = queue_lookup(queue, target->rule->need);
		tenant_id = entry->tenant_id;
	}

	InitFunctionCallInfoData(*inner, &target->flinfo, fcinfo->nargs, fcinfo->fncollation,
							 fcinfo->context, fcinfo->resultinfo);
	for (int i = 0; i < fcinfo->nargs; i++)
		inner->args[i] = fcinfo->args[i];
	result = FunctionCallInvoke(inner);
	fcinfo->isnull = inner->isnull;
	if (queue != NULL)
		check_dead_letter_argument(fcinfo, target->rule->dead_letter_argno, queue);

	/* What the owner's own code calls on the way (pause_queue sets an option) is part of this action. */
	if (target->rule->audit_action != NULL && owner_call_depth == 1)
		audit_record(target->rule->audit_action, tenant_id, queue,
					 arguments_json(fcinfo, target, queue != NULL ? 1 : 0));
	return result;
}

PG_FUNCTION_INFO_V1(queue_ext_as_owner);

/* pgmq.<name>(...) declared with this symbol: checks the caller, then runs pgmq._<name>(...) as the owner. */
Datum
queue_ext_as_owner(PG_FUNCTION_ARGS)
{
	return call_as_owner(fcinfo, call_implementation);
}
