/* store.c — opens and closes the store, loads its records, group-commits syncs, owns errors. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "rift/log.h"
#include "store_internal.h"

int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct timespec now_ts(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts;
}

/*
 * Maps a RocksDB error message to an errno. *corrupt tells whether it means damaged data (or an
 * internal inconsistency, rocks_err == NULL), which must stop the store, rather than a
 * condition that passes (a full disk, too many open files).
 */
static int rocks_errno(const char *rocks_err, bool *corrupt)
{
	*corrupt = false;
	if (rocks_err == NULL) {
		*corrupt = true;
		return -EIO;
	}
	if (strstr(rocks_err, "No space") || strstr(rocks_err, "ENOSPC"))
		return -ENOSPC;
	if (strstr(rocks_err, "Too many open files"))
		return -EMFILE;
	if (strstr(rocks_err, "Corruption"))
		*corrupt = true;
	return -EIO;
}

/* At most one warning a second for failures that repeat while a disk stays full. */
bool warn_now(struct rift_store *s)
{
	int64_t now = now_ns(), last = atomic_load(&s->last_warn_ns);

	return now - last >= 1000000000 &&
	       atomic_compare_exchange_strong(&s->last_warn_ns, &last, now);
}

/*
 * Records a storage failure and returns the errno for this call (rocks_err is freed here).
 * Damaged data (RocksDB's Corruption, or rocks_err == NULL for inconsistencies rift found)
 * becomes the sticky error every later call returns. Anything else (ENOSPC, EMFILE, an I/O
 * error) fails this call only: the caller rolls its in-memory changes back and later calls try
 * again, so a full disk does not outlive the space shortage.
 */
int store_fail(struct rift_store *s, char *rocks_err, const char *what)
{
	bool corrupt;
	int code = rocks_errno(rocks_err, &corrupt);
	int expected = 0;

	if (corrupt) {
		if (atomic_compare_exchange_strong(&s->error, &expected, code))
			LOG_ERROR(
			    "store",
			    "%s: %s failed: %s; the store's data may be damaged, so it refuses "
			    "writes until riftd restarts (check the disk, then restart riftd)",
			    s->state_dir, what, rocks_err ? rocks_err : "inconsistent records");
		free(rocks_err);
		return atomic_load(&s->error);
	}
	if (warn_now(s))
		LOG_WARN("store", "%s: %s failed: %s; this call fails, later ones retry",
			 s->state_dir, what, rocks_err);
	free(rocks_err);
	return code;
}

static int load_presence(struct rift_store *s, const uint8_t *k, size_t kl, const uint8_t *v,
			 size_t vl);
static int scan_prefix(struct rift_store *s, const uint8_t *prefix, size_t plen,
		       int (*fn)(struct rift_store *, const uint8_t *, size_t, const uint8_t *,
				 size_t));

/*
 * After a batch failed to commit, makes the in-memory accounting (presence index, layer sizes,
 * id high-water mark) equal to what RocksDB holds again: mutations update it while they build
 * their batch. Caller holds the write lock. O(presence records); runs only after failures.
 */
int store_reload_counts(struct rift_store *s)
{
	uint8_t key = 'N', val[8];
	size_t i, n;
	int rc;

	ASSERT_LOCKED(s);
	index_free(s);
	for (i = 0; i < s->nlayers; i++)
		s->layers[i].bytes = s->layers[i].blocks = 0;
	key = 'P';
	rc = scan_prefix(s, &key, 1, load_presence);
	key = 'N';
	if (rc == 0 && meta_get(s, &key, 1, val, sizeof(val), &n) == 0 && n == 8)
		s->id_hwm = get_be64(val); /* next_id stays: skipped ids are harmless */
	if (rc != 0)
		store_fail(s, NULL, "reloading the block counts after a failed write");
	return rc;
}

