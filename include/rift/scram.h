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
	char nonce[256];        /* client nonce followed by ours */
	uint8_t client_key[32]; /* recovered from a valid proof by rift_scram_final */
};

/*
 * The client side, for logging in to a server with the ClientKey recovered from a client's
 * proof (as PgBouncer's SCRAM pass-through does): no password is needed, only ClientKey, and
 * the verifier it was checked against, whose salt and iteration count the server must offer.
 */
struct rift_scram_client {
	uint8_t client_key[32];
	const struct rift_scram_secret *secret;
	char first_bare[128];
	char auth[3 * RIFT_SCRAM_MSG_MAX + 8]; /* AuthMessage, once the server's first is in */
	size_t auth_len;
};

/* Writes the client-first-message (gs2 header "n,,", a fresh nonce) to out. 0 or -errno. */
int rift_scram_client_first(struct rift_scram_client *c, const uint8_t client_key[32],
			    const struct rift_scram_secret *secret, char *out, size_t outlen);

/*
 * Reads the server-first-message and writes the client-final-message. -EINVAL when it is
 * malformed or does not extend our nonce, -ESTALE when its salt or iteration count is not the
 * verifier's (the password changed since that verifier was seen).
 */
int rift_scram_client_final(struct rift_scram_client *c, const char *server_first, size_t len,
			    char *out, size_t outlen);

/* Checks the server-final-message's signature against the verifier: 0 or -EACCES. */
int rift_scram_client_verify(struct rift_scram_client *c, const char *server_final, size_t len);

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
