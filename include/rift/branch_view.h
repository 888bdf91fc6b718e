/* branch_view.h — read-only bind mounts of a running branch's view, for `rift mount` while riftd
 * serves. */
#ifndef RIFT_BRANCH_VIEW_H
#define RIFT_BRANCH_VIEW_H

#include <stddef.h>
#include <stdint.h>

/*
 * Binds the mounted branch view at src onto dir (an existing, empty directory that is not a
 * mount point), read-only, nosuid, nodev, noexec: the files are the branch superuser's, who is
 * hostile. The view's root keeps its 0700 owner (the branch's uid), so no other local user sees
 * into it. *mnt_id identifies the new mount, so a later detach never removes a mount someone put
 * there afterwards. 0, or -errno with *err saying what to do.
 */
int rift_view_bind(const char *src, const char *dir, uint64_t *mnt_id, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Detaches the mount at dir if it is still the one rift_view_bind made (same mount id). */
void rift_view_detach(const char *dir, uint64_t mnt_id);

/* The mount id of path, or 0 when it cannot be read. */
uint64_t rift_view_mount_id(const char *path);

#endif