/* Commits wb; on failure *failed says the in-memory counts must be reloaded. */
static int write_batch(struct rift_store *s, rocksdb_writebatch_t *wb, bool sync, bool *failed)
{
	char *err = NULL;
	int e = atomic_load(&s->error);
	size_t n;
	struct timespec t0;

	*failed = false;
	if (e != 0)
		return e;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rocksdb_write(s->db, sync ? s->wo_sync : s->wo, wb, &err);
	rift_latency_since(sync ? &s->sync_lat : &s->write_lat, &t0);
	if (err != NULL) {
		e = store_fail(s, err, "write");
		note_db_failed(s, e);
		*failed = true;
		return e;
	}
	note_db_ok(s);
	if (sync)
		atomic_store(&s->synced_seq, atomic_fetch_add(&s->write_seq, 1) + 1);
	else
		atomic_fetch_add(&s->write_seq, 1);
	rocksdb_writebatch_data(wb, &n);
	space_wrote(s, n);
	return 0;
}

int store_write(struct rift_store *s, rocksdb_writebatch_t *wb, bool sync)
{
	bool failed;
	int rc = write_batch(s, wb, sync, &failed);

	if (failed)
		store_reload_counts(s);
	return rc;
}

void store_reload_counts_exclusive(struct rift_store *s)
{
	pthread_rwlock_wrlock(&s->lock);
	store_reload_counts(s);
	pthread_rwlock_unlock(&s->lock);
}

static void mark_dirty(struct rift_branch *b)
{
	struct layer *head;

	pthread_mutex_lock(&b->store->mem_mu);
	if ((head = store_layer(b->store, b->rec->chain[0])) != NULL)
		head->dirty = true;
	pthread_mutex_unlock(&b->store->mem_mu);
}

int branch_write(struct rift_branch *b, rocksdb_writebatch_t *wb)
{
	int rc = store_write(b->store, wb, false);

	atomic_fetch_add(&b->gen, 1); /* even on failure: the cache must not outlive a doubt */
	if (rc == 0)
		mark_dirty(b);
	return rc;
}

int branch_write_shared(struct rift_branch *b, rocksdb_writebatch_t *wb, bool *reload)
{
	int rc = write_batch(b->store, wb, false, reload);

	atomic_fetch_add(&b->gen, 1);
	if (rc == 0)
		mark_dirty(b);
	return rc;
}

/*
 * The WAL is made durable with a synced write of one small record rather than
 * rocksdb_flush_wal: after a failed WAL append, Debian's RocksDB 7.8 (built with assertions)
 * aborts the process in FlushWAL's sync of the failed log writer, while a write returns the
 * background error cleanly. A synced write syncs every record appended before it.
 *
 * After a failure, acknowledged calls not yet synced live on in the memtable; RocksDB's
 * recovery from a full disk flushes memtables into synced table files before it accepts writes
 * again. So this returns an error as long as RocksDB refuses writes, and success only once
 * everything acknowledged before the call is durable: a failed sync is never followed by a
 * successful one that hides lost data.
 */
int rift_store_sync(struct rift_store *s)
{
	int rc = overlay_sync_dirty(s, 0);

	return rc != 0 ? rc : store_sync_wal(s);
}

int rift_store_sync_file(struct rift_branch *b, uint64_t ino)
{
	struct rift_store *s = b->store;
	struct inode_rec *rec = malloc(sizeof(*rec));
	uint64_t head = 0, data_id = 0;
	int rc;

	if (rec == NULL)
		return -ENOMEM;
	pthread_rwlock_rdlock(&s->lock);
	rc = inode_get(b, ino, rec, NULL);
	if (rc == 0 && S_ISREG(rec->mode)) {
		head = b->rec->chain[0];
		data_id = rec->data_id;
	}
	pthread_rwlock_unlock(&s->lock);
	free(rec);
	if (rc == -ENOENT)
		rc = 0; /* unlinked meanwhile: nothing of it is left to make durable */
	/* Outside the lock: a fdatasync can take long. The head may have been frozen meanwhile
	 * (a branch taken): its file is then synced under the frozen layer's id, the same one. */
	if (rc == 0 && data_id != 0)
		rc = overlay_sync_one(s, head, data_id);
	return rc != 0 ? rc : store_sync_wal(s);
}

