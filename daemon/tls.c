/* tls.c — makes the router's self-signed certificate and its OpenSSL server context. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "rift/tls.h"

static void ssl_reason(char *out, size_t len)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		snprintf(out, len, "unknown OpenSSL error");
	else
		ERR_error_string_n(e, out, len);
	ERR_clear_error();
}

static int write_pem(const char *path, int (*fn)(FILE *, void *), void *obj)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	int ok;

	if (f == NULL) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	ok = fn(f, obj);
	return fclose(f) == 0 && ok ? 0 : -1;
}

static int write_cert(FILE *f, void *x)
{
	return PEM_write_X509(f, x);
}

static int write_key(FILE *f, void *k)
{
	return PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
}

int rift_tls_make_self_signed(const char *cert_path, const char *key_path, char *err, size_t errlen)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	X509_EXTENSION *san = NULL;
	X509V3_CTX ctx;
	int rc = -1;

	if (key == NULL || x == NULL)
		goto fail;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(NULL));
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 24 * 3600);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
				   -1, 0);
	X509_set_issuer_name(x, name);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	san = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name,
				  "DNS:localhost,IP:127.0.0.1,IP:::1");
	if (san == NULL || !X509_add_ext(x, san, -1) || !X509_sign(x, key, EVP_sha256()))
		goto fail;
	if (write_pem(key_path, write_key, key) != 0 || write_pem(cert_path, write_cert, x) != 0) {
		snprintf(err, errlen, "cannot write %s or %s: %s", cert_path, key_path,
			 strerror(errno));
		goto out;
	}
	rc = 0;
	goto out;
fail:
	ssl_reason(err, errlen);
out:
	X509_EXTENSION_free(san);
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

/* ALPN: pick "postgresql" when the client offers it (direct TLS requires it, see router.c). */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char ours[] = "\012postgresql";
	unsigned char *sel;

	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto(&sel, outlen, ours, sizeof(ours) - 1, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

SSL_CTX *rift_tls_server_ctx(const char *cert_path, const char *key_path, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char why[256];

	if (ctx == NULL)
		goto fail;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1)
		goto fail;
	SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
	return ctx;
fail:
	ssl_reason(why, sizeof(why));
	snprintf(err, errlen,
		 "cannot use the TLS certificate %s with key %s: %s (set [router] tls_cert and "
		 "tls_key in rift.conf)",
		 cert_path, key_path, why);
	SSL_CTX_free(ctx);
	return NULL;
}
