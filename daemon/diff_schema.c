/* diff_schema.c — compares two pg_dump --schema-only texts object by object and writes the DDL
 * that turns one into the other; pure (no I/O), takes any bytes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rift/dbuf.h"
#include "rift/diff.h"

/*
 * pg_dump's plain output is a list of entries, each after a header block
 *   --
 *   -- Name: accounts; Type: TABLE; Schema: public; Owner: rift
 *   --
 * in dependency order. Comparing entries by (Type, Schema, Name) covers every kind of object
 * pg_dump knows (tables, columns, defaults, indexes, constraints, views, functions, types,
 * sequences, extensions, triggers, policies, comments, grants), with Postgres's own
 * definitions, rather than a second catalog reader of rift's that would lag behind it.
 */

#define HDR "\n--\n-- Name: "

struct obj {
	const char *type, *schema, *name; /* views into the header copy */
	char *hdr;                        /* owned copy of the header line (fields cut by NULs) */
	char *key;                        /* owned: "type\x1fschema\x1fname" */
	char *body;                       /* owned: the entry without SET lines, trimmed */
	size_t order;                     /* position in its dump */
};

struct objs {
	struct obj *v;
	size_t n, cap;
};

/* A double-quoted identifier (always quoted: valid whatever the name holds). */
static void put_ident(struct dbuf *b, const char *s, size_t n)
{
	size_t i;

	dbuf_put(b, "\"", 1);
	for (i = 0; i < n; i++) {
		if (s[i] == '"')
			dbuf_put(b, "\"", 1);
		dbuf_put(b, s + i, 1);
	}
	dbuf_put(b, "\"", 1);
}

static void put_qualified(struct dbuf *b, const struct obj *o, const char *name, size_t n)
{
	if (strcmp(o->schema, "-") != 0) {
		put_ident(b, o->schema, strlen(o->schema));
		dbuf_put(b, ".", 1);
	}
	put_ident(b, name, n);
}

static void free_objs(struct objs *s)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		free(s->v[i].hdr);
		free(s->v[i].key);
		free(s->v[i].body);
	}
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

static const char *find_n(const char *p, const char *end, const char *needle)
{
	size_t nl = strlen(needle);

	for (; p + nl <= end; p++)
		if (memcmp(p, needle, nl) == 0)
			return p;
	return NULL;
}

/* The body without SET/set_config lines (pg_dump emits them between entries wherever a
 * setting changes, so they would move with unrelated objects), trimmed. */
static char *clean_body(const char *p, const char *end)
{
	struct dbuf b = { 0 };
	const char *line = p, *nl;

	while (line < end) {
		nl = memchr(line, '\n', (size_t)(end - line));
		if (nl == NULL)
			nl = end;
		if (!((nl - line >= 4 && memcmp(line, "SET ", 4) == 0) ||
		      (nl - line >= 29 &&
		       memcmp(line, "SELECT pg_catalog.set_config(", 29) == 0))) {
			dbuf_put(&b, line, (size_t)(nl - line));
			dbuf_put(&b, "\n", 1);
		}
		line = nl + 1;
	}
	dbuf_put(&b, "", 0);
	if (b.oom || b.p == NULL) {
		free(b.p);
		return NULL;
	}
	/* trim blank lines at both ends */
	{
		size_t s = 0, e = b.len;
		while (s < e && (b.p[s] == '\n' || b.p[s] == ' '))
			s++;
		while (e > s && (b.p[e - 1] == '\n' || b.p[e - 1] == ' '))
			e--;
		memmove(b.p, b.p + s, e - s);
		b.p[e - s] = '\0';
	}
	return b.p;
}

