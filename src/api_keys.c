/*
 * api_keys.c
 *	  API keys: made with libsodium's CSPRNG, stored only as a keyed hash,
 *	  verified in constant time, and the key a transaction authenticated with.
 *
 * A key reads qx_<prefix>_<secret>: the prefix (12 hex digits) finds its row,
 * the secret is 32 random bytes in URL-safe base64. pgmq.api_keys keeps the
 * BLAKE2b hash (crypto_generichash) of the whole key under a 32-byte server
 * secret held in pgmq.api_key_secret, which only the extension owner can
 * read and which pg_dump dumps with the extension's configuration, so keys
 * survive a dump and restore. The secret is made on first use, not by the
 * install script: a restore must bring back the old one, not meet a new one.
 *
 * authenticate(key) sets the key for the rest of the transaction in backend
 * memory (tenancy.c reads it); nothing a session can SET changes it. It is
 * forgotten at the end of the transaction, and when the subtransaction that
 * authenticated is rolled back. A wrong, malformed, revoked or expired key, or
 * one of a suspended tenant, gets one and the same error.
 *
 * Rows read by prefix are cached per backend until the security catalog
 * changes (security_catalog.c's invalidation); prefixes without a row are
 * not, so random keys cannot grow the cache. Verification still hashes the
 * key every time. Last use is recorded at most once a minute per key and
 * backend, skipping a row another session is updating.
 */
#include "queue_ext.h"

#include <sodium.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#define KEY_TAG "qx_"
#define KEY_PREFIX_BYTES 6
#define KEY_SECRET_BYTES 32
#define KEY_HASH_BYTES 32
#define SERVER_SECRET_BYTES 32
#define KEY_SECRET_CHARS 43		/* URL-safe base64 of 32 bytes, no padding */
#define KEY_LENGTH (3 + KEY_PREFIX_LEN + 1 + KEY_SECRET_CHARS)
#define LAST_USE_INTERVAL_US (60 * USECS_PER_SEC)

typedef struct CachedKey
{
	char		prefix[KEY_PREFIX_LEN + 1];
	bool		exists;
	int64		key_id;
	int64		tenant_id;
	unsigned char hash[KEY_HASH_BYTES];
	int			scopes;
	List	   *queues;			/* lowercased names; NIL: every queue of the tenant */
	bool		revoked;
	bool		has_expiry;
	TimestampTz expires_at;
	TimestampTz last_use_recorded;
} CachedKey;

static MemoryContext key_cxt = NULL;	/* the cache and everything its entries point to */
static HTAB *key_cache = NULL;
static bool key_cache_stale = false;
static unsigned char server_secret[SERVER_SECRET_BYTES];
static bool server_secret_loaded = false;

static AuthenticatedKey current_key;
static bool current_key_set = false;
static int	current_key_level = 0;	/* transaction nest level of the authenticate() */
static uint64 current_key_serial = 1;
static SPIPlanPtr lookup_plan = NULL;
static SPIPlanPtr last_use_plan = NULL;

const AuthenticatedKey *
authenticated_key(void)
{
	return current_key_set ? &current_key : NULL;
}

uint64
authenticated_key_serial(void)
{
	return current_key_serial;
}

static void
forget_current_key(void)
{
	if (current_key_set)
	{
		current_key_set = false;
		current_key_serial++;
	}
}

static void
api_keys_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
		forget_current_key();
}

static void
api_keys_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						  SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB && current_key_set &&
		current_key_level >= GetCurrentTransactionNestLevel())
		forget_current_key();
}

void
api_keys_init(void)
{
	key_cxt = AllocSetContextCreate(TopMemoryContext, "queue_ext API keys", ALLOCSET_SMALL_SIZES);
	RegisterXactCallback(api_keys_xact_callback, NULL);
	RegisterSubXactCallback(api_keys_subxact_callback, NULL);
}

/* From security_catalog.c's invalidation: only flags, callbacks must not free memory in use. */
void
api_key_cache_invalidate(void)
{
	key_cache_stale = true;
	server_secret_loaded = false;
}