int rift_store_sync_names(struct rift_store *s)
{
	return store_sync_wal(s);
}

/* Makes every RocksDB write acknowledged so far durable (see rift_store_sync). */
int store_sync_wal(struct rift_store *s)
{
	uint64_t target = atomic_load(&s->write_seq);
	char *err = NULL;
	int e;

	if (atomic_load(&s->synced_seq) >= target)
		return atomic_load(&s->error);
	/* Whoever holds sync_mu syncs for everyone who arrived before its flush started. */
	pthread_mutex_lock(&s->sync_mu);
	e = atomic_load(&s->error);
	if (atomic_load(&s->synced_seq) < target && e == 0) {
		uint64_t upto = atomic_load(&s->write_seq);
		struct timespec t0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		rocksdb_write(s->db, s->wo_sync, s->sync_wb, &err);
		rift_latency_since(&s->sync_lat, &t0);
		if (err != NULL) {
			e = store_fail(s, err, "WAL sync");
			note_db_failed(s, e);
		} else {
			note_db_ok(s);
			if (atomic_load(&s->synced_seq) < upto)
				atomic_store(&s->synced_seq, upto);
		}
	}
	pthread_mutex_unlock(&s->sync_mu);
	return e;
}

void rift_store_latency(struct rift_store *s, const struct rift_latency **write,
			const struct rift_latency **sync)
{
	*write = &s->write_lat;
	*sync = &s->sync_lat;
}

int rift_store_error(struct rift_store *s)
{
	return atomic_load(&s->error);
}

/* Ids (inodes, data ids, layers) come from one counter; its high-water mark is written in the
 * same batch as the first id above it, so a replayed prefix never reuses an id. */
uint64_t store_alloc_id(struct rift_store *s, rocksdb_writebatch_t *wb)
{
	uint64_t id = s->next_id++;

	if (s->next_id > s->id_hwm) {
		uint8_t k = 'N', v[8];
		s->id_hwm = s->next_id + ID_RESERVE;
		put_be64(v, s->id_hwm);
		rocksdb_writebatch_put_cf(wb, s->cf_meta, (const char *)&k, 1, (const char *)v, 8);
	}
	return id;
}

int meta_get(struct rift_store *s, const uint8_t *key, size_t klen, uint8_t *val, size_t cap,
	     size_t *vlen)
{
	char *err = NULL;
	rocksdb_pinnableslice_t *ps;
	const char *p;
	size_t n;

	ps = rocksdb_get_pinned_cf(s->db, s->ro, s->cf_meta, (const char *)key, klen, &err);
	if (err != NULL)
		return store_fail(s, err, "read");
	if (ps == NULL)
		return -ENOENT;
	p = rocksdb_pinnableslice_value(ps, &n);
	if (n > cap) {
		rocksdb_pinnableslice_destroy(ps);
		return -EIO;
	}
	memcpy(val, p, n);
	*vlen = n;
	rocksdb_pinnableslice_destroy(ps);
	return 0;
}

struct layer *store_layer(struct rift_store *s, uint64_t id)
{
	size_t i;

	for (i = 0; i < s->nlayers; i++)
		if (s->layers[i].id == id)
			return &s->layers[i];
	return NULL;
}

struct layer *store_layer_add(struct rift_store *s, const struct layer *l)
{
	if (s->nlayers == s->layers_cap) {
		size_t cap = s->layers_cap ? s->layers_cap * 2 : 16;
		struct layer *n = realloc(s->layers, cap * sizeof(*n));
		if (n == NULL)
			return NULL;
		s->layers = n;
		s->layers_cap = cap;
	}
	s->layers[s->nlayers] = *l;
	return &s->layers[s->nlayers++];
}

void store_layer_remove(struct rift_store *s, uint64_t id)
{
	size_t i;

	for (i = 0; i < s->nlayers; i++) {
		if (s->layers[i].id == id) {
			s->layers[i] = s->layers[--s->nlayers];
			return;
		}
	}
}

