/* ddl_log.h — the DDL a branch ran, read back from its server's log (log_statement=ddl). */
#ifndef RIFT_DDL_LOG_H
#define RIFT_DDL_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/*
 * The line prefix riftd gives every branch server (-c log_line_prefix): time in UTC
 * (-c log_timezone=UTC), pid, and for session processes role@database. The parser below reads
 * exactly this shape; anything else in the log is skipped.
 */
#define RIFT_DDL_LOG_PREFIX "%m [%p] %q%u@%d "

#define RIFT_DDL_MAX_STATEMENT (64u * 1024u)        /* longer statements are cut (truncated) */
#define RIFT_DDL_MAX_BYTES     (2u * 1024u * 1024u) /* older entries go past this (dropped) */

struct rift_ddl_entry {
	int64_t time_ms; /* unix time in milliseconds (the log's %m, UTC) */
	int pid;
	char role[64];
	char database[64];
	char *statement; /* owned; NUL-terminated; may hold any bytes but NUL */
	size_t len;
	bool truncated; /* cut at RIFT_DDL_MAX_STATEMENT */
	bool failed;    /* the server logged an ERROR for this very statement */
};

/* Parsed entries, oldest first, plus the parser's state between lines. */
struct rift_ddl_log {
	int64_t since_ms; /* entries older than this are skipped (the branch's creation) */
	struct rift_ddl_entry *v;
	size_t first, n, cap; /* live entries are v[first .. first + n) */
	size_t bytes;         /* statement bytes held */
	size_t dropped;       /* entries dropped to stay under RIFT_DDL_MAX_BYTES */
	bool open;            /* the last entry may still get continuation lines */
	int error_pid;        /* pid of the last ERROR line, 0 = none */
};

void rift_ddl_log_init(struct rift_ddl_log *l, int64_t since_ms);
void rift_ddl_log_free(struct rift_ddl_log *l);

/*
 * Feeds one log line (without its newline; any bytes). Never fails on input: lines it does not
 * understand are skipped. -ENOMEM only when memory runs out.
 */
int rift_ddl_log_feed(struct rift_ddl_log *l, const char *line, size_t len)
    __attribute__((warn_unused_result));

/*
 * Reads a server log file (never following a link) into l. A missing file is an empty log.
 * 0 or -errno.
 */
int rift_ddl_log_read_file(struct rift_ddl_log *l, const char *path)
    __attribute__((warn_unused_result));

/* {"entries": [{"time","pid","role","database","statement","failed","truncated"}...],
 * "dropped"}: new reference (NULL without memory). Bytes that are not UTF-8 become '?'. */
json_t *rift_ddl_log_json(const struct rift_ddl_log *l);

#endif
