/* tls_pin.c — a certificate's public-key pin (sha256//base64), for clients that pin riftd's API
 * certificate instead of trusting a CA (a self-signed one made by rift init). */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "rift/tls_pin.h"

int rift_tls_pin(const char *cert_path, char *out, size_t len)
{
	unsigned char *der = NULL, digest[EVP_MAX_MD_SIZE],
		      b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
	unsigned int dlen = 0;
	X509 *cert = NULL;
	FILE *f;
	int n, rc = -EINVAL;

	f = fopen(cert_path, "re");
	if (f == NULL)
		return -errno;
	cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (cert == NULL)
		goto out;
	n = i2d_PUBKEY(X509_get0_pubkey(cert), &der);
	if (n <= 0 || EVP_Digest(der, (size_t)n, digest, &dlen, EVP_sha256(), NULL) != 1)
		goto out;
	EVP_EncodeBlock(b64, digest, (int)dlen);
	if ((size_t)snprintf(out, len, "sha256//%s", (const char *)b64) >= len) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	rc = 0;
out:
	OPENSSL_free(der);
	X509_free(cert);
	return rc;
}
