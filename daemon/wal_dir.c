/* wal_dir.c — branches' pg_wal beside the store: made, copied, handed to a uid, removed. */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "rift/base_copy.h"
#include "rift/datadir.h"
#include "rift/log.h"
#include "rift/pg_control.h"
#include "rift/store.h"
#include "rift/tree_remove.h"
#include "rift/wal_dir.h"

/* Every open of something a branch's user may have planted: no link, no blocking FIFO. */
#define AT_FLAGS (O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)

/* A pg_wal holds segments since the last checkpoint: 64 at the default max_wal_size. These
 * bounds only stop a planted directory from making riftd copy, walk or hold descriptors
 * without end (every file of a copy is held open at once, see copy_dir). */
#define WAL_MAX_FILES   1024
#define WAL_MAX_ENTRIES 8192         /* names of any kind in one directory */
#define WAL_MAX_FILE    (1ull << 30) /* Postgres's largest wal_segment_size */
#define WAL_MAX_TOTAL   (16ull << 30)
#define WAL_CHUNK       (256u << 10)
#define WAL_OLD         "pg_wal.rift-old" /* the view's own pg_wal while it is moved out */
#define SEG_NAME_LEN    24
/* Only root can set trusted.* attributes, so a branch's user can forge neither. */
#define MARK_COPY        "trusted.rift.wal" /* on every file riftd wrote: root's own */
#define MARK_UID         "trusted.rift.uid" /* on a b- directory: the uid it was last given to */
#define HISTORY_NAME_LEN 16                 /* 8 hex digits and ".history" */
#define PG_TEMP          "pgsql_tmp"        /* base/pgsql_tmp: sort and hash spills */

/* Who a stopped branch's directory belongs to. */
static const struct rift_wal_owner root_owner = { 0, 0, 0, 0 };

/*
 * Which files in a directory the branch's user could write may be copied or handed on: files
 * riftd wrote (root's, with MARK_COPY) and files of the uid the directory was last given to
 * (MARK_UID). Anything else (a hard link to root's or another uid's file, which the branch's user
 * can make where fs.protected_hardlinks is off, and whose other names may since be gone) is not
 * the branch's. Where the filesystem keeps no xattrs, the servers' uids lo..hi and root count.
 */
struct trust {
	bool all; /* riftd's own directory (l-) or a FUSE view: no host file can be linked in */
	bool have_uid; /* MARK_UID was read */
	uid_t uid;
	bool no_xattr; /* the filesystem keeps none: fall back to lo..hi */
	uid_t lo, hi;
};

static const struct trust trust_all = { .all = true };

static void trust_of_dir(int dirfd, uid_t lo, uid_t hi, struct trust *t)
{
	uint32_t v;

	memset(t, 0, sizeof(*t));
	t->lo = lo;
	t->hi = hi;
	if (fgetxattr(dirfd, MARK_UID, &v, sizeof(v)) == (ssize_t)sizeof(v)) {
		t->have_uid = true;
		t->uid = (uid_t)v;
	} else if (errno == ENOTSUP) {
		t->no_xattr = true;
	}
}

/* st describes the regular file open at fd. */
static bool trusted_file(int fd, const struct stat *st, const struct trust *t)
{
	char v;

	if (!S_ISREG(st->st_mode) || st->st_nlink != 1)
		return false;
	if (t->all)
		return true;
	if (t->no_xattr)
		return st->st_uid == 0 || (st->st_uid >= t->lo && st->st_uid <= t->hi);
	if (st->st_uid != 0)
		return t->have_uid && st->st_uid == t->uid;
	return fgetxattr(fd, MARK_COPY, &v, sizeof(v)) == 1;
}

static bool trusted_dir(const struct stat *st, const struct trust *t)
{
	if (t->all || st->st_uid == 0)
		return true;
	if (t->no_xattr)
		return st->st_uid >= t->lo && st->st_uid <= t->hi;
	return t->have_uid && st->st_uid == t->uid;
}

int rift_wal_root(const char *state, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/wal", state);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static bool all_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return true;
}

/* Segments and timeline history files: all Postgres needs to recover and go on. */
static bool is_segment(const char *name)
{
	return strlen(name) == SEG_NAME_LEN && all_hex(name, SEG_NAME_LEN);
}

static bool wal_file_name(const char *name)
{
	return is_segment(name) || (strlen(name) == HISTORY_NAME_LEN && all_hex(name, 8) &&
				    strcmp(name + 8, ".history") == 0);
}

/* <walroot> (with create, made root's 0711 when missing); its descriptor or -errno. Only what
 * makes WAL directories creates it: a riftd stopping while its state directory is removed must
 * not bring a piece of it back. */
static int open_root(const char *walroot, bool create, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	if (create && mkdir(walroot, 0711) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", walroot, strerror(errno));
		return -errno;
	}
	fd = open(walroot, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int rc = -errno;
		snprintf(err, errlen, "cannot open %s: %s", walroot, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) != 0 || st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
		snprintf(err, errlen,
			 "%s must be a directory of riftd's user that no one else can write; fix "
			 "its owner and mode (chown root; chmod 0711)",
			 walroot);
		close(fd);
		return -EPERM;
	}
	if ((st.st_mode & 07777) != 0711 && fchmod(fd, 0711) != 0) {
		int rc = -errno;
		snprintf(err, errlen, "cannot chmod %s: %s", walroot, strerror(errno));
		close(fd);
		return rc;
	}
	return fd;
}

