/* scram.h — the server side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as Postgres speaks it, so the
 * router can authenticate a client itself before handing it a pooled server session. */
#ifndef RIFT_SCRAM_H
#define RIFT_SCRAM_H

#include <stddef.h>
#include <stdint.h>

#define RIFT_SCRAM_MSG_MAX 1024 /* longest SCRAM message accepted or produced */

/* A role's verifier, as pg_authid.rolpassword stores it. */
struct rift_scram_secret {
	int iterations;
	uint8_t salt[64];
	size_t salt_len;
	uint8_t stored_key[32], server_key[32];
};

/* One exchange in progress. */
struct rift_scram {
	const struct rift_scram_secret *secret;
	char gs2_header[64];
	char client_first_bare[RIFT_SCRAM_MSG_MAX];
	char server_first[RIFT_SCRAM_MSG_MAX];
	char nonce[256]; /* client nonce followed by ours */
};

/* Parses "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>"; 0 or -EINVAL. */
int rift_scram_parse_secret(const char *text, struct rift_scram_secret *out);

/* Derives the verifier of a password (what Postgres stores); for tests and tools. */
int rift_scram_make_secret(const char *password, const uint8_t *salt, size_t salt_len,
			   int iterations, struct rift_scram_secret *out);

/*
 * Reads the client-first-message and writes the server-first-message (NUL-terminated) to out.
 * server_nonce NULL draws 18 random bytes. -EINVAL for a malformed message or one asking for
 * channel binding (only SCRAM-SHA-256 is offered), -ENOSPC when out is too small.
 */
int rift_scram_first(struct rift_scram *st, const struct rift_scram_secret *secret,
		     const char *client_first, size_t len, const char *server_nonce, char *out,
		     size_t outlen);

/*
 * Checks the client-final-message's proof and writes the server-final-message to out.
 * -EACCES for a wrong password, -EINVAL for a malformed message or a changed nonce.
 */
int rift_scram_final(struct rift_scram *st, const char *client_final, size_t len, char *out,
		     size_t outlen);

#endif
