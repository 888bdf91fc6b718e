/* test_pgwire.c — the wire-protocol framing: header, read, write, ErrorResponse, and the relay
 * scanner fed the same stream in every split (it must see the same messages either way). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "rift/pgwire.h"

static void test_write_read(void **state)
{
	uint8_t buf[64];
	struct rift_pgw_msg m;
	size_t n, i;

	(void)state;
	n = rift_pgw_write(buf, sizeof(buf), 'Q', "select 1", 9);
	assert_int_equal(n, 14);
	assert_int_equal(rift_pgw_read(buf, n, 100, &m), 1);
	assert_int_equal(m.type, 'Q');
	assert_int_equal(m.len, 9);
	assert_int_equal(m.size, 14);
	assert_string_equal((const char *)m.body, "select 1");
	for (i = 0; i < n; i++) /* every truncated prefix: not there yet, nothing read */
		assert_int_equal(rift_pgw_read(buf, i, 100, &m), 0);
	assert_int_equal(rift_pgw_read(buf, n, 8, &m), -1); /* body over the cap */
	assert_int_equal(rift_pgw_write(buf, 13, 'Q', "select 1", 9), 0);
	assert_int_equal(rift_pgw_write(buf, 5, 'X', NULL, 0), 5);
	assert_memory_equal(buf, "X\0\0\0\4", 5);
	memcpy(buf, "Z\0\0\0\3", 5); /* a length below 4 is not the protocol */
	assert_int_equal(rift_pgw_read(buf, 5, 100, &m), -1);
	memcpy(buf, "D\xff\xff\xff\xff", 5);
	assert_int_equal(rift_pgw_read(buf, 5, 100, &m), -1);
}

static void test_fatal(void **state)
{
	uint8_t buf[256], big[4096];
	static const char want[] = "E\0\0\0\x30SFATAL\0VFATAL\0C3D000\0Mno such db\0Htry this\0";
	char longmsg[3000];
	struct rift_pgw_msg m;
	size_t n, i;

	(void)state;
	n = rift_pgw_fatal(buf, sizeof(buf), "3D000", "no such db", "try this");
	assert_int_equal(n, sizeof(want)); /* sizeof counts the final NUL, which is the message's */
	assert_memory_equal(buf, want, n);
	assert_int_equal(rift_pgw_read(buf, n, sizeof(buf), &m), 1);
	assert_int_equal(m.size, n);
	for (i = 0; i < n; i++) /* too small a buffer: 0, never a cut message */
		assert_int_equal(rift_pgw_fatal(buf, i, "3D000", "no such db", "try this"), 0);
	n = rift_pgw_fatal(buf, sizeof(buf), "08P01", "x", NULL);
	assert_int_equal(buf[n - 1], 0);
	assert_null(memchr(buf + 5, 'H', n - 5));
	memset(longmsg, 'a', sizeof(longmsg) - 1);
	longmsg[sizeof(longmsg) - 1] = '\0';
	n = rift_pgw_fatal(big, sizeof(big), "08P01", longmsg, longmsg);
	assert_true(n > 2000 && n < 2100); /* each string cut at 1000 bytes */
}

/* ---- scanner ---- */

struct seen {
	char types[256];
	size_t n;
	char stop_at; /* look returns false at this type */
	char want;    /* header asks to look at this type (and 'Z') */
};

static bool hdr_cb(void *arg, uint8_t type)
{
	struct seen *s = arg;
	return type == (uint8_t)s->want || type == 'Z';
}

static bool look_cb(void *arg, uint8_t type, const uint8_t *body, uint32_t len)
{
	struct seen *s = arg;

	if (type == 'Z')
		assert_int_equal(len, 1);
	(void)body;
	if (s->n + 1 < sizeof(s->types))
		s->types[s->n++] = (char)type;
	return type != (uint8_t)s->stop_at;
}

static size_t stream(uint8_t *buf, size_t cap)
{
	size_t at = 0;
	uint8_t big[20000];

	memset(big, 'x', sizeof(big));
	at += rift_pgw_write(buf + at, cap - at, 'T', "rowdesc", 7);
	at += rift_pgw_write(buf + at, cap - at, 'D', big, sizeof(big)); /* walked past */
	at += rift_pgw_write(buf + at, cap - at, 'S', "a\0b", 4);
	at += rift_pgw_write(buf + at, cap - at, 'D', big, 100);
	at += rift_pgw_write(buf + at, cap - at, 'Z', "I", 1);
	at += rift_pgw_write(buf + at, cap - at, 'X', NULL, 0);
	at += rift_pgw_write(buf + at, cap - at, 'Z', "T", 1);
	return at;
}

