/* store_base.c — imports immutable base directories and checks they were not changed since. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_internal.h"

#define PATH_BUF 4096

static int64_t mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* ---- copying a tree that is not already inside the state directory ---- */

static int copy_file(const char *from, const char *to, const struct stat *st)
{
	int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, rc = 0;
	ssize_t n;

	if (in < 0)
		return -errno;
	out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st->st_mode & 07777);
	if (out < 0) {
		rc = -errno;
		goto out;
	}
	do {
		n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
	} while (n > 0);
	if (n < 0)
		rc = -errno;
	if (rc == 0 && fsync(out) != 0)
		rc = -errno;
out:
	if (out >= 0)
		close(out);
	close(in);
	return rc;
}

static int copy_tree(const char *from, const char *to, char *err, size_t errlen)
{
	struct timespec times[2];
	struct dirent *de;
	struct stat st;
	DIR *d = NULL;
	int rc = 0;

	if (lstat(from, &st) != 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot read %s: %s", from, strerror(errno));
		return rc;
	}
	if (S_ISDIR(st.st_mode)) {
		if (mkdir(to, st.st_mode & 07777) != 0) {
			rc = -errno;
			goto fail;
		}
		d = opendir(from);
		if (d == NULL) {
			rc = -errno;
			goto fail;
		}
		while ((de = readdir(d)) != NULL) {
			char f[PATH_BUF], t[PATH_BUF];
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			if ((size_t)snprintf(f, sizeof(f), "%s/%s", from, de->d_name) >=
				sizeof(f) ||
			    (size_t)snprintf(t, sizeof(t), "%s/%s", to, de->d_name) >= sizeof(t)) {
				snprintf(err, errlen, "path too long under %s", from);
				rc = -ENAMETOOLONG;
				goto out;
			}
			rc = copy_tree(f, t, err, errlen);
			if (rc != 0)
				goto out;
		}
	} else if (S_ISREG(st.st_mode)) {
		rc = copy_file(from, to, &st);
	} else if (S_ISLNK(st.st_mode)) {
		char target[PATH_BUF];
		ssize_t n = readlink(from, target, sizeof(target) - 1);
		if (n < 0) {
			rc = -errno;
			goto fail;
		}
		target[n] = '\0';
		if (symlink(target, to) != 0)
			rc = -errno;
	} else {
		return 0; /* sockets, fifos, devices: a data directory has none worth keeping */
	}
	if (rc != 0)
		goto fail;
	if (lchown(to, st.st_uid, st.st_gid) != 0) {
		rc = -errno;
		goto fail;
	}
	times[0] = st.st_atim;
	times[1] = st.st_mtim;
	utimensat(AT_FDCWD, to, times, AT_SYMLINK_NOFOLLOW);
	goto out;
fail:
	snprintf(err, errlen, "cannot copy %s to %s: %s", from, to, strerror(-rc));
out:
	if (d != NULL)
		closedir(d);
	return rc;
}

/* ---- recording the tree ---- */

struct import {
	struct rift_store *s;
	rocksdb_writebatch_t *wb;
	uint64_t layer;
	uint32_t gen;
	char root[PATH_BUF];
	size_t files;
	bool own; /* record uid/gid below instead of the owners on disk */
	uid_t uid;
	gid_t gid;
};

static void put_rec(struct import *im, uint64_t ino, const struct inode_rec *rec)
{
	uint8_t k[KEY_MAX], v[INODE_BUF];
	size_t n = inode_encode(rec, v, sizeof(v));

	key_inode(k, im->layer, ino);
	rocksdb_writebatch_put_cf(im->wb, im->s->cf_meta, (const char *)k, 17, (const char *)v, n);
}

static void put_entry(struct import *im, uint64_t dir, const char *name, uint64_t ino,
		      uint32_t mode)
{
	uint8_t k[KEY_MAX], v[DENTRY_LEN];
	size_t kl = key_dentry(k, im->layer, dir, name);

	put_be64(v, ino);
	v[8] = (uint8_t)(mode >> 24);
	v[9] = (uint8_t)(mode >> 16);
	v[10] = (uint8_t)(mode >> 8);
	v[11] = (uint8_t)mode;
	rocksdb_writebatch_put_cf(im->wb, im->s->cf_meta, (const char *)k, kl, (const char *)v,
				  sizeof(v));
}

static void rec_from_stat(const struct import *im, struct inode_rec *rec, const struct stat *st)
{
	memset(rec, 0, sizeof(*rec));
	rec->mode = st->st_mode;
	rec->uid = im->own ? im->uid : st->st_uid;
	rec->gid = im->own ? im->gid : st->st_gid;
	rec->nlink = S_ISDIR(st->st_mode) ? 2 : 1;
	rec->size = (uint64_t)st->st_size;
	rec->atime = st->st_atim;
	rec->mtime = st->st_mtim;
	rec->ctime = st->st_ctim;
}