/* Splits a header line "Name: N; Type: T; Schema: S; Owner: O" into o's fields. */
static int parse_header(struct obj *o, const char *p, size_t n)
{
	char *t, *s, *own;

	o->hdr = malloc(n + 1);
	if (o->hdr == NULL)
		return -ENOMEM;
	memcpy(o->hdr, p, n);
	o->hdr[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (o->hdr[i] == '\0' || o->hdr[i] == '\x1f')
			o->hdr[i] = '?';
	t = strstr(o->hdr, "; Type: ");
	s = t ? strstr(t, "; Schema: ") : NULL;
	if (t == NULL || s == NULL)
		return -EINVAL;
	own = strstr(s, "; Owner: ");
	if (own == NULL)
		own = strstr(s, "; Tablespace: ");
	*t = '\0';
	*s = '\0';
	if (own != NULL)
		*own = '\0';
	o->name = o->hdr;
	o->type = t + 8;
	o->schema = s + 10;
	{
		size_t kl = strlen(o->type) + strlen(o->schema) + strlen(o->name) + 3;
		o->key = malloc(kl);
		if (o->key == NULL)
			return -ENOMEM;
		snprintf(o->key, kl, "%s\x1f%s\x1f%s", o->type, o->schema, o->name);
	}
	return 0;
}

static int parse_dump(const char *text, size_t len, struct objs *out)
{
	const char *end = text + len, *p = text, *h, *hend, *body, *next, *stop;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	stop = find_n(text, end, "\n--\n-- PostgreSQL database dump complete");
	if (stop != NULL)
		end = stop;
	h = find_n(p, end, HDR);
	while (h != NULL) {
		struct obj o = { 0 };
		h += strlen(HDR) - strlen("Name: ");
		hend = memchr(h, '\n', (size_t)(end - h));
		if (hend == NULL)
			break;
		body = hend + 1;
		if (end - body >= 3 && memcmp(body, "--\n", 3) == 0)
			body += 3;
		next = find_n(body, end, HDR);
		if (parse_header(&o, h + 6, (size_t)(hend - h - 6)) == 0) {
			o.body = clean_body(body, next ? next : end);
			o.order = out->n;
			if (o.body == NULL) {
				rc = -ENOMEM;
			} else if (out->n == out->cap) {
				size_t cap = out->cap ? out->cap * 2 : 256;
				struct obj *nv = realloc(out->v, cap * sizeof(*nv));
				if (nv == NULL)
					rc = -ENOMEM;
				else {
					out->v = nv;
					out->cap = cap;
				}
			}
			if (rc == 0) {
				out->v[out->n++] = o;
				o.hdr = o.key = o.body = NULL;
			}
		}
		free(o.hdr);
		free(o.key);
		free(o.body);
		if (rc != 0)
			break;
		h = next;
	}
	if (rc != 0)
		free_objs(out);
	return rc;
}

static int by_key(const void *a, const void *b)
{
	const struct obj *const *x = a, *const *y = b;

	return strcmp((*x)->key, (*y)->key);
}

static const struct obj **sorted(const struct objs *s)
{
	const struct obj **v = malloc((s->n ? s->n : 1) * sizeof(*v));
	size_t i;

	if (v == NULL)
		return NULL;
	for (i = 0; i < s->n; i++)
		v[i] = &s->v[i];
	qsort(v, s->n, sizeof(*v), by_key);
	return v;
}

static json_t *obj_json(const struct obj *o, const struct obj *newer, bool with_text)
{
	char kind[64];
	size_t i;
	json_t *j;

	snprintf(kind, sizeof(kind), "%s", o->type);
	for (i = 0; kind[i]; i++)
		kind[i] = (char)(kind[i] >= 'A' && kind[i] <= 'Z' ? kind[i] + 32 : kind[i]);
	j = json_pack("{s:s,s:s?,s:s}", "kind", kind, "schema",
		      strcmp(o->schema, "-") ? o->schema : NULL, "name", o->name);
	if (j == NULL || !with_text)
		return j;
	if (newer == NULL)
		json_object_set_new(j, "definition", json_string(o->body));
	else {
		json_object_set_new(j, "old", json_string(o->body));
		json_object_set_new(j, "new", json_string(newer->body));
	}
	return j;
}

/* ---- DDL from OTHER to BRANCH ---- */

static bool is_type(const struct obj *o, const char *t)
{
	return strcmp(o->type, t) == 0;
}

/* Length of the identifier at p (quoted or not), 0 if none. */
static size_t ident_len(const char *p)
{
	size_t i = 0;

	if (p[0] == '"') {
		for (i = 1; p[i]; i++)
			if (p[i] == '"') {
				if (p[i + 1] != '"')
					return i + 1;
				i++;
			}
		return 0;
	}
	while (p[i] && p[i] != ' ' && p[i] != '\n' && p[i] != ';' && p[i] != ',' && p[i] != '(')
		i++;
	return i;
}

/* Each GRANT line of an ACL entry as a REVOKE and each REVOKE as a GRANT: undoes it. */
static void undo_acl(struct dbuf *b, const char *body)
{
	const char *line = body, *nl, *to;

	while (*line) {
		nl = strchr(line, '\n');
		if (nl == NULL)
			nl = line + strlen(line);
		/* each search starts past what was matched before it, so no length is negative
		 * ("GRANT TO x", " TO WITH GRANT OPTION": the dump is the branch's to write) */
		if (strncmp(line, "GRANT ", 6) == 0 &&
		    (to = find_n(line + 6, nl, " TO ")) != NULL) {
			const char *w = find_n(to + 4, nl, " WITH GRANT OPTION");
			dbuf_puts(b, "REVOKE ");
			dbuf_put(b, line + 6, (size_t)(to - line - 6));
			dbuf_puts(b, " FROM ");
			dbuf_put(b, to + 4, (size_t)((w ? w : nl) - to - 4));
			if (w != NULL)
				dbuf_puts(b, ";");
			dbuf_puts(b, "\n");
		} else if (strncmp(line, "REVOKE ", 7) == 0 &&
			   (to = find_n(line + 7, nl, " FROM ")) != NULL) {
			dbuf_puts(b, "GRANT ");
			dbuf_put(b, line + 7, (size_t)(to - line - 7));
			dbuf_puts(b, " TO ");
			dbuf_put(b, to + 6, (size_t)(nl - to - 6));
			dbuf_puts(b, "\n");
		}
		line = *nl ? nl + 1 : nl;
	}
}

/* DDL that removes object o (of OTHER's dump); false when rift cannot say how. */
static bool drop_sql(struct dbuf *b, const struct obj *o)
{
	static const char *const plain[][2] = {
		{ "TABLE", "TABLE" },
		{ "VIEW", "VIEW" },
		{ "MATERIALIZED VIEW", "MATERIALIZED VIEW" },
		{ "SEQUENCE", "SEQUENCE" },
		{ "INDEX", "INDEX" },
		{ "TYPE", "TYPE" },
		{ "DOMAIN", "DOMAIN" },
		{ "SCHEMA", "SCHEMA" },
		{ "EXTENSION", "EXTENSION" },
		{ "FOREIGN TABLE", "FOREIGN TABLE" },
	};
	const char *p, *sp;
	size_t i;

	for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		if (is_type(o, plain[i][0])) {
			dbuf_puts(b, "DROP ");
			dbuf_puts(b, plain[i][1]);
			dbuf_puts(b, " ");
			put_qualified(b, o, o->name, strlen(o->name));
			dbuf_puts(b, ";\n");
			return true;
		}
	if (is_type(o, "FUNCTION") || is_type(o, "PROCEDURE") || is_type(o, "AGGREGATE")) {
		p = strchr(o->name, '(');
		if (p == NULL)
			return false;
		dbuf_puts(b, "DROP ");
		dbuf_puts(b, o->type);
		dbuf_puts(b, " ");
		put_qualified(b, o, o->name, (size_t)(p - o->name));
		dbuf_puts(b, p);
		dbuf_puts(b, ";\n");
		return true;
	}
	if (is_type(o, "CONSTRAINT") || is_type(o, "FK CONSTRAINT") ||
	    is_type(o, "CHECK CONSTRAINT")) {
		/* "ALTER TABLE ONLY x\n    ADD CONSTRAINT name ..." */
		p = strstr(o->body, "ADD CONSTRAINT ");
		if (p == NULL || strncmp(o->body, "ALTER TABLE ", 12) != 0)
			return false;
		for (sp = p; sp > o->body && (sp[-1] == ' ' || sp[-1] == '\n'); sp--)
			;
		dbuf_put(b, o->body, (size_t)(sp - o->body));
		dbuf_puts(b, " DROP CONSTRAINT ");
		p += strlen("ADD CONSTRAINT ");
		dbuf_put(b, p, ident_len(p));
		dbuf_puts(b, ";\n");
		return true;
	}
	if (is_type(o, "DEFAULT")) {
		p = strstr(o->body, " SET DEFAULT ");
		if (p == NULL)
			return false;
		dbuf_put(b, o->body, (size_t)(p - o->body));
		dbuf_puts(b, " DROP DEFAULT;\n");
		return true;
	}
	if (is_type(o, "TRIGGER") || is_type(o, "POLICY") || is_type(o, "RULE")) {
		/* Name is "table trigger" */
		sp = strchr(o->name, ' ');
		if (sp == NULL)
			return false;
		dbuf_puts(b, "DROP ");
		dbuf_puts(b, o->type);
		dbuf_puts(b, " ");
		put_ident(b, sp + 1, strlen(sp + 1));
		dbuf_puts(b, " ON ");
		put_qualified(b, o, o->name, (size_t)(sp - o->name));
		dbuf_puts(b, ";\n");
		return true;
	}
	if (is_type(o, "COMMENT")) {
		p = strstr(o->body, " IS ");
		if (p == NULL)
			return false;
		dbuf_put(b, o->body, (size_t)(p - o->body));
		dbuf_puts(b, " IS NULL;\n");
		return true;
	}
	if (is_type(o, "ACL")) {
		undo_acl(b, o->body);
		return true;
	}
	if (is_type(o, "SEQUENCE OWNED BY"))
		return true; /* goes with its sequence or column */
	return false;
}

/* ---- tables: column by column ---- */

struct col {
	const char *name; /* the identifier as pg_dump wrote it */
	size_t nlen;
	const char *def; /* the rest of the line, without a trailing comma */
	size_t dlen;
};

/* The items between "CREATE TABLE x (" and ");" of a table entry; false if not that shape. */
static bool table_items(const char *body, struct col *v, size_t cap, size_t *n, const char **head,
			size_t *hlen, const char **tail)
{
	const char *open = strstr(body, " (\n"), *line, *nl, *close;

	*n = 0;
	if (open == NULL || strncmp(body, "CREATE TABLE ", 13) != 0)
		return false;
	*head = body;
	*hlen = (size_t)(open - body);
	close = strstr(open, "\n);");
	if (close == NULL)
		return false;
	*tail = close + 3;
	for (line = open + 3; line < close; line = nl + 1) {
		nl = memchr(line, '\n', (size_t)(close - line + 1));
		if (nl == NULL || nl > close)
			nl = close;
		while (line < nl && *line == ' ')
			line++;
		if (line == nl)
			continue;
		if (*n == cap)
			return false;
		if (strncmp(line, "CONSTRAINT ", 11) == 0) {
			v[*n].name = line;
			v[*n].nlen = 11 + ident_len(line + 11);
		} else {
			v[*n].name = line;
			v[*n].nlen = ident_len(line);
		}
		if (v[*n].nlen == 0)
			return false;
		v[*n].def = line + v[*n].nlen;
		while (v[*n].def < nl && *v[*n].def == ' ')
			v[*n].def++;
		v[*n].dlen = (size_t)(nl - v[*n].def);
		if (v[*n].dlen > 0 && v[*n].def[v[*n].dlen - 1] == ',')
			v[*n].dlen--;
		(*n)++;
	}
	return true;
}

static const struct col *find_col(const struct col *v, size_t n, const struct col *c)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i].nlen == c->nlen && memcmp(v[i].name, c->name, c->nlen) == 0)
			return &v[i];
	return NULL;
}

