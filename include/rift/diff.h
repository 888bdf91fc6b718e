/* diff.h — what one branch changed against another: schema (from pg_dump) and rows (by key). */
#ifndef RIFT_DIFF_H
#define RIFT_DIFF_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "rift/instance.h"

/*
 * Schema diff of two `pg_dump --schema-only` texts of one database (any bytes; bounded by the
 * caller). Objects are pg_dump's entries, keyed by type, schema and name; each is added,
 * removed or changed (its text differs). Returns {"added": [OBJ], "removed": [OBJ], "changed":
 * [OBJ]} with OBJ = {"kind", "schema", "name"} plus "definition" (added, removed) or "old" and
 * "new" (changed) when with_text; and when sql is not NULL, *sql (caller frees) gets DDL that
 * turns other's schema into branch's. NULL without memory.
 */
json_t *rift_diff_schema(const char *branch_dump, size_t blen, const char *other_dump, size_t olen,
			 bool with_text, char **sql);

struct rift_diff_budget;
struct rift_store;

/*
 * Narrowing by the store: only relations whose files either side wrote since the two chains
 * parted are read, and only those blocks (daemon/diff_narrow.c says why that is complete).
 */
struct rift_diff_narrow {
	struct rift_store *store;
	const char *a, *b; /* store names of the branch side and the other side */
	/* their mount points: synced after the CHECKPOINT (NULL: not synced, as in tests) */
	const char *mnt_a, *mnt_b;
	const char *off; /* non-NULL: why this diff compares whole tables instead */
};

/* What to compare; zero-initialise. */
struct rift_diff_opts {
	int rows;       /* changed rows to list per table (0 = counts only) */
	bool sql;       /* include DDL turning other into branch */
	bool with_text; /* include object definitions */
	int timeout_ms; /* per query and per pg_dump */
	/* bytes the whole diff may receive from both servers (rows, catalog answers, pg_dump
	 * output); past it the diff fails: a hostile branch must not exhaust riftd's memory.
	 * 0 = no cap */
	unsigned long long max_bytes;
	const struct rift_diff_narrow *narrow; /* NULL: whole tables */
	struct rift_diff_budget *budget;       /* internal: set by rift_diff_branches */
};

/* Where a running branch server is, and who may connect (see rift_instance_connect). */
struct rift_diff_side {
	const char *name;
	const struct rift_instance *inst;
	const char *pg_user;
	const char *bindir; /* for pg_dump */
};

/*
 * Compares every database of branch b with the same database of branch o: schema (pg_dump run
 * as each branch's own server uid) and, for tables in both, rows keyed by primary key (whole
 * rows without one). *out (caller decrefs) is the answer documented in docs/cli.md. 0, or
 * -errno with *err saying what failed and what to do.
 */
int rift_diff_branches(const struct rift_diff_side *b, const struct rift_diff_side *o,
		       const struct rift_diff_opts *opts, json_t **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
