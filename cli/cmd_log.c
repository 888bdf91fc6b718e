/* cmd_log.c — `rift log BRANCH`: the DDL a branch ran since it was made, oldest first. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_print_json(json_t *doc)
{
	char *text = json_dumps(doc, JSON_COMPACT);
	int rc = text != NULL ? 0 : 1;

	if (text != NULL)
		printf("%s\n", text);
	free(text);
	json_decref(doc);
	return rc;
}

void cli_print_safe(FILE *out, const char *s, const char *indent)
{
	/* a branch's superuser wrote this text: no escape sequence reaches the terminal */
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '\n')
			fprintf(out, "\n%s", indent);
		else if (ch == '\t' || ch >= 0x20) {
			if (ch != 0x7f)
				fputc(ch, out);
			else
				fputs("\\x7f", out);
		} else
			fprintf(out, "\\x%02x", ch);
	}
}

static const char *str_or(const json_t *s, const char *dflt)
{
	return json_string_value(s) ? json_string_value(s) : dflt;
}

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: rift log BRANCH [--json]\n"
	    "\n"
	    "The DDL statements (CREATE, ALTER, DROP, GRANT, ...) run in BRANCH since it was "
	    "made,\n"
	    "oldest first, with time, role and database, as its server logged them. Advisory: a\n"
	    "superuser can turn logging off for a session, and DDL inside functions and DO blocks\n"
	    "is not listed (docs/cli.md).\n"
	    "\n"
	    "  rift log feature-x\n"
	    "  rift log feature-x --json | jq -r '.entries[].statement'\n");
}

int cmd_log(const struct cli_opts *o, int argc, char **argv)
{
	const char *name = NULL;
	char path[256];
	json_t *doc, *e;
	size_t i;
	int rc, k;

	for (k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (argv[k][0] == '-' || name != NULL) {
			fprintf(stderr,
				"rift log: unexpected argument \"%s\" (try rift log --help)\n",
				argv[k]);
			return EXIT_USAGE;
		}
		name = argv[k];
	}
	if (name == NULL) {
		fprintf(stderr, "rift log: which branch? (try rift log --help)\n");
		return EXIT_USAGE;
	}
	if (strlen(name) > 63 ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(name)) {
		fprintf(stderr, "rift log: \"%.80s\" is not a branch name (rift list shows them)\n",
			name);
		return EXIT_USAGE;
	}
	snprintf(path, sizeof(path), "/v1/branches/%s/log", name);
	rc = cli_call(o, "GET", path, NULL, &doc);
	if (rc != 0)
		return rc;
	if (o->json)
		return cli_print_json(doc);
	if (json_integer_value(json_object_get(doc, "dropped")) > 0)
		printf("(%lld older statements not shown: the log keeps the last 2 MiB)\n",
		       (long long)json_integer_value(json_object_get(doc, "dropped")));
	json_array_foreach(json_object_get(doc, "entries"), i, e)
	{
		const char *t = json_string_value(json_object_get(e, "time"));
		printf("%s  ", t ? t : "?");
		cli_print_safe(stdout, str_or(json_object_get(e, "role"), "?"), "");
		fputc('@', stdout);
		cli_print_safe(stdout, str_or(json_object_get(e, "database"), "?"), "");
		if (json_is_true(json_object_get(e, "failed")))
			fputs("  (failed)", stdout);
		if (json_is_true(json_object_get(e, "truncated")))
			fputs("  (cut at 64 KiB)", stdout);
		fputs("\n    ", stdout);
		cli_print_safe(stdout, str_or(json_object_get(e, "statement"), ""), "    ");
		fputs("\n", stdout);
	}
	if (json_array_size(json_object_get(doc, "entries")) == 0 && !o->quiet)
		fprintf(stderr, "rift: no DDL logged in branch \"%s\" since it was made\n", name);
	json_decref(doc);
	return 0;
}
