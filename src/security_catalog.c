/*
 * security_catalog.c
 *	  The security catalog (tenants, queue tenants, tenant roles, gateway
 *	  roles, grants) as this backend last read it, in hash tables.
 *
 * tenancy.c asks who a role, a gateway or a JWT claim acts for on every call
 * that is not an operator's, and an edge function's request authenticates
 * anew each time: a scan of pgmq.tenants per request would grow with the
 * number of tenants. So each table is read whole, once per change of the
 * security catalog, and every lookup after that is a hash probe. Rate limits
 * and tenant quotas are read the same way: the send and read paths consult
 * them on every call.
 *
 * A change to any of these tables (statement triggers call
 * pgmq._security_changed()) sends a relcache invalidation for pgmq.tenants;
 * every backend takes it as "read everything again" and lets the queue cache
 * and the API key cache know. The tables are read directly with the latest
 * snapshot, as PostgreSQL reads its own catalogs: no privilege check and no
 * row-level security, which calls back into tenancy.c.
 */
#include "queue_ext.h"

#include <math.h>

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

typedef struct TenantById
{
	int64		id;
	Tenant		tenant;
} TenantById;

typedef struct TenantBySlug
{
	char		slug[TENANT_SLUG_MAX + 1];
	int64		id;
} TenantBySlug;

typedef struct QueueTenant
{
	char		queue[QUEUE_NAME_MAX_LEN + 1];	/* lowercased */
	int64		tenant_id;
} QueueTenant;

typedef struct RoleTenant
{
	Oid			role;
	int64		tenant_id;
} RoleTenant;

typedef struct GatewayRole
{
	Oid			role;
	Datum		claim_path;		/* text[] */
	int			permissions;
} GatewayRole;

/* The rate limits of one target: a tenant, an API key or a queue. */
typedef struct LimitTarget
{
	int32		scope;			/* RateScope */
	int64		id;				/* tenant or key id; 0 for a queue */
	char		queue[QUEUE_NAME_MAX_LEN + 1];	/* lowercased; zeros otherwise */
} LimitTarget;

typedef struct TargetLimits
{
	LimitTarget target;
	bool		has[RATE_ACTIONS];
	RateLimit	limits[RATE_ACTIONS];
} TargetLimits;

typedef struct TenantQuota
{
	int64		tenant_id;
	int64		soft_limit;		/* 0: none */
	int64		hard_limit;		/* 0: none */
} TenantQuota;

typedef struct TenantGrants
{
	int64		tenant_id;		/* 0: grants on operator queues */
	List	   *grants;			/* TenantGrant * */
} TenantGrants;

static MemoryContext snapshot_cxt = NULL;
static HTAB *tenants_by_id = NULL;
static HTAB *tenants_by_slug = NULL;
static HTAB *queue_tenants = NULL;
static HTAB *role_tenants = NULL;
static HTAB *gateway_roles = NULL;
static HTAB *grants_by_tenant = NULL;
static HTAB *limits_by_target = NULL;
static HTAB *limit_ids = NULL;
static HTAB *tenant_quotas = NULL;

static uint64 catalog_generation = 1;	/* bumped by every change */
static uint64 loaded_generation = 0;	/* what the tables hold */
static Oid	sentinel_relid = InvalidOid;	/* pgmq.tenants */

static void
security_catalog_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || (OidIsValid(sentinel_relid) && relid == sentinel_relid))
	{
		/* Maybe dropped with the extension: look both up again. */
		sentinel_relid = InvalidOid;
		extension_owner_forget();
		catalog_generation++;
		queue_cache_invalidate_all();
		api_key_cache_invalidate();
	}
}

void
security_catalog_init(void)
{
	snapshot_cxt = AllocSetContextCreate(TopMemoryContext, "queue_ext security catalog",
										 ALLOCSET_DEFAULT_SIZES);
	CacheRegisterRelcacheCallback(security_catalog_callback, (Datum) 0);
}

/* Changes whenever the security catalog may have changed. */
uint64
security_catalog_generation(void)
{
	if (!OidIsValid(sentinel_relid))
	{
		Oid			nsp = get_namespace_oid(QUEUE_SCHEMA, true);

		if (OidIsValid(nsp))
			sentinel_relid = get_relname_relid("tenants", nsp);
	}
	return catalog_generation;
}

static HTAB *
new_table(const char *name, Size keysize, Size entrysize, bool string_key)
{
	HASHCTL		ctl;

	ctl.keysize = keysize;
	ctl.entrysize = entrysize;
	ctl.hcxt = snapshot_cxt;
	return hash_create(name, 64, &ctl,
					   HASH_ELEM | HASH_CONTEXT | (string_key ? HASH_STRINGS : HASH_BLOBS));
}

