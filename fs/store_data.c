/* store_data.c — file contents: 8 KiB block reads, writes, truncation, zero elision, base files. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rift/log.h"
#include "store_internal.h"

#define BS RIFT_BLOCK_SIZE

void attr_from_rec(const struct rift_branch *b, uint64_t ino, const struct inode_rec *rec,
		   struct rift_attr *attr)
{
	attr->ino = ino;
	attr->st_ino = ino == RIFT_ROOT_INO ? b->rec->root_st_ino : ino;
	attr->mode = rec->mode;
	attr->uid = rec->uid;
	attr->gid = rec->gid;
	attr->nlink = rec->nlink;
	attr->size = rec->size;
	attr->atime = rec->atime;
	attr->mtime = rec->mtime;
	attr->ctime = rec->ctime;
}

/* ---- base files ---- */

static size_t fd_slot(uint64_t data_id, size_t cap)
{
	return (size_t)((data_id * 0x9E3779B97F4A7C15ull) >> 23) & (cap - 1);
}

static void fd_release(struct base_fd *f)
{
	if (close(f->fd) != 0)
		LOG_WARN("store", "closing a base file failed: %s", strerror(errno));
	free(f);
}

/*
 * Empties the table (caller holds fd_mu). An entry a reader still holds is only marked: the
 * reader's base_fd_put closes it, so no pread ever sees a closed or reused descriptor number.
 */
static void fd_evict_all(struct rift_store *s)
{
	size_t i;

	for (i = 0; i < s->fds_cap; i++) {
		struct base_fd *f = s->fds[i];
		if (f == NULL)
			continue;
		s->fds[i] = NULL;
		assert(!f->evicted);
		if (f->refs == 0)
			fd_release(f);
		else
			f->evicted = true;
	}
	s->fds_used = 0;
}

void base_close_fds(struct rift_store *s)
{
	pthread_mutex_lock(&s->fd_mu);
	fd_evict_all(s);
	free(s->fds);
	s->fds = NULL;
	s->fds_cap = 0;
	pthread_mutex_unlock(&s->fd_mu);
}

void base_fd_put(struct rift_store *s, struct base_fd *f)
{
	pthread_mutex_lock(&s->fd_mu);
	assert(f->refs > 0);
	if (--f->refs == 0 && f->evicted)
		fd_release(f);
	pthread_mutex_unlock(&s->fd_mu);
}

static int open_base_file(struct rift_store *s, const struct inode_rec *rec)
{
	char path[4096 + 64];
	int fd, attempt;

	snprintf(path, sizeof(path), "%s/base/%u/%s", s->state_dir, rec->base_gen, rec->tail);
	for (attempt = 0; attempt < 2; attempt++) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			return fd;
		if ((errno != EMFILE && errno != ENFILE) || attempt > 0)
			break;
		/* Out of descriptors: give back the cached ones nobody is reading and retry. */
		fd_evict_all(s);
	}
	if (errno == EMFILE || errno == ENFILE || errno == ENOMEM) {
		int e = errno;
		LOG_WARN("store",
			 "base file %s cannot be opened: %s; this read fails, later ones retry "
			 "(raise riftd's open-files limit)",
			 path, strerror(e));
		return -e;
	}
	LOG_ERROR("store", "base file %s cannot be opened: %s", path, strerror(errno));
	return -EIO;
}

/*
 * Returns in *out a held reference to the base file behind rec (the caller preads it and then
 * calls base_fd_put), or a negative errno: -EMFILE/-ENFILE when riftd ran out of descriptors
 * (not sticky; the next read tries again). Base files stay open: a Postgres data directory has
 * a few thousand; at the cap the table is emptied whole rather than tracking recency, and
 * entries still held close when their last reader lets go.
 */
int base_fd_get(struct rift_store *s, const struct inode_rec *rec, uint64_t data_id,
		struct base_fd **out)
{
	struct base_fd *f = NULL;
	size_t i;
	int rc = 0, fd;

