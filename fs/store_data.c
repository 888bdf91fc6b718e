/* store_data.c — file contents: 8 KiB block resolution, reads, writes, truncation, zero elision. */
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

/* Whether a block is all zeros. */
static bool all_zero(const uint8_t *p)
{
	static const uint8_t zeros[64];
	size_t i;

	for (i = 0; i < BS; i += sizeof(zeros))
		if (memcmp(p + i, zeros, sizeof(zeros)) != 0)
			return false;
	return true;
}

/* What layer's record of a block says: 0 absent, 1 in its overlay file, 2 a ZERO block; <0 an
 * error (a record of another shape is damage). */
static int block_record(struct rift_store *s, uint64_t layer, uint64_t data_id, uint64_t block)
{
	uint8_t k[DATA_KEY_LEN];
	rocksdb_pinnableslice_t *ps;
	char *err = NULL;
	const char *v;
	size_t n;
	int state;

	key_data(k, layer, data_id, block);
	ps = rocksdb_get_pinned_cf(s->db, s->ro, s->cf_data, (const char *)k, sizeof(k), &err);
	if (err != NULL)
		return store_fail(s, err, "block read");
	if (ps == NULL)
		return 0;
	v = rocksdb_pinnableslice_value(ps, &n);
	state = n == 0 ? 2 : n == 1 && v[0] == BLOCK_IN_FILE ? 1 : -1;
	rocksdb_pinnableslice_destroy(ps);
	return state < 0 ? store_fail(s, NULL, "block read (damaged block record)") : state;
}

/* Gets block (layer, data, block) into out: 1 found, 0 absent, <0 error. */
static int get_block(struct rift_store *s, uint64_t layer, uint64_t data_id, uint64_t block,
		     uint8_t *out)
{
	int state = block_record(s, layer, data_id, block), rc;

	if (state <= 0)
		return state;
	if (state == 2) {
		memset(out, 0, BS);
		return 1;
	}
	rc = overlay_read(s, layer, data_id, block, out);
	if (rc < 0)
		return rc;
	/* Zeros are never stored in a file (store_block makes them ZERO markers), so zeros here
	 * are a write a power loss took before its file was synced: the block reads as it was
	 * before that write, from the layers below. */
	return all_zero(out) ? 0 : 1;
}

/* Whether the index says layer may hold a record of block of data_id: it holds blocks of the
 * data id and its bits do not rule this one out. */
static bool may_hold(const struct data_index_entry *e, uint64_t layer, uint64_t block)
{
	uint32_t i;

	for (i = 0; e != NULL && i < e->n; i++)
		if (e->v[i].layer == layer)
			return presence_may_hold(&e->v[i], block);
	return false;
}

/* may_hold, taking mem_mu: writers of other files change the index while this runs. */
static bool layer_may_hold(struct rift_store *s, uint64_t data_id, uint64_t layer, uint64_t block)
{
	bool h;

	pthread_mutex_lock(&s->mem_mu);
	h = may_hold(index_find(s, data_id), layer, block);
	pthread_mutex_unlock(&s->mem_mu);
	return h;
}

/* Bit i set: chain position i (i < 64) may hold block of data_id. Positions from 64 on are
 * asked one at a time (squash keeps chains far shorter). Each clear bit is a RocksDB lookup
 * saved: in a young branch most blocks are only in the base. */
static uint64_t chain_holders(struct rift_branch *b, uint64_t data_id, uint64_t block)
{
	struct rift_store *s = b->store;
	struct data_index_entry *e;
	uint64_t mask = 0;
	uint32_t i;

	pthread_mutex_lock(&s->mem_mu);
	e = index_find(s, data_id);
	for (i = 0; e != NULL && e->n > 0 && i < b->rec->depth && i < 64; i++)
		if (may_hold(e, b->rec->chain[i], block))
			mask |= 1ull << i;
	pthread_mutex_unlock(&s->mem_mu);
	return mask;
}

/* Whether chain position i may show block: its layer may hold it (holders from chain_holders
 * for i < 64, the index asked for deeper ones) and no truncation mask hides what it holds. */
