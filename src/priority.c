/*
 * priority.c
 *	  Priorities with aging: the read order of a queue that uses them.
 *
 * A queue uses priorities once it sets priority_aging (A). A message's
 * x-queue-ext-priority header, 0 (the default) to 9 (the most urgent), moves
 * it ahead as if it had been enqueued priority * A earlier:
 *
 *	rank = enqueued_at - priority * A
 *
 * Each priority level is a FIFO in msg_id order, and a read takes, again and
 * again, the head of the level whose head has the smallest rank (ties: the
 * smaller msg_id). So a message is overtaken only by more urgent messages
 * enqueued less than (their priority - its priority) * A after it: however
 * steady a stream of urgent messages, a priority-0 message waits at most
 * 9 * A behind messages sent after it.
 *
 * Why levels, not one index on the rank: reads must skip the dead entries
 * that deletes leave at the head of the order, as plain reads do with their
 * mark (scan_hint.c). A mark is safe on msg_id order, where new messages only
 * ever arrive at the end; in rank order an urgent message sent now lands in
 * front of older ones, so no mark could be trusted. Per level, msg_id order is
 * the read order, so each level gets a mark of its own, settled in the same
 * rounds as the plain mark. Every queue with priority_aging has an index on
 * (pgmq.message_priority(headers), msg_id) (q_<name>_priority_idx).
 *
 * A read would otherwise look at all ten levels. Each round also records a
 * floor per level, a rank below which the level's head is not expected: the
 * smaller of the rank of its first live message and that of a message sent
 * now at that priority (less a margin for clocks). Levels are visited in
 * floor order and the visit stops once it has the candidates it wants
 * (its limit and a few spare) ranked below the next floor: on a queue that
 * holds more than a read asks for, usually one level is read. A floor can be
 * off for a message whose enqueued_at lies in the past of its msg_id (a dead
 * letter keeps its own; a long sending transaction), once that message heads
 * its level; it is put in order when the next round completes (a round waits
 * for the transactions running when it opened), and never lost: what a read
 * may skip is decided only by the msg_id marks.
 *
 * The read picks candidates in this order through the level index, locks
 * them as FOR UPDATE SKIP LOCKED does (a row another reader holds is passed
 * over; a row changed since it was picked is followed to its last version
 * and checked again), and leases the locked ones in one statement. Under
 * REPEATABLE READ a row changed since the transaction's snapshot is passed
 * over, where SQL's FOR UPDATE would raise a serialization failure. A queue
 * without priority_aging reads by msg_id as before: it pays nothing, and a
 * send of a message with a priority to it is refused rather than silently
 * ignored.
 */
#include "queue_ext.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* Candidates a read picks beyond its limit, for rows other readers are taking meanwhile. */
#define PRIORITY_SLACK 4

/* Most candidates one pass picks: a large read takes several passes, not one huge array. */
#define PRIORITY_PICK_CHUNK 1000

/* Floors allow for this much between clocks and transaction start times. */
#define PRIORITY_FLOOR_MARGIN_US (1000 * 1000)

PG_FUNCTION_INFO_V1(queue_ext_message_rank);
PG_FUNCTION_INFO_V1(queue_ext_message_priority);

/* message_rank(enqueued_at timestamptz, headers jsonb, aging_us bigint) -> bigint */
Datum
queue_ext_message_rank(PG_FUNCTION_ARGS)
{
	Jsonb	   *headers = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	int64		aging_us = PG_ARGISNULL(2) ? 0 : PG_GETARG_INT64(2);
	int64		ahead;
	int64		rank;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	/* queue_ext's own calls are bounded (9 levels, a day); anyone may call this one. */
	if (pg_mul_s64_overflow(message_priority(headers, false), Max(aging_us, 0), &ahead) ||
		pg_sub_s64_overflow(PG_GETARG_TIMESTAMPTZ(0), ahead, &rank))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("message rank out of range"),
				 errdetail("aging_us %lld moves the message past the range of a bigint.",
						   (long long) aging_us)));
	PG_RETURN_INT64(rank);
}

/* message_priority(headers jsonb) -> integer: the level the priority index files it under. */
Datum
queue_ext_message_priority(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(message_priority(PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0), false));
}

/* A message a read may take: where it is and where it stands in the order. */
typedef struct Candidate
{
	int64		msg_id;
	int64		rank;
	ItemPointerData tid;
	int			level;
} Candidate;

/* The queue table, its priority index, and a scan of it, for one call. */
typedef struct LevelScan
{
	Relation	heap;
	Relation	index;
	Snapshot	snapshot;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	AttrNumber	msg_id_att;
	AttrNumber	enqueued_at_att;
	AttrNumber	vt_att;
	AttrNumber	message_att;
	int64		aging_us;
} LevelScan;