	pthread_mutex_lock(&s->fd_mu);
	if (s->fds_cap != 0) {
		for (i = fd_slot(data_id, s->fds_cap); s->fds[i] != NULL;
		     i = (i + 1) & (s->fds_cap - 1)) {
			if (s->fds[i]->data_id == data_id) {
				f = s->fds[i];
				goto hold;
			}
		}
	}
	if (s->fds_used >= s->fds_max)
		fd_evict_all(s);
	if (s->fds_cap == 0) {
		/* twice the cap keeps probe chains short */
		size_t cap = 16;
		while (cap < 2 * s->fds_max)
			cap *= 2;
		s->fds = calloc(cap, sizeof(*s->fds));
		if (s->fds == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		s->fds_cap = cap;
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	fd = open_base_file(s, rec);
	if (fd < 0) {
		free(f);
		f = NULL;
		rc = fd;
		goto out;
	}
	f->data_id = data_id;
	f->fd = fd;
	for (i = fd_slot(data_id, s->fds_cap); s->fds[i] != NULL; i = (i + 1) & (s->fds_cap - 1))
		;
	s->fds[i] = f;
	s->fds_used++;
hold:
	f->refs++;
	assert(f->refs > 0);
out:
	pthread_mutex_unlock(&s->fd_mu);
	*out = f;
	return rc;
}

/* ---- block resolution ---- */

bool block_masked(const struct inode_rec *rec, uint64_t layer, uint64_t block)
{
	uint32_t i;

	for (i = 0; i < rec->nmasks; i++)
		if (layer < rec->masks[i].layer && block >= rec->masks[i].limit)
			return true;
	return false;
}

static bool base_has(const struct inode_rec *rec, uint64_t block)
{
	return rec->base_gen != 0 && block * BS < rec->base_size && !block_masked(rec, 0, block);
}

/* Gets block (layer, data, block) into out: 1 found, 0 absent, <0 error. */
static int get_block(struct rift_store *s, uint64_t layer, uint64_t data_id, uint64_t block,
		     uint8_t *out)
{
	uint8_t k[DATA_KEY_LEN];
	rocksdb_pinnableslice_t *ps;
	char *err = NULL;
	const char *v;
	size_t n;

	key_data(k, layer, data_id, block);
	ps = rocksdb_get_pinned_cf(s->db, s->ro, s->cf_data, (const char *)k, sizeof(k), &err);
	if (err != NULL)
		return store_fail(s, err, "block read");
	if (ps == NULL)
		return 0;
	v = rocksdb_pinnableslice_value(ps, &n);
	if (n == 0)
		memset(out, 0, BS);
	else if (n == BS)
		memcpy(out, v, BS);
	else {
		rocksdb_pinnableslice_destroy(ps);
		return store_fail(s, NULL, "block read (damaged block)");
	}
	rocksdb_pinnableslice_destroy(ps);
	return 1;
}

static bool holds(const struct data_index_entry *e, uint64_t layer)
{
	uint32_t i;

	for (i = 0; e != NULL && i < e->n; i++)
		if (e->v[i].layer == layer)
			return true;
	return false;
}

/* Whether the index says layer holds blocks of data_id (takes mem_mu: writers of other files
 * change the index while this runs). */
static bool layer_holds(struct rift_store *s, uint64_t data_id, uint64_t layer)
{
	bool h;

	pthread_mutex_lock(&s->mem_mu);
	h = holds(index_find(s, data_id), layer);
	pthread_mutex_unlock(&s->mem_mu);
	return h;
}

/* Bit i set: chain position i (i < 64) holds blocks of data_id. Positions from 64 on are
 * asked one at a time (squash keeps chains far shorter). */
static uint64_t chain_holders(struct rift_branch *b, uint64_t data_id)
{
	struct rift_store *s = b->store;
	struct data_index_entry *e;
	uint64_t mask = 0;
	uint32_t i;

	pthread_mutex_lock(&s->mem_mu);
	e = index_find(s, data_id);
	for (i = 0; e != NULL && e->n > 0 && i < b->rec->depth && i < 64; i++)
		if (holds(e, b->rec->chain[i]))
			mask |= 1ull << i;
	pthread_mutex_unlock(&s->mem_mu);
	return mask;
}

/*
 * Resolves one block as the branch sees it, ignoring layer skip (0 = none): the newest chain
 * layer that the index says holds blocks of this data id and that no truncation masks, else
 * the base file, else zeros. *older_data tells whether anything but zeros-by-absence exists.
 */
static int resolve_block(struct rift_branch *b, const struct inode_rec *rec, uint64_t block,
			 uint64_t skip, uint8_t *out, bool *found_any)
{
	struct rift_store *s = b->store;
	uint64_t holders = chain_holders(b, rec->data_id);
	struct base_fd *bf;
	uint32_t i;
	int rc;
	ssize_t got;

	*found_any = false;
	for (i = 0; i < b->rec->depth; i++) {
		uint64_t layer = b->rec->chain[i];
		bool h = i < 64 ? (holders >> i) & 1 : layer_holds(s, rec->data_id, layer);
		if (layer == skip || !h || block_masked(rec, layer, block))
			continue;
		rc = get_block(s, layer, rec->data_id, block, out);
		if (rc != 0) {
			*found_any = rc > 0;
			return rc < 0 ? rc : 0;
		}
	}
	if (!base_has(rec, block)) {
		memset(out, 0, BS);
		return 0;
	}
	rc = base_fd_get(s, rec, rec->data_id, &bf);
	if (rc < 0)
		return rc;
	got = pread(bf->fd, out, BS, (off_t)(block * BS));
	base_fd_put(s, bf);
	if (got < 0)
		return -EIO;
	memset(out + got, 0, BS - (size_t)got);
	*found_any = true;
	return 0;
}

ssize_t rift_store_read(struct rift_branch *b, uint64_t ino, uint64_t off, size_t len, void *buf)
{
	struct rift_store *s = b->store;
	struct inode_rec *rec = malloc(sizeof(*rec));
	uint8_t *block = malloc(BS);
	uint64_t end, pos;
	bool found;
	ssize_t rc;

	if (rec == NULL || block == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	pthread_rwlock_rdlock(&s->lock);
	rc = inode_get(b, ino, rec, NULL);
	if (rc != 0)
		goto unlock;
	if (S_ISDIR(rec->mode)) {
		rc = -EISDIR;
		goto unlock;
	}
	if (!S_ISREG(rec->mode)) {
		rc = -EINVAL;
		goto unlock;
	}
	end = off + len < rec->size ? off + len : rec->size;
	for (pos = off; pos < end;) {
		uint64_t n = pos / BS, in = pos % BS;
		size_t take = (size_t)(BS - in < end - pos ? BS - in : end - pos);
		int r = resolve_block(b, rec, n, 0, block, &found);
		if (r < 0) {
			rc = r;
			goto unlock;
		}
		memcpy((uint8_t *)buf + (pos - off), block + in, take);
		pos += take;
	}
	rc = off < end ? (ssize_t)(end - off) : 0;
unlock:
	pthread_rwlock_unlock(&s->lock);
out:
	free(block);
	free(rec);
	return rc;
}

static void account(struct rift_store *s, uint64_t layer, int64_t dfull, int64_t dzero)
{
	struct layer *l = store_layer(s, layer);

	ASSERT_MEM(s);
	if (l == NULL)
		return;
	/* counts never go below zero: a negative delta only removes what was counted */
	assert((int64_t)l->blocks + dfull + dzero >= 0);
	assert((int64_t)l->bytes + dfull * (int64_t)(BS + DATA_KEY_LEN) +
		   dzero * (int64_t)DATA_KEY_LEN >=
	       0);
	l->blocks += (uint64_t)(dfull + dzero);
	l->bytes += (uint64_t)(dfull * (int64_t)(BS + DATA_KEY_LEN) + dzero * DATA_KEY_LEN);
}

static bool all_zero(const uint8_t *p)
{
	static const uint8_t zeros[64];
	size_t i;

	for (i = 0; i < BS; i += sizeof(zeros))
		if (memcmp(p + i, zeros, sizeof(zeros)) != 0)
			return false;
	return true;
}

/*
 * Stores block content for (head, data id, block) into wb, deciding between a full block, a
 * ZERO marker (zeros that must hide older data) and nothing at all (zeros over nothing).
 * head_state: 0 absent from the head, 1 full there, 2 ZERO marker there. Keeps counts exact.
 */
static void store_block(struct rift_branch *b, rocksdb_writebatch_t *wb,
			const struct inode_rec *rec, uint64_t block, const uint8_t *content,
			int head_state)
{
	struct rift_store *s = b->store;
	uint64_t head = b->rec->chain[0];
	struct presence *p;
	uint8_t k[DATA_KEY_LEN];
	int new_state;

	key_data(k, head, rec->data_id, block);
	if (!all_zero(content)) {
		rocksdb_writebatch_put_cf(wb, s->cf_data, (const char *)k, sizeof(k),
					  (const char *)content, BS);
		new_state = 1;
	} else {
		uint8_t scratch[BS];
		bool older;
		/* Zeros need a marker only if an older layer or the base could show through. */
		if (resolve_block(b, rec, block, head, scratch, &older) < 0)
			older = true;
		if (older) {
			rocksdb_writebatch_put_cf(wb, s->cf_data, (const char *)k, sizeof(k), "",
						  0);
			new_state = 2;
		} else {
			if (head_state != 0)
				rocksdb_writebatch_delete_cf(wb, s->cf_data, (const char *)k,
							     sizeof(k));
			new_state = 0;
		}
	}
	/* The presence vector may move when another file's writer adds to the index: p is
	 * only used under mem_mu. */
	pthread_mutex_lock(&s->mem_mu);
	p = index_add(s, rec->data_id, head);
	if (p != NULL && head_state != new_state) {
		int64_t df = (new_state == 1) - (head_state == 1);
		int64_t dz = (new_state == 2) - (head_state == 2);
		assert((int64_t)p->nfull + df >= 0 && (int64_t)p->nzero + dz >= 0);
		p->nfull += (uint64_t)df;
		p->nzero += (uint64_t)dz;
		account(s, head, df, dz);
	}
	/* p == NULL: out of memory; the sticky-error path of the caller reports it */
	pthread_mutex_unlock(&s->mem_mu);
}

/* Adds the persistent copy of the head's presence record for data_id to wb. */
static void head_presence_put(struct rift_branch *b, rocksdb_writebatch_t *wb, uint64_t data_id)
{
	struct rift_store *s = b->store;
	struct presence *p;

	pthread_mutex_lock(&s->mem_mu);
	p = index_get(s, data_id, b->rec->chain[0]);
	if (p != NULL)
		presence_put(s, wb, data_id, p);
	pthread_mutex_unlock(&s->mem_mu);
}

/* Reads the head's own copy of a block: 0 absent, 1 full, 2 ZERO marker; <0 error. */
static int head_block(struct rift_branch *b, const struct inode_rec *rec, uint64_t block,
		      uint8_t *out)
{
	struct rift_store *s = b->store;
	uint64_t head = b->rec->chain[0];
	uint8_t k[DATA_KEY_LEN];
	rocksdb_pinnableslice_t *ps;
	char *err = NULL;
	const char *v;
	size_t n;

	if (!layer_holds(s, rec->data_id, head))
		return 0;
	key_data(k, head, rec->data_id, block);
	ps = rocksdb_get_pinned_cf(s->db, s->ro, s->cf_data, (const char *)k, sizeof(k), &err);
	if (err != NULL)
		return store_fail(s, err, "block read");
	if (ps == NULL)
		return 0;
	v = rocksdb_pinnableslice_value(ps, &n);
	if (n == BS)
		memcpy(out, v, BS);
	else
		memset(out, 0, BS);
	rocksdb_pinnableslice_destroy(ps);
	return n == BS ? 1 : 2;
}

/* Writes one block's worth [in, in+take) of src at block, read-modify-write when partial. */
static int write_block(struct rift_branch *b, rocksdb_writebatch_t *wb, const struct inode_rec *rec,
		       uint64_t block, size_t in, size_t take, const uint8_t *src, uint8_t *scratch)
{
	bool found;
	int head_state, rc;

	head_state = head_block(b, rec, block, scratch);
	if (head_state < 0)
		return head_state;
	if (take < BS && head_state == 0) {
		if (block * BS < rec->size) {
			rc = resolve_block(b, rec, block, b->rec->chain[0], scratch, &found);
			if (rc < 0)
				return rc;
		} else {
			memset(scratch, 0, BS);
		}
	}
	memcpy(scratch + in, src, take);
	store_block(b, wb, rec, block, scratch, head_state);
	return 0;
}

/*
 * Asks the space policy whether [off, end) may be written. The growth counted is every block of
 * the range. The size limit only stops writes that extend the file: inside its size (WAL
 * segments are sized when Postgres creates them; pages rewritten by a checkpoint) they pass,
 * which keeps a server at its limit alive (store.h, rift_store_branch_set_max_size).
 */
static int admit_write(struct rift_branch *b, const struct inode_rec *rec, uint64_t off,
		       uint64_t end, const uint8_t *buf)
{
	uint64_t first = off / BS, last = (end + BS - 1) / BS;
	uint64_t grow = (last - first) * (BS + DATA_KEY_LEN);
	size_t i;

	/* A few zero bytes store nothing: Postgres sizes a new WAL segment with one zero byte at
	 * its end, which must pass at a limit and under the reserve. Whole zero blocks do count:
	 * Postgres extends a relation by writing a zero page, and that is where its growth must
	 * stop ("could not extend file"); the page's contents come later, inside the file. */
	if (end - off < BS) {
		for (i = 0; i < end - off && buf[i] == 0; i++)
			;
		if (i == end - off)
			return 0;
	}
	return space_admit(b, grow, end > rec->size, end);
}

/*
 * Writes take the store lock shared and their inode's stripe (struct rift_branch), not the lock
 * for writing: writes to other files and of other branches go on meanwhile, and RocksDB groups
 * their WAL appends. Namespace changes (which hold the lock for writing) wait for them.
 */
ssize_t rift_store_write(struct rift_branch *b, uint64_t ino, uint64_t off, size_t len,
			 const void *buf)
{
	struct rift_store *s = b->store;
	struct inode_rec *rec = malloc(sizeof(*rec));
	uint8_t *scratch = malloc(BS);
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	pthread_mutex_t *stripe = ino_stripe(b, ino);
	uint64_t pos, end = off + len;
	bool reload = false;
	ssize_t rc;

	if (rec == NULL || scratch == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (end < off || end > (1ull << 50)) {
		rc = -EFBIG;
		goto out;
	}
	pthread_rwlock_rdlock(&s->lock);
	pthread_mutex_lock(stripe);
	rc = atomic_load(&s->error);
	if (rc != 0)
		goto unlock;
	rc = inode_get(b, ino, rec, NULL);
	if (rc != 0)
		goto unlock;
	if (!S_ISREG(rec->mode)) {
		rc = S_ISDIR(rec->mode) ? -EISDIR : -EINVAL;
		goto unlock;
	}
	rc = admit_write(b, rec, off, end, buf);
	if (rc != 0)
		goto unlock;
	for (pos = off; pos < end;) {
		uint64_t n = pos / BS, in = pos % BS;
		size_t take = (size_t)(BS - in < end - pos ? BS - in : end - pos);
		rc = write_block(b, wb, rec, n, (size_t)in, take,
				 (const uint8_t *)buf + (pos - off), scratch);
		if (rc < 0) {
			/* blocks before this one changed the in-memory counts already */
			reload = pos > off;
			goto unlock;
		}
		pos += take;
	}
	if (end > rec->size)
		rec->size = end;
	rec->mtime = rec->ctime = now_ts();
	inode_put(b, wb, ino, rec);
	if (len > 0)
		head_presence_put(b, wb, rec->data_id);
	rc = branch_write_shared(b, wb, &reload);
	if (rc == 0)
		rc = (ssize_t)len;
unlock:
	pthread_mutex_unlock(stripe);
	pthread_rwlock_unlock(&s->lock);
	if (reload)
		store_reload_counts_exclusive(s);
out:
	rocksdb_writebatch_destroy(wb);
	free(scratch);
	free(rec);
	return rc;
}

void data_drop_layer(struct rift_store *s, rocksdb_writebatch_t *wb, uint64_t layer,
		     uint64_t data_id)
{
	struct presence *p = index_get(s, data_id, layer);
	uint8_t from[DATA_KEY_LEN], to[DATA_KEY_LEN];

	if (p == NULL)
		return;
	key_data(from, layer, data_id, 0);
	key_data(to, layer, data_id + 1, 0);
	rocksdb_writebatch_delete_range_cf(wb, s->cf_data, (const char *)from, sizeof(from),
					   (const char *)to, sizeof(to));
	if (p->nfull != 0)
		reclaim_note(s, layer, data_id, p->nfull * BS);
	account(s, layer, -(int64_t)p->nfull, -(int64_t)p->nzero);
	p->nfull = p->nzero = 0;
	presence_put(s, wb, data_id, p);
	index_remove(s, data_id, layer);
}

/* Deletes the head's own blocks >= first, keeping the counts exact. */
static int drop_head_tail(struct rift_branch *b, rocksdb_writebatch_t *wb, uint64_t data_id,
			  uint64_t first)
{
	struct rift_store *s = b->store;
	uint64_t head = b->rec->chain[0];
	struct presence *p = index_get(s, data_id, head);
	uint8_t from[DATA_KEY_LEN], to[DATA_KEY_LEN];
	rocksdb_readoptions_t *ro;
	rocksdb_iterator_t *it;
	int64_t df = 0, dz = 0;
	char *err = NULL;
	int rc = 0;

	if (p == NULL)
		return 0;
	key_data(from, head, data_id, first);
	key_data(to, head, data_id + 1, 0);
	ro = rocksdb_readoptions_create();
	rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)to, sizeof(to));
	it = rocksdb_create_iterator_cf(s->db, ro, s->cf_data);
	for (rocksdb_iter_seek(it, (const char *)from, sizeof(from)); rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t vl;
		rocksdb_iter_value(it, &vl);
		if (vl == 0)
			dz--;
		else
			df--;
	}
	rocksdb_iter_get_error(it, &err);
	rocksdb_iter_destroy(it);
	rocksdb_readoptions_destroy(ro);
	if (err != NULL)
		return store_fail(s, err, "truncate scan");
	if (df == 0 && dz == 0)
		return 0;
	rocksdb_writebatch_delete_range_cf(wb, s->cf_data, (const char *)from, sizeof(from),
					   (const char *)to, sizeof(to));
	assert((int64_t)p->nfull + df >= 0 && (int64_t)p->nzero + dz >= 0);
	p->nfull += (uint64_t)df;
	p->nzero += (uint64_t)dz;
	account(s, head, df, dz);
	presence_put(s, wb, data_id, p);
	return rc;
}

static int add_mask(struct inode_rec *rec, uint64_t layer, uint64_t limit)
{
	uint32_t i, j = 0;

	/* A mask at an older-or-equal layer with a limit at least as high hides nothing more. */
	for (i = 0; i < rec->nmasks; i++)
		if (!(rec->masks[i].layer <= layer && rec->masks[i].limit >= limit))
			rec->masks[j++] = rec->masks[i];
	rec->nmasks = j;
	if (rec->nmasks == MAX_MASKS)
		return -EFBIG;
	rec->masks[rec->nmasks].layer = layer;
	rec->masks[rec->nmasks].limit = limit;
	rec->nmasks++;
	return 0;
}

/*
 * Changes rec's size to new_size in the branch head (caller holds the write lock and puts the
 * inode afterwards). To 0: a fresh data id, O(1). Shrinking: the head's blocks past the end go,
 * older ones are masked, the last partial block is rewritten with a zero tail. Growing: the
 * new range already reads as zeros because nothing visible lies past the old end.
 */
int data_truncate(struct rift_branch *b, rocksdb_writebatch_t *wb, struct inode_rec *rec,
		  uint64_t new_size)
{
	struct rift_store *s = b->store;
	uint64_t head = b->rec->chain[0], limit;
	uint8_t *scratch;
	int rc = 0;

	if (new_size > (1ull << 50))
		return -EFBIG;
	if (new_size >= rec->size) {
		rec->size = new_size;
		return 0;
	}
	if (new_size == 0) {
		data_drop_layer(s, wb, head, rec->data_id);
		rec->data_id = store_alloc_id(s, wb);
		rec->base_gen = 0;
		rec->nmasks = 0;
		rec->size = 0;
		return 0;
	}
	limit = (new_size + BS - 1) / BS;
	rc = drop_head_tail(b, wb, rec->data_id, limit);
	if (rc != 0)
		return rc;
	if (new_size % BS != 0) {
		/* The kept part of the last block stays; its tail must read as zeros later. */
		bool found;
		int st;
		scratch = malloc(BS);
		if (scratch == NULL)
			return -ENOMEM;
		st = head_block(b, rec, limit - 1, scratch);
		rc = st < 0 ? st : 0;
		if (st == 0)
			rc = resolve_block(b, rec, limit - 1, head, scratch, &found);
		if (rc == 0) {
			memset(scratch + new_size % BS, 0, BS - new_size % BS);
			store_block(b, wb, rec, limit - 1, scratch, st);
		}
		free(scratch);
		if (rc != 0)
			return rc;
	}
	rc = add_mask(rec, head, limit);
	if (rc == 0)
		rec->size = new_size;
	{
		struct presence *p = index_get(s, rec->data_id, head);
		if (p != NULL)
			presence_put(s, wb, rec->data_id, p);
	}
	return rc;
}

int rift_store_fallocate(struct rift_branch *b, uint64_t ino, uint64_t off, uint64_t len)
{
	struct rift_store *s = b->store;
	struct inode_rec *rec = malloc(sizeof(*rec));
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	bool reload = false;
	int rc;

	if (rec == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (off + len < off || off + len > (1ull << 50)) {
		rc = -EFBIG;
		goto out;
	}
	pthread_rwlock_rdlock(&s->lock); /* shared, with the inode's stripe: as writes */
	pthread_mutex_lock(ino_stripe(b, ino));
	rc = atomic_load(&s->error);
	if (rc == 0)
		rc = inode_get(b, ino, rec, NULL);
	if (rc == 0 && !S_ISREG(rec->mode))
		rc = S_ISDIR(rec->mode) ? -EISDIR : -ENODEV;
	if (rc == 0 && off + len > rec->size) {
		rec->size = off + len;
		rec->ctime = now_ts();
		inode_put(b, wb, ino, rec);
		rc = branch_write_shared(b, wb, &reload);
	}
	pthread_mutex_unlock(ino_stripe(b, ino));
	pthread_rwlock_unlock(&s->lock);
	if (reload)
		store_reload_counts_exclusive(s);
out:
	rocksdb_writebatch_destroy(wb);
	free(rec);
	return rc;
}
