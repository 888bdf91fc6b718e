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

/* One query with a client-side deadline too; its last result (caller clears) or NULL, *err. */
PGresult *rift_diff_query(PGconn *c, const char *sql, int n, const char *const *params,
			  int timeout_ms, char *err, size_t errlen);

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