/* Rebuilds b->chain from its head down to the base layer. */
int store_chain_build(struct rift_store *s, struct branch_rec *b)
{
	atomic_fetch_add(&s->chain_gen, 1);
	uint64_t *chain = NULL;
	uint32_t n = 0, cap = 0;
	uint64_t id = b->head;

	while (id != 0) {
		struct layer *l = store_layer(s, id);
		if (l == NULL || n > s->nlayers) {
			free(chain);
			return -EIO;
		}
		if (n == cap) {
			uint64_t *c;
			cap = cap ? cap * 2 : 8;
			c = realloc(chain, cap * sizeof(*c));
			if (c == NULL) {
				free(chain);
				return -ENOMEM;
			}
			chain = c;
		}
		chain[n++] = id;
		id = l->parent;
	}
	free(b->chain);
	b->chain = chain;
	b->depth = n;
	return 0;
}

struct branch_rec *store_branch_find(struct rift_store *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->nbranches; i++)
		if (strcmp(s->branches[i]->name, name) == 0)
			return s->branches[i];
	return NULL;
}

int store_branch_add(struct rift_store *s, struct branch_rec *b)
{
	if (s->nbranches == s->branches_cap) {
		size_t cap = s->branches_cap ? s->branches_cap * 2 : 16;
		struct branch_rec **nb = realloc(s->branches, cap * sizeof(*nb));
		if (nb == NULL)
			return -ENOMEM;
		s->branches = nb;
		s->branches_cap = cap;
	}
	s->branches[s->nbranches++] = b;
	return 0;
}

uint64_t store_base_layer(struct rift_store *s, uint32_t gen)
{
	size_t i;

	for (i = 0; i < s->nbases; i++)
		if (s->bases[i].gen == gen)
			return s->bases[i].layer;
	return 0;
}

uint32_t rift_store_base_latest(struct rift_store *s)
{
	uint32_t best = 0;
	size_t i;

	pthread_rwlock_rdlock(&s->lock);
	for (i = 0; i < s->nbases; i++)
		if (s->bases[i].gen > best)
			best = s->bases[i].gen;
	pthread_rwlock_unlock(&s->lock);
	return best;
}

/* Calls fn for every meta key starting with prefix (plen bytes). */
static int scan_prefix(struct rift_store *s, const uint8_t *prefix, size_t plen,
		       int (*fn)(struct rift_store *, const uint8_t *, size_t, const uint8_t *,
				 size_t))
{
	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf_meta);
	char *err = NULL;
	int rc = 0;

	for (rocksdb_iter_seek(it, (const char *)prefix, plen); rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
		const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
		if (kl < plen || memcmp(k, prefix, plen) != 0)
			break;
		rc = fn(s, k, kl, v, vl);
		if (rc != 0)
			goto out;
	}
	rocksdb_iter_get_error(it, &err);
	if (err != NULL)
		rc = store_fail(s, err, "scan");
out:
	rocksdb_iter_destroy(it);
	return rc;
}

static int load_base(struct rift_store *s, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
	struct base_gen *nb;

	if (kl != 5 || vl != 8)
		return -EIO;
	nb = realloc(s->bases, (s->nbases + 1) * sizeof(*nb));
	if (nb == NULL)
		return -ENOMEM;
	s->bases = nb;
	nb[s->nbases].gen =
	    ((uint32_t)k[1] << 24) | ((uint32_t)k[2] << 16) | ((uint32_t)k[3] << 8) | k[4];
	nb[s->nbases].layer = get_be64(v);
	s->nbases++;
	return 0;
}

static int load_layer(struct rift_store *s, const uint8_t *k, size_t kl, const uint8_t *v,
		      size_t vl)
{
	struct layer l;

	if (kl != 9 || layer_decode(v, vl, &l) != 0)
		return -EIO;
	l.id = get_be64(k + 1);
	l.dirty = true; /* whether a head changed before the restart is not recorded */
	return store_layer_add(s, &l) ? 0 : -ENOMEM;
}

