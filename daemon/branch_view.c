/* branch_view.c — read-only bind mounts of running branches' views (rift mount while serving). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rift/branch_view.h"
#include "rift/log.h"

/*
 * riftd (root) mounts where a local user asked, so everything here works on descriptors: the
 * mount point is resolved once, without following any link, and checked, made and later
 * unmounted through what that resolution found, never by a path looked up again.
 */

/* An O_PATH descriptor of the directory at path (absolute), no link followed; -errno. */
static int open_dir_nofollow(const char *path)
{
	struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
				.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
	long fd = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));

	return fd < 0 ? -errno : (int)fd;
}

#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x4000U /* Linux 6.8 */
#endif

/*
 * The mount's id: the 64-bit one never reused where the kernel has it (6.8), as the plain id of
 * an unmounted view can go to the very next mount made, perhaps at the same place.
 */
static uint64_t fd_mount_id(int fd)
{
	struct statx st;

	if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID_UNIQUE, &st) == 0 &&
	    (st.stx_mask & STATX_MNT_ID_UNIQUE))
		return st.stx_mnt_id;
	if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &st) != 0 || !(st.stx_mask & STATX_MNT_ID))
		return 0;
	return st.stx_mnt_id;
}

uint64_t rift_view_mount_id(const char *path)
{
	int fd = open_dir_nofollow(path);
	uint64_t id;

	if (fd < 0)
		return 0;
	id = fd_mount_id(fd);
	close(fd);
	return id;
}

/* True when the directory fd (O_PATH) has nothing in it. */
static bool empty_dir(int fd)
{
	int rfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;
	struct dirent *e;
	bool empty = true;

	if (rfd < 0)
		return false;
	d = fdopendir(rfd);
	if (d == NULL) {
		close(rfd);
		return false;
	}
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
			empty = false;
			break;
		}
	closedir(d);
	return empty;
}

/* Whether path is absolute with no empty, "." or ".." component: its prefixes are then
 * exactly the directories the walk up from it meets, so a refusal names the right one. */
static bool plain_path(const char *path)
{
	const char *p = path;

	if (path[0] != '/')
		return false;
	while (*p == '/' && p[1] != '\0') {
		const char *c = p + 1, *end = strchr(c, '/');
		size_t n = end ? (size_t)(end - c) : strlen(c);

		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		if (end == NULL)
			break;
		p = end;
	}
	return true;
}

/*
 * Checks that dir (fd) and every directory above it up to / are root's and writable by nobody
 * else: then no other user can move, replace or swap any part of the path, now or before the
 * detach. 0, or -errno with err set.
 */
static int check_owners(int fd, const char *dir, char *err, size_t errlen)
{
	char name[4200];
	struct stat st, root;
	int cur = -1, up, rc = 0, depth;
	char *slash;

	snprintf(name, sizeof(name), "%s", dir);
	if (stat("/", &root) != 0)
		return -errno;
	cur = openat(fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cur < 0)
		return -errno;
	for (depth = 0; depth < 4096; depth++) {
		if (fstat(cur, &st) != 0) {
			rc = -errno;
			snprintf(err, errlen, "cannot stat %s: %s", name, strerror(errno));
			break;
		}
		if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
			rc = -EPERM;
			if (depth == 0)
				snprintf(err, errlen,
					 "mount point %s: it is %s; use a directory only root can "
					 "change, such as /mnt/rift-x",
					 dir,
					 st.st_uid != 0 ? "not owned by root"
							: "writable by other users");
			else
				snprintf(err, errlen,
					 "mount point %s: %s is %s; use a directory only root can "
					 "change, such as /mnt/rift-x",
					 dir, name,
					 st.st_uid != 0 ? "not owned by root"
							: "writable by other users");
			break;
		}
		if (st.st_dev == root.st_dev && st.st_ino == root.st_ino)
			break; /* reached / */
		up = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (up < 0) {
			rc = -errno;
			snprintf(err, errlen, "cannot open the parent of %s: %s", name,
				 strerror(errno));
			break;
		}
		close(cur);
		cur = up;
		slash = strrchr(name, '/');
		if (slash == name)
			snprintf(name, sizeof(name), "/");
		else if (slash != NULL)
			*slash = '\0';
	}
	if (rc == 0 && depth == 4096) {
		rc = -ELOOP;
		snprintf(err, errlen, "mount point %s: its path is too deep", dir);
	}
	close(cur);
	return rc;
}

