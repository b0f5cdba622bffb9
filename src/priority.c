/*
 * priority.c
 *	  Priorities with aging: the read order of a queue that uses them.
 *
 * A queue uses priorities once it sets priority_aging (A). A message's
 * x-queue-ext-priority header, 0 (the default) to 9 (the most urgent), moves
 * it ahead as if it had been enqueued priority * A earlier, and reads take
 * the smallest rank first:
 *
 *	rank = enqueued_at - priority * A		(ties: msg_id order)
 *
 * So a message is overtaken only by more urgent messages enqueued less than
 * (their priority - its priority) * A after it: however steady a stream of
 * urgent messages, a priority-0 message waits at most 9 * A behind messages
 * sent after it. Within one priority, order is enqueue order.
 *
 * The rank is an immutable function of the row, so each such queue has an
 * expression index on (rank with its own A, msg_id) (_sync_priority_index in
 * the install script), and a read is an index scan in rank order with FOR
 * UPDATE SKIP LOCKED, as a plain read walks the primary key. A queue without
 * priority_aging reads by msg_id as before: it pays nothing, and a send of a
 * message with a priority to it is refused rather than silently ignored.
 */
#include "queue_ext.h"

#include "common/int.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(queue_ext_message_rank);

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
