/*
 * names.c
 *	  Queue-name rules and the identifiers derived from a name: the one place.
 *
 * A queue name is untrusted input. pgmq 1.13 accepts almost anything (its own
 * tests use "queue-hyphened" and "QueueCased") but rejects names holding "$",
 * ";", "--" or "'", and names longer than 47 characters; queue_ext keeps those
 * rules and adds two: the name must not be empty, and it must fit in 47 bytes
 * as well as 47 characters, because PostgreSQL silently truncates identifiers
 * past 63 bytes and "archived_at_idx_" + name would then collide. Table names
 * are the lowercased name with a "q_" or "a_" prefix, as pgmq lays them out;
 * every identifier is quoted when it is put into SQL.
 */
#include "queue_ext.h"

#include "catalog/pg_collation.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/formatting.h"

static bool
has_invalid_chars(const char *name)
{
	return strpbrk(name, "$;'") != NULL || strstr(name, "--") != NULL;
}

static bool
too_long(const char *name)
{
	int			bytes = strlen(name);

	return pg_mbstrlen_with_len(name, bytes) > QUEUE_NAME_MAX_LEN || bytes > QUEUE_NAME_MAX_LEN;
}

/* Rejects the characters pgmq rejects, and the empty name. */
void
queue_name_check_chars(const char *name)
{
	if (name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("queue name must not be empty")));

	if (has_invalid_chars(name))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("queue name contains invalid characters: $, ;, --, or '"),
				 errdetail("The name given was \"%s\".", name),
				 errhint("Queue names may not contain \"$\", \";\", \"--\" or \"'\".")));
}

void
queue_name_check_length(const char *name)
{
	int			bytes = strlen(name);

	if (too_long(name))
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("queue name is too long, maximum length is %d characters",
						QUEUE_NAME_MAX_LEN),
				 errdetail("The name given has %d characters in %d bytes.",
						   pg_mbstrlen_with_len(name, bytes), bytes),
				 errhint("Table and index names derived from a queue name must fit in %d bytes.",
						 NAMEDATALEN - 1)));
}

/* A name lowercased as table names are: two names are one queue when these match. */
char *
queue_name_lower(const char *name)
{
	return str_tolower(name, strlen(name), DEFAULT_COLLATION_OID);
}

/* Validates a name and fills in every identifier derived from it. */
void
queue_names_resolve(const char *name, QueueNames *out)
{
	char	   *lower;

	queue_name_check_chars(name);
	queue_name_check_length(name);

	lower = queue_name_lower(name);
	/* Lowercasing can change the byte length of non-ASCII names. */
	if (strlen(lower) > QUEUE_NAME_MAX_LEN)
		queue_name_check_length(lower);

	strlcpy(out->name, name, sizeof(out->name));
	snprintf(out->queue_table, NAMEDATALEN, "q_%s", lower);
	snprintf(out->archive_table, NAMEDATALEN, "a_%s", lower);
	snprintf(out->archive_index, NAMEDATALEN, "archived_at_idx_%s", name);
	snprintf(out->sequence, NAMEDATALEN, "q_%s_msg_id_seq", lower);
	pfree(lower);
}

/* The queue name argument of an entry point: never NULL. */
char *
queue_name_arg(FunctionCallInfo fcinfo, int argno)
{
	reject_null_arg(fcinfo, argno, "queue name");
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/* pgmq.format_table_name: lower(prefix || '_' || name), after the char check. */
char *
queue_table_name(const char *name, const char *prefix)
{
	queue_name_check_chars(name);
	return queue_name_lower(psprintf("%s_%s", prefix, name));
}

/* "pgmq"."relname", safe to paste into SQL. */
char *
qualified_identifier(const char *relname)
{
	return quote_qualified_identifier(QUEUE_SCHEMA, relname);
}
