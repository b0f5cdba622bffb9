/*
 * tenancy.c
 *	  Who the caller is (operator, tenant, API key) and what it may do to a
 *	  queue: the one permission check every queue_ext function passes.
 *
 * The caller's tenant comes only from trusted sources, in this order:
 *	1. an API key authenticated in this transaction (api_keys.c keeps it in
 *	   backend memory, never in a setting anyone can SET);
 *	2. an operator: a superuser, or a role with the extension owner's
 *	   privileges; operators have no tenant and may do everything;
 *	3. JWT claims (request.jwt.claims), but only when session_user is a role
 *	   the operator declared in pgmq.gateway_roles (PostgREST's authenticator:
 *	   after its SET LOCAL ROLE, current_user is anon or authenticated, so it
 *	   cannot be the test); the claim path is per gateway role;
 *	4. the caller's role, when pgmq.tenant_roles maps it to a tenant;
 *	5. otherwise no tenant: the caller may use operator queues it has been
 *	   granted, or whose tables it has privileges on (pgmq's model).
 *
 * A queue belongs to at most one tenant (pgmq.queue_tenants). A queue of
 * another tenant is reported exactly as a queue that does not exist. On its
 * own tenant's queues a role needs a permission (publish, consume, manage)
 * from pgmq.queue_grants, for that queue or for all of the tenant's queues; a
 * key needs the scope, and the queue in its list when it has one.
 *
 * The catalog behind these answers is read by security_catalog.c; the
 * caller's context is cached until the caller, its key, its claims or the
 * catalog change.
 */
#include "queue_ext.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

typedef struct CallerContext
{
	bool		operator;
	Tenant		tenant;			/* id 0: no tenant */
	const AuthenticatedKey *key;	/* when acting with an API key */
	List	   *grants;			/* TenantGrant *, of the caller's tenant, for role callers */
} CallerContext;

/* What the cached context was built from: any difference means building it again. */
typedef struct CallerContextKey
{
	Oid			caller;
	Oid			session_user;
	uint64		key_serial;
	uint64		security_generation;
	char	   *claims;			/* request.jwt.claims as it was, for gateway sessions */
} CallerContextKey;

static MemoryContext tenancy_cxt = NULL;
static CallerContext cached_context;
static CallerContextKey cached_key;
static bool cached_valid = false;

void
tenancy_init(void)
{
	tenancy_cxt = AllocSetContextCreate(TopMemoryContext, "queue_ext tenancy",
										ALLOCSET_SMALL_SIZES);
}

/* ---- permissions as text ---- */

int
permission_bit(const char *name)
{
	if (strcmp(name, "publish") == 0)
		return PERM_PUBLISH;
	if (strcmp(name, "consume") == 0)
		return PERM_CONSUME;
	if (strcmp(name, "manage") == 0)
		return PERM_MANAGE;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown permission \"%s\"", name),
			 errhint("Permissions are publish, consume and manage.")));
	return 0;
}

/* A text[] of permission names as bits; NULL elements are refused. */
int
permission_bits(Datum array)
{
	ArrayType  *arr = DatumGetArrayTypeP(array);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			bits = 0;

	reject_multidimensional(arr, "permissions");
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("a permission must not be NULL")));
		bits |= permission_bit(TextDatumGetCString(elems[i]));
	}
	return bits;
}

static const char *
requirement_name(QueueRequirement need)
{
	switch (need)
	{
		case NEED_PUBLISH:
			return "publish";
		case NEED_CONSUME:
			return "consume";
		case NEED_MANAGE:
			return "manage";
		default:
			return "publish, consume or manage";
	}
}

static int
requirement_bits(QueueRequirement need)
{
	switch (need)
	{
		case NEED_PUBLISH:
			return PERM_PUBLISH;
		case NEED_CONSUME:
			return PERM_CONSUME;
		case NEED_MANAGE:
			return PERM_MANAGE;
		case NEED_ANY:
			return PERM_PUBLISH | PERM_CONSUME | PERM_MANAGE | PERM_VIEW;
		default:
			return 0;
	}
}

/* ---- who the caller acts for ---- */

/* The claim at path (a text[]) in the JSON claims, as text; NULL when absent or not a scalar. */
static char *
claim_at_path(const char *claims, Datum path)
{
	Jsonb	   *jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(claims)));
	JsonbContainer *container = &jb->root;
	JsonbValue	value;
	Datum	   *keys;
	bool	   *nulls;
	int			n;

	deconstruct_array(DatumGetArrayTypeP(path), TEXTOID, -1, false, TYPALIGN_INT, &keys, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		text	   *key = DatumGetTextPP(keys[i]);

		if (nulls[i] || !JsonContainerIsObject(container) ||
			getKeyJsonValueFromContainer(container, VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key),
										 &value) == NULL)
			return NULL;
		if (i < n - 1)
		{
			if (value.type != jbvBinary)
				return NULL;
			container = value.val.binary.data;
		}
	}
	if (n == 0)
		return NULL;
	if (value.type == jbvString)
		return pnstrdup(value.val.string.val, value.val.string.len);
	if (value.type == jbvNumeric)
		return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(value.val.numeric)));
	return NULL;
}

