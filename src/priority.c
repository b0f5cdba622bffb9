/*
 * priority.c
 *	  Priorities with aging: the level and rank of a message in a queue that
 *	  uses them.
 *
 * A queue uses priorities once it sets priority_aging (A). A message's
 * x-queue-ext-priority header, 0 (the default) to 9 (the most urgent), moves
 * it ahead as if it had been enqueued priority * A earlier:
 *
 *	rank = enqueued_at - priority * A
 *
 * So a message is overtaken only by more urgent messages enqueued less than
 * (their priority - its priority) * A after it: however steady a stream of
 * urgent messages, a priority-0 message waits at most 9 * A behind messages
 * sent after it.
 *
 * How a read finds the smallest rank without walking dead entries: each
 * priority level is a FIFO of its own, in msg_id order, read through an
 * index on (priority, msg_id) from a per-level scan hint (scan_hint.c), just
 * as a plain read walks the primary key from its mark. The first few visible
 * messages of each of the ten levels are the candidates; the best by rank
 * are locked (FOR UPDATE SKIP LOCKED) in rank order and leased. An index on
 * the rank itself would be simpler, but the rank of a new message can fall
 * anywhere in the last 9 * A, so no mark could skip the dead entries that
 * deletes leave there, and reads slowed down with every delete.
 *
 * Within a level the order is msg_id order, as in a plain read. A queue
 * without priority_aging reads by msg_id as before and pays nothing, and a
 * send of a message with a priority to it is refused rather than silently
 * ignored.
 */
#include "queue_ext.h"

#include "utils/jsonb.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(queue_ext_message_priority);
PG_FUNCTION_INFO_V1(queue_ext_message_rank);

/* message_priority(headers jsonb) -> integer: 0 to 9, 0 for none or a malformed one */
Datum
queue_ext_message_priority(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(message_priority(PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0), false));
}

/* message_rank(enqueued_at timestamptz, headers jsonb, aging_us bigint) -> bigint */
Datum
queue_ext_message_rank(PG_FUNCTION_ARGS)
{
	Jsonb	   *headers = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	int64		aging_us = PG_ARGISNULL(2) ? 0 : PG_GETARG_INT64(2);
	int64		ahead;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	/* Both factors are bounded (9 levels, a day of aging): no overflow. */
	ahead = (int64) message_priority(headers, false) * Max(aging_us, 0);
	PG_RETURN_INT64(PG_GETARG_TIMESTAMPTZ(0) - ahead);
}
