/* store_ns.c — a branch's file namespace: inodes, directory entries, whiteouts, rename, refs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store_internal.h"

/* ---- records through the chain ---- */

static struct ino_place *place_slot(struct rift_branch *b, uint64_t ino)
{
	return &b->places[(ino * 0x9E3779B97F4A7C15ull >> 40) & (INO_CACHE - 1)];
}

/* The remembered layer of ino's newest record, or 0. */
static uint64_t place_get(struct rift_branch *b, uint64_t ino)
{
	struct ino_place *p = place_slot(b, ino);
	uint64_t layer = 0;

	pthread_mutex_lock(&b->cache_mu);
	if (p->ino == ino && p->branch_gen == atomic_load(&b->gen) &&
	    p->store_gen == atomic_load(&b->store->chain_gen))
		layer = p->layer;
	pthread_mutex_unlock(&b->cache_mu);
	return layer;
}

static void place_put(struct rift_branch *b, uint64_t ino, uint64_t layer, uint64_t bgen,
		      uint64_t sgen)
{
	struct ino_place *p = place_slot(b, ino);

	pthread_mutex_lock(&b->cache_mu);
	p->ino = ino;
	p->layer = layer;
	p->branch_gen = bgen;
	p->store_gen = sgen;
	pthread_mutex_unlock(&b->cache_mu);
}

int inode_get(struct rift_branch *b, uint64_t ino, struct inode_rec *rec, uint64_t *found_in)
{
	uint8_t k[KEY_MAX], *v = malloc(INODE_BUF);
	/* generations read before the walk: a change during it makes the entry stale at once */
	uint64_t bgen = atomic_load(&b->gen), sgen = atomic_load(&b->store->chain_gen);
	uint64_t cached = place_get(b, ino);
	uint32_t i;
	size_t n;
	int rc = -ENOENT;

	if (v == NULL)
		return -ENOMEM;
	if (cached != 0) {
		rc = meta_get(b->store, k, key_inode(k, cached, ino), v, INODE_BUF, &n);
		if (rc == 0) {
			rc = inode_decode(v, n, rec);
			if (found_in != NULL)
				*found_in = cached;
			free(v);
			return rc;
		}
	}
	for (i = 0; i < b->rec->depth; i++) {
		rc = meta_get(b->store, k, key_inode(k, b->rec->chain[i], ino), v, INODE_BUF, &n);
		if (rc == -ENOENT)
			continue;
		if (rc == 0) {
			rc = inode_decode(v, n, rec);
			if (found_in != NULL)
				*found_in = b->rec->chain[i];
			if (rc == 0)
				place_put(b, ino, b->rec->chain[i], bgen, sgen);
		}
		break;
	}
	free(v);
	return rc;
}

/* Writes rec as the head's version of ino. A file without names is recorded as an orphan so
 * that recovery frees it if the process dies before its last reference goes. */
void inode_put(struct rift_branch *b, rocksdb_writebatch_t *wb, uint64_t ino,
	       const struct inode_rec *rec)
{
	struct rift_store *s = b->store;
	uint8_t k[KEY_MAX], v[INODE_BUF];
	size_t n = inode_encode(rec, v, sizeof(v));

	key_inode(k, b->rec->chain[0], ino);
	rocksdb_writebatch_put_cf(wb, s->cf_meta, (const char *)k, 17, (const char *)v, n);
	if (rec->nlink == 0 && S_ISREG(rec->mode)) {
		key_orphan(k, b->rec->chain[0], ino);
		rocksdb_writebatch_put_cf(wb, s->cf_meta, (const char *)k, 17, "", 0);
	}
}

