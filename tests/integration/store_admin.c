/* store_admin.c — test helper: creates stores, imports bases, creates and deletes branches. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rift/store.h"

static int usage(void)
{
	fprintf(stderr, "usage: store_admin STATE import DIR\n"
			"       store_admin STATE create NAME [FROM]\n"
			"       store_admin STATE delete NAME\n"
			"       store_admin STATE info NAME     (prints key=value lines)\n"
			"       store_admin STATE squash\n");
	return 2;
}

int main(int argc, char **argv)
{
	char err[RIFT_ERRMSG_LEN] = "";
	struct rift_store *s = NULL;
	const char *cmd;
	int rc;

	if (argc < 3)
		return usage();
	cmd = argv[2];
	rc = rift_store_open(argv[1], strcmp(cmd, "import") == 0, &s, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "store_admin: %s\n", err);
		return 1;
	}
	if (strcmp(cmd, "import") == 0 && argc == 4) {
		uint32_t gen;
		rc = rift_store_base_import(s, argv[3], &gen, err, sizeof(err));
		if (rc == 0)
			printf("gen=%u\n", gen);
	} else if (strcmp(cmd, "create") == 0 && (argc == 4 || argc == 5)) {
		rc = rift_store_branch_create(s, argv[3], argc == 5 ? argv[4] : NULL, 0);
	} else if (strcmp(cmd, "delete") == 0 && argc == 4) {
		rc = rift_store_branch_delete(s, argv[3]);
	} else if (strcmp(cmd, "squash") == 0 && argc == 3) {
		rc = rift_store_squash(s);
		if (rc >= 0) {
			printf("merged=%d\n", rc);
			rc = 0;
		}
	} else if (strcmp(cmd, "info") == 0 && argc == 4) {
		struct rift_branch_info info;
		rc = rift_store_branch_info(s, argv[3], &info);
		if (rc == 0)
			printf("depth=%u\nbytes_own=%" PRIu64 "\nbytes_shared=%" PRIu64 "\n",
			       info.chain_depth, info.bytes_own, info.bytes_shared);
	} else {
		rift_store_close(s);
		return usage();
	}
	if (rc != 0)
		fprintf(stderr, "store_admin %s: %s%s%s\n", cmd, err[0] ? err : "",
			err[0] ? ": " : "", strerror(-rc));
	rift_store_close(s);
	return rc == 0 ? 0 : 1;
}