static bool chain_may_show(struct rift_branch *b, const struct inode_rec *rec, uint64_t holders,
			   uint32_t i, uint64_t block)
{
	uint64_t layer = b->rec->chain[i];
	bool h = i < 64 ? (holders >> i) & 1 : layer_may_hold(b->store, rec->data_id, layer, block);

	return h && !block_masked(rec, layer, block);
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
	uint64_t holders = chain_holders(b, rec->data_id, block);
	struct store_fd *bf;
	uint32_t i;
	int rc;
	ssize_t got;

	*found_any = false;
	for (i = 0; i < b->rec->depth; i++) {
		uint64_t layer = b->rec->chain[i];
		if (layer == skip || !chain_may_show(b, rec, holders, i, block))
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
	rc = file_get(s, 0, rec, rec->data_id, false, &bf);
	if (rc < 0)
		return rc == -ENOENT ? -EIO : rc;
	got = pread(bf->fd, out, BS, (off_t)(block * BS));
	file_put(s, bf, false);
	if (got < 0)
		return -EIO;
	memset(out + got, 0, BS - (size_t)got);
	*found_any = true;
	return 0;
}

/* Whether block surely resolves to the base file: the base has it, and no chain layer may hold
 * it (or a truncation mask hides what one holds). false only means "ask resolve_block". */
static bool base_only(struct rift_branch *b, const struct inode_rec *rec, uint64_t block)
{
	uint64_t holders;
	uint32_t i;

	if (!base_has(rec, block))
		return false;
	holders = chain_holders(b, rec->data_id, block);
	for (i = 0; i < b->rec->depth; i++)
		if (chain_may_show(b, rec, holders, i, block))
			return false;
	return true;
}

/*
 * Reads n whole blocks from block on straight from the base file into out, in one pread: a
 * kernel readahead of a table the branch has not changed (a sequential scan, an index build)
 * asks for up to 1 MiB at once, which would otherwise be 128 lookups, preads and copies.
 */
static int read_base_run(struct rift_store *s, const struct inode_rec *rec, uint64_t block,
			 uint64_t n, uint8_t *out)
{
	struct store_fd *bf;
	ssize_t got = 0;
	int rc;
	size_t want = (size_t)(n * BS), have = 0;

	rc = file_get(s, 0, rec, rec->data_id, false, &bf);
	if (rc < 0)
		return rc == -ENOENT ? -EIO : rc;
	/* a short read before the end (a state directory on a network filesystem) reads on */
	while (have < want) {
		got = pread(bf->fd, out + have, want - have, (off_t)(block * BS + have));
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		have += (size_t)got;
	}
	file_put(s, bf, false);
	if (got < 0)
		return -EIO;
	/* past the base file's end (its last block partly there): zeros, as resolve_block */
	memset(out + have, 0, want - have);
	return 0;
}

ssize_t rift_store_read(struct rift_branch *b, uint64_t ino, uint64_t off, size_t len, void *buf)
{
	struct rift_store *s = b->store;
	struct inode_rec *rec = malloc(sizeof(*rec));
	uint8_t *block = malloc(BS);
	uint64_t end, pos, not_base = UINT64_MAX;
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
		uint64_t n = pos / BS, in = pos % BS, run = 0;
		size_t take = (size_t)(BS - in < end - pos ? BS - in : end - pos);
		int r;
		/* not_base: the block that ended the last run, known to need resolve_block */
		while (in == 0 && n + run != not_base && run < (end - pos) / BS &&
		       base_only(b, rec, n + run))
			run++;
		if (run > 0) {
			not_base = n + run;
			r = read_base_run(s, rec, n, run, (uint8_t *)buf + (pos - off));
			if (r < 0) {
				rc = r;
				goto unlock;
			}
			pos += run * BS;
			continue;
		}
		r = resolve_block(b, rec, n, 0, block, &found);
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

/*
 * Stores block content for (head, data id, block): a full block goes into the head's overlay
 * file (and, the first time, its record into wb), zeros become a ZERO marker (zeros that must
 * hide older data) or nothing at all (zeros over nothing). head_state: 0 absent from the head,
 * 1 full there, 2 ZERO marker there. Keeps counts exact; 0 or -errno (nothing counted then).
 */
static int store_block(struct rift_branch *b, rocksdb_writebatch_t *wb, const struct inode_rec *rec,
		       uint64_t block, const uint8_t *content, int head_state,
		       struct punch_list *punch)
{
	struct rift_store *s = b->store;
	uint64_t head = b->rec->chain[0];
	const char in_file = BLOCK_IN_FILE;
	struct presence *p;
	uint8_t k[DATA_KEY_LEN];
	int new_state, rc;

	key_data(k, head, rec->data_id, block);
	if (!all_zero(content)) {
		/* the file first: a record never names a block its file has not been given */
		rc = overlay_write(s, head, rec->data_id, block, content);
		if (rc != 0)
			return rc;
		if (head_state != 1)
			rocksdb_writebatch_put_cf(wb, s->cf_data, (const char *)k, sizeof(k),
						  &in_file, 1);
		new_state = 1;
	} else {
		uint8_t scratch[BS];
		bool older;
		/* Zeros need a marker only if an older layer or the base could show through. */
		if (resolve_block(b, rec, block, head, scratch, &older) < 0)
			older = true;
		if (older) {
			if (head_state != 2)
				rocksdb_writebatch_put_cf(wb, s->cf_data, (const char *)k,
							  sizeof(k), "", 0);
			new_state = 2;
		} else {
			if (head_state != 0)
				rocksdb_writebatch_delete_cf(wb, s->cf_data, (const char *)k,
							     sizeof(k));
			new_state = 0;
		}
		/* the file's copy is dead: its space goes once the batch committed */
		if (head_state == 1 && punch->n < PUNCH_MAX)
			punch->blocks[punch->n++] = block;
	}
	if (new_state == 1)
		space_wrote(s, BS); /* the records' bytes are counted by the batch's write */
	/* The presence vector may move when another file's writer adds to the index: p is
	 * only used under mem_mu. */
	pthread_mutex_lock(&s->mem_mu);
	p = index_add(s, rec->data_id, head);
	if (p != NULL && new_state != 0)
		presence_mark(s, p, block);
	if (p != NULL && head_state != new_state) {
		int64_t df = (new_state == 1) - (head_state == 1);
		int64_t dz = (new_state == 2) - (head_state == 2);
		assert((int64_t)p->nfull + df >= 0 && (int64_t)p->nzero + dz >= 0);
		p->nfull += (uint64_t)df;
		p->nzero += (uint64_t)dz;
		account(s, head, df, dz);
	}
	pthread_mutex_unlock(&s->mem_mu);
	/* Out of memory: the batch holding this record must not commit without the index (and
	 * the presence record) knowing of it, or a later write would find the layer's bits all
	 * clear and reads would skip the block. Nothing was counted for it. */
	return p == NULL ? -ENOMEM : 0;
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

/* The head's own copy of a block: 0 absent, 1 full, 2 ZERO marker; <0 error. Its contents go
 * into out unless out is NULL. */
static int head_block(struct rift_branch *b, const struct inode_rec *rec, uint64_t block,
		      uint8_t *out)
{
	struct rift_store *s = b->store;
	uint64_t head = b->rec->chain[0];
	int state;

	if (!layer_may_hold(s, rec->data_id, head, block))
		return 0;
	state = block_record(s, head, rec->data_id, block);
	if (out != NULL && state == 2)
		memset(out, 0, BS);
	if (out != NULL && state == 1) {
		int rc = overlay_read(s, head, rec->data_id, block, out);
		if (rc < 0)
			return rc;
	}
	return state;
}

/* Writes one block's worth [in, in+take) of src at block, read-modify-write when partial. */
static int write_block(struct rift_branch *b, rocksdb_writebatch_t *wb, const struct inode_rec *rec,
		       uint64_t block, size_t in, size_t take, const uint8_t *src, uint8_t *scratch,
		       struct punch_list *punch)
{
	bool found;
	int head_state, rc;

	/* a whole block replaces what was there: only its state is needed, not its bytes */
	head_state = head_block(b, rec, block, take < BS ? scratch : NULL);
	if (head_state < 0)
		return head_state;
	/* zeros read from the head's file: a lost write (get_block), the block is as below */
	if (take < BS && (head_state == 0 || (head_state == 1 && all_zero(scratch)))) {
		if (block * BS < rec->size) {
			rc = resolve_block(b, rec, block, b->rec->chain[0], scratch, &found);
			if (rc < 0)
				return rc;
		} else {
			memset(scratch, 0, BS);
		}
	}
	memcpy(scratch + in, src, take);
	return store_block(b, wb, rec, block, scratch, head_state, punch);
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

/* Whether rec's mtime or ctime is a second or more behind now (or ahead of it: a clock step). */
static bool times_stale(const struct inode_rec *rec, const struct timespec *now)
{
	int64_t n = (int64_t)now->tv_sec * 1000000000 + now->tv_nsec;
	int64_t m = (int64_t)rec->mtime.tv_sec * 1000000000 + rec->mtime.tv_nsec;
	int64_t c = (int64_t)rec->ctime.tv_sec * 1000000000 + rec->ctime.tv_nsec;

	return n - m >= 1000000000 || n - c >= 1000000000 || m > n || c > n;
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
	struct punch_list *punch = calloc(1, sizeof(*punch));
	uint64_t pos, end = off + len;
	struct timespec now;
	bool reload = false;
	ssize_t rc;

	if (rec == NULL || scratch == NULL || punch == NULL) {
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
				 (const uint8_t *)buf + (pos - off), scratch, punch);
		if (rc < 0) {
			/* blocks before this one changed the in-memory counts already */
			reload = pos > off;
			goto unlock;
		}
		pos += take;
	}
	now = now_ts();
	if (rocksdb_writebatch_count(wb) == 0 && end <= rec->size && !times_stale(rec, &now)) {
		/* Only blocks the head held were rewritten in their files: no record changes but
		 * the times, which may lag by up to a second (with the kernel's writeback cache the
		 * kernel keeps them anyway and sends them with its SETATTR). TPC-B's page rewrites
		 * take this path: a pwrite each, no RocksDB write. */
		rc = (ssize_t)len;
		goto unlock;
	}
	if (end > rec->size)
		rec->size = end;
	rec->mtime = rec->ctime = now;
	inode_put(b, wb, ino, rec);
	if (len > 0)
		head_presence_put(b, wb, rec->data_id);
	rc = branch_write_shared(b, wb, &reload);
	if (rc == 0) {
		punch->layer = b->rec->chain[0];
		punch->data_id = rec->data_id;
		overlay_punch(s, punch);
		rc = (ssize_t)len;
	}
unlock:
	pthread_mutex_unlock(stripe);
	pthread_rwlock_unlock(&s->lock);
	if (reload)
		store_reload_counts_exclusive(s);
out:
	rocksdb_writebatch_destroy(wb);
	free(punch);
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
	/* its overlay file goes once this batch committed (store_reclaim.c) */
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
		  uint64_t new_size, uint64_t *trim_from, struct punch_list *punch)
{
	struct rift_store *s = b->store;
	uint64_t head = b->rec->chain[0], limit;
	uint8_t *scratch;
	int rc = 0;

	*trim_from = UINT64_MAX;
	punch->n = 0;
	punch->layer = head;
	punch->data_id = rec->data_id;
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
	*trim_from = limit;
	if (new_size % BS != 0) {
		/* The kept part of the last block stays; its tail must read as zeros later. */
		bool found;
		int st;
		scratch = malloc(BS);
		if (scratch == NULL)
			return -ENOMEM;
		st = head_block(b, rec, limit - 1, scratch);
		rc = st < 0 ? st : 0;
		if (st == 0 || (st == 1 && all_zero(scratch)))
			rc = resolve_block(b, rec, limit - 1, head, scratch, &found);
		if (rc == 0) {
			memset(scratch + new_size % BS, 0, BS - new_size % BS);
			rc = store_block(b, wb, rec, limit - 1, scratch, st, punch);
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
