/* store_bench.c — the store against the disk: branch creation latency, 8 KiB I/O, commit cost. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rift/store.h"

/*
 * usage: store_bench [--quick] [DIR]   (DIR on the disk to measure; default /var/tmp)
 * Prints medians and ratios: branch creation over bases of ~10 MB and ~1 GB and over chains of
 * depth 1 and 20 (ratios should be close to 1); 8 KiB reads and writes through the store vs
 * pread/pwrite on a plain file in the same directory; a write + sync vs pwrite + fdatasync.
 */

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[n / 2];
}

static uint64_t rng = 88172645463325252ull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void fill(uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		uint64_t r = next_rand();
		memcpy(p + i, &r, 8);
	}
}

static void die(const char *what)
{
	fprintf(stderr, "store_bench: %s failed (%s)\n", what, strerror(errno));
	exit(1);
}

/* A base directory of nfiles files of file_mb MiB each. */
static void make_base(const char *dir, int nfiles, int file_mb)
{
	uint8_t *buf = malloc(1 << 20);
	char path[700];
	int f, m, fd;

	if (mkdir(dir, 0700) != 0)
		die("mkdir base");
	for (f = 0; f < nfiles; f++) {
		snprintf(path, sizeof(path), "%s/rel%d", dir, f);
		fd = open(path, O_WRONLY | O_CREAT, 0600);
		if (fd < 0)
			die("create base file");
		for (m = 0; m < file_mb; m++) {
			fill(buf, 1 << 20);
			if (write(fd, buf, 1 << 20) != 1 << 20)
				die("write base file");
		}
		close(fd);
	}
	free(buf);
}

/* Median microseconds of n branch creations from branch `from`. */
static double create_latency(struct rift_store *s, const char *from, int n, const char *tag)
{
	double *t = malloc(sizeof(double) * (size_t)n), m;
	char name[64];
	int i;

	for (i = 0; i < n; i++) {
		double t0;
		snprintf(name, sizeof(name), "%s-%d", tag, i);
		t0 = now_us();
		if (rift_store_branch_create(s, name, from, 0) != 0)
			die("branch create");
		t[i] = now_us() - t0;
	}
	m = median(t, n);
	free(t);
	return m;
}

/* Mean µs of n random 8 KiB reads of base file rel0 (never written) in branch b. */
static double base_read_us(struct rift_branch *b, int n)
{
	struct rift_attr ba;
	uint8_t blk[RIFT_BLOCK_SIZE];
	uint64_t blocks;
	double t0;
	int k;

	if (rift_store_lookup(b, RIFT_ROOT_INO, "rel0", &ba) != 0)
		die("lookup rel0");
	blocks = ba.size / RIFT_BLOCK_SIZE;
	for (k = 0; k < 1000; k++) /* warm the page cache and the store's caches */
		rift_store_read(b, ba.ino, (next_rand() % blocks) * 8192, 8192, blk);
	t0 = now_us();
	for (k = 0; k < n; k++)
		if (rift_store_read(b, ba.ino, (next_rand() % blocks) * 8192, 8192, blk) != 8192)
			die("base read");
	return (now_us() - t0) / n;
}

static struct rift_store *store_with_base(const char *root, const char *name, int nfiles,
					  int file_mb)
{
	char base[600], state[600], err[RIFT_ERRMSG_LEN];
	struct rift_store *s;
	uint32_t gen;

	snprintf(base, sizeof(base), "%s/%s-base", root, name);
	snprintf(state, sizeof(state), "%s/%s-state", root, name);
	make_base(base, nfiles, file_mb);
	if (rift_store_open(state, true, &s, err, sizeof(err)) != 0 ||
	    rift_store_base_import(s, base, &gen, err, sizeof(err)) != 0 ||
	    rift_store_branch_create(s, "main", NULL, 0) != 0) {
		fprintf(stderr, "store_bench: %s\n", err);
		exit(1);
	}
	return s;
}

