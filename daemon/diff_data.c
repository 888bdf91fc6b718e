/* diff_data.c — row diff of one database on two branch servers: per table, keyed by primary
 * key (whole rows without one), merged from two ordered streams. */
#include <assert.h>
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "diff_internal.h"
#include "rift/log.h"

#define MAX_VALUE_TEXT (64u * 1024u) /* a listed row longer than this is shown cut */

void rift_diff_ident(struct dbuf *b, const char *s)
{
	dbuf_put(b, "\"", 1);
	for (; *s; s++) {
		if (*s == '"')
			dbuf_put(b, "\"", 1);
		dbuf_put(b, s, 1);
	}
	dbuf_put(b, "\"", 1);
}

int64_t rift_diff_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The next result of c, waiting at most until deadline (monotonic ms): a server its superuser
 * stopped (SIGSTOP) honours no statement_timeout. NULL at the end of the results or on timeout
 * (*timed_out says which).
 */
static PGresult *next_result(PGconn *c, int64_t deadline, bool *timed_out)
{
	*timed_out = false;
	while (PQisBusy(c)) {
		struct pollfd p = { .fd = PQsocket(c), .events = POLLIN };
		int64_t left = deadline - rift_diff_now_ms();
		if (left <= 0) {
			*timed_out = true;
			return NULL;
		}
		if (poll(&p, 1, (int)(left > 1000 ? 1000 : left)) < 0 && errno != EINTR)
			return NULL;
		if (!PQconsumeInput(c))
			return NULL;
	}
	return PQgetResult(c);
}

/* Bytes a row costs: its values and libpq's bookkeeping of each. */
static size_t row_bytes(const PGresult *r)
{
	size_t n = 64;
	int f;

	for (f = 0; f < PQnfields(r); f++)
		n += (size_t)PQgetlength(r, 0, f) + 16;
	return n;
}

PGresult *rift_diff_query(PGconn *c, const char *sql, int n, const char *const *params,
			  const struct rift_diff_opts *opts, int max_rows, const char *what,
			  char *err, size_t errlen)
{
	int64_t deadline = rift_diff_now_ms() + opts->timeout_ms + 1000;
	PGresult *r = NULL, *rows = NULL, *last = NULL;
	bool timed_out = false;
	int nrows = 0, f;

	if (!PQsendQueryParams(c, sql, n, NULL, params, NULL, NULL, 0) || !PQsetSingleRowMode(c)) {
		snprintf(err, errlen, "%s", PQerrorMessage(c));
		return NULL;
	}
	/* one row at a time, copied into rows: libpq holds no more than one row of a hostile
	 * answer, and riftd no more than the budget */
	while ((r = next_result(c, deadline, &timed_out)) != NULL) {
		if (PQresultStatus(r) != PGRES_SINGLE_TUPLE) {
			PQclear(last);
			last = r;
			continue;
		}
		if (nrows >= max_rows) {
			snprintf(err, errlen,
				 "branch %s listed more than %d %s to rift diff, which compares at "
				 "most that many",
				 rift_diff_who(opts->budget, c), max_rows, what);
			goto fail;
		}
		if (!rift_diff_charge(opts->budget, c, NULL, row_bytes(r), err, errlen))
			goto fail;
		if (rows == NULL && (rows = PQcopyResult(r, PG_COPYRES_ATTRS)) == NULL)
			goto oom;
		for (f = 0; f < PQnfields(r); f++)
			if (!PQsetvalue(rows, nrows, f,
					PQgetisnull(r, 0, f) ? NULL : PQgetvalue(r, 0, f),
					PQgetisnull(r, 0, f) ? -1 : PQgetlength(r, 0, f)))
				goto oom;
		nrows++;
		PQclear(r);
	}
	if (timed_out) {
		snprintf(err, errlen, "the server did not answer within %d ms", opts->timeout_ms);
		goto fail;
	}
	if (last == NULL ||
	    (PQresultStatus(last) != PGRES_TUPLES_OK && PQresultStatus(last) != PGRES_COMMAND_OK)) {
		snprintf(err, errlen, "%s", last ? PQresultErrorMessage(last) : PQerrorMessage(c));
		goto fail;
	}
	if (rows == NULL)
		return last;
	PQclear(last);
	return rows;
oom:
	snprintf(err, errlen, "out of memory reading the answer of a branch server");
fail:
	/* the connection may be mid-answer: every caller drops it on failure, unread */
	PQclear(r);
	PQclear(rows);
	PQclear(last);
	return NULL;
}

