/* branch_secret.h — a branch's own login password (rift create --new-password): made, hashed to a
 * SCRAM verifier, and kept in a root-only file of riftd's state. */
#ifndef RIFT_BRANCH_SECRET_H
#define RIFT_BRANCH_SECRET_H

#include <stddef.h>

#include "rift/secret_read.h"

#define RIFT_SECRET_PASSWORD_LEN 24  /* characters of a generated password */
#define RIFT_SECRET_VERIFIER_MAX 256 /* "SCRAM-SHA-256$4096:<salt>$<stored>:<server>" + NUL */

/* A fresh password of RIFT_SECRET_PASSWORD_LEN letters and digits from the kernel's random
 * source into out (outlen > RIFT_SECRET_PASSWORD_LEN). 0 or -errno. */
int rift_secret_new_password(char *out, size_t outlen) __attribute__((warn_unused_result));

/*
 * The SCRAM-SHA-256 verifier of password with a random 16-byte salt and 4096 iterations (what
 * Postgres computes for PASSWORD 'plaintext'), as pg_authid.rolpassword holds it. Sending this
 * instead of the plaintext keeps the password out of every server log. 0 or -errno.
 */
int rift_secret_verifier(const char *password, char *out, size_t outlen)
    __attribute__((warn_unused_result));

/* <state>/secrets/<branch>: saves (0600, atomically, the directory made 0700) and removes
 * (ENOENT is fine) a branch's password; rift_secret_load (secret_read.h) reads it. The branch
 * name must be valid already. */
int rift_secret_save(const char *state, const char *branch, const char *password)
    __attribute__((warn_unused_result));
int rift_secret_remove(const char *state, const char *branch);

#endif
