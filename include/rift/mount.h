/* mount.h — mounts one branch of a store as a FUSE filesystem (libfuse 3 low-level API). */
#ifndef RIFT_MOUNT_H
#define RIFT_MOUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "rift/store.h"

struct rift_mount;

struct rift_mount_opts {
	bool read_only;       /* refuse every change with EROFS; mount "ro" */
	unsigned max_threads; /* FUSE worker threads; 0 = default (4) */
	bool debug;           /* libfuse's request trace on stderr */
	/*
	 * A branch's own OS identity: when set, every file shows as owned by uid/gid whatever the
	 * store holds, and the root directory as 0700, so with default_permissions the kernel
	 * lets no other uid (another branch's server) in. chown/chgrp to these ids succeed and
	 * change nothing; to any other id they fail with EPERM. Unset: the stored owners show.
	 */
	bool set_owner;
	uid_t uid;
	gid_t gid;
};

/*
 * Opens branch `branch` of store and mounts it at mountpoint (allow_other,
 * default_permissions, fsname=rift:<branch>), serving requests on background threads until
 * rift_mount_stop. Needs root (or CAP_SYS_ADMIN) and /dev/fuse. On failure *err says what went
 * wrong and what to do: a missing branch, a mount point that is busy or missing, no /dev/fuse.
 * The caller owns *out; the store must outlive it.
 */
int rift_mount_start(struct rift_store *store, const char *branch, const char *mountpoint,
		     const struct rift_mount_opts *opts, struct rift_mount **out, char *err,
		     size_t errlen) __attribute__((warn_unused_result));

/*
 * Unmounts (lazily if something still holds files open), waits for the worker threads, syncs
 * the store and closes the branch. NULL is fine.
 */
void rift_mount_stop(struct rift_mount *m);

/* True once the kernel ended the session (someone ran umount on the mount point). */
bool rift_mount_ended(struct rift_mount *m);

#endif