static int load_branch(struct rift_store *s, const uint8_t *k, size_t kl, const uint8_t *v,
		       size_t vl)
{
	struct branch_rec *b;

	if (kl < 2 || kl > NAME_BUF)
		return -EIO;
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return -ENOMEM;
	memcpy(b->name, k + 1, kl - 1);
	if (branch_decode(v, vl, b) != 0) {
		free(b);
		return -EIO;
	}
	if (store_branch_add(s, b) != 0) {
		free(b);
		return -ENOMEM;
	}
	return 0;
}

static int load_presence(struct rift_store *s, const uint8_t *k, size_t kl, const uint8_t *v,
			 size_t vl)
{
	struct presence *p;
	struct layer *l;

	if (kl != 17 || vl != 16)
		return -EIO;
	p = index_add(s, get_be64(k + 1), get_be64(k + 9));
	if (p == NULL)
		return -ENOMEM;
	presence_forget(s, p); /* it has records; which blocks, only RocksDB knows */
	p->nfull = get_be64(v);
	p->nzero = get_be64(v + 8);
	l = store_layer(s, p->layer);
	if (l != NULL) {
		l->blocks += p->nfull + p->nzero;
		l->bytes += p->nfull * (RIFT_BLOCK_SIZE + DATA_KEY_LEN) + p->nzero * DATA_KEY_LEN;
	}
	return 0;
}

/* Frees what an inode unlinked while open left behind when the process died. */
static int load_orphan(struct rift_store *s, const uint8_t *k, size_t kl, const uint8_t *v,
		       size_t vl)
{
	uint8_t ik[KEY_MAX], val[INODE_BUF];
	struct inode_rec rec;
	rocksdb_writebatch_t *wb;
	uint64_t layer, ino;
	size_t n;
	int rc;

	if (kl != 17)
		return -EIO;
	layer = get_be64(k + 1);
	ino = get_be64(k + 9);
	wb = rocksdb_writebatch_create();
	rc = meta_get(s, ik, key_inode(ik, layer, ino), val, sizeof(val), &n);
	if (rc == 0 && inode_decode(val, n, &rec) == 0 && rec.nlink == 0) {
		rocksdb_writebatch_delete_cf(wb, s->cf_meta, (const char *)ik, 17);
		if (S_ISREG(rec.mode))
			data_drop_layer(s, wb, layer, rec.data_id);
	}
	rocksdb_writebatch_delete_cf(wb, s->cf_meta, (const char *)k, kl);
	rc = store_write(s, wb, false);
	rocksdb_writebatch_destroy(wb);
	return rc;
}

static int load_all(struct rift_store *s, char *err, size_t errlen)
{
	uint8_t key = 'N', val[8];
	size_t i, n;
	int rc;

	rc = meta_get(s, &key, 1, val, sizeof(val), &n);
	if (rc == 0 && n == 8)
		s->id_hwm = get_be64(val);
	else if (rc != -ENOENT)
		goto fail;
	else
		s->id_hwm = 16; /* ids below are reserved (RIFT_ROOT_INO = 1) */
	/* Everything before the mark may have been handed out before a crash. */
	s->next_id = s->id_hwm;

	key = 'G';
	if ((rc = scan_prefix(s, &key, 1, load_base)) != 0)
		goto fail;
	key = 'L';
	if ((rc = scan_prefix(s, &key, 1, load_layer)) != 0)
		goto fail;
	key = 'B';
	if ((rc = scan_prefix(s, &key, 1, load_branch)) != 0)
		goto fail;
	key = 'P';
	if ((rc = scan_prefix(s, &key, 1, load_presence)) != 0)
		goto fail;
	key = 'O';
	if ((rc = scan_prefix(s, &key, 1, load_orphan)) != 0)
		goto fail;
	for (i = 0; i < s->nbranches; i++)
		if ((rc = store_chain_build(s, s->branches[i])) != 0)
			goto fail;
	return 0;
fail:
	snprintf(
	    err, errlen,
	    "the store in %s could not be loaded (%s); its metadata is damaged or from a newer "
	    "rift",
	    s->state_dir, strerror(-rc));
	return rc;
}

