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

struct copy {
	char root[PATH_MAX];  /* src, resolved: links must stay below it */
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

static int set_owner_mode_times(struct copy *c, const char *to, const struct stat *st)
{
	struct timespec times[2] = { st->st_atim, st->st_mtim };

	if (lchown(to, st->st_uid, st->st_gid) != 0)
		return fail(c, errno, "cannot set the owner of", to);
	if (!S_ISLNK(st->st_mode) && chmod(to, st->st_mode & 07777) != 0)
		return fail(c, errno, "cannot set the mode of", to);
	utimensat(AT_FDCWD, to, times, AT_SYMLINK_NOFOLLOW); /* times are a courtesy */
	return 0;
}

static int copy_file(struct copy *c, const char *from, const char *to, const struct stat *st)
{
	int in = -1, out = -1, rc = 0;
	struct stat opened;
	char *buf = NULL;
	ssize_t n;

	if (c->counting) {
		c->total += st->st_size;
		return check_owner(c, from, st); /* fail before copying anything */
	}
	in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0 || fstat(in, &opened) != 0) {
		rc = fail(c, errno, "cannot read", from);
		goto out;
	}
	rc = check_owner(c, from, &opened);
	if (rc != 0)
		goto out;
	out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out < 0) {
		rc = fail(c, errno, "cannot create", to);
		goto out;
	}
	while ((n = copy_file_range(in, NULL, out, NULL, COPY_CHUNK, 0)) > 0) {
		c->done += n;
		tick(c, false);
	}
	if (n < 0 &&
	    (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
		/* filesystems that cannot copy_file_range between them: plain reads and writes */
		buf = malloc(1 << 20);
		if (buf == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		while ((n = read(in, buf, 1 << 20)) > 0) {
			if (write(out, buf, (size_t)n) != n) {
				n = -1;
				break;
			}
			c->done += n;
			tick(c, false);
		}
	}
	if (n < 0) {
		rc = fail(c, errno, "cannot copy into", to);
		goto out;
	}
	rc = set_owner_mode_times(c, to, st);
out:
	free(buf);
	if (out >= 0)
		close(out);
	if (in >= 0)
		close(in);
	return rc;
}

/* A link that stays a link must lead, relatively, to something below the data directory. */
static int keep_link(struct copy *c, const char *from, const char *to, const char *rel,
		     const struct stat *st)
{
	char target[PATH_MAX], real[PATH_MAX];
	const char *why = NULL;
	ssize_t n = readlink(from, target, sizeof(target) - 1);

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
	if (symlink(target, to) != 0)
		return fail(c, errno, "cannot create the link", to);
	return set_owner_mode_times(c, to, st);
}

static int copy_entry(struct copy *c, const char *from, const char *to, const char *rel,
		      bool external);

/* Copies directory from (with stat st) to to; rel is its path below the data directory ("" for
 * the top, which exists already). Of a tablespace, only this version's directory is taken. */
static int copy_dir(struct copy *c, const char *from, const char *to, const char *rel,
		    bool external, const struct stat *st, bool tablespace)
{
	struct dirent *de;
	struct stat opened;
	DIR *d = NULL;
	int rc = 0, fd;

	if (!c->counting && rel[0] != '\0' && mkdir(to, 0700) != 0)
		return fail(c, errno, "cannot create", to);
	fd = open(from, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &opened) != 0 || (d = fdopendir(fd)) == NULL) {
		rc = fail(c, errno, "cannot read the directory", from);
		if (fd >= 0)
			close(fd);
		return rc;
	}
	rc = check_owner(c, from, &opened);
	if (rc != 0)
		goto out;
	while ((de = readdir(d)) != NULL) {
		char f[PATH_MAX], t[PATH_MAX], r[PATH_MAX];
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (tablespace && strncmp(de->d_name, c->version_dir, strlen(c->version_dir)) != 0)
			continue; /* another major version's files sharing the location */
		if ((size_t)snprintf(f, sizeof(f), "%s/%s", from, de->d_name) >= sizeof(f) ||
		    (size_t)snprintf(t, sizeof(t), "%s/%s", to, de->d_name) >= sizeof(t) ||
		    (size_t)snprintf(r, sizeof(r), "%s%s%s", rel, rel[0] ? "/" : "", de->d_name) >=
			sizeof(r)) {
			rc = fail(c, ENAMETOOLONG, "path too long under", from);
			goto out;
		}
		rc = copy_entry(c, f, t, r, external);
		if (rc != 0)
			goto out;
	}
	if (!c->counting)
		rc = set_owner_mode_times(c, to, st);
out:
	closedir(d);
	return rc;
}

