/* tree_remove.c — removes a directory tree without ever following a link. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "rift/tree_remove.h"

#define TREE_MAX_DEPTH 64 /* deeper than any data directory; bounds descriptors in use */

/* Empties the opened directory fd (closed here) without following any link: everything is
 * removed relative to a descriptor, so a directory renamed or swapped for a link meanwhile
 * makes rift remove, at worst, the link, never what it points to. */
static int remove_in(int fd, int depth)
{
	struct dirent *de;
	DIR *d = fdopendir(fd);
	int rc = 0;

	if (d == NULL) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d)) != NULL) {
		int sub;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0 || errno == ENOENT)
			continue;
		if (errno != EISDIR && errno != EPERM) {
			rc = -errno;
			continue;
		}
		sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0 || depth >= TREE_MAX_DEPTH) {
			rc = sub < 0 ? -errno : -ELOOP;
			if (sub >= 0)
				close(sub);
			continue;
		}
		remove_in(sub, depth + 1);
		if (unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) != 0 && errno != ENOENT)
			rc = -errno;
	}
	closedir(d);
	return rc;
}

int rift_tree_remove(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), rc;

	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno != ENOTDIR && errno != ELOOP)
			return -errno;
		return unlink(path) == 0 ? 0 : -errno; /* a file or a link: only it goes */
	}
	rc = remove_in(fd, 0);
	if (rmdir(path) != 0 && errno != ENOENT && rc == 0)
		rc = -errno;
	return rc;
}
