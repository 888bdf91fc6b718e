/* datadir.c — riftd's few touches of a branch's data directory, none through a planted link. */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rift/datadir.h"
#include "rift/log.h"

/* An older riftd prepended these two lines to the branch's own pg_hba.conf. */
#define HBA_MARK "# rift: local trust for riftd's own 0700 socket directory"

static const char rift_lines[] = HBA_MARK "\nlocal all all trust\n";
static const char own_intro[] = "# rift: the branch's own pg_hba.conf, as it was when its server "
				"started (edits take effect at the next start)\n";
static const char strict_default[] =
    "# rift: the branch's pg_hba.conf could not be used safely (riftd's log says why); strict "
    "default:\n"
    "host all all 127.0.0.1/32 scram-sha-256\n"
    "host all all ::1/128 scram-sha-256\n";

/* Every open below the mount root: never follow a link, never block on a FIFO, never leak. */
#define AT_FLAGS (O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)

int rift_datadir_open(const char *mountpoint)
{
	int fd = open(mountpoint, O_RDONLY | O_DIRECTORY | AT_FLAGS);

	return fd < 0 ? -errno : fd;
}

/* datadir.h: a link is removed as a link; nothing is followed even when entries are swapped. */
int rift_datadir_remove(int at, const char *name, int depth)
{
	struct dirent *de;
	int fd, rc = 0, pass;
	DIR *d;

	fd = openat(at, name, O_RDONLY | O_DIRECTORY | AT_FLAGS);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno != ENOTDIR && errno != ELOOP)
			return -errno;
		if (unlinkat(at, name, 0) != 0 && errno != ENOENT)
			return -errno;
		return 0;
	}
	d = fdopendir(fd);
	if (d == NULL) {
		rc = -errno;
		close(fd);
		return rc;
	}
	/* a directory listing may skip entries removed while it is read: look again */
	for (pass = 0; pass < 3 && depth > 0; pass++) {
		bool any = false;
		rewinddir(d);
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			any = true;
			rc = rift_datadir_remove(dirfd(d), de->d_name, depth - 1);
			if (rc != 0)
				goto out;
		}
		if (!any)
			break;
	}
