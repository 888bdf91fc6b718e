/* test_branch_select.c — rift.branch in startup options and the SNI host name: what selects a
 * branch, what is passed on intact, what is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "rift/branch_select.h"
#include "rift/startup.h"

struct opt_case {
	const char *options;
	enum rift_opt_branch want;
	const char *branch, *rest;
};

static void test_options(void **state)
{
	static const struct opt_case cases[] = {
		{ "-c rift.branch=feature-x", RIFT_OPT_BRANCH, "feature-x", "" },
		{ "-crift.branch=feature-x", RIFT_OPT_BRANCH, "feature-x", "" },
		{ "--rift.branch=feature-x", RIFT_OPT_BRANCH, "feature-x", "" },
		{ "-c RIFT.Branch=f1", RIFT_OPT_BRANCH, "f1", "" },
		{ "  -c work_mem=8MB   -c rift.branch=f  -c search_path=a\\ b  ", RIFT_OPT_BRANCH,
		  "f", "-c work_mem=8MB -c search_path=a\\ b" },
		{ "--geqo=off -c rift.branch=f -c", RIFT_OPT_BRANCH, "f", "--geqo=off -c" },
		{ "-c work_mem=8MB", RIFT_OPT_NONE, "", "-c work_mem=8MB" },
		{ "", RIFT_OPT_NONE, "", "" },
		{ "-c rift.branchx=f", RIFT_OPT_INVALID, NULL, NULL },
		{ "-c rift.branch", RIFT_OPT_INVALID, NULL, NULL },
		{ "-c rift.branch=", RIFT_OPT_INVALID, NULL, NULL },
		{ "-c rift.branch=Bad", RIFT_OPT_INVALID, NULL, NULL },
		{ "-c rift.branch=a\\ b", RIFT_OPT_INVALID, NULL, NULL },
		{ "-c rift.branch=../x", RIFT_OPT_INVALID, NULL, NULL },
		{ "-c rift.branch=a -c rift.branch=a", RIFT_OPT_INVALID, NULL, NULL },
		{ "-c rift.branch=a --rift.branch=b", RIFT_OPT_INVALID, NULL, NULL },
		{ "-c -crift.branch=a", RIFT_OPT_INVALID, NULL, NULL },
		{ "-c x=rift.branch", RIFT_OPT_INVALID, NULL, NULL },
		{ "-c rift\\.branch=a", RIFT_OPT_BRANCH, "a", "" },
		{ "-c rift.branch=a\\", RIFT_OPT_INVALID, NULL, NULL },
		{ "-c rift.branch=0123456789012345678901234567890123456789012345678901234567890123",
		  RIFT_OPT_INVALID, NULL, NULL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char branch[64], rest[256];
		const char *why = NULL;
		enum rift_opt_branch got = rift_options_take_branch(
		    cases[i].options, branch, sizeof(branch), rest, sizeof(rest), &why);
		if (got != cases[i].want)
			fail_msg("case %zu \"%s\": got %d, want %d", i, cases[i].options, got,
				 cases[i].want);
		if (got == RIFT_OPT_INVALID) {
			assert_non_null(why);
			continue;
		}
		assert_string_equal(branch, cases[i].branch);
		if (got == RIFT_OPT_BRANCH)
			assert_string_equal(rest, cases[i].rest);
	}
}

static void test_options_small_buffers(void **state)
{
	char branch[4], rest[8];
	const char *why;

	(void)state;
	assert_int_equal(rift_options_take_branch("-c rift.branch=abcd", branch, sizeof(branch),
						  rest, sizeof(rest), &why),
			 RIFT_OPT_INVALID);
	assert_int_equal(rift_options_take_branch("-c work_mem=64MB -c rift.branch=a", branch,
						  sizeof(branch), rest, sizeof(rest), &why),
			 RIFT_OPT_INVALID);
	assert_string_equal(why, "the startup options are too long");
}

static void test_sni(void **state)
{
	static const char *const cases[][2] = {
		{ "feature-x.localhost", "feature-x" },
		{ "Feature-X.db.example.com", "feature-x" },
		{ "feature-x", "" },
		{ "localhost", "" },
		{ "localhost.localdomain", "" },
		{ "127.0.0.1", "" },
		{ "::1", "" },
		{ "feature-x.", "" },
		{ ".example.com", "" },
		{ "bad!.example.com", "" },
		{ "_x.example.com", "" },
	};
	char branch[64];
	size_t i;

	(void)state;
	rift_sni_branch(NULL, branch, sizeof(branch));
	assert_string_equal(branch, "");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rift_sni_branch(cases[i][0], branch, sizeof(branch));
		if (strcmp(branch, cases[i][1]) != 0)
			fail_msg("sni \"%s\": got \"%s\", want \"%s\"", cases[i][0], branch,
				 cases[i][1]);
	}
}

/* options without rift.branch are forwarded; "" drops the parameter altogether */
static void test_build_with_options(void **state)
{
	static const uint8_t pkt[] = "\0\0\0\0\0\3\0\0user\0u\0options\0-c rift.branch=f\0"
				     "database\0d\0";
	uint8_t buf[sizeof(pkt)], out[256];
	struct rift_startup s, t;
	size_t n;

	(void)state;
	memcpy(buf, pkt, sizeof(pkt));
	rift_put_be32(buf, sizeof(pkt));
	rift_startup_parse(buf, sizeof(buf), &s);
	assert_int_equal(s.kind, RIFT_STARTUP_MESSAGE);
	n = rift_startup_build_with(&s, "d", "", out, sizeof(out));
	assert_true(n > 0);
	rift_startup_parse(out, n, &t);
	assert_int_equal(t.kind, RIFT_STARTUP_MESSAGE);
	assert_null(rift_startup_get(&t, "options"));
	assert_string_equal(rift_startup_get(&t, "database"), "d");
	n = rift_startup_build_with(&s, "d", "-c a=b", out, sizeof(out));
	rift_startup_parse(out, n, &t);
	assert_string_equal(rift_startup_get(&t, "options"), "-c a=b");
	n = rift_startup_build_with(&s, "d", NULL, out, sizeof(out));
	rift_startup_parse(out, n, &t);
	assert_string_equal(rift_startup_get(&t, "options"), "-c rift.branch=f");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_options_small_buffers),
		cmocka_unit_test(test_sni),
		cmocka_unit_test(test_build_with_options),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