static bool
load_tenant(const Datum *values, const bool *nulls, void *arg)
{
	int64		id = DatumGetInt64(values[0]);
	char	   *slug = TextDatumGetCString(values[1]);
	TenantById *by_id;
	TenantBySlug *by_slug;

	if (strlen(slug) > TENANT_SLUG_MAX)
		return false;			/* the table's check constraint keeps these out */
	by_id = hash_search(tenants_by_id, &id, HASH_ENTER, NULL);
	by_id->tenant.id = id;
	strlcpy(by_id->tenant.slug, slug, sizeof(by_id->tenant.slug));
	by_id->tenant.active = !nulls[2] && strcmp(TextDatumGetCString(values[2]), "active") == 0;
	by_slug = hash_search(tenants_by_slug, slug, HASH_ENTER, NULL);
	by_slug->id = id;
	return false;
}

static bool
load_queue_tenant(const Datum *values, const bool *nulls, void *arg)
{
	char	   *lower = queue_name_lower(TextDatumGetCString(values[0]));
	QueueTenant *entry;

	if (strlen(lower) > QUEUE_NAME_MAX_LEN)
		return false;
	entry = hash_search(queue_tenants, lower, HASH_ENTER, NULL);
	entry->tenant_id = DatumGetInt64(values[1]);
	return false;
}

static bool
load_role_tenant(const Datum *values, const bool *nulls, void *arg)
{
	Oid			role = DatumGetObjectId(values[0]);
	RoleTenant *entry = hash_search(role_tenants, &role, HASH_ENTER, NULL);

	entry->tenant_id = DatumGetInt64(values[1]);
	return false;
}

static bool
load_gateway_role(const Datum *values, const bool *nulls, void *arg)
{
	Oid			role = DatumGetObjectId(values[0]);
	GatewayRole *entry = hash_search(gateway_roles, &role, HASH_ENTER, NULL);

	entry->claim_path = nulls[1] ? (Datum) 0 : PointerGetDatum(DatumGetArrayTypePCopy(values[1]));
	entry->permissions = nulls[2] ? 0 : permission_bits(values[2]);
	return false;
}

static bool
load_grant(const Datum *values, const bool *nulls, void *arg)
{
	int64		tenant_id = nulls[0] ? 0 : DatumGetInt64(values[0]);
	TenantGrants *entry;
	TenantGrant *grant;
	bool		found;

	/* A tenant-wide grant (no queue) means nothing outside a tenant. */
	if (nulls[2] || nulls[3] || (nulls[1] && tenant_id == 0))
		return false;
	grant = palloc(sizeof(TenantGrant));
	grant->grantee = DatumGetObjectId(values[2]);
	grant->queue = nulls[1] ? NULL : queue_name_lower(TextDatumGetCString(values[1]));
	grant->permissions = permission_bits(values[3]);
	entry = hash_search(grants_by_tenant, &tenant_id, HASH_ENTER, &found);
	if (!found)
		entry->grants = NIL;
	entry->grants = lappend(entry->grants, grant);
	return false;
}

static bool
load_rate_limit(const Datum *values, const bool *nulls, void *arg)
{
	static const char *const scopes[] = {[RATE_SCOPE_TENANT] = "tenant", [RATE_SCOPE_KEY] = "api_key",
	[RATE_SCOPE_QUEUE] = "queue"};
	static const char *const actions[] = {[RATE_SEND] = "send", [RATE_READ] = "read",
	[RATE_DELIVER] = "deliver"};
	char	   *scope = TextDatumGetCString(values[1]);
	char	   *action = TextDatumGetCString(values[5]);
	Interval   *per = DatumGetIntervalP(values[8]);
	double		per_seconds = (per->time + per->day * (double) USECS_PER_DAY) / USECS_PER_SEC;
	LimitTarget target;
	TargetLimits *entry;
	RateLimit	limit = {0};
	int			act = -1;
	bool		found;

	memset(&target, 0, sizeof(target));
	target.scope = -1;
	for (int i = 0; i < (int) lengthof(scopes); i++)
		if (strcmp(scope, scopes[i]) == 0)
			target.scope = i;
	for (int i = 0; i < (int) lengthof(actions); i++)
		if (strcmp(action, actions[i]) == 0)
			act = i;
	/* The table's constraints keep anything else out. */
	if (target.scope < 0 || act < 0 || per_seconds <= 0)
		return false;
	if (target.scope == RATE_SCOPE_QUEUE)
	{
		char	   *lower = nulls[4] ? "" : queue_name_lower(TextDatumGetCString(values[4]));

		if (strlen(lower) == 0 || strlen(lower) > QUEUE_NAME_MAX_LEN)
			return false;
		strlcpy(target.queue, lower, sizeof(target.queue));
	}
	else if (target.scope == RATE_SCOPE_KEY)
		target.id = nulls[3] ? 0 : DatumGetInt64(values[3]);
	else
		target.id = nulls[2] ? 0 : DatumGetInt64(values[2]);

	limit.limit_id = DatumGetInt64(values[0]);
	limit.scope = target.scope;
	limit.sliding_window = strcmp(TextDatumGetCString(values[6]), "sliding_window") == 0;
	limit.rate = DatumGetFloat8(values[7]) / per_seconds;
	limit.created_at = DatumGetTimestampTz(values[10]);
	limit.rate_per = DatumGetFloat8(values[7]);
	limit.per_seconds = per_seconds;
	limit.capacity = limit.sliding_window ? floor(DatumGetFloat8(values[7])) : DatumGetFloat8(values[9]);

	entry = hash_search(limits_by_target, &target, HASH_ENTER, &found);
	if (!found)
		memset(entry->has, 0, sizeof(entry->has));
	entry->has[act] = true;
	entry->limits[act] = limit;
	{
		char	   *entry = hash_search(limit_ids, &limit.limit_id, HASH_ENTER, NULL);

		*(TimestampTz *) (entry + sizeof(int64)) = limit.created_at;
	}
	return false;
}

