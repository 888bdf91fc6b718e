/* diff.c — rift diff: compares every database of two running branch servers, schema and rows. */
#include <errno.h>
#include <stdio.h>

#include "diff_internal.h"

#define DATABASES_SQL                                                                              \
	"select datname from pg_catalog.pg_database where datallowconn and not datistemplate "     \
	"order by datname collate \"C\""

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

/* Schema and rows of database db on both sides, as one object of "databases". */
static int diff_database(const struct rift_diff_side *b, const struct rift_diff_side *o,
			 const char *db, const struct rift_diff_opts *opts, json_t *dbs, char *err,
			 size_t errlen)
{
	char *bdump = NULL, *odump = NULL, *sql = NULL;
	size_t blen, olen;
	PGconn *bc = NULL, *oc = NULL;
	json_t *schema = NULL, *tables = json_array(), *d;
	int rc;

	rc = rift_diff_dump(b, db, opts->timeout_ms, &bdump, &blen, err, errlen);
	if (rc == 0)
		rc = rift_diff_dump(o, db, opts->timeout_ms, &odump, &olen, err, errlen);
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
	rc = rift_diff_data(bc, oc, opts, tables, err, errlen);
	if (rc != 0)
		goto out;
	d = json_pack("{s:s,s:O,s:O}", "name", db, "schema", schema, "tables", tables);
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
	return rc;
}

int rift_diff_branches(const struct rift_diff_side *b, const struct rift_diff_side *o,
		       const struct rift_diff_opts *opts, json_t **out, char *err, size_t errlen)
{
	PGconn *bc = NULL, *oc = NULL;
	PGresult *bl = NULL, *ol = NULL;
	json_t *dbs = json_array();
	int i = 0, j = 0, rc = 0, c;

	*out = NULL;
	if (dbs == NULL)
		return -ENOMEM;
	bc = connect_side(b, "postgres", opts->timeout_ms, err, errlen);
	oc = bc ? connect_side(o, "postgres", opts->timeout_ms, err, errlen) : NULL;
	if (bc == NULL || oc == NULL) {
		rc = -ECONNREFUSED;
		goto out;
	}
	bl = rift_diff_query(bc, DATABASES_SQL, 0, NULL, opts->timeout_ms, err, errlen);
	ol = bl ? rift_diff_query(oc, DATABASES_SQL, 0, NULL, opts->timeout_ms, err, errlen) : NULL;
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
