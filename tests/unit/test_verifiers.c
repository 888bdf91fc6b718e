/* test_verifiers.c — riftd's per-branch copy of SCRAM verifiers: put, replace, forget, inherit. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rift/verifiers.h"

#define V1 "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy"
#define V2 "SCRAM-SHA-256$8192:c2FsdDI=$c3RvcmVk:c2VydmVy"

static char state[64];

static int setup(void **s)
{
	char run[128];

	(void)s;
	snprintf(state, sizeof(state), "/tmp/rift-test-verifiers.XXXXXX");
	if (mkdtemp(state) == NULL)
		return -1;
	snprintf(run, sizeof(run), "%s/run", state);
	return mkdir(run, 0700);
}

static int teardown(void **s)
{
	char cmd[128];

	(void)s;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", state);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_put_get_replace_forget(void **s)
{
	/* role names may hold anything but NUL: spaces, newlines, another role's name */
	static const char *const roles[] = { "rift", "a b", "x\nrift 1", "rif", "Rift" };
	char out[256], path[128];
	struct stat st;
	size_t i;

	(void)s;
	assert_int_equal(rift_verifiers_get(state, "p", "rift", out, sizeof(out)), -ENOENT);
	for (i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
		assert_int_equal(rift_verifiers_put(state, "p", roles[i], i == 0 ? V1 : V2), 0);
	for (i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		assert_int_equal(rift_verifiers_get(state, "p", roles[i], out, sizeof(out)), 0);
		assert_string_equal(out, i == 0 ? V1 : V2);
	}
	assert_int_equal(rift_verifiers_put(state, "p", "rift", V2), 0); /* replaced, not added */
	assert_int_equal(rift_verifiers_get(state, "p", "rift", out, sizeof(out)), 0);
	assert_string_equal(out, V2);
	assert_int_equal(rift_verifiers_put(state, "p", "rift", NULL), 0);
	assert_int_equal(rift_verifiers_get(state, "p", "rift", out, sizeof(out)), -ENOENT);
	assert_int_equal(rift_verifiers_get(state, "p", "a b", out, sizeof(out)), 0);
	assert_int_equal(rift_verifiers_get(state, "p", "rift", out, 8), -ENOENT); /* too small */
	assert_int_equal(rift_verifiers_put(state, "p", "r", "a b"), -EINVAL);
	assert_int_equal(rift_verifiers_put(state, "p", "r", "a\nb"), -EINVAL);
	snprintf(path, sizeof(path), "%s/run/verifiers/p", state);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/run/verifiers", state);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	rift_verifiers_forget(state, "p");
	assert_int_equal(rift_verifiers_get(state, "p", "a b", out, sizeof(out)), -ENOENT);
}

static void test_inherit(void **s)
{
	char out[256];

	(void)s;
	assert_int_equal(rift_verifiers_put(state, "parent", "rift", V1), 0);
	assert_int_equal(rift_verifiers_put(state, "child", "old", V2), 0);
	assert_int_equal(rift_verifiers_inherit(state, "parent", "child"), 0);
	assert_int_equal(rift_verifiers_get(state, "child", "rift", out, sizeof(out)), 0);
	assert_string_equal(out, V1);
	assert_int_equal(rift_verifiers_get(state, "child", "old", out, sizeof(out)), -ENOENT);
	/* a parent with no file leaves the child with none (a reset drops what it had) */
	assert_int_equal(rift_verifiers_inherit(state, "nobody", "child"), 0);
	assert_int_equal(rift_verifiers_get(state, "child", "rift", out, sizeof(out)), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_get_replace_forget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inherit, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