/* The parts of a column definition: its type as written (with COLLATE ...: full) and without
 * (base), the DEFAULT expression, NOT NULL. */
struct col_parts {
	size_t full, base, dlen;
	const char *dflt;
	bool notnull;
};

static void col_parts(const struct col *c, struct col_parts *p)
{
	const char *e = c->def + c->dlen, *d, *k;

	p->notnull = c->dlen >= 9 && memcmp(e - 9, " NOT NULL", 9) == 0;
	if (p->notnull)
		e -= 9;
	d = find_n(c->def, e, " DEFAULT ");
	p->dflt = d ? d + 9 : NULL;
	p->dlen = d ? (size_t)(e - d - 9) : 0;
	p->full = (size_t)((d ? d : e) - c->def);
	k = find_n(c->def, c->def + p->full, " COLLATE ");
	if (k == NULL)
		k = find_n(c->def, c->def + p->full, " GENERATED ");
	p->base = k ? (size_t)(k - c->def) : p->full;
}

/* Does text hold a line equal to (line, len)? */
static bool has_line(const char *text, const char *line, size_t len)
{
	const char *p = text, *nl;

	while (*p) {
		nl = strchr(p, '\n');
		if (nl == NULL)
			nl = p + strlen(p);
		if ((size_t)(nl - p) == len && memcmp(p, line, len) == 0)
			return true;
		p = *nl ? nl + 1 : nl;
	}
	return false;
}

