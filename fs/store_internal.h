/* store_internal.h — the store's private structures, key layout and helpers shared by fs/store*.c.
 */
#ifndef RIFT_STORE_INTERNAL_H
#define RIFT_STORE_INTERNAL_H

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <rocksdb/c.h>
#include <stdatomic.h>

#include "rift/latency.h"
#include "rift/store.h"

/*
 * Keys, all integers big-endian so that RocksDB's order groups what belongs together:
 *   meta CF  'N'                               next free id high-water mark
 *            'G' gen4                          base generation record
 *            'L' layer8                        layer record
 *            'B' name                          branch record
 *            'I' layer8 ino8                   inode record, as of that layer
 *            'D' layer8 dir8 name              directory entry or whiteout
 *            'P' data8 layer8                  that layer holds blocks of that data id (counts)
 *            'O' layer8 ino8                   inode unlinked while open (freed on recovery)
 *            'S'                               written by syncs (rift_store_sync), never read
 *            'V'                               on-disk format version, be32 (store_format.c)
 *            'M'                               format 2 -> 3 upgrade under way (store_format.c)
 *   data CF  layer8 data8 block8               "F": the block is in the layer's overlay file
 *                                              of that data id; empty: a ZERO block
 * Layer-first keys make a layer's inodes, entries and blocks single ranges for DeleteRange.
 * Block contents live in overlay files, <state>/blocks/<layer>/<data id>, each block at
 * block × 8 KiB (store_files.c); format 2 kept them as the data CF's values.
 */
#define KEY_MAX        (1 + 8 + 8 + RIFT_NAME_MAX_LEN + 1)
#define DATA_KEY_LEN   24u
#define ID_RESERVE     65536u
#define MAX_MASKS      64u
#define NAME_BUF       64u
#define POSTMASTER_PID "postmaster.pid"
/* RocksDB's memtable size: also the free space RocksDB needs to resume after a full disk. */
#define RIFT_WRITE_BUFFER (16u << 20)
#define RIFT_L0_TRIGGER   16 /* flushed write buffers of blocks per L0 compaction */

/* One entry of an inode's truncation masks: blocks >= limit from layers older than layer
 * (and from the base file) are hidden, so that truncate-then-extend never resurrects them. */
struct trunc_mask {
	uint64_t layer;
	uint64_t limit;
};

/* An inode record, decoded. */
struct inode_rec {
	uint32_t mode, uid, gid, nlink;
	uint64_t size;
	struct timespec atime, mtime, ctime;
	uint64_t parent; /* directories: the containing directory, for rename loop checks */
	uint64_t
	    data_id; /* regular files: identity of the content lineage (new on truncate to 0) */
	uint32_t base_gen;  /* non-zero: blocks not in any layer come from a base file */
	uint64_t base_size; /* base file identity, recorded at import */
	int64_t base_mtime_ns;
	uint64_t base_st_ino;
	uint32_t nmasks;
	struct trunc_mask masks[MAX_MASKS];
	char tail[RIFT_SYMLINK_MAX + 1]; /* symlink target, or the base file's relative path */
	uint32_t tail_len;
};

struct layer {
	uint64_t id, parent;
	uint32_t gen;
	bool frozen;
	uint32_t nchildren;
	uint64_t bytes, blocks; /* derived from the presence records */
	uint64_t disk_bytes;    /* compressed, in table files (rift_store_refresh_disk_estimates) */
	bool dirty;             /* head layers: changed since created (unknown after a reopen) */
};

/*
 * Blocks of one data id held by one layer. With known set, bits says which blocks the layer may
 * hold a record of: a clear bit (or one past nwords) means it holds none, so a read need not ask
 * RocksDB. A bit may stay set after its record went (a truncate): that only costs a lookup.
 * Known only for presences born empty in this process; loaded ones, and any whose bits would
 * pass the memory bound, ask RocksDB for every block (store_index.c).
 */
struct presence {
	uint64_t layer;
	uint64_t nfull, nzero;
	uint64_t *bits;
	uint32_t nwords;
	bool known;
};