/* The tenant named by a gateway's JWT claim: a slug, or a tenant id. */
static void
tenant_from_claim(const char *claim, Tenant *out)
{
	if (text_is_integer(claim))
		(void) tenant_find(NULL, pg_strtoint64(claim), out);
	else
		(void) tenant_find(claim, 0, out);
	if (out->id == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("the request's tenant is not known"),
				 errdetail("The tenant claim of request.jwt.claims names no tenant.")));
}

static void
caller_context_build(CallerContext *ctx, Oid caller, const char *claims)
{
	const AuthenticatedKey *key = authenticated_key();
	TenantGrant *claim_grant = NULL;
	Datum		claim_path;
	int			claim_permissions;

	memset(ctx, 0, sizeof(CallerContext));
	if (key != NULL)
	{
		ctx->key = key;
		/* A key of a tenant deleted since it was verified is no key, not one without tenant. */
		if (!tenant_find(NULL, key->tenant_id, &ctx->tenant))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
					 errmsg("invalid API key"),
					 errdetail("The key's tenant no longer exists.")));
		return;
	}
	if (claims != NULL && gateway_role(GetSessionUserId(), &claim_path, &claim_permissions) &&
		claim_path != (Datum) 0)
	{
		char	   *claim = claim_at_path(claims, claim_path);

		if (claim != NULL)
		{
			tenant_from_claim(claim, &ctx->tenant);
			claim_grant = palloc0(sizeof(TenantGrant));
			claim_grant->permissions = claim_permissions;
		}
	}
	if (ctx->tenant.id == 0 && role_tenant(caller) != 0)
		(void) tenant_find(NULL, role_tenant(caller), &ctx->tenant);
	/* A copy: the catalog's list must not grow the claim's grant. */
	ctx->grants = list_copy(tenant_grants(ctx->tenant.id));
	if (claim_grant != NULL)
		ctx->grants = lappend(ctx->grants, claim_grant);
}

/*
 * Operators are recognised on every call, not cached: superuser_arg() and
 * has_privs_of_role() keep their own caches, which follow ALTER ROLE and
 * GRANT at once.
 */
static bool
role_is_operator(Oid role)
{
	return superuser_arg(role) || has_privs_of_role(role, extension_owner());
}

/*
 * The context of the current caller. What it reads from the catalog is built
 * again only when what it depends on changed.
 */
static const CallerContext *
caller_context(void)
{
	static const CallerContext operator_context = {.operator = true};
	Oid			caller = queue_ext_caller();
	const char *claims = NULL;
	uint64		generation = security_catalog_generation();
	MemoryContext old;

	if (authenticated_key() == NULL && role_is_operator(caller))
		return &operator_context;
	if (authenticated_key() == NULL && gateway_role(GetSessionUserId(), NULL, NULL))
	{
		claims = GetConfigOption("request.jwt.claims", true, false);
		if (claims != NULL && claims[0] == '\0')
			claims = NULL;
	}

	if (cached_valid &&
		cached_key.caller == caller &&
		cached_key.session_user == GetSessionUserId() &&
		cached_key.key_serial == authenticated_key_serial() &&
		cached_key.security_generation == generation &&
		(claims == NULL ? cached_key.claims == NULL :
		 cached_key.claims != NULL && strcmp(claims, cached_key.claims) == 0))
		return &cached_context;

	cached_valid = false;
	MemoryContextReset(tenancy_cxt);
	old = MemoryContextSwitchTo(tenancy_cxt);
	cached_key.caller = caller;
	cached_key.session_user = GetSessionUserId();
	cached_key.key_serial = authenticated_key_serial();
	cached_key.security_generation = generation;
	cached_key.claims = claims ? pstrdup(claims) : NULL;
	PG_TRY();
	{
		caller_context_build(&cached_context, caller, claims);
	}
	PG_FINALLY();
	{
		MemoryContextSwitchTo(old);
	}
	PG_END_TRY();
	cached_valid = true;
	return &cached_context;
}

/* ---- the checks ---- */

static void
reject_suspended(const CallerContext *ctx)
{
	if (ctx->tenant.id != 0 && !ctx->tenant.active)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("tenant \"%s\" is suspended", ctx->tenant.slug),
				 errhint("An operator reactivates it with pgmq.set_tenant_status().")));
}

static bool
grant_applies(const TenantGrant *grant)
{
	return !OidIsValid(grant->grantee) || has_privs_of_role(queue_ext_caller(), grant->grantee);
}