static void dir_name(char *buf, size_t len, char kind, uint64_t id)
{
	snprintf(buf, len, "%c-%016" PRIx64, kind, id);
}

static bool is_dir_at(int at, const char *name)
{
	struct stat st;

	return fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/* A directory stream over a copy of fd (fd stays open for *at calls); NULL with errno set. */
static DIR *open_dir_dup(int fd)
{
	int dupfd = dup(fd), e;
	DIR *d = dupfd >= 0 ? fdopendir(dupfd) : NULL;

	if (d == NULL && dupfd >= 0) {
		e = errno;
		close(dupfd);
		errno = e;
	}
	return d;
}

static bool all_zero(const unsigned char *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* Copies the open regular file src into a new file name in dst: data extents only, all-zero
 * chunks left as holes (Postgres's segments start sparse: wal_init_zero is off), then synced. */
static int copy_file(int src, off_t size, int dst, const char *name, unsigned char *buf)
{
	off_t pos = 0;
	int out, rc = 0;

	out = openat(dst, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return -errno;
	if (fsetxattr(out, MARK_COPY, "1", 1, 0) != 0 && errno != ENOTSUP)
		rc = -errno;
	while (pos < size && rc == 0) {
		off_t data = lseek(src, pos, SEEK_DATA), hole;
		if (data < 0) {
			if (errno == ENXIO)
				break; /* only a hole is left */
			data = pos;    /* no SEEK_DATA here: all of it is data */
		}
		hole = lseek(src, data, SEEK_HOLE);
		if (hole < 0 || hole > size)
			hole = size;
		for (pos = data; pos < hole && rc == 0;) {
			size_t want =
			    (size_t)(hole - pos) < WAL_CHUNK ? (size_t)(hole - pos) : WAL_CHUNK;
			ssize_t n = pread(src, buf, want, pos);
			if (n < 0) {
				rc = -errno;
				break;
			}
			if (n == 0) {
				pos = hole; /* the file shrank under us: what is left reads as zeros
					     */
				break;
			}
			if (!all_zero(buf, (size_t)n)) {
				ssize_t w = pwrite(out, buf, (size_t)n, pos);
				if (w != n)
					rc = w < 0 ? -errno : -EIO;
			}
			pos += n;
		}
		if (hole > pos)
			pos = hole;
	}
	if (rc == 0 && ftruncate(out, size) != 0)
		rc = -errno;
	if (rc == 0 && fsync(out) != 0)
		rc = -errno;
	close(out);
	return rc;
}

struct wal_entry {
	char name[SEG_NAME_LEN + 1];
	int fd;
	off_t size;
};

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct wal_entry *)a)->name, ((const struct wal_entry *)b)->name);
}

/* 8 hex digits of a segment name as a number. */
static uint32_t hex8(const char *s)
{
	char tmp[9];

	memcpy(tmp, s, 8);
	tmp[8] = '\0';
	return (uint32_t)strtoul(tmp, NULL, 16);
}

/*
 * The segments of the newest timeline must follow each other with no gap: a checkpoint that
 * removed one while the directory was read would leave one, and recovery would stop early at
 * it, silently, with data newer than the WAL. Names sort by timeline, then position.
 */
static bool contiguous(const struct wal_entry *v, size_t n, uint64_t seg_per_id)
{
	size_t i, last = n;
	uint64_t prev = 0;
	bool first = true;

	for (i = n; i-- > 0;)
		if (is_segment(v[i].name)) {
			last = i;
			break;
		}
	if (last == n)
		return true;
	for (i = 0; i <= last; i++) {
		uint64_t pos;
		if (!is_segment(v[i].name) || hex8(v[i].name) != hex8(v[last].name))
			continue;
		pos = (uint64_t)hex8(v[i].name + 8) * seg_per_id + hex8(v[i].name + 16);
		if (!first && pos != prev + 1)
			return false;
		prev = pos;
		first = false;
	}
	return true;
}

/*
 * Whether every segment from the one holding the checkpoint's redo point to the one holding its
 * record is among the n sorted entries, on any timeline. A checkpoint that ended after the
 * branch point removes the oldest segments whole, which leaves no gap for contiguous() to see;
 * recovery would then not find where to start.
 */
static bool reaches_back(const struct wal_entry *v, size_t n, uint64_t seg_size,
			 const struct rift_pg_checkpoint *need)
{
	uint64_t seg_per_id = (1ull << 32) / seg_size, want = need->redo / seg_size;
	uint64_t last = need->checkpoint / seg_size;
	size_t i;

	if (last - want >= n) /* more segments than files: they cannot all be there */
		return false;
	for (i = 0; i < n && want <= last; i++) {
		uint64_t pos;
		if (!is_segment(v[i].name))
			continue;
		pos = (uint64_t)hex8(v[i].name + 8) * seg_per_id + hex8(v[i].name + 16);
		if (pos == want) {
			want++;
			i = (size_t)-1; /* timelines sort first: look again from the start */
		}
	}
	return want > last;
}

/*
 * Copies the WAL files of the directory src into a new directory dst_name under parent (root's,
 * 0700, built under a temporary name and renamed into place once synced). All files are opened
 * before any is copied, so a segment removed meanwhile is either whole in the copy or missing,
 * and a gap fails with -EAGAIN, as does a copy that no longer reaches back to need's redo point
 * (need NULL: not checked). Anything else in src (links, FIFOs, other names) is skipped.
 */
