/* base_init.h — `rift init`: makes base generation 1 of a store from a demo, a server or a dir. */
#ifndef RIFT_BASE_INIT_H
#define RIFT_BASE_INIT_H

#include <stdbool.h>
#include <stddef.h>

#include "rift/base_meta.h"
#include "rift/config.h"

enum rift_init_mode {
	RIFT_INIT_DEMO,     /* initdb + a small sample schema; needs nothing else */
	RIFT_INIT_PHYSICAL, /* pg_basebackup -X stream from upstream_url */
	RIFT_INIT_LOGICAL,  /* pg_dump | pg_restore of upstream_url's database */
	RIFT_INIT_PGDATA,   /* copy of a stopped data directory */
};

struct rift_init_opts {
	enum rift_init_mode mode;
	const char *upstream_url; /* PHYSICAL, LOGICAL; may hold a password */
	/* PHYSICAL, LOGICAL: the password, when not in the URL (NULL: libpq's own sources, such as
	 * ~/.pgpass). Child tools get it through a passfile, never in their argv. */
	const char *upstream_password;
	const char *pgdata; /* PGDATA */
	/* the role `rift url` names; NULL: the bootstrap superuser (pgdata, physical), the URL's
	 * user (logical) */
	const char *login_role;
	/* Called with progress lines (may be NULL): what is happening, for a person. */
	void (*progress)(const char *line, void *arg);
	void *progress_arg;
};

/*
 * Creates the store in state_dir (which must not hold one yet), writes rift.conf with every
 * default, makes base generation 1 by the chosen mode and creates the branch "main" from it.
 * The base depends on nothing outside it: an external pg_wal and tablespaces are copied in.
 * On failure nothing half-made is left that a second attempt would trip over, and *err says
 * what failed and what to do (add a pg_hba line, grant REPLICATION, install postgresql-N, free
 * disk, stop the server).
 */
int rift_init(const char *state_dir, const struct rift_init_opts *opts, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Removes in place every password from a conninfo string or postgres:// URL as typed on a
 * command line, padding with NULs to the same length, so /proc/<pid>/cmdline stops showing
 * it. Errs on the side of removing more (the caller keeps its own copy of the original).
 */
void rift_conninfo_scrub(char *s);

#endif
