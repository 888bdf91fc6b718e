/* cmd_diff.c — `rift diff BRANCH [OTHER]`: what a branch changed, schema and rows. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: rift diff BRANCH [OTHER] [--summary] [--rows N] [--sql] [--json]\n"
	    "\n"
	    "What BRANCH changed compared with OTHER, or by default since it was made (its parent "
	    "as\n"
	    "it was then), in every\n"
	    "database: schema objects added, removed or changed, and rows added, removed or\n"
	    "changed per table (by primary key; by whole row where there is none).\n"
	    "\n"
	    "  --summary   counts only, one line per database\n"
	    "  --rows N    list the first N changed rows of each table with old and new values\n"
	    "  --sql       print only the DDL that turns OTHER's schema into BRANCH's\n"
	    "  --json      the whole answer as JSON (docs/cli.md)\n"
	    "\n"
	    "  rift diff feature-x\n"
	    "  rift diff feature-x main --rows 5\n"
	    "  rift diff feature-x main --sql | psql \"$(rift url main)\"\n");
}

static bool valid_name(const char *s)
{
	return strlen(s) > 0 && strlen(s) <= 63 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == strlen(s);
}

static const char *str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

static long long num(const json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

/* Did the schema of database object d change (so its DDL is worth printing)? */
static bool schema_changed(const json_t *d)
{
	const json_t *s = json_object_get(d, "schema");

	return json_string_value(json_object_get(d, "sql")) != NULL &&
	       json_array_size(json_object_get(s, "added")) +
		       json_array_size(json_object_get(s, "removed")) +
		       json_array_size(json_object_get(s, "changed")) >
		   0;
}

static void print_json_safe(const json_t *v)
{
	char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	cli_print_safe(stdout, t ? t : "?", "");
	free(t);
}

static void print_objects(const json_t *arr, const char *mark)
{
	const json_t *o;
	size_t i;

	json_array_foreach(arr, i, o)
	{
		printf("    %s %s ", mark, str(o, "kind"));
		if (json_string_value(json_object_get(o, "schema"))) {
			cli_print_safe(stdout, str(o, "schema"), "");
			fputc('.', stdout);
		}
		cli_print_safe(stdout, str(o, "name"), "");
		fputc('\n', stdout);
	}
}

/* What riftd read to compare database d: narrowing by the store, or why not (scan object). */
static void print_scan(const json_t *d)
{
	const json_t *sc = json_object_get(d, "scan"), *t;
	size_t i;

	if (!json_is_object(sc))
		return;
	if (!json_is_true(json_object_get(sc, "narrowed"))) {
		printf("  read: whole tables (");
		cli_print_safe(stdout, str(sc, "why_not"), "");
		printf(")\n");
		return;
	}
	printf("  read: %lld tables, %lld unchanged (skipped), %lld by changed blocks (%lld "
	       "blocks), %lld in full\n",
	       num(sc, "tables_compared"), num(sc, "tables_skipped"), num(sc, "tables_narrowed"),
	       num(sc, "blocks_read"), num(sc, "tables_full"));
	json_array_foreach(json_object_get(sc, "full_tables"), i, t)
	{
		printf("    in full: ");
		cli_print_safe(stdout, str(t, "schema"), "");
		fputc('.', stdout);
		cli_print_safe(stdout, str(t, "table"), "");
		printf(" (");
		cli_print_safe(stdout, str(t, "why"), "");
		printf(", %lld KiB)\n", (num(t, "bytes") + 1023) / 1024);
	}
}