static int copy_dir(int src, const struct trust *t, int parent, const char *dst_name,
		    const struct rift_pg_checkpoint *need, const char *what, char *err,
		    size_t errlen)
{
	static atomic_uint seq;
	struct wal_entry *v = calloc(WAL_MAX_FILES, sizeof(*v));
	unsigned char *buf = malloc(WAL_CHUNK);
	char tmp[64];
	size_t n = 0, i, skipped = 0, seen = 0;
	uint64_t total = 0, seg_size = 0;
	struct dirent *de;
	int dst = -1, rc = 0;
	bool made = false, redo_gone = false, seg_ok;
	DIR *d = NULL;

	/* a name of its own: a client starting a new branch may copy its WAL while the create
	 * still does */
	snprintf(tmp, sizeof(tmp), "%s.tmp%d-%u", dst_name, (int)getpid(),
		 atomic_fetch_add(&seq, 1));
	if (v == NULL || buf == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	d = open_dir_dup(src);
	if (d == NULL) {
		rc = -errno;
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		int fd;
		if (++seen > WAL_MAX_ENTRIES) {
			rc = -EFBIG;
			goto out;
		}
		if (!wal_file_name(de->d_name)) {
			skipped += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
				   strcmp(de->d_name, "archive_status") != 0;
			continue;
		}
		if (n == WAL_MAX_FILES) {
			rc = -EFBIG;
			goto out;
		}
		fd = openat(src, de->d_name, O_RDONLY | AT_FLAGS);
		if (fd < 0) {
			if (errno == ENOENT)
				continue; /* removed meanwhile: contiguous() decides */
			if (errno == ELOOP || errno == ENXIO) {
				skipped++;
				continue;
			}
			rc = -errno;
			goto out;
		}
		if (fstat(fd, &st) != 0 || !trusted_file(fd, &st, t) ||
		    (uint64_t)st.st_size > WAL_MAX_FILE) {
			close(fd);
			skipped++;
			continue;
		}
		if (is_segment(de->d_name))
			seg_size =
			    (uint64_t)st.st_size > seg_size ? (uint64_t)st.st_size : seg_size;
		total += (uint64_t)st.st_size;
		if (total > WAL_MAX_TOTAL) {
			close(fd);
			rc = -EFBIG;
			goto out;
		}
		snprintf(v[n].name, sizeof(v[n].name), "%s", de->d_name);
		v[n].fd = fd;
		v[n].size = st.st_size;
		n++;
	}
	qsort(v, n, sizeof(*v), cmp_entry);
	/* positions come from names only with a real wal_segment_size (a power of two): segments
	 * per 4 GiB "log id" are 0x100000000 / wal_segment_size */
	seg_ok = seg_size != 0 && (seg_size & (seg_size - 1)) == 0;
	if (seg_ok && !contiguous(v, n, (1ull << 32) / seg_size)) {
		rc = -EAGAIN;
		goto out;
	}
	if (seg_ok && need != NULL && !reaches_back(v, n, seg_size, need)) {
		redo_gone = true;
		rc = -EAGAIN;
		goto out;
	}
	rc = rift_datadir_remove(parent, tmp, 2); /* a killed riftd's half copy */
	if (rc == 0 && mkdirat(parent, tmp, 0700) != 0)
		rc = -errno;
	made = rc == 0;
	if (rc == 0 && (dst = openat(parent, tmp, O_RDONLY | O_DIRECTORY | AT_FLAGS)) < 0)
		rc = -errno;
	if (rc == 0 && mkdirat(dst, "archive_status", 0700) != 0)
		rc = -errno;
	for (i = 0; i < n && rc == 0; i++)
		rc = copy_file(v[i].fd, v[i].size, dst, v[i].name, buf);
	if (rc == 0 && fsync(dst) != 0)
		rc = -errno;
	if (rc == 0 && renameat(parent, tmp, parent, dst_name) != 0) {
		rc = -errno;
		/* the other copy (of the same source) is in place: ours goes */
		if (rc == -ENOTEMPTY || rc == -EEXIST)
			rc = rift_datadir_remove(parent, tmp, 2);
	}
	if (rc == 0 && fsync(parent) != 0)
		rc = -errno;
	if (rc == 0 && skipped > 0)
		LOG_INFO("wal", "%s: %zu entr%s that are not WAL files left out of the copy", what,
			 skipped, skipped == 1 ? "y" : "ies");
out:
	if (rc != 0) {
		snprintf(err, errlen, "cannot copy the WAL of %s: %s", what,
			 redo_gone ? "the segments from its checkpoint's redo point on are no "
				     "longer all there (a checkpoint ended meanwhile); retry"
			 : rc == -EAGAIN
			     ? "a segment was removed while it was copied (a checkpoint "
			       "ended meanwhile); retry"
			 : rc == -EFBIG ? "its pg_wal holds more files or bytes than any WAL "
					  "directory should"
					: strerror(-rc));
		if (made && rift_datadir_remove(parent, tmp, 2) != 0)
			LOG_WARN("wal", "cannot remove a half copy of the WAL of %s", what);
	}
	for (i = 0; i < n; i++)
		close(v[i].fd);
	if (dst >= 0)
		close(dst);
	if (d != NULL)
		closedir(d);
	free(v);
	free(buf);
	return rc;
}

/*
 * Hands what the directory fd holds, depth levels down, to o->uid:o->gid. Each entry is pinned
 * with O_PATH|O_NOFOLLOW and examined before anything changes: directories and trusted regular
 * files only (struct trust), their owner changed through a descriptor of that very inode; links,
 * FIFOs, devices and files that are not the branch's keep their owners.
 */
static int give_entries(int fd, const struct rift_wal_owner *o, const struct trust *t, int depth)
{
	struct dirent *de;
	size_t seen = 0;
	int rc = 0;
	DIR *d = open_dir_dup(fd);

	if (d == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL && rc == 0) {
		struct stat pinned, st;
		char proc[64];
		int e, f;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (++seen > WAL_MAX_ENTRIES) {
			rc = -EFBIG;
			break;
		}
		e = openat(dirfd(d), de->d_name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (e < 0)
			continue; /* removed meanwhile */
		if (fstat(e, &pinned) != 0) {
			close(e);
			continue;
		}
		f = -1;
		if (S_ISDIR(pinned.st_mode) && depth > 0 && trusted_dir(&pinned, t))
			f = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | AT_FLAGS);
		else if (S_ISREG(pinned.st_mode) && pinned.st_nlink == 1) {
			/* the pinned inode itself, opened to read its mark: never the name again */
			snprintf(proc, sizeof(proc), "/proc/self/fd/%d", e);
			f = open(proc, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		}
		if (f >= 0 && fstat(f, &st) == 0 && st.st_ino == pinned.st_ino &&
		    st.st_dev == pinned.st_dev) {
			if (S_ISDIR(st.st_mode))
				rc = give_entries(f, o, t, depth - 1);
			if (rc == 0 && (S_ISDIR(st.st_mode) || trusted_file(f, &st, t)) &&
			    (fchown(f, o->uid, o->gid) != 0 ||
			     (S_ISDIR(st.st_mode) && fchmod(f, 0700) != 0)))
				rc = -errno;
		}
		if (f >= 0)
			close(f);
		close(e);
	}
	closedir(d);
	return rc;
}

/*
 * Gives the directory name under parent to o: with depth > 0 its entries first, while it is
 * still root's 0700 and no process of the branch can change them, then the directory itself,
 * which then records the uid (MARK_UID) whose files it holds from now on.
 */
static int give_to(int parent, const char *name, const struct rift_wal_owner *o, int depth)
{
	struct trust t;
	uint32_t v = (uint32_t)o->uid;
	int fd, rc = 0;

	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | AT_FLAGS);
	if (fd < 0)
		return -errno;
	trust_of_dir(fd, o->lo, o->hi, &t);
	if (depth > 0)
		rc = give_entries(fd, o, &t, depth - 1);
	if (rc == 0 && (fchown(fd, o->uid, o->gid) != 0 || fchmod(fd, 0700) != 0))
		rc = -errno;
	if (rc == 0 && o->uid != 0 && fsetxattr(fd, MARK_UID, &v, sizeof(v), 0) != 0 &&
	    errno != ENOTSUP)
		rc = -errno;
	close(fd);
	return rc;
}

/* Points name in the view directory at at target, replacing whatever is there (removed as a
 * link or as a tree depth levels deep, never followed). */
static int link_at(int at, const char *name, const char *target, int depth)
{
	char cur[4200];
	ssize_t n = readlinkat(at, name, cur, sizeof(cur) - 1);
	int rc;

	if (n >= 0) {
		cur[n] = '\0';
		if (strcmp(cur, target) == 0)
			return 0;
	}
	rc = rift_datadir_remove(at, name, depth);
	if (rc == 0 && symlinkat(target, at, name) != 0)
		rc = -errno;
	return rc;
}

/* A size-limited branch keeps its WAL in the store, where the limit counts it: a WAL directory
 * it had before the limit was set goes back into the view, and b- goes. */
static int keep_in_view(int wfd, const char *walroot, int rootfd, const char *bname,
			const char *lname, const struct rift_wal_owner *o, const char *what,
			char *err, size_t errlen)
{
	struct trust t = trust_all;
	char path[4200];
	int src, rc;

	snprintf(path, sizeof(path), "%s/%s", walroot, bname);
	if (is_dir_at(rootfd, "pg_wal")) {
		/* a killed riftd may have left b- behind after moving it back */
		rc = rift_tree_remove(path);
		if (rc != 0)
			LOG_WARN("wal", "cannot remove %s: %s", path, strerror(-rc));
		return 0;
	}
	src = openat(wfd, bname, O_RDONLY | O_DIRECTORY | AT_FLAGS);
	if (src >= 0)
		trust_of_dir(src, o->lo, o->hi, &t); /* the branch's own, written by its uid */
	else if (errno == ENOENT)
		src = openat(wfd, lname, O_RDONLY | O_DIRECTORY | AT_FLAGS);
	if (src < 0) {
		snprintf(err, errlen,
			 "%s has no WAL: its pg_wal is not a directory and riftd keeps no copy for "
			 "it; rift reset makes it afresh from its parent",
			 what);
		return -ENOENT;
	}
	/* after a crash between these steps the next start finds no pg_wal and copies again */
	rc = rift_datadir_remove(rootfd, "pg_wal", 2);
	if (rc == 0)
		rc = copy_dir(src, &t, rootfd, "pg_wal", NULL, what, err, errlen);
	if (rc == 0 && fsync(rootfd) != 0)
		rc = -errno;
	close(src);
	if (rc == 0) {
		int trc = rift_tree_remove(path);
		if (trc != 0)
			LOG_WARN("wal", "cannot remove %s: %s", path, strerror(-trc));
	}
	return rc;
}

int rift_wal_prepare(const char *walroot, int rootfd, const char *branch, uint64_t id,
		     uint64_t fork_layer, const struct rift_wal_owner *owner, bool in_store,
		     char *err, size_t errlen)
{
	char bname[64], lname[64], target[4200], what[128];
	int wfd, src = -1, rc = 0;

	assert(id != 0);
	err[0] = '\0';
	wfd = open_root(walroot, true, err, errlen);
	if (wfd < 0)
		return wfd;
	dir_name(bname, sizeof(bname), 'b', id);
	dir_name(lname, sizeof(lname), 'l', fork_layer);
	snprintf(what, sizeof(what), "branch \"%s\"", branch);
	if ((size_t)snprintf(target, sizeof(target), "%s/%s", walroot, bname) >= sizeof(target)) {
		snprintf(err, errlen, "the WAL directory path %s/%s is too long", walroot, bname);
		rc = -ENAMETOOLONG;
		goto out;
	}
	if (in_store) {
		rc = keep_in_view(wfd, walroot, rootfd, bname, lname, owner, what, err, errlen);
		goto out;
	}
	if (is_dir_at(rootfd, "pg_wal")) {
		/* WAL still in the store (a new branch of the base, or one made by an older rift):
		 * move it out; a b- directory here is a killed riftd's, never pointed at */
		rc = rift_tree_remove(target);
		if (rc == 0 &&
		    (src = openat(rootfd, "pg_wal", O_RDONLY | O_DIRECTORY | AT_FLAGS)) < 0)
			rc = -errno;
		if (rc == 0)
			rc = copy_dir(src, &trust_all, wfd, bname, NULL, what, err, errlen);
		if (rc == 0)
			rc = rift_datadir_remove(rootfd, WAL_OLD, 2);
		if (rc == 0 && renameat(rootfd, "pg_wal", rootfd, WAL_OLD) != 0)
			rc = -errno;
	} else if (!is_dir_at(wfd, bname)) {
		if (fork_layer != 0 && is_dir_at(wfd, lname)) {
			src = openat(wfd, lname, O_RDONLY | O_DIRECTORY | AT_FLAGS);
			rc = src < 0
				 ? -errno
				 : copy_dir(src, &trust_all, wfd, bname, NULL, what, err, errlen);
		} else if (is_dir_at(rootfd, WAL_OLD)) {
			/* riftd was killed between moving the view's pg_wal aside and linking it */
			src = openat(rootfd, WAL_OLD, O_RDONLY | O_DIRECTORY | AT_FLAGS);
			rc = src < 0
				 ? -errno
				 : copy_dir(src, &trust_all, wfd, bname, NULL, what, err, errlen);
		} else {
			snprintf(
			    err, errlen,
			    "branch \"%s\" has no WAL: its pg_wal is not a directory and riftd "
			    "keeps no copy for it (was riftd killed while the branch was being "
			    "made?); rift reset %s makes it afresh from its parent",
			    branch, branch);
			rc = -ENOENT;
			goto out;
		}
	}
	if (rc == 0)
		rc = link_at(rootfd, "pg_wal", target, 2);
	if (rc == 0)
		rc = rift_datadir_remove(rootfd, WAL_OLD, 2);
	/* the link must not come back as the directory after a crash while the copy it
	 * replaced is gone: the store syncs on a directory fsync */
	if (rc == 0 && fsync(rootfd) != 0)
		rc = -errno;
	if (rc == 0)
		rc = give_to(wfd, bname, owner, 2);
	if (rc != 0 && err[0] == '\0')
		snprintf(err, errlen,
			 "cannot prepare the WAL directory %s of branch \"%s\": %s (riftd's log "
			 "may say more; rift reset %s starts it afresh)",
			 target, branch, strerror(-rc), branch);
out:
	if (src >= 0)
		close(src);
	close(wfd);
	return rc;
}

/* A fresh name beside tname for it to be moved to: tname.<time>-<n>. */
static void aside_name(char *buf, size_t len, const char *tname)
{
	static atomic_uint seq;

	snprintf(buf, len, "%.64s.%lld-%u", tname, (long long)time(NULL),
		 atomic_fetch_add(&seq, 1));
}

/*
 * Takes t-<id> from its uid at once, whatever it holds: made root's 0700 (<walroot> is root's,
 * so nobody can swap the name meanwhile), then renamed aside, never over another name. What the
 * uid's processes still hold open inside stays theirs until riftd sweeps the uid; reap_temp
 * removes it after that. Constant time: a stop never waits on what the branch's user left.
 */
static void set_temp_aside(int wfd, const char *walroot, const char *tname)
{
	char aside[96];
	int fd = openat(wfd, tname, O_RDONLY | O_DIRECTORY | AT_FLAGS), tries;

	if (fd < 0) {
		if (errno != ENOENT)
			LOG_WARN("wal", "cannot open %s/%s: %s", walroot, tname, strerror(errno));
		return;
	}
	if (fchown(fd, 0, 0) != 0 || fchmod(fd, 0700) != 0)
		LOG_WARN("wal", "cannot make %s/%s root's: %s", walroot, tname, strerror(errno));
	close(fd);
	for (tries = 0; tries < 8; tries++) {
		aside_name(aside, sizeof(aside), tname);
		if (renameat2(wfd, tname, wfd, aside, RENAME_NOREPLACE) == 0)
			return;
		if (errno != EEXIST)
			break;
	}
	LOG_WARN("wal", "cannot move %s/%s aside: %s", walroot, tname, strerror(errno));
}

/*
 * Moves the lower part of the deepest chain of directories under wfd/name up beside it, as a new
 * name written to out: found along the first subdirectory at each level, cut TEMP_CUT levels
 * down, so what rift_tree_remove's depth bound left of name becomes removable.
 */
#define TEMP_CUT 32
static int cut_deep(int wfd, const char *name, char *out, size_t outlen)
{
	char sub[256], last[256] = "";
	int fd = openat(wfd, name, O_RDONLY | O_DIRECTORY | AT_FLAGS), parent = -1, level, rc;

	for (level = 0; fd >= 0 && level < TEMP_CUT; level++) {
		struct dirent *de;
		DIR *d = open_dir_dup(fd);
		if (d == NULL)
			break;
		sub[0] = '\0';
		while ((de = readdir(d)) != NULL)
			if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
			    (de->d_type == DT_DIR ||
			     (de->d_type == DT_UNKNOWN && is_dir_at(dirfd(d), de->d_name)))) {
				snprintf(sub, sizeof(sub), "%s", de->d_name);
				break;
			}
		closedir(d);
		if (sub[0] == '\0')
			break;
		if (parent >= 0)
			close(parent);
		parent = fd;
		memcpy(last, sub, sizeof(last));
		fd = openat(parent, sub, O_RDONLY | O_DIRECTORY | AT_FLAGS);
	}
	if (parent < 0) {
		rc = -ENOENT; /* no directory below: nothing deep to cut */
	} else {
		aside_name(out, outlen, name);
		rc = renameat2(parent, last, wfd, out, RENAME_NOREPLACE) == 0 ? 0 : -errno;
	}
	if (fd >= 0)
		close(fd);
	if (parent >= 0)
		close(parent);
	return rc;
}

