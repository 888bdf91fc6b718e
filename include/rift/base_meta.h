/* base_meta.h — what `rift init` recorded about a store's base (`<state>/base.conf`). */
#ifndef RIFT_BASE_META_H
#define RIFT_BASE_META_H

#include <stddef.h>

/* What `rift init` recorded about the base, in `<state>/base.conf`. */
struct rift_base_meta {
	char mode[16];
	char default_db[64];    /* where a branch's connection goes unless another is named */
	char upstream[512];     /* the upstream URL without its password, for `rift status` */
	char demo_password[64]; /* demo only: password of the role "rift" */
	char login_role[64];    /* the role URLs name ("" in stores made before it existed) */
};

/*
 * Reads `<state>/base.conf` into *meta (zeroed first; unknown keys are skipped). 0, or -errno
 * of the open with *err saying which file and what to do.
 */
int rift_base_meta_load(const char *state_dir, struct rift_base_meta *meta, char *err,
			size_t errlen);

#endif
