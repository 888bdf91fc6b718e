/* store_changes.c — the blocks of a file two branches wrote since their chains parted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store_internal.h"

/* Position in b's chain of the newest layer that c's chain holds too, or -1. */
static int common_pos(const struct branch_rec *b, const struct branch_rec *c)
{
	uint32_t i, j;

	for (i = 0; i < b->depth; i++)
		for (j = 0; j < c->depth; j++)
			if (b->chain[i] == c->chain[j])
				return (int)i;
	return -1;
}

int rift_store_common_layer(struct rift_store *s, const char *a, const char *b, uint64_t *layer,
			    bool *is_base)
{
	struct branch_rec *ra, *rb;
	struct layer *l;
	int pos, rc = 0;

	pthread_rwlock_rdlock(&s->lock);
	ra = store_branch_find(s, a);
	rb = store_branch_find(s, b);
	if (ra == NULL || rb == NULL) {
		rc = -ENOENT;
		goto out;
	}
	pos = common_pos(ra, rb);
	if (pos < 0) {
		rc = -ESRCH;
		goto out;
	}
	*layer = ra->chain[pos];
	/* the base files as they are: the root layer of a base generation, or layers over it
	 * that hold no block (a branch made from one never started: nothing was written) */
	*is_base = true;
	for (l = store_layer(s, *layer); l != NULL && l->parent != 0; l = store_layer(s, l->parent))
		if (l->blocks != 0)
			*is_base = false;
	if (l == NULL)
		*is_base = false;
out:
	pthread_rwlock_unlock(&s->lock);
	return rc;
}

/* Looks path up through chain positions 0..depth of b: 0 with *ino and *rec, -ENOENT, -errno. */
static int chain_lookup(struct rift_store *s, const struct branch_rec *b, const char *path,
			uint64_t *ino, struct inode_rec *rec)
{
	uint8_t k[KEY_MAX], v[DENTRY_LEN], *iv = NULL;
	char name[RIFT_NAME_MAX_LEN + 1];
	const char *p = path, *slash;
	uint64_t dir = RIFT_ROOT_INO, next;
	uint32_t i;
	size_t n, len;
	int rc = 0;

	iv = malloc(INODE_BUF);
	if (iv == NULL)
		return -ENOMEM;
	while (*p != '\0') {
		slash = strchr(p, '/');
		len = slash ? (size_t)(slash - p) : strlen(p);
		if (len == 0 || len > RIFT_NAME_MAX_LEN) {
			rc = -EINVAL;
			goto out;
		}
		memcpy(name, p, len);
		name[len] = '\0';
		p += len + (slash ? 1 : 0);
		rc = -ENOENT;
		for (i = 0; i < b->depth; i++) {
			rc =
			    meta_get(s, k, key_dentry(k, b->chain[i], dir, name), v, sizeof(v), &n);
			if (rc == -ENOENT)
				continue;
			if (rc == 0 && n != DENTRY_LEN)
				rc = -EIO;
			break;
		}
		if (rc != 0)
			goto out;
		next = get_be64(v);
		if (next == 0) { /* a whiteout */
			rc = -ENOENT;
			goto out;
		}
		dir = next;
	}
	rc = -ENOENT;
	for (i = 0; i < b->depth; i++) {
		rc = meta_get(s, k, key_inode(k, b->chain[i], dir), iv, INODE_BUF, &n);
		if (rc == -ENOENT)
			continue;
		if (rc == 0)
			rc = inode_decode(iv, n, rec);
		break;
	}
	if (rc == 0)
		*ino = dir;
out:
	free(iv);
	return rc;
}

/* Growable set of block numbers, never past max entries. */
struct blockset {
	uint64_t *v;
	size_t n, cap, max;
	bool overflow;
};

static int blockset_add(struct blockset *bs, uint64_t block)
{
	uint64_t *nv;
	size_t ncap;

	if (bs->n >= bs->max) {
		bs->overflow = true;
		return 0;
	}
	if (bs->n == bs->cap) {
		ncap = bs->cap ? bs->cap * 2 : 64;
		if (ncap > bs->max)
			ncap = bs->max;
		nv = realloc(bs->v, ncap * sizeof(*nv));
		if (nv == NULL)
			return -ENOMEM;
		bs->v = nv;
		bs->cap = ncap;
	}
	bs->v[bs->n++] = block;
	return 0;
}

/* Blocks of data_id that chain positions 0..upto-1 of b hold, by the presence index's counts. */
static uint64_t side_count(struct rift_store *s, const struct branch_rec *b, int upto,
			   uint64_t data_id)
{
	struct data_index_entry *e;
	uint64_t n = 0;
	uint32_t k;
	int i;

	pthread_mutex_lock(&s->mem_mu);
	e = index_find(s, data_id);
	for (i = 0; e != NULL && i < upto; i++)
		for (k = 0; k < e->n; k++)
			if (e->v[k].layer == b->chain[i])
				n += e->v[k].nfull + e->v[k].nzero;
	pthread_mutex_unlock(&s->mem_mu);
	return n;
}

/* Whether the index says layer holds blocks of data_id. */
static bool layer_has(struct rift_store *s, uint64_t data_id, uint64_t layer)
{
	struct data_index_entry *e;
	bool h = false;
	uint32_t i;

	pthread_mutex_lock(&s->mem_mu);
	e = index_find(s, data_id);
	for (i = 0; e != NULL && i < e->n; i++)
		if (e->v[i].layer == layer)
			h = true;
	pthread_mutex_unlock(&s->mem_mu);
	return h;
}

/* Adds to bs the blocks below limit of data_id that layer holds (keys only are needed, but
 * RocksDB reads the values with them: the cost is that of the changed blocks). */
