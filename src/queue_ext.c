/*
 * queue_ext.c
 *	  Module entry: _PG_init, settings, and the libraries set up once per backend.
 *
 * queue_ext loads anywhere: CREATE EXTENSION works with or without
 * shared_preload_libraries. Features that need shared memory request it only
 * while preloading and say what they do without it.
 */
#include "queue_ext.h"

#include <sodium.h>

#include "utils/guc.h"

PG_MODULE_MAGIC;

int			queue_ext_max_read_qty = 10000;

void		_PG_init(void);

void
_PG_init(void)
{
	if (sodium_init() < 0)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("could not initialise libsodium")));

	DefineCustomIntVariable("queue_ext.max_read_qty",
							"Most messages one read, read_with_poll or pop returns.",
							"A NULL qty (pgmq's \"no limit\") returns at most this many.",
							&queue_ext_max_read_qty,
							10000, 1, INT_MAX,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	/* Before the prefix is reserved, which would discard its postgresql.conf value. */
	ratelimit_init();
	MarkGUCPrefixReserved("queue_ext");

	shared_state_init();
	queue_cache_init();
	security_catalog_init();
	tenancy_init();
	api_keys_init();
}
