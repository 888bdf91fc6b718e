/* test_branch_codec.c — the branch record's encoding: labels round-trip, records written before
 * labels (and before size limits) still read, a damaged labels field is refused. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "store_internal.h"

static void test_round_trip_and_old_records(void **state)
{
	struct branch_rec in, out;
	uint8_t buf[BRANCH_BUF];
	size_t n, full, i;

	(void)state;
	memset(&in, 0, sizeof(in));
	snprintf(in.parent, sizeof(in.parent), "main");
	in.gen = 3;
	in.head = 77;
	in.max_size = 1 << 20;
	snprintf(in.labels, sizeof(in.labels), "pr=12,job=lint");
	n = branch_encode(&in, buf);
	assert_true(n > 0);
	assert_int_equal(branch_decode(buf, n, &out), 0);
	assert_string_equal(out.labels, "pr=12,job=lint");
	assert_int_equal(out.max_size, 1 << 20);
	assert_int_equal(out.head, 77);
	/* a record of a rift before labels ends after max_size; one before limits, before it */
	full = n - 4 - strlen(in.labels);
	memset(&out, 0x55, sizeof(out));
	assert_int_equal(branch_decode(buf, full, &out), 0);
	assert_string_equal(out.labels, "");
	assert_int_equal(out.max_size, 1 << 20);
	assert_int_equal(branch_decode(buf, full - 8, &out), 0);
	assert_int_equal(out.max_size, 0);
	assert_string_equal(out.labels, "");
	/* a cut inside the labels field fails cleanly */
	for (i = full + 1; i < n; i++)
		assert_int_equal(branch_decode(buf, i, &out), -EIO);
	/* a length past RIFT_LABELS_MAX is refused, not read */
	buf[full] = 0xff;
	assert_int_equal(branch_decode(buf, n, &out), -EIO);
	/* the longest label set fits BRANCH_BUF */
	memset(in.labels, 'x', sizeof(in.labels) - 1);
	in.labels[sizeof(in.labels) - 1] = '\0';
	n = branch_encode(&in, buf);
	assert_true(n > 0);
	assert_int_equal(branch_decode(buf, n, &out), 0);
	assert_int_equal(strlen(out.labels), RIFT_LABELS_MAX - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_and_old_records),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