struct data_index_entry {
	uint64_t data_id; /* 0 = empty slot */
	uint32_t n, cap;
	struct presence *v;
};

struct branch_rec {
	char name[NAME_BUF], parent[NAME_BUF];
	uint32_t gen;
	uint64_t head;
	int64_t created_ns;
	uint64_t root_st_ino;
	uint64_t max_size;            /* bytes its head layer may hold; 0 = no limit */
	char labels[RIFT_LABELS_MAX]; /* opaque to the store; "" = none */
	uint64_t *chain;              /* head first, base layer last */
	uint32_t depth;               /* entries in chain */
	struct rift_branch *open;
};

struct base_gen {
	uint32_t gen;
	uint64_t layer;
};

struct ref_entry {
	uint64_t ino; /* 0 = empty */
	uint64_t count;
	bool orphan; /* unlinked while referenced */
};

/* Where in the chain an inode's newest record was found; valid while both generations hold. */
struct ino_place {
	uint64_t ino, layer, branch_gen, store_gen;
};

#define INO_CACHE 1024u
/* Writes to one inode of a branch serialize on one of these (picked by inode number). */
#define INO_STRIPES 32u

struct rift_branch {
	struct rift_store *store;
	struct branch_rec *rec;
	pthread_mutex_t refs_mu;
	struct ref_entry *refs;
	size_t refs_cap, refs_used;
	/* Inode lookups would walk the chain layer by layer; this remembers the layer. Any change
	 * by this branch bumps gen; any change of chains (create, delete, squash) bumps the store's
	 * chain_gen. Other branches write only their own heads, which this chain never contains. */
	pthread_mutex_t cache_mu;
	atomic_uint_least64_t gen;
	struct ino_place places[INO_CACHE];
	/* Data-path writes (write, fallocate) hold the store lock shared and the stripe of their
	 * inode: writes to different files, and of different branches, run at once, and RocksDB
	 * groups their WAL appends. A block's read-modify-write and its count updates are then
	 * never interleaved with another write of the same file. */
	pthread_mutex_t ino_mu[INO_STRIPES];
};

/* An open host file of the store (store_files.c): layer 0, the base file of data_id; else
 * that layer's overlay file. refs counts users between file_get and file_put; an entry evicted
 * while held is closed by its last user. All fields are guarded by the store's fd_mu. */
struct store_fd {
	uint64_t layer, data_id;
	int fd;
	uint32_t refs;
	bool evicted;
	bool dirty;         /* overlay: written since its last fdatasync */
	bool name_unsynced; /* overlay: made, its directory not synced since */
};

/* A dropped range of file data waiting for its compaction (store_reclaim.c). */
struct reclaim_range {
	uint64_t layer, data_id;
};
#define RECLAIM_QUEUE 64u

struct rift_store {
	char *state_dir;
	rocksdb_t *db;
	rocksdb_options_t *opts, *data_opts;
	rocksdb_column_family_handle_t *cf_default, *cf_meta, *cf_data;
	rocksdb_writeoptions_t *wo, *wo_sync;
	rocksdb_readoptions_t *ro;
	rocksdb_block_based_table_options_t *table_opts;
	rocksdb_cache_t *cache;

	/* Changes of the namespace, of chains and of branches hold lock for writing; reads and
	 * data-path writes (with their inode's stripe, see struct rift_branch) for reading. */
	pthread_rwlock_t lock;
	/* Guards what data-path writers of different inodes share while holding lock for
	 * reading: the presence index, the layers' counts and dirty flags. Held briefly, never
	 * across RocksDB calls; taken after lock and the stripes. */
	pthread_mutex_t mem_mu;
	uint64_t next_id, id_hwm;

	struct layer *layers;
	size_t nlayers, layers_cap;
	struct branch_rec **branches;
	size_t nbranches, branches_cap;
	struct base_gen *bases;
	size_t nbases;

	struct data_index_entry *index;
	size_t index_cap, index_used;
	size_t presence_bits_bytes; /* all presences' bits, bounded (store_index.c) */

