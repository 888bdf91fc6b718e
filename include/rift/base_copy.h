/* base_copy.h — makes a base self-contained: external pg_wal and tablespaces copied in. */
#ifndef RIFT_BASE_COPY_H
#define RIFT_BASE_COPY_H

#include <stddef.h>

/* Progress lines for a person; "N/M kB (P%) ..." lines are drawn as a bar by `rift init`. */
typedef void (*rift_progress_fn)(const char *line, void *arg);

/*
 * Copies the stopped data directory src into dst, an existing empty directory that belongs to
 * the caller and no one else may write, keeping modes and times but not owners: the copy is
 * the caller's (root's), so the source's user can neither write it nor reach it through a
 * descriptor opened earlier. Everything is read and written relative to directory descriptors,
 * never following a link except a symlinked pg_wal and every pg_tblspc/<oid> link, which
 * become real directories holding what they point to (of a tablespace, only the PG_<major>_*
 * directory of this cluster's major version), so no branch ever writes through them into the
 * source. Everything read must belong to src's owner. Any other symlink that is absolute,
 * dangling or leads out of src is refused with *err naming it and saying what to do. Checks
 * the free space of dst first.
 */
int rift_base_copy(const char *src, const char *dst, rift_progress_fn progress, void *arg,
		   char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Fails with *err naming the first symlink under datadir that is absolute, dangling or leads
 * out of datadir: a base must not depend on anything outside it.
 */
int rift_base_check_links(const char *datadir, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