/* pg_wal or pg_tblspc/<oid> as a link: the base gets a real directory holding its target. */
static int copy_linked_dir(struct copy *c, const char *from, const char *to, const char *rel)
{
	char target[PATH_MAX];
	struct stat st;

	errno = 0;
	if (realpath(from, target) == NULL || stat(target, &st) != 0 || !S_ISDIR(st.st_mode)) {
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
	return copy_dir(c, target, to, rel, true, &st, is_tablespace_link(rel));
}

static int copy_entry(struct copy *c, const char *from, const char *to, const char *rel,
		      bool external)
{
	struct stat st;

	if (lstat(from, &st) != 0)
		return fail(c, errno, "cannot read", from);
	if (S_ISLNK(st.st_mode)) {
		if (c->follow && !external &&
		    (strcmp(rel, "pg_wal") == 0 || is_tablespace_link(rel)))
			return copy_linked_dir(c, from, to, rel);
		return keep_link(c, from, to, rel, &st);
	}
	if (S_ISDIR(st.st_mode))
		return copy_dir(c, from, to, rel, external, &st, false);
	if (S_ISREG(st.st_mode))
		return copy_file(c, from, to, &st);
	return 0; /* sockets, fifos, devices: a data directory has none worth keeping */
}

static int read_version(struct copy *c)
{
	char path[PATH_MAX + 16], version[16] = "";
	FILE *f;

	snprintf(path, sizeof(path), "%s/PG_VERSION", c->root);
	f = fopen(path, "re");
	if (f == NULL || fgets(version, sizeof(version), f) == NULL) {
		if (f != NULL)
			fclose(f);
		snprintf(c->err, c->errlen, "%s is not a Postgres data directory (no PG_VERSION)",
			 c->root);
		return -ENOENT;
	}
	fclose(f);
	version[strcspn(version, "\r\n")] = '\0';
	snprintf(c->version_dir, sizeof(c->version_dir), "PG_%s_", version);
	return 0;
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
	struct stat st;
	int rc, fd;

	if (realpath(src, c.root) == NULL || stat(c.root, &st) != 0)
		return fail(&c, errno, "cannot read", src);
	c.owner = st.st_uid;
	rc = read_version(&c);
	if (rc != 0)
		return rc;
	c.counting = true;
	rc = copy_dir(&c, c.root, dst, "", false, &st, false);
	if (rc != 0)
		return rc;
	if (statvfs(dst, &sv) == 0 && (unsigned long long)c.total + (64ull << 20) >
					  (unsigned long long)sv.f_bavail * sv.f_frsize) {
		snprintf(err, errlen,
			 "not enough disk for the base: %s holds %lld MiB, %s has %llu MiB free; "
			 "free some space or pick another --state",
			 c.root, c.total >> 20, dst,
			 (unsigned long long)sv.f_bavail * sv.f_frsize >> 20);
		return -ENOSPC;
	}
	c.counting = false;
	rc = copy_dir(&c, c.root, dst, "", false, &st, false);
	if (rc != 0)
		return rc;
	tick(&c, true);
	fd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || syncfs(fd) != 0) {
		rc = fail(&c, errno, "cannot flush the copy in", dst);
		if (fd >= 0)
			close(fd);
		return rc;
	}
	close(fd);
	return 0;
}

int rift_base_check_links(const char *datadir, char *err, size_t errlen)
{
	struct copy c = { .counting = true, .err = err, .errlen = errlen };
	struct stat st;

	if (realpath(datadir, c.root) == NULL || stat(c.root, &st) != 0)
		return fail(&c, errno, "cannot read", datadir);
	return copy_dir(&c, c.root, c.root, "", false, &st, false);
}

int rift_base_adopt_tablespaces(const char *datadir, const char *mapdir, char *err, size_t errlen)
{
	char dir[PATH_MAX], map_real[PATH_MAX];
	struct copy c = { .err = err, .errlen = errlen };
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if (realpath(mapdir, map_real) == NULL)
		return errno == ENOENT ? 0 : fail(&c, errno, "cannot read", mapdir);
	snprintf(dir, sizeof(dir), "%s/pg_tblspc", datadir);
	d = opendir(dir);
	if (d == NULL)
		return errno == ENOENT ? 0 : fail(&c, errno, "cannot read the directory", dir);
	while ((de = readdir(d)) != NULL) {
		char link[PATH_MAX], real[PATH_MAX];
		struct stat st;
		if ((size_t)snprintf(link, sizeof(link), "%s/%s", dir, de->d_name) >=
			sizeof(link) ||
		    lstat(link, &st) != 0 || !S_ISLNK(st.st_mode))
			continue;
		if (realpath(link, real) == NULL || !inside(map_real, real))
			continue; /* rift_base_check_links refuses it afterwards */
		if (unlink(link) != 0 || rename(real, link) != 0) {
			rc = fail(&c, errno, "cannot move the tablespace into", link);
			goto out;
		}
	}
	if (rmdir(map_real) != 0 && errno != ENOENT)
		rc = fail(&c, errno, "cannot remove", map_real);
out:
	closedir(d);
	return rc;
}
