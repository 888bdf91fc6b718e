/* main.c — the rift command-line tool: global options and command dispatch. */
#include <stdio.h>
#include <string.h>

#include <stdlib.h>

#include "cli.h"
#include "rift/branch_name.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: rift [--help] [--version] <command> [args]\n"
		"\n"
		"rift gives every developer and CI job its own writable branch of a Postgres\n"
		"database, created in milliseconds whatever its size.\n"
		"\n"
		"commands available in this build:\n"
		"  version            print rift's version\n"
		"  check-name NAME    say whether NAME is a valid branch name\n"
		"\n"
		"The store, riftd, the router and the branch commands (init, serve, create, ...)\n"
		"are being built; see docs/architecture.md.\n");
}

static int cmd_check_name(int argc, char **argv)
{
	enum rift_name_verdict verdict;

	if (argc != 2) {
		fprintf(stderr, "rift check-name: expected exactly one NAME (try rift --help)\n");
		return EXIT_USAGE;
	}
	verdict = rift_branch_name_check(argv[1]);
	if (verdict != RIFT_NAME_OK) {
		fprintf(stderr, "rift: \"%s\" is not a valid branch name: %s\n", argv[1],
			rift_branch_name_explain(verdict));
		return 1;
	}
	printf("%s is a valid branch name\n", argv[1]);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd, *state = getenv("RIFT_STATE") ? getenv("RIFT_STATE") : "/var/lib/rift";

	while (argc >= 3 && strcmp(argv[1], "--state") == 0) {
		state = argv[2];
		argv += 2;
		argc -= 2;
	}
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
		printf("rift %s\n", RIFT_VERSION);
		return 0;
	}
	if (strcmp(cmd, "init") == 0)
		return cmd_init(state, argc - 1, argv + 1);
	if (strcmp(cmd, "check-name") == 0)
		return cmd_check_name(argc - 1, argv + 1);
	fprintf(stderr, "rift: unknown command \"%s\" (rift --help lists the commands)\n", cmd);
	return EXIT_USAGE;
}
