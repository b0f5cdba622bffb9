/*
 * group_read.c
 *	  FIFO message groups: read_grouped, read_grouped_rr, read_grouped_head and
 *	  their _with_poll forms.
 *
 * As in pgmq 1.13, a message's group is its "x-pgmq-group" header (messages
 * without one share the group "_default_fifo_group") and order is msg_id
 * order. A group's head is its oldest message, whatever its vt. A group is
 * open when its head is visible; while the head is leased, waiting for a
 * retry or delayed, nothing of the group is delivered. Then:
 *
 *	read_grouped_head	the heads of the oldest open groups, one per group;
 *	read_grouped		the oldest open group's messages first, then the next
 *						group's (SQS FIFO's batching);
 *	read_grouped_rr		the heads of the oldest open groups, then their second
 *						messages, and so on (layered round robin).
 *
 * Past the head, a group's messages are delivered in order up to the first
 * one that is not visible: a delayed or leased message is never jumped.
 *
 * Exclusion between concurrent readers. A set-based read cannot do this:
 * FOR UPDATE does not sit beside DISTINCT, GROUP BY or window functions, and a
 * plain SKIP LOCKED read takes the next message of a group whose head another
 * reader has locked. Here the head's row lock is the group's lock. A reader
 * walks the queue in msg_id order, so the first row of a group it meets is
 * the head; it locks the head (FOR UPDATE SKIP LOCKED, vt checked again on
 * the latest row version) before it looks at anything else of the group, and
 * gives the group up if it cannot. A reader that holds a group's head is the
 * only one that can be past that point, so followers are locked without
 * contention from grouped readers; after it commits, the head's new vt keeps
 * the group closed until the head is acked, nacked to a retry (still closed:
 * its vt is in the future) or dead-lettered. Different groups' heads are
 * different rows, so concurrent readers take different groups in parallel.
 *
 * Cost. The walk stops as soon as it has found the open heads it needs, so a
 * read touches the rows ahead of them, not the queue: with 10 k groups
 * interleaved, a read reaches its heads within the first few rows of each
 * group. A long run of a closed group's messages ahead of every open head is
 * walked row by row, and a read that asks for more open groups than there
 * are walks to the end of the queue (never sorting or grouping it, as pgmq's
 * read does on every call). Each attempt runs in its own memory context, and
 * the walk keeps one batch of rows at a time. Followers are fetched per group by
 * "group = g AND msg_id > head ORDER BY msg_id": pgmq.create_fifo_index makes
 * that an index range scan.
 *
 * Messages whose sends commit out of msg_id order (two producers of one group
 * in concurrent transactions) have no order to keep between them; a group's
 * order is the order its messages became visible. A plain read() ignores
 * groups, as in pgmq.
 */
#include "queue_ext.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

typedef enum GroupReadMode
{
	GROUPS_FILL_FIRST,			/* read_grouped */
	GROUPS_ROUND_ROBIN,			/* read_grouped_rr */
	GROUPS_HEADS				/* read_grouped_head */
} GroupReadMode;

typedef struct GroupRead
{
	GroupReadMode mode;
	int32		vt_seconds;
	int64		limit;
} GroupRead;

/* A candidate or leased group: its head and the group key. */
typedef struct GroupHead
{
	int64		head_id;
	char	   *group;
} GroupHead;

/*
 * Walks the queue in msg_id order, in batches, and hands out the heads of
 * groups it has not met before that were visible when read.
 */
typedef struct HeadScanner
{
	QueueEntry *queue;
	TimestampTz now;
	HTAB	   *seen;			/* groups met so far */
	int64		after_id;		/* the next batch starts after this msg_id */
	bool		exhausted;
	int64		batch_size;
	/* the current batch */
	int64	   *ids;
	bool	   *visible;
	char	  **groups;
	uint64		nrows;
	uint64		pos;
} HeadScanner;

/* Batches grow from a few rows (most reads find their heads at once) to this. */
#define SCAN_BATCH_MAX 4096

