/* test_store_changes.c — unit tests of what two branches wrote since they parted. */
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

#define BLOCKS 8u

struct fixture {
	char dir[64];
	char state[128];
	struct rift_store *s;
};

/* A base with one relation file, base/5/1259, of BLOCKS blocks. */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char path[256], err[RIFT_ERRMSG_LEN];
	uint8_t *rel = calloc(BLOCKS, RIFT_BLOCK_SIZE);
	uint32_t gen;
	int fd;

	assert_non_null(f);
	assert_non_null(rel);
	memset(rel, 0x5a, (size_t)BLOCKS * RIFT_BLOCK_SIZE);
	snprintf(f->dir, sizeof(f->dir), "/tmp/rift-test-changes.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->state, sizeof(f->state), "%s/state", f->dir);
	snprintf(path, sizeof(path), "%s/src", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/src/base", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/src/base/5", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/src/base/5/1259", f->dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, rel, (size_t)BLOCKS * RIFT_BLOCK_SIZE),
			 (ssize_t)BLOCKS * RIFT_BLOCK_SIZE);
	close(fd);
	free(rel);
	assert_int_equal(rift_store_open(f->state, true, &f->s, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/src", f->dir);
	assert_int_equal(rift_store_base_import(f->s, path, &gen, err, sizeof(err)), 0);
	assert_int_equal(rift_store_branch_create(f->s, "main", NULL, 0), 0);
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

static uint64_t rel_ino(struct rift_branch *b)
{
	struct rift_attr a;

	assert_int_equal(rift_store_lookup(b, RIFT_ROOT_INO, "base", &a), 0);
	assert_int_equal(rift_store_lookup(b, a.ino, "5", &a), 0);
	assert_int_equal(rift_store_lookup(b, a.ino, "1259", &a), 0);
	return a.ino;
}

static void put_block(struct rift_branch *b, uint64_t block, uint8_t v)
{
	uint8_t buf[RIFT_BLOCK_SIZE];

	memset(buf, v, sizeof(buf));
	assert_int_equal(rift_store_write(b, rel_ino(b), block * RIFT_BLOCK_SIZE, sizeof(buf), buf),
			 (ssize_t)sizeof(buf));
}

static void expect_changed(struct fixture *f, const char *a, const char *b, const uint64_t *want,
			   size_t n, uint64_t tail)
{
	struct rift_file_changes fc;
	size_t i;

	assert_int_equal(rift_store_file_changes(f->s, a, b, "base/5/1259", 100, &fc), 0);
	assert_true(fc.in_a && fc.in_b && fc.same_file && !fc.overflow);
	assert_int_equal(fc.tail, tail);
	if (fc.nchanged != n)
		fail_msg("%zu changed blocks, want %zu", fc.nchanged, n);
	for (i = 0; i < n; i++)
		assert_int_equal(fc.changed[i], want[i]);
	free(fc.changed);
}

/* Writes of both sides since they parted are the changed set; older writes are not. */
static void test_union_of_both_sides(void **state)
{
	struct fixture *f = *state;
	struct rift_branch *m, *c;
	static const uint64_t none[1], one[] = { 1 }, both[] = { 1, 3, 6 };
	uint64_t layer;
	bool is_base;

	assert_int_equal(rift_store_branch_open(f->s, "main", &m), 0);
	put_block(m, 0, 1); /* before the fork: shared */
	assert_int_equal(rift_store_branch_create(f->s, "c", "main", 0), 0);
	expect_changed(f, "c", "main", none, 0, BLOCKS);
	assert_int_equal(rift_store_branch_open(f->s, "c", &c), 0);
	put_block(c, 1, 2);
	put_block(c, 1, 3); /* twice: once in the set */
	expect_changed(f, "c", "main", one, 1, BLOCKS);
	put_block(m, 6, 4);
	put_block(c, 3, 5);
	expect_changed(f, "c", "main", both, 3, BLOCKS);
	expect_changed(f, "main", "c", both, 3, BLOCKS);
	/* parted at main's frozen head, not at the base */
	assert_int_equal(rift_store_common_layer(f->s, "c", "main", &layer, &is_base), 0);
	assert_false(is_base);
	assert_int_equal(rift_store_branch_create(f->s, "d", NULL, 0), 0);
	assert_int_equal(rift_store_branch_create(f->s, "e", NULL, 0), 0);
	assert_int_equal(rift_store_common_layer(f->s, "d", "e", &layer, &is_base), 0);
	assert_true(is_base);
	/* from a branch that never wrote: still the base's files */
	assert_int_equal(rift_store_branch_create(f->s, "g", "e", 0), 0);
	assert_int_equal(rift_store_common_layer(f->s, "g", "e", &layer, &is_base), 0);
	assert_true(is_base);
	assert_int_equal(rift_store_common_layer(f->s, "d", "nope", &layer, &is_base), -ENOENT);
	rift_store_branch_close(c);
	rift_store_branch_close(m);
}

/* A truncation made since hides older blocks past it: they count as changed (the tail). */
static void test_truncation_sets_the_tail(void **state)
{
	struct fixture *f = *state;
	struct rift_branch *c;
	struct rift_attr in = { 0 }, a;
	static const uint64_t one[] = { 1 };

	assert_int_equal(rift_store_branch_create(f->s, "c", "main", 0), 0);
	assert_int_equal(rift_store_branch_open(f->s, "c", &c), 0);
	put_block(c, 1, 9);
	put_block(c, 6, 9);
	in.size = 4 * RIFT_BLOCK_SIZE;
	assert_int_equal(rift_store_setattr(c, rel_ino(c), &in, RIFT_SET_SIZE, &a), 0);
	expect_changed(f, "c", "main", one, 1, 4);
	/* extended again: the hidden blocks still count, from the cut on */
	in.size = BLOCKS * RIFT_BLOCK_SIZE;
	assert_int_equal(rift_store_setattr(c, rel_ino(c), &in, RIFT_SET_SIZE, &a), 0);
	expect_changed(f, "c", "main", one, 1, 4);
	rift_store_branch_close(c);
}

/* A file replaced, made or absent on one side; a set past its cap. */
static void test_replaced_new_missing_and_overflow(void **state)
{
	struct fixture *f = *state;
	struct rift_branch *c;
	struct rift_file_changes fc;
	struct rift_attr in = { 0 }, a;
	uint64_t dir;

	assert_int_equal(rift_store_branch_create(f->s, "c", "main", 0), 0);
	assert_int_equal(rift_store_branch_open(f->s, "c", &c), 0);
	put_block(c, 2, 1);
	put_block(c, 5, 1);
	assert_int_equal(rift_store_file_changes(f->s, "c", "main", "base/5/1259", 1, &fc), 0);
	assert_true(fc.same_file && fc.overflow && fc.changed == NULL);
	/* truncated to 0: a new content lineage, nothing shared */
	in.size = 0;
	assert_int_equal(rift_store_setattr(c, rel_ino(c), &in, RIFT_SET_SIZE, &a), 0);
	assert_int_equal(rift_store_file_changes(f->s, "c", "main", "base/5/1259", 100, &fc), 0);
	assert_true(fc.in_a && fc.in_b && !fc.same_file && fc.changed == NULL);
	assert_int_equal(fc.blocks_a, 0);
	assert_int_equal(fc.blocks_b, BLOCKS);
	/* a file on one side only */
	assert_int_equal(rift_store_lookup(c, RIFT_ROOT_INO, "base", &a), 0);
	assert_int_equal(rift_store_lookup(c, a.ino, "5", &a), 0);
	dir = a.ino;
	assert_int_equal(rift_store_create(c, dir, "1259.1", 0100600, 0, 0, &a), 0);
	assert_int_equal(rift_store_file_changes(f->s, "c", "main", "base/5/1259.1", 100, &fc), 0);
	assert_true(fc.in_a && !fc.in_b && !fc.same_file);
	assert_int_equal(rift_store_file_changes(f->s, "main", "c", "base/5/1259.1", 100, &fc), 0);
	assert_true(!fc.in_a && fc.in_b && !fc.same_file);
	/* on neither side; bad paths and branches */
	assert_int_equal(rift_store_file_changes(f->s, "c", "main", "base/5/1259.2", 100, &fc), 0);
	assert_true(!fc.in_a && !fc.in_b);
	assert_int_equal(rift_store_file_changes(f->s, "c", "main", "base//x", 100, &fc), -EINVAL);
	assert_int_equal(rift_store_file_changes(f->s, "c", "nope", "base/5/1259", 100, &fc),
			 -ENOENT);
	rift_store_branch_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_union_of_both_sides, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncation_sets_the_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replaced_new_missing_and_overflow, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
