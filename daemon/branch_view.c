/* branch_view.c — read-only bind mounts of running branches' views (rift mount while serving). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rift/branch_view.h"
#include "rift/log.h"

uint64_t rift_view_mount_id(const char *path)
{
	struct statx st;

	if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &st) != 0 ||
	    !(st.stx_mask & STATX_MNT_ID))
		return 0;
	return st.stx_mnt_id;
}

/* True when path is a directory with nothing in it. */
static bool empty_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	bool empty = true;

	if (d == NULL)
		return false;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
			empty = false;
			break;
		}
	closedir(d);
	return empty;
}

int rift_view_bind(const char *src, const char *dir, uint64_t *mnt_id, char *err, size_t errlen)
{
	const unsigned long locked = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
	char parent[4200];
	struct stat st;
	uint64_t before, above;
	int rc;

	*mnt_id = 0;
	if (dir[0] != '/') {
		snprintf(err, errlen, "the mount point \"%s\" must be an absolute path", dir);
		return -EINVAL;
	}
	/* no link to follow: root's mount goes exactly where the caller said */
	if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "the mount point %s is not an existing directory (mkdir it)",
			 dir);
		return -ENOTDIR;
	}
	if (!empty_dir(dir)) {
		snprintf(
		    err, errlen,
		    "the mount point %s is not empty (pick an empty directory: the mount would "
		    "hide its files)",
		    dir);
		return -ENOTEMPTY;
	}
	snprintf(parent, sizeof(parent), "%s/..", dir);
	before = rift_view_mount_id(dir);
	above = rift_view_mount_id(parent);
	if (before == 0 || above == 0 || before != above) {
		snprintf(
		    err, errlen,
		    "%s is already a mount point (unmount it first, or pick another directory)",
		    dir);
		return -EBUSY;
	}
	if (mount(src, dir, NULL, MS_BIND, NULL) != 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot bind the branch's view onto %s: %s", dir,
			 strerror(errno));
		return rc;
	}
	/* a bind mount takes its flags only at a remount; until then it is read-write, so any
	 * failure here undoes it */
	if (mount(NULL, dir, NULL, MS_REMOUNT | MS_BIND | locked, NULL) != 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot make the mount at %s read-only: %s", dir,
			 strerror(errno));
		umount2(dir, MNT_DETACH);
		return rc;
	}
	*mnt_id = rift_view_mount_id(dir);
	return 0;
}

void rift_view_detach(const char *dir, uint64_t mnt_id)
{
	if (mnt_id == 0 || rift_view_mount_id(dir) != mnt_id)
		return; /* unmounted by hand, or someone else's mount now */
	if (umount2(dir, MNT_DETACH | UMOUNT_NOFOLLOW) != 0)
		LOG_WARN("view", "cannot unmount %s: %s", dir, strerror(errno));
}