/* Records directory rel (ino) and everything below it; relative paths are from the base root. */
static int record_dir(struct import *im, const char *rel, uint64_t ino, uint64_t parent, char *err,
		      size_t errlen)
{
	char path[PATH_BUF];
	struct inode_rec *rec = malloc(sizeof(*rec));
	struct dirent *de;
	struct stat st;
	uint32_t subdirs = 0;
	DIR *d = NULL;
	int rc = 0;

	if (rec == NULL)
		return -ENOMEM;
	if ((size_t)snprintf(path, sizeof(path), "%s%s%s", im->root, *rel ? "/" : "", rel) >=
	    sizeof(path)) {
		rc = -ENAMETOOLONG;
		snprintf(err, errlen, "path too long in base directory %s", im->root);
		goto out;
	}
	d = opendir(path);
	if (d == NULL || fstat(dirfd(d), &st) != 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot read directory %s: %s", path, strerror(errno));
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		char crel[PATH_BUF], cpath[PATH_BUF];
		struct stat cst;
		uint64_t cino;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (strlen(de->d_name) > RIFT_NAME_MAX_LEN ||
		    (size_t)snprintf(crel, sizeof(crel), "%s%s%s", rel, *rel ? "/" : "",
				     de->d_name) >= sizeof(crel) - 1 ||
		    (size_t)snprintf(cpath, sizeof(cpath), "%s/%s", im->root, crel) >=
			sizeof(cpath)) {
			snprintf(err, errlen, "name too long in base directory %s", path);
			rc = -ENAMETOOLONG;
			goto out;
		}
		if (lstat(cpath, &cst) != 0) {
			rc = -errno;
			snprintf(err, errlen, "cannot stat %s: %s", cpath, strerror(errno));
			goto out;
		}
		if (!S_ISDIR(cst.st_mode) && !S_ISREG(cst.st_mode) && !S_ISLNK(cst.st_mode))
			continue;
		cino = store_alloc_id(im->s, im->wb);
		put_entry(im, ino, de->d_name, cino, cst.st_mode & S_IFMT);
		if (S_ISDIR(cst.st_mode)) {
			subdirs++;
			rc = record_dir(im, crel, cino, ino, err, errlen);
			if (rc != 0)
				goto out;
			continue;
		}
		rec_from_stat(im, rec, &cst);
		rec->parent = ino;
		if (S_ISREG(cst.st_mode)) {
			rec->data_id = store_alloc_id(im->s, im->wb);
			rec->base_gen = im->gen;
			rec->base_size = (uint64_t)cst.st_size;
			rec->base_mtime_ns = mtime_ns(&cst);
			rec->base_st_ino = (uint64_t)cst.st_ino;
			rec->tail_len = (uint32_t)strlen(crel);
			memcpy(rec->tail, crel, rec->tail_len + 1);
			im->files++;
		} else {
			ssize_t n = readlink(cpath, rec->tail, RIFT_SYMLINK_MAX);
			if (n < 0) {
				rc = -errno;
				snprintf(err, errlen, "cannot read link %s: %s", cpath,
					 strerror(errno));
				goto out;
			}
			rec->tail[n] = '\0';
			rec->tail_len = (uint32_t)n;
			rec->size = (uint64_t)n;
		}
		put_rec(im, cino, rec);
	}
	rec_from_stat(im, rec, &st);
	rec->nlink = 2 + subdirs;
	rec->parent = parent;
	put_rec(im, ino, rec);
out:
	if (d != NULL)
		closedir(d);
	free(rec);
	return rc;
}

static bool inside(const char *dir, const char *path)
{
	size_t n = strlen(dir);

	return strncmp(path, dir, n) == 0 && path[n] == '/';
}

int rift_store_base_import(struct rift_store *s, const char *src_dir, uint32_t *gen_out, char *err,
			   size_t errlen)
{
	return rift_store_base_import_as(s, src_dir, (uid_t)-1, (gid_t)-1, gen_out, err, errlen);
}