/* Permissions the caller has on a queue of its own tenant (or an operator queue, without tenant). */
static int
caller_permissions(const CallerContext *ctx, QueueEntry *queue)
{
	const char *lower = queue->names.queue_table + 2;	/* after "q_" */
	int			bits = 0;
	ListCell   *lc;

	if (ctx->key != NULL)
	{
		if (ctx->key->queues != NIL)
		{
			bool		listed = false;

			foreach(lc, ctx->key->queues)
				listed |= strcmp(lfirst(lc), lower) == 0;
			if (!listed)
				return 0;
		}
		return ctx->key->scopes;
	}

	foreach(lc, ctx->grants)
	{
		TenantGrant *grant = lfirst(lc);

		if ((grant->queue == NULL || strcmp(grant->queue, lower) == 0) &&
			grant_applies(grant))
			bits |= grant->permissions;
	}
	/* pgmq's model for operator queues: privileges on the queue table. */
	if (queue->tenant_id == 0)
	{
		Oid			caller = queue_ext_caller();

		if (pg_class_ownercheck(queue->queue_relid, caller))
			bits |= PERM_PUBLISH | PERM_CONSUME | PERM_MANAGE;
		if (pg_class_aclcheck(queue->queue_relid, caller, ACL_INSERT) == ACLCHECK_OK)
			bits |= PERM_PUBLISH;
		if (pg_class_aclcheck(queue->queue_relid, caller, ACL_UPDATE) == ACLCHECK_OK)
			bits |= PERM_CONSUME;
		if (pg_class_aclcheck(queue->queue_relid, caller, ACL_SELECT) == ACLCHECK_OK)
			bits |= PERM_VIEW;
	}
	return bits;
}

/* True when the queue belongs to the caller's tenant (or both have none). */
static bool
queue_in_caller_tenant(const CallerContext *ctx, QueueEntry *queue)
{
	return ctx->operator || queue->tenant_id == ctx->tenant.id;
}

void
queue_not_found(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_TABLE),
			 errmsg("queue \"%s\" does not exist", name),
			 errhint("Create it with pgmq.create().")));
}

/*
 * Raises unless the caller may do what need says to the queue. A queue of
 * another tenant gets the error of a queue that does not exist.
 */
void
queue_check_access(QueueEntry *queue, QueueRequirement need)
{
	const CallerContext *ctx;
	int			bits;

	if (need == NEED_NOTHING)
		return;
	ctx = caller_context();
	if (ctx->operator)
		return;
	reject_suspended(ctx);
	if (!queue_in_caller_tenant(ctx, queue))
		queue_not_found(queue->names.name);
	if (need == NEED_OPERATOR)
		require_operator("this");
	bits = caller_permissions(ctx, queue);
	if ((bits & requirement_bits(need)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for queue \"%s\"", queue->names.name),
				 errdetail("The %s permission is needed.", requirement_name(need)),
				 errhint(ctx->key != NULL ? "Use an API key with that scope for this queue." :
						 "An operator or a manager of the queue grants it with pgmq.grant_queue().")));
}

/* True when the queue belongs to a tenant other than the caller's: it must look as if it did not exist. */
bool
queue_hidden_from_caller(QueueEntry *queue)
{
	return !queue_in_caller_tenant(caller_context(), queue);
}

/*
 * True when the caller holds any of the permissions in bits on the queue
 * (operators hold all); a queue of another tenant, or any queue of a
 * suspended tenant, holds none.
 */
static bool
caller_holds(QueueEntry *queue, int bits)
{
	const CallerContext *ctx = caller_context();

	if (ctx->operator)
		return true;
	if (ctx->tenant.id != 0 && !ctx->tenant.active)
		return false;
	return queue_in_caller_tenant(ctx, queue) && (caller_permissions(ctx, queue) & bits) != 0;
}

/* Readable: consume or manage, which show messages (publish alone does not). */
#define PERMS_READ (PERM_CONSUME | PERM_MANAGE | PERM_VIEW)
#define PERMS_ANY (PERM_PUBLISH | PERM_CONSUME | PERM_MANAGE | PERM_VIEW)

/* True when the caller may see the queue at all (row-level security, listings). */
bool
queue_visible_to_caller(QueueEntry *queue)
{
	return caller_holds(queue, PERMS_ANY);
}

bool
caller_is_operator(void)
{
	return caller_context()->operator;
}

void
require_operator(const char *what)
{
	if (!caller_is_operator())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only an operator may call %s", what),
				 errdetail("Operators are superusers and roles with the privileges of the extension owner.")));
}

/* The tenant new queues and keys of the caller belong to (id 0: none). Raises for a suspended one. */
const Tenant *
caller_tenant(void)
{
	const CallerContext *ctx = caller_context();

	reject_suspended(ctx);
	return &ctx->tenant;
}

