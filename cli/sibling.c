/* sibling.c — runs riftd or rift-fs: the one beside this rift binary, else the one on PATH. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* This binary's directory into dir ("" when /proc/self/exe cannot tell). */
static void self_dir(char *dir, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	dir[0] = '\0';
	if (n <= 0)
		return;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (slash == NULL)
		return;
	*slash = '\0';
	snprintf(dir, len, "%s", slash == self ? "/" : self);
}

int cli_exec_sibling(const char *who, const char *name, char *const argv[])
{
	char dir[PATH_MAX], path[PATH_MAX + 64];
	int e;

	/* The programs of one installation go together: a riftd of another version on PATH may
	 * not understand this rift, so the one beside it comes first. */
	self_dir(dir, sizeof(dir));
	if (dir[0] != '\0') {
		snprintf(path, sizeof(path), "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, name);
		if (access(path, X_OK) == 0) {
			execv(path, argv);
			fprintf(stderr, "%s: cannot run %s: %s\n", who, path, strerror(errno));
			return 1;
		}
	}
	execvp(name, argv);
	e = errno;
	if (e == ENOENT)
		fprintf(stderr,
			"%s: %s is neither beside rift (in %s) nor on PATH: install it with rift "
			"(the rift package has both), or add its directory to PATH\n",
			who, name, dir[0] != '\0' ? dir : "an unknown directory");
	else
		fprintf(stderr, "%s: cannot run %s from PATH: %s\n", who, name, strerror(e));
	return 1;
}
