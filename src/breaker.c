/*
 * breaker.c
 *	  The circuit breaker: a queue whose workers keep failing stops
 *	  delivering for a while, then tries one message before it delivers again.
 *
 * Opt-in per queue (breaker_threshold). Acks and nacks are counted in
 * pgmq.breaker_state over a sliding window (breaker_window): the current
 * window's counts plus the previous window's, weighted by how much of it
 * still overlaps. States:
 *
 *	closed		reads deliver. When the window holds at least
 *				breaker_min_outcomes outcomes and the share of nacks reaches
 *				breaker_threshold, the breaker opens.
 *	open		reads deliver nothing until breaker_cooldown has passed since
 *				it opened; then the first read to ask becomes the trial:
 *	half_open	that read gets at most one message, the trial message;
 *				every other read gets nothing. The trial message's outcome
 *				decides: acked (or otherwise gone from the queue) closes the
 *				breaker and counting starts over; nacked (or dead-lettered)
 *				opens it again. Outcomes of other messages are only counted.
 *				If the trial's lease ends with no outcome, the next read takes
 *				a new trial; if the trial read finds nothing, the breaker
 *				stays open for the next read to try. Pops take no trial: they
 *				have no outcome.
 *
 * Reads ask the state cached in the queue's entry, so a closed breaker costs
 * a read one comparison. A change of state invalidates the queue's relcache
 * entry, as an option change does, so every backend reads the new state at
 * its next call. Counting costs a locked update of the queue's breaker row
 * per ack or nack, which serialises acks of one queue's transactions on that
 * row: the price of opting in. The table is unlogged: a crash closes every
 * breaker, which is the safe side for a queue that was open only to shed load.
 */
#include "queue_ext.h"

#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/timestamp.h"

static const char *const state_names[] = {
	[BREAKER_CLOSED] = "closed",
	[BREAKER_OPEN] = "open",
	[BREAKER_HALF_OPEN] = "half_open",
};

static BreakerStateKind
state_from_name(const char *name)
{
	for (int i = 0; i < (int) lengthof(state_names); i++)
		if (strcmp(name, state_names[i]) == 0)
			return (BreakerStateKind) i;
	return BREAKER_CLOSED;
}

/* ---- the cached state ---- */

enum
{
	BS_QUEUE_NAME,
	BS_STATE,
	BS_OPENED_AT,
	BS_TRIAL_UNTIL,
	BS_NCOLUMNS
};

typedef struct BreakerSearch
{
	char	   *lower;
	BreakerState *out;
} BreakerSearch;

static bool
breaker_row_matches(const Datum *v, const bool *isnull, void *arg)
{
	BreakerSearch *search = arg;

	if (strcmp(queue_name_lower(TextDatumGetCString(v[BS_QUEUE_NAME])), search->lower) != 0)
		return false;
	search->out->state = state_from_name(TextDatumGetCString(v[BS_STATE]));
	if (!isnull[BS_OPENED_AT])
		search->out->opened_at = DatumGetTimestampTz(v[BS_OPENED_AT]);
	if (!isnull[BS_TRIAL_UNTIL])
		search->out->trial_until = DatumGetTimestampTz(v[BS_TRIAL_UNTIL]);
	return true;
}

/* Reads a queue's breaker state (closed when it has no row). */
void
breaker_state_load(const char *name, BreakerState *out)
{
	static const char *const columns[BS_NCOLUMNS] = {
		[BS_QUEUE_NAME] = "queue_name",
		[BS_STATE] = "state",
		[BS_OPENED_AT] = "opened_at",
		[BS_TRIAL_UNTIL] = "trial_until",
	};
	BreakerSearch search = {.lower = queue_name_lower(name), .out = out};

	memset(out, 0, sizeof(*out));
	out->state = BREAKER_CLOSED;
	/* An unlogged table has no data on a standby (and reads there write nothing). */
	if (RecoveryInProgress())
		return;
	(void) catalog_scan("breaker_state", columns, BS_NCOLUMNS, breaker_row_matches, &search);
}

/* Every backend re-reads the queue's state (and options) at its next call. */
static void
breaker_changed(QueueEntry *queue)
{
	CacheInvalidateRelcacheByRelid(queue->queue_relid);
}

