/*
 * send.c
 *	  pgmq.send and pgmq.send_batch: every overload pgmq 1.13 declares, plus the
 *	  two that make untyped driver parameters resolve.
 *
 * All overloads reduce to two cores: send_one() and send_many(), which take a
 * visibility time and run the queue's prepared INSERT. The overloads differ
 * only in how they get there: no delay (visible now), a delay in seconds
 * (clock_timestamp() + delay, as pgmq), or a timestamp.
 *
 * Untyped parameters. node-postgres and pgmq-js send every parameter as type
 * "unknown", and with pgmq's overloads send($1, $2, $3) is ambiguous: the
 * third argument could be jsonb, integer or timestamptz and none of those is
 * in the string category. queue_ext declares one more overload whose last
 * argument is text; PostgreSQL's resolution prefers the string category for
 * unknown arguments, so untyped calls land there, while typed calls keep
 * matching the documented overloads exactly. The text is read the way a
 * caller means it: an integer is a delay in seconds, JSON is headers, anything
 * else must be a timestamp. send_batch and the four-argument forms get the
 * same treatment for their last argument.
 */
#include "queue_ext.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

/* What an untyped last argument turned out to be. */
typedef struct SendOption
{
	bool		is_headers;
	Datum		headers;		/* jsonb, or jsonb[] for batches; when is_headers */
	bool		headers_null;
	TimestampTz vt;				/* when !is_headers */
} SendOption;

static bool
looks_like_json(const char *s)
{
	while (isspace((unsigned char) *s))
		s++;
	return *s == '{' || *s == '[' || *s == '"' ||
		strcmp(s, "null") == 0 || strcmp(s, "true") == 0 || strcmp(s, "false") == 0;
}

/* An untyped last argument: headers (jsonb or jsonb[]) or a delay. */
static SendOption
send_option_from_text(FunctionCallInfo fcinfo, int argno, bool batch)
{
	SendOption	opt = {0};
	char	   *s;

	if (PG_ARGISNULL(argno))
	{
		/* NULL headers, as pgmq accepts them; visible now. */
		opt.is_headers = true;
		opt.headers_null = true;
		return opt;
	}

	s = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (!text_is_integer(s) && (batch ? s[strspn(s, " \t\r\n")] == '{' : looks_like_json(s)))
	{
		opt.is_headers = true;
		opt.headers = value_from_text(s, batch ? JSONBARRAYOID : JSONBOID);
		return opt;
	}
	opt.vt = seconds_or_timestamp_from_text(s);
	return opt;
}

static TimestampTz
delay_seconds_arg(FunctionCallInfo fcinfo, int argno)
{
	return timestamp_after_seconds(int32_arg_not_null(fcinfo, argno, "delay"));
}

static TimestampTz
delay_text_arg(FunctionCallInfo fcinfo, int argno)
{
	reject_null_arg(fcinfo, argno, "delay");
	return seconds_or_timestamp_from_text(text_to_cstring(PG_GETARG_TEXT_PP(argno)));
}

/* ---- idempotency keys ---- */

/*
 * Sends one message (values as QP_SEND takes them) whose headers carry an
 * idempotency key: claims the key for the queue's window and inserts the
 * message in one statement, or, when the key is live (sent within the
 * window, by this transaction or a committed one), inserts nothing and
 * returns the msg_id it was first sent as. Two sessions sending one key at
 * once meet on the key's primary key: the second waits for the first to
 * commit or roll back. SPI must be connected; the msg_id goes to dest.
 */
static bool
send_keyed(QueueEntry *queue, const Datum *values, const bool *nulls, text *key,
		   DestReceiver *dest)
{
	TimestampTz now = GetCurrentTimestamp();
	Datum		keyed[7];
	bool		keyed_nulls[7];

	memcpy(keyed, values, sizeof(Datum) * 3);
	memcpy(keyed_nulls, nulls, sizeof(bool) * 3);
	keyed[3] = CStringGetTextDatum(queue->registered_name);
	keyed[4] = PointerGetDatum(key);
	keyed[5] = TimestampTzGetDatum(now + queue->options.idempotency_window_us);
	keyed[6] = TimestampTzGetDatum(now);
	memset(keyed_nulls + 3, 0, sizeof(bool) * 4);
	if (queue_execute_to(queue, QP_SEND_KEYED, keyed, keyed_nulls, dest) > 0)
		return true;
	queue_execute_to(queue, QP_IDEMPOTENT_MSG_ID, keyed + 3, keyed_nulls + 3, dest);
	return false;
}

