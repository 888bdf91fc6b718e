/* main.c — the rift command-line tool: global options and command dispatch. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rift/branch_name.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: rift [--state DIR] [--json] [-q] <command> [args]\n"
		"\n"
		"rift gives every developer and CI job its own writable branch of a Postgres\n"
		"database, created in milliseconds whatever its size.\n"
		"\n"
		"commands:\n"
		"  init     create a store and its base (demo, --upstream URL, --pgdata DIR);\n"
		"           runs riftd init, found beside rift or on PATH\n"
		"  serve    run riftd: the router on 6432, the API, the branch servers\n");
	cmd_branch_summaries(out);
	fprintf(out,
		"  log      the DDL a branch ran since it was made\n"
		"  diff     what a branch changed, schema and rows, against another branch\n"
		"  dashboard open the web dashboard on a local port\n"
		"  mount    mount a branch's files at a directory\n"
		"  version  print rift's version\n"
		"\n"
		"global options (before or after the command):\n"
		"  --state DIR   the store (default $RIFT_STATE, else /var/lib/rift)\n"
		"  --host URL    a remote riftd's API, https://HOST:PORT (default $RIFT_HOST)\n"
		"  --token-file FILE  its bearer token, first line (default $RIFT_TOKEN)\n"
		"  --cacert FILE riftd's certificate or CA, PEM (default $RIFT_CACERT)\n"
		"  --pin PIN     riftd's certificate pin, sha256//... (default $RIFT_PIN)\n"
		"  --json        machine-readable output (documented in docs/cli.md)\n"
		"  -q, --quiet   print only what scripts need\n"
		"  --help        help for rift or for a command (rift create --help)\n"
		"\n"
		"a two-minute tour:\n"
		"  rift init && rift serve --background\n"
		"  rift create feature-auth\n"
		"  psql \"$(rift url feature-auth)\"\n"
		"  rift delete feature-auth\n");
}

static const char *token_file;

/* The token: --token-file's first line, else $RIFT_TOKEN. */
static int load_token(struct cli_opts *o)
{
	static char token[512];
	FILE *f;

	if (token_file == NULL) {
		o->token = getenv("RIFT_TOKEN");
		return 0;
	}
	f = fopen(token_file, "re");
	if (f == NULL || fgets(token, sizeof(token), f) == NULL) {
		fprintf(stderr, "rift: cannot read the token file %s: %s\n", token_file,
			f ? "it is empty" : strerror(errno));
		if (f != NULL)
			fclose(f);
		return -1;
	}
	fclose(f);
	token[strcspn(token, "\r\n")] = '\0';
	o->token = token;
	return 0;
}

/* "HOST:PORT" means https://HOST:PORT; a trailing slash goes. */
static int normalize_host(struct cli_opts *o)
{
	static char host[1024];
	size_t n;

	if (o->host == NULL || o->host[0] == '\0') {
		o->host = NULL;
		return 0;
	}
	if (strncmp(o->host, "https://", 8) == 0 || strncmp(o->host, "http://", 7) == 0)
		snprintf(host, sizeof(host), "%s", o->host);
	else if (strstr(o->host, "://") == NULL)
		snprintf(host, sizeof(host), "https://%s", o->host);
	else {
		fprintf(stderr, "rift: --host %s: expected https://HOST:PORT\n", o->host);
		return -1;
	}
	n = strlen(host);
	while (n > 0 && host[n - 1] == '/')
		host[--n] = '\0';
	o->host = host;
	return 0;
}

/* Pulls the global options out of argv (up to a "--"), leaving the command and its args. */
static int take_globals(struct cli_opts *o, int *argc, char **argv)
{
	int i, j = 1;

	for (i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			while (i < *argc)
				argv[j++] = argv[i++];
			break;
		}
		if (strcmp(argv[i], "--json") == 0) {
			o->json = true;
		} else if (strcmp(argv[i], "-q") == 0 || strcmp(argv[i], "--quiet") == 0) {
			o->quiet = true;
		} else if (strcmp(argv[i], "--state") == 0) {
			if (i + 1 >= *argc) {
				fprintf(stderr, "rift: --state needs a directory\n");
				return -1;
			}
			o->state = argv[++i];
		} else if (strncmp(argv[i], "--state=", 8) == 0) {
			o->state = argv[i] + 8;
		} else if (strcmp(argv[i], "--host") == 0 || strcmp(argv[i], "--token-file") == 0 ||
			   strcmp(argv[i], "--cacert") == 0 || strcmp(argv[i], "--pin") == 0) {
			if (i + 1 >= *argc) {
				fprintf(stderr, "rift: %s needs a value\n", argv[i]);
				return -1;
			}
			if (strcmp(argv[i], "--host") == 0)
				o->host = argv[i + 1];
			else if (strcmp(argv[i], "--token-file") == 0)
				token_file = argv[i + 1];
			else if (strcmp(argv[i], "--cacert") == 0)
				o->cacert = argv[i + 1];
			else
				o->pin = argv[i + 1];
			i++;
		} else {
			argv[j++] = argv[i];
		}
	}
	*argc = j;
	argv[j] = NULL;
	return 0;
}

int main(int argc, char **argv)
{
	struct cli_opts o = { .state =
				  getenv("RIFT_STATE") ? getenv("RIFT_STATE") : "/var/lib/rift",
			      .host = getenv("RIFT_HOST"),
			      .cacert = getenv("RIFT_CACERT"),
			      .pin = getenv("RIFT_PIN") };
	const char *cmd;
	int rc;

	if (take_globals(&o, &argc, argv) != 0 || normalize_host(&o) != 0)
		return EXIT_USAGE;
	if (load_token(&o) != 0)
		return 1;
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
		if (o.json)
			printf("{\"version\":\"%s\"}\n", RIFT_VERSION);
		else
			printf("rift %s\n", RIFT_VERSION);
		return 0;
	}
	if (o.host != NULL &&
	    (strcmp(cmd, "init") == 0 || strcmp(cmd, "serve") == 0 || strcmp(cmd, "mount") == 0)) {
		fprintf(stderr,
			"rift %s: runs on riftd's own machine, not through --host %s (unset "
			"RIFT_HOST)\n",
			cmd, o.host);
		return EXIT_USAGE;
	}
	if (strcmp(cmd, "init") == 0)
		return cmd_init(&o, argc - 1, argv + 1);
	if (strcmp(cmd, "serve") == 0)
		return cmd_serve(&o, argc - 1, argv + 1);
	if (strcmp(cmd, "log") == 0)
		return cmd_log(&o, argc - 1, argv + 1);
	if (strcmp(cmd, "diff") == 0)
		return cmd_diff(&o, argc - 1, argv + 1);
	if (strcmp(cmd, "mount") == 0)
		return cmd_mount(&o, argc - 1, argv + 1);
	if (strcmp(cmd, "dashboard") == 0)
		return cmd_dashboard(&o, argc - 1, argv + 1);
	rc = cmd_branch(&o, argc - 1, argv + 1);
	if (rc >= 0)
		return rc;
	fprintf(stderr, "rift: unknown command \"%s\" (rift --help lists the commands)\n", cmd);
	return EXIT_USAGE;
}