#define MAX_COLS 1700 /* Postgres allows 1600 columns, plus constraints */

/* ALTER TABLE statements from table o (OTHER) to n (BRANCH); false when not that shape. */
static bool alter_table(struct dbuf *b, const struct obj *o, const struct obj *n)
{
	struct col *oc = malloc(MAX_COLS * sizeof(*oc)), *nc = malloc(MAX_COLS * sizeof(*nc));
	const char *oh, *nh, *ot, *nt, *line, *nl;
	size_t on, nn, ohl, nhl, i;
	bool ok = false;

	if (oc == NULL || nc == NULL || !table_items(o->body, oc, MAX_COLS, &on, &oh, &ohl, &ot) ||
	    !table_items(n->body, nc, MAX_COLS, &nn, &nh, &nhl, &nt) || ohl != nhl ||
	    memcmp(oh, nh, ohl) != 0)
		goto out;
	/* what went: dropped first, so a name can come back with another definition */
	for (i = 0; i < on; i++) {
		if (find_col(nc, nn, &oc[i]) != NULL)
			continue;
		dbuf_put(b, "ALTER TABLE ", 12);
		dbuf_put(b, oh + 13, ohl - 13);
		if (strncmp(oc[i].name, "CONSTRAINT ", 11) == 0) {
			dbuf_puts(b, " DROP ");
			dbuf_put(b, oc[i].name, oc[i].nlen);
		} else {
			dbuf_puts(b, " DROP COLUMN ");
			dbuf_put(b, oc[i].name, oc[i].nlen);
		}
		dbuf_puts(b, ";\n");
	}
	for (i = 0; i < nn; i++) {
		const struct col *was = find_col(oc, on, &nc[i]);
		struct col_parts p1, p2;
		if (was == NULL) {
			dbuf_put(b, "ALTER TABLE ", 12);
			dbuf_put(b, nh + 13, nhl - 13);
			dbuf_puts(b, strncmp(nc[i].name, "CONSTRAINT ", 11) == 0 ? " ADD "
										 : " ADD COLUMN ");
			dbuf_put(b, nc[i].name, nc[i].nlen);
			dbuf_puts(b, " ");
			dbuf_put(b, nc[i].def, nc[i].dlen);
			dbuf_puts(b, ";\n");
			continue;
		}
		if (was->dlen == nc[i].dlen && memcmp(was->def, nc[i].def, was->dlen) == 0)
			continue;
		if (strncmp(nc[i].name, "CONSTRAINT ", 11) == 0) {
			dbuf_put(b, "ALTER TABLE ", 12);
			dbuf_put(b, nh + 13, nhl - 13);
			dbuf_puts(b, " DROP ");
			dbuf_put(b, nc[i].name, nc[i].nlen);
			dbuf_puts(b, ";\nALTER TABLE ");
			dbuf_put(b, nh + 13, nhl - 13);
			dbuf_puts(b, " ADD ");
			dbuf_put(b, nc[i].name, nc[i].nlen);
			dbuf_puts(b, " ");
			dbuf_put(b, nc[i].def, nc[i].dlen);
			dbuf_puts(b, ";\n");
			continue;
		}
		col_parts(was, &p1);
		col_parts(&nc[i], &p2);
		if (p1.full != p2.full || memcmp(was->def, nc[i].def, p1.full) != 0) {
			/* the type (or its collation) changed */
			dbuf_put(b, "ALTER TABLE ", 12);
			dbuf_put(b, nh + 13, nhl - 13);
			dbuf_puts(b, " ALTER COLUMN ");
			dbuf_put(b, nc[i].name, nc[i].nlen);
			dbuf_puts(b, " TYPE ");
			dbuf_put(b, nc[i].def, p2.full);
			dbuf_puts(b, " USING ");
			dbuf_put(b, nc[i].name, nc[i].nlen);
			dbuf_puts(b, "::");
			dbuf_put(b, nc[i].def, p2.base);
			dbuf_puts(b, ";\n");
		}
		if (p1.dlen != p2.dlen || !p1.dflt != !p2.dflt ||
		    (p1.dflt && memcmp(p1.dflt, p2.dflt, p1.dlen) != 0)) {
			dbuf_put(b, "ALTER TABLE ", 12);
			dbuf_put(b, nh + 13, nhl - 13);
			dbuf_puts(b, " ALTER COLUMN ");
			dbuf_put(b, nc[i].name, nc[i].nlen);
			if (p2.dflt != NULL) {
				dbuf_puts(b, " SET DEFAULT ");
				dbuf_put(b, p2.dflt, p2.dlen);
			} else {
				dbuf_puts(b, " DROP DEFAULT");
			}
			dbuf_puts(b, ";\n");
		}
		if (p1.notnull != p2.notnull) {
			dbuf_put(b, "ALTER TABLE ", 12);
			dbuf_put(b, nh + 13, nhl - 13);
			dbuf_puts(b, " ALTER COLUMN ");
			dbuf_put(b, nc[i].name, nc[i].nlen);
			dbuf_puts(b, p2.notnull ? " SET NOT NULL;\n" : " DROP NOT NULL;\n");
		}
	}
	/* statements after the CREATE (owner, storage, ...) that BRANCH has and OTHER lacks */
	for (line = nt; *line; line = *nl ? nl + 1 : nl) {
		nl = strchr(line, '\n');
		if (nl == NULL)
			nl = line + strlen(line);
		if (nl > line && !has_line(ot, line, (size_t)(nl - line))) {
			dbuf_put(b, line, (size_t)(nl - line));
			dbuf_puts(b, "\n");
		}
	}
	ok = true;
out:
	free(oc);
	free(nc);
	return ok;
}