/* The columns of a table, in order: names and types, as one result. */
static PGresult *columns(PGconn *c, const char *oid, const struct rift_diff_opts *opts, char *err,
			 size_t errlen)
{
	const char *p[1] = { oid };

	return rift_diff_query(
	    c,
	    "select a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) "
	    "from pg_catalog.pg_attribute a where a.attrelid = $1::pg_catalog.oid "
	    "and a.attnum > 0 and not a.attisdropped order by a.attnum",
	    1, p, opts, RIFT_DIFF_MAX_COLUMNS, "columns in one table", err, errlen);
}

/* The primary key's column names in key order, one per row. */
static PGresult *pkey(PGconn *c, const char *oid, const struct rift_diff_opts *opts, char *err,
		      size_t errlen)
{
	const char *p[1] = { oid };

	return rift_diff_query(
	    c,
	    "select a.attname from pg_catalog.pg_index i, pg_catalog.unnest(i.indkey::pg_catalog."
	    "int2[]) with ordinality k(attnum, n), pg_catalog.pg_attribute a where i.indrelid = "
	    "$1::pg_catalog.oid and i.indisprimary and a.attrelid = i.indrelid and a.attnum = "
	    "k.attnum order by k.n",
	    1, p, opts, RIFT_DIFF_MAX_COLUMNS, "primary key columns", err, errlen);
}

static bool has_col(const PGresult *cols, const char *name, const char *type)
{
	int i;

	for (i = 0; i < PQntuples(cols); i++)
		if (strcmp(PQgetvalue(cols, i, 0), name) == 0 &&
		    (type == NULL || strcmp(PQgetvalue(cols, i, 1), type) == 0))
			return true;
	return false;
}

/* A value for the listing: the JSON the server made, or a cut string when it is too long. */
static json_t *value_json(const char *text)
{
	size_t n = strlen(text);
	json_t *j;

	if (n <= MAX_VALUE_TEXT && (j = json_loads(text, JSON_DECODE_ANY, NULL)) != NULL)
		return j;
	return json_pack("{s:s%,s:b}", "cut", text, (size_t)(n > 1024 ? 1024 : n), "truncated", 1);
}

struct stream {
	PGconn *c;
	const struct rift_diff_opts *opts;
	PGresult *row; /* current row, NULL at the end */
	bool done;
};

static int advance(struct stream *s, int64_t deadline, char *err, size_t errlen)
{
	bool timed_out;
	PGresult *r;

	PQclear(s->row);
	s->row = NULL;
	if (s->done)
		return 0;
	r = next_result(s->c, deadline, &timed_out);
	if (r != NULL && PQresultStatus(r) == PGRES_SINGLE_TUPLE) {
		s->row = r;
		if (rift_diff_charge(s->opts->budget, s->c, NULL, row_bytes(r), err, errlen))
			return 0;
		/* not drained: the caller drops the connection, unread */
		s->done = true;
		return -EFBIG;
	}
	if (r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK) {
		PQclear(r);
		/* drain: the last result is followed by NULL */
		while ((r = next_result(s->c, deadline, &timed_out)) != NULL)
			PQclear(r);
		s->done = true;
		return 0;
	}
	snprintf(err, errlen, "%s",
		 timed_out ? "a table scan did not finish in time ([diff] timeout)"
		 : r       ? PQresultErrorMessage(r)
			   : PQerrorMessage(s->c));
	PQclear(r);
	s->done = true; /* not drained: the caller drops the connection */
	return -EIO;
}

/*
 * Lists a row when the table's and the whole answer's caps allow. Parsed JSON takes many times
 * its text in memory (a small number is a whole json_t): LISTED_COST per byte is charged too.
 */
#define LISTED_COST 24
static int list_row(json_t *rows, const struct rift_diff_opts *opts, PGconn *c, const char *op,
		    const char *key, const char *old, const char *new_, char *err, size_t errlen)
{
	size_t n = (key ? strlen(key) : 0) + (old ? strlen(old) : 0) + (new_ ? strlen(new_) : 0);
	json_t *o;

	if ((int)json_array_size(rows) >= opts->rows ||
	    (opts->budget && opts->budget->listed >= RIFT_DIFF_MAX_LISTED))
		return 0;
	if (!rift_diff_charge(opts->budget, c, NULL, n * LISTED_COST, err, errlen))
		return -EFBIG;
	if (opts->budget)
		opts->budget->listed++;
	o = json_pack("{s:s}", "op", op);
	if (o == NULL)
		return 0;
	if (key != NULL)
		json_object_set_new(o, "key", value_json(key));
	if (old != NULL)
		json_object_set_new(o, "old", value_json(old));
	if (new_ != NULL)
		json_object_set_new(o, "new", value_json(new_));
	json_array_append_new(rows, o);
	return 0;
}