static void print_database(const json_t *d, bool summary)
{
	const json_t *s = json_object_get(d, "schema"), *t, *r;
	long long ta = 0, tr = 0, tc = 0;
	size_t i, k;

	if (json_string_value(json_object_get(d, "only_in"))) {
		printf("database ");
		cli_print_safe(stdout, str(d, "name"), "");
		printf(": only in %s\n",
		       strcmp(str(d, "only_in"), "branch") == 0 ? "this branch" : "the other");
		return;
	}
	json_array_foreach(json_object_get(d, "tables"), i, t)
	{
		ta += num(t, "added");
		tr += num(t, "removed");
		tc += num(t, "changed");
	}
	printf("database ");
	cli_print_safe(stdout, str(d, "name"), "");
	printf(": schema %zu added, %zu removed, %zu changed; rows %lld added, %lld removed, "
	       "%lld changed in %zu tables\n",
	       json_array_size(json_object_get(s, "added")),
	       json_array_size(json_object_get(s, "removed")),
	       json_array_size(json_object_get(s, "changed")), ta, tr, tc,
	       json_array_size(json_object_get(d, "tables")));
	if (summary)
		return;
	print_objects(json_object_get(s, "added"), "+");
	print_objects(json_object_get(s, "removed"), "-");
	print_objects(json_object_get(s, "changed"), "~");
	json_array_foreach(json_object_get(d, "tables"), i, t)
	{
		printf("  table ");
		cli_print_safe(stdout, str(t, "schema"), "");
		fputc('.', stdout);
		cli_print_safe(stdout, str(t, "table"), "");
		if (json_string_value(json_object_get(t, "only_in")))
			printf(" (only in %s)", strcmp(str(t, "only_in"), "branch") == 0
						    ? "this branch"
						    : "the other");
		else if (json_is_array(json_object_get(t, "key")))
			printf(" (by primary key)");
		else
			printf(" (no primary key: whole rows)");
		printf(": %lld added, %lld removed, %lld changed\n", num(t, "added"),
		       num(t, "removed"), num(t, "changed"));
		json_array_foreach(json_object_get(t, "rows"), k, r)
		{
			const char *op = str(r, "op");
			printf("    %c ", op[0] == 'a' ? '+' : op[0] == 'r' ? '-' : '~');
			if (json_object_get(r, "key")) {
				print_json_safe(json_object_get(r, "key"));
				fputs(": ", stdout);
			}
			if (json_object_get(r, "old"))
				print_json_safe(json_object_get(r, "old"));
			if (json_object_get(r, "old") && json_object_get(r, "new"))
				fputs(" -> ", stdout);
			if (json_object_get(r, "new"))
				print_json_safe(json_object_get(r, "new"));
			fputc('\n', stdout);
		}
	}
	print_scan(d);
}

int cmd_diff(const struct cli_opts *o, int argc, char **argv)
{
	const char *names[2] = { NULL, NULL };
	bool summary = false, sql = false;
	long rows = 0;
	char path[512], *end;
	json_t *doc, *d;
	size_t i, nn = 0;
	int k, rc;

	for (k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[k], "--summary") == 0) {
			summary = true;
		} else if (strcmp(argv[k], "--sql") == 0) {
			sql = true;
		} else if (strcmp(argv[k], "--rows") == 0 && k + 1 < argc) {
			rows = strtol(argv[++k], &end, 10);
			if (*end != '\0' || end == argv[k] || rows < 0 || rows > 1000) {
				fprintf(stderr, "rift diff: --rows takes 0 to 1000\n");
				return EXIT_USAGE;
			}
		} else if (argv[k][0] != '-' && nn < 2) {
			names[nn++] = argv[k];
		} else {
			fprintf(stderr,
				"rift diff: unexpected argument \"%s\" (try rift diff --help)\n",
				argv[k]);
			return EXIT_USAGE;
		}
	}
	if (nn == 0) {
		fprintf(stderr, "rift diff: which branch? (try rift diff --help)\n");
		return EXIT_USAGE;
	}
	for (i = 0; i < nn; i++)
		if (!valid_name(names[i])) {
			fprintf(
			    stderr,
			    "rift diff: \"%.80s\" is not a branch name (rift list shows them)\n",
			    names[i]);
			return EXIT_USAGE;
		}
	snprintf(path, sizeof(path), "/v1/branches/%s/diff?rows=%ld%s%s%s", names[0],
		 summary ? 0 : rows, sql ? "&sql=1" : "", names[1] ? "&against=" : "",
		 names[1] ? names[1] : "");
	rc = cli_call(o, "GET", path, NULL, &doc);
	if (rc != 0)
		return rc;
	if (o->json)
		return cli_print_json(doc);
	if (sql) {
		size_t ndb = 0;
		json_array_foreach(json_object_get(doc, "databases"), i, d) ndb +=
		    schema_changed(d);
		json_array_foreach(json_object_get(doc, "databases"), i, d)
		{
			if (!schema_changed(d))
				continue;
			if (ndb > 1) {
				/* through the router a database of another branch is db@branch */
				json_t *n =
				    json_sprintf("%s@%s", str(d, "name"), str(doc, "against"));
				char *q = n ? json_dumps(n, JSON_ENCODE_ANY) : NULL;
				printf("\\connect %s\n", q ? q : "");
				free(q);
				json_decref(n);
			}
			fputs(str(d, "sql"), stdout);
		}
		json_decref(doc);
		return 0;
	}
	if (json_is_true(json_object_get(doc, "fork_point")))
		printf("rift diff %s against %s as it was when %s was made\n", str(doc, "branch"),
		       json_string_value(json_object_get(doc, "against")) ? str(doc, "against")
									  : "the base",
		       str(doc, "branch"));
	else
		printf("rift diff %s against %s\n", str(doc, "branch"), str(doc, "against"));
	json_array_foreach(json_object_get(doc, "databases"), i, d) print_database(d, summary);
	json_decref(doc);
	return 0;
}
