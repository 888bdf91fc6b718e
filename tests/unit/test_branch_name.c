/* test_branch_name.c — table-driven tests of the branch-name validator. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "rift/branch_name.h"

struct name_case {
	const char *name;
	enum rift_name_verdict want;
};

static const struct name_case cases[] = {
	{ "main", RIFT_NAME_OK },
	{ "feature-x", RIFT_NAME_OK },
	{ "a", RIFT_NAME_OK },
	{ "0", RIFT_NAME_OK },
	{ "pr_1234-fix", RIFT_NAME_OK },
	{ "9lives", RIFT_NAME_OK },
	{ "", RIFT_NAME_EMPTY },
	{ ".", RIFT_NAME_BAD_FIRST_CHAR },
	{ "..", RIFT_NAME_BAD_FIRST_CHAR },
	{ "/", RIFT_NAME_BAD_FIRST_CHAR },
	{ "../x", RIFT_NAME_BAD_FIRST_CHAR },
	{ "a/b", RIFT_NAME_BAD_CHAR },
	{ "a..b", RIFT_NAME_BAD_CHAR },
	{ "Main", RIFT_NAME_BAD_FIRST_CHAR },
	{ "mAin", RIFT_NAME_BAD_CHAR },
	{ "A", RIFT_NAME_BAD_FIRST_CHAR },
	{ "-x", RIFT_NAME_BAD_FIRST_CHAR },
	{ "_x", RIFT_NAME_BAD_FIRST_CHAR },
	{ "x y", RIFT_NAME_BAD_CHAR },
	{ "x@y", RIFT_NAME_BAD_CHAR },
	{ "x\n", RIFT_NAME_BAD_CHAR },
	{ "caf\xc3\xa9", RIFT_NAME_BAD_CHAR },
	{ "x%00", RIFT_NAME_BAD_CHAR },
};

static void test_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum rift_name_verdict got = rift_branch_name_check(cases[i].name);
		if (got != cases[i].want)
			fail_msg("name \"%s\": got verdict %d, want %d", cases[i].name, (int)got,
				 (int)cases[i].want);
	}
}

static void test_null_is_empty(void **state)
{
	(void)state;
	assert_int_equal(rift_branch_name_check(NULL), RIFT_NAME_EMPTY);
}

static void test_length_limit(void **state)
{
	char name[80];

	(void)state;
	memset(name, 'a', sizeof(name));
	name[63] = '\0';
	assert_int_equal(rift_branch_name_check(name), RIFT_NAME_OK);
	name[63] = 'b';
	name[64] = '\0';
	assert_int_equal(rift_branch_name_check(name), RIFT_NAME_TOO_LONG);
	name[64] = 'c';
	name[79] = '\0';
	assert_int_equal(rift_branch_name_check(name), RIFT_NAME_TOO_LONG);
}

static void test_every_verdict_is_explained(void **state)
{
	int v;

	(void)state;
	for (v = RIFT_NAME_OK; v <= RIFT_NAME_BAD_CHAR; v++) {
		const char *why = rift_branch_name_explain((enum rift_name_verdict)v);
		assert_non_null(why);
		assert_true(strlen(why) > 10);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_null_is_empty),
		cmocka_unit_test(test_length_limit),
		cmocka_unit_test(test_every_verdict_is_explained),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
