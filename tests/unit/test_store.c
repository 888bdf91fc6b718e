/* test_store.c — unit tests of the store: bases, branches, namespace, blocks, truncation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rift/store.h"

struct fixture {
	char dir[64];
	char state[128];
	struct rift_store *s;
	struct rift_branch *main;
};

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* A base tree: PG_VERSION, a 3-block relation file, a subdirectory, a symlink, a lock file. */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char path[256], err[RIFT_ERRMSG_LEN];
	uint8_t rel[3 * RIFT_BLOCK_SIZE];
	uint32_t gen;
	size_t i;

	snprintf(f->dir, sizeof(f->dir), "/tmp/rift-test-store.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->state, sizeof(f->state), "%s/state", f->dir);
	snprintf(path, sizeof(path), "%s/src", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/src/PG_VERSION", f->dir);
	write_file(path, "15\n", 3);
	snprintf(path, sizeof(path), "%s/src/postmaster.pid", f->dir);
	write_file(path, "123\n", 4);
	snprintf(path, sizeof(path), "%s/src/base", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	for (i = 0; i < sizeof(rel); i++)
		rel[i] = (uint8_t)(i * 7 + i / RIFT_BLOCK_SIZE);
	snprintf(path, sizeof(path), "%s/src/base/1259", f->dir);
	write_file(path, rel, sizeof(rel));
	snprintf(path, sizeof(path), "%s/src/link", f->dir);
	assert_int_equal(symlink("base/1259", path), 0);

	assert_int_equal(rift_store_open(f->state, true, &f->s, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/src", f->dir);
	assert_int_equal(rift_store_base_import(f->s, path, &gen, err, sizeof(err)), 0);
	assert_int_equal(gen, 1);
	assert_int_equal(rift_store_branch_create(f->s, "main", NULL, 0), 0);
	assert_int_equal(rift_store_branch_open(f->s, "main", &f->main), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[256];

	rift_store_close(f->s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static uint64_t lookup_path(struct rift_branch *b, const char *dir_name, const char *name)
{
	struct rift_attr a;
	uint64_t dir = RIFT_ROOT_INO;

	if (dir_name != NULL) {
		assert_int_equal(rift_store_lookup(b, RIFT_ROOT_INO, dir_name, &a), 0);
		dir = a.ino;
	}
	assert_int_equal(rift_store_lookup(b, dir, name, &a), 0);
	return a.ino;
}

static void test_base_visible_and_lock_file_hidden(void **state)
{
	struct fixture *f = *state;
	struct rift_attr a;
	uint8_t buf[3 * RIFT_BLOCK_SIZE];
	char target[64];
	uint64_t ino;
	size_t i;

	assert_int_equal(rift_store_lookup(f->main, RIFT_ROOT_INO, "postmaster.pid", &a), -ENOENT);
	ino = lookup_path(f->main, "base", "1259");
	assert_int_equal(rift_store_read(f->main, ino, 0, sizeof(buf), buf), sizeof(buf));
	for (i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], (uint8_t)(i * 7 + i / RIFT_BLOCK_SIZE));
	ino = lookup_path(f->main, NULL, "link");
	assert_int_equal(rift_store_readlink(f->main, ino, target, sizeof(target)), 0);
	assert_string_equal(target, "base/1259");
	assert_int_equal(rift_store_getattr(f->main, RIFT_ROOT_INO, &a), 0);
	assert_true(S_ISDIR(a.mode));
	assert_int_not_equal(a.st_ino, RIFT_ROOT_INO);
}

static void test_unaligned_write_and_branch_isolation(void **state)
{
	struct fixture *f = *state;
	struct rift_branch *child;
	uint8_t buf[64], got[64];
	uint64_t ino = lookup_path(f->main, "base", "1259");
	struct rift_attr a, b;

	memset(buf, 0xAB, sizeof(buf));
	/* straddles the first block boundary */
	assert_int_equal(rift_store_write(f->main, ino, RIFT_BLOCK_SIZE - 10, sizeof(buf), buf),
			 sizeof(buf));
	assert_int_equal(rift_store_branch_create(f->s, "child", "main", 0), 0);
	assert_int_equal(rift_store_branch_open(f->s, "child", &child), 0);
	assert_int_equal(rift_store_read(child, ino, RIFT_BLOCK_SIZE - 10, 64, got), 64);
	assert_memory_equal(got, buf, 64);
	/* writes after the branch point stay on their side */
	memset(buf, 0xCD, sizeof(buf));
	assert_int_equal(rift_store_write(f->main, ino, 0, 16, buf), 16);
	assert_int_equal(rift_store_read(child, ino, 0, 16, got), 16);
	assert_int_equal(got[0], 0); /* i * 7 at i = 0 */
	memset(buf, 0xEE, sizeof(buf));
	assert_int_equal(rift_store_write(child, ino, 100, 16, buf), 16);
	assert_int_equal(rift_store_read(f->main, ino, 100, 16, got), 16);
	assert_int_not_equal(got[0], 0xEE);
	/* each branch root reports its own inode number */
	assert_int_equal(rift_store_getattr(f->main, RIFT_ROOT_INO, &a), 0);
	assert_int_equal(rift_store_getattr(child, RIFT_ROOT_INO, &b), 0);
	assert_int_not_equal(a.st_ino, b.st_ino);
	assert_int_equal(rift_store_branch_delete(f->s, "main"), -EBUSY);
	rift_store_branch_close(child);
	assert_int_equal(rift_store_branch_delete(f->s, "main"), -EBUSY);
	assert_int_equal(rift_store_branch_delete(f->s, "child"), 0);
	assert_int_equal(rift_store_branch_delete(f->s, "child"), -ENOENT);
}

/* A write far past what the in-memory presence bits cover (store_index.c) makes that file's
 * bits unknown; blocks written before and after it, and the base's, all still read back. */
static void test_far_block_and_near_blocks_read_back(void **state)
{
	struct fixture *f = *state;
	uint64_t ino = lookup_path(f->main, "base", "1259");
	const uint64_t far = (1ull << 21) + 5;
	uint8_t near1[RIFT_BLOCK_SIZE], farb[RIFT_BLOCK_SIZE], near2[RIFT_BLOCK_SIZE];
	uint8_t got[RIFT_BLOCK_SIZE];
	size_t i;

	memset(near1, 0x11, sizeof(near1));
	memset(farb, 0x22, sizeof(farb));
	memset(near2, 0x33, sizeof(near2));
	assert_int_equal(rift_store_write(f->main, ino, RIFT_BLOCK_SIZE, RIFT_BLOCK_SIZE, near1),
			 RIFT_BLOCK_SIZE);
	assert_int_equal(
	    rift_store_write(f->main, ino, far * RIFT_BLOCK_SIZE, RIFT_BLOCK_SIZE, farb),
	    RIFT_BLOCK_SIZE);
	assert_int_equal(
	    rift_store_write(f->main, ino, 2 * RIFT_BLOCK_SIZE, RIFT_BLOCK_SIZE, near2),
	    RIFT_BLOCK_SIZE);
	assert_int_equal(rift_store_read(f->main, ino, RIFT_BLOCK_SIZE, RIFT_BLOCK_SIZE, got),
			 RIFT_BLOCK_SIZE);
	assert_memory_equal(got, near1, RIFT_BLOCK_SIZE);
	assert_int_equal(rift_store_read(f->main, ino, far * RIFT_BLOCK_SIZE, RIFT_BLOCK_SIZE, got),
			 RIFT_BLOCK_SIZE);
	assert_memory_equal(got, farb, RIFT_BLOCK_SIZE);
	assert_int_equal(rift_store_read(f->main, ino, 2 * RIFT_BLOCK_SIZE, RIFT_BLOCK_SIZE, got),
			 RIFT_BLOCK_SIZE);
	assert_memory_equal(got, near2, RIFT_BLOCK_SIZE);
	/* block 0 was never written: the base's, and between the far block and the base's end zeros
	 */
	assert_int_equal(rift_store_read(f->main, ino, 0, RIFT_BLOCK_SIZE, got), RIFT_BLOCK_SIZE);
	for (i = 0; i < RIFT_BLOCK_SIZE; i++)
		assert_int_equal(got[i], (uint8_t)(i * 7));
	assert_int_equal(rift_store_read(f->main, ino, 40 * RIFT_BLOCK_SIZE, RIFT_BLOCK_SIZE, got),
			 RIFT_BLOCK_SIZE);
	for (i = 0; i < RIFT_BLOCK_SIZE; i++)
		assert_int_equal(got[i], 0);
}

#define BIG_BLOCKS 48

/* What block b of the 48-block base file "big" holds at byte i. */
static uint8_t big_byte(size_t b, size_t i)
{
	return (uint8_t)(b * 31 + i * 3 + 1);
}

static void expect_block(const uint8_t *got, size_t b, int fill)
{
	size_t i;

	for (i = 0; i < RIFT_BLOCK_SIZE; i++) {
		uint8_t want = fill < 0 ? big_byte(b, i) : (uint8_t)fill;
		if (got[b * RIFT_BLOCK_SIZE + i] != want)
			fail_msg("block %zu byte %zu: %u, want %u", b, i,
				 got[b * RIFT_BLOCK_SIZE + i], want);
	}
}

/*
 * One read over a whole file that mixes base blocks (read in runs straight from the base file),
 * blocks of the head and of an older layer, and blocks a truncation hid: every block as the
 * branch sees it, in both branches.
 */
static void test_long_reads_mix_base_and_layers(void **state)
{
	struct fixture *f = *state;
	struct rift_branch *child;
	struct rift_attr in = { 0 }, a;
	uint8_t *base = malloc(BIG_BLOCKS * RIFT_BLOCK_SIZE),
		*got = malloc(BIG_BLOCKS * RIFT_BLOCK_SIZE);
	uint8_t blk[RIFT_BLOCK_SIZE];
	char path[256];
	int fill[BIG_BLOCKS];
	size_t b, i;
	uint64_t ino;

	assert_non_null(base);
	assert_non_null(got);
	(void)state;
	/* a store of its own, whose base holds the 48-block file */
	rift_store_close(f->s);
	snprintf(path, sizeof(path), "rm -rf '%s'", f->state);
	assert_int_equal(system(path), 0);
	for (b = 0; b < BIG_BLOCKS; b++)
		for (i = 0; i < RIFT_BLOCK_SIZE; i++)
			base[b * RIFT_BLOCK_SIZE + i] = big_byte(b, i);
	snprintf(path, sizeof(path), "%s/src/big", f->dir);
	write_file(path, base, BIG_BLOCKS * RIFT_BLOCK_SIZE);
	/* and one of 2.5 blocks, whose last base block is half there */
	snprintf(path, sizeof(path), "%s/src/tail", f->dir);
	write_file(path, base, 5 * RIFT_BLOCK_SIZE / 2);
	{
		char err[RIFT_ERRMSG_LEN];
		uint32_t gen;
		assert_int_equal(rift_store_open(f->state, true, &f->s, err, sizeof(err)), 0);
		snprintf(path, sizeof(path), "%s/src", f->dir);
		assert_int_equal(rift_store_base_import(f->s, path, &gen, err, sizeof(err)), 0);
		assert_int_equal(rift_store_branch_create(f->s, "main", NULL, 0), 0);
		assert_int_equal(rift_store_branch_open(f->s, "main", &f->main), 0);
	}
	ino = lookup_path(f->main, NULL, "big");
	for (b = 0; b < BIG_BLOCKS; b++)
		fill[b] = -1;
	/* main writes blocks 3, 10, 11 and 40; the child is taken; the child writes 11 and 20 */
	const size_t in_main[] = { 3, 10, 11, 40 }, in_child[] = { 11, 20 };
	for (i = 0; i < 4; i++) {
		memset(blk, 0x50 + (int)i, sizeof(blk));
		assert_int_equal(rift_store_write(f->main, ino, in_main[i] * RIFT_BLOCK_SIZE,
						  RIFT_BLOCK_SIZE, blk),
				 RIFT_BLOCK_SIZE);
		fill[in_main[i]] = 0x50 + (int)i;
	}
	assert_int_equal(rift_store_branch_create(f->s, "child", "main", 0), 0);
	assert_int_equal(rift_store_branch_open(f->s, "child", &child), 0);
	for (i = 0; i < 2; i++) {
		memset(blk, 0x70 + (int)i, sizeof(blk));
		assert_int_equal(rift_store_write(child, ino, in_child[i] * RIFT_BLOCK_SIZE,
						  RIFT_BLOCK_SIZE, blk),
				 RIFT_BLOCK_SIZE);
	}
	/* main as it was: its four blocks, the base around them */
	assert_int_equal(rift_store_read(f->main, ino, 0, BIG_BLOCKS * RIFT_BLOCK_SIZE, got),
			 BIG_BLOCKS * RIFT_BLOCK_SIZE);
	for (b = 0; b < BIG_BLOCKS; b++)
		expect_block(got, b, fill[b]);
	/* the child: its own two blocks over main's, then cut to 30 blocks and grown back */
	fill[11] = 0x70;
	fill[20] = 0x71;
	in.size = 30 * RIFT_BLOCK_SIZE;
	assert_int_equal(rift_store_setattr(child, ino, &in, RIFT_SET_SIZE, &a), 0);
	in.size = BIG_BLOCKS * RIFT_BLOCK_SIZE;
	assert_int_equal(rift_store_setattr(child, ino, &in, RIFT_SET_SIZE, &a), 0);
	for (b = 30; b < BIG_BLOCKS; b++)
		fill[b] = 0;
	assert_int_equal(rift_store_read(child, ino, 0, BIG_BLOCKS * RIFT_BLOCK_SIZE, got),
			 BIG_BLOCKS * RIFT_BLOCK_SIZE);
	for (b = 0; b < BIG_BLOCKS; b++)
		expect_block(got, b, fill[b]);
	/* a read that starts inside a block and ends inside another */
	assert_int_equal(
	    rift_store_read(child, ino, 2 * RIFT_BLOCK_SIZE + 100, 10 * RIFT_BLOCK_SIZE, got),
	    10 * RIFT_BLOCK_SIZE);
	assert_int_equal(got[0], big_byte(2, 100));
	assert_int_equal(got[RIFT_BLOCK_SIZE - 100], 0x50);      /* block 3, main's */
	assert_int_equal(got[9 * RIFT_BLOCK_SIZE], 0x70);        /* block 11, the child's */
	assert_int_equal(got[10 * RIFT_BLOCK_SIZE - 101], 0x70); /* block 11's last byte */
	assert_int_equal(got[10 * RIFT_BLOCK_SIZE - 100], big_byte(12, 0));
	/* the half block: its base half, then zeros, and zeros in the block grown after it */
	ino = lookup_path(f->main, NULL, "tail");
	in.size = 4 * RIFT_BLOCK_SIZE;
	assert_int_equal(rift_store_setattr(f->main, ino, &in, RIFT_SET_SIZE, &a), 0);
	assert_int_equal(rift_store_read(f->main, ino, 0, 4 * RIFT_BLOCK_SIZE, got),
			 4 * RIFT_BLOCK_SIZE);
	assert_memory_equal(got, base, 5 * RIFT_BLOCK_SIZE / 2);
	for (i = 5 * RIFT_BLOCK_SIZE / 2; i < 4 * RIFT_BLOCK_SIZE; i++)
		if (got[i] != 0)
			fail_msg("byte %zu past the base's end: %u", i, got[i]);
	rift_store_branch_close(child);
	free(base);
	free(got);
}

static void test_truncate_never_resurrects(void **state)
{
	struct fixture *f = *state;
	struct rift_branch *child;
	uint64_t ino = lookup_path(f->main, "base", "1259");
	struct rift_attr in = { 0 }, a;
	uint8_t got[3 * RIFT_BLOCK_SIZE];
	size_t i;

	assert_int_equal(rift_store_branch_create(f->s, "t", "main", 0), 0);
	assert_int_equal(rift_store_branch_open(f->s, "t", &child), 0);
	in.size = 100; /* inside the first block: the tail of block 0 and blocks 1..2 go */
	assert_int_equal(rift_store_setattr(child, ino, &in, RIFT_SET_SIZE, &a), 0);
	assert_int_equal(a.size, 100);
	in.size = sizeof(got);
	assert_int_equal(rift_store_setattr(child, ino, &in, RIFT_SET_SIZE, &a), 0);
	assert_int_equal(rift_store_read(child, ino, 0, sizeof(got), got), sizeof(got));
	for (i = 0; i < 100; i++)
		assert_int_equal(got[i], (uint8_t)(i * 7));
	for (i = 100; i < sizeof(got); i++)
		if (got[i] != 0)
			fail_msg("byte %zu resurrected after truncate+extend: %u", i, got[i]);
	/* to zero and back */
	in.size = 0;
	assert_int_equal(rift_store_setattr(child, ino, &in, RIFT_SET_SIZE, &a), 0);
	in.size = 5000;
	assert_int_equal(rift_store_setattr(child, ino, &in, RIFT_SET_SIZE, &a), 0);
	assert_int_equal(rift_store_read(child, ino, 0, 5000, got), 5000);
	for (i = 0; i < 5000; i++)
		assert_int_equal(got[i], 0);
	/* the parent is untouched */
	assert_int_equal(rift_store_read(f->main, ino, 0, sizeof(got), got), sizeof(got));
	assert_int_equal(got[RIFT_BLOCK_SIZE * 2 + 1],
			 (uint8_t)((RIFT_BLOCK_SIZE * 2 + 1) * 7 + 2));
	rift_store_branch_close(child);
}

static int count_entry(const struct rift_dirent *ent, void *arg)
{
	(*(int *)arg)++;
	(void)ent;
	return 0;
}

static void test_namespace_ops(void **state)
{
	struct fixture *f = *state;
	struct rift_attr a, d, old;
	uint8_t buf[100], got[100];
	int n = 0;

	assert_int_equal(rift_store_mkdir(f->main, RIFT_ROOT_INO, "pg_wal", 0700, 101, 104, &d), 0);
	assert_int_equal(d.uid, 101);
	assert_int_equal(rift_store_create(f->main, d.ino, "a", S_IFREG | 0600, 101, 104, &a), 0);
	assert_int_equal(rift_store_create(f->main, d.ino, "a", S_IFREG | 0600, 101, 104, &a),
			 -EEXIST);
	assert_int_equal(rift_store_create(f->main, d.ino, "b", S_IFREG | 0600, 0, 0, &old), 0);
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(rift_store_write(f->main, a.ino, 0, sizeof(buf), buf), sizeof(buf));
	/* rename over an open file: the old one lives on through its reference */
	assert_int_equal(rift_store_ref(f->main, old.ino), 0);
	assert_int_equal(rift_store_write(f->main, old.ino, 0, 3, "old"), 3);
	assert_int_equal(rift_store_rename(f->main, d.ino, "a", d.ino, "b", 0), 0);
	assert_int_equal(rift_store_lookup(f->main, d.ino, "a", &a), -ENOENT);
	assert_int_equal(rift_store_lookup(f->main, d.ino, "b", &a), 0);
	assert_int_equal(rift_store_read(f->main, a.ino, 0, sizeof(got), got), sizeof(got));
	assert_memory_equal(got, buf, sizeof(buf));
	assert_int_equal(rift_store_read(f->main, old.ino, 0, 3, got), 3);
	assert_memory_equal(got, "old", 3);
	assert_int_equal(rift_store_getattr(f->main, old.ino, &old), 0);
	assert_int_equal(old.nlink, 0);
	assert_int_equal(rift_store_unref(f->main, old.ino), 0);
	assert_int_equal(rift_store_getattr(f->main, old.ino, &old), -ENOENT);
	assert_int_equal(rift_store_readdir(f->main, d.ino, count_entry, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rift_store_rmdir(f->main, RIFT_ROOT_INO, "pg_wal"), -ENOTEMPTY);
	assert_int_equal(rift_store_unlink(f->main, d.ino, "b"), 0);
	assert_int_equal(rift_store_rmdir(f->main, RIFT_ROOT_INO, "pg_wal"), 0);
	/* a directory cannot move into itself */
	assert_int_equal(rift_store_mkdir(f->main, RIFT_ROOT_INO, "x", 0700, 0, 0, &d), 0);
	assert_int_equal(rift_store_mkdir(f->main, d.ino, "y", 0700, 0, 0, &a), 0);
	assert_int_equal(rift_store_rename(f->main, RIFT_ROOT_INO, "x", a.ino, "z", 0), -EINVAL);
	/* base entries can be deleted in a branch (whiteouts) */
	assert_int_equal(rift_store_unlink(f->main, RIFT_ROOT_INO, "PG_VERSION"), 0);
	assert_int_equal(rift_store_lookup(f->main, RIFT_ROOT_INO, "PG_VERSION", &a), -ENOENT);
	assert_int_equal(rift_store_create(f->main, RIFT_ROOT_INO, "PG_VERSION", 0600, 0, 0, &a),
			 0);
	assert_int_equal(a.size, 0);
}

static void test_zero_blocks_cost_nothing(void **state)
{
	struct fixture *f = *state;
	struct rift_branch_info info;
	struct rift_layer_info li;
	struct rift_attr a;
	uint8_t *zeros = calloc(1, 1 << 20);
	int i;

	assert_int_equal(rift_store_create(f->main, RIFT_ROOT_INO, "seg", 0600, 0, 0, &a), 0);
	for (i = 0; i < 16; i++)
		assert_int_equal(
		    rift_store_write(f->main, a.ino, (uint64_t)i << 20, 1 << 20, zeros), 1 << 20);
	assert_int_equal(rift_store_branch_info(f->s, "main", &info), 0);
	assert_int_equal(rift_store_layer_info(f->s, info.head_layer, &li), 0);
	assert_true(li.bytes < 64 * 1024);
	assert_int_equal(rift_store_getattr(f->main, a.ino, &a), 0);
	assert_int_equal(a.size, 16u << 20);
	free(zeros);
}

static void test_reopen_keeps_acknowledged_state(void **state)
{
	struct fixture *f = *state;
	char err[RIFT_ERRMSG_LEN];
	struct rift_attr a;
	char got[6];

	assert_int_equal(rift_store_create(f->main, RIFT_ROOT_INO, "keep", 0600, 0, 0, &a), 0);
	assert_int_equal(rift_store_write(f->main, a.ino, 8190, 5, "hello"), 5);
	assert_int_equal(rift_store_sync(f->s), 0);
	assert_int_equal(rift_store_sync(f->s), 0); /* nothing pending: returns at once */
	rift_store_close(f->s);
	assert_int_equal(rift_store_open(f->state, false, &f->s, err, sizeof(err)), 0);
	assert_int_equal(rift_store_branch_open(f->s, "main", &f->main), 0);
	assert_int_equal(rift_store_read(f->main, lookup_path(f->main, NULL, "keep"), 8190, 5, got),
			 5);
	assert_memory_equal(got, "hello", 5);
}

static void test_changed_base_is_refused(void **state)
{
	struct fixture *f = *state;
	char err[RIFT_ERRMSG_LEN], path[256];

	rift_store_close(f->s);
	f->s = NULL;
	snprintf(path, sizeof(path), "%s/base/1/PG_VERSION", f->state);
	write_file(path, "16\n", 3);
	assert_int_equal(rift_store_open(f->state, false, &f->s, err, sizeof(err)), -ESTALE);
	assert_non_null(strstr(err, "PG_VERSION"));
	assert_null(f->s);
	/* teardown closes NULL harmlessly */
}

static void test_bad_names_and_missing_store(void **state)
{
	struct fixture *f = *state;
	char err[RIFT_ERRMSG_LEN];
	struct rift_store *none;

	assert_int_equal(rift_store_branch_create(f->s, "../x", "main", 0), -EINVAL);
	assert_int_equal(rift_store_branch_create(f->s, "A", "main", 0), -EINVAL);
	assert_int_equal(rift_store_branch_create(f->s, "main", NULL, 0), -EEXIST);
	assert_int_equal(rift_store_branch_create(f->s, "x", "nope", 0), -ENOENT);
	assert_int_not_equal(rift_store_open("/nonexistent/rift", false, &none, err, sizeof(err)),
			     0);
	assert_non_null(strstr(err, "rift init"));
}

static void test_squash_merges_single_child_layers(void **state)
{
	struct fixture *f = *state;
	struct rift_branch *b;
	struct rift_branch_info info;
	struct rift_attr a, in = { 0 };
	uint8_t got[2 * RIFT_BLOCK_SIZE];
	uint64_t ino = lookup_path(f->main, "base", "1259");
	char name[8];
	int i, merged;

	/* main writes in every layer of a 6-deep chain; the side branches then go away */
	for (i = 0; i < 6; i++) {
		uint8_t v = (uint8_t)(0x10 + i);
		assert_int_equal(rift_store_write(f->main, ino, (uint64_t)i * 100, 1, &v), 1);
		snprintf(name, sizeof(name), "s%d", i);
		assert_int_equal(rift_store_branch_create(f->s, name, "main", 0), 0);
	}
	/* a truncate in the newest layer must keep hiding older blocks after the merge */
	in.size = RIFT_BLOCK_SIZE;
	assert_int_equal(rift_store_setattr(f->main, ino, &in, RIFT_SET_SIZE, &a), 0);
	in.size = 2 * RIFT_BLOCK_SIZE;
	assert_int_equal(rift_store_setattr(f->main, ino, &in, RIFT_SET_SIZE, &a), 0);
	assert_int_equal(rift_store_create(f->main, RIFT_ROOT_INO, "late", 0600, 0, 0, &a), 0);
	assert_int_equal(rift_store_branch_info(f->s, "main", &info), 0);
	assert_int_equal(info.chain_depth, 7);
	for (i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		assert_int_equal(rift_store_branch_delete(f->s, name), 0);
	}
	merged = rift_store_squash(f->s);
	assert_true(merged >= 0);
	assert_int_equal(rift_store_branch_info(f->s, "main", &info), 0);
	assert_int_equal(info.chain_depth, 1);
	assert_int_equal(rift_store_read(f->main, ino, 0, sizeof(got), got), sizeof(got));
	for (i = 0; i < 6; i++)
		assert_int_equal(got[i * 100], 0x10 + i);
	for (i = RIFT_BLOCK_SIZE; i < (int)sizeof(got); i++)
		if (got[i] != 0)
			fail_msg("byte %d came back after squash: %u", i, got[i]);
	assert_int_equal(rift_store_lookup(f->main, RIFT_ROOT_INO, "late", &a), 0);
	assert_int_equal(rift_store_lookup(f->main, RIFT_ROOT_INO, "postmaster.pid", &a), -ENOENT);
	/* and the merged chain survives a reopen */
	rift_store_branch_close(f->main);
	assert_int_equal(rift_store_branch_create(f->s, "after", "main", 0), 0);
	assert_int_equal(rift_store_branch_open(f->s, "after", &b), 0);
	assert_int_equal(rift_store_read(b, ino, 0, sizeof(got), got), sizeof(got));
	assert_int_equal(got[500], 0x15);
	rift_store_branch_close(b);
	assert_int_equal(rift_store_branch_open(f->s, "main", &f->main), 0);
}

/* Regression: the branch table loaded at open had no capacity recorded, so the first create
 * after a reopen wrote past its end. */
static void test_create_after_reopen(void **state)
{
	struct fixture *f = *state;
	char err[RIFT_ERRMSG_LEN], name[8];
	int i;

	rift_store_close(f->s);
	assert_int_equal(rift_store_open(f->state, false, &f->s, err, sizeof(err)), 0);
	for (i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "r%d", i);
		assert_int_equal(rift_store_branch_create(f->s, name, i % 2 ? "main" : NULL, 0), 0);
	}
	assert_int_equal(rift_store_branch_open(f->s, "main", &f->main), 0);
}

static int collect_names(const struct rift_dirent *ent, void *arg)
{
	char *out = arg;

	strncat(out, ent->name, 255);
	strncat(out, ",", 2);
	return 0;
}

/* Regression: a name with entries in three layers (a whiteout over a whiteout over the base)
 * compared against a freed string while deduplicating. */
static void test_readdir_name_in_three_layers(void **state)
{
	struct fixture *f = *state;
	struct rift_branch *b;
	struct rift_attr a;
	char names[512] = "";

	assert_int_equal(rift_store_unlink(f->main, RIFT_ROOT_INO, "PG_VERSION"), 0);
	assert_int_equal(rift_store_branch_create(f->s, "l2", "main", 0), 0);
	assert_int_equal(rift_store_create(f->main, RIFT_ROOT_INO, "PG_VERSION", 0600, 0, 0, &a),
			 0);
	assert_int_equal(rift_store_branch_create(f->s, "l3", "main", 0), 0);
	assert_int_equal(rift_store_unlink(f->main, RIFT_ROOT_INO, "PG_VERSION"), 0);
	assert_int_equal(rift_store_readdir(f->main, RIFT_ROOT_INO, collect_names, names), 0);
	assert_string_equal(names, "base,link,");
	assert_int_equal(rift_store_branch_open(f->s, "l3", &b), 0);
	names[0] = '\0';
	assert_int_equal(rift_store_readdir(b, RIFT_ROOT_INO, collect_names, names), 0);
	assert_string_equal(names, "PG_VERSION,base,link,");
	rift_store_branch_close(b);
}

/* Regression: a head that squash filled with its parent's changes still counted as unchanged,
 * so the next branch from it skipped them. */
static void test_branch_after_squash_into_clean_head(void **state)
{
	struct fixture *f = *state;
	struct rift_branch *b;
	struct rift_attr a;

	assert_int_equal(rift_store_create(f->main, RIFT_ROOT_INO, "x", 0600, 0, 0, &a), 0);
	assert_int_equal(rift_store_branch_create(f->s, "s1", "main", 0), 0);
	assert_int_equal(rift_store_branch_delete(f->s, "s1"), 0);
	assert_true(rift_store_squash(f->s) >= 0);
	assert_int_equal(rift_store_branch_create(f->s, "s2", "main", 0), 0);
	assert_int_equal(rift_store_branch_open(f->s, "s2", &b), 0);
	assert_int_equal(rift_store_lookup(b, RIFT_ROOT_INO, "x", &a), 0);
	rift_store_branch_close(b);
}

/* A renamed branch keeps its data, open handle and fork point, durably; children block it. */
static void test_rename_branch(void **state)
{
	struct fixture *f = *state;
	struct rift_branch_info before, after, mi;
	char err[RIFT_ERRMSG_LEN];
	struct rift_branch *h;
	struct rift_attr a;
	char got[4];

	assert_int_equal(rift_store_branch_create(f->s, "w", "main", 0), 0);
	assert_int_equal(rift_store_branch_open(f->s, "w", &h), 0);
	assert_int_equal(rift_store_create(h, RIFT_ROOT_INO, "mine", 0600, 0, 0, &a), 0);
	assert_int_equal(rift_store_write(h, a.ino, 0, 4, "abcd"), 4);
	assert_int_equal(rift_store_branch_info(f->s, "w", &before), 0);
	assert_int_equal(rift_store_branch_info(f->s, "main", &mi), 0);
	assert_true(before.head_changed);
	assert_int_equal(before.fork_layer, mi.fork_layer); /* main had no write: shared fork */
	assert_int_equal(rift_store_branch_rename(f->s, "w", "main"), -EEXIST);
	assert_int_equal(rift_store_branch_rename(f->s, "nope", "x"), -ENOENT);
	assert_int_equal(rift_store_branch_rename(f->s, "w", "Bad/Name"), -EINVAL);
	assert_int_equal(rift_store_branch_rename(f->s, "main", "other"), -ENOTEMPTY);
	assert_int_equal(rift_store_branch_rename(f->s, "w", "feature"), 0);
	assert_int_equal(rift_store_branch_info(f->s, "w", &after), -ENOENT);
	assert_int_equal(rift_store_branch_info(f->s, "feature", &after), 0);
	assert_int_equal(after.head_layer, before.head_layer);
	assert_int_equal(after.fork_layer, before.fork_layer);
	assert_string_equal(after.parent, "main");
	/* the open handle still writes to the same branch */
	assert_int_equal(rift_store_write(h, a.ino, 4, 4, "efgh"), 4);
	assert_int_equal(rift_store_sync(f->s), 0);
	rift_store_branch_close(h);
	rift_store_close(f->s);
	assert_int_equal(rift_store_open(f->state, false, &f->s, err, sizeof(err)), 0);
	assert_int_equal(rift_store_branch_open(f->s, "main", &f->main), 0);
	assert_int_equal(rift_store_branch_info(f->s, "w", &after), -ENOENT);
	assert_int_equal(rift_store_branch_open(f->s, "feature", &h), 0);
	assert_int_equal(rift_store_read(h, lookup_path(h, NULL, "mine"), 4, 4, got), 4);
	assert_memory_equal(got, "efgh", 4);
	rift_store_branch_close(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_base_visible_and_lock_file_hidden, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_unaligned_write_and_branch_isolation, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_far_block_and_near_blocks_read_back, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_truncate_never_resurrects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_reads_mix_base_and_layers, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_namespace_ops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zero_blocks_cost_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_keeps_acknowledged_state, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_changed_base_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_names_and_missing_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_after_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_branch_after_squash_into_clean_head, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_readdir_name_in_three_layers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_squash_merges_single_child_layers, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_rename_branch, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
