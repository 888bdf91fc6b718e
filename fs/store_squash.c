/* store_squash.c — keeps chains shallow: merges a frozen layer left with one child into it. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store_internal.h"

#define CHUNK_KEYS 256u

/* data id -> inode number, for the frozen layer's regular files */
struct owner {
	uint64_t data_id, ino;
};

static int cmp_owner(const void *a, const void *b)
{
	const struct owner *x = a, *y = b;

	return x->data_id < y->data_id ? -1 : x->data_id > y->data_id;
}

/* Finds a frozen non-base layer with exactly one child; caller holds the lock. */
static bool pick(struct rift_store *s, uint64_t *frozen, uint64_t *child)
{
	size_t i, j;

	for (i = 0; i < s->nlayers; i++) {
		struct layer *f = &s->layers[i];
		if (f->parent == 0 || !f->frozen || f->nchildren != 1)
			continue;
		for (j = 0; j < s->nlayers; j++) {
			if (s->layers[j].parent == f->id) {
				*frozen = f->id;
				*child = s->layers[j].id;
				return true;
			}
		}
	}
	return false;
}

static bool still_valid(struct rift_store *s, uint64_t fid, uint64_t cid)
{
	struct layer *f = store_layer(s, fid), *c = store_layer(s, cid);

	return f != NULL && c != NULL && f->nchildren == 1 && c->parent == fid &&
	       atomic_load(&s->error) == 0;
}

static int load_owners(struct rift_store *s, uint64_t fid, struct owner **out, size_t *count)
{
	struct inode_rec *rec = malloc(sizeof(*rec));
	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf_meta);
	struct owner *v = NULL;
	size_t n = 0, cap = 0;
	uint8_t prefix[9];
	int rc = rec ? 0 : -ENOMEM;

	prefix[0] = 'I';
	put_be64(prefix + 1, fid);
	for (rocksdb_iter_seek(it, (const char *)prefix, 9); rc == 0 && rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
		const uint8_t *val = (const uint8_t *)rocksdb_iter_value(it, &vl);
		if (kl != 17 || memcmp(k, prefix, 9) != 0)
			break;
		if (inode_decode(val, vl, rec) != 0) {
			rc = -EIO;
			break;
		}
		if (!S_ISREG(rec->mode))
			continue;
		if (n == cap) {
			struct owner *nv;
			cap = cap ? cap * 2 : 256;
			nv = realloc(v, cap * sizeof(*nv));
			if (nv == NULL) {
				rc = -ENOMEM;
				break;
			}
			v = nv;
		}
		v[n].data_id = rec->data_id;
		v[n].ino = get_be64(k + 9);
		n++;
	}
	rocksdb_iter_destroy(it);
	free(rec);
	if (rc != 0) {
		free(v);
		return rc;
	}
	if (n > 0)
		qsort(v, n, sizeof(*v), cmp_owner);
	*out = v;
	*count = n;
	return 0;
}

/* The inode version the child sees for ino: its own, else the frozen layer's. */
static int child_view(struct rift_store *s, uint64_t fid, uint64_t cid, uint64_t ino,
		      struct inode_rec *rec)
{
	uint8_t k[KEY_MAX], v[INODE_BUF];
	size_t n;
	int rc = meta_get(s, k, key_inode(k, cid, ino), v, sizeof(v), &n);

	if (rc == -ENOENT)
		rc = meta_get(s, k, key_inode(k, fid, ino), v, sizeof(v), &n);
	return rc == 0 ? inode_decode(v, n, rec) : rc;
}

/*
 * Copies one chunk of the frozen layer's blocks that the child still sees into the child.
 * Each chunk leaves the child's view unchanged (the copies equal what it read through), so
 * a crash between chunks is harmless. *cursor advances; *done when the layer is exhausted.
 */
