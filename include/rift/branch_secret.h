/* branch_secret.h — a branch's own login password (rift create --new-password): made, hashed to a
 * SCRAM verifier, and kept in a root-only file of riftd's state. */
#ifndef RIFT_BRANCH_SECRET_H
#define RIFT_BRANCH_SECRET_H

#include <stddef.h>

#include "rift/base_init.h"

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

/*
 * The role a branch URL logs in as: "rift" for demo and logical bases (init made it), else the
 * base's login_role (rift init --login-role, or the bootstrap superuser of a physical or
 * --pgdata base), else the user of the upstream URL. -ENOENT when the base names none.
 */
int rift_secret_login_role(const struct rift_base_meta *meta, char *out, size_t outlen);

/* <state>/secrets/<branch>: saves (0600, atomically, the directory made 0700), loads (-ENOENT
 * when the branch has no password of its own, -EACCES for a caller who is not root) and
 * removes (ENOENT is fine) a branch's password. The branch name must be valid already. */
int rift_secret_save(const char *state, const char *branch, const char *password)
    __attribute__((warn_unused_result));
int rift_secret_load(const char *state, const char *branch, char *out, size_t outlen);
int rift_secret_remove(const char *state, const char *branch);

#endif