static AttrNumber
queue_column(Relation heap, const char *column)
{
	AttrNumber	att = get_attnum(RelationGetRelid(heap), column);

	if (att == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("queue table \"%s\" has no column \"%s\"",
						RelationGetRelationName(heap), column)));
	return att;
}

/*
 * The index must be the one _sync_priority_index makes: on this table, valid,
 * (an integer expression, msg_id). Anything else under its name (a failed
 * concurrent build, an index of an older development release) would make
 * reads come back wrong instead of failing.
 */
static void
check_level_index(LevelScan *ls, QueueEntry *queue, const char *index_name)
{
	Form_pg_index index = ls->index->rd_index;

	if (index->indrelid != RelationGetRelid(ls->heap) || !index->indisvalid ||
		index->indnkeyatts != 2 || index->indkey.values[0] != 0 ||
		index->indkey.values[1] != queue_column(ls->heap, "msg_id") ||
		TupleDescAttr(RelationGetDescr(ls->index), 0)->atttypid != INT4OID)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("index pgmq.%s is not the priority index of queue \"%s\"",
						index_name, queue->names.name),
				 errdetail("It must be valid and on (pgmq.message_priority(headers), msg_id)."),
				 errhint("Drop it and make it again with SELECT pgmq._sync_priority_index('%s').",
						 queue->names.name)));
}

/*
 * Opens the queue's table (heap_lock: RowShareLock when rows will be locked,
 * as SELECT FOR UPDATE takes) and its priority index, with a fresh snapshot
 * (READ COMMITTED; the transaction's under REPEATABLE READ).
 */
static void
level_scan_begin(LevelScan *ls, QueueEntry *queue, LOCKMODE heap_lock)
{
	char		index_name[NAMEDATALEN];
	Oid			index_relid;

	snprintf(index_name, sizeof(index_name), "%s_priority_idx", queue->names.queue_table);
	index_relid = get_relname_relid(index_name, get_rel_namespace(queue->queue_relid));
	if (!OidIsValid(index_relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("queue \"%s\" has no priority index", queue->names.name),
				 errdetail("A queue with priority_aging is read through index pgmq.%s.", index_name),
				 errhint("Make it again with SELECT pgmq._sync_priority_index('%s').",
						 queue->names.name)));
	ls->heap = table_open(queue->queue_relid, heap_lock);
	ls->index = index_open(index_relid, AccessShareLock);
	check_level_index(ls, queue, index_name);
	ls->snapshot = RegisterSnapshot(GetTransactionSnapshot());
	ls->scan = index_beginscan(ls->heap, ls->index, ls->snapshot, 2, 0);
	ls->slot = table_slot_create(ls->heap, NULL);
	ls->msg_id_att = queue_column(ls->heap, "msg_id");
	ls->enqueued_at_att = queue_column(ls->heap, "enqueued_at");
	ls->vt_att = queue_column(ls->heap, "vt");
	ls->message_att = queue_column(ls->heap, "message");
	ls->aging_us = queue->options.priority_aging_us;
}

/* Closes what level_scan_begin opened; the locks stay until the transaction ends. */
static void
level_scan_end(LevelScan *ls)
{
	index_endscan(ls->scan);
	ExecDropSingleTupleTableSlot(ls->slot);
	UnregisterSnapshot(ls->snapshot);
	index_close(ls->index, NoLock);
	table_close(ls->heap, NoLock);
}

static TimestampTz
slot_timestamp(TupleTableSlot *slot, AttrNumber att)
{
	bool		isnull;
	Datum		value = slot_getattr(slot, att, &isnull);

	return isnull ? DT_NOBEGIN : DatumGetTimestampTz(value);
}

/* Visible at now, and matching cond when there is one (as message @> cond). */
static bool
row_is_readable(LevelScan *ls, TupleTableSlot *slot, TimestampTz now, Jsonb *cond)
{
	bool		isnull;
	Datum		message;

	if (slot_timestamp(slot, ls->vt_att) > now)
		return false;
	if (cond == NULL)
		return true;
	message = slot_getattr(slot, ls->message_att, &isnull);
	return !isnull && DatumGetBool(DirectFunctionCall2(jsonb_contains, message,
													   PointerGetDatum(cond)));
}

/*
 * Up to max messages of one level from msg_id from on, in msg_id order: all
 * live ones, or (visible_only) those visible at now that match cond.
 */
