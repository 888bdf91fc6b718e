/* ops.c — FUSE low-level handlers: each request becomes one store call on the mounted branch. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "ops_internal.h"

/* Every change reaches the store through this kernel, so cached answers never go stale. */
#define CACHE_TIMEOUT_S 86400.0

static struct rift_mount *mnt(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void to_stat(const struct rift_mount *m, const struct rift_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->st_ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	if (m->set_owner) {
		/* the branch's server owns everything it sees, whatever uid wrote it (the base's,
		 * an earlier server's); nobody else gets past the 0700 root, which is also the
		 * mode Postgres wants of its data directory */
		st->st_uid = m->uid;
		st->st_gid = m->gid;
		if (a->ino == FUSE_ROOT_ID)
			st->st_mode = S_IFDIR | 0700;
	}
	st->st_size = (off_t)a->size;
	st->st_blksize = RIFT_BLOCK_SIZE;
	st->st_blocks = (blkcnt_t)((a->size + 511) / 512);
	st->st_atim = a->atime;
	st->st_mtim = a->mtime;
	st->st_ctim = a->ctime;
}

/* Replies with a new entry and counts the kernel's lookup reference. */
static void reply_entry(fuse_req_t req, const struct rift_attr *a)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = a->ino;
	e.attr_timeout = CACHE_TIMEOUT_S;
	e.entry_timeout = CACHE_TIMEOUT_S;
	to_stat(mnt(req), a, &e.attr);
	if (rift_store_ref(mnt(req)->branch, a->ino) != 0) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fuse_reply_entry(req, &e);
}