/* Finds name in dir starting at chain position from: 0 found (*ino, *mode), -ENOENT. */
static int dentry_get_from(struct rift_branch *b, uint32_t from, uint64_t dir, const char *name,
			   uint64_t *ino, uint32_t *mode)
{
	uint8_t k[KEY_MAX], v[DENTRY_LEN];
	uint32_t i;
	size_t kl, n;
	int rc;

	for (i = from; i < b->rec->depth; i++) {
		kl = key_dentry(k, b->rec->chain[i], dir, name);
		rc = meta_get(b->store, k, kl, v, sizeof(v), &n);
		if (rc == -ENOENT)
			continue;
		if (rc != 0)
			return rc;
		if (n != DENTRY_LEN)
			return -EIO;
		*ino = get_be64(v);
		*mode = ((uint32_t)v[8] << 24) | ((uint32_t)v[9] << 16) | ((uint32_t)v[10] << 8) |
			v[11];
		return *ino == 0 ? -ENOENT : 0; /* ino 0: a whiteout */
	}
	return -ENOENT;
}

static void dentry_put(struct rift_branch *b, rocksdb_writebatch_t *wb, uint64_t dir,
		       const char *name, uint64_t ino, uint32_t mode)
{
	uint8_t k[KEY_MAX], v[DENTRY_LEN];
	size_t kl = key_dentry(k, b->rec->chain[0], dir, name);

	put_be64(v, ino);
	v[8] = (uint8_t)(mode >> 24);
	v[9] = (uint8_t)(mode >> 16);
	v[10] = (uint8_t)(mode >> 8);
	v[11] = (uint8_t)mode;
	rocksdb_writebatch_put_cf(wb, b->store->cf_meta, (const char *)k, kl, (const char *)v,
				  sizeof(v));
}

/* Removes name from dir in the head: a whiteout if an older layer still shows it. */
static int dentry_remove(struct rift_branch *b, rocksdb_writebatch_t *wb, uint64_t dir,
			 const char *name)
{
	uint8_t k[KEY_MAX];
	uint64_t ino;
	uint32_t mode;
	int rc = dentry_get_from(b, 1, dir, name, &ino, &mode);

	if (rc == 0) {
		dentry_put(b, wb, dir, name, 0, 0);
		return 0;
	}
	if (rc != -ENOENT)
		return rc;
	rocksdb_writebatch_delete_cf(wb, b->store->cf_meta, (const char *)k,
				     key_dentry(k, b->rec->chain[0], dir, name));
	return 0;
}

