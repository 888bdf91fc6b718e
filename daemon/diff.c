/* diff.c — rift diff: compares every database of two running branch servers, schema and rows. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include "diff_internal.h"
#include "rift/log.h"

#define DATABASES_SQL                                                                              \
	"select datname from pg_catalog.pg_database where datallowconn and not datistemplate "     \
	"order by datname collate \"C\""

const char *rift_diff_who(const struct rift_diff_budget *b, const PGconn *c)
{
	int i;

	for (i = 0; b != NULL && c != NULL && i < 2; i++)
		if (b->who[i].c == c && b->who[i].name != NULL)
			return b->who[i].name;
	return "a branch";
}

bool rift_diff_charge(struct rift_diff_budget *b, const PGconn *c, const char *name, size_t n,
		      char *err, size_t errlen)
{
	if (b == NULL)
		return true;
	b->used += n;
	if (b->max == 0 || b->used <= b->max)
		return true;
	if (name == NULL)
		name = rift_diff_who(b, c);
	snprintf(
	    err, errlen,
	    "branch %s answered more than %llu MiB to rift diff ([diff] max_bytes = %llu "
	    "bytes, both branches together); riftd stopped reading and closed its connections. "
	    "Raise [diff] max_bytes in rift.conf to compare this much data",
	    name, (b->max + (1u << 20) - 1) >> 20, b->max);
	return false;
}

/* Whose connection is whose, for rift_diff_charge's message. */
static void budget_who(const struct rift_diff_opts *opts, const PGconn *bc, const char *bname,
		       const PGconn *oc, const char *oname)
{
	if (opts->budget == NULL)
		return;
	opts->budget->who[0].c = bc;
	opts->budget->who[0].name = bname;
	opts->budget->who[1].c = oc;
	opts->budget->who[1].name = oname;
}

static PGconn *connect_side(const struct rift_diff_side *s, const char *db, int timeout_ms,
			    char *err, size_t errlen)
{
	char why[512];
	PGconn *c = rift_instance_connect(s->inst, s->pg_user, db, timeout_ms, why, sizeof(why));

	if (c == NULL)
		snprintf(err, errlen, "cannot connect to database \"%s\" of branch \"%s\": %s", db,
			 s->name, why);
	return c;
}

/* One side's pg_dump, run on a thread of its own. */
struct dump_job {
	const struct rift_diff_side *side;
	const char *db;
	int timeout_ms, rc;
	char *out;
	size_t len;
	char err[1024];
	pthread_t thread;
	bool threaded;
};

static void *dump_thread(void *arg)
{
	struct dump_job *j = arg;

	pthread_setname_np(pthread_self(), "diff-dump");
	j->rc =
	    rift_diff_dump(j->side, j->db, j->timeout_ms, &j->out, &j->len, j->err, sizeof(j->err));
	return NULL;
}

/*
 * Starts pg_dump of db on side s on a thread of its own. Why threads: each dump waits mostly on
 * its server, and the two dumps were a fixed half of every diff; run beside each other and
 * beside the row comparison, they cost what the slowest of the three costs.
 */
static void dump_start(struct dump_job *j, const struct rift_diff_side *s, const char *db,
		       int timeout_ms)
{
	memset(j, 0, sizeof(*j));
	j->side = s;
	j->db = db;
	j->timeout_ms = timeout_ms;
	j->threaded = pthread_create(&j->thread, NULL, dump_thread, j) == 0;
}

/* Waits for j (runs it here if no thread could be had); 0 or -errno with j->err. */
static int dump_finish(struct dump_job *j)
{
	if (j->threaded)
		pthread_join(j->thread, NULL);
	else
		dump_thread(j);
	return j->rc;
}

/*
 * Schema and rows of database db on both sides, as one object of "databases". Both sides'
 * pg_dump run while the rows are compared, unless the store shows that no catalog changed on
 * either side (then the schemas are the same without asking).
 */
