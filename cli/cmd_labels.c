/* cmd_labels.c — branch labels in the CLI: --label options, `rift delete --label k=v`. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rift/labels.h"

int cli_label_selector(const char *cmd, const char *kv, char *query, size_t len)
{
	size_t used = strlen(query);
	const char *why = strchr(kv, '=') ? rift_label_check(kv) : NULL;

	if (strchr(kv, '=') == NULL && (kv[0] == '\0' || strchr(kv, ',') || strchr(kv, '&')))
		why = "a label selector is key=value (like pr=123) or a key alone";
	if (why != NULL) {
		fprintf(stderr, "rift %s: --label %s: %s\n", cmd, kv, why);
		return EXIT_USAGE;
	}
	if (used + strlen(kv) + 8 >= len) {
		fprintf(stderr, "rift %s: too many --label options\n", cmd);
		return EXIT_USAGE;
	}
	snprintf(query + used, len - used, "%slabel=%s", used ? "&" : "?", kv);
	return 0;
}

/* Deletes every branch of list; a parent whose children are in the list goes after them. */
static int delete_all(const struct cli_opts *o, json_t *names)
{
	size_t i, left = json_array_size(names), pass;
	int failed = 0;

	for (pass = 0; left > 0 && pass < 64; pass++) {
		size_t before = left;
		for (i = 0; i < json_array_size(names); i++) {
			json_t *n = json_array_get(names, i), *doc;
			char path[256];
			int st;
			if (json_is_null(n))
				continue;
			snprintf(path, sizeof(path), "/v1/branches/%.128s", json_string_value(n));
			/* a 409 (children first) is retried on the next pass */
			st = cli_call_status(o, "DELETE", path, NULL, &doc);
			if (st == 409)
				continue;
			if (st != 0) {
				failed = 1;
			} else if (o->json) {
				json_dumpf(doc, stdout, JSON_COMPACT);
				printf("\n");
			} else if (!o->quiet) {
				printf("deleted branch %s\n", json_string_value(n));
			}
			json_decref(doc);
			json_array_set_new(names, i, json_null());
			left--;
		}
		if (left == before)
			break;
	}
	if (left > 0) {
		fprintf(stderr,
			"rift delete: %zu branch(es) could not be deleted (their children "
			"are not labelled the same; rift list shows them)\n",
			left);
		return 1;
	}
	return failed;
}

int cli_delete_by_label(const struct cli_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = { { "label", required_argument, NULL, 'l' },
						  { NULL, 0, NULL, 0 } };
	char query[1024] = "", path[1100];
	json_t *doc, *b, *names;
	size_t i;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c != 'l') {
			fprintf(stderr, "rift delete: unknown option (try rift delete --help)\n");
			return EXIT_USAGE;
		}
		rc = cli_label_selector("delete", optarg, query, sizeof(query));
		if (rc != 0)
			return rc;
	}
	if (optind != argc || query[0] == '\0') {
		fprintf(stderr, "rift delete: give either one NAME or --label k=v (not both; "
				"try rift delete --help)\n");
		return EXIT_USAGE;
	}
	snprintf(path, sizeof(path), "/v1/branches%s", query);
	rc = cli_call(o, "GET", path, NULL, &doc);
	if (rc != 0)
		return rc;
	names = json_array();
	json_array_foreach(json_object_get(doc, "branches"), i, b)
	    json_array_append(names, json_object_get(b, "name"));
	json_decref(doc);
	if (json_array_size(names) == 0 && !o->quiet)
		fprintf(stderr, "rift delete: no branch has the labels %s\n", query + 7);
	rc = delete_all(o, names);
	json_decref(names);
	return rc;
}