	pthread_mutex_t fd_mu;
	struct store_fd **fds; /* open addressing, NULL = empty */
	size_t fds_cap, fds_used, fds_max;
	atomic_bool overlay_unsynced; /* an eviction closed a dirty overlay file (store_files.c) */

	pthread_mutex_t sync_mu;
	rocksdb_writebatch_t *sync_wb; /* the record whose synced write makes the WAL durable */
	atomic_uint_least64_t write_seq, synced_seq;
	atomic_int error;         /* sticky: damaged data; every later call fails */
	atomic_int rocks_stopped; /* -errno while RocksDB refuses writes (full disk), else 0 */
	atomic_int_least64_t last_warn_ns;
	/* how long RocksDB writes and WAL syncs take, for /metrics */
	struct rift_latency write_lat, sync_lat;

	/* Free-space reserve (store_space.c). reserve_bytes changes under the write lock. */
	uint64_t reserve_bytes;
	atomic_uint_least64_t free_cached, written_since;
	atomic_int_least64_t free_at_ns;
	atomic_bool ballast_present;
	atomic_uint_least64_t chain_gen; /* bumped whenever any branch's chain changes */

	pthread_mutex_t reclaim_mu; /* guards the reclaim_ fields; a leaf lock */
	pthread_cond_t reclaim_cv;
	pthread_t reclaimer;
	bool reclaimer_running, reclaim_stop;
	struct reclaim_range reclaim_q[RECLAIM_QUEUE];
	size_t reclaim_n;
	bool reclaim_overflow;
	uint64_t reclaim_pending; /* bytes dropped since the last reclaim */

	pthread_t squasher;
	pthread_mutex_t squash_mu;
	pthread_cond_t squash_cv;
	bool squash_wanted, squash_stop, squasher_running;
};

/* The stripe that serializes data-path changes of ino in branch b. */
static inline pthread_mutex_t *ino_stripe(struct rift_branch *b, uint64_t ino)
{
	return &b->ino_mu[(ino * 0x9E3779B97F4A7C15ull >> 32) % INO_STRIPES];
}

/* Asserts that someone holds the store lock (the caller, where a function requires it). A
 * trylock that succeeded would itself be the bug, so the assert fails either way then. */
#define ASSERT_LOCKED(s) assert(pthread_rwlock_trywrlock(&(s)->lock) == EBUSY)
/* Asserts that someone holds mem_mu, or the store lock for writing (which excludes every
 * data-path writer and reader, so nobody else can be in the index then). */
static inline bool mem_held(struct rift_store *s)
{
	if (pthread_mutex_trylock(&s->mem_mu) != 0)
		return true;
	pthread_mutex_unlock(&s->mem_mu);
	if (pthread_rwlock_tryrdlock(&s->lock) != 0)
		return true;
	pthread_rwlock_unlock(&s->lock);
	return false;
}
#define ASSERT_MEM(s) assert(mem_held(s))

/* ---- keys and records (store_codec.c) ---- */
void put_be64(uint8_t *p, uint64_t v);
uint64_t get_be64(const uint8_t *p);
size_t key_inode(uint8_t *k, uint64_t layer, uint64_t ino);
size_t key_dentry(uint8_t *k, uint64_t layer, uint64_t dir, const char *name);
size_t key_presence(uint8_t *k, uint64_t data_id, uint64_t layer);
size_t key_orphan(uint8_t *k, uint64_t layer, uint64_t ino);
size_t key_layer(uint8_t *k, uint64_t layer);
size_t key_branch(uint8_t *k, const char *name);
size_t key_base(uint8_t *k, uint32_t gen);
size_t key_data(uint8_t *k, uint64_t layer, uint64_t data_id, uint64_t block);
/* Serialises rec into buf (capacity cap); returns the length, or 0 if it does not fit. */
size_t inode_encode(const struct inode_rec *rec, uint8_t *buf, size_t cap);
int inode_decode(const uint8_t *buf, size_t len, struct inode_rec *rec);
size_t layer_encode(const struct layer *l, uint8_t *buf);
int layer_decode(const uint8_t *buf, size_t len, struct layer *l);
size_t branch_encode(const struct branch_rec *b, uint8_t *buf);
int branch_decode(const uint8_t *buf, size_t len, struct branch_rec *b);
#define INODE_BUF  (sizeof(struct inode_rec) + 64)
#define LAYER_BUF  64u
#define BRANCH_BUF 512u /* the fields below and labels */
/* Directory entry values: ino8 mode4; a whiteout has ino 0. */
#define DENTRY_LEN 12u