out:
	closedir(d);
	if (rc == 0 && unlinkat(at, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
		rc = -errno;
	return rc;
}

/* A branch never replays its parent's replication: inherited slots would pin WAL forever. Done
 * before the server starts, because a slot directory without its state file (or slots with a
 * lowered wal_level) keeps Postgres from starting at all, which SQL after the start cannot fix. */
static int drop_slots(int rootfd, const char *branch, uid_t uid, gid_t gid, char *err,
		      size_t errlen)
{
	struct dirent *de;
	int fd, rc = 0, dropped = 0;
	DIR *d;

	fd = openat(rootfd, "pg_replslot", O_RDONLY | O_DIRECTORY | AT_FLAGS);
	if (fd < 0 && (errno == ENOTDIR || errno == ELOOP || errno == ENOENT)) {
		if (errno != ENOENT)
			LOG_WARN("instance",
				 "branch %s: pg_replslot is not a directory (a symbolic link?); "
				 "replaced by an empty one",
				 branch);
		rc = rift_datadir_remove(rootfd, "pg_replslot", 0);
		if (rc == 0 && mkdirat(rootfd, "pg_replslot", 0700) != 0 && errno != EEXIST)
			rc = -errno;
		if (rc == 0) {
			fd = openat(rootfd, "pg_replslot", O_RDONLY | O_DIRECTORY | AT_FLAGS);
			if (fd < 0 || fchown(fd, uid, gid) != 0 || fchmod(fd, 0700) != 0)
				rc = -errno;
			if (fd >= 0)
				close(fd);
		}
		goto out;
	}
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	d = fdopendir(fd);
	if (d == NULL) {
		rc = -errno;
		close(fd);
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		rc = rift_datadir_remove(dirfd(d), de->d_name, 2);
		if (rc != 0)
			break;
		dropped++;
	}
	closedir(d);
	/* names are the branch's: counted, never logged (they may hold newlines) */
	if (dropped > 0)
		LOG_INFO("instance", "branch %s: dropped %d inherited replication slot(s)", branch,
			 dropped);
out:
	if (rc != 0)
		snprintf(err, errlen,
			 "cannot clear the replication slots (pg_replslot) of branch \"%s\": %s "
			 "(riftd's log may say more; rift reset %s starts it afresh)",
			 branch, strerror(-rc), branch);
	return rc;
}

int rift_datadir_prepare(int rootfd, const char *branch, uid_t uid, gid_t gid, char *err,
			 size_t errlen)
{
	static const char *const stale[] = { "postmaster.pid", "standby.signal",
					     "recovery.signal" };
	size_t i;
	int rc;

	for (i = 0; i < sizeof(stale) / sizeof(stale[0]); i++) {
		rc = rift_datadir_remove(rootfd, stale[i], 2);
		if (rc != 0) {
			snprintf(err, errlen,
				 "cannot remove %s from branch \"%s\" before its server starts: %s "
				 "(rift reset %s starts it afresh)",
				 stale[i], branch, strerror(-rc), branch);
			return rc;
		}
	}
	return drop_slots(rootfd, branch, uid, gid, err, errlen);
}

/* Reads the branch's pg_hba.conf without following a link or blocking on a FIFO: a regular
 * file of at most RIFT_HBA_MAX_BYTES, no NUL byte. 0 with *out (malloc'ed, NUL-terminated);
 * else -errno and *why saying what is wrong with it. */
static int read_branch_hba(int rootfd, char **out, size_t *len, char *why, size_t whylen)
{
	char *buf = NULL;
	struct stat st;
	size_t n = 0;
	ssize_t k;
	int fd, rc = 0;

	*out = NULL;
	fd = openat(rootfd, "pg_hba.conf", O_RDONLY | AT_FLAGS);
	if (fd < 0) {
		rc = -errno;
		snprintf(why, whylen, "%s",
			 errno == ELOOP    ? "is a symbolic link"
			 : errno == ENOENT ? "is missing"
					   : strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		snprintf(why, whylen, "cannot be examined: %s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		snprintf(why, whylen, "is not a regular file");
		goto out;
	}
	if (st.st_size > RIFT_HBA_MAX_BYTES) {
		rc = -EFBIG;
		snprintf(why, whylen, "is larger than %d bytes", RIFT_HBA_MAX_BYTES);
		goto out;
	}
	buf = malloc(RIFT_HBA_MAX_BYTES + 2);
	if (buf == NULL) {
		rc = -ENOMEM;
		snprintf(why, whylen, "cannot be read: out of memory");
		goto out;
	}
	/* it may grow while read: stop one byte past the cap */
	while (n <= RIFT_HBA_MAX_BYTES) {
		k = read(fd, buf + n, RIFT_HBA_MAX_BYTES + 1 - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			rc = -errno;
			snprintf(why, whylen, "cannot be read: %s", strerror(errno));
			goto out;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	if (n > RIFT_HBA_MAX_BYTES) {
		rc = -EFBIG;
		snprintf(why, whylen, "is larger than %d bytes", RIFT_HBA_MAX_BYTES);
		goto out;
	}
	if (memchr(buf, '\0', n) != NULL) {
		rc = -EINVAL;
		snprintf(why, whylen, "holds a NUL byte (not a text file)");
		goto out;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}

char *rift_datadir_compose_hba(const char *data, size_t len)
{
	size_t cap, used;
	char *text;

	/* an older riftd's lines at the top of the branch's file: ours come first anyway */
	if (data != NULL && len >= sizeof(rift_lines) - 1 &&
	    memcmp(data, rift_lines, sizeof(rift_lines) - 1) == 0) {
		data += sizeof(rift_lines) - 1;
		len -= sizeof(rift_lines) - 1;
	}
	cap = sizeof(rift_lines) + sizeof(own_intro) + sizeof(strict_default) + len + 2;
	text = malloc(cap);
	if (text == NULL)
		return NULL;
	memcpy(text, rift_lines, sizeof(rift_lines) - 1);
	used = sizeof(rift_lines) - 1;
	if (data == NULL) {
		memcpy(text + used, strict_default, sizeof(strict_default) - 1);
		used += sizeof(strict_default) - 1;
	} else {
		memcpy(text + used, own_intro, sizeof(own_intro) - 1);
		used += sizeof(own_intro) - 1;
		memcpy(text + used, data, len);
		used += len;
		if (len > 0 && data[len - 1] != '\n')
			text[used++] = '\n';
	}
	assert(used < cap);
	text[used] = '\0';
	return text;
}

/* Writes all of text to fd. 0 or -errno. */
static int write_all(int fd, const char *text, size_t len)
{
	while (len > 0) {
		ssize_t k = write(fd, text, len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		text += k;
		len -= (size_t)k;
	}
	return 0;
}

int rift_datadir_write_hba(int rootfd, const char *branch, const char *hbafile, gid_t gid,
			   bool closed, char *err, size_t errlen)
{
	char dir[4096], tmp[300], why[128] = "";
	const char *slash = strrchr(hbafile, '/'), *name;
	char *own = NULL, *text = NULL;
	size_t ownlen = 0;
	struct stat st;
	int dfd = -1, fd = -1, rc;

	if (slash == NULL || slash == hbafile || (size_t)(slash - hbafile) >= sizeof(dir) ||
	    strlen(slash + 1) + 8 > sizeof(tmp)) {
		snprintf(err, errlen, "bad path for the hba file of branch \"%s\": %s", branch,
			 hbafile);
		return -EINVAL;
	}
	name = slash + 1;
	memcpy(dir, hbafile, (size_t)(slash - hbafile));
	dir[slash - hbafile] = '\0';
	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	if (mkdir(dir, 0711) != 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		return rc;
	}
	/* the temporary file and the rename are safe only where nobody else can add names */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0 || fstat(dfd, &st) != 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot open %s: %s", dir, strerror(errno));
		goto out;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
		rc = -EPERM;
		snprintf(err, errlen,
			 "%s must be owned by riftd's user and writable by it alone (chown root "
			 "%s; chmod 0711 %s)",
			 dir, dir, dir);
		goto out;
	}
	if (closed) /* riftd's own line only: no TCP login at all */
		text = strdup(rift_lines);
	else if (read_branch_hba(rootfd, &own, &ownlen, why, sizeof(why)) != 0)
		LOG_WARN(
		    "instance",
		    "branch %s: its pg_hba.conf %s, so riftd does not use it; its server "
		    "starts with a strict default (scram-sha-256 from 127.0.0.1 and ::1). Make "
		    "pg_hba.conf a regular file of at most %d bytes in the branch's data "
		    "directory, then restart the branch (rift stop %s)",
		    branch, why, RIFT_HBA_MAX_BYTES, branch);
	if (!closed)
		text = rift_datadir_compose_hba(own, ownlen);
	if (text == NULL) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory composing %s", hbafile);
		goto out;
	}
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST && unlinkat(dfd, tmp, 0) == 0) /* left by a crash */
		fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot create %s/%s: %s", dir, tmp, strerror(errno));
		goto out;
	}
	rc = write_all(fd, text, strlen(text));
	if (rc == 0 && (fchown(fd, (uid_t)-1, gid) != 0 || fchmod(fd, 0640) != 0 || fsync(fd) != 0))
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	fd = -1;
	if (rc == 0 && renameat(dfd, tmp, dfd, name) != 0)
		rc = -errno;
	if (rc != 0) {
		snprintf(err, errlen, "cannot write %s: %s", hbafile, strerror(-rc));
		unlinkat(dfd, tmp, 0);
	}
out:
	if (dfd >= 0)
		close(dfd);
	free(text);
	free(own);
	return rc;
}