static int
level_fetch(LevelScan *ls, int level, int64 from, int max, bool visible_only,
			TimestampTz now, Jsonb *cond, Candidate *out)
{
	ScanKeyData keys[2];
	int			n = 0;

	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(level));
	ScanKeyInit(&keys[1], 2, BTGreaterEqualStrategyNumber, F_INT8GE, Int64GetDatum(from));
	index_rescan(ls->scan, keys, 2, NULL, 0);
	while (n < max && index_getnext_slot(ls->scan, ForwardScanDirection, ls->slot))
	{
		bool		isnull;

		CHECK_FOR_INTERRUPTS();
		if (visible_only && !row_is_readable(ls, ls->slot, now, cond))
			continue;
		out[n].msg_id = DatumGetInt64(slot_getattr(ls->slot, ls->msg_id_att, &isnull));
		/* An enqueued_at of -infinity (a direct INSERT) ranks first, without overflow. */
		if (pg_sub_s64_overflow(slot_timestamp(ls->slot, ls->enqueued_at_att),
								level * ls->aging_us, &out[n].rank))
			out[n].rank = PG_INT64_MIN;
		out[n].tid = ls->slot->tts_tid;
		out[n].level = level;
		n++;
	}
	return n;
}

static bool
candidate_before(const Candidate *a, const Candidate *b)
{
	return a->rank < b->rank || (a->rank == b->rank && a->msg_id < b->msg_id);
}

/*
 * Merges a level's run into the picked list (both in read order, heads
 * first), keeping the first want; scratch has room for want.
 */
static int
merge_level(Candidate *picked, int npicked, const Candidate *run, int nrun, int want,
			Candidate *scratch)
{
	int			i = 0,
				j = 0,
				n = 0;

	while (n < want && (i < npicked || j < nrun))
	{
		if (j == nrun || (i < npicked && candidate_before(&picked[i], &run[j])))
			scratch[n++] = picked[i++];
		else
			scratch[n++] = run[j++];
	}
	memcpy(picked, scratch, sizeof(Candidate) * n);
	return n;
}

/* The marks and floors this backend reads with (none while they are off). */
static void
read_marks(QueueEntry *queue, int64 *start, int64 *floor)
{
	bool		usable = queue->hint.enabled && !queue->sequence_changed;

	scan_hint_advance(queue);
	for (int level = 0; level < PRIORITY_LEVELS; level++)
	{
		start[level] = usable ? queue->hint.level_start[level] : 0;
		floor[level] = usable ? queue->hint.level_floor[level] : PG_INT64_MIN;
	}
}

/*
 * The first want candidates in read order from the resume points on,
 * visiting levels in floor order and skipping those whose floor is past the
 * want-th candidate already found. Fewer than want: every level was visited.
 */
static int
pick_candidates(LevelScan *ls, const int64 *resume, const int64 *floor, int want,
				TimestampTz now, Jsonb *cond, Candidate *picked)
{
	int			order[PRIORITY_LEVELS];
	Candidate  *run = palloc(sizeof(Candidate) * want);
	Candidate  *scratch = palloc(sizeof(Candidate) * want);
	int			npicked = 0;

	/* Levels by floor, the more urgent first on equal floors (insertion sort of ten). */
	for (int i = 0; i < PRIORITY_LEVELS; i++)
	{
		int			level = PRIORITY_MAX - i;
		int			k = i;

		while (k > 0 && floor[order[k - 1]] > floor[level])
		{
			order[k] = order[k - 1];
			k--;
		}
		order[k] = level;
	}
	for (int i = 0; i < PRIORITY_LEVELS; i++)
	{
		int			level = order[i];
		int			nrun;

		if (npicked == want && floor[level] > picked[want - 1].rank)
			break;
		nrun = level_fetch(ls, level, resume[level], want, true, now, cond, run);
		npicked = merge_level(picked, npicked, run, nrun, want, scratch);
	}
	pfree(run);
	pfree(scratch);
	return npicked;
}

/*
 * Locks a candidate as FOR UPDATE SKIP LOCKED would: false when another
 * transaction holds it, or it is gone, or (changed since it was picked) it is
 * no longer visible at now or no longer matches cond. Under REPEATABLE READ a
 * changed row is passed over instead of followed, so that the lease's UPDATE
 * sees what was locked.
 */
static bool
candidate_lock(LevelScan *ls, TupleTableSlot *slot, Candidate *c, TimestampTz now, Jsonb *cond)
{
	TM_FailureData tmfd;
	int			flags = IsolationUsesXactSnapshot() ? 0 : TUPLE_LOCK_FLAG_FIND_LAST_VERSION;

	if (table_tuple_lock(ls->heap, &c->tid, ls->snapshot, slot, GetCurrentCommandId(true),
						 LockTupleExclusive, LockWaitSkip, flags, &tmfd) != TM_Ok)
		return false;
	if (!tmfd.traversed)
		return true;			/* the very version picked: already checked */
	return row_is_readable(ls, slot, now, cond);
}