/* The on-disk format this code reads and writes (store_format.c keeps the history). */
#define RIFT_STORE_FORMAT 3u
/* A data CF value: the block is in its overlay file. */
#define BLOCK_IN_FILE 'F'

/* ---- store_format.c ---- */
/* Checks the format version at open, upgrading an older store in place; 0 or -errno with *err
 * saying what to do. Caller holds the write lock; nothing else was loaded yet. */
int store_format_check(struct rift_store *s, char *err, size_t errlen);

/* ---- store.c ---- */
int store_fail(struct rift_store *s, char *rocks_err, const char *what);
bool warn_now(struct rift_store *s);
int store_reload_counts(struct rift_store *s);
int store_write(struct rift_store *s, rocksdb_writebatch_t *wb, bool sync);
int store_sync_wal(struct rift_store *s);
/* store_write for a branch's change: also marks its head layer as changed. */
int branch_write(struct rift_branch *b, rocksdb_writebatch_t *wb);
/* branch_write for the data path (store lock held shared): on failure *reload is set and the
 * caller, once it released its locks, calls store_reload_counts_exclusive. */
int branch_write_shared(struct rift_branch *b, rocksdb_writebatch_t *wb, bool *reload);
/* Takes the store lock for writing and reloads the counts (after a failed data-path write). */
void store_reload_counts_exclusive(struct rift_store *s);
uint64_t store_alloc_id(struct rift_store *s, rocksdb_writebatch_t *wb);
struct layer *store_layer(struct rift_store *s, uint64_t id);
struct layer *store_layer_add(struct rift_store *s, const struct layer *l);
void store_layer_remove(struct rift_store *s, uint64_t id);
int store_chain_build(struct rift_store *s, struct branch_rec *b);
struct branch_rec *store_branch_find(struct rift_store *s, const char *name);
int store_branch_add(struct rift_store *s, struct branch_rec *b);
uint64_t store_base_layer(struct rift_store *s, uint32_t gen);
void store_squash_kick(struct rift_store *s);
int64_t now_ns(void);
struct timespec now_ts(void);
int meta_get(struct rift_store *s, const uint8_t *key, size_t klen, uint8_t *val, size_t cap,
	     size_t *vlen);

/* ---- store_space.c ---- */
void note_db_failed(struct rift_store *s, int e);
void note_db_ok(struct rift_store *s);
void space_wrote(struct rift_store *s, uint64_t bytes);
/* 0 if branch b may add up to grow bytes, else -ENOSPC (caller holds the store lock). The
 * size limit applies only when extends (the write makes a file longer, to new_size bytes). */
int space_admit(struct rift_branch *b, uint64_t grow, bool extends, uint64_t new_size);
bool space_low(struct rift_store *s);

/* ---- store_reclaim.c ---- */
/* Queues the data of data_id in layer (bytes of it) for a prompt compaction. */
void reclaim_note(struct rift_store *s, uint64_t layer, uint64_t data_id, uint64_t bytes);
/* The thread that compacts the queued ranges once enough is waiting; reclaim_stop ends it. */
void *reclaim_thread(void *arg);
void reclaim_stop(struct rift_store *s);