/*
 * Compares table schema.name (oid bo on b, oo on o): rows by key, or whole rows as multisets,
 * of the whole table or, with from, of the FROM item from (the same SQL on both sides: the
 * changed blocks, diff_narrow.c). Appends a table object to out when anything differs.
 */
static int diff_table(PGconn *b, PGconn *o, const char *schema, const char *name, const char *bo,
		      const char *oo, const char *from, const struct rift_diff_opts *opts,
		      json_t *out, char *err, size_t errlen)
{
	PGresult *bc = NULL, *oc = NULL, *bk = NULL, *ok = NULL;
	struct dbuf q = { 0 }, kcols = { 0 }, vcols = { 0 };
	struct stream sb = { .c = b, .opts = opts }, so = { .c = o, .opts = opts };
	long long added = 0, removed = 0, changed = 0;
	json_t *rows = json_array(), *keys = json_array();
	bool keyed;
	int64_t deadline;
	int i, rc = 0, nk = 0, nv = 0;

	if ((bc = columns(b, bo, opts, err, errlen)) == NULL ||
	    (oc = columns(o, oo, opts, err, errlen)) == NULL ||
	    (bk = pkey(b, bo, opts, err, errlen)) == NULL ||
	    (ok = pkey(o, oo, opts, err, errlen)) == NULL) {
		rc = -EIO;
		goto out;
	}
	/* keyed when both sides have the same primary key on columns of the same type */
	keyed = PQntuples(bk) > 0 && PQntuples(bk) == PQntuples(ok);
	for (i = 0; keyed && i < PQntuples(bk); i++)
		keyed = strcmp(PQgetvalue(bk, i, 0), PQgetvalue(ok, i, 0)) == 0 &&
			has_col(oc, PQgetvalue(bk, i, 0), NULL);
	for (i = 0; keyed && i < PQntuples(bk); i++) {
		if (nk++)
			dbuf_puts(&kcols, ", ");
		dbuf_puts(&kcols, "\"rift$t\".");
		rift_diff_ident(&kcols, PQgetvalue(bk, i, 0));
		json_array_append_new(keys, json_string(PQgetvalue(bk, i, 0)));
	}
	/* values: the columns both sides have with the same type (the schema diff shows the rest)
	 */
	for (i = 0; i < PQntuples(bc); i++) {
		if (!has_col(oc, PQgetvalue(bc, i, 0), PQgetvalue(bc, i, 1)))
			continue;
		if (nv++)
			dbuf_puts(&vcols, ", ");
		dbuf_puts(&vcols, "\"rift$t\".");
		rift_diff_ident(&vcols, PQgetvalue(bc, i, 0));
	}
	if (nv == 0)
		goto out; /* nothing comparable */
	/* one ordered stream per side (aliases a table's columns cannot shadow: "x.*" is always
	 * the relation x);  ordering by the key's JSON text in the "C" collation is
	 * byte order, which is what strcmp below compares */
	dbuf_puts(&q, "select pg_catalog.row_to_json(\"rift$v\".*)::pg_catalog.text");
	if (keyed)
		dbuf_puts(&q, ", pg_catalog.row_to_json(\"rift$k\".*)::pg_catalog.text");
	if (from != NULL) {
		dbuf_puts(&q, " from ");
		dbuf_puts(&q, from);
	} else {
		dbuf_puts(&q, " from only ");
		rift_diff_ident(&q, schema);
		dbuf_puts(&q, ".");
		rift_diff_ident(&q, name);
	}
	dbuf_puts(&q, " as \"rift$t\", lateral (select ");
	dbuf_puts(&q, vcols.p);
	dbuf_puts(&q, ") \"rift$v\"");
	if (keyed) {
		dbuf_puts(&q, ", lateral (select ");
		dbuf_puts(&q, kcols.p);
		dbuf_puts(&q, ") \"rift$k\" order by "
			      "pg_catalog.row_to_json(\"rift$k\".*)::pg_catalog.text collate "
			      "\"C\"");
	} else {
		dbuf_puts(&q, " order by pg_catalog.row_to_json(\"rift$v\".*)::pg_catalog.text "
			      "collate \"C\"");
	}
	if (q.oom || kcols.oom || vcols.oom) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (!PQsendQuery(b, q.p) || !PQsetSingleRowMode(b) || !PQsendQuery(o, q.p) ||
	    !PQsetSingleRowMode(o)) {
		snprintf(err, errlen, "cannot query %s.%s: %s%s", schema, name, PQerrorMessage(b),
			 PQerrorMessage(o));
		rc = -EIO;
		goto out;
	}
	deadline = rift_diff_now_ms() + opts->timeout_ms + 1000;
	if (advance(&sb, deadline, err, errlen) != 0 || advance(&so, deadline, err, errlen) != 0) {
		rc = -EIO;
		goto drain;
	}
	while (sb.row != NULL || so.row != NULL) {
		int col = keyed ? 1 : 0, c;
		const char *bv = sb.row ? PQgetvalue(sb.row, 0, 0) : NULL;
		const char *ov = so.row ? PQgetvalue(so.row, 0, 0) : NULL;
		const char *bkey = sb.row ? PQgetvalue(sb.row, 0, col) : NULL;
		const char *okey = so.row ? PQgetvalue(so.row, 0, col) : NULL;
		c = bkey == NULL ? 1 : okey == NULL ? -1 : strcmp(bkey, okey);
		if (c < 0) {
			added++;
			rc = list_row(rows, opts, b, "added", keyed ? bkey : NULL, NULL, bv, err,
				      errlen);
			if (rc == 0)
				rc = advance(&sb, deadline, err, errlen);
		} else if (c > 0) {
			removed++;
			rc = list_row(rows, opts, o, "removed", keyed ? okey : NULL, ov, NULL, err,
				      errlen);
			if (rc == 0)
				rc = advance(&so, deadline, err, errlen);
		} else {
			if (keyed && strcmp(bv, ov) != 0) {
				changed++;
				rc = list_row(rows, opts, b, "changed", bkey, ov, bv, err, errlen);
			}
			if (rc == 0)
				rc = advance(&sb, deadline, err, errlen);
			if (rc == 0)
				rc = advance(&so, deadline, err, errlen);
		}
		if (rc != 0)
			goto drain;
	}
	if (added || removed || changed) {
		json_t *t = json_pack("{s:s,s:s,s:O,s:I,s:I,s:I,s:O}", "schema", schema, "table",
				      name, "key", keyed ? keys : json_null(), "added",
				      (json_int_t)added, "removed", (json_int_t)removed, "changed",
				      (json_int_t)changed, "rows", rows);
		if (t != NULL)
			json_array_append_new(out, t);
	}
drain:
	/* a failed side may leave the other mid-stream: its connection is dropped by the caller
	 * when rc != 0 */
	PQclear(sb.row);
	PQclear(so.row);
out:
	PQclear(bc);
	PQclear(oc);
	PQclear(bk);
	PQclear(ok);
	free(q.p);
	free(kcols.p);
	free(vcols.p);
	json_decref(rows);
	json_decref(keys);
	if (rc != 0 && err[0] != '\0') {
		char tmp[1024];
		snprintf(tmp, sizeof(tmp), "%s", err);
		snprintf(err, errlen, "comparing rows of %s.%s: %s", schema, name, tmp);
	}
	return rc;
}