/*
 * Removes wfd/name (a set-aside temporary directory: root's, its uid swept) however deep the
 * branch's user made it, cutting chains deeper than rift_tree_remove goes (cut_deep). Bounded:
 * at most TEMP_PENDING chains at once and TEMP_ROUNDS cuts; what is left stays, logged, for the
 * next reap.
 */
#define TEMP_PENDING 64
#define TEMP_ROUNDS  8192
static void remove_deep(int wfd, const char *walroot, const char *name)
{
	char pending[TEMP_PENDING][96], path[4200];
	size_t np = 1;
	int rounds = 0, rc = 0;

	snprintf(pending[0], sizeof(pending[0]), "%s", name);
	while (np > 0) {
		snprintf(path, sizeof(path), "%s/%s", walroot, pending[np - 1]);
		rc = rift_tree_remove(path);
		if (rc == 0) {
			np--;
			continue;
		}
		/* too deep: rift_tree_remove stops at its bound, and the directories above that
		 * are left not empty */
		if ((rc != -ELOOP && rc != -ENOTEMPTY) || np == TEMP_PENDING ||
		    rounds++ == TEMP_ROUNDS)
			break;
		/* the cut-off part goes below the current one: that is tried again first */
		memcpy(pending[np], pending[np - 1], sizeof(pending[0]));
		rc = cut_deep(wfd, pending[np], pending[np - 1], sizeof(pending[0]));
		if (rc != 0) {
			memcpy(pending[np - 1], pending[np], sizeof(pending[0]));
			break;
		}
		np++;
	}
	if (np > 0)
		LOG_WARN("wal", "cannot remove %s/%s: %s", walroot, pending[np - 1], strerror(-rc));
}

