/* branch_name.h — validation of branch names before they touch a path, a key or a protocol. */
#ifndef RIFT_BRANCH_NAME_H
#define RIFT_BRANCH_NAME_H

#include <stddef.h>

/* Longest valid branch name, in bytes (without the terminating NUL). */
#define RIFT_BRANCH_NAME_MAX 63

/* Why a name was refused; RIFT_NAME_OK when it is valid. */
enum rift_name_verdict {
	RIFT_NAME_OK = 0,
	RIFT_NAME_EMPTY,
	RIFT_NAME_TOO_LONG,
	RIFT_NAME_BAD_FIRST_CHAR,
	RIFT_NAME_BAD_CHAR,
};

/*
 * Checks that name matches [a-z0-9][a-z0-9_-]{0,62}. This keeps names safe as a single path
 * component (no ".", "..", "/"), as a Postgres identifier-ish token and as a URL path segment.
 * name may be NULL (reported as empty).
 */
enum rift_name_verdict rift_branch_name_check(const char *name);

/* A sentence saying what is wrong with a name of this verdict, for error messages; never NULL. */
const char *rift_branch_name_explain(enum rift_name_verdict verdict);

#endif
