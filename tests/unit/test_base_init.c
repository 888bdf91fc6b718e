/* test_base_init.c — password scrubbing of typed URLs, and self-contained base copies. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "rift/base_copy.h"
#include "rift/base_init.h"
#include "rift/tree_remove.h"

struct scrub_case {
	const char *in, *want;
};

static const struct scrub_case scrub_cases[] = {
	{ "postgres://u:secret@h:5432/db", "postgres://u@h:5432/db" },
	{ "postgresql://u:secret@h/db?sslmode=require", "postgresql://u@h/db?sslmode=require" },
	{ "postgres://u:se@cret@h/db", "postgres://u@h/db" }, /* unencoded @ in the password */
	{ "postgres://u@h/db?password=secret&sslmode=require",
	  "postgres://u@h/db?password=&sslmode=require" },
	{ "postgres://u@h/db?sslpassword=secret", "postgres://u@h/db?sslpassword=" },
	{ "postgres://h:5432/db", "postgres://h:5432/db" },
	{ "host=h user=u password=secret dbname=db", "host=h user=u password= dbname=db" },
	{ "host=h password = 'sec ret\\' x' dbname=db", "host=h password =  dbname=db" },
	{ "password=secret", "password=" },
	{ "host=h sslpassword=secret", "host=h sslpassword=" },
	{ "host=h mypassword=x", "host=h mypassword=x" },
};

static void test_scrub(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(scrub_cases) / sizeof(scrub_cases[0]); i++) {
		char buf[256];
		size_t len = strlen(scrub_cases[i].in), j;
		memset(buf, 'Z', sizeof(buf));
		memcpy(buf, scrub_cases[i].in, len + 1);
		rift_conninfo_scrub(buf);
		assert_string_equal(buf, scrub_cases[i].want);
		for (j = strlen(buf); j < len; j++) /* same length, the rest NULs */
			assert_int_equal(buf[j], '\0');
		assert_int_equal(buf[len], '\0');
		assert_int_equal(buf[len + 1], 'Z');
		assert_null(strstr(buf, "secret"));
	}
}

static char tmp[64];

static void put(const char *rel, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmp, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void dir(const char *rel)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", tmp, rel);
	assert_int_equal(mkdir(path, 0700), 0);
}

static void link_to(const char *target, const char *rel)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", tmp, rel);
	assert_int_equal(symlink(target, path), 0);
}