static bool refuse_if_read_only(fuse_req_t req)
{
	if (!mnt(req)->read_only)
		return false;
	fuse_reply_err(req, EROFS);
	return true;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct rift_mount *m = userdata;

	/* A branch with a size limit is written through: the kernel's writeback cache would turn
	 * the ENOSPC of a write over the limit into an fsync error (a Postgres PANIC and a crash
	 * loop) instead of "could not extend file" for the one statement. */
	if ((conn->capable & FUSE_CAP_WRITEBACK_CACHE) &&
	    rift_store_branch_max_size(m->branch) == 0)
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	/* rift invalidates explicitly; mtime-based invalidation would drop good pages */
	conn->want &= ~(unsigned)FUSE_CAP_AUTO_INVAL_DATA;
	conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	conn->max_write = 1u << 20;
	conn->max_readahead = 1u << 20;
	conn->time_gran = 1;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct rift_attr a;
	int rc = rift_store_lookup(mnt(req)->branch, parent, name, &a);

	if (rc == -ENOENT) {
		/* a cached negative entry: creation goes through this kernel and replaces it */
		struct fuse_entry_param e;
		memset(&e, 0, sizeof(e));
		e.entry_timeout = CACHE_TIMEOUT_S;
		fuse_reply_entry(req, &e);
		return;
	}
	if (rc != 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	reply_entry(req, &a);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	uint64_t i;

	for (i = 0; i < nlookup; i++)
		if (rift_store_unref(mnt(req)->branch, ino) != 0)
			break;
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	size_t i;
	uint64_t j;

	for (i = 0; i < count; i++)
		for (j = 0; j < forgets[i].nlookup; j++)
			if (rift_store_unref(mnt(req)->branch, forgets[i].ino) != 0)
				break;
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rift_attr a;
	struct stat st;
	int rc = rift_store_getattr(mnt(req)->branch, ino, &a);

	(void)fi;
	if (rc != 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	to_stat(mnt(req), &a, &st);
	fuse_reply_attr(req, &st, CACHE_TIMEOUT_S);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct rift_attr in, out;
	struct timespec now;
	unsigned mask = 0;
	struct stat st;
	int rc;

	(void)fi;
	if (refuse_if_read_only(req))
		return;
	memset(&in, 0, sizeof(in));
	clock_gettime(CLOCK_REALTIME, &now);
	if (to_set & FUSE_SET_ATTR_MODE) {
		in.mode = attr->st_mode;
		mask |= RIFT_SET_MODE;
	}
	if (mnt(req)->set_owner && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
		/* owners are not stored but shown: chown to the branch's own ids changes nothing */
		if (((to_set & FUSE_SET_ATTR_UID) && attr->st_uid != mnt(req)->uid) ||
		    ((to_set & FUSE_SET_ATTR_GID) && attr->st_gid != mnt(req)->gid)) {
			fuse_reply_err(req, EPERM);
			return;
		}
		to_set &= ~(FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID);
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		in.uid = attr->st_uid;
		mask |= RIFT_SET_UID;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		in.gid = attr->st_gid;
		mask |= RIFT_SET_GID;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		in.size = (uint64_t)attr->st_size;
		mask |= RIFT_SET_SIZE;
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW)) {
		in.atime = (to_set & FUSE_SET_ATTR_ATIME_NOW) ? now : attr->st_atim;
		mask |= RIFT_SET_ATIME;
	}
	if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) {
		in.mtime = (to_set & FUSE_SET_ATTR_MTIME_NOW) ? now : attr->st_mtim;
		mask |= RIFT_SET_MTIME;
	}
	if (to_set & FUSE_SET_ATTR_CTIME) {
		in.ctime = attr->st_ctim;
		mask |= RIFT_SET_CTIME;
	}
	rc = rift_store_setattr(mnt(req)->branch, ino, &in, mask, &out);
	if (rc != 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	to_stat(mnt(req), &out, &st);
	fuse_reply_attr(req, &st, CACHE_TIMEOUT_S);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[RIFT_SYMLINK_MAX + 1];
	int rc = rift_store_readlink(mnt(req)->branch, ino, buf, sizeof(buf));

	if (rc != 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_readlink(req, buf);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct rift_attr a;
	int rc;

	(void)rdev;
	if (refuse_if_read_only(req))
		return;
	rc = rift_store_create(mnt(req)->branch, parent, name, mode, ctx->uid, ctx->gid, &a);
	if (rc != 0)
		fuse_reply_err(req, -rc);
	else
		reply_entry(req, &a);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct rift_attr a;
	int rc;

	if (refuse_if_read_only(req))
		return;
	rc = rift_store_mkdir(mnt(req)->branch, parent, name, mode, ctx->uid, ctx->gid, &a);
	if (rc != 0)
		fuse_reply_err(req, -rc);
	else
		reply_entry(req, &a);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct rift_attr a;
	int rc;

	if (refuse_if_read_only(req))
		return;
	rc = rift_store_symlink(mnt(req)->branch, parent, name, link, ctx->uid, ctx->gid, &a);
	if (rc != 0)
		fuse_reply_err(req, -rc);
	else
		reply_entry(req, &a);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (refuse_if_read_only(req))
		return;
	fuse_reply_err(req, -rift_store_unlink(mnt(req)->branch, parent, name));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (refuse_if_read_only(req))
		return;
	fuse_reply_err(req, -rift_store_rmdir(mnt(req)->branch, parent, name));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	unsigned rflags = 0;

	if (refuse_if_read_only(req))
		return;
	if (flags & RENAME_NOREPLACE)
		rflags |= RIFT_RENAME_NOREPLACE;
	if (flags & ~(unsigned)RENAME_NOREPLACE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	fuse_reply_err(
	    req, -rift_store_rename(mnt(req)->branch, parent, name, newparent, newname, rflags));
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	(void)ino;
	(void)newparent;
	(void)newname;
	fuse_reply_err(req, EPERM); /* hard links: only pg_upgrade --link wants them */
}

/* Applies O_TRUNC at open time (ATOMIC_O_TRUNC is on, so the kernel leaves it to us). */
static int truncate_on_open(fuse_req_t req, fuse_ino_t ino, int flags)
{
	struct rift_attr in;

	if (!(flags & O_TRUNC) || (flags & O_ACCMODE) == O_RDONLY)
		return 0;
	if (mnt(req)->read_only)
		return -EROFS;
	memset(&in, 0, sizeof(in));
	return rift_store_setattr(mnt(req)->branch, ino, &in, RIFT_SET_SIZE, NULL);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int rc;

	if (mnt(req)->read_only && (fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	rc = truncate_on_open(req, ino, fi->flags);
	if (rc != 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->keep_cache = 1;
	fi->fh = 0;
	fuse_reply_open(req, fi);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct fuse_entry_param e;
	struct rift_attr a;
	int rc;

	if (refuse_if_read_only(req))
		return;
	rc = rift_store_create(mnt(req)->branch, parent, name, mode, ctx->uid, ctx->gid, &a);
	if (rc == -EEXIST && !(fi->flags & O_EXCL)) {
		/* another opener won the race: O_CREAT without O_EXCL opens what is there */
		rc = rift_store_lookup(mnt(req)->branch, parent, name, &a);
		if (rc == 0 && S_ISDIR(a.mode))
			rc = -EISDIR;
		if (rc == 0)
			rc = truncate_on_open(req, a.ino, fi->flags);
		if (rc == 0)
			rc = rift_store_getattr(mnt(req)->branch, a.ino, &a);
	}
	if (rc != 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = a.ino;
	e.attr_timeout = CACHE_TIMEOUT_S;
	e.entry_timeout = CACHE_TIMEOUT_S;
	to_stat(mnt(req), &a, &e.attr);
	if (rift_store_ref(mnt(req)->branch, a.ino) != 0) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fi->keep_cache = 1;
	fi->fh = 0;
	fuse_reply_create(req, &e, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	char *buf = malloc(size ? size : 1);
	ssize_t n;

	(void)fi;
	if (buf == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = rift_store_read(mnt(req)->branch, ino, (uint64_t)off, size, buf);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	ssize_t n;

	(void)fi;
	if (refuse_if_read_only(req))
		return;
	n = rift_store_write(mnt(req)->branch, ino, (uint64_t)off, size, buf);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

/* fsync and fdatasync: the file's overlay file, then the store's WAL; never ENOSYS. */
static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, -rift_store_sync_file(mnt(req)->branch, ino));
}

/* fsyncdir: names and inodes live in the store's records; durable once its WAL is synced. */
static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, -rift_store_sync_names(mnt(req)->store));
}

/* A directory listing taken whole at opendir, so readdir offsets stay stable while entries
 * are unlinked or created underneath. */
struct dir_snapshot {
	size_t n, cap;
	struct {
		uint64_t ino;
		uint32_t mode;
		char *name;
	} * v;
};

static int snapshot_add(const struct rift_dirent *ent, void *arg)
{
	struct dir_snapshot *d = arg;

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 32;
		void *nv = realloc(d->v, cap * sizeof(*d->v));
		if (nv == NULL)
			return -ENOMEM;
		d->v = nv;
		d->cap = cap;
	}
	d->v[d->n].name = strdup(ent->name);
	if (d->v[d->n].name == NULL)
		return -ENOMEM;
	d->v[d->n].ino = ent->ino;
	d->v[d->n].mode = ent->mode;
	d->n++;
	return 0;
}

static void snapshot_free(struct dir_snapshot *d)
{
	size_t i;

	if (d == NULL)
		return;
	for (i = 0; i < d->n; i++)
		free(d->v[i].name);
	free(d->v);
	free(d);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dir_snapshot *d = calloc(1, sizeof(*d));
	int rc;

	if (d == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rc = rift_store_readdir(mnt(req)->branch, ino, snapshot_add, d);
	if (rc != 0) {
		snapshot_free(d);
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	fi->keep_cache = 0;
	fuse_reply_open(req, fi);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct dir_snapshot *d = (struct dir_snapshot *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	size_t used = 0, i;

	(void)ino;
	if (buf == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* position 0 is ".", 1 is "..", 2 + i is entry i; an entry's offset is where the next
	 * read starts */
	for (i = (size_t)off; i < d->n + 2; i++) {
		struct stat st;
		const char *name;
		size_t need;
		memset(&st, 0, sizeof(st));
		if (i == 0) {
			name = ".";
			st.st_ino = ino;
			st.st_mode = S_IFDIR;
		} else if (i == 1) {
			name = "..";
			st.st_mode = S_IFDIR;
		} else {
			name = d->v[i - 2].name;
			st.st_ino = d->v[i - 2].ino;
			st.st_mode = d->v[i - 2].mode;
		}
		need = fuse_add_direntry(req, buf + used, size - used, name, &st, (off_t)(i + 1));
		if (need > size - used)
			break;
		used += need;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	snapshot_free((struct dir_snapshot *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	uint64_t used, avail;
	int rc = rift_store_statfs(mnt(req)->store, &used, &avail);

	(void)ino;
	if (rc != 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = RIFT_BLOCK_SIZE;
	sv.f_frsize = RIFT_BLOCK_SIZE;
	sv.f_blocks = (used + avail) / RIFT_BLOCK_SIZE;
	sv.f_bfree = avail / RIFT_BLOCK_SIZE;
	sv.f_bavail = avail / RIFT_BLOCK_SIZE;
	sv.f_files = 1u << 30;
	sv.f_ffree = 1u << 29;
	sv.f_favail = 1u << 29;
	sv.f_namemax = RIFT_NAME_MAX_LEN;
	fuse_reply_statfs(req, &sv);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
			 struct fuse_file_info *fi)
{
	(void)fi;
	if (refuse_if_read_only(req))
		return;
	if (mode != 0 || offset < 0 || length <= 0) {
		fuse_reply_err(req, mode != 0 ? EOPNOTSUPP : EINVAL);
		return;
	}
	fuse_reply_err(
	    req, -rift_store_fallocate(mnt(req)->branch, ino, (uint64_t)offset, (uint64_t)length));
}

const struct fuse_lowlevel_ops rift_fuse_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.symlink = op_symlink,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.create = op_create,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.statfs = op_statfs,
	.fallocate = op_fallocate,
};
