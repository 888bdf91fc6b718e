/* test_startup.c — the startup-packet parser: valid packets, every truncated prefix, bad input,
 * repeated names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "rift/startup.h"

static size_t make_packet(uint8_t *out, uint32_t code, const char *const *kv, size_t n)
{
	size_t at = 8, i;

	for (i = 0; i < n; i++) {
		size_t l = strlen(kv[i]) + 1;
		memcpy(out + at, kv[i], l);
		at += l;
	}
	if (n > 0 || code >> 16 == 3)
		out[at++] = '\0';
	out[0] = (uint8_t)(at >> 24);
	out[1] = (uint8_t)(at >> 16);
	out[2] = (uint8_t)(at >> 8);
	out[3] = (uint8_t)at;
	out[4] = (uint8_t)(code >> 24);
	out[5] = (uint8_t)(code >> 16);
	out[6] = (uint8_t)(code >> 8);
	out[7] = (uint8_t)code;
	return at;
}

static void test_startup_message(void **state)
{
	static const char *const kv[] = {
		"user", "alice", "database", "db@feat", "application_name", "psql", "_pq_.x", "1"
	};
	uint8_t pkt[256];
	struct rift_startup s;
	size_t n = make_packet(pkt, 196608, kv, 8);

	(void)state;
	rift_startup_parse(pkt, n, &s);
	assert_int_equal(s.kind, RIFT_STARTUP_MESSAGE);
	assert_int_equal(s.length, n);
	assert_int_equal(s.protocol, 196608);
	assert_int_equal(s.nparams, 4);
	assert_string_equal(rift_startup_get(&s, "database"), "db@feat");
	assert_string_equal(rift_startup_get(&s, "_pq_.x"), "1");
	assert_null(rift_startup_get(&s, "options"));
}

static void test_every_truncated_prefix_needs_more(void **state)
{
	static const char *const kv[] = { "user", "bob", "database", "feat" };
	uint8_t pkt[128];
	struct rift_startup s;
	size_t n = make_packet(pkt, 196610, kv, 4), i;

	(void)state;
	for (i = 0; i < n; i++) {
		rift_startup_parse(pkt, i, &s);
		if (s.kind != RIFT_STARTUP_NEED_MORE)
			fail_msg("prefix of %zu bytes gave kind %d", i, (int)s.kind);
		assert_true(s.needed > i && s.needed <= n);
	}
	rift_startup_parse(pkt, n, &s);
	assert_int_equal(s.kind, RIFT_STARTUP_MESSAGE);
	assert_int_equal(s.protocol, 196610); /* 3.2 passes through for the server to negotiate */
}

struct bad {
	uint8_t bytes[16];
	size_t len;
	const char *why;
};

static void test_bad_framing(void **state)
{
	static const struct bad bad[] = {
		{ { 0, 0, 0, 4, 0, 3, 0, 0 }, 8, "length under 8" },
		{ { 0xff, 0xff, 0xff, 0xff, 0, 3, 0, 0 }, 8, "negative length" },
		{ { 0, 0, 0x27, 0x11, 0, 3, 0, 0 }, 8, "length 10001" },
		{ { 0, 0, 0, 9, 0x04, 0xd2, 0x16, 0x2f, 0 }, 9, "SSLRequest of 9 bytes" },
		{ { 0, 0, 0, 12, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0, 1 }, 12, "cancel without key" },
		{ { 0, 0, 0, 9, 0, 2, 0, 0, 0 }, 9, "protocol 2" },
		{ { 0, 0, 0, 12, 0, 3, 0, 0, 'u', 's', 'e', 'r' }, 12, "unterminated list" },
		{ { 0, 0, 0, 11, 0, 3, 0, 0, 'u', 0, 0 }, 11, "parameter without value" },
		{ { 0, 0, 0, 13, 0, 3, 0, 0, 'a', 0, 'b', 0, 'c' }, 13, "trailing garbage" },
	};
	struct rift_startup s;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rift_startup_parse(bad[i].bytes, bad[i].len, &s);
		if (s.kind != RIFT_STARTUP_INVALID)
			fail_msg("%s: kind %d, want INVALID", bad[i].why, (int)s.kind);
		assert_non_null(s.reason);
	}
}

/* Postgres takes the last of a repeated name, a reader stopping at the first another one: a
 * repeated name is refused, whichever it is and wherever the copies sit. */
