/* store_fdcache.c — many threads read many base files through a tiny fd cache; every page must
 * carry its own file's pattern (regression: eviction closed fds other readers were using). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rift/store.h"

/*
 * The base holds NFILES files of NBLOCKS 8 KiB pages; every byte of page p of file f is
 * pattern(f, p). RIFT_STORE_FD_CACHE_MAX=4 (set below before the store opens) makes the
 * cache evict on almost every open, so evictions race with preads of other threads. A page
 * with another file's bytes, or a read error, fails the test.
 */
#define NFILES   64
#define NBLOCKS  4
#define NTHREADS 6
#define READS    20000

static struct rift_branch *branch;
static uint64_t inos[NFILES];
static atomic_int bad_pages, read_errors;

static uint8_t pattern(unsigned f, unsigned p)
{
	return (uint8_t)(1 + f * NBLOCKS + p);
}

static void *reader(void *arg)
{
	uint64_t seed = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
	uint8_t *buf = malloc(RIFT_BLOCK_SIZE);
	int i;

	for (i = 0; buf != NULL && i < READS; i++) {
		unsigned f, p;
		ssize_t n;
		size_t j;
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		f = (unsigned)(seed % NFILES);
		p = (unsigned)((seed >> 20) % NBLOCKS);
		n = rift_store_read(branch, inos[f], (uint64_t)p * RIFT_BLOCK_SIZE, RIFT_BLOCK_SIZE,
				    buf);
		if (n != (ssize_t)RIFT_BLOCK_SIZE) {
			if (atomic_fetch_add(&read_errors, 1) < 3)
				fprintf(stderr, "store_fdcache: read of file %u page %u: %zd\n", f,
					p, n);
			continue;
		}
		for (j = 0; j < RIFT_BLOCK_SIZE; j++) {
			if (buf[j] != pattern(f, p)) {
				if (atomic_fetch_add(&bad_pages, 1) < 3)
					fprintf(stderr,
						"store_fdcache: file %u page %u byte %zu is %u, "
						"expected %u\n",
						f, p, j, buf[j], pattern(f, p));
				break;
			}
		}
	}
	free(buf);
	return NULL;
}

static int make_base(const char *src)
{
	uint8_t page[RIFT_BLOCK_SIZE];
	char path[256];
	unsigned f, p;

	if (mkdir(src, 0700) != 0)
		return -1;
	for (f = 0; f < NFILES; f++) {
		int fd;
		snprintf(path, sizeof(path), "%s/f%02u", src, f);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
		if (fd < 0)
			return -1;
		for (p = 0; p < NBLOCKS; p++) {
			memset(page, pattern(f, p), sizeof(page));
			if (write(fd, page, sizeof(page)) != (ssize_t)sizeof(page)) {
				close(fd);
				return -1;
			}
		}
		close(fd);
	}
	return 0;
}

int main(void)
{
	char dir[] = "/tmp/rift-test-fdcache.XXXXXX", state[128], src[128], cmd[256];
	char err[RIFT_ERRMSG_LEN];
	pthread_t th[NTHREADS];
	struct rift_store *s = NULL;
	struct rift_attr a;
	uint32_t gen;
	int rc = 1, i;

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(state, sizeof(state), "%s/state", dir);
	snprintf(src, sizeof(src), "%s/src", dir);
	if (setenv("RIFT_STORE_FD_CACHE_MAX", "4", 1) != 0 || make_base(src) != 0) {
		fprintf(stderr, "store_fdcache: cannot set up %s\n", dir);
		goto out;
	}
	if (rift_store_open(state, true, &s, err, sizeof(err)) != 0 ||
	    rift_store_base_import(s, src, &gen, err, sizeof(err)) != 0 ||
	    rift_store_branch_create(s, "main", NULL, gen) != 0 ||
	    rift_store_branch_open(s, "main", &branch) != 0) {
		fprintf(stderr, "store_fdcache: setup failed: %s\n", err);
		goto out;
	}
	for (i = 0; i < NFILES; i++) {
		char name[16];
		snprintf(name, sizeof(name), "f%02d", i);
		if (rift_store_lookup(branch, RIFT_ROOT_INO, name, &a) != 0) {
			fprintf(stderr, "store_fdcache: %s missing from the branch\n", name);
			goto out;
		}
		inos[i] = a.ino;
	}
	for (i = 0; i < NTHREADS; i++)
		if (pthread_create(&th[i], NULL, reader, (void *)(uintptr_t)(i + 1)) != 0)
			goto out;
	for (i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	printf("store_fdcache: %d threads x %d page reads: %d wrong pages, %d read errors\n",
	       NTHREADS, READS, atomic_load(&bad_pages), atomic_load(&read_errors));
	rc = atomic_load(&bad_pages) == 0 && atomic_load(&read_errors) == 0 ? 0 : 1;
	if (rc != 0)
		fprintf(stderr, "store_fdcache: FAIL: the base fd cache handed out a closed or "
				"reused descriptor\n");
out:
	rift_store_branch_close(branch);
	rift_store_close(s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		rc = 1;
	return rc;
}
