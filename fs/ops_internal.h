/* ops_internal.h — what the FUSE handlers (ops.c) and the mount lifecycle (mount.c) share. */
#ifndef RIFT_OPS_INTERNAL_H
#define RIFT_OPS_INTERNAL_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>

#include "rift/mount.h"

struct rift_mount {
	struct rift_store *store;
	struct rift_branch *branch;
	struct fuse_session *se;
	pthread_t loop;
	bool loop_started;
	atomic_bool ended;
	bool read_only;
	bool set_owner; /* present every file as owned by uid/gid (see rift_mount_opts) */
	uid_t uid;
	gid_t gid;
	unsigned max_threads;
	bool have_dev;
	unsigned dev_minor; /* the connection's number under /sys/fs/fuse/connections */
	char mountpoint[4096];
};

/* The low-level operation table; userdata is the struct rift_mount. */
extern const struct fuse_lowlevel_ops rift_fuse_ops;

#endif
