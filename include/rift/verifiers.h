/* verifiers.h — riftd's own copy of branches' SCRAM verifiers, so the router can check a
 * password before it starts a stopped branch ([router] start_on_connect = authenticated). */
#ifndef RIFT_VERIFIERS_H
#define RIFT_VERIFIERS_H

#include <stddef.h>

/*
 * Files <state>/run/verifiers/<branch> (directory 0700, files 0600, root's): one line per role,
 * "<role in hex> <pg_authid.rolpassword>". Written whole and renamed into place, so a reader
 * never sees half a file. Branch names must already be valid (rift_branch_name_check).
 */

/* The stored verifier of role on branch into out: 0, -ENOENT when there is none. */
int rift_verifiers_get(const char *state, const char *branch, const char *role, char *out,
		       size_t outlen);

/* Records (or replaces) role's verifier for branch; secret NULL forgets it. 0 or -errno. */
int rift_verifiers_put(const char *state, const char *branch, const char *role, const char *secret);

/* A new branch (or one reset to its parent) starts with its parent's roles: copies the file. */
int rift_verifiers_inherit(const char *state, const char *from, const char *to);

/* The branch is gone: so is its file. */
void rift_verifiers_forget(const char *state, const char *branch);

#endif