static int copy_chunk(struct rift_store *s, uint64_t fid, uint64_t cid, const struct owner *own,
		      size_t nown, uint8_t *cursor, bool *done)
{
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	struct inode_rec *rec = malloc(sizeof(*rec));
	uint8_t upper[8];
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	rocksdb_iterator_t *it;
	uint64_t cached_ino = 0;
	unsigned seen = 0;
	int rc = rec ? 0 : -ENOMEM, have_rec = 0;

	put_be64(upper, fid + 1);
	rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)upper, 8);
	it = rocksdb_create_iterator_cf(s->db, ro, s->cf_data);
	*done = true;
	for (rocksdb_iter_seek(it, (const char *)cursor, DATA_KEY_LEN);
	     rc == 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
		const char *val = rocksdb_iter_value(it, &vl);
		uint64_t data_id, block;
		struct owner key, *o;
		uint8_t ck[DATA_KEY_LEN], tmp[RIFT_BLOCK_SIZE];
		struct presence *p;
		char *err = NULL;
		rocksdb_pinnableslice_t *ps;
		if (kl != DATA_KEY_LEN)
			continue;
		if (seen++ == CHUNK_KEYS) {
			memcpy(cursor, k, DATA_KEY_LEN);
			*done = false;
			break;
		}
		data_id = get_be64(k + 8);
		block = get_be64(k + 16);
		key.data_id = data_id;
		o = nown ? bsearch(&key, own, nown, sizeof(*own), cmp_owner) : NULL;
		if (o == NULL)
			continue; /* no file of the frozen layer owns it: unreachable */
		if (!have_rec || cached_ino != o->ino) {
			rc = child_view(s, fid, cid, o->ino, rec);
			if (rc == -ENOENT) {
				rc = 0;
				continue;
			}
			have_rec = 1;
			cached_ino = o->ino;
		}
		if (rc != 0 || rec->data_id != data_id || block_masked(rec, fid, block))
			continue; /* truncated away or replaced in the child */
		key_data(ck, cid, data_id, block);
		ps = rocksdb_get_pinned_cf(s->db, s->ro, s->cf_data, (const char *)ck, sizeof(ck),
					   &err);
		if (err != NULL) {
			rc = store_fail(s, err, "squash read");
			break;
		}
		if (ps != NULL) {
			rocksdb_pinnableslice_destroy(ps);
			continue; /* the child's own newer copy wins */
		}
		if (vl != 0 && !(vl == 1 && val[0] == BLOCK_IN_FILE))
			continue;
		if (vl == 1) {
			/* the child's overlay file gets the block before its record names it */
			rc = overlay_read(s, fid, data_id, block, tmp);
			if (rc == 0)
				rc = overlay_write(s, cid, data_id, block, tmp);
			if (rc != 0)
				break;
		}
		rocksdb_writebatch_put_cf(wb, s->cf_data, (const char *)ck, sizeof(ck), val, vl);
		p = index_add(s, data_id, cid);
		if (p == NULL) {
			rc = -ENOMEM;
			break;
		}
		presence_mark(s, p, block);
		if (vl == 0)
			p->nzero++;
		else
			p->nfull++;
		{
			struct layer *c = store_layer(s, cid);
			c->blocks++;
			c->bytes += (vl != 0 ? RIFT_BLOCK_SIZE : 0) + DATA_KEY_LEN;
		}
		presence_put(s, wb, data_id, p);
	}
	rocksdb_iter_destroy(it);
	rocksdb_readoptions_destroy(ro);
	if (rc == 0)
		rc = store_write(s, wb, false);
	/* the counts of this chunk's copies were raised as they went: not committed, redo them */
	if (rc != 0 && store_reload_counts(s) != 0)
		rc = store_fail(s, NULL, "squash rollback");
	rocksdb_writebatch_destroy(wb);
	free(rec);
	return rc;
}

/* Copies the frozen layer's inode records, entries and orphans the child lacks into wb. */
static int copy_meta(struct rift_store *s, uint64_t fid, uint64_t cid, rocksdb_writebatch_t *wb)
{
	const char prefixes[] = { 'I', 'D', 'O' };
	size_t i;
	int rc = 0;

	for (i = 0; i < sizeof(prefixes) && rc == 0; i++) {
		rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf_meta);
		uint8_t prefix[9];
		prefix[0] = (uint8_t)prefixes[i];
		put_be64(prefix + 1, fid);
		for (rocksdb_iter_seek(it, (const char *)prefix, 9); rocksdb_iter_valid(it);
		     rocksdb_iter_next(it)) {
			size_t kl, vl, n;
			const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
			const char *v = rocksdb_iter_value(it, &vl);
			uint8_t ck[KEY_MAX], tmp[INODE_BUF];
			if (kl < 9 || kl > KEY_MAX || memcmp(k, prefix, 9) != 0)
				break;
			memcpy(ck, k, kl);
			put_be64(ck + 1, cid);
			rc = meta_get(s, ck, kl, tmp, sizeof(tmp), &n);
			if (rc == 0)
				continue; /* the child's own version wins */
			if (rc != -ENOENT)
				break;
			rc = 0;
			rocksdb_writebatch_put_cf(wb, s->cf_meta, (const char *)ck, kl, v, vl);
		}
		rocksdb_iter_destroy(it);
	}
	return rc;
}