static bool
load_tenant_quota(const Datum *values, const bool *nulls, void *arg)
{
	int64		tenant_id = DatumGetInt64(values[0]);
	TenantQuota *entry = hash_search(tenant_quotas, &tenant_id, HASH_ENTER, NULL);

	entry->soft_limit = nulls[1] ? 0 : DatumGetInt64(values[1]);
	entry->hard_limit = nulls[2] ? 0 : DatumGetInt64(values[2]);
	return false;
}

/* Reads the tables again when they changed; an invalidation during the read means reading again. */
static void
security_catalog_load(void)
{
	static const char *const tenant_columns[] = {"tenant_id", "slug", "status"};
	static const char *const queue_columns[] = {"queue_name", "tenant_id"};
	static const char *const role_columns[] = {"role", "tenant_id"};
	static const char *const gateway_columns[] = {"role", "tenant_claim", "permissions"};
	static const char *const grant_columns[] = {"tenant_id", "queue_name", "grantee", "permissions"};
	static const char *const limit_columns[] = {"limit_id", "scope", "tenant_id", "key_id", "queue_name",
	"action", "method", "rate", "per", "burst", "created_at"};
	static const char *const quota_columns[] = {"tenant_id", "soft_limit", "hard_limit"};

	while (loaded_generation != security_catalog_generation())
	{
		uint64		generation = catalog_generation;
		MemoryContext old;

		loaded_generation = 0;
		MemoryContextReset(snapshot_cxt);
		old = MemoryContextSwitchTo(snapshot_cxt);
		PG_TRY();
		{
			tenants_by_id = new_table("queue_ext tenants", sizeof(int64), sizeof(TenantById), false);
			tenants_by_slug = new_table("queue_ext tenant slugs", TENANT_SLUG_MAX + 1, sizeof(TenantBySlug), true);
			queue_tenants = new_table("queue_ext queue tenants", QUEUE_NAME_MAX_LEN + 1, sizeof(QueueTenant), true);
			role_tenants = new_table("queue_ext tenant roles", sizeof(Oid), sizeof(RoleTenant), false);
			gateway_roles = new_table("queue_ext gateway roles", sizeof(Oid), sizeof(GatewayRole), false);
			grants_by_tenant = new_table("queue_ext grants", sizeof(int64), sizeof(TenantGrants), false);
			limits_by_target = new_table("queue_ext rate limits", sizeof(LimitTarget), sizeof(TargetLimits), false);
			limit_ids = new_table("queue_ext rate limit ids", sizeof(int64), sizeof(int64) + sizeof(TimestampTz), false);
			tenant_quotas = new_table("queue_ext tenant quotas", sizeof(int64), sizeof(TenantQuota), false);
			/* Missing tables (before ALTER EXTENSION UPDATE to 0.4.0) read as empty. */
			(void) catalog_scan("tenants", tenant_columns, lengthof(tenant_columns), load_tenant, NULL);
			(void) catalog_scan("queue_tenants", queue_columns, lengthof(queue_columns), load_queue_tenant, NULL);
			(void) catalog_scan("tenant_roles", role_columns, lengthof(role_columns), load_role_tenant, NULL);
			(void) catalog_scan("gateway_roles", gateway_columns, lengthof(gateway_columns), load_gateway_role, NULL);
			(void) catalog_scan("queue_grants", grant_columns, lengthof(grant_columns), load_grant, NULL);
			/* Missing before 0.5.0. */
			(void) catalog_scan("rate_limits", limit_columns, lengthof(limit_columns), load_rate_limit, NULL);
			(void) catalog_scan("tenant_quotas", quota_columns, lengthof(quota_columns), load_tenant_quota, NULL);
		}
		PG_FINALLY();
		{
			MemoryContextSwitchTo(old);
		}
		PG_END_TRY();
		loaded_generation = generation;
	}
}