int main(int argc, char **argv)
{
	const char *parent = "/var/tmp";
	char root[512], path[600], cmd[700];
	bool quick = false;
	int i, n_create, big_files, io_mb, n_io, n_sync;
	struct rift_store *small, *big;
	struct rift_branch *b;
	struct rift_attr a;
	double c_small, c_big, c_d1, c_d20, r_d1, r_d20, *t;
	uint8_t blk[RIFT_BLOCK_SIZE];
	int fd;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0)
			quick = true;
		else
			parent = argv[i];
	}
	n_create = quick ? 50 : 200;
	big_files = quick ? 8 : 64; /* x 16 MiB: 128 MiB or 1 GiB */
	io_mb = quick ? 32 : 256;
	n_io = quick ? 20000 : 100000;
	n_sync = quick ? 200 : 1000;
	snprintf(root, sizeof(root), "%s/rift-store-bench.XXXXXX", parent);
	if (mkdtemp(root) == NULL)
		die("mkdtemp");
	printf("command: %s%s %s\n", argv[0], quick ? " --quick" : "", parent);

	/* 1. branch creation: size of the base, depth of the chain */
	small = store_with_base(root, "small", 10, 1);
	big = store_with_base(root, "big", big_files, 16);
	c_small = create_latency(small, "main", n_create, "s");
	c_big = create_latency(big, "main", n_create, "b");
	if (rift_store_branch_open(small, "main", &b) != 0 ||
	    rift_store_create(b, RIFT_ROOT_INO, "f", 0600, 0, 0, &a) != 0)
		die("chain setup");
	fill(blk, sizeof(blk));
	if (rift_store_write(b, a.ino, 0, sizeof(blk), blk) != (ssize_t)sizeof(blk))
		die("write");
	c_d1 = create_latency(small, "main", n_create, "d1");
	r_d1 = base_read_us(b, quick ? 20000 : 100000);
	for (i = 0; i < 19; i++) { /* deepen main's chain: write, then branch (freezes a layer) */
		char name[32];
		snprintf(name, sizeof(name), "keep%d", i);
		if (rift_store_write(b, a.ino, (uint64_t)i * 8192, sizeof(blk), blk) < 0 ||
		    rift_store_branch_create(small, name, "main", 0) != 0)
			die("deepen");
	}
	{
		struct rift_branch_info info;
		rift_store_branch_info(small, "main", &info);
		printf("chain depth of main for the deep case: %u\n", info.chain_depth);
	}
	if (rift_store_write(b, a.ino, 0, sizeof(blk), blk) < 0)
		die("write");
	c_d20 = create_latency(small, "main", n_create, "d20");
	r_d20 = base_read_us(b, quick ? 20000 : 100000);
	printf("\n%-44s %10s\n", "branch creation (median of n)", "µs");
	printf("%-44s %10.0f\n", "base ~10 MB", c_small);
	printf("%-44s %10.0f\n", big_files == 64 ? "base ~1 GB" : "base ~128 MB (--quick)", c_big);
	printf("%-44s %10.2f\n", "ratio big/small (target: close to 1)", c_big / c_small);
	printf("%-44s %10.0f\n", "chain depth 1 (parent changed since)", c_d1);
	printf("%-44s %10.0f\n", "chain depth 20", c_d20);
	printf("%-44s %10.2f\n", "ratio depth20/depth1 (target: close to 1)", c_d20 / c_d1);
	printf("%-44s %10.2f\n", "8 KiB read of a base block, depth 1 (µs)", r_d1);
	printf("%-44s %10.2f\n", "8 KiB read of a base block, depth 20 (µs)", r_d20);
	printf("%-44s %10.2f\n", "ratio depth20/depth1 (target: close to 1)", r_d20 / r_d1);
	rift_store_branch_close(b);
	rift_store_close(big);

	/* 2. 8 KiB I/O: store vs pread/pwrite on a plain file in the same directory */
	{
		uint64_t nblocks = (uint64_t)io_mb * 128, k;
		double t0, st_w, st_r, st_rb, fs_w, fs_r, fs_rb;
		uint8_t *buf = malloc(1 << 20);
		char basefile[600];
		if (rift_store_branch_open(small, "main", &b) != 0 ||
		    rift_store_create(b, RIFT_ROOT_INO, "io", 0600, 0, 0, &a) != 0)
			die("io setup");
		snprintf(path, sizeof(path), "%s/plain", root);
		fd = open(path, O_RDWR | O_CREAT, 0600);
		if (fd < 0)
			die("plain file");
		for (k = 0; k < (uint64_t)io_mb; k++) { /* both files filled first */
			fill(buf, 1 << 20);
			if (rift_store_write(b, a.ino, k << 20, 1 << 20, buf) != 1 << 20 ||
			    pwrite(fd, buf, 1 << 20, (off_t)(k << 20)) != 1 << 20)
				die("fill");
		}
		fsync(fd);
		if (rift_store_sync(small) != 0)
			die("sync");
		t0 = now_us();
		for (k = 0; k < (uint64_t)n_io; k++)
			if (rift_store_write(b, a.ino, (next_rand() % nblocks) * 8192, 8192, blk) !=
			    8192)
				die("store write");
		st_w = (now_us() - t0) / n_io;
		t0 = now_us();
		for (k = 0; k < (uint64_t)n_io; k++)
			if (pwrite(fd, blk, 8192, (off_t)((next_rand() % nblocks) * 8192)) != 8192)
				die("pwrite");
		fs_w = (now_us() - t0) / n_io;
		t0 = now_us();
		for (k = 0; k < (uint64_t)n_io; k++)
			if (rift_store_read(b, a.ino, (next_rand() % nblocks) * 8192, 8192, blk) !=
			    8192)
				die("store read");
		st_r = (now_us() - t0) / n_io;
		t0 = now_us();
		for (k = 0; k < (uint64_t)n_io; k++)
			if (pread(fd, blk, 8192, (off_t)((next_rand() % nblocks) * 8192)) != 8192)
				die("pread");
		fs_r = (now_us() - t0) / n_io;
		/* reads of base blocks the branch never wrote: the store preads the base file */
		{
			struct rift_attr ba;
			int bfd;
			uint64_t bblocks = 16 * 128;
			if (rift_store_lookup(b, RIFT_ROOT_INO, "rel0", &ba) != 0)
				die("lookup base file");
			snprintf(basefile, sizeof(basefile), "%s/small-state/base/1/rel0", root);
			bfd = open(basefile, O_RDONLY);
			if (bfd < 0)
				die("open base file");
			bblocks = ba.size / 8192;
			t0 = now_us();
			for (k = 0; k < (uint64_t)n_io; k++)
				if (rift_store_read(b, ba.ino, (next_rand() % bblocks) * 8192, 8192,
						    blk) != 8192)
					die("base read");
			st_rb = (now_us() - t0) / n_io;
			t0 = now_us();
			for (k = 0; k < (uint64_t)n_io; k++)
				if (pread(bfd, blk, 8192,
					  (off_t)((next_rand() % bblocks) * 8192)) != 8192)
					die("pread base");
			fs_rb = (now_us() - t0) / n_io;
			close(bfd);
		}
		printf("\n%-44s %10s %10s %8s\n", "8 KiB random I/O (µs per op)", "store", "plain",
		       "ratio");
		printf("%-44s %10.2f %10.2f %8.2f\n", "write (no sync)", st_w, fs_w, fs_w / st_w);
		printf("%-44s %10.2f %10.2f %8.2f\n", "read of blocks the branch wrote", st_r, fs_r,
		       fs_r / st_r);
		printf("%-44s %10.2f %10.2f %8.2f\n", "read of base blocks (never written)", st_rb,
		       fs_rb, fs_rb / st_rb);
		printf("(ratio = plain time / store time: 1 means as fast as the disk's page "
		       "cache)\n");

		/* 3. commit: write one block + sync vs pwrite + fdatasync */
		t = malloc(sizeof(double) * (size_t)n_sync);
		for (i = 0; i < n_sync; i++) {
			double s0 = now_us();
			if (rift_store_write(b, a.ino, 0, 8192, blk) != 8192 ||
			    rift_store_sync(small) != 0)
				die("write+sync");
			t[i] = now_us() - s0;
		}
		st_w = median(t, n_sync);
		for (i = 0; i < n_sync; i++) {
			double s0 = now_us();
			if (pwrite(fd, blk, 8192, 0) != 8192 || fdatasync(fd) != 0)
				die("pwrite+fdatasync");
			t[i] = now_us() - s0;
		}
		fs_w = median(t, n_sync);
		printf("\n%-44s %10.0f %10.0f %8.2f\n", "8 KiB write + sync, median µs", st_w, fs_w,
		       fs_w / st_w);
		free(t);
		free(buf);
		close(fd);
		rift_store_branch_close(b);
	}
	rift_store_close(small);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : 1;
}