/* ---- reads ---- */

/*
 * How many messages a read may deliver, of limit: all while closed, none
 * while open, and one to the read that takes the trial. SPI must be
 * connected.
 */
int64
breaker_read_limit(QueueEntry *queue, int64 limit, int32 vt_seconds, bool allow_trial,
				   bool *trial)
{
	TimestampTz now = GetCurrentTimestamp();
	BreakerState *b = &queue->breaker;
	Datum		values[4];

	*trial = false;
	if (queue->options.breaker_threshold <= 0 || b->state == BREAKER_CLOSED)
		return limit;
	/* A pop has no outcome to decide a trial; a read of nothing needs none. */
	if (!allow_trial || limit <= 0)
		return 0;
	if (b->state == BREAKER_OPEN && now < b->opened_at + queue->options.breaker_cooldown_us)
		return 0;
	if (b->state == BREAKER_HALF_OPEN && now < b->trial_until)
		return 0;

	/* One reader wins the trial; the row lock decides who. */
	values[0] = CStringGetTextDatum(queue->registered_name);
	values[1] = TimestampTzGetDatum(now);
	values[2] = TimestampTzGetDatum(now - queue->options.breaker_cooldown_us);
	values[3] = TimestampTzGetDatum(now + (int64) Max(vt_seconds, 1) * USECS_PER_SEC);
	if (queue_execute_to(queue, QP_BREAKER_TRIAL, values, NULL, NULL) == 0)
		return 0;
	breaker_changed(queue);
	*trial = true;
	return Min(limit, 1);
}

/*
 * The trial read found nothing to deliver: the breaker goes back to open as
 * it was (same opened_at), so the next read takes the trial. SPI must be
 * connected.
 */
void
breaker_trial_unused(QueueEntry *queue)
{
	Datum		name = CStringGetTextDatum(queue->registered_name);

	if (queue_execute_to(queue, QP_BREAKER_TRIAL_UNUSED, &name, NULL, NULL) > 0)
		breaker_changed(queue);
}

/* ---- outcomes ---- */

typedef enum TrialFate
{
	TRIAL_OUT,					/* still leased: no outcome yet */
	TRIAL_SUCCEEDED,
	TRIAL_FAILED
} TrialFate;

/*
 * What became of the trial message, as this transaction sees it after its
 * own ack or nack: still in the queue and nacked is a failure; gone is a
 * success, unless this call was a nack (then it was dead-lettered by it).
 */
static TrialFate
trial_fate(QueueEntry *queue, int64 msg_id, bool nacking)
{
	Datum		id = Int64GetDatum(msg_id);
	bool		isnull;
	bool		nacked;

	if (queue_execute_to(queue, QP_BREAKER_TRIAL_FATE, &id, NULL, NULL) == 0)
		return nacking ? TRIAL_FAILED : TRIAL_SUCCEEDED;
	nacked = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	return nacked ? TRIAL_FAILED : TRIAL_OUT;
}

/* The trial read delivered msg_id: its outcome decides. SPI must be connected. */
void
breaker_trial_message(QueueEntry *queue, int64 msg_id)
{
	Datum		values[2];

	values[0] = CStringGetTextDatum(queue->registered_name);
	values[1] = Int64GetDatum(msg_id);
	queue_execute_to(queue, QP_BREAKER_TRIAL_MESSAGE, values, NULL, NULL);
}

/*
 * Counts acked acks and nacked nacks of the queue's messages, and opens or
 * closes the breaker when they say so. SPI must be connected.
 */