static bool valid_name(const char *name)
{
	size_t n = strnlen(name, RIFT_NAME_MAX_LEN + 1);

	return n > 0 && n <= RIFT_NAME_MAX_LEN && strchr(name, '/') == NULL &&
	       strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/* Applies a change of nlink and a new mtime to directory dir. */
static int touch_dir(struct rift_branch *b, rocksdb_writebatch_t *wb, uint64_t dir, int nlink_delta,
		     struct timespec now)
{
	struct inode_rec *rec = malloc(sizeof(*rec));
	int rc;

	if (rec == NULL)
		return -ENOMEM;
	rc = inode_get(b, dir, rec, NULL);
	if (rc == 0) {
		rec->nlink = (uint32_t)((int)rec->nlink + nlink_delta);
		rec->mtime = rec->ctime = now;
		inode_put(b, wb, dir, rec);
	}
	free(rec);
	return rc;
}

/* ---- references ---- */

static struct ref_entry *ref_slot(struct rift_branch *b, uint64_t ino, bool add)
{
	size_t i;

	if (b->refs_cap == 0 || (add && (b->refs_used + 1) * 2 > b->refs_cap)) {
		size_t cap = b->refs_cap ? b->refs_cap * 2 : 256, j;
		struct ref_entry *n;
		if (!add && b->refs_cap == 0)
			return NULL;
		n = calloc(cap, sizeof(*n));
		if (n == NULL)
			return NULL;
		for (j = 0; j < b->refs_cap; j++) {
			size_t k;
			if (b->refs[j].ino == 0)
				continue;
			for (k = (b->refs[j].ino * 0x9E3779B97F4A7C15ull >> 20) & (cap - 1);
			     n[k].ino != 0; k = (k + 1) & (cap - 1))
				;
			n[k] = b->refs[j];
		}
		free(b->refs);
		b->refs = n;
		b->refs_cap = cap;
	}
	for (i = (ino * 0x9E3779B97F4A7C15ull >> 20) & (b->refs_cap - 1); b->refs[i].ino != 0;
	     i = (i + 1) & (b->refs_cap - 1))
		if (b->refs[i].ino == ino)
			return &b->refs[i];
	if (!add)
		return NULL;
	b->refs[i].ino = ino;
	b->refs_used++;
	return &b->refs[i];
}

static bool is_referenced(struct rift_branch *b, uint64_t ino, bool mark_orphan)
{
	struct ref_entry *e;
	bool yes;

	pthread_mutex_lock(&b->refs_mu);
	e = ref_slot(b, ino, false);
	yes = e != NULL && e->count > 0;
	if (yes && mark_orphan)
		e->orphan = true;
	pthread_mutex_unlock(&b->refs_mu);
	return yes;
}

int rift_store_ref(struct rift_branch *b, uint64_t ino)
{
	struct ref_entry *e;

	pthread_mutex_lock(&b->refs_mu);
	e = ref_slot(b, ino, true);
	if (e != NULL)
		e->count++;
	pthread_mutex_unlock(&b->refs_mu);
	return e != NULL ? 0 : -ENOMEM;
}

/* Frees an inode that has no name and no reference left (caller holds the write lock). */
static int release_inode(struct rift_branch *b, rocksdb_writebatch_t *wb, uint64_t ino,
			 const struct inode_rec *rec, uint64_t found_in)
{
	uint8_t k[KEY_MAX];
	uint64_t head = b->rec->chain[0];

	if (found_in == head) {
		rocksdb_writebatch_delete_cf(wb, b->store->cf_meta, (const char *)k,
					     key_inode(k, head, ino));
		rocksdb_writebatch_delete_cf(wb, b->store->cf_meta, (const char *)k,
					     key_orphan(k, head, ino));
	}
	if (S_ISREG(rec->mode))
		data_drop_layer(b->store, wb, head, rec->data_id);
	if (S_ISDIR(rec->mode)) {
		uint8_t from[KEY_MAX], to[KEY_MAX];
		key_dentry(from, head, ino, "");
		key_dentry(to, head, ino + 1, "");
		rocksdb_writebatch_delete_range_cf(wb, b->store->cf_meta, (const char *)from, 17,
						   (const char *)to, 17);
	}
	return 0;
}

/* Frees an unlinked inode whose last reference went. */
static int free_orphan(struct rift_branch *b, uint64_t ino)
{
	struct rift_store *s = b->store;
	struct inode_rec *rec = malloc(sizeof(*rec));
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	uint64_t found_in;
	int rc;

	if (rec == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	pthread_rwlock_wrlock(&s->lock);
	rc = inode_get(b, ino, rec, &found_in);
	if (rc == 0 && rec->nlink == 0) {
		release_inode(b, wb, ino, rec, found_in);
		rc = branch_write(b, wb);
	}
	pthread_rwlock_unlock(&s->lock);
out:
	rocksdb_writebatch_destroy(wb);
	free(rec);
	return rc == -ENOENT ? 0 : rc;
}

int rift_store_unref(struct rift_branch *b, uint64_t ino)
{
	struct ref_entry *e;
	bool free_it = false;

	pthread_mutex_lock(&b->refs_mu);
	e = ref_slot(b, ino, false);
	if (e == NULL || e->count == 0) {
		pthread_mutex_unlock(&b->refs_mu);
		return -EINVAL;
	}
	if (--e->count == 0) {
		free_it = e->orphan;
		e->orphan = false; /* the slot stays, count 0, as a tombstone for probing */
	}
	pthread_mutex_unlock(&b->refs_mu);
	return free_it ? free_orphan(b, ino) : 0;
}

/* Called at branch close: every reference is gone, so orphans go too. */
void ns_release_all(struct rift_branch *b)
{
	size_t i;

	for (i = 0; i < b->refs_cap; i++) {
		if (b->refs[i].ino != 0 && b->refs[i].orphan) {
			b->refs[i].orphan = false;
			if (free_orphan(b, b->refs[i].ino) != 0)
				break;
		}
	}
	free(b->refs);
	b->refs = NULL;
	b->refs_cap = b->refs_used = 0;
}

/* Drops a name's inode after its last name went (unlink, rmdir, rename over it). */
static int unname_inode(struct rift_branch *b, rocksdb_writebatch_t *wb, uint64_t ino,
			struct inode_rec *rec, uint64_t found_in, struct timespec now)
{
	rec->nlink = 0;
	rec->ctime = now;
	if (is_referenced(b, ino, true)) {
		inode_put(b, wb, ino, rec);
		return 0;
	}
	return release_inode(b, wb, ino, rec, found_in);
}

/* ---- public operations ---- */

int rift_store_getattr(struct rift_branch *b, uint64_t ino, struct rift_attr *attr)
{
	struct inode_rec *rec = malloc(sizeof(*rec));
	int rc;

	if (rec == NULL)
		return -ENOMEM;
	pthread_rwlock_rdlock(&b->store->lock);
	rc = inode_get(b, ino, rec, NULL);
	if (rc == 0)
		attr_from_rec(b, ino, rec, attr);
	pthread_rwlock_unlock(&b->store->lock);
	free(rec);
	return rc;
}

int rift_store_lookup(struct rift_branch *b, uint64_t dir, const char *name, struct rift_attr *attr)
{
	struct inode_rec *rec = malloc(sizeof(*rec));
	uint64_t ino;
	uint32_t mode;
	int rc;

	if (rec == NULL)
		return -ENOMEM;
	if (strnlen(name, RIFT_NAME_MAX_LEN + 1) > RIFT_NAME_MAX_LEN) {
		free(rec);
		return -ENAMETOOLONG;
	}
	pthread_rwlock_rdlock(&b->store->lock);
	rc = dentry_get_from(b, 0, dir, name, &ino, &mode);
	if (rc == 0)
		rc = inode_get(b, ino, rec, NULL);
	if (rc == 0)
		attr_from_rec(b, ino, rec, attr);
	pthread_rwlock_unlock(&b->store->lock);
	free(rec);
	return rc;
}

/* Shared by create, mkdir and symlink: a new inode named name in dir. */
static int make_node(struct rift_branch *b, uint64_t dir, const char *name, uint32_t mode,
		     uint32_t uid, uint32_t gid, const char *target, struct rift_attr *attr)
{
	struct rift_store *s = b->store;
	struct inode_rec *rec = calloc(1, sizeof(*rec));
	struct inode_rec *parent = malloc(sizeof(*parent));
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	struct timespec now = now_ts();
	uint64_t ino, existing;
	uint32_t emode;
	int rc;

	if (rec == NULL || parent == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (!valid_name(name)) {
		rc = strnlen(name, RIFT_NAME_MAX_LEN + 1) > RIFT_NAME_MAX_LEN ? -ENAMETOOLONG
									      : -EINVAL;
		goto out;
	}
	pthread_rwlock_wrlock(&s->lock);
	rc = atomic_load(&s->error);
	if (rc != 0)
		goto unlock;
	rc = inode_get(b, dir, parent, NULL);
	if (rc != 0)
		goto unlock;
	if (!S_ISDIR(parent->mode) || parent->nlink == 0) {
		rc = S_ISDIR(parent->mode) ? -ENOENT : -ENOTDIR;
		goto unlock;
	}
	rc = dentry_get_from(b, 0, dir, name, &existing, &emode);
	if (rc == 0) {
		rc = -EEXIST;
		goto unlock;
	}
	if (rc != -ENOENT)
		goto unlock;
	ino = store_alloc_id(s, wb);
	rec->mode = mode;
	rec->uid = uid;
	rec->gid = gid;
	rec->nlink = S_ISDIR(mode) ? 2 : 1;
	rec->atime = rec->mtime = rec->ctime = now;
	rec->parent = dir;
	if (S_ISREG(mode))
		rec->data_id = store_alloc_id(s, wb);
	if (target != NULL) {
		rec->tail_len = (uint32_t)strlen(target);
		memcpy(rec->tail, target, rec->tail_len + 1);
		rec->size = rec->tail_len;
	}
	inode_put(b, wb, ino, rec);
	dentry_put(b, wb, dir, name, ino, mode & S_IFMT);
	rc = touch_dir(b, wb, dir, S_ISDIR(mode) ? 1 : 0, now);
	if (rc == 0)
		rc = branch_write(b, wb);
	if (rc == 0 && attr != NULL)
		attr_from_rec(b, ino, rec, attr);
unlock:
	pthread_rwlock_unlock(&s->lock);
out:
	rocksdb_writebatch_destroy(wb);
	free(parent);
	free(rec);
	return rc;
}

int rift_store_create(struct rift_branch *b, uint64_t dir, const char *name, uint32_t mode,
		      uint32_t uid, uint32_t gid, struct rift_attr *attr)
{
	uint32_t type = mode & S_IFMT;

	if (type == 0)
		mode |= S_IFREG;
	else if (type != S_IFREG && type != S_IFIFO && type != S_IFSOCK)
		return -EPERM;
	return make_node(b, dir, name, mode, uid, gid, NULL, attr);
}

int rift_store_mkdir(struct rift_branch *b, uint64_t dir, const char *name, uint32_t mode,
		     uint32_t uid, uint32_t gid, struct rift_attr *attr)
{
	return make_node(b, dir, name, S_IFDIR | (mode & 07777), uid, gid, NULL, attr);
}

int rift_store_symlink(struct rift_branch *b, uint64_t dir, const char *name, const char *target,
		       uint32_t uid, uint32_t gid, struct rift_attr *attr)
{
	size_t n = strnlen(target, RIFT_SYMLINK_MAX + 1);

	if (n == 0)
		return -ENOENT;
	if (n > RIFT_SYMLINK_MAX)
		return -ENAMETOOLONG;
	return make_node(b, dir, name, S_IFLNK | 0777, uid, gid, target, attr);
}

int rift_store_readlink(struct rift_branch *b, uint64_t ino, char *buf, size_t size)
{
	struct inode_rec *rec = malloc(sizeof(*rec));
	int rc;

	if (rec == NULL)
		return -ENOMEM;
	pthread_rwlock_rdlock(&b->store->lock);
	rc = inode_get(b, ino, rec, NULL);
	pthread_rwlock_unlock(&b->store->lock);
	if (rc == 0 && !S_ISLNK(rec->mode))
		rc = -EINVAL;
	if (rc == 0 && size > 0)
		snprintf(buf, size, "%s", rec->tail);
	free(rec);
	return rc;
}

/* An entry collected by readdir: the newest layer's word about a name wins. */
struct collected {
	char *name;
	uint32_t pos; /* chain position: lower is newer */
	bool first;   /* the newest word on its name */
	uint64_t ino;
	uint32_t mode;
};

static int cmp_collected(const void *a, const void *b)
{
	const struct collected *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Collects the merged listing of dir; *out (caller frees names and array) has only live
 * entries, in name order. */
static int collect_dir(struct rift_branch *b, uint64_t dir, struct collected **out, size_t *count)
{
	struct rift_store *s = b->store;
	struct collected *v = NULL;
	size_t n = 0, cap = 0, i, j;
	uint32_t pos;
	int rc = 0;

	for (pos = 0; pos < b->rec->depth && rc == 0; pos++) {
		uint8_t prefix[17];
		rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf_meta);
		char *err = NULL;
		key_dentry(prefix, b->rec->chain[pos], dir, "");
		for (rocksdb_iter_seek(it, (const char *)prefix, 17); rocksdb_iter_valid(it);
		     rocksdb_iter_next(it)) {
			size_t kl, vl;
			const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
			const uint8_t *val = (const uint8_t *)rocksdb_iter_value(it, &vl);
			if (kl <= 17 || memcmp(k, prefix, 17) != 0)
				break;
			if (vl != DENTRY_LEN) {
				rc = -EIO;
				break;
			}
			if (n == cap) {
				struct collected *nv;
				cap = cap ? cap * 2 : 64;
				nv = realloc(v, cap * sizeof(*nv));
				if (nv == NULL) {
					rc = -ENOMEM;
					break;
				}
				v = nv;
			}
			v[n].name = strndup((const char *)k + 17, kl - 17);
			if (v[n].name == NULL) {
				rc = -ENOMEM;
				break;
			}
			v[n].pos = pos;
			v[n].ino = get_be64(val);
			v[n].mode = ((uint32_t)val[8] << 24) | ((uint32_t)val[9] << 16) |
				    ((uint32_t)val[10] << 8) | val[11];
			n++;
		}
		rocksdb_iter_get_error(it, &err);
		if (err != NULL)
			rc = store_fail(s, err, "directory scan");
		rocksdb_iter_destroy(it);
	}
	if (n > 0)
		qsort(v, n, sizeof(*v), cmp_collected);
	/* Sorted by name, newest layer first: the first of each name decides. Decide for all
	 * before freeing any, since each decision compares with the previous name. */
	for (i = n; i-- > 0;)
		v[i].first = i == 0 || strcmp(v[i].name, v[i - 1].name) != 0;
	for (i = 0, j = 0; i < n; i++) {
		if (v[i].first && v[i].ino != 0 && rc == 0)
			v[j++] = v[i];
		else
			free(v[i].name);
	}
	if (rc != 0) {
		for (i = 0; i < j; i++)
			free(v[i].name);
		free(v);
		return rc;
	}
	*out = v;
	*count = j;
	return 0;
}

static void free_collected(struct collected *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

int rift_store_readdir(struct rift_branch *b, uint64_t dir,
		       int (*fn)(const struct rift_dirent *ent, void *arg), void *arg)
{
	struct inode_rec *rec = malloc(sizeof(*rec));
	struct collected *v = NULL;
	size_t n = 0, i;
	int rc;

	if (rec == NULL)
		return -ENOMEM;
	pthread_rwlock_rdlock(&b->store->lock);
	rc = inode_get(b, dir, rec, NULL);
	if (rc == 0 && !S_ISDIR(rec->mode))
		rc = -ENOTDIR;
	if (rc == 0)
		rc = collect_dir(b, dir, &v, &n);
	pthread_rwlock_unlock(&b->store->lock);
	for (i = 0; rc == 0 && i < n; i++) {
		struct rift_dirent ent = { v[i].ino, v[i].mode, v[i].name };
		rc = fn(&ent, arg);
	}
	free_collected(v, n);
	free(rec);
	return rc;
}

static int dir_is_empty(struct rift_branch *b, uint64_t dir)
{
	struct collected *v;
	size_t n;
	int rc = collect_dir(b, dir, &v, &n);

	if (rc != 0)
		return rc;
	free_collected(v, n);
	return n == 0 ? 0 : -ENOTEMPTY;
}

/* unlink and rmdir. */
static int remove_name(struct rift_branch *b, uint64_t dir, const char *name, bool want_dir)
{
	struct rift_store *s = b->store;
	struct inode_rec *rec = malloc(sizeof(*rec));
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	struct timespec now = now_ts();
	uint64_t ino, found_in;
	uint32_t mode;
	bool dropped = false;
	int rc;

	if (rec == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	pthread_rwlock_wrlock(&s->lock);
	rc = atomic_load(&s->error);
	if (rc == 0)
		rc = dentry_get_from(b, 0, dir, name, &ino, &mode);
	if (rc == 0)
		rc = inode_get(b, ino, rec, &found_in);
	if (rc != 0)
		goto unlock;
	if (want_dir && !S_ISDIR(rec->mode)) {
		rc = -ENOTDIR;
		goto unlock;
	}
	if (!want_dir && S_ISDIR(rec->mode)) {
		rc = -EISDIR;
		goto unlock;
	}
	if (want_dir && (rc = dir_is_empty(b, ino)) != 0)
		goto unlock;
	rc = dentry_remove(b, wb, dir, name);
	if (rc == 0) {
		dropped = true;
		rc = unname_inode(b, wb, ino, rec, found_in, now);
	}
	if (rc == 0)
		rc = touch_dir(b, wb, dir, want_dir ? -1 : 0, now);
	if (rc == 0)
		rc = branch_write(b, wb);
unlock:
	/* unname_inode took the file's blocks out of the index (and queued its overlay file for
	 * removal) for a batch that did not commit: the index must show them again. */
	if (rc != 0 && dropped)
		store_reload_counts(s);
	pthread_rwlock_unlock(&s->lock);
out:
	rocksdb_writebatch_destroy(wb);
	free(rec);
	return rc;
}

int rift_store_unlink(struct rift_branch *b, uint64_t dir, const char *name)
{
	return remove_name(b, dir, name, false);
}

int rift_store_rmdir(struct rift_branch *b, uint64_t dir, const char *name)
{
	if (strcmp(name, ".") == 0)
		return -EINVAL;
	if (strcmp(name, "..") == 0)
		return -ENOTEMPTY;
	return remove_name(b, dir, name, true);
}

/* Is dir inside (or equal to) ancestor? Walks parent links up to the root. */
static int is_within(struct rift_branch *b, uint64_t dir, uint64_t ancestor, bool *within,
		     struct inode_rec *scratch)
{
	uint32_t guard;

	*within = false;
	for (guard = 0; guard < 4096; guard++) {
		int rc;
		if (dir == ancestor) {
			*within = true;
			return 0;
		}
		if (dir == RIFT_ROOT_INO)
			return 0;
		rc = inode_get(b, dir, scratch, NULL);
		if (rc != 0)
			return rc;
		dir = scratch->parent;
	}
	return -ELOOP;
}

int rift_store_rename(struct rift_branch *b, uint64_t dir, const char *name, uint64_t newdir,
		      const char *newname, unsigned flags)
{
	struct rift_store *s = b->store;
	struct inode_rec *src = malloc(sizeof(*src)), *dst = malloc(sizeof(*dst));
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	struct timespec now = now_ts();
	uint64_t sino, dino, sfound, dfound;
	uint32_t smode, dmode;
	int rc, ddelta_old = 0, ddelta_new = 0;
	bool has_dst, within, dropped = false;

	if (src == NULL || dst == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (flags & ~RIFT_RENAME_NOREPLACE) {
		rc = -EINVAL;
		goto out;
	}
	if (!valid_name(newname) || !valid_name(name)) {
		rc = strnlen(newname, RIFT_NAME_MAX_LEN + 1) > RIFT_NAME_MAX_LEN ? -ENAMETOOLONG
										 : -EINVAL;
		goto out;
	}
	pthread_rwlock_wrlock(&s->lock);
	rc = atomic_load(&s->error);
	if (rc == 0)
		rc = dentry_get_from(b, 0, dir, name, &sino, &smode);
	if (rc == 0)
		rc = inode_get(b, sino, src, &sfound);
	if (rc == 0)
		rc = inode_get(b, newdir, dst, NULL);
	if (rc == 0 && !S_ISDIR(dst->mode))
		rc = -ENOTDIR;
	if (rc != 0)
		goto unlock;
	rc = dentry_get_from(b, 0, newdir, newname, &dino, &dmode);
	has_dst = rc == 0;
	if (rc != 0 && rc != -ENOENT)
		goto unlock;
	rc = 0;
	if (has_dst && dino == sino)
		goto unlock; /* same inode: rename(2) does nothing */
	if (has_dst && (flags & RIFT_RENAME_NOREPLACE)) {
		rc = -EEXIST;
		goto unlock;
	}
	if (S_ISDIR(src->mode)) {
		rc = is_within(b, newdir, sino, &within, dst);
		if (rc == 0 && within)
			rc = -EINVAL;
		if (rc != 0)
			goto unlock;
	}
	if (has_dst) {
		rc = inode_get(b, dino, dst, &dfound);
		if (rc != 0)
			goto unlock;
		if (S_ISDIR(src->mode) && !S_ISDIR(dst->mode))
			rc = -ENOTDIR;
		else if (!S_ISDIR(src->mode) && S_ISDIR(dst->mode))
			rc = -EISDIR;
		else if (S_ISDIR(dst->mode))
			rc = dir_is_empty(b, dino);
		if (rc != 0)
			goto unlock;
		if (S_ISDIR(dst->mode))
			ddelta_new--;
		dropped = true;
		rc = unname_inode(b, wb, dino, dst, dfound, now);
		if (rc != 0)
			goto unlock;
	}
	rc = dentry_remove(b, wb, dir, name);
	if (rc != 0)
		goto unlock;
	dentry_put(b, wb, newdir, newname, sino, src->mode & S_IFMT);
	src->ctime = now;
	if (S_ISDIR(src->mode) && dir != newdir) {
		src->parent = newdir;
		ddelta_old--;
		ddelta_new++;
	}
	inode_put(b, wb, sino, src);
	if (dir == newdir) {
		rc = touch_dir(b, wb, dir, ddelta_old + ddelta_new, now);
	} else {
		rc = touch_dir(b, wb, dir, ddelta_old, now);
		if (rc == 0)
			rc = touch_dir(b, wb, newdir, ddelta_new, now);
	}
	if (rc == 0)
		rc = branch_write(b, wb);
unlock:
	if (rc != 0 && dropped)
		store_reload_counts(s); /* as in remove_name */
	pthread_rwlock_unlock(&s->lock);
out:
	rocksdb_writebatch_destroy(wb);
	free(src);
	free(dst);
	return rc;
}

int rift_store_setattr(struct rift_branch *b, uint64_t ino, const struct rift_attr *in,
		       unsigned mask, struct rift_attr *out)
{
	struct rift_store *s = b->store;
	struct inode_rec *rec = malloc(sizeof(*rec));
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	struct timespec now = now_ts();
	/* Without a size change only this inode's record changes: shared lock and its stripe,
	 * as writes (the kernel's writeback cache sends mtime updates along with data). */
	bool shared = !(mask & RIFT_SET_SIZE), reload = false;
	pthread_mutex_t *stripe = ino_stripe(b, ino);
	struct punch_list *punch = calloc(1, sizeof(*punch));
	uint64_t trim_from = UINT64_MAX, trim_head = 0, trim_data = 0;
	int rc;

	if (rec == NULL || punch == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (shared) {
		pthread_rwlock_rdlock(&s->lock);
		pthread_mutex_lock(stripe);
	} else {
		pthread_rwlock_wrlock(&s->lock);
	}
	rc = atomic_load(&s->error);
	if (rc == 0)
		rc = inode_get(b, ino, rec, NULL);
	if (rc != 0)
		goto unlock;
	if (mask & RIFT_SET_SIZE) {
		if (S_ISDIR(rec->mode)) {
			rc = -EISDIR;
			goto unlock;
		}
		if (!S_ISREG(rec->mode)) {
			rc = -EINVAL;
			goto unlock;
		}
		rc = data_truncate(b, wb, rec, in->size, &trim_from, punch);
		if (rc != 0) {
			/* counts changed in memory for a batch that will not be written */
			if (store_reload_counts(s) != 0)
				rc = store_fail(s, NULL, "truncate rollback");
			goto unlock;
		}
		trim_head = b->rec->chain[0];
		trim_data = rec->data_id;
		rec->mtime = now;
	}
	if (mask & RIFT_SET_MODE)
		rec->mode = (rec->mode & S_IFMT) | (in->mode & 07777);
	if (mask & RIFT_SET_UID)
		rec->uid = in->uid;
	if (mask & RIFT_SET_GID)
		rec->gid = in->gid;
	if (mask & RIFT_SET_ATIME)
		rec->atime = in->atime;
	if (mask & RIFT_SET_MTIME)
		rec->mtime = in->mtime;
	rec->ctime = (mask & RIFT_SET_CTIME) ? in->ctime : now;
	inode_put(b, wb, ino, rec);
	rc = shared ? branch_write_shared(b, wb, &reload) : branch_write(b, wb);
	if (rc == 0 && out != NULL)
		attr_from_rec(b, ino, rec, out);
	if (rc == 0 && trim_from != UINT64_MAX) /* committed: the cut blocks' space goes */
		overlay_trim(s, trim_head, trim_data, trim_from);
	if (rc == 0)
		overlay_punch(s, punch);
unlock:
	if (shared)
		pthread_mutex_unlock(stripe);
	pthread_rwlock_unlock(&s->lock);
	if (reload)
		store_reload_counts_exclusive(s);
out:
	rocksdb_writebatch_destroy(wb);
	free(punch);
	free(rec);
	return rc;
}
