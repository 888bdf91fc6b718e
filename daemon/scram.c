/* scram.c — server side of SCRAM-SHA-256 for the router's pooled logins (OpenSSL primitives). */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rift/scram.h"

/* Decodes standard base64 of exactly inlen characters; -1 when invalid or too long for out. */
static int b64_decode(const char *in, size_t inlen, uint8_t *out, size_t outmax)
{
	uint8_t buf[RIFT_SCRAM_MSG_MAX];
	int n, pad = 0;

	if (inlen == 0 || inlen % 4 != 0 || inlen / 4 * 3 > sizeof(buf))
		return -1;
	n = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)inlen);
	if (n < 0)
		return -1;
	if (in[inlen - 1] == '=')
		pad++;
	if (in[inlen - 2] == '=')
		pad++;
	n -= pad;
	if ((size_t)n > outmax)
		return -1;
	memcpy(out, buf, (size_t)n);
	return n;
}

static void b64_encode(const uint8_t *in, size_t len, char *out) /* out: 4*ceil(len/3)+1 */
{
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

static int hmac256(const uint8_t *key, size_t keylen, const void *msg, size_t len, uint8_t out[32])
{
	unsigned int outlen = 32;

	return HMAC(EVP_sha256(), key, (int)keylen, msg, len, out, &outlen) != NULL ? 0 : -EIO;
}

int rift_scram_parse_secret(const char *text, struct rift_scram_secret *out)
{
	const char *p = text, *colon, *dollar;
	char *end;
	long it;

	memset(out, 0, sizeof(*out));
	if (strncmp(p, "SCRAM-SHA-256$", 14) != 0)
		return -EINVAL;
	p += 14;
	it = strtol(p, &end, 10);
	if (end == p || *end != ':' || it < 1 || it > 100000000)
		return -EINVAL;
	out->iterations = (int)it;
	p = end + 1;
	dollar = strchr(p, '$');
	if (dollar == NULL)
		return -EINVAL;
	int n = b64_decode(p, (size_t)(dollar - p), out->salt, sizeof(out->salt));
	if (n <= 0)
		return -EINVAL;
	out->salt_len = (size_t)n;
	p = dollar + 1;
	colon = strchr(p, ':');
	if (colon == NULL ||
	    b64_decode(p, (size_t)(colon - p), out->stored_key, sizeof(out->stored_key)) != 32 ||
	    b64_decode(colon + 1, strlen(colon + 1), out->server_key, sizeof(out->server_key)) !=
		32)
		return -EINVAL;
	return 0;
}

int rift_scram_make_secret(const char *password, const uint8_t *salt, size_t salt_len,
			   int iterations, struct rift_scram_secret *out)
{
	uint8_t salted[32], client_key[32];

	memset(out, 0, sizeof(*out));
	if (salt_len > sizeof(out->salt) ||
	    PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len, iterations,
			      EVP_sha256(), 32, salted) != 1 ||
	    hmac256(salted, 32, "Client Key", 10, client_key) != 0 ||
	    hmac256(salted, 32, "Server Key", 10, out->server_key) != 0)
		return -EIO;
	SHA256(client_key, 32, out->stored_key);
	memcpy(out->salt, salt, salt_len);
	out->salt_len = salt_len;
	out->iterations = iterations;
	return 0;
}

/* Copies a bounded, NUL-free message into a C string. */
static int take_message(const char *msg, size_t len, char *out, size_t outlen)
{
	if (len == 0 || len >= outlen || memchr(msg, '\0', len) != NULL)
		return -EINVAL;
	memcpy(out, msg, len);
	out[len] = '\0';
	return 0;
}

