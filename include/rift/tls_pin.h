/* tls_pin.h — the public-key pin of a certificate, in the form curl's --pinnedpubkey takes. */
#ifndef RIFT_TLS_PIN_H
#define RIFT_TLS_PIN_H

#include <stddef.h>

/*
 * "sha256//<base64 of SHA-256 of the DER SubjectPublicKeyInfo>" of the certificate in the PEM
 * file cert_path, into out (at least 64 bytes). 0, or -errno when it cannot be read.
 */
int rift_tls_pin(const char *cert_path, char *out, size_t len) __attribute__((warn_unused_result));

#endif