static HTAB *
key_cache_get(void)
{
	HASHCTL		ctl;

	if (key_cache != NULL && !key_cache_stale)
		return key_cache;
	/* The authenticated key keeps its own copy of the queue list (current_key.queues). */
	MemoryContextReset(key_cxt);
	ctl.keysize = KEY_PREFIX_LEN + 1;
	ctl.entrysize = sizeof(CachedKey);
	ctl.hcxt = key_cxt;
	key_cache = hash_create("queue_ext API key cache", 64, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	key_cache_stale = false;
	return key_cache;
}

/* ---- the server secret ---- */

static bool
secret_row(const Datum *values, const bool *nulls, void *arg)
{
	bytea	   *secret;

	if (nulls[0])
		return false;
	secret = DatumGetByteaPP(values[0]);
	if (VARSIZE_ANY_EXHDR(secret) != SERVER_SECRET_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the API key secret in pgmq.api_key_secret has the wrong length")));
	memcpy(server_secret, VARDATA_ANY(secret), SERVER_SECRET_BYTES);
	server_secret_loaded = true;
	return true;
}

/* Loads the server secret; makes it first when create is true and there is none. SPI is connected. */
static bool
load_server_secret(bool create)
{
	static const char *const columns[] = {"secret"};

	if (server_secret_loaded)
		return true;
	(void) catalog_scan("api_key_secret", columns, 1, secret_row, NULL);
	if (!server_secret_loaded && create)
	{
		unsigned char fresh[SERVER_SECRET_BYTES];
		bytea	   *value = palloc(VARHDRSZ + SERVER_SECRET_BYTES);
		Oid			argtypes[1] = {BYTEAOID};
		Datum		values[1];

		randombytes_buf(fresh, sizeof(fresh));
		SET_VARSIZE(value, VARHDRSZ + SERVER_SECRET_BYTES);
		memcpy(VARDATA(value), fresh, SERVER_SECRET_BYTES);
		sodium_memzero(fresh, sizeof(fresh));
		values[0] = PointerGetDatum(value);
		/* Two sessions making their first key at once: one secret wins, both use it. */
		if (SPI_execute_with_args("INSERT INTO pgmq.api_key_secret (secret) VALUES ($1) "
								  "ON CONFLICT DO NOTHING",
								  1, argtypes, values, NULL, false, 0) != SPI_OK_INSERT)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not store the API key secret")));
		CommandCounterIncrement();
		(void) catalog_scan("api_key_secret", columns, 1, secret_row, NULL);
	}
	return server_secret_loaded;
}

static void
key_hash(const char *key, unsigned char *out)
{
	if (crypto_generichash(out, KEY_HASH_BYTES, (const unsigned char *) key, strlen(key),
						   server_secret, SERVER_SECRET_BYTES) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not hash an API key")));
}

/* ---- authenticate ---- */

static void
invalid_key(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("invalid API key"),
			 errhint("Check the key, or ask for a new one.")));
}

/* Splits qx_<prefix>_<secret>; false when the key does not have that shape. */
static bool
key_prefix_of(const char *key, char *prefix)
{
	if (strlen(key) != KEY_LENGTH || strncmp(key, KEY_TAG, 3) != 0 || key[3 + KEY_PREFIX_LEN] != '_')
		return false;
	for (int i = 0; i < KEY_PREFIX_LEN; i++)
	{
		char		c = key[3 + i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	memcpy(prefix, key + 3, KEY_PREFIX_LEN);
	prefix[KEY_PREFIX_LEN] = '\0';
	return true;
}

static List *
queue_list_copy(Datum array, MemoryContext cxt)
{
	ArrayType  *arr = DatumGetArrayTypeP(array);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	List	   *out = NIL;
	MemoryContext old;

	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	old = MemoryContextSwitchTo(cxt);
	for (int i = 0; i < n; i++)
		if (!nulls[i])
			out = lappend(out, queue_name_lower(TextDatumGetCString(elems[i])));
	MemoryContextSwitchTo(old);
	return out;
}

/* The row of a prefix, from the cache or pgmq.api_keys. SPI is connected, as the owner. */
static CachedKey *
key_row(const char *prefix)
{
	HTAB	   *cache = key_cache_get();
	CachedKey  *entry;
	bool		found;
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	bool		isnull;
	HeapTuple	row;
	TupleDesc	desc;

	entry = hash_search(cache, prefix, HASH_FIND, NULL);
	if (entry != NULL)
		return entry;

	if (lookup_plan == NULL)
		lookup_plan = spi_prepare_kept("SELECT key_id, tenant_id, key_hash, scopes, queues, "
									   "revoked_at IS NOT NULL, expires_at "
									   "FROM pgmq.api_keys WHERE prefix OPERATOR(pg_catalog.=) $1",
									   1, argtypes);
	values[0] = CStringGetTextDatum(prefix);
	if (SPI_execute_plan(lookup_plan, values, NULL, true, 1) != SPI_OK_SELECT)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not look up an API key")));

	if (SPI_processed == 0)
	{
		/* Not cached: random prefixes from anyone must not grow the cache. */
		static CachedKey missing;

		memset(&missing, 0, sizeof(missing));
		return &missing;
	}
	entry = hash_search(cache, prefix, HASH_ENTER, &found);
	memset((char *) entry + sizeof(entry->prefix), 0, sizeof(CachedKey) - sizeof(entry->prefix));

	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	entry->key_id = DatumGetInt64(SPI_getbinval(row, desc, 1, &isnull));
	entry->tenant_id = DatumGetInt64(SPI_getbinval(row, desc, 2, &isnull));
	{
		bytea	   *hash = DatumGetByteaPP(SPI_getbinval(row, desc, 3, &isnull));

		if (!isnull && VARSIZE_ANY_EXHDR(hash) == KEY_HASH_BYTES)
			memcpy(entry->hash, VARDATA_ANY(hash), KEY_HASH_BYTES);
		else
			return entry;		/* a damaged row matches no key */
	}
	{
		Datum		scopes = SPI_getbinval(row, desc, 4, &isnull);

		entry->scopes = isnull ? 0 : permission_bits(scopes);
	}
	{
		Datum		queues = SPI_getbinval(row, desc, 5, &isnull);

		entry->queues = isnull ? NIL : queue_list_copy(queues, key_cxt);
	}
	entry->revoked = DatumGetBool(SPI_getbinval(row, desc, 6, &isnull));
	{
		Datum		expires = SPI_getbinval(row, desc, 7, &isnull);

		entry->has_expiry = !isnull;
		entry->expires_at = isnull ? 0 : DatumGetTimestampTz(expires);
	}
	entry->exists = true;
	return entry;
}

/* Records the key's last use, at most once a minute per backend, never waiting for a row lock. */
static void
record_last_use(CachedKey *entry, TimestampTz now)
{
	Oid			argtypes[2] = {INT8OID, TIMESTAMPTZOID};
	Datum		values[2];

	if (XactReadOnly || now - entry->last_use_recorded < LAST_USE_INTERVAL_US)
		return;
	if (last_use_plan == NULL)
		last_use_plan = spi_prepare_kept("UPDATE pgmq.api_keys SET last_used_at = $2 "
										 "WHERE key_id OPERATOR(pg_catalog.=) ("
										 " SELECT key_id FROM pgmq.api_keys WHERE key_id OPERATOR(pg_catalog.=) $1"
										 " AND (last_used_at IS NULL OR last_used_at OPERATOR(pg_catalog.<) "
										 "      ($2 OPERATOR(pg_catalog.-) interval '1 minute'))"
										 " FOR UPDATE SKIP LOCKED)",
										 2, argtypes);
	values[0] = Int64GetDatum(entry->key_id);
	values[1] = TimestampTzGetDatum(now);
	if (SPI_execute_plan(last_use_plan, values, NULL, false, 0) != SPI_OK_UPDATE)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not record the use of an API key")));
	entry->last_use_recorded = now;
}

static void
authenticate_key(const char *key)
{
	char		prefix[KEY_PREFIX_LEN + 1];
	unsigned char hash[KEY_HASH_BYTES];
	CachedKey  *entry;
	TimestampTz now = GetCurrentTimestamp();
	Tenant		tenant;
	bool		ok;
	MemoryContext old;

	spi_connect_or_error();
	if (!key_prefix_of(key, prefix) || !load_server_secret(false))
		invalid_key();
	entry = key_row(prefix);
	key_hash(key, hash);
	/* Compare even for a missing row, so a missing prefix takes as long as a wrong secret. */
	ok = sodium_memcmp(hash, entry->hash, KEY_HASH_BYTES) == 0;
	sodium_memzero(hash, sizeof(hash));
	if (!ok || !entry->exists || entry->revoked ||
		(entry->has_expiry && entry->expires_at <= now) ||
		!tenant_find(NULL, entry->tenant_id, &tenant) || !tenant.active)
		invalid_key();

	record_last_use(entry, now);
	SPI_finish();

	forget_current_key();
	if (current_key.queues != NIL)
		list_free_deep(current_key.queues);
	current_key.key_id = entry->key_id;
	current_key.tenant_id = entry->tenant_id;
	strlcpy(current_key.prefix, prefix, sizeof(current_key.prefix));
	current_key.scopes = entry->scopes;
	old = MemoryContextSwitchTo(TopMemoryContext);
	current_key.queues = NIL;
	{
		ListCell   *lc;

		foreach(lc, entry->queues)
			current_key.queues = lappend(current_key.queues, pstrdup(lfirst(lc)));
	}
	MemoryContextSwitchTo(old);
	current_key_level = GetCurrentTransactionNestLevel();
	current_key_set = true;
	current_key_serial++;
}

/* authenticate(key text) -> text: the key's tenant, for the rest of the transaction */
QUEUE_EXT_ENTRY(queue_ext_authenticate)
{
	if (PG_ARGISNULL(0))
		invalid_key();
	authenticate_key(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_TEXT_P(cstring_to_text(caller_tenant()->slug));
}

/* ---- create and revoke ---- */

/* The caller may hand out keys of this tenant with these scopes. */
static void
check_may_manage_keys(const Tenant *tenant, int scopes)
{
	const AuthenticatedKey *key = authenticated_key();
	const Tenant *own;

	if (key == NULL && caller_is_operator())
		return;
	own = caller_tenant();
	if (own->id != tenant->id)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to manage API keys of tenant \"%s\"", tenant->slug)));
	if (!caller_manages_tenant())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to manage API keys of tenant \"%s\"", tenant->slug),
				 errdetail("Managing keys needs the manage permission on all of the tenant's queues.")));
	if (key != NULL && (scopes & ~key->scopes) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("an API key cannot make a key with scopes it does not have")));
}