/*
 * Picks and locks up to limit messages visible at now (matching cond, when
 * given) in priority order. Returns how many, their ids in *ids, in order.
 * The table is locked before the marks are read, so that a reset of the
 * queue's sequence (TRUNCATE ... RESTART IDENTITY) is seen first.
 */
static int
pick_and_lock(QueueEntry *queue, int64 limit, TimestampTz now, Jsonb *cond, int64 **ids)
{
	LevelScan	ls;
	int64		resume[PRIORITY_LEVELS];
	int64		floor[PRIORITY_LEVELS];
	int			want_max = (int) Min(limit, PRIORITY_PICK_CHUNK) + PRIORITY_SLACK;
	Candidate  *picked = palloc(sizeof(Candidate) * want_max);
	int			capacity = (int) Min(limit, PRIORITY_PICK_CHUNK);
	TupleTableSlot *lock_slot;
	int			nlocked = 0;

	*ids = palloc(sizeof(int64) * capacity);
	level_scan_begin(&ls, queue, RowShareLock);
	read_marks(queue, resume, floor);
	lock_slot = table_slot_create(ls.heap, NULL);
	for (;;)
	{
		int			want = (int) Min(limit - nlocked, PRIORITY_PICK_CHUNK) + PRIORITY_SLACK;
		int			npicked = pick_candidates(&ls, resume, floor, want, now, cond, picked);

		for (int i = 0; i < npicked && nlocked < limit; i++)
		{
			if (candidate_lock(&ls, lock_slot, &picked[i], now, cond))
			{
				if (nlocked == capacity)
				{
					capacity = (int) Min(limit, (int64) capacity * 2);
					*ids = repalloc(*ids, sizeof(int64) * capacity);
				}
				(*ids)[nlocked++] = picked[i].msg_id;
			}
			/* Tried: the next pass of picking starts after it. */
			resume[picked[i].level] = picked[i].msg_id + 1;
		}
		if (nlocked == limit || npicked < want)
			break;
	}
	ExecDropSingleTupleTableSlot(lock_slot);
	level_scan_end(&ls);
	pfree(picked);
	return nlocked;
}

/*
 * A read of a queue with priorities: leases up to limit messages for
 * vt_seconds and returns them in priority order. SPI must be connected.
 * Each attempt has a memory context of its own: a _with_poll call makes many
 * before SPI_finish.
 */
uint64
priority_read(FunctionCallInfo fcinfo, QueueEntry *queue, int64 limit, int32 vt_seconds,
			  Jsonb *cond, int *dead)
{
	MemoryContext attempt = AllocSetContextCreate(CurrentMemoryContext, "queue_ext priority read",
												  ALLOCSET_DEFAULT_SIZES);
	MemoryContext caller = MemoryContextSwitchTo(attempt);
	TimestampTz now = GetCurrentTimestamp();
	int64	   *ids;
	int			n = pick_and_lock(queue, limit, now, cond, &ids);
	uint64		delivered = lease_locked(fcinfo, queue, ids, n, now, vt_seconds, dead);

	MemoryContextSwitchTo(caller);
	MemoryContextDelete(attempt);
	return delivered;
}

/* A pop of a queue with priorities, in priority order. SPI must be connected. */
void
priority_pop(FunctionCallInfo fcinfo, QueueEntry *queue, int64 limit)
{
	int64	   *ids;
	int			n = pick_and_lock(queue, limit, GetCurrentTimestamp(), NULL, &ids);
	Datum		values[1];

	if (n == 0)
		return;
	values[0] = id_array(ids, n);
	queue_execute(queue, QP_POP_LOCKED, values, NULL, fcinfo);
}

/*
 * The end of a round of the marks (scan_hint.c) for a queue with priorities:
 * per level, the first live message at or after the level's mark, seen by a
 * fresh snapshot now that every transaction of the round has ended, moves the
 * mark up to it (never past the round's sequence position + 1, as the plain
 * mark), and gives the level's floor. SPI must be connected.
 */
void
priority_settle_levels(QueueEntry *queue, ScanHint *hint)
{
	LevelScan	ls;
	int64		next_start = hint->round_last_id + 1;

	level_scan_begin(&ls, queue, AccessShareLock);
	for (int level = 0; level < PRIORITY_LEVELS; level++)
	{
		Candidate	first;
		bool		found = level_fetch(&ls, level, hint->level_start[level], 1, false, 0, NULL,
										&first) > 0;
		int64		sent_now = hint->round_opened_at - PRIORITY_FLOOR_MARGIN_US -
			level * ls.aging_us;

		hint->level_start[level] = Max(hint->level_start[level],
									   found ? Min(first.msg_id, next_start) : next_start);
		hint->level_floor[level] = found ? Min(first.rank, sent_now) : sent_now;
	}
	level_scan_end(&ls);
}
