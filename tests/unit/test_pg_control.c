/* test_pg_control.c — riftd reads a branch's checkpoint and redo point from the store, and
 * refuses a pg_control a hostile superuser wrote: an old layout, nonsense values, a short file,
 * a directory in its place. */
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

#include "rift/pg_control.h"
#include "rift/store.h"

struct fixture {
	char dir[64];
	struct rift_store *s;
};

/* 512 bytes of a pg_control: version, checkpoint and redo at PostgreSQL 11+'s offsets. */
static void control(uint8_t *buf, uint32_t version, uint64_t checkpoint, uint64_t redo)
{
	memset(buf, 0, 512);
	memcpy(buf + 8, &version, sizeof(version));
	memcpy(buf + 32, &checkpoint, sizeof(checkpoint));
	memcpy(buf + 40, &redo, sizeof(redo));
}

/*
 * A store whose base holds global/pg_control with len bytes of buf (as_dir: a directory of
 * that name instead; no_global: no global directory), branch "b" made from it.
 */
static struct fixture *make(const uint8_t *buf, size_t len, bool as_dir, bool no_global)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char path[256], err[RIFT_ERRMSG_LEN];
	uint32_t gen;
	int fd;

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/rift-test-pgcontrol.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(path, sizeof(path), "%s/src", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	if (!no_global) {
		snprintf(path, sizeof(path), "%s/src/global", f->dir);
		assert_int_equal(mkdir(path, 0700), 0);
		snprintf(path, sizeof(path), "%s/src/global/pg_control", f->dir);
		if (as_dir) {
			assert_int_equal(mkdir(path, 0700), 0);
		} else {
			fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
			assert_true(fd >= 0);
			assert_int_equal(write(fd, buf, len), (ssize_t)len);
			close(fd);
		}
	}
	snprintf(path, sizeof(path), "%s/state", f->dir);
	assert_int_equal(rift_store_open(path, true, &f->s, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/src", f->dir);
	assert_int_equal(rift_store_base_import(f->s, path, &gen, err, sizeof(err)), 0);
	assert_int_equal(rift_store_branch_create(f->s, "b", NULL, 0), 0);
	return f;
}

static void done(struct fixture *f)
{
	char cmd[128];

	rift_store_close(f->s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
}

/* What reading branch b's pg_control gives; *out as read. */
static int read_b(const uint8_t *buf, size_t len, bool as_dir, bool no_global,
		  struct rift_pg_checkpoint *out)
{
	struct fixture *f = make(buf, len, as_dir, no_global);
	int rc = rift_pg_checkpoint_read(f->s, "b", out);

	done(f);
	return rc;
}

static void test_reads_checkpoint_and_redo(void **state)
{
	struct rift_pg_checkpoint c;
	uint8_t buf[512];

	(void)state;
	control(buf, 1300, 0x3000060, 0x3000028);
	assert_int_equal(read_b(buf, sizeof(buf), false, false, &c), 0);
	assert_int_equal(c.checkpoint, 0x3000060);
	assert_int_equal(c.redo, 0x3000028);
	/* a checkpoint whose redo point is its own record */
	control(buf, 1100, 0x3000028, 0x3000028);
	assert_int_equal(read_b(buf, sizeof(buf), false, false, &c), 0);
}

static void test_refuses_what_it_cannot_trust(void **state)
{
	struct rift_pg_checkpoint c;
	uint8_t buf[512];

	(void)state;
	/* 9.4's layout: prevCheckPoint sits where 11 has redo */
	control(buf, 942, 0x3000060, 0x3000028);
	assert_int_equal(read_b(buf, sizeof(buf), false, false, &c), -EINVAL);
	assert_int_equal(c.redo, 0); /* nothing half-read is left for the caller */
	control(buf, 10000, 0x3000060, 0x3000028);
	assert_int_equal(read_b(buf, sizeof(buf), false, false, &c), -EINVAL);
	/* a redo point after its checkpoint, or none */
	control(buf, 1300, 0x3000028, 0x3000060);
	assert_int_equal(read_b(buf, sizeof(buf), false, false, &c), -EINVAL);
	control(buf, 1300, 0x3000060, 0);
	assert_int_equal(read_b(buf, sizeof(buf), false, false, &c), -EINVAL);
	/* too short to hold the fields, a directory in its place, no global directory */
	control(buf, 1300, 0x3000060, 0x3000028);
	assert_int_equal(read_b(buf, 44, false, false, &c), -EINVAL);
	assert_int_equal(read_b(buf, 0, true, false, &c), -EINVAL);
	assert_true(read_b(buf, 0, false, true, &c) < 0);
	assert_int_equal(c.checkpoint, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads_checkpoint_and_redo),
		cmocka_unit_test(test_refuses_what_it_cannot_trust),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