#define TABLES_SQL                                                                                 \
	"select c.oid, n.nspname, c.relname, c.relfilenode, "                                      \
	"pg_catalog.pg_relation_size(c.oid), c.reltablespace, c.relpersistence from "              \
	"pg_catalog.pg_class c join "                                                              \
	"pg_catalog.pg_namespace n on n.oid = c.relnamespace where c.relkind = 'r' and "           \
	"n.nspname <> 'information_schema' and n.nspname !~ '^pg_' order by n.nspname collate "    \
	"\"C\", "                                                                                  \
	"c.relname collate \"C\""

static int count_rows(PGconn *c, const char *schema, const char *name,
		      const struct rift_diff_opts *opts, long long *n, char *err, size_t errlen)
{
	struct dbuf q = { 0 };
	PGresult *r;

	dbuf_puts(&q, "select pg_catalog.count(*) from only ");
	rift_diff_ident(&q, schema);
	dbuf_puts(&q, ".");
	rift_diff_ident(&q, name);
	if (q.oom)
		return -ENOMEM;
	r = rift_diff_query(c, q.p, 0, NULL, opts, 1, "count rows", err, errlen);
	free(q.p);
	if (r == NULL)
		return -EIO;
	if (PQntuples(r) != 1 || PQnfields(r) != 1) {
		PQclear(r);
		snprintf(err, errlen, "counting the rows of %s.%s gave no count", schema, name);
		return -EIO;
	}
	*n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return 0;
}

