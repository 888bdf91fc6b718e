/* branch_select.h — branch selection that leaves the database name alone: a startup packet's
 * `options` (-c rift.branch=NAME) and a TLS client's SNI host name; no I/O. */
#ifndef RIFT_BRANCH_SELECT_H
#define RIFT_BRANCH_SELECT_H

#include <stddef.h>

enum rift_opt_branch {
	RIFT_OPT_INVALID = -1, /* malformed or repeated rift.branch: refuse the client (why says) */
	RIFT_OPT_NONE = 0,     /* no rift.branch: options go to the server unchanged */
	RIFT_OPT_BRANCH = 1,   /* branch set; rest holds options without the setting */
};

/*
 * Finds rift.branch in options, split the way Postgres splits them (whitespace separates,
 * backslash escapes the next byte), as `-c rift.branch=X`, `-crift.branch=X` or
 * `--rift.branch=X` (the name compared case-insensitively, as Postgres compares setting names).
 * On RIFT_OPT_BRANCH, branch (blen bytes) holds X, checked as a branch name, and rest (rlen
 * bytes) the other options, each kept byte for byte with its escapes, joined by one space ("" when
 * none is left). Any other mention of rift.branch, a second one, an empty or invalid name, or
 * a result that does not fit is RIFT_OPT_INVALID with *why saying which (a static string).
 */
enum rift_opt_branch rift_options_take_branch(const char *options, char *branch, size_t blen,
					      char *rest, size_t rlen, const char **why)
    __attribute__((warn_unused_result));

/*
 * The branch a TLS server name (SNI) selects: its first label, lowercased, when the name has at
 * least two labels, is not an IP address, and its first label is not "localhost". Writes "" to
 * branch when the name selects none (NULL, IP, localhost, one label, or a first label that is
 * not a valid branch name). Never fails.
 */
void rift_sni_branch(const char *sni, char *branch, size_t blen);

#endif
