/* store_space.c — deleting a branch gives its space back; zeros cost (almost) nothing on disk. */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rift/store.h"

#define WRITE_MB   200u
#define LIVE_FILES 8u /* x 16 MiB, deleted in a live branch */

/* Bytes in the files of dir (not recursive: RocksDB keeps its files flat). */
static uint64_t du(const char *dir)
{
	struct dirent *de;
	uint64_t total = 0;
	DIR *d = opendir(dir);

	while (d != NULL && (de = readdir(d)) != NULL) {
		char path[512];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
			total += (uint64_t)st.st_blocks * 512;
	}
	if (d != NULL)
		closedir(d);
	return total;
}

/* Bytes the store's data takes: RocksDB's files in db/ and the layers' overlay files under
 * blocks/<layer>/. */
static uint64_t store_du(const char *state)
{
	char path[512];
	struct dirent *de;
	uint64_t total;
	DIR *d;

	snprintf(path, sizeof(path), "%s/db", state);
	total = du(path);
	snprintf(path, sizeof(path), "%s/blocks", state);
	d = opendir(path);
	while (d != NULL && (de = readdir(d)) != NULL) {
		char sub[800];
		if (de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		total += du(sub);
	}
	if (d != NULL)
		closedir(d);
	return total;
}

/* Bytes of the store once RocksDB has settled: an open deletes logs and files a previous run left
 * obsolete (their purge is otherwise asynchronous). */
static uint64_t settled_du(const char *state)
{
	char err[RIFT_ERRMSG_LEN];
	struct rift_store *s;

	if (rift_store_open(state, false, &s, err, sizeof(err)) == 0)
		rift_store_close(s);
	return store_du(state);
}

static int fail(const char *what)
{
	fprintf(stderr, "store_space: FAIL: %s\n", what);
	return 1;
}

int main(void)
{
	char dir[] = "/tmp/rift-test-store-space.XXXXXX", state[128], src[128], cmd[256];
	char err[RIFT_ERRMSG_LEN];
	struct rift_store *s = NULL;
	struct rift_branch *b = NULL;
	struct rift_attr a;
	uint64_t before, full, after, zeros_before, zeros_after, i, seed = 42;
	uint8_t *buf = malloc(1 << 20);
	uint32_t gen;
	int rc = 1;

	if (buf == NULL || mkdtemp(dir) == NULL)
		return 1;
	snprintf(state, sizeof(state), "%s/state", dir);
	snprintf(src, sizeof(src), "%s/src", dir);
	if (mkdir(src, 0700) != 0 || rift_store_open(state, true, &s, err, sizeof(err)) != 0 ||
	    rift_store_base_import(s, src, &gen, err, sizeof(err)) != 0 ||
	    rift_store_branch_create(s, "main", NULL, 0) != 0) {
		rc = fail(err);
		goto out;
	}
	/* main holds 20 MiB of its own, so "before" is a store with data in it */
	if (rift_store_branch_open(s, "main", &b) != 0 ||
	    rift_store_create(b, RIFT_ROOT_INO, "main-data", 0600, 0, 0, &a) != 0) {
		rc = fail("setup of main");
		goto out;
	}
	for (i = 0; i < 20; i++) {
		size_t j;
		for (j = 0; j < (1u << 20) / 8; j++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			memcpy(buf + j * 8, &seed, 8);
		}
		if (rift_store_write(b, a.ino, i << 20, 1 << 20, buf) != 1 << 20) {
			rc = fail("write to main");
			goto out;
		}
	}
	rift_store_branch_close(b);
	b = NULL;
	rift_store_close(s);
	s = NULL;
	before = settled_du(state);

	/* 200 MiB of incompressible data in a branch, then the branch goes */
	if (rift_store_open(state, false, &s, err, sizeof(err)) != 0 ||
	    rift_store_branch_create(s, "big", "main", 0) != 0 ||
	    rift_store_branch_open(s, "big", &b) != 0 ||
	    rift_store_create(b, RIFT_ROOT_INO, "data", 0600, 0, 0, &a) != 0) {
		rc = fail("setup of the big branch");
		goto out;
	}
	for (i = 0; i < WRITE_MB; i++) {
		size_t j;
		for (j = 0; j < (1u << 20) / 8; j++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			memcpy(buf + j * 8, &seed, 8);
		}
		if (rift_store_write(b, a.ino, i << 20, 1 << 20, buf) != 1 << 20) {
			rc = fail("write");
			goto out;
		}
	}
	if (rift_store_sync(s) != 0) {
		rc = fail("sync");
		goto out;
	}
	rift_store_branch_close(b);
	b = NULL;
	rift_store_close(s);
	s = NULL;
	full = store_du(state);
	if (rift_store_open(state, false, &s, err, sizeof(err)) != 0 ||
	    rift_store_branch_delete(s, "big") != 0) {
		rc = fail("delete of the big branch");
		goto out;
	}
	rift_store_close(s);
	s = NULL;
	after = settled_du(state);
	printf("store_space: store %" PRIu64 " KiB before, %" PRIu64
	       " KiB with the branch, %" PRIu64 " KiB after deleting it\n",
	       before >> 10, full >> 10, after >> 10);
	if (full < (uint64_t)WRITE_MB << 20) {
		rc = fail("the branch's data did not reach the disk: the measurement is void");
		goto out;
	}
	if (after > before + before / 10) {
		rc = fail("deleting the branch did not give the space back (more than 10% over)");
		goto out;
	}

	/* Files deleted inside a live branch (Postgres removes WAL segments and dropped
	 * relations) give their space back while the store stays open: no restart, no delete. */
	if (rift_store_open(state, false, &s, err, sizeof(err)) != 0 ||
	    rift_store_branch_open(s, "main", &b) != 0) {
		rc = fail("reopen for the live delete");
		goto out;
	}
	before = store_du(state);
	for (i = 0; i < LIVE_FILES; i++) {
		char name[32];
		uint64_t m;
		snprintf(name, sizeof(name), "seg%" PRIu64, i);
		if (rift_store_create(b, RIFT_ROOT_INO, name, 0600, 0, 0, &a) != 0) {
			rc = fail("create of a segment");
			goto out;
		}
		for (m = 0; m < 16; m++) {
			size_t j;
			for (j = 0; j < (1u << 20) / 8; j++) {
				seed = seed * 6364136223846793005ull + 1442695040888963407ull;
				memcpy(buf + j * 8, &seed, 8);
			}
			if (rift_store_write(b, a.ino, m << 20, 1 << 20, buf) != 1 << 20) {
				rc = fail("segment write");
				goto out;
			}
		}
	}
	if (rift_store_sync(s) != 0) {
		rc = fail("sync");
		goto out;
	}
	full = store_du(state);
	for (i = 0; i < LIVE_FILES; i++) {
		char name[32];
		snprintf(name, sizeof(name), "seg%" PRIu64, i);
		if (rift_store_unlink(b, RIFT_ROOT_INO, name) != 0) {
			rc = fail("unlink of a segment");
			goto out;
		}
	}
	for (i = 0; i < 600; i++) { /* up to 60 s on a busy machine */
		after = store_du(state);
		if (after <= before + before / 10 + (32u << 20))
			break;
		usleep(100000);
	}
	printf("store_space: live branch: store %" PRIu64 " KiB before, %" PRIu64
	       " KiB with %u x 16 MiB files, %" PRIu64 " KiB %.1f s after unlinking them\n",
	       before >> 10, full >> 10, LIVE_FILES, after >> 10, (double)i / 10);
	if (full < before + ((uint64_t)LIVE_FILES << 24) / 2) {
		rc = fail("the files' data did not reach the disk: the measurement is void");
		goto out;
	}
	if (after > before + before / 10 + (32u << 20)) {
		rc = fail("unlinking files in a live branch did not give the space back in 60 s");
		goto out;
	}
	rift_store_branch_close(b);
	b = NULL;
	rift_store_close(s);
	s = NULL;

	/* 16 MiB of zeros into a new file (a WAL segment) stores under 64 KiB */
	memset(buf, 0, 1 << 20);
	zeros_before = store_du(state);
	if (rift_store_open(state, false, &s, err, sizeof(err)) != 0 ||
	    rift_store_branch_open(s, "main", &b) != 0 ||
	    rift_store_create(b, RIFT_ROOT_INO, "000000010000000000000001", 0600, 0, 0, &a) != 0) {
		rc = fail("setup of the zero file");
		goto out;
	}
	for (i = 0; i < 16; i++)
		if (rift_store_write(b, a.ino, i << 20, 1 << 20, buf) != 1 << 20) {
			rc = fail("zero write");
			goto out;
		}
	rift_store_branch_close(b);
	b = NULL;
	rift_store_close(s);
	s = NULL;
	zeros_after = store_du(state);
	printf("store_space: 16 MiB of zeros grew the store by %" PRId64 " KiB\n",
	       ((int64_t)zeros_after - (int64_t)zeros_before) / 1024);
	if (zeros_after > zeros_before + (64u << 10)) {
		rc = fail("16 MiB of zeros took 64 KiB or more on disk");
		goto out;
	}
	rc = 0;
out:
	rift_store_branch_close(b);
	rift_store_close(s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		rc = 1;
	free(buf);
	return rc;
}