/* DDL for a changed object that is not a table: replace it in place where Postgres can. */
static bool replace_sql(struct dbuf *b, const struct obj *o, const struct obj *n, bool dropped)
{
	if (is_type(n, "FUNCTION") || is_type(n, "PROCEDURE")) {
		const char *p = strstr(n->body, "CREATE ");
		if (p != NULL && p == n->body) {
			dbuf_puts(b, "CREATE OR REPLACE ");
			dbuf_puts(b, n->body + 7);
			dbuf_puts(b, "\n");
			return true;
		}
		return false;
	}
	if (is_type(n, "SEQUENCE") && strncmp(n->body, "CREATE SEQUENCE ", 16) == 0) {
		/* ALTER SEQUENCE takes the same options (AS, START, INCREMENT, ...) */
		const char *semi = strstr(n->body, ";");
		dbuf_puts(b, "ALTER SEQUENCE ");
		dbuf_put(b, n->body + 16,
			 semi ? (size_t)(semi - n->body - 16 + 1) : strlen(n->body + 16));
		dbuf_puts(b, "\n");
		if (semi != NULL) {
			dbuf_puts(b, semi + 1);
			dbuf_puts(b, "\n");
		}
		return true;
	}
	(void)o;
	/* everything else was dropped before (dropped): create it as BRANCH has it */
	if (!dropped)
		return false;
	dbuf_puts(b, n->body);
	dbuf_puts(b, "\n");
	return true;
}