/*
 * Whether table oid (schema.name) still reads relation file node relfilenode on c, checked
 * under the lock a read would take anyway. The snapshot names the file its rows were in; a
 * VACUUM FULL, CLUSTER or ALTER TABLE ... TYPE committed on a live branch since then makes
 * a query read the new file, where the planned block numbers mean other rows. 1 same, 0 not,
 * -EIO with *err.
 */
static int same_file(PGconn *c, const char *schema, const char *name, const char *oid,
		     const char *relfilenode, const struct rift_diff_opts *opts, char *err,
		     size_t errlen)
{
	struct dbuf q = { 0 };
	PGresult *r;
	int rc;

	dbuf_puts(&q, "lock table only ");
	rift_diff_ident(&q, schema);
	dbuf_puts(&q, ".");
	rift_diff_ident(&q, name);
	dbuf_puts(&q, " in access share mode");
	r = q.oom ? NULL : rift_diff_query(c, q.p, 0, NULL, opts, 0, "rows", err, errlen);
	free(q.p);
	if (r == NULL)
		return -EIO;
	PQclear(r);
	r = rift_diff_query(c, "select pg_catalog.pg_relation_filenode($1::pg_catalog.oid)", 1,
			    (const char *const[]){ oid }, opts, 1, "rows", err, errlen);
	if (r == NULL)
		return -EIO;
	rc =
	    PQntuples(r) == 1 && PQnfields(r) == 1 && strcmp(PQgetvalue(r, 0, 0), relfilenode) == 0;
	PQclear(r);
	return rc;
}

/* Compares the table at row i of bt and j of ot, narrowed to the changed blocks when the store
 * allows; counts it in n. */
static int compare_table(PGconn *b, PGconn *o, const PGresult *bt, int i, const PGresult *ot, int j,
			 struct rift_diff_narrowing *n, const struct rift_diff_opts *opts,
			 json_t *out, char *err, size_t errlen)
{
	const char *schema = PQgetvalue(bt, i, 1), *name = PQgetvalue(bt, i, 2);
	struct rift_diff_plan p;
	int rc;

	rc = rift_diff_narrow_plan(n, opts, schema, name, PQgetvalue(bt, i, 3),
				   PQgetvalue(ot, j, 3), PQgetvalue(bt, i, 5), PQgetvalue(ot, j, 5),
				   PQgetvalue(bt, i, 6), PQgetvalue(ot, j, 6), PQgetvalue(bt, i, 4),
				   PQgetvalue(ot, j, 4), &p);
	if (rc != 0) {
		snprintf(err, errlen, "asking the store what changed in %s.%s: %s", schema, name,
			 strerror(-rc));
		goto out;
	}
	if (p.kind == RIFT_DIFF_NARROW) {
		int sb = same_file(b, schema, name, PQgetvalue(bt, i, 0), PQgetvalue(bt, i, 3),
				   opts, err, errlen);
		int so = sb < 0 ? sb
				: same_file(o, PQgetvalue(ot, j, 1), PQgetvalue(ot, j, 2),
					    PQgetvalue(ot, j, 0), PQgetvalue(ot, j, 3), opts, err,
					    errlen);
		if (sb < 0 || so < 0) {
			rc = -EIO;
			goto out;
		}
		if (!sb || !so) {
			p.kind = RIFT_DIFF_FULL;
			p.why = "rewritten during the diff";
		}
	}
	rc = rift_diff_narrow_note(n, &p, schema, name, PQgetvalue(bt, i, 4));
	if (rc != 0) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (p.kind == RIFT_DIFF_SKIP)
		goto out; /* no block of it changed on either side: the same rows */
	rc = diff_table(b, o, schema, name, PQgetvalue(bt, i, 0), PQgetvalue(ot, j, 0),
			p.kind == RIFT_DIFF_NARROW ? p.from.p : NULL, opts, out, err, errlen);
out:
	rift_diff_plan_free(&p);
	return rc;
}

