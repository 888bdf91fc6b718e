/* test_scram.c — the router's SCRAM-SHA-256 server against RFC 7677's exchange and bad input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "rift/scram.h"

/* RFC 7677, section 3: user "user", password "pencil" */
#define SALT64       "W22ZaJ0SNY7soEsUEjb6gQ=="
#define CLIENT_FIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define SERVER_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define SERVER_FIRST                                                                               \
	"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define CLIENT_FINAL_NOPROOF "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define CLIENT_FINAL         CLIENT_FINAL_NOPROOF ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define SERVER_FINAL         "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static const unsigned char salt[] = { 0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e,
				      0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81 };

static void make_rfc_secret(struct rift_scram_secret *sec)
{
	assert_int_equal(rift_scram_make_secret("pencil", salt, sizeof(salt), 4096, sec), 0);
}

static void rfc7677_exchange(void **state)
{
	struct rift_scram_secret sec;
	struct rift_scram st;
	char out[RIFT_SCRAM_MSG_MAX];

	(void)state;
	make_rfc_secret(&sec);
	assert_int_equal(rift_scram_first(&st, &sec, CLIENT_FIRST, strlen(CLIENT_FIRST),
					  SERVER_NONCE, out, sizeof(out)),
			 0);
	assert_string_equal(out, SERVER_FIRST);
	assert_int_equal(
	    rift_scram_final(&st, CLIENT_FINAL, strlen(CLIENT_FINAL), out, sizeof(out)), 0);
	assert_string_equal(out, SERVER_FINAL);
}

static void secret_text_round_trip(void **state)
{
	struct rift_scram_secret made, parsed;
	char text[300];

	(void)state;
	make_rfc_secret(&made);
	/* printed the way Postgres prints it: base64 salt, StoredKey and ServerKey */
	char stored64[48], server64[48];
	EVP_EncodeBlock((unsigned char *)stored64, made.stored_key, 32);
	EVP_EncodeBlock((unsigned char *)server64, made.server_key, 32);
	snprintf(text, sizeof(text), "SCRAM-SHA-256$4096:%s$%s:%s", SALT64, stored64, server64);
	assert_int_equal(rift_scram_parse_secret(text, &parsed), 0);
	assert_int_equal(parsed.iterations, 4096);
	assert_int_equal(parsed.salt_len, sizeof(salt));
	assert_memory_equal(parsed.salt, salt, sizeof(salt));
	assert_memory_equal(parsed.stored_key, made.stored_key, 32);
	assert_memory_equal(parsed.server_key, made.server_key, 32);
	assert_int_equal(rift_scram_parse_secret("md5abcdef", &parsed), -EINVAL);
	assert_int_equal(rift_scram_parse_secret("SCRAM-SHA-256$x:AAAA$AAAA:AAAA", &parsed),
			 -EINVAL);
	assert_int_equal(
	    rift_scram_parse_secret("SCRAM-SHA-256$4096:" SALT64 "$short:short", &parsed), -EINVAL);
}

static void wrong_password_refused(void **state)
{
	struct rift_scram_secret sec;
	struct rift_scram st;
	char out[RIFT_SCRAM_MSG_MAX];

	(void)state;
	assert_int_equal(rift_scram_make_secret("not pencil", salt, sizeof(salt), 4096, &sec), 0);
	assert_int_equal(rift_scram_first(&st, &sec, CLIENT_FIRST, strlen(CLIENT_FIRST),
					  SERVER_NONCE, out, sizeof(out)),
			 0);
	assert_int_equal(
	    rift_scram_final(&st, CLIENT_FINAL, strlen(CLIENT_FINAL), out, sizeof(out)), -EACCES);
}