/* Feeds buf as a stream in pieces of size step, split over two iovecs each time, relaying
 * what the scanner allows; returns the bytes relayed. */
static size_t feed(const uint8_t *buf, size_t n, size_t step, struct seen *s)
{
	const struct rift_pgw_scan_ops ops = { hdr_cb, look_cb, RIFT_PGW_LOOK_MAX };
	struct rift_pgw_scanner sc = { 0 };
	size_t relayed = 0, have = 0;

	while (relayed < n) {
		size_t got, half;
		struct iovec iov[2];
		if (have < n)
			have = have + step < n ? have + step : n;
		half = (have - relayed) / 2;
		iov[0].iov_base = (void *)(buf + relayed);
		iov[0].iov_len = half;
		iov[1].iov_base = (void *)(buf + relayed + half);
		iov[1].iov_len = have - relayed - half;
		got = rift_pgw_scan(&sc, iov, 2, &ops, s);
		assert_true(got <= have - relayed);
		relayed += got;
		if (sc.stopped) {
			s->types[s->n++] = '|';
			continue;
		}
		if (got == 0 && have == n)
			break;
	}
	return relayed;
}

static void test_scan_any_split(void **state)
{
	static uint8_t buf[30000];
	size_t n = stream(buf, sizeof(buf)), step;

	(void)state;
	for (step = 1; step < n; step += step < 64 ? 1 : 997) {
		struct seen s = { .want = 'S', .stop_at = 'X' };
		assert_int_equal(feed(buf, n, step, &s), n);
		s.types[s.n] = '\0';
		/* S and both Z looked at; D with 20000 bytes walked past; stopped after nothing */
		if (strcmp(s.types, "SZZ") != 0)
			fail_msg("step %zu: saw \"%s\"", step, s.types);
	}
	for (step = 1; step < n; step += step < 64 ? 1 : 997) {
		struct seen s = { .want = 'X', .stop_at = 'X' };
		assert_int_equal(feed(buf, n, step, &s), n);
		s.types[s.n] = '\0';
		if (strcmp(s.types, "ZX|Z") != 0)
			fail_msg("step %zu: saw \"%s\"", step, s.types);
	}
}

static void test_scan_lost(void **state)
{
	const struct rift_pgw_scan_ops ops = { hdr_cb, look_cb, RIFT_PGW_LOOK_MAX };
	struct rift_pgw_scanner sc = { 0 };
	uint8_t bad[] = { 'Z', 0, 0, 0, 1, 'Z', 0, 0, 0, 5, 'I' };
	struct iovec iov = { bad, sizeof(bad) };
	struct seen s = { .want = 'Z' };

	(void)state;
	assert_int_equal(rift_pgw_scan(&sc, &iov, 1, &ops, &s), sizeof(bad));
	assert_true(sc.lost);
	assert_int_equal(s.n, 0);
	/* once lost, everything is relayed unread */
	assert_int_equal(rift_pgw_scan(&sc, &iov, 1, &ops, &s), sizeof(bad));
	assert_int_equal(s.n, 0);
}

static void test_scan_partial_header_waits(void **state)
{
	const struct rift_pgw_scan_ops ops = { hdr_cb, look_cb, RIFT_PGW_LOOK_MAX };
	struct rift_pgw_scanner sc = { 0 };
	uint8_t b[] = { 'C', 0, 0, 0, 5, 'x', 'Z', 0, 0 };
	struct iovec iov = { b, sizeof(b) };
	struct seen s = { .want = 'Z' };

	(void)state;
	assert_int_equal(rift_pgw_scan(&sc, &iov, 1, &ops, &s), 6);
	assert_int_equal(sc.skip, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_read),
		cmocka_unit_test(test_fatal),
		cmocka_unit_test(test_scan_any_split),
		cmocka_unit_test(test_scan_lost),
		cmocka_unit_test(test_scan_partial_header_waits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