/*
 * Sends one message, through its idempotency key when it has one. Returns 1
 * when it enqueued the message, 0 when its key found an earlier one.
 */
static int
send_message(QueueEntry *queue, const Datum *values, const bool *nulls, DestReceiver *dest)
{
	text	   *key = nulls[2] ? NULL : message_idempotency_key(DatumGetJsonbP(values[2]));

	if (key != NULL)
		return send_keyed(queue, values, nulls, key, dest) ? 1 : 0;
	queue_execute_to(queue, QP_SEND, values, nulls, dest);
	return 1;
}

/* ---- single messages ---- */

/*
 * Sends one message (msg and headers may be NULL) to a queue the caller may
 * publish to, visible at vt, after the checks and limits every send passes;
 * its msg_id goes to dest. SPI must not be connected: the rate limits may
 * use it. Returns 1 when it enqueued the message, 0 when its idempotency key
 * found an earlier one (whose msg_id goes to dest).
 */
int64
send_to_queue(QueueEntry *queue, TimestampTz vt, Datum msg, bool msg_null,
			  Datum headers, bool headers_null, DestReceiver *dest)
{
	Datum		values[3] = {TimestampTzGetDatum(vt), msg, headers};
	bool		nulls[3] = {false, msg_null, headers_null};
	int64		sent;

	if (!headers_null)
		check_message_headers(queue, DatumGetJsonbP(headers));
	check_message_size(queue, msg, msg_null, headers, headers_null);
	rate_limit_send(queue, 1);

	spi_connect_or_error();
	sent = send_message(queue, values, nulls, dest);
	quota_count_sent(queue, sent);
	count_messages(queue, COUNT_SENT, sent);
	SPI_finish();
	return sent;
}

static Datum
send_one(FunctionCallInfo fcinfo, int headers_argno, TimestampTz vt,
		 const SendOption *untyped_headers)
{
	QueueEntry *queue = queue_lookup_arg(fcinfo, 0, NEED_PUBLISH);
	Datum		headers = (Datum) 0;
	bool		headers_null = true;
	DestReceiver *dest;

	if (untyped_headers != NULL)
	{
		headers = untyped_headers->headers;
		headers_null = untyped_headers->headers_null;
	}
	else if (headers_argno >= 0 && !PG_ARGISNULL(headers_argno))
	{
		headers = PG_GETARG_DATUM(headers_argno);
		headers_null = false;
	}

	srf_begin(fcinfo);
	dest = srf_receiver(fcinfo);
	(void) send_to_queue(queue, vt, PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1), PG_ARGISNULL(1),
						 headers, headers_null, dest);
	dest->rDestroy(dest);
	return (Datum) 0;
}


/* send(queue_name, msg) */
QUEUE_EXT_ENTRY(queue_ext_send)
{
	return send_one(fcinfo, -1, GetCurrentTimestamp(), NULL);
}

/* send(queue_name, msg, headers jsonb) */
QUEUE_EXT_ENTRY(queue_ext_send_headers)
{
	return send_one(fcinfo, 2, GetCurrentTimestamp(), NULL);
}

/* send(queue_name, msg, delay integer) */
QUEUE_EXT_ENTRY(queue_ext_send_delay_seconds)
{
	return send_one(fcinfo, -1, delay_seconds_arg(fcinfo, 2), NULL);
}

/* send(queue_name, msg, delay timestamptz) */
QUEUE_EXT_ENTRY(queue_ext_send_delay_at)
{
	return send_one(fcinfo, -1, timestamptz_arg_not_null(fcinfo, 2, "delay"), NULL);
}

/* send(queue_name, msg, headers jsonb, delay integer) */
QUEUE_EXT_ENTRY(queue_ext_send_headers_delay_seconds)
{
	return send_one(fcinfo, 2, delay_seconds_arg(fcinfo, 3), NULL);
}