static void test_duplicate_parameters(void **state)
{
	static const char *const names[] = {
		"user",        "database",         "options",
		"replication", "application_name", "client_encoding",
		"_pq_.x",      "search_path",      "x",
	};
	uint8_t pkt[512];
	struct rift_startup s;
	size_t i, n, k;

	(void)state;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		/* adjacent, and apart with other names between */
		const char *const adjacent[] = { "user", "alice", names[i], "a", names[i], "b" };
		const char *const apart[] = { names[i], "a",  "user", "bob",    "database",
					      "feat",   "zz", "1",    names[i], "b" };
		const char *const *kv[] = { adjacent, apart };
		size_t kn[] = { 6, 10 };
		for (k = 0; k < 2; k++) {
			n = make_packet(pkt, 196608, kv[k], kn[k]);
			rift_startup_parse(pkt, n, &s);
			if (s.kind != RIFT_STARTUP_INVALID)
				fail_msg("%s twice (%s): kind %d, want INVALID", names[i],
					 k ? "apart" : "adjacent", (int)s.kind);
			assert_non_null(s.dup_name);
			assert_string_equal(s.dup_name, names[i]);
			assert_non_null(s.reason);
		}
	}
	{ /* every prefix of a packet with a repeated name still just waits for more */
		static const char *const kv[] = { "user", "a", "user", "b" };
		n = make_packet(pkt, 196608, kv, 4);
		for (k = 0; k < n; k++) {
			rift_startup_parse(pkt, k, &s);
			assert_int_equal(s.kind, RIFT_STARTUP_NEED_MORE);
		}
		rift_startup_parse(pkt, n, &s);
		assert_int_equal(s.kind, RIFT_STARTUP_INVALID);
		assert_string_equal(s.dup_name, "user");
	}
	{ /* names compare exactly, as Postgres compares "user"; "User" is a setting to it */
		static const char *const kv[] = { "user", "a", "User", "b", "database", "d" };
		n = make_packet(pkt, 196608, kv, 6);
		rift_startup_parse(pkt, n, &s);
		assert_int_equal(s.kind, RIFT_STARTUP_MESSAGE);
		assert_null(s.dup_name);
		assert_string_equal(rift_startup_get(&s, "user"), "a");
	}
	{ /* the packet the router builds never repeats "database", given or not */
		static const char *const with[] = { "user", "a", "database", "x@feat" };
		static const char *const without[] = { "user", "a", "options", "-c x=1" };
		const char *const *kv[] = { with, without };
		uint8_t out[512];
		struct rift_startup t;
		for (k = 0; k < 2; k++) {
			size_t m;
			n = make_packet(pkt, 196608, kv[k], 4);
			rift_startup_parse(pkt, n, &s);
			assert_int_equal(s.kind, RIFT_STARTUP_MESSAGE);
			m = rift_startup_build(&s, "x", out, sizeof(out));
			assert_true(m > 0);
			rift_startup_parse(out, m, &t);
			assert_int_equal(t.kind, RIFT_STARTUP_MESSAGE);
			assert_string_equal(rift_startup_get(&t, "database"), "x");
		}
	}
}

static void test_encryption_and_cancel(void **state)
{
	uint8_t ssl[8] = { 0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f };
	uint8_t gss[8] = { 0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30 };
	uint8_t cancel[12 + 32] = { 0, 0, 0, 44, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0x30, 0x39 };
	struct rift_startup s;

	(void)state;
	rift_startup_parse(ssl, 8, &s);
	assert_int_equal(s.kind, RIFT_STARTUP_SSL);
	rift_startup_parse(gss, 8, &s);
	assert_int_equal(s.kind, RIFT_STARTUP_GSSENC);
	memset(cancel + 12, 0xab, 32);
	rift_startup_parse(cancel, sizeof(cancel), &s); /* a protocol 3.2 key of 32 bytes */
	assert_int_equal(s.kind, RIFT_STARTUP_CANCEL);
	assert_int_equal(s.cancel_pid, 12345);
	assert_int_equal(s.cancel_key_len, 32);
	cancel[3] = 16; /* a classic 4-byte key */
	rift_startup_parse(cancel, 16, &s);
	assert_int_equal(s.kind, RIFT_STARTUP_CANCEL);
	assert_int_equal(s.cancel_key_len, 4);
}

static void test_build_rewrites_database(void **state)
{
	static const char *const kv[] = { "user",     "alice",   "database",
					  "app@feat", "options", "-c x=1" };
	uint8_t pkt[256], out[256];
	struct rift_startup s, t;
	size_t n = make_packet(pkt, 196608, kv, 6), m;

	(void)state;
	rift_startup_parse(pkt, n, &s);
	m = rift_startup_build(&s, "app", out, sizeof(out));
	assert_true(m > 0);
	rift_startup_parse(out, m, &t);
	assert_int_equal(t.kind, RIFT_STARTUP_MESSAGE);
	assert_string_equal(rift_startup_get(&t, "database"), "app");
	assert_string_equal(rift_startup_get(&t, "options"), "-c x=1");
	assert_string_equal(rift_startup_get(&t, "user"), "alice");
	assert_int_equal(rift_startup_build(&s, "app", out, 20), 0);
}

static void test_route_split(void **state)
{
	char branch[64], db[64];

	(void)state;
	assert_int_equal(rift_route_split("feat", branch, sizeof(branch), db, sizeof(db)), 0);
	assert_string_equal(branch, "feat");
	assert_string_equal(db, "");
	assert_int_equal(rift_route_split("app@feat", branch, sizeof(branch), db, sizeof(db)), 0);
	assert_string_equal(branch, "feat");
	assert_string_equal(db, "app");
	assert_int_equal(rift_route_split("a@b@feat", branch, sizeof(branch), db, sizeof(db)), 0);
	assert_string_equal(db, "a@b");
	assert_int_equal(rift_route_split("@feat", branch, sizeof(branch), db, sizeof(db)), -1);
	assert_int_equal(rift_route_split("app@", branch, sizeof(branch), db, sizeof(db)), -1);
	assert_int_equal(rift_route_split("", branch, sizeof(branch), db, sizeof(db)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_startup_message),
		cmocka_unit_test(test_every_truncated_prefix_needs_more),
		cmocka_unit_test(test_bad_framing),
		cmocka_unit_test(test_duplicate_parameters),
		cmocka_unit_test(test_encryption_and_cancel),
		cmocka_unit_test(test_build_rewrites_database),
		cmocka_unit_test(test_route_split),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