/* Removes every set-aside directory of t-<id> (tname), with all_ids those of every branch. */
static void reap_temp(int wfd, const char *walroot, const char *tname, bool all_ids)
{
	size_t n = strlen(tname), i, count = 0;
	char(*names)[96] = NULL;
	struct dirent *de;
	DIR *d = open_dir_dup(wfd);

	if (d == NULL)
		return;
	/* listed first, removed after: removing and renaming beside a readdir may skip names */
	names = calloc(TEMP_PENDING, sizeof(*names));
	while (names != NULL && count < TEMP_PENDING && (de = readdir(d)) != NULL) {
		bool ours = all_ids ? strncmp(de->d_name, "t-", 2) == 0
				    : strncmp(de->d_name, tname, n) == 0 && de->d_name[n] == '.';
		if (ours && strlen(de->d_name) < sizeof(names[0]))
			snprintf(names[count++], sizeof(names[0]), "%s", de->d_name);
	}
	closedir(d);
	for (i = 0; i < count; i++)
		remove_deep(wfd, walroot, names[i]);
	free(names);
}

/* Takes t-<id> (tname) from its uid and removes it and whatever earlier stops set aside. */
static void clear_temp(int wfd, const char *walroot, const char *tname)
{
	set_temp_aside(wfd, walroot, tname);
	reap_temp(wfd, walroot, tname, false);
}

