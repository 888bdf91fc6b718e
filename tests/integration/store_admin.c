/* store_admin.c — test helper: creates stores, imports bases, creates and deletes branches. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "rift/store.h"

/*
 * `format`: reads or rewrites the store's format version key ('V' in the meta column family)
 * straight in RocksDB, under the store's back, so that tests can make a store look like one
 * written before versions existed (none) or by a newer rift (a number). `inline` turns a format-3
 * store back into what format 2 wrote: each block's 8 KiB as its record's value, no blocks/.
 */

static uint64_t be64(const char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | (uint8_t)p[i];
	return v;
}

/* Moves every block named by a short record back into the record (format 3 -> 2's layout). */
static int inline_blocks(const char *state, rocksdb_t *db, rocksdb_column_family_handle_t *data,
			 rocksdb_writeoptions_t *wo, rocksdb_readoptions_t *ro, char **err)
{
	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(db, ro, data);
	char path[4096], block[8192];
	unsigned long moved = 0;
	int rc = 0;

	for (rocksdb_iter_seek_to_first(it); rc == 0 && rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t kl, vl;
		const char *k = rocksdb_iter_key(it, &kl);
		ssize_t got;
		int fd;
		rocksdb_iter_value(it, &vl);
		if (kl != 24 || vl != 1)
			continue;
		snprintf(path, sizeof(path), "%s/blocks/%" PRIu64 "/%" PRIu64, state, be64(k),
			 be64(k + 8));
		fd = open(path, O_RDONLY);
		got = fd < 0 ? -1 : pread(fd, block, sizeof(block), (off_t)(be64(k + 16) * 8192));
		if (fd >= 0)
			close(fd);
		if (got < 0) {
			fprintf(stderr, "store_admin format inline: %s: %s\n", path,
				strerror(errno));
			rc = 1;
			break;
		}
		memset(block + got, 0, sizeof(block) - (size_t)got);
		rocksdb_put_cf(db, wo, data, k, kl, block, sizeof(block), err);
		if (*err != NULL)
			rc = 1;
		moved++;
	}
	rocksdb_iter_destroy(it);
	printf("store_admin: %lu blocks inlined\n", moved);
	if (rc == 0) {
		snprintf(path, sizeof(path), "rm -rf '%s/blocks'", state);
		rc = system(path) == 0 ? 0 : 1;
	}
	return rc;
}
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
	} else if (strcmp(what, "inline") == 0) {
		uint8_t v[4] = { 0, 0, 0, 2 };
		if (inline_blocks(state, db, h[2], wo, ro, &err) != 0 && err == NULL)
			goto close;
		if (err == NULL)
			rocksdb_put_cf(db, wo, h[1], &key, 1, (const char *)v, 4, &err);
	} else if (strcmp(what, "garbage") == 0) {
		rocksdb_put_cf(db, wo, h[1], &key, 1, "xyz", 3, &err);
	} else {
		char *end = NULL;
		unsigned long n = strtoul(what, &end, 10);
		uint8_t v[4] = { (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8),
				 (uint8_t)n };
		if (end == what || *end != '\0' || n > 0xffffffffUL) {
			fprintf(stderr,
				"store_admin format: get, none, garbage, inline or a number\n");
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
	fprintf(stderr,
		"usage: store_admin STATE import DIR\n"
		"       store_admin STATE create NAME [FROM]\n"
		"       store_admin STATE delete NAME\n"
		"       store_admin STATE info NAME     (prints key=value lines)\n"
		"       store_admin STATE list          (prints NAME ID lines, ID in hex)\n"
		"       store_admin STATE squash\n"
		"       store_admin STATE format get|none|garbage|inline|N   (raw, for tests)\n");
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