/* The prefix of the key the caller acts with, or NULL. */
const char *
caller_key_prefix(void)
{
	const CallerContext *ctx = caller_context();

	return ctx->key != NULL ? ctx->key->prefix : NULL;
}

/*
 * May the caller manage its whole tenant (make queues and keys)? A key needs
 * the manage scope and no list of queues; a role, manage on all of the
 * tenant's queues.
 */
bool
caller_manages_tenant(void)
{
	const CallerContext *ctx = caller_context();
	ListCell   *lc;

	if (ctx->operator)
		return true;
	reject_suspended(ctx);
	if (ctx->tenant.id == 0)
		return false;
	if (ctx->key != NULL)
		return (ctx->key->scopes & PERM_MANAGE) != 0 && ctx->key->queues == NIL;
	foreach(lc, ctx->grants)
	{
		TenantGrant *grant = lfirst(lc);

		if (grant->queue == NULL && (grant->permissions & PERM_MANAGE) != 0 &&
			grant_applies(grant))
			return true;
	}
	return false;
}

/*
 * May the caller create a queue of this name (in its tenant, if it has one)?
 * Operators and managers of the tenant may, and a key with the manage scope
 * that lists the name. A caller without tenant may not: in pgmq, CREATE on
 * schema pgmq was enough, but queue_ext runs as the owner, and CREATE there
 * would let a role plant objects the owner uses.
 */
void
check_may_create_queue(const char *name)
{
	const CallerContext *ctx = caller_context();
	bool		allowed = false;
	ListCell   *lc;

	if (ctx->operator)
		return;
	reject_suspended(ctx);
	if (ctx->key != NULL && ctx->key->queues != NIL && (ctx->key->scopes & PERM_MANAGE) != 0)
	{
		char	   *lower = queue_name_lower(name);

		foreach(lc, ctx->key->queues)
			allowed |= strcmp(lfirst(lc), lower) == 0;
	}
	else if (ctx->tenant.id != 0)
		allowed = caller_manages_tenant();
	if (!allowed)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to create queue \"%s\"", name),
				 errdetail(ctx->tenant.id != 0 ?
						   "Creating a tenant's queue needs the manage permission on all of its queues." :
						   "Queues without a tenant are made by operators.")));
}

PG_FUNCTION_INFO_V1(queue_ext_queue_visible);
PG_FUNCTION_INFO_V1(queue_ext_queue_readable);
PG_FUNCTION_INFO_V1(queue_ext_tenant_visible);
PG_FUNCTION_INFO_V1(queue_ext_caller_may);
PG_FUNCTION_INFO_V1(queue_ext_current_tenant);

/* The queue named by argument 0 holds any of bits for the caller; a name that is no queue, for operators only. */
static bool
queue_test_arg(FunctionCallInfo fcinfo, int bits)
{
	QueueEntry *queue = PG_ARGISNULL(0) ? NULL : queue_find(text_to_cstring(PG_GETARG_TEXT_PP(0)));

	return queue == NULL ? caller_is_operator() : caller_holds(queue, bits);
}

/*
 * queue_visible(queue_name) -> boolean: the row-level security test of
 * catalog rows. Runs as the querying role, not as the owner.
 */
Datum
queue_ext_queue_visible(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(queue_test_arg(fcinfo, PERMS_ANY));
}

/* queue_readable(queue_name) -> boolean: the row-level security test of queue and archive rows. */
Datum
queue_ext_queue_readable(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(queue_test_arg(fcinfo, PERMS_READ));
}

/*
 * tenant_visible(tenant_id) -> boolean: the row-level security test of rows
 * that belong to a tenant (keys, audit records, grants); rows of no tenant
 * are for operators only.
 */
Datum
queue_ext_tenant_visible(PG_FUNCTION_ARGS)
{
	const CallerContext *ctx = caller_context();

	if (ctx->operator)
		PG_RETURN_BOOL(true);
	if (ctx->tenant.id != 0 && !ctx->tenant.active)
		PG_RETURN_BOOL(false);
	/* Rows of no tenant are the operators' (their audit records, grants on their queues). */
	PG_RETURN_BOOL(!PG_ARGISNULL(0) && PG_GETARG_INT64(0) == ctx->tenant.id);
}

/* _caller_may(queue_name, permission) -> boolean: for SQL functions that act on many queues. */
Datum
queue_ext_caller_may(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(queue_test_arg(fcinfo, permission_bit(text_to_cstring(PG_GETARG_TEXT_PP(1)))));
}

/* current_tenant() -> text: the slug of the caller's tenant, NULL without one. */
Datum
queue_ext_current_tenant(PG_FUNCTION_ARGS)
{
	const CallerContext *ctx = caller_context();

	if (ctx->tenant.id == 0)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(ctx->tenant.slug));
}
