/* test_labels.c — table-driven tests of branch labels: syntax, the canonical set, selectors. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "rift/labels.h"

static void test_check(void **state)
{
	static const struct {
		const char *kv;
		bool ok;
	} cases[] = {
		{ "pr=123", true },
		{ "job=lint", true },
		{ "a=", true },
		{ "ci.run-id=9_x", true },
		{ "pr", false },
		{ "=1", false },
		{ "-x=1", false },
		{ "pr=1=2", false },
		{ "pr=1,2", false },
		{ "p r=1", false },
		{ "pr=caf\xc3\xa9", false },
		{ "pr=a b", false },
		{ "pr=\n", false },
	};
	char big[200];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(rift_label_check(cases[i].kv) == NULL, cases[i].ok);
	memset(big, 'k', sizeof(big));
	big[63] = '=';
	big[64] = '\0';
	assert_null(rift_label_check(big)); /* 63-byte key */
	big[63] = 'k';
	big[64] = '=';
	big[65] = '\0';
	assert_non_null(rift_label_check(big)); /* 64-byte key */
}

static void test_add(void **state)
{
	char l[64] = "", small[12] = "";
	int i;

	(void)state;
	assert_int_equal(rift_labels_add(l, sizeof(l), "pr=1"), 0);
	assert_int_equal(rift_labels_add(l, sizeof(l), "job=lint"), 0);
	assert_string_equal(l, "pr=1,job=lint");
	assert_int_equal(rift_labels_add(l, sizeof(l), "pr=2"), 0); /* replaces */
	assert_string_equal(l, "job=lint,pr=2");
	assert_int_equal(rift_labels_add(l, sizeof(l), "pr=3"), 0); /* the last one replaced */
	assert_string_equal(l, "job=lint,pr=3");
	assert_int_equal(rift_labels_add(l, sizeof(l), "bad"), -EINVAL);
	assert_string_equal(l, "job=lint,pr=3");
	assert_int_equal(rift_labels_add(small, sizeof(small), "abc=defgh"), 0);
	assert_int_equal(rift_labels_add(small, sizeof(small), "x=1"), -E2BIG);
	assert_string_equal(small, "abc=defgh");
	{
		char many[1024] = "", kv[16];
		for (i = 0; i < RIFT_LABELS_COUNT; i++) {
			snprintf(kv, sizeof(kv), "k%d=v", i);
			assert_int_equal(rift_labels_add(many, sizeof(many), kv), 0);
		}
		assert_int_equal(rift_labels_add(many, sizeof(many), "one=more"), -E2BIG);
	}
}

static void test_match(void **state)
{
	static const struct {
		const char *labels, *selector;
		bool want;
	} cases[] = {
		{ "pr=12,job=lint", "pr=12", true },
		{ "pr=12,job=lint", "job=lint,pr=12", true },
		{ "pr=12,job=lint", "pr=1", false }, /* no prefix matches */
		{ "pr=1,job=lint", "pr=12", false },
		{ "pr=12", "pr=12,job=lint", false },
		{ "xpr=12", "pr=12", false },
		{ "pr=12", "pr", true }, /* a key alone: any value */
		{ "", "pr=12", false },
		{ "", "", true },
		{ "pr=12", "", true },
		{ "pr=", "pr=", true },
		{ "pr=1", "pr=", false },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(rift_labels_match(cases[i].labels, cases[i].selector),
				 cases[i].want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_add),
		cmocka_unit_test(test_match),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
