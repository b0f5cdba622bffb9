/*
 * queue_ext.h
 *	  Declarations shared by queue_ext's source files.
 *
 * Dependencies point inward: the entry files (send.c, read.c, ack.c,
 * metrics.c, catalog.c's SQL-callable functions) use names.c for queue-name
 * rules, queue_cache.c for the per-queue cache and plans.c for the prepared
 * statements. No entry file reaches into another's internals.
 */
#ifndef QUEUE_EXT_H
#define QUEUE_EXT_H

#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/timestamp.h"

/* pgmq's limit: "template_pgmq_q_" (16) + name must fit in NAMEDATALEN - 1. */
#define QUEUE_NAME_MAX_LEN 47

/* The schema every queue_ext object lives in (the extension is not relocatable). */
#define QUEUE_SCHEMA "pgmq"

/* ---- names.c: the one place that knows what a queue name may be ---- */

/* A validated queue name and the identifiers derived from it. */
typedef struct QueueNames
{
	char		name[QUEUE_NAME_MAX_LEN + 1];	/* as the caller gave it */
	char		queue_table[NAMEDATALEN];	/* q_<lowercased name> */
	char		archive_table[NAMEDATALEN]; /* a_<lowercased name> */
	char		archive_index[NAMEDATALEN]; /* archived_at_idx_<name> */
	char		sequence[NAMEDATALEN];	/* q_<lowercased name>_msg_id_seq */
} QueueNames;

extern void queue_name_check_chars(const char *name);
extern void queue_name_check_length(const char *name);
extern void queue_names_resolve(const char *name, QueueNames *out);
extern char *queue_name_arg(FunctionCallInfo fcinfo, int argno);
extern char *queue_table_name(const char *name, const char *prefix);
extern char *qualified_identifier(const char *relname);

/* ---- queue_cache.c: per-backend cache of queues and their plans ---- */

/* The statements every queue has; prepared lazily, kept until invalidated. */
typedef enum QueuePlanKind
{
	QP_SEND,
	QP_SEND_BATCH,
	QP_READ,
	QP_READ_CONDITIONAL,
	QP_POP,
	QP_SET_VT_ONE,
	QP_SET_VT_MANY,
	QP_DELETE_ONE,
	QP_DELETE_MANY,
	QP_ARCHIVE_ONE,
	QP_ARCHIVE_MANY,
	QP_METRICS,
	QP_SEQUENCE_POSITION,
	QP_FIRST_LIVE_ID,
	QP_COUNT
} QueuePlanKind;

/* scan_hint.c: the msg_id below which nothing is left to read (per backend). */
typedef struct ScanHint
{
	int64		start;			/* no readable message has a smaller msg_id */
	bool		enabled;		/* false when the sequence caches ids */
	bool		round_open;		/* waiting for older transactions to end */
	int64		round_last_id;	/* sequence position when the round opened */
	VirtualTransactionId *round_vxids;	/* transactions running then */
	int			round_nvxids;
	TimestampTz next_step_at;
} ScanHint;

typedef struct QueueEntry
{
	char		key[QUEUE_NAME_MAX_LEN + 1];	/* hash key: the name as given */
	bool		valid;			/* false once a relcache invalidation hit it */
	bool		sequence_changed;	/* the invalidation hit the msg_id sequence */
	Oid			queue_relid;
	Oid			archive_relid;
	Oid			sequence_relid;
	QueueNames	names;
	SPIPlanPtr	plans[QP_COUNT];
	int			plan_generations[QP_COUNT];	/* of the generic plans we built */
	ScanHint	hint;
} QueueEntry;

extern void queue_cache_init(void);
extern QueueEntry *queue_find(const char *name);
extern QueueEntry *queue_lookup(const char *name);
extern QueueEntry *queue_lookup_arg(FunctionCallInfo fcinfo, int argno);
extern void queue_cache_forget(const char *name);

/* ---- scan_hint.c: where reads start ---- */

extern bool scan_hint_allowed(Oid sequence_relid);
extern void scan_hint_reset(ScanHint *hint, bool enabled);
extern int64 scan_hint_start(QueueEntry *queue);

/* ---- plans.c: the SQL behind each plan kind, prepared once per queue, and run ---- */

extern uint64 queue_execute(QueueEntry *queue, QueuePlanKind kind, const Datum *values,
							const bool *nulls, FunctionCallInfo rows_to);
extern void spi_connect_or_error(void);
extern void srf_begin(FunctionCallInfo fcinfo);

/* ---- args.c: argument conversions shared by entry files ---- */

extern TimestampTz timestamp_after_seconds(int64 seconds);
extern bool text_is_integer(const char *s);
extern Datum value_from_text(const char *s, Oid typid);
extern TimestampTz seconds_or_timestamp_from_text(const char *s);
extern void reject_null_arg(FunctionCallInfo fcinfo, int argno, const char *what);
extern int32 int32_arg_not_null(FunctionCallInfo fcinfo, int argno, const char *what);
extern TimestampTz timestamptz_arg_not_null(FunctionCallInfo fcinfo, int argno, const char *what);
extern int64 read_limit_arg(FunctionCallInfo fcinfo, int argno);
extern void reject_multidimensional(ArrayType *arr, const char *what);

/* ---- queue_ext.c: settings ---- */

extern int	queue_ext_max_read_qty;

#endif							/* QUEUE_EXT_H */
