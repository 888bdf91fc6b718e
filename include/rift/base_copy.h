/* base_copy.h — makes a base self-contained: external pg_wal and tablespaces copied in. */
#ifndef RIFT_BASE_COPY_H
#define RIFT_BASE_COPY_H

#include <stddef.h>

/* Progress lines for a person; "N/M kB (P%) ..." lines are drawn as a bar by `rift init`. */
typedef void (*rift_progress_fn)(const char *line, void *arg);

/*
 * Copies the stopped data directory src into dst (an existing empty directory, given src's
 * owner and mode), keeping owners, modes and times. A symlinked pg_wal and every
 * pg_tblspc/<oid> link become real directories holding what they point to (of a tablespace,
 * only the PG_<major>_* directory of this cluster's major version), so no branch ever writes
 * through them into the source. Any other symlink that is absolute, dangling or leads out of
 * src is refused with *err naming it and saying what to do. Checks the free space of dst first.
 */
int rift_base_copy(const char *src, const char *dst, rift_progress_fn progress, void *arg,
		   char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * After pg_basebackup -T OLD=mapdir/<oid>: replaces each pg_tblspc/<oid> link of datadir that
 * points into mapdir with the directory itself (a rename), then removes mapdir.
 */
int rift_base_adopt_tablespaces(const char *datadir, const char *mapdir, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Fails with *err naming the first symlink under datadir that is absolute, dangling or leads
 * out of datadir: a base must not depend on anything outside it.
 */
int rift_base_check_links(const char *datadir, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
