/* store_admin.c — test helper: creates stores, imports bases, creates and deletes branches. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

#include "rift/store.h"

/*
 * `format`: reads or rewrites the store's format version key ('V' in the meta column family)
 * straight in RocksDB, under the store's back, so that tests can make a store look like one
 * written before versions existed (none) or by a newer rift (a number).
 */
static int raw_format(const char *state, const char *what)
{
	const char *names[3] = { "default", "meta", "data" };
	const rocksdb_options_t *cf_opts[3];
	rocksdb_column_family_handle_t *h[3];
	rocksdb_options_t *o = rocksdb_options_create();
	rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	char path[4096], *err = NULL, key = 'V';
	rocksdb_t *db;
	int rc = 1, i;

	snprintf(path, sizeof(path), "%s/db", state);
	for (i = 0; i < 3; i++)
		cf_opts[i] = o;
	rocksdb_writeoptions_set_sync(wo, 1);
	db = rocksdb_open_column_families(o, path, 3, names, cf_opts, h, &err);
	if (err != NULL) {
		fprintf(stderr, "store_admin format: cannot open %s: %s\n", path, err);
		free(err);
		goto out;
	}
	if (strcmp(what, "get") == 0) {
		size_t n;
		char *v = rocksdb_get_cf(db, ro, h[1], &key, 1, &n, &err);
		if (err == NULL && v == NULL)
			printf("format=none\n");
		else if (err == NULL && n == 4)
			printf("format=%u\n", ((unsigned)(uint8_t)v[0] << 24) |
						  ((unsigned)(uint8_t)v[1] << 16) |
						  ((unsigned)(uint8_t)v[2] << 8) | (uint8_t)v[3]);
		else if (err == NULL)
			printf("format=bad(%zu bytes)\n", n);
		free(v);
	} else if (strcmp(what, "none") == 0) {
		rocksdb_delete_cf(db, wo, h[1], &key, 1, &err);
	} else if (strcmp(what, "garbage") == 0) {
		rocksdb_put_cf(db, wo, h[1], &key, 1, "xyz", 3, &err);
	} else {
		char *end = NULL;
		unsigned long n = strtoul(what, &end, 10);
		uint8_t v[4] = { (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8),
				 (uint8_t)n };
		if (end == what || *end != '\0' || n > 0xffffffffUL) {
			fprintf(stderr, "store_admin format: get, none, garbage or a number\n");
			goto close;
		}
		rocksdb_put_cf(db, wo, h[1], &key, 1, (const char *)v, 4, &err);
	}
	if (err != NULL) {
		fprintf(stderr, "store_admin format: %s\n", err);
		free(err);
		goto close;
	}
	rc = 0;
close:
	for (i = 0; i < 3; i++)
		rocksdb_column_family_handle_destroy(h[i]);
	rocksdb_close(db);
out:
	rocksdb_options_destroy(o);
	rocksdb_writeoptions_destroy(wo);
	rocksdb_readoptions_destroy(ro);
	return rc;
}

static int usage(void)
{
	fprintf(stderr, "usage: store_admin STATE import DIR\n"
			"       store_admin STATE create NAME [FROM]\n"
			"       store_admin STATE delete NAME\n"
			"       store_admin STATE info NAME     (prints key=value lines)\n"
			"       store_admin STATE list          (prints NAME ID lines, ID in hex)\n"
			"       store_admin STATE squash\n"
			"       store_admin STATE format get|none|garbage|N   (raw, for tests)\n");
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
	if (strcmp(cmd, "format") == 0)
		return argc == 4 ? raw_format(argv[1], argv[3]) : usage();
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
	} else if (strcmp(cmd, "list") == 0 && argc == 3) {
		struct rift_branch_info *infos = NULL;
		size_t n = 0, i;
		rc = rift_store_branch_list(s, &infos, &n);
		for (i = 0; rc == 0 && i < n; i++)
			printf("%s %016" PRIx64 "\n", infos[i].name, infos[i].id);
		free(infos);
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