int rift_scram_first(struct rift_scram *st, const struct rift_scram_secret *secret,
		     const char *client_first, size_t len, const char *server_nonce, char *out,
		     size_t outlen)
{
	char msg[RIFT_SCRAM_MSG_MAX], salt64[100], ours[32];
	const char *bare, *r;
	uint8_t rnd[18];
	size_t gs2len, nlen;
	int n;

	memset(st, 0, sizeof(*st));
	st->secret = secret;
	if (take_message(client_first, len, msg, sizeof(msg)) != 0)
		return -EINVAL;
	/* gs2-header: "n," or "y," (no channel binding), an optional authzid, then "," */
	if ((msg[0] != 'n' && msg[0] != 'y') || msg[1] != ',')
		return -EINVAL;
	bare = strchr(msg + 2, ',');
	if (bare == NULL)
		return -EINVAL;
	bare++;
	gs2len = (size_t)(bare - msg);
	if (gs2len >= sizeof(st->gs2_header))
		return -EINVAL;
	memcpy(st->gs2_header, msg, gs2len);
	st->gs2_header[gs2len] = '\0';
	/* client-first-message-bare: "n=<user>,r=<nonce>[,...]"; Postgres ignores the user */
	if (strncmp(bare, "n=", 2) != 0)
		return -EINVAL;
	r = strstr(bare, ",r=");
	if (r == NULL)
		return -EINVAL;
	r += 3;
	nlen = strcspn(r, ",");
	if (nlen == 0 || nlen + 32 >= sizeof(st->nonce))
		return -EINVAL;
	snprintf(st->client_first_bare, sizeof(st->client_first_bare), "%s", bare);
	if (server_nonce == NULL) {
		if (RAND_bytes(rnd, sizeof(rnd)) != 1)
			return -EIO;
		b64_encode(rnd, sizeof(rnd), ours);
		server_nonce = ours;
	}
	n = snprintf(st->nonce, sizeof(st->nonce), "%.*s%s", (int)nlen, r, server_nonce);
	if (n < 0 || (size_t)n >= sizeof(st->nonce))
		return -EINVAL;
	b64_encode(secret->salt, secret->salt_len, salt64);
	n = snprintf(st->server_first, sizeof(st->server_first), "r=%s,s=%s,i=%d", st->nonce,
		     salt64, secret->iterations);
	if (n < 0 || (size_t)n >= sizeof(st->server_first) || (size_t)n >= outlen)
		return -ENOSPC;
	memcpy(out, st->server_first, (size_t)n + 1);
	return 0;
}

int rift_scram_final(struct rift_scram *st, const char *client_final, size_t len, char *out,
		     size_t outlen)
{
	char msg[RIFT_SCRAM_MSG_MAX], auth[3 * RIFT_SCRAM_MSG_MAX + 8], cb[100], sig64[48];
	uint8_t proof[32], client_sig[32], client_key[32], stored[32], server_sig[32];
	const char *p;
	size_t without_proof;
	int i, n;

	if (take_message(client_final, len, msg, sizeof(msg)) != 0)
		return -EINVAL;
	/* c=<base64 of the gs2 header>,r=<the whole nonce>[,...],p=<proof> */
	b64_encode((const uint8_t *)st->gs2_header, strlen(st->gs2_header), cb);
	if (strncmp(msg, "c=", 2) != 0 || strncmp(msg + 2, cb, strlen(cb)) != 0 ||
	    strncmp(msg + 2 + strlen(cb), ",r=", 3) != 0)
		return -EINVAL;
	p = msg + 2 + strlen(cb) + 3;
	if (strncmp(p, st->nonce, strlen(st->nonce)) != 0 || p[strlen(st->nonce)] != ',')
		return -EINVAL;
	p = strstr(msg, ",p=");
	if (p == NULL || b64_decode(p + 3, strlen(p + 3), proof, sizeof(proof)) != 32)
		return -EINVAL;
	without_proof = (size_t)(p - msg);
	n = snprintf(auth, sizeof(auth), "%s,%s,%.*s", st->client_first_bare, st->server_first,
		     (int)without_proof, msg);
	if (n < 0 || (size_t)n >= sizeof(auth))
		return -EINVAL;
	if (hmac256(st->secret->stored_key, 32, auth, (size_t)n, client_sig) != 0)
		return -EIO;
	for (i = 0; i < 32; i++)
		client_key[i] = proof[i] ^ client_sig[i];
	SHA256(client_key, 32, stored);
	if (CRYPTO_memcmp(stored, st->secret->stored_key, 32) != 0)
		return -EACCES;
	memcpy(st->client_key, client_key, 32);
	if (hmac256(st->secret->server_key, 32, auth, (size_t)n, server_sig) != 0)
		return -EIO;
	b64_encode(server_sig, 32, sig64);
	n = snprintf(out, outlen, "v=%s", sig64);
	return n < 0 || (size_t)n >= outlen ? -ENOSPC : 0;
}