int rift_wal_temp_prepare(const char *walroot, int rootfd, const char *branch, uint64_t id,
			  uid_t uid, gid_t gid, bool in_store, char *err, size_t errlen)
{
	char tname[64], target[4200];
	int wfd, basefd = -1, fd = -1, rc = 0;
	struct stat st;

	assert(id != 0);
	err[0] = '\0';
	wfd = open_root(walroot, true, err, errlen);
	if (wfd < 0)
		return wfd;
	dir_name(tname, sizeof(tname), 't', id);
	if ((size_t)snprintf(target, sizeof(target), "%s/%s", walroot, tname) >= sizeof(target)) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	basefd = openat(rootfd, "base", O_RDONLY | O_DIRECTORY | AT_FLAGS);
	if (basefd < 0) {
		rc = -errno;
		goto out;
	}
	/* whatever an earlier server left is garbage (Postgres removes its own at start); its
	 * uid was swept when it stopped, or at riftd's start */
	clear_temp(wfd, walroot, tname);
	if (in_store) {
		/* a size-limited branch's spills count against its limit: Postgres makes the
		 * directory in the view again when it needs one */
		char cur[8];
		if (readlinkat(basefd, PG_TEMP, cur, sizeof(cur)) >= 0)
			rc = rift_datadir_remove(basefd, PG_TEMP, 0);
		goto out;
	}
	if (mkdirat(wfd, tname, 0700) != 0 ||
	    (fd = openat(wfd, tname, O_RDONLY | O_DIRECTORY | AT_FLAGS)) < 0) {
		rc = -errno;
		goto out;
	}
	/* <walroot> is root's 0711: nobody else can have put anything at that name */
	if (fstat(fd, &st) != 0 || st.st_uid != geteuid() || !S_ISDIR(st.st_mode))
		rc = -EPERM;
	if (rc == 0 && (fchown(fd, uid, gid) != 0 || fchmod(fd, 0700) != 0))
		rc = -errno;
	/* pgsql_tmp holds fileset directories of files: depth 2, a little more for margin. A
	 * deeper tree there is the branch's own doing: its server spills into the view, as
	 * before, rather than not start. */
	if (rc == 0) {
		int lrc = link_at(basefd, PG_TEMP, target, 4);
		if (lrc != 0) {
			LOG_WARN("wal",
				 "cannot link base/" PG_TEMP " of branch \"%s\" to %s (%s): its "
				 "server spills into its view",
				 branch, target, strerror(-lrc));
			clear_temp(wfd, walroot, tname);
		}
	}
out:
	if (rc != 0 && err[0] == '\0')
		snprintf(
		    err, errlen,
		    "cannot prepare the directory %s for the temporary files of branch \"%s\": "
		    "%s (riftd's log may say more)",
		    target, branch, strerror(-rc));
	if (fd >= 0)
		close(fd);
	if (basefd >= 0)
		close(basefd);
	close(wfd);
	return rc;
}