int rift_view_bind(const char *src, const char *dir, uint64_t *mnt_id, char *err, size_t errlen)
{
	struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
					       MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC };
	uint64_t here, above = 0;
	int fd = -1, tree = -1, rc;

	*mnt_id = 0;
	if (!plain_path(dir)) {
		snprintf(err, errlen,
			 "the mount point \"%s\" must be an absolute path without \".\" or \"..\"",
			 dir);
		return -EINVAL;
	}
	/* no link to follow anywhere on the path: root's mount goes exactly where the caller
	 * said, and every later step uses this descriptor */
	fd = open_dir_nofollow(dir);
	if (fd < 0) {
		rc = fd;
		if (rc == -ELOOP)
			snprintf(
			    err, errlen,
			    "the mount point %s has a symbolic link in its path (name the real "
			    "directory)",
			    dir);
		else
			snprintf(err, errlen,
				 "the mount point %s is not an existing directory (%s; mkdir it)",
				 dir, strerror(-rc));
		return rc == -ELOOP ? -EINVAL : rc;
	}
	/* first, as a mount's root has its own owner and mode: the reason worth saying */
	tree = openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
	above = tree < 0 ? 0 : fd_mount_id(tree);
	if (tree >= 0)
		close(tree);
	tree = -1;
	here = fd_mount_id(fd);
	if (here == 0 || above == 0 || here != above) {
		rc = -EBUSY;
		snprintf(
		    err, errlen,
		    "%s is already a mount point (unmount it first, or pick another directory)",
		    dir);
		goto out;
	}
	rc = check_owners(fd, dir, err, errlen);
	if (rc != 0) {
		rc = rc == -EPERM ? -EINVAL : rc; /* a bad request, not riftd lacking rights */
		goto out;
	}
	if (!empty_dir(fd)) {
		rc = -ENOTEMPTY;
		snprintf(
		    err, errlen,
		    "the mount point %s is not empty (pick an empty directory: the mount would "
		    "hide its files)",
		    dir);
		goto out;
	}
	/* a detached copy of the view, made read-only before it is attached anywhere: there is
	 * no moment in which the mount is writable */
	tree = open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (tree < 0 || mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) != 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot make a read-only copy of the branch's view: %s",
			 strerror(errno));
		goto out;
	}
	if (move_mount(tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot mount the branch's view on %s: %s", dir,
			 strerror(errno));
		goto out;
	}
	*mnt_id = fd_mount_id(tree);
	rc = 0;
out:
	if (tree >= 0)
		close(tree);
	close(fd);
	return rc;
}

void rift_view_detach(const char *dir, uint64_t mnt_id)
{
	char proc[64];
	int fd;

	if (mnt_id == 0)
		return;
	/* the path's directories are root's alone (checked at the mount), and it is looked up
	 * once without links; the unmount then goes through this very descriptor, so it ends
	 * the mount whose id was checked and no other */
	fd = open_dir_nofollow(dir);
	if (fd < 0)
		return; /* gone: unmounted by hand, and the directory removed */
	if (fd_mount_id(fd) == mnt_id) {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		if (umount2(proc, MNT_DETACH) != 0)
			LOG_WARN("view", "cannot unmount %s: %s", dir, strerror(errno));
	} /* else: unmounted by hand, or someone else's mount now */
	close(fd);
}
