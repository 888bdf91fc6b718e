/* bootstrap_role.h — the name of a stopped cluster's bootstrap superuser (pg_authid oid 10). */
#ifndef RIFT_BOOTSTRAP_ROLE_H
#define RIFT_BOOTSTRAP_ROLE_H

#include <stddef.h>

/*
 * Reads pg_authid's heap in datadir (a stopped Postgres 12+ data directory, found through
 * global/pg_filenode.map) for the live row of oid 10, the role initdb made, and puts its name
 * in out. 0; -ENOENT when no single live row names it (then the caller falls back), -errno
 * when the files cannot be read. Reads only; bounded by the relation's first 1 GiB segment.
 */
int rift_bootstrap_role(const char *datadir, char *out, size_t outlen)
    __attribute__((warn_unused_result));

#endif