void rift_wal_close(const char *walroot, uint64_t id)
{
	char bname[64], tname[64], err[256];
	int wfd = open_root(walroot, false, err, sizeof(err)), rc;

	if (wfd < 0) {
		if (wfd != -ENOENT)
			LOG_WARN("wal", "%s", err);
		return;
	}
	dir_name(bname, sizeof(bname), 'b', id);
	rc = give_to(wfd, bname, &root_owner, 0);
	if (rc != 0 && rc != -ENOENT)
		LOG_WARN("wal", "cannot give %s/%s back to root: %s", walroot, bname,
			 strerror(-rc));
	/* a stopped server's temporary files are garbage, and its uid goes to others: they are
	 * root's from now on, and removed once the uid is swept (rift_wal_temp_reap) */
	dir_name(tname, sizeof(tname), 't', id);
	set_temp_aside(wfd, walroot, tname);
	close(wfd);
}

void rift_wal_temp_reap(const char *walroot, uint64_t id)
{
	char tname[64], err[256];
	int wfd = open_root(walroot, false, err, sizeof(err));

	if (wfd < 0)
		return;
	dir_name(tname, sizeof(tname), 't', id);
	clear_temp(wfd, walroot, tname);
	close(wfd);
}

int rift_wal_branched(const char *walroot, uint64_t parent_id, uint64_t layer, uint64_t child_id,
		      const struct rift_pg_checkpoint *need, uid_t lo, uid_t hi, char *err,
		      size_t errlen)
{
	struct trust t;
	char pname[64], lname[64], cname[64], what[128];
	int wfd, src = -1, rc = 0;

	err[0] = '\0';
	wfd = open_root(walroot, true, err, errlen);
	if (wfd < 0)
		return wfd;
	dir_name(pname, sizeof(pname), 'b', parent_id);
	dir_name(lname, sizeof(lname), 'l', layer);
	dir_name(cname, sizeof(cname), 'b', child_id);
	if (!is_dir_at(wfd, lname)) {
		src = openat(wfd, pname, O_RDONLY | O_DIRECTORY | AT_FLAGS);
		if (src < 0) {
			/* the parent's WAL is in the store (it never ran with this riftd): the
			 * frozen layer holds it, and the child moves it out at its first start */
			rc = errno == ENOENT ? 0 : -errno;
			goto out;
		}
		snprintf(what, sizeof(what), "layer %" PRIx64 " (frozen for a new branch)", layer);
		trust_of_dir(src, lo, hi, &t); /* the parent's, written by its uid */
		rc = copy_dir(src, &t, wfd, lname, need, what, err, errlen);
		close(src);
		src = -1;
	}
	/* the child's own copy now: it must not depend on the layer's, which goes when the layer
	 * is squashed into the child */
	if (rc == 0) {
		src = openat(wfd, lname, O_RDONLY | O_DIRECTORY | AT_FLAGS);
		snprintf(what, sizeof(what), "a new branch");
		rc = src < 0 ? -errno
			     : copy_dir(src, &trust_all, wfd, cname, need, what, err, errlen);
	}
out:
	if (rc != 0 && err[0] == '\0')
		snprintf(err, errlen, "cannot copy the parent's WAL for the new branch: %s",
			 strerror(-rc));
	if (src >= 0)
		close(src);
	close(wfd);
	return rc;
}