static void malformed_messages_refused(void **state)
{
	static const char *firsts[] = { "",         "n",         "p=tls-server-end-point,,n=,r=abc",
					"n,,r=abc", "n,,n=user", "x,,n=,r=abc",
					"n,,n=,r=" };
	struct rift_scram_secret sec;
	struct rift_scram st;
	char out[RIFT_SCRAM_MSG_MAX];
	size_t i;

	(void)state;
	make_rfc_secret(&sec);
	for (i = 0; i < sizeof(firsts) / sizeof(firsts[0]); i++)
		assert_int_equal(rift_scram_first(&st, &sec, firsts[i], strlen(firsts[i]), NULL,
						  out, sizeof(out)),
				 -EINVAL);
	/* a random server nonce, then finals that change the nonce or the binding, or lack a proof
	 */
	assert_int_equal(
	    rift_scram_first(&st, &sec, CLIENT_FIRST, strlen(CLIENT_FIRST), NULL, out, sizeof(out)),
	    0);
	assert_int_equal(
	    rift_scram_final(&st, CLIENT_FINAL, strlen(CLIENT_FINAL), out, sizeof(out)), -EINVAL);
	assert_int_equal(rift_scram_first(&st, &sec, CLIENT_FIRST, strlen(CLIENT_FIRST),
					  SERVER_NONCE, out, sizeof(out)),
			 0);
	assert_int_equal(rift_scram_final(&st, CLIENT_FINAL_NOPROOF, strlen(CLIENT_FINAL_NOPROOF),
					  out, sizeof(out)),
			 -EINVAL);
	/* the client claims it wanted channel binding ("y,,") though it sent "n,," first */
	char bad[RIFT_SCRAM_MSG_MAX];
	snprintf(bad, sizeof(bad), "c=eSws%s", CLIENT_FINAL + 6);
	assert_int_equal(rift_scram_final(&st, bad, strlen(bad), out, sizeof(out)), -EINVAL);
}

/* The router checks a client's proof, then logs in to the server with the ClientKey the proof
 * gave up; the server (here another exchange on the same verifier) must accept it. */
static void pass_through_login(void **state)
{
	struct rift_scram_secret sec, other;
	struct rift_scram front, server;
	struct rift_scram_client c;
	char out[RIFT_SCRAM_MSG_MAX], sfirst[RIFT_SCRAM_MSG_MAX], cfinal[RIFT_SCRAM_MSG_MAX];
	char sfinal[RIFT_SCRAM_MSG_MAX];
	static const unsigned char salt2[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };

	(void)state;
	make_rfc_secret(&sec);
	assert_int_equal(rift_scram_first(&front, &sec, CLIENT_FIRST, strlen(CLIENT_FIRST),
					  SERVER_NONCE, out, sizeof(out)),
			 0);
	assert_int_equal(
	    rift_scram_final(&front, CLIENT_FINAL, strlen(CLIENT_FINAL), out, sizeof(out)), 0);
	/* now to the server, with the key only */
	assert_int_equal(rift_scram_client_first(&c, front.client_key, &sec, out, sizeof(out)), 0);
	assert_int_equal(
	    rift_scram_first(&server, &sec, out, strlen(out), NULL, sfirst, sizeof(sfirst)), 0);
	assert_int_equal(
	    rift_scram_client_final(&c, sfirst, strlen(sfirst), cfinal, sizeof(cfinal)), 0);
	assert_int_equal(rift_scram_final(&server, cfinal, strlen(cfinal), sfinal, sizeof(sfinal)),
			 0);
	assert_int_equal(rift_scram_client_verify(&c, sfinal, strlen(sfinal)), 0);
	assert_int_equal(rift_scram_client_verify(&c, "v=AAAA", 6), -EACCES);
	/* a server whose verifier changed (another salt): the router notices, sends nothing */
	assert_int_equal(rift_scram_make_secret("pencil", salt2, sizeof(salt2), 4096, &other), 0);
	assert_int_equal(rift_scram_client_first(&c, front.client_key, &sec, out, sizeof(out)), 0);
	assert_int_equal(
	    rift_scram_first(&server, &other, out, strlen(out), NULL, sfirst, sizeof(sfirst)), 0);
	assert_int_equal(
	    rift_scram_client_final(&c, sfirst, strlen(sfirst), cfinal, sizeof(cfinal)), -ESTALE);
	/* a server nonce that does not extend ours */
	assert_int_equal(
	    rift_scram_client_final(&c, SERVER_FIRST, strlen(SERVER_FIRST), cfinal, sizeof(cfinal)),
	    -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rfc7677_exchange),
		cmocka_unit_test(pass_through_login),
		cmocka_unit_test(secret_text_round_trip),
		cmocka_unit_test(wrong_password_refused),
		cmocka_unit_test(malformed_messages_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