/*
 * Bytes of a group key in the hash of groups met: GROUP_KEY_MAX characters
 * in any encoding. A longer key (possible only by a direct INSERT) is
 * compared by this prefix, so two such groups count as one: a delay, never
 * an order broken.
 */
#define GROUP_KEY_BYTES (GROUP_KEY_MAX * MAX_MULTIBYTE_CHAR_LEN + 1)

typedef struct IdList
{
	int64	   *ids;
	int			n;
	int			capacity;
} IdList;

static void
id_list_add(IdList *list, int64 id)
{
	if (list->n == list->capacity)
	{
		list->capacity = Max(16, list->capacity * 2);
		list->ids = list->ids == NULL ? palloc(sizeof(int64) * list->capacity)
			: repalloc(list->ids, sizeof(int64) * list->capacity);
	}
	list->ids[list->n++] = id;
}

static void
scanner_init(HeadScanner *scan, QueueEntry *queue, TimestampTz now, int64 want)
{
	HASHCTL		ctl = {0};

	memset(scan, 0, sizeof(*scan));
	scan->queue = queue;
	scan->now = now;
	/* Rows below the scan hint are gone (not only unreadable): nothing to meet there. */
	scan->after_id = scan_hint_start(queue) - 1;
	scan->batch_size = Min(2 * want + 16, SCAN_BATCH_MAX);
	ctl.keysize = GROUP_KEY_BYTES;
	ctl.entrysize = GROUP_KEY_BYTES;
	ctl.hcxt = CurrentMemoryContext;
	scan->seen = hash_create("queue_ext fifo groups met", 256, &ctl,
							 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
}

/* Copies the next batch out of SPI's result (the next statement overwrites it). */
static bool
scanner_fetch(HeadScanner *scan)
{
	Datum		values[3];
	uint64		n;

	if (scan->exhausted)
		return false;
	CHECK_FOR_INTERRUPTS();
	/* The previous batch is done with (candidates keep copies of their groups). */
	for (uint64 i = 0; i < scan->nrows; i++)
		pfree(scan->groups[i]);
	if (scan->ids != NULL)
	{
		pfree(scan->ids);
		pfree(scan->visible);
		pfree(scan->groups);
	}
	values[0] = Int64GetDatum(scan->after_id);
	values[1] = Int64GetDatum(scan->batch_size);
	values[2] = TimestampTzGetDatum(scan->now);
	n = queue_execute_to(scan->queue, QP_GROUP_SCAN, values, NULL, NULL);

	scan->ids = palloc(sizeof(int64) * Max(n, 1));
	scan->visible = palloc(sizeof(bool) * Max(n, 1));
	scan->groups = palloc(sizeof(char *) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	row = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		scan->ids[i] = DatumGetInt64(SPI_getbinval(row, desc, 1, &isnull));
		scan->visible[i] = DatumGetBool(SPI_getbinval(row, desc, 2, &isnull));
		scan->groups[i] = TextDatumGetCString(SPI_getbinval(row, desc, 3, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);
	scan->nrows = n;
	scan->pos = 0;
	if (n < (uint64) scan->batch_size)
		scan->exhausted = true;
	if (n > 0)
		scan->after_id = scan->ids[n - 1];
	scan->batch_size = Min(scan->batch_size * 4, SCAN_BATCH_MAX);
	return n > 0;
}

/*
 * Up to want heads of groups not met before, visible when read, in msg_id
 * order. Every group met is remembered, open or not: a later row of a closed
 * group is never its head.
 */
static int
scanner_next_heads(HeadScanner *scan, int want, GroupHead *out)
{
	int			n = 0;

	while (n < want)
	{
		bool		found;
		uint64		i;

		if (scan->pos == scan->nrows && !scanner_fetch(scan))
			break;
		i = scan->pos++;
		(void) hash_search(scan->seen, scan->groups[i], HASH_ENTER, &found);
		if (found || !scan->visible[i])
			continue;
		out[n].head_id = scan->ids[i];
		out[n].group = pstrdup(scan->groups[i]);
		n++;
	}
	return n;
}

static int
compare_ids(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/*
 * Locks those of ids[0..n-1] that are still visible and not locked by
 * another reader; sets taken[i] for each. Returns how many it took.
 */
static int
lock_messages(QueueEntry *queue, const int64 *ids, int n, TimestampTz now, bool *taken)
{
	Datum		values[2];
	uint64		nlocked;
	int64	   *locked;

	if (n <= 0)
		return 0;
	memset(taken, 0, sizeof(bool) * n);
	values[0] = id_array(ids, n);
	values[1] = TimestampTzGetDatum(now);
	nlocked = queue_execute_to(queue, QP_GROUP_LOCK, values, NULL, NULL);
	locked = palloc(sizeof(int64) * Max(nlocked, 1));
	for (uint64 i = 0; i < nlocked; i++)
	{
		bool		isnull;

		locked[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
												1, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);

	/* The locked ones come back in msg_id order. */
	for (int i = 0; i < n; i++)
		taken[i] = bsearch(&ids[i], locked, nlocked, sizeof(int64), compare_ids) != NULL;
	return (int) nlocked;
}

/*
 * Appends to out up to max more messages of the group, after its head or
 * after the last one out has, in order, stopping before the first that is not
 * visible. Not locked yet. Returns false when the group has no more to give.
 */
static bool
visible_followers(QueueEntry *queue, const GroupHead *group, int64 max, TimestampTz now,
				  IdList *out)
{
	Datum		values[4];
	uint64		n;
	uint64		taken = 0;

	if (max <= 0)
		return true;
	values[0] = CStringGetTextDatum(group->group);
	values[1] = Int64GetDatum(out->n > 0 ? out->ids[out->n - 1] : group->head_id);
	values[2] = Int64GetDatum(max);
	values[3] = TimestampTzGetDatum(now);
	n = queue_execute_to(queue, QP_GROUP_FOLLOWERS, values, NULL, NULL);
	for (; taken < n; taken++)
	{
		HeapTuple	row = SPI_tuptable->vals[taken];
		bool		isnull;

		if (!DatumGetBool(SPI_getbinval(row, SPI_tuptable->tupdesc, 2, &isnull)))
			break;
		id_list_add(out, DatumGetInt64(SPI_getbinval(row, SPI_tuptable->tupdesc, 1, &isnull)));
	}
	SPI_freetuptable(SPI_tuptable);
	return taken == (uint64) max;
}

/* Cuts each group's followers at the first one that could not be locked. */
static void
lock_followers(QueueEntry *queue, IdList *followers, int ngroups, TimestampTz now)
{
	IdList		all = {0};
	bool	   *taken;
	int			k = 0;

	for (int g = 0; g < ngroups; g++)
		for (int i = 0; i < followers[g].n; i++)
			id_list_add(&all, followers[g].ids[i]);
	if (all.n == 0)
		return;
	taken = palloc(sizeof(bool) * all.n);
	lock_messages(queue, all.ids, all.n, now, taken);
	for (int g = 0; g < ngroups; g++)
	{
		int			kept = followers[g].n;

		for (int i = 0; i < followers[g].n; i++, k++)
			if (!taken[k] && kept == followers[g].n)
				kept = i;
		followers[g].n = kept;
	}
}

/*
 * A grouped read that wants heads only (read_grouped_head, or any grouped
 * read of one message): each batch of heads the scan finds is locked and
 * leased in one statement, and the scan goes on while heads were lost to
 * other readers.
 */
static uint64
group_read_heads(FunctionCallInfo fcinfo, QueueEntry *queue, int64 limit, int32 vt_seconds,
				 int *dead)
{
	TimestampTz now = GetCurrentTimestamp();
	HeadScanner scan;
	GroupHead  *candidates = palloc(sizeof(GroupHead) * limit);
	int64	   *head_ids = palloc(sizeof(int64) * limit);
	uint64		delivered = 0;
	Datum		values[3];

	scanner_init(&scan, queue, now, limit);
	values[1] = TimestampTzGetDatum(now);
	values[2] = TimestampTzGetDatum(now + (int64) vt_seconds * USECS_PER_SEC);
	while (delivered < (uint64) limit)
	{
		int			n = scanner_next_heads(&scan, (int) (limit - delivered), candidates);
		int			batch_dead;

		if (n == 0)
			break;
		for (int i = 0; i < n; i++)
			head_ids[i] = candidates[i].head_id;
		values[0] = id_array(head_ids, n);
		delivered += lease_statement(fcinfo, queue, QP_GROUP_LEASE_HEADS, values, NULL, &batch_dead);
		*dead += batch_dead;
	}
	return delivered;
}

/*
 * One grouped read: picks, locks and leases up to limit messages. Returns the
 * number delivered; *dead counts the messages dead-lettered instead.
 */
static uint64
group_read_attempt(FunctionCallInfo fcinfo, QueueEntry *queue, int64 limit, void *arg,
				   int *dead)
{
	GroupRead  *read = arg;
	TimestampTz now = GetCurrentTimestamp();
	HeadScanner scan;
	GroupHead  *candidates;
	int64	   *head_ids;
	bool	   *taken;
	GroupHead  *groups;
	int			ngroups = 0;
	IdList		picked = {0};

	*dead = 0;
	if (limit <= 0)
		return 0;
	if (read->mode == GROUPS_HEADS || limit == 1)
		return group_read_heads(fcinfo, queue, limit, read->vt_seconds, dead);
	candidates = palloc(sizeof(GroupHead) * limit);
	head_ids = palloc(sizeof(int64) * limit);
	taken = palloc(sizeof(bool) * limit);
	groups = palloc(sizeof(GroupHead) * limit);
	scanner_init(&scan, queue, now, read->mode == GROUPS_FILL_FIRST ? 1 : limit);

	while (picked.n < limit)
	{
		/* read_grouped fills from one group before it looks for the next. */
		int			want = read->mode == GROUPS_FILL_FIRST ? 1 : (int) (limit - ngroups);
		int			n = scanner_next_heads(&scan, want, candidates);

		if (n == 0)
			break;
		for (int i = 0; i < n; i++)
			head_ids[i] = candidates[i].head_id;
		lock_messages(queue, head_ids, n, now, taken);
		for (int i = 0; i < n; i++)
		{
			IdList		followers = {0};

			if (!taken[i])
				continue;
			groups[ngroups++] = candidates[i];
			id_list_add(&picked, candidates[i].head_id);
			if (read->mode != GROUPS_FILL_FIRST)
				continue;
			(void) visible_followers(queue, &candidates[i], limit - picked.n, now, &followers);
			lock_followers(queue, &followers, 1, now);
			for (int f = 0; f < followers.n; f++)
				id_list_add(&picked, followers.ids[f]);
		}
		if (read->mode != GROUPS_FILL_FIRST && ngroups == limit)
			break;
	}

	/*
	 * Round robin: the groups' second messages, then their third, ... The
	 * groups are asked for their shares of the room (rounded up), again while
	 * room is left and some group may have more, so the rows fetched stay
	 * near the room whatever the number of groups. Only the ones chosen, layer
	 * by layer, are locked.
	 */
	if (read->mode == GROUPS_ROUND_ROBIN && picked.n < limit && ngroups > 0)
	{
		IdList	   *followers = palloc0(sizeof(IdList) * ngroups);
		bool	   *more = palloc(sizeof(bool) * ngroups);
		int64		room = limit - picked.n;
		int64		fetched = 0;
		int			open = ngroups;
		int			deepest = 0;

		for (int g = 0; g < ngroups; g++)
			more[g] = true;
		while (fetched < room && open > 0)
		{
			int64		share = (room - fetched + open - 1) / open;

			open = 0;
			for (int g = 0; g < ngroups; g++)
			{
				int			had = followers[g].n;

				if (!more[g])
					continue;
				more[g] = visible_followers(queue, &groups[g], share, now, &followers[g]);
				fetched += followers[g].n - had;
				deepest = Max(deepest, followers[g].n);
				open += more[g] ? 1 : 0;
			}
		}
		/* Keep, layer by layer, as many as there is room for ... */
		for (int layer = 0, kept = 0; layer < deepest; layer++)
			for (int g = 0; g < ngroups; g++)
				if (layer < followers[g].n && kept++ >= room)
					followers[g].n = layer;
		/* ... lock them (each group cut at its first miss) and take them in layers. */
		lock_followers(queue, followers, ngroups, now);
		for (int layer = 0; layer < deepest; layer++)
			for (int g = 0; g < ngroups; g++)
				if (layer < followers[g].n)
					id_list_add(&picked, followers[g].ids[layer]);
	}

	return lease_locked(fcinfo, queue, picked.ids, picked.n, now, read->vt_seconds, dead);
}

/*
 * group_read_attempt in a memory context of its own: a scan may copy many
 * rows, and a _with_poll call makes many attempts before SPI_finish.
 */
static uint64
group_read_statement(FunctionCallInfo fcinfo, QueueEntry *queue, int64 limit, void *arg,
					 int *dead)
{
	MemoryContext attempt = AllocSetContextCreate(CurrentMemoryContext, "queue_ext grouped read",
												  ALLOCSET_DEFAULT_SIZES);
	MemoryContext caller = MemoryContextSwitchTo(attempt);
	uint64		delivered = group_read_attempt(fcinfo, queue, limit, arg, dead);

	MemoryContextSwitchTo(caller);
	MemoryContextDelete(attempt);
	return delivered;
}

static uint64
group_read(FunctionCallInfo fcinfo, QueueEntry *queue, void *arg)
{
	GroupRead  *read = arg;

	return read_allowed(fcinfo, queue, read->limit, read->vt_seconds, group_read_statement, arg);
}

/* read_grouped*(queue_name, vt, qty) */
static Datum
group_read_call(FunctionCallInfo fcinfo, GroupReadMode mode)
{
	QueueEntry *queue = queue_lookup_arg(fcinfo, 0, NEED_CONSUME);
	GroupRead	read = {
		.mode = mode,
		.vt_seconds = read_vt_arg(fcinfo, 1, queue),
		.limit = read_limit_arg(fcinfo, 2),
	};

	srf_begin(fcinfo);
	spi_connect_or_error();
	group_read(fcinfo, queue, &read);
	SPI_finish();
	return (Datum) 0;
}

/* read_grouped*_with_poll(queue_name, vt, qty, max_poll_seconds, poll_interval_ms) */
static Datum
group_read_poll_call(FunctionCallInfo fcinfo, GroupReadMode mode)
{
	char	   *name = queue_name_arg(fcinfo, 0);
	QueueEntry *queue = queue_lookup(name, NEED_CONSUME);
	GroupRead	read = {
		.mode = mode,
		.vt_seconds = read_vt_arg(fcinfo, 1, queue),
		.limit = read_limit_arg(fcinfo, 2),
	};

	read_polling(fcinfo, name, 3, group_read, &read);
	return (Datum) 0;
}


QUEUE_EXT_ENTRY(queue_ext_read_grouped)
{
	return group_read_call(fcinfo, GROUPS_FILL_FIRST);
}

QUEUE_EXT_ENTRY(queue_ext_read_grouped_rr)
{
	return group_read_call(fcinfo, GROUPS_ROUND_ROBIN);
}

QUEUE_EXT_ENTRY(queue_ext_read_grouped_head)
{
	return group_read_call(fcinfo, GROUPS_HEADS);
}

QUEUE_EXT_ENTRY(queue_ext_read_grouped_with_poll)
{
	return group_read_poll_call(fcinfo, GROUPS_FILL_FIRST);
}

QUEUE_EXT_ENTRY(queue_ext_read_grouped_rr_with_poll)
{
	return group_read_poll_call(fcinfo, GROUPS_ROUND_ROBIN);
}

QUEUE_EXT_ENTRY(queue_ext_read_grouped_head_with_poll)
{
	return group_read_poll_call(fcinfo, GROUPS_HEADS);
}