static int layer_blocks(struct rift_store *s, uint64_t layer, uint64_t data_id, uint64_t limit,
			struct blockset *bs)
{
	uint8_t from[DATA_KEY_LEN], to[DATA_KEY_LEN];
	rocksdb_readoptions_t *ro;
	rocksdb_iterator_t *it;
	char *err = NULL;
	int rc = 0;

	if (!layer_has(s, data_id, layer))
		return 0;
	key_data(from, layer, data_id, 0);
	key_data(to, layer, data_id, limit);
	ro = rocksdb_readoptions_create();
	rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)to, sizeof(to));
	it = rocksdb_create_iterator_cf(s->db, ro, s->cf_data);
	for (rocksdb_iter_seek(it, (const char *)from, sizeof(from));
	     rc == 0 && !bs->overflow && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t kl;
		const char *key = rocksdb_iter_key(it, &kl);
		if (kl != DATA_KEY_LEN)
			continue;
		rc = blockset_add(bs, get_be64((const uint8_t *)key + 16));
	}
	rocksdb_iter_get_error(it, &err);
	rocksdb_iter_destroy(it);
	rocksdb_readoptions_destroy(ro);
	if (err != NULL)
		return store_fail(s, err, "changed blocks scan");
	return rc;
}

/* One side: its blocks written in chain positions 0..upto-1 (chain[upto] is the shared layer),
 * and the truncations made there. */
static int side_blocks(struct rift_store *s, const struct branch_rec *b, int upto,
		       const struct inode_rec *rec, uint64_t *tail, struct blockset *bs)
{
	uint32_t m;
	int i, rc = 0;

	/* a truncation made above the shared layer hides older blocks past its limit; masks carry
	 * the id of the head they were made in, and ids only grow, so newer than the shared layer
	 * means made since (a squash may have merged that head away, so ids are compared) */
	for (m = 0; m < rec->nmasks; m++)
		if (rec->masks[m].layer > b->chain[upto] && rec->masks[m].limit < *tail)
			*tail = rec->masks[m].limit;
	for (i = 0; rc == 0 && i < upto; i++)
		rc = layer_blocks(s, b->chain[i], rec->data_id, *tail, bs);
	return rc;
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

int rift_store_file_changes(struct rift_store *s, const char *a, const char *b, const char *path,
			    size_t max, struct rift_file_changes *out)
{
	struct inode_rec *ra = malloc(sizeof(*ra)), *rb = malloc(sizeof(*rb));
	struct blockset bs = { .max = max };
	struct branch_rec *ba, *bb;
	uint64_t ia = 0, ib = 0, hi;
	int pa, pb, rc;
	size_t i, j;

	memset(out, 0, sizeof(*out));
	if (ra == NULL || rb == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	pthread_rwlock_rdlock(&s->lock);
	ba = store_branch_find(s, a);
	bb = store_branch_find(s, b);
	if (ba == NULL || bb == NULL) {
		rc = -ENOENT;
		goto unlock;
	}
	pa = common_pos(ba, bb);
	pb = common_pos(bb, ba);
	if (pa < 0 || pb < 0) {
		rc = -ESRCH;
		goto unlock;
	}
	assert(ba->chain[pa] == bb->chain[pb]);
	rc = chain_lookup(s, ba, path, &ia, ra);
	if (rc != 0 && rc != -ENOENT)
		goto unlock;
	out->in_a = rc == 0 && S_ISREG(ra->mode);
	rc = chain_lookup(s, bb, path, &ib, rb);
	if (rc != 0 && rc != -ENOENT)
		goto unlock;
	out->in_b = rc == 0 && S_ISREG(rb->mode);
	rc = 0;
	out->blocks_a = out->in_a ? (ra->size + RIFT_BLOCK_SIZE - 1) / RIFT_BLOCK_SIZE : 0;
	out->blocks_b = out->in_b ? (rb->size + RIFT_BLOCK_SIZE - 1) / RIFT_BLOCK_SIZE : 0;
	/* the same file on both sides: same inode and content lineage (a truncate to 0, a new
	 * file under the old name, gives a new data id); else every block counts as changed */
	out->same_file =
	    out->in_a && out->in_b && ia == ib && ra->data_id == rb->data_id && ra->data_id != 0;
	if (!out->same_file)
		goto unlock;
	/* past the shorter side, blocks exist on one side only */
	out->tail = out->blocks_a < out->blocks_b ? out->blocks_a : out->blocks_b;
	/* more than max by the counts alone: no need to read the keys (and their values) */
	if (side_count(s, ba, pa, ra->data_id) + side_count(s, bb, pb, rb->data_id) > max) {
		bs.overflow = true;
		goto unlock;
	}
	rc = side_blocks(s, ba, pa, ra, &out->tail, &bs);
	if (rc == 0)
		rc = side_blocks(s, bb, pb, rb, &out->tail, &bs);
unlock:
	pthread_rwlock_unlock(&s->lock);
	if (rc != 0 || !out->same_file)
		goto out;
	if (bs.overflow) {
		out->overflow = true;
		goto out;
	}
	/* sorted, distinct, below the tail (a mask found late lowers it) */
	if (bs.n > 0) /* qsort takes no NULL, even for no elements */
		qsort(bs.v, bs.n, sizeof(*bs.v), cmp_u64);
	hi = out->tail;
	for (i = 0, j = 0; i < bs.n; i++)
		if (bs.v[i] < hi && (j == 0 || bs.v[j - 1] != bs.v[i]))
			bs.v[j++] = bs.v[i];
	out->changed = bs.v;
	out->nchanged = j;
	bs.v = NULL;
out:
	free(bs.v);
	free(ra);
	free(rb);
	return rc;
}