static bool is_dir(const char *rel)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", tmp, rel);
	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void test_copy(void **state)
{
	char src[128], dst[128], cmd[256], err[1024] = "", wal[128], ts[128];

	(void)state;
	snprintf(tmp, sizeof(tmp), "/tmp/rift-test-base-copy.XXXXXX");
	assert_non_null(mkdtemp(tmp));
	snprintf(src, sizeof(src), "%s/src", tmp);
	snprintf(dst, sizeof(dst), "%s/dst", tmp);
	snprintf(wal, sizeof(wal), "%s/wal", tmp);
	snprintf(ts, sizeof(ts), "%s/ts", tmp);
	dir("src");
	dir("dst");
	dir("wal");
	dir("ts");
	dir("ts/PG_15_202209061");
	dir("ts/PG_14_202107181"); /* another major version sharing the location */
	put("ts/PG_15_202209061/16385", "table");
	put("ts/PG_14_202107181/16385", "old table");
	dir("wal/archive_status");
	put("wal/000000010000000000000001", "wal");
	put("src/PG_VERSION", "15\n");
	put("src/postgresql.conf", "");
	dir("src/pg_tblspc");
	dir("src/global");
	put("src/global/pg_control", "control");
	link_to(wal, "src/pg_wal");
	link_to(ts, "src/pg_tblspc/16384");
	link_to("global/pg_control", "src/inner_link"); /* relative and inside: kept */

	if (geteuid() == 0) {
		/* a source of root's is refused; a data directory belongs to its cluster's user */
		assert_int_not_equal(rift_base_copy(src, dst, NULL, NULL, err, sizeof(err)), 0);
		assert_non_null(strstr(err, "belongs to root"));
		snprintf(cmd, sizeof(cmd), "chown -Rh 1:1 %s/src %s/wal %s/ts", tmp, tmp, tmp);
		assert_int_equal(system(cmd), 0);
	}
	if (rift_base_copy(src, dst, NULL, NULL, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_true(is_dir("dst/pg_wal"));
	assert_true(is_dir("dst/pg_wal/archive_status"));
	assert_true(is_dir("dst/pg_tblspc/16384"));
	assert_true(is_dir("dst/pg_tblspc/16384/PG_15_202209061"));
	assert_false(is_dir("dst/pg_tblspc/16384/PG_14_202107181"));
	snprintf(cmd, sizeof(cmd), "%s/pg_wal/000000010000000000000001", dst);
	assert_int_equal(access(cmd, R_OK), 0);
	assert_int_equal(rift_base_check_links(dst, err, sizeof(err)), 0);

	/* links leading out, absolute ones and dangling ones are refused, naming the link */
	link_to("/etc/hostname", "dst/stray");
	assert_int_not_equal(rift_base_check_links(dst, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "stray"));
	assert_non_null(strstr(err, "/etc/hostname"));
	snprintf(cmd, sizeof(cmd), "%s/stray", dst);
	unlink(cmd);
	link_to("../../../etc", "dst/global/up");
	assert_int_not_equal(rift_base_check_links(dst, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "global/up"));
	snprintf(cmd, sizeof(cmd), "%s/global/up", dst);
	unlink(cmd);
	link_to("nothing-here", "dst/dangling");
	assert_int_not_equal(rift_base_check_links(dst, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "nothing that exists"));
	/* as root, a file the cluster's user does not own is not copied (not even counted) */
	if (geteuid() == 0) {
		snprintf(cmd, sizeof(cmd), "%s/PG_15_202209061/16385", ts);
		assert_int_equal(chown(cmd, 2, 2), 0);
		dir("dst2");
		snprintf(dst, sizeof(dst), "%s/dst2", tmp);
		assert_int_not_equal(rift_base_copy(src, dst, NULL, NULL, err, sizeof(err)), 0);
		assert_non_null(strstr(err, "belongs to uid 2"));
		snprintf(cmd, sizeof(cmd), "%s/pg_wal", dst);
		assert_int_not_equal(access(cmd, F_OK), 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	assert_int_equal(system(cmd), 0);
}

/* rift_tree_remove takes a link as a link: what it points to, file or directory, stays. */
static void test_tree_remove(void **state)
{
	char path[256], cmd[256], outside[128];

	(void)state;
	snprintf(tmp, sizeof(tmp), "/tmp/rift-test-tree-remove.XXXXXX");
	assert_non_null(mkdtemp(tmp));
	snprintf(outside, sizeof(outside), "%s/outside", tmp);
	dir("outside");
	put("outside/keep", "keep");
	dir("tree");
	dir("tree/a");
	dir("tree/a/b");
	put("tree/a/b/f", "x");
	put("tree/a/g", "y");
	link_to(outside, "tree/a/dirlink");
	link_to("../../outside/keep", "tree/a/b/filelink");
	snprintf(path, sizeof(path), "%s/tree", tmp);
	assert_int_equal(rift_tree_remove(path), 0);
	assert_int_not_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/outside/keep", tmp);
	assert_int_equal(access(path, F_OK), 0);
	/* the top itself a link: only the link goes */
	link_to(outside, "top");
	snprintf(path, sizeof(path), "%s/top", tmp);
	assert_int_equal(rift_tree_remove(path), 0);
	assert_true(is_dir("outside"));
	snprintf(path, sizeof(path), "%s/outside/keep", tmp);
	assert_int_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/missing", tmp);
	assert_int_equal(rift_tree_remove(path), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scrub),
		cmocka_unit_test(test_copy),
		cmocka_unit_test(test_tree_remove),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