int rift_scram_client_first(struct rift_scram_client *c, const uint8_t client_key[32],
			    const struct rift_scram_secret *secret, char *out, size_t outlen)
{
	uint8_t rnd[18];
	char nonce[32];
	int n;

	memset(c, 0, sizeof(*c));
	memcpy(c->client_key, client_key, 32);
	c->secret = secret;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -EIO;
	b64_encode(rnd, sizeof(rnd), nonce);
	snprintf(c->first_bare, sizeof(c->first_bare), "n=,r=%s", nonce);
	n = snprintf(out, outlen, "n,,%s", c->first_bare);
	return n < 0 || (size_t)n >= outlen ? -ENOSPC : 0;
}

int rift_scram_client_final(struct rift_scram_client *c, const char *server_first, size_t len,
			    char *out, size_t outlen)
{
	char msg[RIFT_SCRAM_MSG_MAX], salt64[100], proof64[48];
	const char *r, *sp, *ip, *our = c->first_bare + 5;
	uint8_t sig[32], proof[32];
	size_t rlen;
	char *end;
	long it;
	int i, n;

	if (take_message(server_first, len, msg, sizeof(msg)) != 0)
		return -EINVAL;
	/* r=<our nonce><theirs>,s=<salt>,i=<iterations> */
	if (strncmp(msg, "r=", 2) != 0 || strncmp(msg + 2, our, strlen(our)) != 0)
		return -EINVAL;
	r = msg + 2;
	rlen = strcspn(r, ",");
	sp = strstr(msg, ",s=");
	ip = strstr(msg, ",i=");
	if (rlen <= strlen(our) || sp == NULL || ip == NULL || ip < sp)
		return -EINVAL;
	it = strtol(ip + 3, &end, 10);
	if (end == ip + 3 || (*end != '\0' && *end != ','))
		return -EINVAL;
	b64_encode(c->secret->salt, c->secret->salt_len, salt64);
	if (it != c->secret->iterations || (size_t)(ip - (sp + 3)) != strlen(salt64) ||
	    strncmp(sp + 3, salt64, strlen(salt64)) != 0)
		return -ESTALE;
	n = snprintf(c->auth, sizeof(c->auth), "%s,%s,c=biws,r=%.*s", c->first_bare, msg, (int)rlen,
		     r);
	if (n < 0 || (size_t)n >= sizeof(c->auth))
		return -EINVAL;
	c->auth_len = (size_t)n;
	if (hmac256(c->secret->stored_key, 32, c->auth, c->auth_len, sig) != 0)
		return -EIO;
	for (i = 0; i < 32; i++)
		proof[i] = c->client_key[i] ^ sig[i];
	b64_encode(proof, 32, proof64);
	n = snprintf(out, outlen, "c=biws,r=%.*s,p=%s", (int)rlen, r, proof64);
	return n < 0 || (size_t)n >= outlen ? -ENOSPC : 0;
}

int rift_scram_client_verify(struct rift_scram_client *c, const char *server_final, size_t len)
{
	char msg[RIFT_SCRAM_MSG_MAX], sig64[48];
	uint8_t sig[32];

	if (take_message(server_final, len, msg, sizeof(msg)) != 0 || c->auth_len == 0 ||
	    hmac256(c->secret->server_key, 32, c->auth, c->auth_len, sig) != 0)
		return -EACCES;
	b64_encode(sig, 32, sig64);
	if (strncmp(msg, "v=", 2) != 0 || strlen(msg + 2) != strlen(sig64) ||
	    CRYPTO_memcmp(msg + 2, sig64, strlen(sig64)) != 0)
		return -EACCES;
	return 0;
}
