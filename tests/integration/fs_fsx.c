/* fs_fsx.c — fsx-style test: one random operation stream on a mounted file and a plain file. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rift/mount.h"
#include "rift/store.h"

/*
 * Usage: fs_fsx STATE BRANCH MOUNTPOINT REFDIR
 * Mounts BRANCH itself (so it can remount in between), then applies the same random writes,
 * truncates, extends, fsyncs, reopens and remounts to MOUNTPOINT/fsx and REFDIR/fsx, comparing
 * both files after every step. RIFT_SEED replays a run; RIFT_FSX_OPS sets its length.
 */

#define MAX_SIZE (3u << 20)
#define MAX_IO   (256u << 10)

static uint64_t rng;

static uint64_t next_rand(void)
{
	uint64_t z = (rng += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint64_t below(uint64_t n)
{
	return n ? next_rand() % n : 0;
}

struct fsx {
	const char *state, *branch, *mnt;
	char test_path[4096], ref_path[4096];
	struct rift_store *store;
	struct rift_mount *m;
	int tfd, rfd;
	uint64_t seed, step;
	uint8_t *a, *b, *io;
};

static int fail(struct fsx *f, const char *what)
{
	fprintf(stderr,
		"fs_fsx: FAIL at step %" PRIu64 ": %s (errno %d: %s)\n"
		"fs_fsx: replay with RIFT_SEED=%" PRIu64 "\n",
		f->step, what, errno, strerror(errno), f->seed);
	return -1;
}

static int mount_up(struct fsx *f)
{
	char err[RIFT_ERRMSG_LEN];
	struct rift_mount_opts opts = { 0 };

	if (rift_store_open(f->state, false, &f->store, err, sizeof(err)) != 0 ||
	    rift_mount_start(f->store, f->branch, f->mnt, &opts, &f->m, err, sizeof(err)) != 0) {
		fprintf(stderr, "fs_fsx: %s\n", err);
		return -1;
	}
	return 0;
}

static void mount_down(struct fsx *f)
{
	rift_mount_stop(f->m);
	rift_store_close(f->store);
	f->m = NULL;
	f->store = NULL;
}

static int open_both(struct fsx *f)
{
	f->tfd = open(f->test_path, O_RDWR | O_CREAT, 0600);
	f->rfd = open(f->ref_path, O_RDWR | O_CREAT, 0600);
	return f->tfd >= 0 && f->rfd >= 0 ? 0 : fail(f, "open");
}

static void close_both(struct fsx *f)
{
	if (f->tfd >= 0)
		close(f->tfd);
	if (f->rfd >= 0)
		close(f->rfd);
	f->tfd = f->rfd = -1;
}

static int compare(struct fsx *f)
{
	struct stat ts, rs;
	ssize_t n;

	if (fstat(f->tfd, &ts) != 0 || fstat(f->rfd, &rs) != 0)
		return fail(f, "fstat");
	if (ts.st_size != rs.st_size) {
		fprintf(stderr, "fs_fsx: size %lld, expected %lld\n", (long long)ts.st_size,
			(long long)rs.st_size);
		return fail(f, "sizes differ");
	}
	n = pread(f->tfd, f->a, (size_t)ts.st_size, 0);
	if (n != ts.st_size || pread(f->rfd, f->b, (size_t)rs.st_size, 0) != rs.st_size)
		return fail(f, "short read of the whole file");
	if (memcmp(f->a, f->b, (size_t)n) != 0) {
		size_t i;
		for (i = 0; i < (size_t)n && f->a[i] == f->b[i]; i++)
			;
		fprintf(stderr, "fs_fsx: first difference at byte %zu: %u, expected %u\n", i,
			f->a[i], f->b[i]);
		return fail(f, "contents differ");
	}
	return 0;
}

static int step(struct fsx *f)
{
	uint64_t op = below(100), off, len;
	size_t i;

	if (op < 45) { /* write: random offset, length, content; sometimes all zeros */
		off = below(MAX_SIZE - MAX_IO);
		len = 1 + below(below(4) == 0 ? MAX_IO : 20000);
		if (below(5) == 0)
			memset(f->io, 0, len);
		else
			for (i = 0; i < len; i++)
				f->io[i] = (uint8_t)next_rand();
		if (pwrite(f->tfd, f->io, len, (off_t)off) != (ssize_t)len ||
		    pwrite(f->rfd, f->io, len, (off_t)off) != (ssize_t)len)
			return fail(f, "pwrite");
	} else if (op < 60) { /* truncate down or up */
		off = below(MAX_SIZE);
		if (ftruncate(f->tfd, (off_t)off) != 0 || ftruncate(f->rfd, (off_t)off) != 0)
			return fail(f, "ftruncate");
	} else if (op < 65) { /* truncate through the path, as DROP TABLE does */
		off = below(4) == 0 ? 0 : below(MAX_SIZE);
		if (truncate(f->test_path, (off_t)off) != 0 ||
		    truncate(f->ref_path, (off_t)off) != 0)
			return fail(f, "truncate");
	} else if (op < 70) { /* fallocate mode 0 */
		off = below(MAX_SIZE / 2);
		len = 1 + below(MAX_SIZE / 2);
		if (posix_fallocate(f->tfd, (off_t)off, (off_t)len) != 0 ||
		    posix_fallocate(f->rfd, (off_t)off, (off_t)len) != 0)
			return fail(f, "fallocate");
	} else if (op < 85) { /* read a random range and compare */
		struct stat st;
		if (fstat(f->rfd, &st) != 0)
			return fail(f, "fstat");
		off = below((uint64_t)st.st_size + 1);
		len = below(MAX_IO);
		if (pread(f->tfd, f->a, len, (off_t)off) != pread(f->rfd, f->b, len, (off_t)off))
			return fail(f, "pread lengths differ");
		if (memcmp(f->a, f->b, len < (uint64_t)st.st_size - off ? len : st.st_size - off))
			return fail(f, "pread contents differ");
	} else if (op < 92) {
		if (fsync(f->tfd) != 0)
			return fail(f, "fsync");
	} else if (op < 98) {
		close_both(f);
		if (open_both(f) != 0)
			return -1;
	} else { /* remount: what the kernel cached must equal what the store kept */
		close_both(f);
		mount_down(f);
		if (mount_up(f) != 0 || open_both(f) != 0)
			return fail(f, "remount");
	}
	return compare(f);
}

int main(int argc, char **argv)
{
	struct fsx f;
	uint64_t ops = 3000, i;
	int rc = 1;

	if (argc != 5) {
		fprintf(stderr, "usage: fs_fsx STATE BRANCH MOUNTPOINT REFDIR\n");
		return 2;
	}
	memset(&f, 0, sizeof(f));
	f.tfd = f.rfd = -1;
	f.state = argv[1];
	f.branch = argv[2];
	f.mnt = argv[3];
	snprintf(f.test_path, sizeof(f.test_path), "%.4000s/fsx", argv[3]);
	snprintf(f.ref_path, sizeof(f.ref_path), "%.4000s/fsx", argv[4]);
	f.seed = getenv("RIFT_SEED") ? strtoull(getenv("RIFT_SEED"), NULL, 10)
				     : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	if (getenv("RIFT_FSX_OPS"))
		ops = strtoull(getenv("RIFT_FSX_OPS"), NULL, 10);
	rng = f.seed;
	printf("fs_fsx: seed %" PRIu64 ", %" PRIu64 " operations\n", f.seed, ops);
	f.a = malloc(MAX_SIZE + MAX_IO);
	f.b = malloc(MAX_SIZE + MAX_IO);
	f.io = malloc(MAX_IO);
	if (f.a == NULL || f.b == NULL || f.io == NULL)
		goto out;
	if (mount_up(&f) != 0 || open_both(&f) != 0)
		goto out;
	for (i = 0; i < ops; i++) {
		f.step = i;
		if (step(&f) != 0)
			goto out;
	}
	close_both(&f);
	printf("fs_fsx: %" PRIu64 " operations matched\n", ops);
	rc = 0;
out:
	close_both(&f);
	mount_down(&f);
	free(f.a);
	free(f.b);
	free(f.io);
	return rc;
}
