/* diff_internal.h — what diff.c, diff_data.c and diff_dump.c share. */
#ifndef RIFT_DIFF_INTERNAL_H
#define RIFT_DIFF_INTERNAL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rift/dbuf.h"
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

/* Monotonic milliseconds, for deadlines and the phase times diff logs. */
int64_t rift_diff_now_ms(void);

/*
 * One query in single-row mode (libpq never buffers a whole answer) with a client-side deadline
 * too, each row charged to opts->budget, at most max_rows rows (what stands for them is named
 * by what, e.g. "databases"); the rows as one result (caller clears) or NULL with *err.
 */
PGresult *rift_diff_query(PGconn *c, const char *sql, int n, const char *const *params,
			  const struct rift_diff_opts *opts, int max_rows, const char *what,
			  char *err, size_t errlen);

/*
 * `pg_dump --schema-only` of database dbname on side s, run as the branch server's own uid;
 * *out (caller frees, NUL-terminated, *len bytes) at most 64 MiB. 0 or -errno with *err.
 */
int rift_diff_dump(const struct rift_diff_side *s, const char *dbname, int timeout_ms, char **out,
		   size_t *len, char *err, size_t errlen);

/* A SQL identifier, always double-quoted. */
void rift_diff_ident(struct dbuf *b, const char *s);

/* ---- narrowing by the store (diff_narrow.c) ---- */

/* What narrowing found for one database, and what it reports. */
struct rift_diff_narrowing {
	bool on;           /* the store's changed blocks may stand for the tables */
	char why_not[200]; /* !on: why whole tables are compared */
	char dboid[16];    /* the database's oid: its files are base/<dboid>/... */
	long long compared, skipped, narrowed, full, rewritten, blocks_read;
	json_t *narrow_list, *full_list; /* owned; rift_diff_narrow_end frees */
};

enum rift_diff_plan_kind { RIFT_DIFF_FULL, RIFT_DIFF_SKIP, RIFT_DIFF_NARROW };

/* How to read one table. */
struct rift_diff_plan {
	enum rift_diff_plan_kind kind;
	const char *why;  /* RIFT_DIFF_FULL while narrowing is on: why (static text) */
	uint64_t *blocks; /* changed blocks below tail, sorted (owned) */
	size_t nblocks;
	uint64_t tail;        /* blocks >= tail are read too */
	uint64_t size_blocks; /* the larger side's size */
	uint64_t read_blocks; /* blocks the ranges cover */
	struct dbuf from;     /* RIFT_DIFF_NARROW: the FROM item reading those blocks (owned) */
};

/*
 * After the snapshot of both sides was taken on b and o: flushes both servers (CHECKPOINT, so
 * the store holds what the snapshot sees) and decides whether this database can be narrowed
 * (n->on, else n->why_not). 0, or -errno with *err when a query failed (the connections are
 * then to be dropped). The caller calls rift_diff_narrow_end in every case.
 */
int rift_diff_narrow_begin(PGconn *b, PGconn *o, const struct rift_diff_opts *opts,
			   struct rift_diff_narrowing *n, char *err, size_t errlen);

/*
 * The plan for table schema.name with relfilenode brel on the branch side and orel on the
 * other, tablespaces btsp and otsp, relpersistence bpersist and opersist, sizes in bytes bbytes
 * and obytes (server text, untrusted). 0 (p filled, caller frees it with rift_diff_plan_free) or
 * -errno.
 */
int rift_diff_narrow_plan(struct rift_diff_narrowing *n, const struct rift_diff_opts *opts,
			  const char *schema, const char *name, const char *brel, const char *orel,
			  const char *btsp, const char *otsp, const char *bpersist,
			  const char *opersist, const char *bbytes, const char *obytes,
			  struct rift_diff_plan *p);
void rift_diff_plan_free(struct rift_diff_plan *p);

/* Counts and lists table schema.name (bytes: its size on the branch side) as planned. */
int rift_diff_narrow_note(struct rift_diff_narrowing *n, const struct rift_diff_plan *p,
			  const char *schema, const char *name, const char *bytes);

/*
 * Whether the store shows that neither side (b, o: inside rift_diff_rows_begin's snapshots)
 * wrote a block of any system catalog of the database, or of a shared catalog, since the chains
 * parted: then pg_dump --schema-only prints the same on both sides, from the same catalog
 * blocks, and need not run. *same false when narrowing is off or anything is unsure (a catalog
 * rewritten, a hint bit set and flushed: the dumps run then). 0, or -EIO with *err when a query
 * failed.
 */
int rift_diff_narrow_catalogs(const struct rift_diff_narrowing *n, PGconn *b, PGconn *o,
			      const struct rift_diff_opts *opts, bool *same, char *err,
			      size_t errlen);

/* The database's "scan" object (new reference, NULL without memory). */
json_t *rift_diff_narrow_report(struct rift_diff_narrowing *n);
void rift_diff_narrow_end(struct rift_diff_narrowing *n);

/* One database's row comparison between rift_diff_rows_begin and _end. */
struct rift_diff_rows {
	PGresult *bt, *ot;            /* the tables of each side, in one snapshot per side */
	struct rift_diff_narrowing n; /* what the store says (n.on) */
	int64_t checkpoint_ms;        /* what flushing both servers took, for the log */
};

/*
 * Takes one snapshot per side (b, o: connections to one database, left inside a read-only
 * transaction), lists both sides' tables, and asks whether the store can stand for them
 * (rift_diff_narrow_begin). 0 or -errno with *err; rift_diff_rows_end in every case.
 */
int rift_diff_rows_begin(PGconn *b, PGconn *o, const struct rift_diff_opts *opts,
			 struct rift_diff_rows *r, char *err, size_t errlen);

/*
 * Row diff of every table listed by rift_diff_rows_begin; appends table objects to out (a JSON
 * array) and sets *scan (caller decrefs) to what narrowing by the store did (docs/cli.md).
 */
int rift_diff_rows_compare(struct rift_diff_rows *r, PGconn *b, PGconn *o,
			   const struct rift_diff_opts *opts, json_t *out, json_t **scan, char *err,
			   size_t errlen);
void rift_diff_rows_end(struct rift_diff_rows *r);

#endif