static int make_dir(const char *path, char *err, size_t errlen)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return 0;
	snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
	return -errno;
}

static int open_db(struct rift_store *s, bool create, char *err, size_t errlen)
{
	const char *names[3] = { "default", "meta", "data" };
	const rocksdb_options_t *cf_opts[3];
	rocksdb_column_family_handle_t *handles[3];
	char path[4096], *rerr = NULL;

	snprintf(path, sizeof(path), "%s/db/CURRENT", s->state_dir);
	if (!create && access(path, F_OK) != 0) {
		snprintf(err, errlen,
			 "no rift store in %s (run `rift init` to create one, or pass the right "
			 "--state)",
			 s->state_dir);
		return -ENOENT;
	}
	snprintf(path, sizeof(path), "%s/db", s->state_dir);
	s->opts = rocksdb_options_create();
	rocksdb_options_set_create_if_missing(s->opts, create);
	rocksdb_options_set_create_missing_column_families(s->opts, create);
	rocksdb_options_increase_parallelism(s->opts, 2);
	rocksdb_options_set_max_open_files(s->opts, 512);
	/* A WAL is shared by both column families: bound it so old logs (and the space of
	 * deleted branches in them) go once both are flushed. */
	rocksdb_options_set_max_total_wal_size(s->opts, 2 * RIFT_WRITE_BUFFER);
	/* Only fatal messages go to RocksDB's LOG: it lives on the store's disk, and Debian's
	 * RocksDB (assertions on) aborts the process when it appends to LOG again after an append
	 * failed with ENOSPC — measured: the first error logged on a full disk killed the process.
	 * rift logs every error RocksDB returns itself. */
	rocksdb_options_set_info_log_level(s->opts, 4 /* FATAL */);
	/* RocksDB resumes after a full disk only once free space >= the largest write buffer
	 * (SstFileManager, polled every 5 s): keep it small enough for the reserve to cover. */
	rocksdb_options_set_write_buffer_size(s->opts, RIFT_WRITE_BUFFER);
	rocksdb_options_set_keep_log_file_num(s->opts, 4);
	s->cache = rocksdb_cache_create_lru(64u << 20);
	s->table_opts = rocksdb_block_based_options_create();
	rocksdb_block_based_options_set_block_cache(s->table_opts, s->cache);
	rocksdb_block_based_options_set_filter_policy(s->table_opts,
						      rocksdb_filterpolicy_create_bloom(10));
	rocksdb_options_set_block_based_table_factory(s->opts, s->table_opts);
	/* Records: LZ4, cheap enough for every flush. Blocks: LZ4 in the upper levels, where
	 * data is rewritten often, ZSTD at the bottom, where most of it rests; levels sized from
	 * the bottom up keep obsolete versions to about a tenth of the data (docs/architecture.md,
	 * "Space"). Tables written before with Snappy (RocksDB's default) stay readable. */
	rocksdb_options_set_compression(s->opts, rocksdb_lz4_compression);
	rocksdb_options_set_level_compaction_dynamic_level_bytes(s->opts, 1);
	s->data_opts = rocksdb_options_create_copy(s->opts);
	rocksdb_options_set_bottommost_compression(s->data_opts, rocksdb_zstd_compression);
	/* While the store is small, dynamic level sizing compacts L0 straight into the bottom
	 * level, and random page writes (TPC-B) overlap all of it: every 4 flushed write buffers
	 * rewrote and recompressed the whole table. 16 of them per compaction halved rift-fs's CPU
	 * under TPC-B at scale 50 (docs/architecture.md, "Compaction"); reads probe L0's bloom
	 * filters, cached, and writes slow down only past twice as many files. */
	rocksdb_options_set_level0_file_num_compaction_trigger(s->data_opts, RIFT_L0_TRIGGER);
	rocksdb_options_set_level0_slowdown_writes_trigger(s->data_opts, 2 * RIFT_L0_TRIGGER);
	rocksdb_options_set_level0_stop_writes_trigger(s->data_opts, 3 * RIFT_L0_TRIGGER);
	cf_opts[0] = s->opts;
	cf_opts[1] = s->opts;
	cf_opts[2] = s->data_opts; /* separate CFs let a layer's blocks be one range */
	s->db = rocksdb_open_column_families(s->opts, path, 3, names, cf_opts, handles, &rerr);
	if (rerr != NULL) {
		if (strstr(rerr, "lock"))
			snprintf(err, errlen,
				 "the store in %s is in use by another process (%s); stop it first",
				 s->state_dir, rerr);
		else
			snprintf(err, errlen, "cannot open the store database %s: %s", path, rerr);
		free(rerr);
		return -EIO;
	}
	/* RocksDB makes db/ with the umask; the blocks in it are users' data. */
	if (create)
		chmod(path, 0700);
	s->cf_default = handles[0];
	s->cf_meta = handles[1];
	s->cf_data = handles[2];
	return 0;
}

