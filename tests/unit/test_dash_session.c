/* test_dash_session.c — dashboard sessions: random ids, lookups that refuse near misses and
 * malformed ids, one-time tickets, logout, a full table, and the constant-time comparison. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../daemon/dash_session.h"

static void sessions_are_random_and_checked(void **state)
{
	struct dash_sessions ds;
	char a[DASH_HEX], b[DASH_HEX], ca[DASH_HEX], cb[DASH_HEX], got[DASH_HEX], near[DASH_HEX];

	(void)state;
	dash_sessions_init(&ds);
	assert_int_equal(dash_session_new(&ds, a, ca), 0);
	assert_int_equal(dash_session_new(&ds, b, cb), 0);
	assert_int_equal(strlen(a), 2 * DASH_ID_BYTES);
	assert_string_not_equal(a, b);
	assert_string_not_equal(ca, cb);
	assert_string_not_equal(a, ca); /* the CSRF token is not the id */
	assert_true(dash_session_check(&ds, a, got));
	assert_string_equal(got, ca);
	assert_true(dash_session_check(&ds, b, got));
	assert_string_equal(got, cb);
	/* a near miss, a prefix, upper case, junk and the empty string are all refused */
	memcpy(near, a, sizeof(near));
	near[10] = near[10] == '0' ? '1' : '0';
	assert_false(dash_session_check(&ds, near, got));
	near[2 * DASH_ID_BYTES - 1] = '\0';
	assert_false(dash_session_check(&ds, near, got));
	memcpy(near, a, sizeof(near));
	near[0] = 'A';
	assert_false(dash_session_check(&ds, near, got));
	assert_false(dash_session_check(&ds, "", got));
	assert_false(dash_session_check(&ds, NULL, got));
	/* an all-zero id matches no free slot */
	memset(near, '0', 2 * DASH_ID_BYTES);
	near[2 * DASH_ID_BYTES] = '\0';
	assert_false(dash_session_check(&ds, near, got));
	dash_session_end(&ds, a);
	assert_false(dash_session_check(&ds, a, got));
	assert_true(dash_session_check(&ds, b, got));
	dash_sessions_destroy(&ds);
}

static void a_full_table_drops_the_least_recently_used(void **state)
{
	struct dash_sessions ds;
	char first[DASH_HEX], id[DASH_HEX], csrf[DASH_HEX], got[DASH_HEX];
	int i;

	(void)state;
	dash_sessions_init(&ds);
	assert_int_equal(dash_session_new(&ds, first, csrf), 0);
	for (i = 0; i < DASH_MAX_SESSIONS; i++)
		assert_int_equal(dash_session_new(&ds, id, csrf), 0);
	assert_true(dash_session_check(&ds, id, got));
	assert_false(dash_session_check(&ds, first, got));
	dash_sessions_destroy(&ds);
}

static void tickets_work_once(void **state)
{
	struct dash_sessions ds;
	char t[DASH_HEX], u[DASH_HEX], got[DASH_HEX];

	(void)state;
	dash_sessions_init(&ds);
	assert_int_equal(dash_ticket_new(&ds, t), 0);
	assert_int_equal(dash_ticket_new(&ds, u), 0);
	assert_string_not_equal(t, u);
	assert_false(dash_session_check(&ds, t, got)); /* a ticket is no session */
	assert_true(dash_ticket_take(&ds, t));
	assert_false(dash_ticket_take(&ds, t));
	assert_true(dash_ticket_take(&ds, u));
	assert_false(dash_ticket_take(&ds, "nonsense"));
	dash_sessions_destroy(&ds);
}

static void equal_ct(void **state)
{
	(void)state;
	assert_true(dash_equal_ct("abcdef", "abcdef"));
	assert_false(dash_equal_ct("abcdef", "abcdeg"));
	assert_false(dash_equal_ct("abc", "abcdef"));
	assert_false(dash_equal_ct("abcdef", "abc"));
	assert_false(dash_equal_ct("", ""));
	assert_false(dash_equal_ct("x", ""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sessions_are_random_and_checked),
		cmocka_unit_test(a_full_table_drops_the_least_recently_used),
		cmocka_unit_test(tickets_work_once),
		cmocka_unit_test(equal_ct),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