int rift_store_base_import_as(struct rift_store *s, const char *src_dir, uid_t uid, gid_t gid,
			      uint32_t *gen_out, char *err, size_t errlen)
{
	struct import im = { .s = s, .own = uid != (uid_t)-1, .uid = uid, .gid = gid };
	char state_real[PATH_MAX], src_real[PATH_MAX], tmp[PATH_BUF + 16];
	struct layer base = { 0 };
	struct base_gen *nb;
	uint8_t k[5], v[8], lk[9], lv[LAYER_BUF];
	struct stat st;
	size_t i;
	int rc;

	im.wb = rocksdb_writebatch_create();
	pthread_rwlock_wrlock(&s->lock);
	rc = atomic_load(&s->error);
	if (rc != 0) {
		snprintf(err, errlen, "the store has failed earlier; reopen it");
		goto unlock;
	}
	if (realpath(src_dir, src_real) == NULL || stat(src_real, &st) != 0 ||
	    !S_ISDIR(st.st_mode)) {
		rc = errno ? -errno : -ENOTDIR;
		snprintf(err, errlen, "cannot use %s as a base: %s", src_dir,
			 errno ? strerror(errno) : "not a directory");
		goto unlock;
	}
	im.gen = 1;
	for (i = 0; i < s->nbases; i++)
		if (s->bases[i].gen >= im.gen)
			im.gen = s->bases[i].gen + 1;
	snprintf(im.root, sizeof(im.root), "%s/base/%u", s->state_dir, im.gen);
	if (realpath(s->state_dir, state_real) != NULL && inside(state_real, src_real)) {
		if (rename(src_real, im.root) != 0) {
			rc = -errno;
			snprintf(err, errlen, "cannot move %s to %s: %s", src_real, im.root,
				 strerror(errno));
			goto unlock;
		}
	} else {
		snprintf(tmp, sizeof(tmp), "%s.importing", im.root);
		rc = copy_tree(src_real, tmp, err, errlen);
		if (rc == 0 && rename(tmp, im.root) != 0) {
			rc = -errno;
			snprintf(err, errlen, "cannot rename %s: %s", tmp, strerror(errno));
		}
		if (rc != 0)
			goto unlock;
	}
	base.id = store_alloc_id(s, im.wb);
	base.gen = im.gen;
	base.frozen = true;
	im.layer = base.id;
	rc = record_dir(&im, "", RIFT_ROOT_INO, RIFT_ROOT_INO, err, errlen);
	if (rc != 0)
		goto unlock;
	key_layer(lk, base.id);
	rocksdb_writebatch_put_cf(im.wb, s->cf_meta, (const char *)lk, 9, (const char *)lv,
				  layer_encode(&base, lv));
	key_base(k, im.gen);
	put_be64(v, base.id);
	rocksdb_writebatch_put_cf(im.wb, s->cf_meta, (const char *)k, 5, (const char *)v, 8);
	rc = store_write(s, im.wb, true);
	if (rc != 0) {
		snprintf(err, errlen, "cannot record the base in the store database");
		goto unlock;
	}
	nb = realloc(s->bases, (s->nbases + 1) * sizeof(*nb));
	if (nb == NULL || store_layer_add(s, &base) == NULL) {
		if (nb != NULL)
			s->bases = nb;
		rc = store_fail(s, NULL, "base import (out of memory)");
		goto unlock;
	}
	s->bases = nb;
	nb[s->nbases].gen = im.gen;
	nb[s->nbases].layer = base.id;
	s->nbases++;
	*gen_out = im.gen;
unlock:
	pthread_rwlock_unlock(&s->lock);
	rocksdb_writebatch_destroy(im.wb);
	return rc;
}

int rift_store_base_verify(struct rift_store *s, uint32_t gen, char *err, size_t errlen)
{
	uint64_t layer = store_base_layer(s, gen);
	struct inode_rec *rec = malloc(sizeof(*rec));
	rocksdb_iterator_t *it;
	uint8_t prefix[9];
	char *rerr = NULL;
	int rc = 0;

	if (rec == NULL)
		return -ENOMEM;
	if (layer == 0) {
		free(rec);
		snprintf(err, errlen, "base generation %u does not exist", gen);
		return -ENOENT;
	}
	prefix[0] = 'I';
	put_be64(prefix + 1, layer);
	it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf_meta);
	for (rocksdb_iter_seek(it, (const char *)prefix, 9); rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		char path[PATH_BUF + RIFT_SYMLINK_MAX + 32];
		struct stat st;
		size_t kl, vl;
		const char *k = rocksdb_iter_key(it, &kl);
		const char *v = rocksdb_iter_value(it, &vl);
		if (kl < 9 || memcmp(k, prefix, 9) != 0)
			break;
		if (inode_decode((const uint8_t *)v, vl, rec) != 0) {
			rc = -EIO;
			snprintf(err, errlen, "base generation %u: damaged inode record", gen);
			break;
		}
		if (!S_ISREG(rec->mode) || rec->base_gen != gen)
			continue;
		snprintf(path, sizeof(path), "%s/base/%u/%s", s->state_dir, gen, rec->tail);
		if (lstat(path, &st) != 0 || (uint64_t)st.st_size != rec->base_size ||
		    mtime_ns(&st) != rec->base_mtime_ns ||
		    (uint64_t)st.st_ino != rec->base_st_ino) {
			rc = -ESTALE;
			snprintf(
			    err, errlen,
			    "base file %s was changed, replaced or removed after rift imported "
			    "it; rift will not serve a changed base. Restore it, or make a new "
			    "base with `rift init`/`rift refresh`",
			    path);
			break;
		}
	}
	rocksdb_iter_get_error(it, &rerr);
	if (rerr != NULL) {
		snprintf(err, errlen, "cannot read the store: %s", rerr);
		free(rerr);
		rc = -EIO;
	}
	rocksdb_iter_destroy(it);
	free(rec);
	return rc;
}