/* Kinds whose change is made by drop and create (the drop goes with the other drops). */
static bool recreated(const struct obj *o)
{
	return !(is_type(o, "TABLE") || is_type(o, "FUNCTION") || is_type(o, "PROCEDURE") ||
		 is_type(o, "SEQUENCE") || is_type(o, "EXTENSION") || is_type(o, "SCHEMA"));
}

static int by_order_desc(const void *a, const void *b)
{
	const struct obj *const *x = a, *const *y = b;

	return (*x)->order < (*y)->order ? 1 : (*x)->order > (*y)->order ? -1 : 0;
}

static char *make_sql(const struct objs *bo, const struct objs *oo, const struct obj **bs,
		      const struct obj **os)
{
	struct dbuf b = { 0 };
	const struct obj **drops = malloc((oo->n ? oo->n : 1) * sizeof(*drops));
	const struct obj **match = calloc(bo->n ? bo->n : 1, sizeof(*match)); /* by b order */
	size_t nd = 0, i = 0, j = 0, k;
	int c;

	if (drops == NULL || match == NULL) {
		free(drops);
		free(match);
		return NULL;
	}
	/* pair the entries: match[b order] = its OTHER entry; drops = OTHER's removed or
	 * recreated */
	while (i < bo->n || j < oo->n) {
		c = i == bo->n ? 1 : j == oo->n ? -1 : strcmp(bs[i]->key, os[j]->key);
		if (c < 0) {
			i++;
		} else if (c > 0) {
			drops[nd++] = os[j++];
		} else {
			match[bs[i]->order] = os[j];
			if (strcmp(bs[i]->body, os[j]->body) != 0 && recreated(os[j]))
				drops[nd++] = os[j];
			i++;
			j++;
		}
	}
	dbuf_puts(&b, "-- rift diff: DDL that turns the other side's schema into this branch's\n");
	qsort(drops, nd, sizeof(*drops), by_order_desc);
	for (k = 0; k < nd; k++)
		if (!drop_sql(&b, drops[k])) {
			dbuf_puts(&b, "-- rift: cannot drop ");
			dbuf_puts(&b, drops[k]->type);
			dbuf_puts(&b, " ");
			dbuf_puts(&b, drops[k]->name);
			dbuf_puts(&b, " by itself; do it by hand\n");
		}
	for (k = 0; k < bo->n; k++) {
		const struct obj *n = &bo->v[k], *o = match[k];
		if (o == NULL) {
			dbuf_puts(&b, n->body);
			dbuf_puts(&b, "\n");
		} else if (strcmp(n->body, o->body) != 0) {
			bool done = is_type(n, "TABLE") ? alter_table(&b, o, n)
							: replace_sql(&b, o, n, recreated(o));
			if (!done) {
				dbuf_puts(&b, "-- rift: cannot change ");
				dbuf_puts(&b, n->type);
				dbuf_puts(&b, " ");
				dbuf_puts(&b, n->name);
				dbuf_puts(&b, " in place; it is now:\n-- ");
				for (const char *p = n->body; *p; p++) {
					dbuf_put(&b, p, 1);
					if (*p == '\n')
						dbuf_puts(&b, "-- ");
				}
				dbuf_puts(&b, "\n");
			}
		}
	}
	free(drops);
	free(match);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

json_t *rift_diff_schema(const char *branch_dump, size_t blen, const char *other_dump, size_t olen,
			 bool with_text, char **sql)
{
	struct objs bo, oo;
	const struct obj **bs = NULL, **os = NULL;
	json_t *added = json_array(), *removed = json_array(), *changed = json_array(), *doc = NULL;
	size_t i = 0, j = 0;
	int c;

	if (sql != NULL)
		*sql = NULL;
	if (parse_dump(branch_dump, blen, &bo) != 0)
		goto fail_early;
	if (parse_dump(other_dump, olen, &oo) != 0) {
		free_objs(&bo);
		goto fail_early;
	}
	bs = sorted(&bo);
	os = sorted(&oo);
	if (bs == NULL || os == NULL || added == NULL || removed == NULL || changed == NULL)
		goto out;
	while (i < bo.n || j < oo.n) {
		c = i == bo.n ? 1 : j == oo.n ? -1 : strcmp(bs[i]->key, os[j]->key);
		if (c < 0)
			json_array_append_new(added, obj_json(bs[i++], NULL, with_text));
		else if (c > 0)
			json_array_append_new(removed, obj_json(os[j++], NULL, with_text));
		else {
			if (strcmp(bs[i]->body, os[j]->body) != 0)
				json_array_append_new(changed, obj_json(os[j], bs[i], with_text));
			i++;
			j++;
		}
	}
	if (sql != NULL && (*sql = make_sql(&bo, &oo, bs, os)) == NULL)
		goto out;
	doc = json_pack("{s:O,s:O,s:O}", "added", added, "removed", removed, "changed", changed);
out:
	free(bs);
	free(os);
	free_objs(&bo);
	free_objs(&oo);
fail_early:
	json_decref(added);
	json_decref(removed);
	json_decref(changed);
	if (doc == NULL && sql != NULL) {
		free(*sql);
		*sql = NULL;
	}
	return doc;
}