/* Bytes under the directory fd, depth levels down, at most *budget entries (then UINT64_MAX). */
static uint64_t du_at(int fd, int depth, size_t *budget)
{
	uint64_t sum = 0;
	struct dirent *de;
	struct stat st;
	DIR *d = fdopendir(fd);

	if (d == NULL) {
		close(fd);
		return 0;
	}
	while ((de = readdir(d)) != NULL && sum != UINT64_MAX) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (*budget == 0) {
			sum = UINT64_MAX;
			break;
		}
		(*budget)--;
		sum += (uint64_t)st.st_blocks * 512;
		if (S_ISDIR(st.st_mode)) {
			int sub = depth > 0 ? openat(dirfd(d), de->d_name,
						     O_RDONLY | O_DIRECTORY | AT_FLAGS)
					    : -1;
			uint64_t below =
			    sub >= 0 ? du_at(sub, depth - 1, budget) : (depth > 0 ? 0 : UINT64_MAX);
			sum = below == UINT64_MAX ? UINT64_MAX : sum + below;
		}
	}
	closedir(d);
	return sum;
}

uint64_t rift_wal_size(const char *walroot, uint64_t id)
{
	static const char kinds[2] = { 'b', 't' };
	char path[4200];
	size_t budget = 4 * WAL_MAX_ENTRIES, i;
	uint64_t sum = 0, part;
	int fd;

	for (i = 0; i < sizeof(kinds) && sum != UINT64_MAX; i++) {
		snprintf(path, sizeof(path), "%s/%c-%016" PRIx64, walroot, kinds[i], id);
		fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		part = fd < 0 ? 0 : du_at(fd, 3, &budget);
		sum = part == UINT64_MAX ? UINT64_MAX : sum + part;
	}
	return sum;
}

void rift_wal_remove(const char *walroot, uint64_t id)
{
	char path[4200];
	int rc;

	snprintf(path, sizeof(path), "%s/b-%016" PRIx64, walroot, id);
	rc = rift_tree_remove(path);
	if (rc != 0)
		LOG_WARN("wal", "cannot remove %s: %s", path, strerror(-rc));
	rift_wal_temp_reap(walroot, id);
}

static bool has_id(const struct rift_branch_info *v, size_t n, uint64_t id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i].id == id)
			return true;
	return false;
}

void rift_wal_collect(const char *walroot, struct rift_store *store, int lock_all)
{
	struct rift_branch_info *v = NULL;
	struct rift_layer_info li;
	struct dirent *de;
	char err[256], path[4200];
	size_t n = 0;
	bool listed = true;
	int wfd;
	DIR *d;

	/* without the list nothing is removed, but every directory is still made root's */
	if (rift_store_branch_list(store, &v, &n) != 0) {
		v = NULL;
		n = 0;
		listed = false;
	}
	wfd = open_root(walroot, false, err, sizeof(err));
	d = wfd >= 0 ? fdopendir(wfd) : NULL;
	if (d == NULL) {
		if (wfd >= 0)
			close(wfd);
		free(v);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		const char *nm = de->d_name;
		uint64_t id;
		bool gone;
		/* t- (temporary files) are reaped below */
		if ((nm[0] != 'b' && nm[0] != 'l') || nm[1] != '-' || strlen(nm) < 3)
			continue;
		id = strtoull(nm + 2, NULL, 16);
		/* while riftd serves, a create may be copying a b- directory (or its .tmp) the
		 * listing above predates: those are removed by their delete, and at the next start
		 */
		if (!lock_all && (nm[0] == 'b' || strchr(nm, '.') != NULL))
			continue;
		if (!listed)
			gone = false;
		else if (strchr(nm, '.') != NULL) /* a killed riftd's half copy */
			gone = true;
		else if (nm[0] == 'b')
			gone = !has_id(v, n, id);
		else
			gone = rift_store_layer_info(store, id, &li) == -ENOENT;
		if (gone) {
			snprintf(path, sizeof(path), "%s/%s", walroot, nm);
			if (rift_tree_remove(path) != 0)
				LOG_WARN("wal", "cannot remove %s", path);
		} else if (lock_all && nm[0] == 'b' && strchr(nm, '.') == NULL &&
			   give_to(wfd, nm, &root_owner, 0) != 0) {
			LOG_WARN("wal", "cannot give %s/%s back to root", walroot, nm);
		}
	}
	closedir(d);
	free(v);
	/* no server runs at riftd's start and every uid was swept: all temporary files are
	 * garbage */
	if (lock_all && (wfd = open_root(walroot, false, err, sizeof(err))) >= 0) {
		reap_temp(wfd, walroot, "t-", true);
		close(wfd);
	}
}
