/* secret_read.h — what a branch URL logs in with: the base's login role and a branch's own
 * password (`<state>/secrets/<branch>`), read by riftd and by the rift CLI alike. */
#ifndef RIFT_SECRET_READ_H
#define RIFT_SECRET_READ_H

#include <stddef.h>

#include "rift/base_meta.h"

/* "<state>/secrets/<branch>" into out; 0, or -ENAMETOOLONG. The branch name must be valid. */
int rift_secret_path(const char *state, const char *branch, char *out, size_t len)
    __attribute__((warn_unused_result));

/*
 * The role a branch URL logs in as: "rift" for demo and logical bases (init made it), else the
 * base's login_role (rift init --login-role, or the bootstrap superuser of a physical or
 * --pgdata base), else the user of the upstream URL. -ENOENT when the base names none.
 */
int rift_secret_login_role(const struct rift_base_meta *meta, char *out, size_t outlen);

/* Reads a branch's own password (rift create --new-password) into out: 0; -ENOENT when the
 * branch has none, -EACCES for a caller who is not root, -EIO when the file is empty. The
 * branch name must be valid already. */
int rift_secret_load(const char *state, const char *branch, char *out, size_t outlen);

#endif