static int diff_database(const struct rift_diff_side *b, const struct rift_diff_side *o,
			 const char *db, const struct rift_diff_opts *opts, json_t *dbs, char *err,
			 size_t errlen)
{
	struct dump_job bj = { 0 }, oj = { 0 };
	struct rift_diff_rows rows;
	char *sql = NULL;
	PGconn *bc = NULL, *oc = NULL;
	json_t *schema = NULL, *tables = json_array(), *scan = NULL, *d;
	int64_t t0 = rift_diff_now_ms(), t_rows = 0, t_dumps = 0;
	bool same_catalogs = false, dumping = false;
	int rc;

	memset(&rows, 0, sizeof(rows));
	bc = connect_side(b, db, opts->timeout_ms, err, errlen);
	oc = bc ? connect_side(o, db, opts->timeout_ms, err, errlen) : NULL;
	if (bc == NULL || oc == NULL) {
		rc = -ECONNREFUSED;
		goto out;
	}
	if (tables == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	budget_who(opts, bc, b->name, oc, o->name);
	rc = rift_diff_rows_begin(bc, oc, opts, &rows, err, errlen);
	if (rc == 0)
		rc = rift_diff_narrow_catalogs(&rows.n, bc, oc, opts, &same_catalogs, err, errlen);
	if (rc == 0 && !same_catalogs) {
		dump_start(&bj, b, db, opts->timeout_ms);
		dump_start(&oj, o, db, opts->timeout_ms);
		dumping = true;
	}
	if (rc == 0)
		rc = rift_diff_rows_compare(&rows, bc, oc, opts, tables, &scan, err, errlen);
	budget_who(opts, NULL, NULL, NULL, NULL);
	t_rows = rift_diff_now_ms() - t0;
	if (dumping) {
		/* always joined: the threads use db and the sides */
		int brc = dump_finish(&bj), orc = dump_finish(&oj);
		if (rc == 0 && (brc != 0 || orc != 0)) {
			snprintf(err, errlen, "%s", brc != 0 ? bj.err : oj.err);
			rc = brc != 0 ? brc : orc;
		}
		if (rc == 0 &&
		    (!rift_diff_charge(opts->budget, NULL, b->name, bj.len, err, errlen) ||
		     !rift_diff_charge(opts->budget, NULL, o->name, oj.len, err, errlen)))
			rc = -EFBIG;
	}
	t_dumps = rift_diff_now_ms() - t0;
	if (rc != 0)
		goto out;
	/* the same catalogs: two empty dumps compare as the same schema */
	schema = rift_diff_schema(bj.out ? bj.out : "", bj.len, oj.out ? oj.out : "", oj.len,
				  opts->with_text, opts->sql ? &sql : NULL);
	if (schema == NULL || json_object_set_new(scan, "schema_dumped", json_boolean(dumping))) {
		snprintf(err, errlen, "out of memory comparing the schemas of database \"%s\"", db);
		rc = -ENOMEM;
		goto out;
	}
	if (dumping)
		LOG_INFO("diff", "database %s: rows %lld ms, pg_dump beside them %lld ms",
			 rows.n.dboid[0] ? rows.n.dboid : "?", (long long)t_rows,
			 (long long)t_dumps);
	else
		LOG_INFO("diff", "database %s: rows %lld ms, no catalog changed (no pg_dump)",
			 rows.n.dboid, (long long)t_rows);
	d = json_pack("{s:s,s:O,s:O,s:O}", "name", db, "schema", schema, "tables", tables, "scan",
		      scan);
	if (d != NULL && sql != NULL)
		json_object_set_new(d, "sql", json_string(sql));
	if (d == NULL || json_array_append_new(dbs, d) != 0) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
	}
out:
	rift_diff_rows_end(&rows);
	PQfinish(bc);
	PQfinish(oc);
	free(bj.out);
	free(oj.out);
	free(sql);
	json_decref(schema);
	json_decref(tables);
	json_decref(scan);
	return rc;
}

int rift_diff_branches(const struct rift_diff_side *b, const struct rift_diff_side *o,
		       const struct rift_diff_opts *caller, json_t **out, char *err, size_t errlen)
{
	struct rift_diff_budget budget = { .max = caller->max_bytes };
	struct rift_diff_opts o2 = *caller, *opts = &o2;
	PGconn *bc = NULL, *oc = NULL;
	PGresult *bl = NULL, *ol = NULL;
	json_t *dbs = json_array();
	int i = 0, j = 0, rc = 0, c;

	o2.budget = &budget;

	*out = NULL;
	if (dbs == NULL)
		return -ENOMEM;
	bc = connect_side(b, "postgres", opts->timeout_ms, err, errlen);
	oc = bc ? connect_side(o, "postgres", opts->timeout_ms, err, errlen) : NULL;
	if (bc == NULL || oc == NULL) {
		rc = -ECONNREFUSED;
		goto out;
	}
	budget_who(opts, bc, b->name, oc, o->name);
	bl = rift_diff_query(bc, DATABASES_SQL, 0, NULL, opts, RIFT_DIFF_MAX_DATABASES, "databases",
			     err, errlen);
	ol = bl ? rift_diff_query(oc, DATABASES_SQL, 0, NULL, opts, RIFT_DIFF_MAX_DATABASES,
				  "databases", err, errlen)
		: NULL;
	budget_who(opts, NULL, NULL, NULL, NULL);
	if (bl == NULL || ol == NULL) {
		rc = -EIO;
		goto out;
	}
	while (rc == 0 && (i < PQntuples(bl) || j < PQntuples(ol))) {
		const char *bn = i < PQntuples(bl) ? PQgetvalue(bl, i, 0) : NULL;
		const char *on = j < PQntuples(ol) ? PQgetvalue(ol, j, 0) : NULL;
		c = bn == NULL ? 1 : on == NULL ? -1 : strcmp(bn, on);
		if (c == 0) {
			rc = diff_database(b, o, bn, opts, dbs, err, errlen);
			i++;
			j++;
		} else {
			json_array_append_new(dbs,
					      json_pack("{s:s,s:s}", "name", c < 0 ? bn : on,
							"only_in", c < 0 ? "branch" : "other"));
			if (c < 0)
				i++;
			else
				j++;
		}
	}
	if (rc == 0) {
		*out = json_pack("{s:s,s:s,s:O}", "branch", b->name, "against", o->name,
				 "databases", dbs);
		if (*out == NULL)
			rc = -ENOMEM;
	}
out:
	PQclear(bl);
	PQclear(ol);
	PQfinish(bc);
	PQfinish(oc);
	json_decref(dbs);
	return rc;
}