static void
tenant_arg(FunctionCallInfo fcinfo, int argno, Tenant *out)
{
	char	   *slug;

	reject_null_arg(fcinfo, argno, "tenant");
	slug = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (!tenant_find(slug, 0, out))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("tenant \"%s\" does not exist", slug)));
}

/*
 * create_api_key(tenant, name, scopes, queues, expires_at) -> text: the key,
 * shown this once.
 */
QUEUE_EXT_ENTRY(queue_ext_create_api_key)
{
	Tenant		tenant;
	char	   *name;
	int			scopes;
	unsigned char prefix_bytes[KEY_PREFIX_BYTES];
	unsigned char secret_bytes[KEY_SECRET_BYTES];
	char		prefix[KEY_PREFIX_LEN + 1];
	char		secret[KEY_SECRET_CHARS + 1];
	char	   *key;
	text	   *result;
	unsigned char hash[KEY_HASH_BYTES];
	bytea	   *hash_value;
	Oid			argtypes[7] = {INT8OID, TEXTOID, TEXTOID, BYTEAOID, TEXTARRAYOID, TEXTARRAYOID, TIMESTAMPTZOID};
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

	tenant_arg(fcinfo, 0, &tenant);
	reject_null_arg(fcinfo, 1, "name");
	name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (name[0] == '\0' || strlen(name) > 200)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an API key's name must have 1 to 200 bytes")));
	reject_null_arg(fcinfo, 2, "scopes");
	scopes = permission_bits(PG_GETARG_DATUM(2));
	if (scopes == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an API key needs at least one scope"),
				 errhint("Scopes are publish, consume and manage.")));
	if (!PG_ARGISNULL(3))
	{
		ArrayType  *queues = PG_GETARG_ARRAYTYPE_P(3);
		Datum	   *elems;
		bool	   *elem_nulls;
		int			n;

		reject_multidimensional(queues, "queues");
		deconstruct_array(queues, TEXTOID, -1, false, TYPALIGN_INT, &elems, &elem_nulls, &n);
		for (int i = 0; i < n; i++)
		{
			if (elem_nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("a queue in an API key's list must not be NULL")));
			queue_name_check_chars(TextDatumGetCString(elems[i]));
			queue_name_check_length(TextDatumGetCString(elems[i]));
		}
	}
	if (!PG_ARGISNULL(4) && PG_GETARG_TIMESTAMPTZ(4) <= GetCurrentTimestamp())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an API key's expiry must be in the future")));
	check_may_manage_keys(&tenant, scopes);

	/* Made before connecting: the key is returned after SPI_finish frees SPI's memory. */
	randombytes_buf(prefix_bytes, sizeof(prefix_bytes));
	randombytes_buf(secret_bytes, sizeof(secret_bytes));
	sodium_bin2hex(prefix, sizeof(prefix), prefix_bytes, sizeof(prefix_bytes));
	sodium_bin2base64(secret, sizeof(secret), secret_bytes, sizeof(secret_bytes),
					  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(secret_bytes, sizeof(secret_bytes));
	key = psprintf(KEY_TAG "%s_%s", prefix, secret);
	sodium_memzero(secret, sizeof(secret));

	spi_connect_or_error();
	(void) load_server_secret(true);
	key_hash(key, hash);
	hash_value = palloc(VARHDRSZ + KEY_HASH_BYTES);
	SET_VARSIZE(hash_value, VARHDRSZ + KEY_HASH_BYTES);
	memcpy(VARDATA(hash_value), hash, KEY_HASH_BYTES);

	values[0] = Int64GetDatum(tenant.id);
	values[1] = CStringGetTextDatum(name);
	values[2] = CStringGetTextDatum(prefix);
	values[3] = PointerGetDatum(hash_value);
	values[4] = PG_GETARG_DATUM(2);
	values[5] = PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3);
	nulls[5] = PG_ARGISNULL(3) ? 'n' : ' ';
	values[6] = PG_ARGISNULL(4) ? (Datum) 0 : PG_GETARG_DATUM(4);
	nulls[6] = PG_ARGISNULL(4) ? 'n' : ' ';
	if (SPI_execute_with_args("INSERT INTO pgmq.api_keys "
							  "(tenant_id, name, prefix, key_hash, scopes, queues, expires_at) "
							  "VALUES ($1, $2, $3, $4, $5, $6, $7)",
							  7, argtypes, values, nulls, false, 0) != SPI_OK_INSERT)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not store the API key")));
	SPI_finish();
	audit_record("api key created", tenant.id, NULL, psprintf("{\"key_prefix\": \"%s\"}", prefix));
	result = cstring_to_text(key);
	sodium_memzero(key, strlen(key));
	PG_RETURN_TEXT_P(result);
}