/* send(queue_name, msg, headers jsonb, delay timestamptz) */
QUEUE_EXT_ENTRY(queue_ext_send_headers_delay_at)
{
	return send_one(fcinfo, 2, timestamptz_arg_not_null(fcinfo, 3, "delay"), NULL);
}

/* send(queue_name, msg, headers_or_delay text): untyped third argument */
QUEUE_EXT_ENTRY(queue_ext_send_untyped)
{
	SendOption	opt = send_option_from_text(fcinfo, 2, false);

	if (opt.is_headers)
		return send_one(fcinfo, -1, GetCurrentTimestamp(), &opt);
	return send_one(fcinfo, -1, opt.vt, NULL);
}

/* send(queue_name, msg, headers jsonb, delay text): untyped fourth argument */
QUEUE_EXT_ENTRY(queue_ext_send_headers_untyped_delay)
{
	return send_one(fcinfo, 2, delay_text_arg(fcinfo, 3), NULL);
}

/* ---- batches ---- */

static int
array_length_1d(ArrayType *arr)
{
	return ARR_NDIM(arr) == 0 ? 0 : ARR_DIMS(arr)[0];
}

/*
 * Every message of a batch passes the checks a single send makes; headers
 * may be NULL. Returns true when some message has an idempotency key.
 */
static bool
check_batch(QueueEntry *queue, ArrayType *msgs, ArrayType *headers)
{
	bool		keyed = false;
	Datum	   *msg_values;
	bool	   *msg_nulls;
	Datum	   *header_values = NULL;
	bool	   *header_nulls = NULL;
	int			n;

	deconstruct_array(msgs, JSONBOID, -1, false, TYPALIGN_INT, &msg_values, &msg_nulls, &n);
	if (headers != NULL)
		deconstruct_array(headers, JSONBOID, -1, false, TYPALIGN_INT,
						  &header_values, &header_nulls, &n);
	for (int i = 0; i < n; i++)
	{
		bool		no_headers = headers == NULL || header_nulls[i];

		if (!no_headers)
		{
			check_message_headers(queue, DatumGetJsonbP(header_values[i]));
			keyed |= message_idempotency_key(DatumGetJsonbP(header_values[i])) != NULL;
		}
		check_message_size(queue, msg_values[i], msg_nulls[i],
						   no_headers ? (Datum) 0 : header_values[i], no_headers);
	}
	return keyed;
}

/*
 * A batch with idempotency keys: each message on its own, in order, so a key
 * repeated within the batch returns the msg_id of its first message.
 */
static int64
send_batch_keyed(QueueEntry *queue, TimestampTz vt, ArrayType *msgs, ArrayType *headers,
				 DestReceiver *dest)
{
	Datum	   *msg_values;
	bool	   *msg_nulls;
	Datum	   *header_values;
	bool	   *header_nulls;
	int			n;
	int64		enqueued = 0;

	deconstruct_array(msgs, JSONBOID, -1, false, TYPALIGN_INT, &msg_values, &msg_nulls, &n);
	deconstruct_array(headers, JSONBOID, -1, false, TYPALIGN_INT, &header_values, &header_nulls, &n);
	for (int i = 0; i < n; i++)
	{
		Datum		values[3] = {TimestampTzGetDatum(vt), msg_values[i], header_values[i]};
		bool		nulls[3] = {false, msg_nulls[i], header_nulls[i]};

		enqueued += send_message(queue, values, nulls, dest);
	}
	return enqueued;
}

/*
 * The batch a send_batch call passes: msgs (not NULL, not empty, one
 * dimension) and headers (NULL, or one per message). Raises otherwise;
 * returns the number of messages.
 */
int
check_batch_arrays(ArrayType *msgs, bool msgs_null, ArrayType *headers)
{
	int			nmsgs;

	if (msgs_null || (nmsgs = array_length_1d(msgs)) == 0)
		ereport(ERROR,
				(errcode(msgs_null ? ERRCODE_NULL_VALUE_NOT_ALLOWED : ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("msgs cannot be NULL or empty")));
	reject_multidimensional(msgs, "msgs");
	if (headers != NULL)
	{
		reject_multidimensional(headers, "headers");
		if (array_length_1d(headers) != nmsgs)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("headers array length (%d) must match msgs array length (%d)",
							array_length_1d(headers), nmsgs),
					 errhint("Pass one headers object per message, or NULL for none.")));
	}
	return nmsgs;
}