static int merge(struct rift_store *s, uint64_t fid, uint64_t cid)
{
	struct owner *own = NULL;
	size_t nown = 0, i;
	uint8_t cursor[DATA_KEY_LEN];
	rocksdb_writebatch_t *wb = NULL;
	bool done = false;
	int rc;

	pthread_rwlock_rdlock(&s->lock);
	rc = still_valid(s, fid, cid) ? load_owners(s, fid, &own, &nown) : -EAGAIN;
	pthread_rwlock_unlock(&s->lock);
	if (rc != 0)
		return rc;
	key_data(cursor, fid, 0, 0);
	while (!done) {
		pthread_rwlock_wrlock(&s->lock);
		rc = still_valid(s, fid, cid) ? copy_chunk(s, fid, cid, own, nown, cursor, &done)
					      : -EAGAIN;
		pthread_rwlock_unlock(&s->lock);
		if (rc != 0)
			goto out;
	}
	/* The copies must be durable before the synced batch below drops the frozen layer's. */
	rc = overlay_sync_dirty(s, cid);
	if (rc != 0)
		goto out;
	wb = rocksdb_writebatch_create();
	pthread_rwlock_wrlock(&s->lock);
	rc = still_valid(s, fid, cid) ? copy_meta(s, fid, cid, wb) : -EAGAIN;
	if (rc == 0) {
		struct layer *c = store_layer(s, cid), *f = store_layer(s, fid);
		struct layer csave = *c, fsave = *f;
		c->parent = f->parent;
		c->dirty = true; /* it now holds the frozen layer's changes */
		put_layer(s, wb, c);
		drop_layer(s, wb, fid);
		rc = store_write(s, wb, true);
		if (rc != 0) {
			/* not committed: the frozen layer and the child stay as RocksDB has them */
			*store_layer(s, cid) = csave;
			if (store_layer_add(s, &fsave) == NULL || store_reload_counts(s) != 0)
				rc = store_fail(s, NULL, "squash rollback");
		}
	}
	for (i = 0; rc == 0 && i < s->nbranches; i++)
		rc = store_chain_build(s, s->branches[i]);
	pthread_rwlock_unlock(&s->lock);
	if (rc == 0)
		compact_layer(s, fid);
out:
	if (wb != NULL)
		rocksdb_writebatch_destroy(wb);
	free(own);
	return rc;
}

int squash_once(struct rift_store *s)
{
	uint64_t fid, cid;
	bool found;
	int rc;

	pthread_rwlock_rdlock(&s->lock);
	/* Merging copies blocks before it drops the frozen layer: not while space is short. */
	found = atomic_load(&s->error) == 0 && !space_low(s) && pick(s, &fid, &cid);
	pthread_rwlock_unlock(&s->lock);
	if (!found)
		return 0;
	rc = merge(s, fid, cid);
	if (rc == -EAGAIN)
		return 0; /* the picture changed under us: try again on the next round */
	return rc == 0 ? 1 : rc;
}

int rift_store_squash(struct rift_store *s)
{
	int merged = 0, rc;

	pthread_mutex_lock(&s->squash_mu); /* one squasher at a time */
	while ((rc = squash_once(s)) > 0)
		merged++;
	pthread_mutex_unlock(&s->squash_mu);
	return rc < 0 ? rc : merged;
}

void store_squash_kick(struct rift_store *s)
{
	pthread_mutex_lock(&s->squash_mu);
	s->squash_wanted = true;
	pthread_cond_signal(&s->squash_cv);
	pthread_mutex_unlock(&s->squash_mu);
}

void *squash_thread(void *arg)
{
	struct rift_store *s = arg;

	pthread_setname_np(pthread_self(), "store-squash");
	pthread_mutex_lock(&s->squash_mu);
	for (;;) {
		while (!s->squash_wanted && !s->squash_stop)
			pthread_cond_wait(&s->squash_cv, &s->squash_mu);
		if (s->squash_stop)
			break;
		s->squash_wanted = false;
		while (!s->squash_stop && squash_once(s) > 0)
			;
	}
	pthread_mutex_unlock(&s->squash_mu);
	return NULL;
}