/* The base fd cache's cap: RIFT_STORE_FD_CACHE_MAX (tests set it tiny to exercise eviction),
 * else 8192, well under the RLIMIT_NOFILE riftd raises itself to. */
static size_t fd_cache_max(void)
{
	const char *v = getenv("RIFT_STORE_FD_CACHE_MAX");
	char *end = NULL;
	long n;

	if (v == NULL || *v == '\0')
		return 8192;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || n < 1 || n > 8192)
		return 8192;
	return (size_t)n;
}

int rift_store_open(const char *state_dir, bool create, struct rift_store **out, char *err,
		    size_t errlen)
{
	struct rift_store *s;
	char path[4096];
	size_t i;
	int rc;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->state_dir = strdup(state_dir);
	{
		/* Writers first: readers and data-path writes hold the lock shared almost all
		 * the time, and would starve a namespace change or a branch creation. No path
		 * takes it shared twice in one thread, which this kind would deadlock. */
		pthread_rwlockattr_t ra;
		pthread_rwlockattr_init(&ra);
		pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&s->lock, &ra);
		pthread_rwlockattr_destroy(&ra);
	}
	pthread_mutex_init(&s->sync_mu, NULL);
	pthread_mutex_init(&s->mem_mu, NULL);
	pthread_mutex_init(&s->reclaim_mu, NULL);
	pthread_cond_init(&s->reclaim_cv, NULL);
	pthread_mutex_init(&s->fd_mu, NULL);
	pthread_mutex_init(&s->squash_mu, NULL);
	pthread_cond_init(&s->squash_cv, NULL);
	s->wo = rocksdb_writeoptions_create();
	s->wo_sync = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(s->wo_sync, 1);
	s->ro = rocksdb_readoptions_create();
	s->sync_wb = rocksdb_writebatch_create();
	s->fds_max = fd_cache_max();
	if (s->state_dir == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	if (create) {
		if ((rc = make_dir(state_dir, err, errlen)) != 0)
			goto fail;
		snprintf(path, sizeof(path), "%s/base", state_dir);
		if ((rc = make_dir(path, err, errlen)) != 0)
			goto fail;
	}
	if ((rc = open_db(s, create, err, errlen)) != 0)
		goto fail;
	/* Nobody else can see the store yet; the lock is for the helpers that assert it (a
	 * failed orphan cleanup reloads the counts). */
	pthread_rwlock_wrlock(&s->lock);
	rc = store_format_check(s, err, errlen);
	if (rc == 0)
		rc = load_all(s, err, errlen);
	if (rc == 0 && (rc = overlay_sweep(s)) != 0)
		snprintf(err, errlen, "cannot prepare %s/blocks: %s", state_dir, strerror(-rc));
	pthread_rwlock_unlock(&s->lock);
	if (rc != 0)
		goto fail;
	for (i = 0; i < s->nbases; i++)
		if ((rc = rift_store_base_verify(s, s->bases[i].gen, err, errlen)) != 0)
			goto fail;
	if (pthread_create(&s->squasher, NULL, squash_thread, s) != 0) {
		snprintf(err, errlen,
			 "cannot start the store's background thread: out of resources");
		rc = -EAGAIN;
		goto fail;
	}
	s->squasher_running = true;
	if (pthread_create(&s->reclaimer, NULL, reclaim_thread, s) != 0) {
		snprintf(err, errlen,
			 "cannot start the store's background thread: out of resources");
		rc = -EAGAIN;
		goto fail;
	}
	s->reclaimer_running = true;
	*out = s;
	return 0;
fail:
	rift_store_close(s);
	return rc;
}

