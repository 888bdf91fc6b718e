/* test_branch_secret.c — per-branch passwords: their alphabet, verifiers Postgres accepts, the
 * login role a URL names, and the root-only secrets directory. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "rift/branch_secret.h"
#include "rift/scram.h"

static void passwords_are_fresh_and_plain(void **state)
{
	char a[RIFT_SECRET_PASSWORD_LEN + 1], b[RIFT_SECRET_PASSWORD_LEN + 1], small[8];
	size_t i;

	(void)state;
	assert_int_equal(rift_secret_new_password(a, sizeof(a)), 0);
	assert_int_equal(rift_secret_new_password(b, sizeof(b)), 0);
	assert_int_equal(strlen(a), RIFT_SECRET_PASSWORD_LEN);
	assert_string_not_equal(a, b);
	for (i = 0; a[i] != '\0'; i++) /* nothing a URL or a shell would need to quote */
		assert_non_null(
		    strchr("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789", a[i]));
	assert_int_equal(rift_secret_new_password(small, sizeof(small)), -ENOSPC);
}

/* The verifier is what Postgres itself would store for the password: same keys from its salt. */
static void verifier_matches_password(void **state)
{
	struct rift_scram_secret parsed, again;
	char text[RIFT_SECRET_VERIFIER_MAX], text2[RIFT_SECRET_VERIFIER_MAX];

	(void)state;
	assert_int_equal(rift_secret_verifier("pencil", text, sizeof(text)), 0);
	assert_int_equal(strncmp(text, "SCRAM-SHA-256$4096:", 19), 0);
	assert_int_equal(rift_scram_parse_secret(text, &parsed), 0);
	assert_int_equal(parsed.salt_len, 16);
	assert_int_equal(
	    rift_scram_make_secret("pencil", parsed.salt, parsed.salt_len, 4096, &again), 0);
	assert_memory_equal(parsed.stored_key, again.stored_key, 32);
	assert_memory_equal(parsed.server_key, again.server_key, 32);
	assert_int_equal(
	    rift_scram_make_secret("pencil2", parsed.salt, parsed.salt_len, 4096, &again), 0);
	assert_memory_not_equal(parsed.stored_key, again.stored_key, 32);
	assert_int_equal(rift_secret_verifier("pencil", text2, sizeof(text2)), 0);
	assert_string_not_equal(text, text2); /* a new salt each time */
	assert_int_equal(rift_secret_verifier("pencil", text2, 40), -ENOSPC);
}

static void login_role_of_each_base(void **state)
{
	static const struct {
		const char *demo_pw, *upstream, *want; /* want NULL: -ENOENT */
	} cases[] = {
		{ "pw", "", "rift" },
		{ "pw", "postgres://app@db:5432/app", "rift" }, /* logical: init made "rift" */
		{ "", "postgres://replicator@db.internal:5432/app", "replicator" },
		{ "", "postgres://db:5432/app", NULL },
		{ "", "postgres://@db:5432/app", NULL },
		{ "", "", NULL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rift_base_meta meta;
		char role[64];
		memset(&meta, 0, sizeof(meta));
		snprintf(meta.demo_password, sizeof(meta.demo_password), "%s", cases[i].demo_pw);
		snprintf(meta.upstream, sizeof(meta.upstream), "%s", cases[i].upstream);
		if (cases[i].want == NULL) {
			assert_int_equal(rift_secret_login_role(&meta, role, sizeof(role)),
					 -ENOENT);
		} else {
			assert_int_equal(rift_secret_login_role(&meta, role, sizeof(role)), 0);
			assert_string_equal(role, cases[i].want);
		}
	}
}

static void save_load_remove(void **state)
{
	char dir[] = "/tmp/test_branch_secret.XXXXXX", out[64], path[256];
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(rift_secret_load(dir, "b", out, sizeof(out)), -ENOENT);
	assert_int_equal(rift_secret_save(dir, "b", "hunter2hunter2"), 0);
	assert_int_equal(rift_secret_load(dir, "b", out, sizeof(out)), 0);
	assert_string_equal(out, "hunter2hunter2");
	snprintf(path, sizeof(path), "%s/secrets", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	snprintf(path, sizeof(path), "%s/secrets/b", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(rift_secret_remove(dir, "b"), 0);
	assert_int_equal(rift_secret_remove(dir, "b"), 0);
	assert_int_equal(rift_secret_load(dir, "b", out, sizeof(out)), -ENOENT);
	snprintf(path, sizeof(path), "%s/secrets", dir);
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(passwords_are_fresh_and_plain),
		cmocka_unit_test(verifier_matches_password),
		cmocka_unit_test(login_role_of_each_base),
		cmocka_unit_test(save_load_remove),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
