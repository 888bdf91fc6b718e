/* diff_internal.h — what diff.c, diff_data.c and diff_dump.c share. */
#ifndef RIFT_DIFF_INTERNAL_H
#define RIFT_DIFF_INTERNAL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "dbuf.h"
#include "rift/diff.h"

/* Caps of one diff request (hostile servers answer as much as they like). */
#define RIFT_DIFF_MAX_DATABASES 1000   /* databases per branch */
#define RIFT_DIFF_MAX_TABLES    100000 /* tables per database */
#define RIFT_DIFF_MAX_COLUMNS   1700   /* Postgres allows 1600 */
#define RIFT_DIFF_MAX_LISTED    10000  /* rows listed in the whole answer */

/* What one diff request has used so far, and whose connection is whose (for messages). */
struct rift_diff_budget {
	unsigned long long max, used; /* bytes received; max 0 = no cap */
	int listed;                   /* rows listed so far */
	struct {
		const PGconn *c;
		const char *name;
	} who[2];
};

/*
 * Counts n bytes received from branch name (NULL: the one connection c belongs to); false with
 * *err past the budget. The caller then drops the connection without reading on: a stream that
 * never ends is not drained.
 */
bool rift_diff_charge(struct rift_diff_budget *b, const PGconn *c, const char *name, size_t n,
		      char *err, size_t errlen);

/* The branch connection c is to, or "a branch". */
const char *rift_diff_who(const struct rift_diff_budget *b, const PGconn *c);

/*
 * One query in single-row mode (libpq never buffers a whole answer) with a client-side deadline
 * too, each row charged to opts->budget, at most max_rows rows (what stands for them is named
 * by what, e.g. "databases"); the rows as one result (caller clears) or NULL with *err.
 */
/* One query with a client-side deadline too; its last result (caller clears) or NULL, *err. */
PGresult *rift_diff_query(PGconn *c, const char *sql, int n, const char *const *params,
			  const struct rift_diff_opts *opts, int max_rows, const char *what,
			  char *err, size_t errlen);

/* Row diff of every table of one database; appends table objects to out (a JSON array). */
int rift_diff_data(PGconn *b, PGconn *o, const struct rift_diff_opts *opts, json_t *out, char *err,
		   size_t errlen);

/*
 * `pg_dump --schema-only` of database dbname on side s, run as the branch server's own uid;
 * *out (caller frees, NUL-terminated, *len bytes) at most 64 MiB. 0 or -errno with *err.
 */
int rift_diff_dump(const struct rift_diff_side *s, const char *dbname, int timeout_ms, char **out,
		   size_t *len, char *err, size_t errlen);

#endif