void
breaker_record(QueueEntry *queue, int64 acked, int64 nacked)
{
	const QueueOptions *o = &queue->options;
	TimestampTz now = GetCurrentTimestamp();
	Datum		values[9];
	bool		nulls[9] = {false, false, false, false, false, false, false, false, false};
	bool		isnull;
	HeapTuple	row;
	TupleDesc	desc;
	BreakerStateKind state;
	BreakerStateKind was;
	TimestampTz window_start;
	double		acks,
				nacks,
				prev_acks,
				prev_nacks,
				overlap;
	TimestampTz opened_at = 0;
	bool		has_opened_at;
	int64		trips;
	bool		has_trial_message;
	int64		trial_msg_id;

	if (o->breaker_threshold <= 0 || (acked == 0 && nacked == 0))
		return;

	values[0] = CStringGetTextDatum(queue->registered_name);
	values[1] = TimestampTzGetDatum(now);
	if (queue_execute_to(queue, QP_BREAKER_LOCK, values, NULL, NULL) == 0)
	{
		/* The queue's first outcome since it opted in (or since a crash). */
		queue_execute_to(queue, QP_BREAKER_CREATE, values, NULL, NULL);
		if (queue_execute_to(queue, QP_BREAKER_LOCK, values, NULL, NULL) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("circuit breaker row of queue \"%s\" is missing", queue->names.name)));
	}
	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	state = state_from_name(TextDatumGetCString(SPI_getbinval(row, desc, 1, &isnull)));
	window_start = DatumGetTimestampTz(SPI_getbinval(row, desc, 2, &isnull));
	acks = (double) DatumGetInt64(SPI_getbinval(row, desc, 3, &isnull));
	nacks = (double) DatumGetInt64(SPI_getbinval(row, desc, 4, &isnull));
	prev_acks = (double) DatumGetInt64(SPI_getbinval(row, desc, 5, &isnull));
	prev_nacks = (double) DatumGetInt64(SPI_getbinval(row, desc, 6, &isnull));
	opened_at = DatumGetTimestampTz(SPI_getbinval(row, desc, 7, &has_opened_at));
	has_opened_at = !has_opened_at;
	trips = DatumGetInt64(SPI_getbinval(row, desc, 8, &isnull));
	trial_msg_id = DatumGetInt64(SPI_getbinval(row, desc, 9, &has_trial_message));
	has_trial_message = !has_trial_message;
	SPI_freetuptable(SPI_tuptable);
	was = state;

	/* Slide the window: the previous one is the last full window, if adjacent. */
	if (now >= window_start + o->breaker_window_us)
	{
		bool		adjacent = now < window_start + 2 * o->breaker_window_us;

		prev_acks = adjacent ? acks : 0;
		prev_nacks = adjacent ? nacks : 0;
		acks = nacks = 0;
		window_start = adjacent ? window_start + o->breaker_window_us : now;
	}
	acks += acked;
	nacks += nacked;

	switch (state)
	{
		case BREAKER_CLOSED:
			{
				double		weight;
				double		a,
							n;

				overlap = (double) (now - window_start) / (double) o->breaker_window_us;
				weight = 1.0 - Min(Max(overlap, 0.0), 1.0);
				a = acks + prev_acks * weight;
				n = nacks + prev_nacks * weight;
				if (a + n >= o->breaker_min_outcomes && n / (a + n) >= o->breaker_threshold)
				{
					state = BREAKER_OPEN;
					opened_at = now;
					has_opened_at = true;
					trips++;
				}
				break;
			}
		case BREAKER_OPEN:
			break;				/* late outcomes of earlier deliveries: counted only */
		case BREAKER_HALF_OPEN:
			if (has_trial_message)
			{
				switch (trial_fate(queue, trial_msg_id, nacked > 0))
				{
					case TRIAL_SUCCEEDED:
						state = BREAKER_CLOSED;
						break;
					case TRIAL_FAILED:
						state = BREAKER_OPEN;
						opened_at = now;
						has_opened_at = true;
						trips++;
						break;
					case TRIAL_OUT:
						break;	/* another message's outcome: counted only */
				}
			}
			break;
	}
	if (state != was)
	{
		/* A change of state starts counting afresh. */
		acks = nacks = prev_acks = prev_nacks = 0;
		window_start = now;
		breaker_changed(queue);
	}

	values[1] = CStringGetTextDatum(state_names[state]);
	values[2] = TimestampTzGetDatum(window_start);
	values[3] = Int64GetDatum((int64) acks);
	values[4] = Int64GetDatum((int64) nacks);
	values[5] = Int64GetDatum((int64) prev_acks);
	values[6] = Int64GetDatum((int64) prev_nacks);
	values[7] = TimestampTzGetDatum(opened_at);
	values[8] = Int64GetDatum(trips);
	nulls[7] = !has_opened_at;
	queue_execute_to(queue, QP_BREAKER_SAVE, values, nulls, NULL);
}