int rift_diff_rows_begin(PGconn *b, PGconn *o, const struct rift_diff_opts *opts,
			 struct rift_diff_rows *r, char *err, size_t errlen)
{
	PGresult *bb = NULL, *ob = NULL;
	int64_t t0;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	/* one snapshot per side for every table */
	bb = rift_diff_query(b, "begin isolation level repeatable read read only", 0, NULL, opts, 0,
			     "rows", err, errlen);
	ob = bb ? rift_diff_query(o, "begin isolation level repeatable read read only", 0, NULL,
				  opts, 0, "rows", err, errlen)
		: NULL;
	if (bb == NULL || ob == NULL) {
		rc = -EIO;
		goto out;
	}
	r->bt = rift_diff_query(b, TABLES_SQL, 0, NULL, opts, RIFT_DIFF_MAX_TABLES, "tables", err,
				errlen);
	r->ot = r->bt ? rift_diff_query(o, TABLES_SQL, 0, NULL, opts, RIFT_DIFF_MAX_TABLES,
					"tables", err, errlen)
		      : NULL;
	if (r->bt == NULL || r->ot == NULL) {
		rc = -EIO;
		goto out;
	}
	if (PQnfields(r->bt) != 7 || PQnfields(r->ot) != 7) {
		snprintf(err, errlen, "a branch server answered the list of tables oddly");
		rc = -EIO;
		goto out;
	}
	/* the snapshots are taken (by the query above): now the store can stand for them */
	t0 = rift_diff_now_ms();
	rc = rift_diff_narrow_begin(b, o, opts, &r->n, err, errlen);
	r->checkpoint_ms = rift_diff_now_ms() - t0;
out:
	PQclear(bb);
	PQclear(ob);
	return rc;
}

int rift_diff_rows_compare(struct rift_diff_rows *r, PGconn *b, PGconn *o,
			   const struct rift_diff_opts *opts, json_t *out, json_t **scan, char *err,
			   size_t errlen)
{
	const PGresult *bt = r->bt, *ot = r->ot;
	int i = 0, j = 0, rc = 0, c;

	assert(bt != NULL && ot != NULL);
	*scan = NULL;
	while (rc == 0 && (i < PQntuples(bt) || j < PQntuples(ot))) {
		const char *bs = i < PQntuples(bt) ? PQgetvalue(bt, i, 1) : NULL;
		const char *os = j < PQntuples(ot) ? PQgetvalue(ot, j, 1) : NULL;
		long long cnt = 0;
		c = bs == NULL   ? 1
		    : os == NULL ? -1
				 : (strcmp(bs, os) != 0
					? strcmp(bs, os)
					: strcmp(PQgetvalue(bt, i, 2), PQgetvalue(ot, j, 2)));
		if (c == 0) {
			rc = compare_table(b, o, bt, i, ot, j, &r->n, opts, out, err, errlen);
			i++;
			j++;
			continue;
		}
		/* a table on one side only: all its rows are added (or removed) */
		if (c < 0)
			rc = count_rows(b, bs, PQgetvalue(bt, i, 2), opts, &cnt, err, errlen);
		else
			rc = count_rows(o, os, PQgetvalue(ot, j, 2), opts, &cnt, err, errlen);
		if (rc == 0 && cnt > 0)
			json_array_append_new(
			    out, json_pack("{s:s,s:s,s:n,s:I,s:I,s:I,s:[],s:s}", "schema",
					   c < 0 ? bs : os, "table",
					   c < 0 ? PQgetvalue(bt, i, 2) : PQgetvalue(ot, j, 2),
					   "key", "added", (json_int_t)(c < 0 ? cnt : 0), "removed",
					   (json_int_t)(c < 0 ? 0 : cnt), "changed", (json_int_t)0,
					   "rows", "only_in", c < 0 ? "branch" : "other"));
		if (c < 0)
			i++;
		else
			j++;
	}
	if (rc != 0)
		return rc;
	if (r->n.on)
		/* counts only: names come from the branch and may hold line breaks */
		LOG_INFO("diff",
			 "database %s: %lld tables compared, %lld skipped (no changed block), "
			 "%lld read %lld changed blocks, %lld in full (%lld rewritten); "
			 "checkpoints %lld ms",
			 r->n.dboid, r->n.compared, r->n.skipped, r->n.narrowed, r->n.blocks_read,
			 r->n.full, r->n.rewritten, (long long)r->checkpoint_ms);
	else
		LOG_INFO("diff", "whole tables compared: %s", r->n.why_not);
	*scan = rift_diff_narrow_report(&r->n);
	if (*scan == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

void rift_diff_rows_end(struct rift_diff_rows *r)
{
	rift_diff_narrow_end(&r->n);
	PQclear(r->bt);
	PQclear(r->ot);
	r->bt = r->ot = NULL;
}