/* revoke_api_key(prefix text) -> boolean: false when the key was already revoked */
QUEUE_EXT_ENTRY(queue_ext_revoke_api_key)
{
	char	   *prefix;
	CachedKey  *entry;
	Tenant		tenant;
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1];
	bool		changed;

	reject_null_arg(fcinfo, 0, "prefix");
	prefix = text_to_cstring(PG_GETARG_TEXT_PP(0));
	spi_connect_or_error();
	entry = strlen(prefix) == KEY_PREFIX_LEN ? key_row(prefix) : NULL;
	if (entry == NULL || !entry->exists ||
		!tenant_find(NULL, entry->tenant_id, &tenant) ||
		(!caller_is_operator() && caller_tenant()->id != tenant.id))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("API key \"%s\" does not exist", prefix)));
	check_may_manage_keys(&tenant, 0);
	values[0] = Int64GetDatum(entry->key_id);
	if (SPI_execute_with_args("UPDATE pgmq.api_keys SET revoked_at = pg_catalog.now() "
							  "WHERE key_id OPERATOR(pg_catalog.=) $1 AND revoked_at IS NULL",
							  1, argtypes, values, NULL, false, 0) != SPI_OK_UPDATE)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not revoke the API key")));
	changed = SPI_processed > 0;
	SPI_finish();
	if (changed)
		audit_record("api key revoked", tenant.id, NULL, psprintf("{\"key_prefix\": \"%s\"}", prefix));
	PG_RETURN_BOOL(changed);
}

/*
 * pre_request(): for a PostgREST-style gateway's db-pre-request. Reads the
 * key from the request's x-api-key header (request.headers; PostgREST
 * lowercases header names) and authenticates it; without the header it does
 * nothing, and the request goes on with its role and claims.
 */
QUEUE_EXT_ENTRY(queue_ext_pre_request)
{
	const char *headers = GetConfigOption("request.headers", true, false);
	Jsonb	   *jb;
	JsonbValue	value;

	if (headers == NULL || headers[0] == '\0')
		PG_RETURN_VOID();
	jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(headers)));
	if (!JB_ROOT_IS_OBJECT(jb) ||
		getKeyJsonValueFromContainer(&jb->root, "x-api-key", strlen("x-api-key"), &value) == NULL)
		PG_RETURN_VOID();
	if (value.type != jbvString)
		invalid_key();
	authenticate_key(pnstrdup(value.val.string.val, value.val.string.len));
	PG_RETURN_VOID();
}