/*
 * Sends a batch that passed check_batch_arrays to a queue the caller may
 * publish to, visible at vt, after the checks and limits every send passes
 * (the whole batch passes the rate limits, or none of it is sent); the
 * msg_ids go to dest. SPI must not be connected. Returns how many it enqueued.
 */
int64
send_batch_to_queue(QueueEntry *queue, TimestampTz vt, ArrayType *msgs, ArrayType *headers,
					DestReceiver *dest)
{
	Datum		values[3] = {TimestampTzGetDatum(vt), PointerGetDatum(msgs), PointerGetDatum(headers)};
	bool		nulls[3] = {false, false, headers == NULL};
	bool		keyed = false;
	int64		sent;

	if (headers != NULL || queue->options.max_message_size > 0)
		keyed = check_batch(queue, msgs, headers);
	rate_limit_send(queue, array_length_1d(msgs));

	spi_connect_or_error();
	if (keyed)
		sent = send_batch_keyed(queue, vt, msgs, headers, dest);
	else
		sent = (int64) queue_execute_to(queue, QP_SEND_BATCH, values, nulls, dest);
	quota_count_sent(queue, sent);
	count_messages(queue, COUNT_SENT, sent);
	SPI_finish();
	return sent;
}

static Datum
send_many(FunctionCallInfo fcinfo, int headers_argno, TimestampTz vt,
		  const SendOption *untyped_headers)
{
	QueueEntry *queue;
	ArrayType  *msgs = PG_ARGISNULL(1) ? NULL : PG_GETARG_ARRAYTYPE_P(1);
	ArrayType  *headers = NULL;
	DestReceiver *dest;

	if (untyped_headers != NULL && !untyped_headers->headers_null)
		headers = DatumGetArrayTypeP(untyped_headers->headers);
	else if (headers_argno >= 0 && !PG_ARGISNULL(headers_argno))
		headers = PG_GETARG_ARRAYTYPE_P(headers_argno);
	(void) check_batch_arrays(msgs, msgs == NULL, headers);

	queue = queue_lookup_arg(fcinfo, 0, NEED_PUBLISH);
	srf_begin(fcinfo);
	dest = srf_receiver(fcinfo);
	(void) send_batch_to_queue(queue, vt, msgs, headers, dest);
	dest->rDestroy(dest);
	return (Datum) 0;
}


QUEUE_EXT_ENTRY(queue_ext_send_batch)
{
	return send_many(fcinfo, -1, GetCurrentTimestamp(), NULL);
}

QUEUE_EXT_ENTRY(queue_ext_send_batch_headers)
{
	return send_many(fcinfo, 2, GetCurrentTimestamp(), NULL);
}

QUEUE_EXT_ENTRY(queue_ext_send_batch_delay_seconds)
{
	return send_many(fcinfo, -1, delay_seconds_arg(fcinfo, 2), NULL);
}

QUEUE_EXT_ENTRY(queue_ext_send_batch_delay_at)
{
	return send_many(fcinfo, -1, timestamptz_arg_not_null(fcinfo, 2, "delay"), NULL);
}

QUEUE_EXT_ENTRY(queue_ext_send_batch_headers_delay_seconds)
{
	return send_many(fcinfo, 2, delay_seconds_arg(fcinfo, 3), NULL);
}

QUEUE_EXT_ENTRY(queue_ext_send_batch_headers_delay_at)
{
	return send_many(fcinfo, 2, timestamptz_arg_not_null(fcinfo, 3, "delay"), NULL);
}

QUEUE_EXT_ENTRY(queue_ext_send_batch_untyped)
{
	SendOption	opt = send_option_from_text(fcinfo, 2, true);

	if (opt.is_headers)
		return send_many(fcinfo, -1, GetCurrentTimestamp(), &opt);
	return send_many(fcinfo, -1, opt.vt, NULL);
}

QUEUE_EXT_ENTRY(queue_ext_send_batch_headers_untyped_delay)
{
	return send_many(fcinfo, 2, delay_text_arg(fcinfo, 3), NULL);
}