void rift_store_close(struct rift_store *s)
{
	size_t i;

	if (s == NULL)
		return;
	if (s->squasher_running) {
		pthread_mutex_lock(&s->squash_mu);
		s->squash_stop = true;
		pthread_cond_signal(&s->squash_cv);
		pthread_mutex_unlock(&s->squash_mu);
		pthread_join(s->squasher, NULL);
	}
	reclaim_stop(s);
	for (i = 0; i < s->nbranches; i++)
		if (s->branches[i]->open != NULL)
			rift_store_branch_close(s->branches[i]->open);
	if (s->db != NULL) {
		if (atomic_load(&s->error) == 0 && rift_store_sync(s) != 0)
			LOG_ERROR("store", "%s: final sync failed", s->state_dir);
		/* memtables to SST files: the next open replays no log (not while RocksDB
		 * refuses writes: the log it replays is intact up to the failed record) */
		if (atomic_load(&s->error) == 0 && atomic_load(&s->rocks_stopped) == 0) {
			rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
			char *err = NULL;
			rocksdb_flushoptions_set_wait(fo, 1);
			rocksdb_flush_cf(s->db, fo, s->cf_meta, &err);
			free(err);
			err = NULL;
			rocksdb_flush_cf(s->db, fo, s->cf_data, &err);
			free(err);
			rocksdb_flushoptions_destroy(fo);
		}
		rocksdb_column_family_handle_destroy(s->cf_default);
		rocksdb_column_family_handle_destroy(s->cf_meta);
		rocksdb_column_family_handle_destroy(s->cf_data);
		rocksdb_close(s->db);
	}
	for (i = 0; i < s->nbranches; i++) {
		free(s->branches[i]->chain);
		free(s->branches[i]);
	}
	free(s->branches);
	free(s->layers);
	free(s->bases);
	index_free(s);
	store_files_close(s);
	if (s->opts)
		rocksdb_options_destroy(s->opts);
	if (s->data_opts)
		rocksdb_options_destroy(s->data_opts);
	if (s->table_opts)
		rocksdb_block_based_options_destroy(s->table_opts);
	if (s->cache)
		rocksdb_cache_destroy(s->cache);
	rocksdb_writeoptions_destroy(s->wo);
	rocksdb_writeoptions_destroy(s->wo_sync);
	rocksdb_readoptions_destroy(s->ro);
	rocksdb_writebatch_destroy(s->sync_wb);
	pthread_rwlock_destroy(&s->lock);
	pthread_mutex_destroy(&s->sync_mu);
	pthread_mutex_destroy(&s->mem_mu);
	pthread_mutex_destroy(&s->reclaim_mu);
	pthread_cond_destroy(&s->reclaim_cv);
	pthread_mutex_destroy(&s->fd_mu);
	pthread_mutex_destroy(&s->squash_mu);
	pthread_cond_destroy(&s->squash_cv);
	free(s->state_dir);
	free(s);
}

int rift_store_statfs(struct rift_store *s, uint64_t *bytes_used, uint64_t *bytes_free)
{
	struct statvfs sv;
	uint64_t used = 0;
	size_t i;

	pthread_rwlock_rdlock(&s->lock);
	pthread_mutex_lock(&s->mem_mu);
	for (i = 0; i < s->nlayers; i++)
		used += s->layers[i].bytes;
	pthread_mutex_unlock(&s->mem_mu);
	pthread_rwlock_unlock(&s->lock);
	if (statvfs(s->state_dir, &sv) != 0)
		return -errno;
	*bytes_used = used;
	*bytes_free = (uint64_t)sv.f_bavail * sv.f_frsize;
	return 0;
}
