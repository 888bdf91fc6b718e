/* tls.h — the router's TLS: a self-signed certificate for new stores, and the server context. */
#ifndef RIFT_TLS_H
#define RIFT_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

/*
 * Writes a self-signed certificate (CN=localhost, SAN localhost and 127.0.0.1, P-256, 10 years)
 * and its key to cert_path and key_path (0600), so `sslmode=require` works out of the box.
 */
int rift_tls_make_self_signed(const char *cert_path, const char *key_path, char *err,
			      size_t errlen);

/*
 * A server context for cert/key (TLS 1.2+, ALPN "postgresql" selected when offered). NULL with
 * *err when the files are missing or do not match.
 */
SSL_CTX *rift_tls_server_ctx(const char *cert_path, const char *key_path, char *err, size_t errlen);

#endif