/* Finds a tenant by slug (when slug is given) or id; false when there is none. */
bool
tenant_find(const char *slug, int64 id, Tenant *out)
{
	TenantById *entry;

	security_catalog_load();
	memset(out, 0, sizeof(Tenant));
	if (slug != NULL)
	{
		TenantBySlug *by_slug;

		if (strlen(slug) > TENANT_SLUG_MAX)
			return false;
		by_slug = hash_search(tenants_by_slug, slug, HASH_FIND, NULL);
		if (by_slug == NULL)
			return false;
		id = by_slug->id;
	}
	entry = hash_search(tenants_by_id, &id, HASH_FIND, NULL);
	if (entry == NULL)
		return false;
	*out = entry->tenant;
	return true;
}

/* The tenant owning the queue; 0 for an operator's queue. */
int64
queue_tenant_load(const char *name)
{
	char	   *lower = queue_name_lower(name);
	QueueTenant *entry;

	security_catalog_load();
	if (strlen(lower) > QUEUE_NAME_MAX_LEN)
		return 0;
	entry = hash_search(queue_tenants, lower, HASH_FIND, NULL);
	return entry != NULL ? entry->tenant_id : 0;
}

/* The tenant a role acts for (pgmq.tenant_roles); 0 for none. */
int64
role_tenant(Oid role)
{
	RoleTenant *entry;

	security_catalog_load();
	entry = hash_search(role_tenants, &role, HASH_FIND, NULL);
	return entry != NULL ? entry->tenant_id : 0;
}

/*
 * Is the role a gateway's login role? If so, where its sessions' claims name
 * the tenant (a text[] path, valid until the catalog changes) and what they
 * may do on the tenant's queues.
 */
bool
gateway_role(Oid role, Datum *claim_path, int *permissions)
{
	GatewayRole *entry;

	security_catalog_load();
	entry = hash_search(gateway_roles, &role, HASH_FIND, NULL);
	if (entry == NULL)
		return false;
	if (claim_path != NULL)
		*claim_path = entry->claim_path;
	if (permissions != NULL)
		*permissions = entry->permissions;
	return true;
}

/* The grants of a tenant (0: on operator queues); valid until the catalog changes. */
List *
tenant_grants(int64 tenant_id)
{
	TenantGrants *entry;

	security_catalog_load();
	entry = hash_search(grants_by_tenant, &tenant_id, HASH_FIND, NULL);
	return entry != NULL ? entry->grants : NIL;
}

/* Whether any rate limit exists: calls skip all limit lookups when none does. */
bool
rate_limits_defined(void)
{
	security_catalog_load();
	return hash_get_num_entries(limits_by_target) > 0;
}

/* The limit of a target (queue_lower for a queue, id otherwise) on an action; NULL for none. */
const RateLimit *
rate_limit_find(RateScope scope, int64 id, const char *queue_lower, RateAction action)
{
	LimitTarget target;
	TargetLimits *entry;

	security_catalog_load();
	memset(&target, 0, sizeof(target));
	target.scope = scope;
	if (scope == RATE_SCOPE_QUEUE)
		strlcpy(target.queue, queue_lower, sizeof(target.queue));
	else
		target.id = id;
	entry = hash_search(limits_by_target, &target, HASH_FIND, NULL);
	return entry != NULL && entry->has[action] ? &entry->limits[action] : NULL;
}

/* Whether this rate limit still exists (its bucket is still needed). */
bool
rate_limit_exists(int64 limit_id, TimestampTz created_at)
{
	char	   *entry;

	security_catalog_load();
	entry = hash_search(limit_ids, &limit_id, HASH_FIND, NULL);
	return entry != NULL && *(TimestampTz *) (entry + sizeof(int64)) == created_at;
}

/* A tenant's monthly quota (0: no such limit); false when it has none. */
bool
tenant_quota_find(int64 tenant_id, int64 *soft_limit, int64 *hard_limit)
{
	TenantQuota *entry;

	security_catalog_load();
	entry = hash_search(tenant_quotas, &tenant_id, HASH_FIND, NULL);
	if (entry == NULL)
		return false;
	*soft_limit = entry->soft_limit;
	*hard_limit = entry->hard_limit;
	return true;
}

PG_FUNCTION_INFO_V1(queue_ext_security_changed);

/* Statement trigger on the security catalog: every backend reads it again. */
Datum
queue_ext_security_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("_security_changed() must be called as a trigger")));
	(void) security_catalog_generation();
	if (OidIsValid(sentinel_relid))
		CacheInvalidateRelcacheByRelid(sentinel_relid);
	return PointerGetDatum(NULL);
}
