/* test_base_init.c — password scrubbing of typed URLs. */
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

#include "rift/base_init.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scrub),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
