/* test_ddl_log.c — the server-log DDL parser: statements, continuations, failures, the since
 * filter, every truncated prefix of a line, hostile bytes and the size caps. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "rift/ddl_log.h"

#define T0    "2026-11-28 10:00:00.250 UTC"
#define T0_MS 1795860000250LL

static void feed(struct rift_ddl_log *l, const char *line)
{
	assert_int_equal(rift_ddl_log_feed(l, line, strlen(line)), 0);
}

static void test_statements(void **state)
{
	struct rift_ddl_log l;

	(void)state;
	rift_ddl_log_init(&l, 0);
	feed(&l, T0 " [10] LOG:  checkpoint starting: time");
	feed(&l, T0 " [11] alice@me@demo LOG:  statement: create view v as");
	feed(&l, "\tselect 1");
	feed(&l, T0 " [12] rift@demo LOG:  execute <unnamed>: drop table t");
	feed(&l, T0 " [12] rift@demo LOG:  duration: 1 ms  statement: create table z ()");
	feed(&l, "\tnot a continuation of anything kept");
	feed(&l, T0 " [13] rift@demo LOG:  statement: create table t (a int)");
	feed(&l, T0 " [13] rift@demo ERROR:  relation \"t\" already exists");
	feed(&l, T0 " [13] rift@demo STATEMENT:  create table t (a int)");
	feed(&l, T0 " [12] rift@demo ERROR:  boom");
	feed(&l, T0 " [12] rift@demo STATEMENT:  select 1");
	assert_int_equal(l.n, 3);
	assert_string_equal(l.v[0].role, "alice@me");
	assert_string_equal(l.v[0].database, "demo");
	assert_string_equal(l.v[0].statement, "create view v as\nselect 1");
	assert_int_equal(l.v[0].time_ms, T0_MS);
	assert_int_equal(l.v[0].pid, 11);
	assert_string_equal(l.v[1].statement, "drop table t");
	assert_false(l.v[1].failed);
	assert_string_equal(l.v[2].statement, "create table t (a int)");
	assert_true(l.v[2].failed);
	rift_ddl_log_free(&l);
}

static void test_since(void **state)
{
	struct rift_ddl_log l;

	(void)state;
	rift_ddl_log_init(&l, T0_MS + 1);
	feed(&l, T0 " [11] a@b LOG:  statement: create table old ()");
	feed(&l, "2026-11-28 10:00:01.000 UTC [11] a@b LOG:  statement: create table new ()");
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].statement, "create table new ()");
	rift_ddl_log_free(&l);
}

/* Every prefix of a valid line is skipped or parsed, never read past its end. */
static void test_prefixes(void **state)
{
	static const char line[] = T0 " [11] a@b LOG:  statement: create table x ()";
	struct rift_ddl_log l;
	size_t n;

	(void)state;
	for (n = 0; n < sizeof(line) - 1; n++) {
		char *copy = malloc(n ? n : 1); /* exactly n bytes: ASan sees any over-read */
		assert_non_null(copy);
		memcpy(copy, line, n);
		rift_ddl_log_init(&l, 0);
		assert_int_equal(rift_ddl_log_feed(&l, copy, n), 0);
		assert_true(l.n <= 1);
		rift_ddl_log_free(&l);
		free(copy);
	}
}

static void test_hostile(void **state)
{
	static const char bad[] = T0 " [11] ev\0il\xff@d\x1b LOG:  statement: a\0b\xc3";
	struct rift_ddl_log l;
	json_t *doc;
	char *text;

	(void)state;
	rift_ddl_log_init(&l, 0);
	assert_int_equal(rift_ddl_log_feed(&l, bad, sizeof(bad) - 1), 0);
	feed(&l, T0 " [99999999999] a@b LOG:  statement: pid too big");
	feed(&l, "1999-99-28 10:00:00.250 UTC [11] a@b LOG:  statement: bad date");
	assert_int_equal(l.n, 1);
	doc = rift_ddl_log_json(&l);
	assert_non_null(doc);
	text = json_dumps(doc, JSON_COMPACT);
	assert_non_null(strstr(text, "\"role\":\"ev?il?\""));
	assert_non_null(strstr(text, "\"statement\":\"a?b?\""));
	free(text);
	json_decref(doc);
	rift_ddl_log_free(&l);
}

/* Statements are cut at 64 KiB; older entries go once 2 MiB are held. */
static void test_caps(void **state)
{
	size_t len = RIFT_DDL_MAX_STATEMENT + 100, i;
	char *line = malloc(len + 100);
	struct rift_ddl_log l;
	int n;

	(void)state;
	assert_non_null(line);
	n = snprintf(line, 100, T0 " [11] a@b LOG:  statement: ");
	memset(line + n, 'x', len);
	rift_ddl_log_init(&l, 0);
	for (i = 0; i < 40; i++)
		assert_int_equal(rift_ddl_log_feed(&l, line, (size_t)n + len), 0);
	assert_true(l.v[l.first].truncated);
	assert_int_equal(l.v[l.first].len, RIFT_DDL_MAX_STATEMENT);
	assert_true(l.bytes <= RIFT_DDL_MAX_BYTES);
	assert_int_equal(l.n + l.dropped, 40);
	assert_true(l.dropped > 0);
	rift_ddl_log_free(&l);
	free(line);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_statements), cmocka_unit_test(test_since),
		cmocka_unit_test(test_prefixes),   cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_caps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
