/* diff.c — rift diff: compares every database of two running branch servers, schema and rows. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include "diff_internal.h"

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

/* One side's pg_dump, run on a thread of its own beside the other side's. */
struct dump_job {
	const struct rift_diff_side *side;
	const char *db;
	int timeout_ms, rc;
	char *out;
	size_t len;
	char err[1024];
};

static void *dump_thread(void *arg)
{
	struct dump_job *j = arg;

	j->rc =
	    rift_diff_dump(j->side, j->db, j->timeout_ms, &j->out, &j->len, j->err, sizeof(j->err));
	return NULL;
}

/*
 * pg_dump of db on both sides at once: each waits mostly on its server, and the two dumps
 * were a fixed second of every diff. Both outputs (caller frees) or -errno with *err.
 */
static int dump_both(const struct rift_diff_side *b, const struct rift_diff_side *o, const char *db,
		     const struct rift_diff_opts *opts, char **bdump, size_t *blen, char **odump,
		     size_t *olen, char *err, size_t errlen)
{
	struct dump_job oj = { .side = o, .db = db, .timeout_ms = opts->timeout_ms };
	pthread_t t;
	bool threaded = pthread_create(&t, NULL, dump_thread, &oj) == 0;
	int rc;

	if (!threaded)
		dump_thread(&oj); /* no thread to be had: one after the other */
	rc = rift_diff_dump(b, db, opts->timeout_ms, bdump, blen, err, errlen);
	if (threaded)
		pthread_join(t, NULL);
	if (rc == 0 && oj.rc != 0) {
		snprintf(err, errlen, "%s", oj.err);
		rc = oj.rc;
	}
	*odump = oj.out;
	*olen = oj.len;
	return rc;
}

/* Schema and rows of database db on both sides, as one object of "databases". */
static int diff_database(const struct rift_diff_side *b, const struct rift_diff_side *o,
			 const char *db, const struct rift_diff_opts *opts, json_t *dbs, char *err,
			 size_t errlen)
{
	char *bdump = NULL, *odump = NULL, *sql = NULL;
	size_t blen = 0, olen = 0;
	PGconn *bc = NULL, *oc = NULL;
	json_t *schema = NULL, *tables = json_array(), *scan = NULL, *d;
	int rc;

	rc = dump_both(b, o, db, opts, &bdump, &blen, &odump, &olen, err, errlen);
	if (rc == 0 && !rift_diff_charge(opts->budget, NULL, b->name, blen, err, errlen))
		rc = -EFBIG;
	if (rc == 0 && !rift_diff_charge(opts->budget, NULL, o->name, olen, err, errlen))
		rc = -EFBIG;
	if (rc != 0)
		goto out;
	schema =
	    rift_diff_schema(bdump, blen, odump, olen, opts->with_text, opts->sql ? &sql : NULL);
	if (schema == NULL || tables == NULL) {
		snprintf(err, errlen, "out of memory comparing the schemas of database \"%s\"", db);
		rc = -ENOMEM;
		goto out;
	}
	bc = connect_side(b, db, opts->timeout_ms, err, errlen);
	oc = bc ? connect_side(o, db, opts->timeout_ms, err, errlen) : NULL;
	if (bc == NULL || oc == NULL) {
		rc = -ECONNREFUSED;
		goto out;
	}
	budget_who(opts, bc, b->name, oc, o->name);
	rc = rift_diff_data(bc, oc, opts, tables, &scan, err, errlen);
	budget_who(opts, NULL, NULL, NULL, NULL);
	if (rc != 0)
		goto out;
	d = json_pack("{s:s,s:O,s:O,s:O}", "name", db, "schema", schema, "tables", tables, "scan",
		      scan);
	if (d != NULL && sql != NULL)
		json_object_set_new(d, "sql", json_string(sql));
	if (d == NULL || json_array_append_new(dbs, d) != 0) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
	}
out:
	PQfinish(bc);
	PQfinish(oc);
	free(bdump);
	free(odump);
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
