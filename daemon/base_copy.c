/* base_copy.c — copies a data directory into a base that depends on nothing outside it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "rift/base_copy.h"

#define COPY_CHUNK (8 << 20)
#define MAX_DEPTH  64 /* deeper than any data directory; bounds descriptors in use */
#define MSG_PATH   (2 * PATH_MAX + 2) /* root or dst, "/", and a path below it */

struct copy {
	char root[PATH_MAX];  /* src, resolved: links must stay below it */
	char dst[PATH_MAX];   /* for messages only: the copy works through descriptors */
	char version_dir[32]; /* "PG_15_": a tablespace's directory for this cluster's version */
	bool counting;        /* first pass: check every link and add up sizes, copy nothing */
	bool follow;          /* copy what pg_wal and pg_tblspc/<oid> links point to */
	bool check_owner;     /* everything copied must belong to the data directory's owner */
	uid_t owner;
	long long total, done;
	struct timespec said;
	rift_progress_fn progress;
	void *arg;
	char *err;
	size_t errlen;
};

static void say(struct copy *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(struct copy *c, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (c->progress == NULL || c->counting)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	c->progress(line, c->arg);
}

/* A progress line at most once a second (and at the end), in pg_basebackup's "kB" form. */
static void tick(struct copy *c, bool last)
{
	struct timespec now;

	if (c->progress == NULL || c->counting || c->total <= 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!last && now.tv_sec - c->said.tv_sec < 1)
		return;
	c->said = now;
	say(c, "%lld/%lld kB (%.0f%%), copying the data directory", c->done >> 10, c->total >> 10,
	    100.0 * (double)c->done / (double)c->total);
}

static int fail(struct copy *c, int errnum, const char *what, const char *path)
{
	snprintf(c->err, c->errlen, "%s %s: %s", what, path, strerror(errnum));
	return -errnum;
}

/* rift copies as root, so a link planted by the cluster's OS user (whom every branch's
 * superuser can become) could make it copy a file that user may not read: all that is copied
 * must belong to the data directory's owner, as Postgres itself requires. Checked on what was
 * opened (fstat), so a swap between check and open changes nothing. */
static int check_owner(struct copy *c, const char *path, const struct stat *st)
{
	if (!c->check_owner || st->st_uid == c->owner)
		return 0;
	snprintf(c->err, c->errlen,
		 "%s belongs to uid %u, not to the data directory's owner (uid %u); rift will not "
		 "copy it into a base that every branch can read. Give it to the cluster's user "
		 "(chown) or remove it, then run rift init again",
		 path, (unsigned)st->st_uid, (unsigned)c->owner);
	return -EPERM;
}

static bool inside(const char *dir, const char *path)
{
	size_t n = strlen(dir);

	return strncmp(path, dir, n) == 0 && path[n] == '/';
}

/* pg_tblspc/<digits> */
static bool is_tablespace_link(const char *rel)
{
	const char *p;

	if (strncmp(rel, "pg_tblspc/", 10) != 0 || rel[10] == '\0')
		return false;
	for (p = rel + 10; *p != '\0'; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

/* Mode and times go on the copy's own descriptor. The copy is not given the source's owner: it
 * stays root's (the store records the server user as owner), so no process of the source's
 * user can write it, now or later. */
static int set_mode_times(struct copy *c, int fd, const char *to, const struct stat *st)
{
	struct timespec times[2] = { st->st_atim, st->st_mtim };

	if (fchmod(fd, st->st_mode & 0777) != 0)
		return fail(c, errno, "cannot set the mode of", to);
	futimens(fd, times); /* times are a courtesy */
	return 0;
}

static int copy_data(struct copy *c, int in, int out, const char *to)
{
	char *buf = NULL;
	ssize_t n;
	int rc = 0;

	while ((n = copy_file_range(in, NULL, out, NULL, COPY_CHUNK, 0)) > 0) {
		c->done += n;
		tick(c, false);
	}
	if (n < 0 &&
	    (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
		/* filesystems that cannot copy_file_range between them: plain reads and writes */
		buf = malloc(1 << 20);
		if (buf == NULL)
			return -ENOMEM;
		while ((n = read(in, buf, 1 << 20)) > 0) {
			if (write(out, buf, (size_t)n) != n) {
				n = -1;
				break;
			}
			c->done += n;
			tick(c, false);
		}
	}
	if (n < 0)
		rc = fail(c, errno, "cannot copy into", to);
	free(buf);
	return rc;
}

/* Copies regular file name of directory sfd into directory dfd. from/to name it for messages. */
static int copy_file(struct copy *c, int sfd, int dfd, const char *name, const char *from,
		     const char *to, const struct stat *st)
{
	int in = -1, out = -1, rc = 0;
	struct stat opened;

	if (c->counting) {
		c->total += st->st_size;
		return check_owner(c, from, st); /* fail before copying anything */
	}
	/* O_NONBLOCK: a fifo swapped in for the file must not hang the copy */
	in = openat(sfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	if (in < 0 || fstat(in, &opened) != 0) {
		rc = fail(c, errno, "cannot read", from);
		goto out;
	}
	if (!S_ISREG(opened.st_mode)) {
		rc = fail(c, EINVAL, "changed while being copied (no longer a file):", from);
		goto out;
	}
	rc = check_owner(c, from, &opened);
	if (rc != 0)
		goto out;
	out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out < 0) {
		rc = fail(c, errno, "cannot create", to);
		goto out;
	}
	rc = copy_data(c, in, out, to);
	if (rc == 0)
		rc = set_mode_times(c, out, to, &opened);
out:
	if (out >= 0)
		close(out);
	if (in >= 0)
		close(in);
	return rc;
}

/* A link that stays a link must lead, relatively, to something below the data directory. The
 * check resolves by path (reading only); rift init checks the finished copy once more. */
static int keep_link(struct copy *c, int sfd, int dfd, const char *name, const char *from,
		     const char *to, const char *rel, const struct stat *st)
{
	char target[PATH_MAX], real[PATH_MAX];
	const char *why = NULL;
	ssize_t n = readlinkat(sfd, name, target, sizeof(target) - 1);

	if (n < 0)
		return fail(c, errno, "cannot read the link", from);
	target[n] = '\0';
	if (target[0] == '/')
		why = "an absolute path (in a branch it would lead to the source, not the copy)";
	else if (realpath(from, real) == NULL)
		why = "nothing that exists";
	else if (!inside(c->root, real))
		why = "a place outside the data directory";
	if (why != NULL) {
		snprintf(c->err, c->errlen,
			 "%s in %s is a symbolic link to %s, %s; a base must not depend on "
			 "anything outside it, since every branch would share (and could "
			 "write) it. Replace the link by a copy of what it points to (cp -a "
			 "--remove-destination), or remove it, then run rift init again",
			 rel, c->root, target, why);
		return -ELOOP;
	}
	if (c->counting)
		return 0;
	if (symlinkat(target, dfd, name) != 0)
		return fail(c, errno, "cannot create the link", to);
	{
		struct timespec times[2] = { st->st_atim, st->st_mtim };
		utimensat(dfd, name, times, AT_SYMLINK_NOFOLLOW); /* a courtesy */
	}
	return 0;
}

static int copy_entry(struct copy *c, int sfd, int dfd, const char *name, const char *rel,
		      bool external, int depth);

/* Copies the opened source directory sdir (its own descriptor, closed here) into the opened
 * destination directory ddir (-1 while counting); rel is its path below the data directory
 * ("" for the top). Of a tablespace, only this version's directory is taken. */
static int copy_dir(struct copy *c, int sdir, int ddir, const char *rel, bool external,
		    bool tablespace, int depth)
{
	char from[MSG_PATH], to[MSG_PATH];
	struct dirent *de;
	struct stat st;
	DIR *d = NULL;
	int rc = 0;

	snprintf(from, sizeof(from), "%s%s%s", c->root, rel[0] ? "/" : "", rel);
	snprintf(to, sizeof(to), "%s%s%s", c->dst, rel[0] ? "/" : "", rel);
	if (depth > MAX_DEPTH) {
		close(sdir);
		return fail(c, ELOOP, "too deeply nested:", from);
	}
	if (fstat(sdir, &st) != 0 || (d = fdopendir(sdir)) == NULL) {
		rc = fail(c, errno, "cannot read the directory", from);
		close(sdir);
		return rc;
	}
	rc = check_owner(c, from, &st);
	if (rc != 0)
		goto out;
	while ((de = readdir(d)) != NULL) {
		char r[PATH_MAX];
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (tablespace && strncmp(de->d_name, c->version_dir, strlen(c->version_dir)) != 0)
			continue; /* another major version's files sharing the location */
		if ((size_t)snprintf(r, sizeof(r), "%s%s%s", rel, rel[0] ? "/" : "", de->d_name) >=
		    sizeof(r)) {
			rc = fail(c, ENAMETOOLONG, "path too long under", from);
			goto out;
		}
		rc = copy_entry(c, dirfd(d), ddir, de->d_name, r, external, depth + 1);
		if (rc != 0)
			goto out;
	}
	if (!c->counting)
		rc = set_mode_times(c, ddir, to, &st);
out:
	closedir(d);
	return rc;
}

/* Makes directory name in dfd (root's, 0700) and opens it; -1 while counting. */
static int make_dir_at(struct copy *c, int dfd, const char *name, const char *to, int *out)
{
	*out = -1;
	if (c->counting)
		return 0;
	if (mkdirat(dfd, name, 0700) != 0)
		return fail(c, errno, "cannot create", to);
	*out = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*out < 0)
		return fail(c, errno, "cannot open", to);
	return 0;
}

/* pg_wal or pg_tblspc/<oid> as a link: the base gets a real directory holding its target. The
 * target is found by path (only read, and what is opened must belong to the owner). */
static int copy_linked_dir(struct copy *c, int dfd, const char *name, const char *from,
			   const char *to, const char *rel, int depth)
{
	char target[PATH_MAX];
	int sdir = -1, ddir = -1, rc;

	errno = 0;
	if (realpath(from, target) == NULL ||
	    (sdir = open(target, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		snprintf(c->err, c->errlen,
			 "%s in %s is a symbolic link to a directory that cannot be read (%s); "
			 "restore it (the cluster needs it to start), then run rift init again",
			 rel, c->root, strerror(errno ? errno : ENOTDIR));
		return -ENOENT;
	}
	say(c,
	    "copying %s from %s into the base (a link there would make every branch write "
	    "into the source)",
	    rel, target);
	rc = make_dir_at(c, dfd, name, to, &ddir);
	if (rc != 0) {
		close(sdir);
		return rc;
	}
	rc = copy_dir(c, sdir, ddir, rel, true, is_tablespace_link(rel), depth);
	if (ddir >= 0)
		close(ddir);
	return rc;
}

static int copy_entry(struct copy *c, int sfd, int dfd, const char *name, const char *rel,
		      bool external, int depth)
{
	char from[MSG_PATH], to[MSG_PATH];
	struct stat st;
	int sdir, ddir = -1, rc;

	snprintf(from, sizeof(from), "%s/%s", c->root, rel);
	snprintf(to, sizeof(to), "%s/%s", c->dst, rel);
	if (fstatat(sfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return fail(c, errno, "cannot read", from);
	if (S_ISLNK(st.st_mode)) {
		if (c->follow && !external &&
		    (strcmp(rel, "pg_wal") == 0 || is_tablespace_link(rel)))
			return copy_linked_dir(c, dfd, name, from, to, rel, depth);
		return keep_link(c, sfd, dfd, name, from, to, rel, &st);
	}
	if (S_ISREG(st.st_mode))
		return copy_file(c, sfd, dfd, name, from, to, &st);
	if (!S_ISDIR(st.st_mode))
		return 0; /* sockets, fifos, devices: a data directory has none worth keeping */
	/* O_NOFOLLOW: a directory swapped for a link since fstatat is refused, not followed */
	sdir = openat(sfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sdir < 0)
		return fail(c, errno, "cannot read the directory", from);
	rc = make_dir_at(c, dfd, name, to, &ddir);
	if (rc != 0) {
		close(sdir);
		return rc;
	}
	rc = copy_dir(c, sdir, ddir, rel, external, false, depth);
	if (ddir >= 0)
		close(ddir);
	return rc;
}

static int read_version(struct copy *c, int root)
{
	char version[16] = "";
	int fd = openat(root, "PG_VERSION", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, version, sizeof(version) - 1) : -1;

	if (fd >= 0)
		close(fd);
	if (n <= 0) {
		snprintf(c->err, c->errlen, "%s is not a Postgres data directory (no PG_VERSION)",
			 c->root);
		return -ENOENT;
	}
	version[n] = '\0';
	version[strcspn(version, "\r\n")] = '\0';
	snprintf(c->version_dir, sizeof(c->version_dir), "PG_%s_", version);
	return 0;
}

/* Opens the source's top directory; c->root gets its resolved path (for messages and links). */
static int open_root(struct copy *c, const char *src, struct stat *st)
{
	int fd;

	if (realpath(src, c->root) == NULL)
		return fail(c, errno, "cannot read", src);
	fd = open(c->root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, st) != 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return fail(c, e, "cannot read", src);
	}
	return fd;
}

int rift_base_copy(const char *src, const char *dst, rift_progress_fn progress, void *arg,
		   char *err, size_t errlen)
{
	struct copy c = { .follow = true,
			  .check_owner = true,
			  .progress = progress,
			  .arg = arg,
			  .err = err,
			  .errlen = errlen };
	struct statvfs sv;
	struct stat st, dst_st;
	int rc, sfd = -1, dfd = -1;

	snprintf(c.dst, sizeof(c.dst), "%s", dst);
	/* the copy goes only into a directory of ours that no one else may write */
	dfd = open(dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0 || fstat(dfd, &dst_st) != 0) {
		rc = fail(&c, errno, "cannot open", dst);
		goto out;
	}
	if (dst_st.st_uid != geteuid() || (dst_st.st_mode & 022) != 0) {
		snprintf(err, errlen,
			 "%s must belong to uid %u and be writable by it alone to receive a base",
			 dst, (unsigned)geteuid());
		rc = -EPERM;
		goto out;
	}
	sfd = open_root(&c, src, &st);
	if (sfd < 0) {
		rc = sfd;
		goto out;
	}
	c.owner = st.st_uid;
	/* The owner check is what keeps root from copying what the cluster's user may not read:
	 * a source of root's (say the path's parent is that user's, and the data directory was
	 * swapped for a link to a directory of root's) would pass it for everything. */
	if (c.owner == 0) {
		snprintf(err, errlen,
			 "%s belongs to root; a Postgres data directory belongs to the cluster's "
			 "user, and rift copies only such a one. Give it to that user (chown -R), "
			 "or check that the path leads where you meant, then run rift init again",
			 c.root);
		rc = -EPERM;
		goto out;
	}
	rc = read_version(&c, sfd);
	if (rc != 0)
		goto out;
	c.counting = true;
	/* a descriptor of its own (not dup: that would share the directory's read position) */
	rc = copy_dir(&c, openat(sfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), -1, "", false,
		      false, 0);
	if (rc != 0)
		goto out;
	if (fstatvfs(dfd, &sv) == 0 && (unsigned long long)c.total + (64ull << 20) >
					   (unsigned long long)sv.f_bavail * sv.f_frsize) {
		snprintf(err, errlen,
			 "not enough disk for the base: %s holds %lld MiB, %s has %llu MiB free; "
			 "free some space or pick another --state",
			 c.root, c.total >> 20, dst,
			 (unsigned long long)sv.f_bavail * sv.f_frsize >> 20);
		rc = -ENOSPC;
		goto out;
	}
	c.counting = false;
	rc = copy_dir(&c, sfd, dfd, "", false, false, 0);
	sfd = -1; /* copy_dir closed it */
	if (rc != 0)
		goto out;
	tick(&c, true);
	if (syncfs(dfd) != 0)
		rc = fail(&c, errno, "cannot flush the copy in", dst);
out:
	if (sfd >= 0)
		close(sfd);
	if (dfd >= 0)
		close(dfd);
	return rc;
}

int rift_base_check_links(const char *datadir, char *err, size_t errlen)
{
	struct copy c = { .counting = true, .err = err, .errlen = errlen };
	struct stat st;
	int fd = open_root(&c, datadir, &st);

	if (fd < 0)
		return fd;
	snprintf(c.dst, sizeof(c.dst), "%s", c.root);
	return copy_dir(&c, fd, -1, "", false, false, 0);
}