/* ---- store_index.c: which layers hold blocks of which data id ---- */
struct data_index_entry *index_find(struct rift_store *s, uint64_t data_id);
struct presence *index_get(struct rift_store *s, uint64_t data_id, uint64_t layer);
struct presence *index_add(struct rift_store *s, uint64_t data_id, uint64_t layer);
void index_remove(struct rift_store *s, uint64_t data_id, uint64_t layer);
void index_free(struct rift_store *s);
/* Drops the layer's entry at position i of e (its bits too). */
void index_remove_at(struct rift_store *s, struct data_index_entry *e, uint32_t i);
/* Notes that p's layer may now hold a record of block (before the record's batch commits). */
void presence_mark(struct rift_store *s, struct presence *p, uint64_t block);
/* Makes p's bits unknown: every block is asked of RocksDB. */
void presence_forget(struct rift_store *s, struct presence *p);
/* Whether p's layer may hold a record of block (false only when its bits say it holds none). */
bool presence_may_hold(const struct presence *p, uint64_t block);
void presence_put(struct rift_store *s, rocksdb_writebatch_t *wb, uint64_t data_id,
		  const struct presence *p);

/* ---- store_ns.c ---- */
int inode_get(struct rift_branch *b, uint64_t ino, struct inode_rec *rec, uint64_t *found_in);
void inode_put(struct rift_branch *b, rocksdb_writebatch_t *wb, uint64_t ino,
	       const struct inode_rec *rec);

/* ---- store_data.c ---- */
/* Blocks of one head overlay file whose records a call removed (zeros written over them): their
 * space is freed once the call's batch committed. Blocks past PUNCH_MAX are left allocated. */
#define PUNCH_MAX 128u
struct punch_list {
	uint64_t layer, data_id;
	uint32_t n;
	uint64_t blocks[PUNCH_MAX];
};
void overlay_punch(struct rift_store *s, const struct punch_list *p);
void overlay_trim(struct rift_store *s, uint64_t layer, uint64_t data_id, uint64_t from);
/* *trim_from: the head's overlay file can be cut at this block once wb committed (UINT64_MAX:
 * nothing to cut); punch as for writes. */
int data_truncate(struct rift_branch *b, rocksdb_writebatch_t *wb, struct inode_rec *rec,
		  uint64_t new_size, uint64_t *trim_from, struct punch_list *punch);
void data_drop_layer(struct rift_store *s, rocksdb_writebatch_t *wb, uint64_t layer,
		     uint64_t data_id);
void attr_from_rec(const struct rift_branch *b, uint64_t ino, const struct inode_rec *rec,
		   struct rift_attr *attr);

/* ---- store_files.c ---- */
int file_get(struct rift_store *s, uint64_t layer, const struct inode_rec *rec, uint64_t data_id,
	     bool create, struct store_fd **out);
/* wrote: the caller wrote to it (an overlay), which a later sync must make durable */
void file_put(struct rift_store *s, struct store_fd *f, bool wrote);
void store_files_close(struct rift_store *s);
/* data_id 0: the layer's directory */
void overlay_path(const struct rift_store *s, uint64_t layer, uint64_t data_id, char *buf,
		  size_t cap);
int overlay_sync_dirty(struct rift_store *s, uint64_t layer);
int overlay_sync_one(struct rift_store *s, uint64_t layer, uint64_t data_id);
void overlay_unlink(struct rift_store *s, uint64_t layer, uint64_t data_id);
void overlay_remove_layer(struct rift_store *s, uint64_t layer);
int overlay_sweep(struct rift_store *s);
/* Reads block of layer's overlay file of data_id into out (zeros where the file has none). */
int overlay_read(struct rift_store *s, uint64_t layer, uint64_t data_id, uint64_t block,
		 uint8_t *out);
/* Writes one block into layer's overlay file of data_id; 0 or -errno. */
int overlay_write(struct rift_store *s, uint64_t layer, uint64_t data_id, uint64_t block,
		  const uint8_t *in);

bool block_masked(const struct inode_rec *rec, uint64_t layer, uint64_t block);

/* ---- store_branch.c ---- */
void ns_release_all(struct rift_branch *b);
void drop_layer(struct rift_store *s, rocksdb_writebatch_t *wb, uint64_t id);
/* Adds b's record under its name to wb. */
void put_branch(struct rift_store *s, rocksdb_writebatch_t *wb, const struct branch_rec *b);
void put_layer(struct rift_store *s, rocksdb_writebatch_t *wb, const struct layer *l);
void compact_layer(struct rift_store *s, uint64_t id);
int squash_once(struct rift_store *s);
void *squash_thread(void *arg);

#endif
