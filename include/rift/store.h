/* store.h — the copy-on-write block store: bases, layers, branches and their file namespaces. */
#ifndef RIFT_STORE_H
#define RIFT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rift/labels.h"

/*
 * Model. A store lives in a state directory: `db/` (RocksDB) and `base/<gen>/` (immutable base
 * data directories). A branch is a name and a head layer; a layer holds the changes made over
 * its parent layer; the root of every chain is the base layer of one base generation, whose
 * file contents are the files of `base/<gen>/`. Creating a branch freezes the parent's head and
 * gives parent and child fresh heads over it: O(1), one synced RocksDB batch.
 *
 * Every function returns 0 or a negative errno. A storage failure that passes (ENOSPC, EMFILE,
 * EIO from a write) fails that call only, and the call leaves nothing behind: later calls try
 * again, so writes work once space is free. While RocksDB itself refuses writes after hitting a
 * full disk, every mutating call and every sync fails (-ENOSPC) until it resumes on its own
 * (see rift_store_sync). Only damaged data is sticky: after it, every mutating call and every
 * sync returns -EIO until the store is reopened. Functions are thread-safe unless said otherwise.
 *
 * Space: with a reserve set (rift_store_set_reserve) and per-branch limits
 * (rift_store_branch_set_max_size), writes that add data fail with -ENOSPC for the branch that
 * is over its limit, or, when free space runs low, for the branches that use most; see
 * fs/store_space.c for the policy.
 *
 * Durability: each mutating call is one RocksDB write batch with the WAL on and no sync, its
 * block contents written first into plain overlay files, so a crash of the process loses at most
 * a suffix of acknowledged calls, and the call in flight may be partly applied: each 4 KiB page
 * it writes as before or as after, its size and times as before (store_crash). rift_store_sync
 * makes everything acknowledged so far durable (overlay files, then one WAL sync shared by
 * concurrent callers); rift_store_sync_file one file's contents. Branch creation and deletion are
 * synced themselves.
 */

#define RIFT_BLOCK_SIZE   8192u
#define RIFT_ROOT_INO     1u /* the root directory's inode number inside every branch */
#define RIFT_NAME_MAX_LEN 255u
#define RIFT_SYMLINK_MAX  4095u
#define RIFT_ERRMSG_LEN   512u

struct rift_store;
struct rift_branch;

/* Attributes of one inode as a branch sees it. */
struct rift_attr {
	uint64_t ino;    /* inode number inside the branch (RIFT_ROOT_INO for the root) */
	uint64_t st_ino; /* number to report as st_ino: unique per branch for the root */
	uint32_t mode;   /* type and permission bits, as in struct stat */
	uint32_t uid, gid;
	uint32_t nlink;
	uint64_t size;
	struct timespec atime, mtime, ctime;
};

/* Which fields of a rift_attr rift_store_setattr changes. */
enum {
	RIFT_SET_MODE = 1 << 0,
	RIFT_SET_UID = 1 << 1,
	RIFT_SET_GID = 1 << 2,
	RIFT_SET_SIZE = 1 << 3,
	RIFT_SET_ATIME = 1 << 4,
	RIFT_SET_MTIME = 1 << 5,
	RIFT_SET_CTIME = 1 << 6,
};

/* A branch as listed: names are at most 63 bytes (see branch_name.h). */
struct rift_branch_info {
	char name[64];
	uint64_t id;           /* never reused, kept across renames */
	char parent[64];       /* branch it was created from; "" when made from a base */
	uint32_t base_gen;     /* base generation at the root of its chain */
	uint64_t head_layer;   /* current head layer id */
	uint32_t chain_depth;  /* layers from head down to (not counting) the base layer */
	int64_t created_ns;    /* CLOCK_REALTIME at creation, nanoseconds */
	uint64_t bytes_own;    /* bytes stored in layers only this branch can see */
	uint64_t bytes_shared; /* bytes stored in its ancestor layers shared with other branches */
	uint64_t bytes_own_disk;    /* bytes_own as it takes the disk, compressed (an estimate) */
	uint64_t bytes_shared_disk; /* bytes_shared likewise */
	uint32_t nchildren;         /* branches created from it that still exist */
	uint64_t fork_layer;        /* the frozen layer its head sits on; 0 for none */
	bool head_changed; /* its head has had writes since it was made (true if unknown) */
	uint64_t max_size; /* limit on bytes_own; 0 = none */
	char labels[RIFT_LABELS_MAX]; /* "k=v,k=v" as set by rift_store_branch_set_labels */
};

/* Space of one layer. */
struct rift_layer_info {
	uint64_t id;
	uint64_t parent; /* 0 for a base layer */
	uint32_t base_gen;
	bool frozen;
	uint32_t nchildren; /* child layers */
	uint64_t bytes;     /* keys and values of its blocks (8 KiB data, or bare ZERO markers) */
	uint64_t blocks;    /* blocks stored, ZERO markers included */
};

/* ---- store ---- */

/*
 * Opens the store in state_dir, creating `db/` and `base/` when create is true and they are
 * missing. Recovers after a crash: files unlinked while open are freed. Verifies that every
 * base generation still matches the identity recorded when it was imported; a changed base is
 * refused (-ESTALE) rather than served. On failure *err (errlen bytes) says what went wrong and
 * what to do. The caller owns *out and frees it with rift_store_close.
 */
int rift_store_open(const char *state_dir, bool create, struct rift_store **out, char *err,
		    size_t errlen) __attribute__((warn_unused_result));

/* Closes branches still open, stops background work, syncs and closes RocksDB. NULL is fine. */
void rift_store_close(struct rift_store *store);

/*
 * Makes every call acknowledged so far durable: the overlay files written since their last
 * sync, then one WAL sync shared by all concurrent callers (none when nothing is pending).
 * Returns the sticky error if there is one.
 */
int rift_store_sync(struct rift_store *store) __attribute__((warn_unused_result));

/*
 * fsync of one file: makes its contents as branch b wrote them durable (its overlay file in b's
 * head), then the WAL as rift_store_sync does, with every call acknowledged so far. Cheaper than
 * rift_store_sync when other files have unsynced writes.
 */
int rift_store_sync_file(struct rift_branch *b, uint64_t ino) __attribute__((warn_unused_result));

/* fsync of a directory: makes every call acknowledged so far durable except file contents
 * (names, inodes, sizes; block contents need rift_store_sync_file or rift_store_sync). */
int rift_store_sync_names(struct rift_store *store) __attribute__((warn_unused_result));

/* The sticky storage error (0 if none). */
int rift_store_error(struct rift_store *store);

/* Latency of RocksDB writes (unsynced: every FUSE write) and of WAL syncs (fsync, create). */
struct rift_latency;
void rift_store_latency(struct rift_store *store, const struct rift_latency **write,
			const struct rift_latency **sync);

/*
 * Keeps bytes free on the store's filesystem (0 = no reserve, the default): writes that add
 * data are refused with -ENOSPC as free space falls below it (policy in fs/store_space.c), and
 * a preallocated `reserve.ballast` file in the state directory, released when RocksDB itself
 * hits a full disk, lets the store recover. Callable at any time.
 */
int rift_store_set_reserve(struct rift_store *store, uint64_t bytes);

/*
 * Imports the directory tree src_dir (regular files, directories, symlinks) as a new base
 * generation at `<state>/base/<gen>/`: renamed there when src_dir is on the same filesystem
 * and under `<state>/`, copied otherwise. Records each file's identity (size, mtime, st_ino).
 * *gen_out receives the new generation number. On failure *err says why.
 */
int rift_store_base_import(struct rift_store *store, const char *src_dir, uint32_t *gen_out,
			   char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * rift_store_base_import, recording every entry as owned by uid:gid (the server user) rather
 * than by its owner on disk: a base kept root's on disk, so that no process of that user can
 * write it, is still presented to branches as theirs. (uid_t)-1 keeps the owners on disk.
 */
int rift_store_base_import_as(struct rift_store *store, const char *src_dir, uid_t uid, gid_t gid,
			      uint32_t *gen_out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Newest base generation, or 0 when none was imported yet. */
uint32_t rift_store_base_latest(struct rift_store *store);

/* Re-checks every file of base generation gen against its recorded identity (-ESTALE if not). */
int rift_store_base_verify(struct rift_store *store, uint32_t gen, char *err, size_t errlen);

/* ---- branches ---- */

/*
 * Creates branch name from branch from, or from base generation base_gen when from is NULL
 * (0 = newest). from may be open and being written: its writers are paused for the switch to
 * a new head, so the child sees exactly the calls acknowledged before. One synced batch, cost
 * independent of the data size. -EEXIST, -ENOENT (no such parent), -EINVAL (bad name).
 * The new branch inherits everything but `postmaster.pid` at the root, which it does not see.
 */
int rift_store_branch_create(struct rift_store *store, const char *name, const char *from,
			     uint32_t base_gen) __attribute__((warn_unused_result));

/*
 * Deletes branch name and every layer no other branch needs, then compacts so the space comes
 * back. -ENOENT; -EBUSY if it is open; -ENOTEMPTY if branches were created from it (delete
 * those first: their chains share its layers, so they are kept alive by reference counts).
 */
int rift_store_branch_delete(struct rift_store *store, const char *name)
    __attribute__((warn_unused_result));

/*
 * Limits the bytes branch name may store in its own layer (bytes_own) to max_size (0 = no
 * limit): a write that extends a file (or creates one) and would go past it fails with -ENOSPC.
 * Writes inside a file's current size still pass, and so do writes to files of at most 1 MiB,
 * so that Postgres (its WAL segments are sized when created; its relation-cache file is
 * rewritten as sessions start) keeps committing, accepting connections and dropping at its
 * limit: the branch can exceed the limit by its WAL and small files. Persistent (one synced
 * write). -ENOENT if there is no such branch.
 */
int rift_store_branch_set_max_size(struct rift_store *store, const char *name, uint64_t max_size)
    __attribute__((warn_unused_result));

/*
 * Sets the labels of branch name: an opaque string under RIFT_LABELS_MAX bytes (riftd keeps
 * "k=v,k=v" in it), stored in the branch's record (records written before labels existed read
 * as ""). Persistent (one synced write). -ENOENT if there is no such branch, -E2BIG if too long.
 */
int rift_store_branch_set_labels(struct rift_store *store, const char *name, const char *labels)
    __attribute__((warn_unused_result));

/* The size limit of an open branch (0 = none). */
uint64_t rift_store_branch_max_size(struct rift_branch *branch);

/* Fills *info for branch name. -ENOENT if there is none. */
/*
 * Renames branch from to to (a valid branch name that does not exist) in one synced batch.
 * Open handles and mounts of the branch keep working. -ENOENT, -EEXIST, -EINVAL, or
 * -ENOTEMPTY when branches were made from it (they name it as their parent).
 */
int rift_store_branch_rename(struct rift_store *store, const char *from, const char *to)
    __attribute__((warn_unused_result));

/*
 * Counts the branch's head as changed, so the next branch taken from it freezes it rather than
 * sharing the frozen layer below: for a running server whose WAL lives outside the store, whose
 * commits may have changed nothing in it yet. 0 or -ENOENT.
 */
int rift_store_branch_mark_changed(struct rift_store *store, const char *name);

int rift_store_branch_info(struct rift_store *store, const char *name,
			   struct rift_branch_info *info);

/*
 * Creates branch name (with no parent recorded) over the point where branch of was made: the
 * layer its chain shares with its parent's, i.e. the parent as it was then; the base layer for
 * a branch made from a base. O(1), one synced batch. -EEXIST, -ENOENT (no branch of), -ESRCH
 * (no such shared layer, e.g. its parent is gone), -EINVAL (bad name).
 */
int rift_store_branch_create_at_fork(struct rift_store *store, const char *name, const char *of)
    __attribute__((warn_unused_result));

/* What changed in one file between two branches since their chains parted (store_changes.c). */
struct rift_file_changes {
	bool in_a, in_b;             /* the file exists in branch a / in branch b */
	bool same_file;              /* in both, same inode and content lineage; else all differs */
	uint64_t blocks_a, blocks_b; /* sizes in RIFT_BLOCK_SIZE blocks */
	uint64_t tail;               /* same_file: every block >= tail counts as changed */
	uint64_t *changed;           /* same_file: sorted distinct blocks < tail that either side
				      * wrote since (caller frees) */
	size_t nchanged;
	bool overflow; /* more than max changed blocks: changed is NULL, treat all as changed */
};

/*
 * Which blocks of the regular file at path (relative to the root, "base/5/1259") branches a
 * and b may see differently: those either side wrote in its own layers above the newest layer
 * both chains share, plus everything past a truncation made there or past the shorter file.
 * Sees what the branches' mounts wrote to the store (an instance must have flushed: CHECKPOINT).
 * At most max blocks are collected (bounded memory); when the store's counts alone say there
 * are more, none are read (overflow). 0 and *out, or -ENOENT (no such branch),
 * -ESRCH (the chains share no layer), -ENOMEM, -EIO.
 */
int rift_store_file_changes(struct rift_store *store, const char *a, const char *b,
			    const char *path, size_t max, struct rift_file_changes *out)
    __attribute__((warn_unused_result));

/*
 * The newest layer branches a's and b's chains share (*layer), and whether it shows a base's
 * files as they are (*is_base): the root layer of a base generation, or layers over it that
 * hold no block. 0, -ENOENT (no such branch), -ESRCH (none shared).
 */
int rift_store_common_layer(struct rift_store *store, const char *a, const char *b, uint64_t *layer,
			    bool *is_base) __attribute__((warn_unused_result));

/*
 * Lists branches sorted by name: *out (owned by the caller, free()) gets *count entries.
 */
int rift_store_branch_list(struct rift_store *store, struct rift_branch_info **out, size_t *count)
    __attribute__((warn_unused_result));

/*
 * Re-estimates the disk every layer's blocks take in the store's table files, compressed, as
 * bytes_own_disk and bytes_shared_disk report them (0 until the first call). One batched
 * RocksDB estimate over all layers; blocks still in the write buffer count once flushed.
 * 0, -ENOMEM or -EIO.
 */
int rift_store_refresh_disk_estimates(struct rift_store *store);

/* Fills *info for layer id. -ENOENT if there is none. */
int rift_store_layer_info(struct rift_store *store, uint64_t id, struct rift_layer_info *info);

/*
 * Opens branch name for file operations; at most one open handle per branch (-EBUSY). The
 * caller closes it with rift_store_branch_close; open inode references are dropped then.
 */
int rift_store_branch_open(struct rift_store *store, const char *name, struct rift_branch **out)
    __attribute__((warn_unused_result));
void rift_store_branch_close(struct rift_branch *branch);

/*
 * Merges, for every chain, frozen layers left with a single child into that child, so chains
 * stay shallow. Runs in the background on its own after deletions; callable directly (tests,
 * maintenance). Returns the number of layers merged, or a negative errno.
 */
int rift_store_squash(struct rift_store *store);

/* ---- namespace (all inode numbers are branch-relative; RIFT_ROOT_INO is the root) ---- */

int rift_store_getattr(struct rift_branch *b, uint64_t ino, struct rift_attr *attr);
int rift_store_lookup(struct rift_branch *b, uint64_t dir, const char *name,
		      struct rift_attr *attr);

/*
 * Creates a regular file (S_IFREG in mode) or other non-directory node. -EEXIST if the name
 * exists: the caller decides about O_EXCL/O_TRUNC with lookup + setattr. mode's type bits must
 * be S_IFREG, S_IFIFO or S_IFSOCK (no device nodes).
 */
int rift_store_create(struct rift_branch *b, uint64_t dir, const char *name, uint32_t mode,
		      uint32_t uid, uint32_t gid, struct rift_attr *attr)
    __attribute__((warn_unused_result));
int rift_store_mkdir(struct rift_branch *b, uint64_t dir, const char *name, uint32_t mode,
		     uint32_t uid, uint32_t gid, struct rift_attr *attr)
    __attribute__((warn_unused_result));
int rift_store_symlink(struct rift_branch *b, uint64_t dir, const char *name, const char *target,
		       uint32_t uid, uint32_t gid, struct rift_attr *attr)
    __attribute__((warn_unused_result));
/* Copies the target into buf (NUL-terminated, truncated to size-1 bytes). */
int rift_store_readlink(struct rift_branch *b, uint64_t ino, char *buf, size_t size);

/*
 * Removes a non-directory entry. If the inode is still referenced (rift_store_ref), it lives
 * on, readable and writable, until the last rift_store_unref; else its data is freed now.
 */
int rift_store_unlink(struct rift_branch *b, uint64_t dir, const char *name)
    __attribute__((warn_unused_result));
int rift_store_rmdir(struct rift_branch *b, uint64_t dir, const char *name)
    __attribute__((warn_unused_result));

/* Flags for rift_store_rename. */
#define RIFT_RENAME_NOREPLACE 1u
#define RIFT_RENAME_EXCHANGE  2u
/*
 * Atomically renames, replacing an existing target like rename(2) (a file over a file, a
 * directory over an empty directory). A replaced inode that is still referenced lives on as
 * with unlink. RIFT_RENAME_EXCHANGE is not supported (-EINVAL).
 */
int rift_store_rename(struct rift_branch *b, uint64_t dir, const char *name, uint64_t newdir,
		      const char *newname, unsigned flags) __attribute__((warn_unused_result));

/*
 * Changes the fields named in mask (RIFT_SET_*); RIFT_SET_SIZE truncates or extends (the
 * extension reads as zeros, never as older data). ctime is set to now unless given.
 */
int rift_store_setattr(struct rift_branch *b, uint64_t ino, const struct rift_attr *in,
		       unsigned mask, struct rift_attr *out) __attribute__((warn_unused_result));

/* One directory entry, as rift_store_readdir reports it. */
struct rift_dirent {
	uint64_t ino;
	uint32_t mode; /* type bits only */
	const char *name;
};
/*
 * Calls fn for every entry of directory dir ("." and ".." not included), in name order, until
 * fn returns non-zero (which readdir then returns). The listing is one consistent snapshot.
 */
int rift_store_readdir(struct rift_branch *b, uint64_t dir,
		       int (*fn)(const struct rift_dirent *ent, void *arg), void *arg);

/* ---- data ---- */

/*
 * Reads up to len bytes at off into buf; returns the bytes read (short only at end of file),
 * or a negative errno. Never-written ranges inside the file read as zeros.
 */
ssize_t rift_store_read(struct rift_branch *b, uint64_t ino, uint64_t off, size_t len, void *buf);

/* Writes len bytes at off, extending the file as needed; returns len or a negative errno. A
 * write that only rewrites blocks the branch's head already holds leaves the file's mtime and
 * ctime as they were if they are less than a second old. */
ssize_t rift_store_write(struct rift_branch *b, uint64_t ino, uint64_t off, size_t len,
			 const void *buf) __attribute__((warn_unused_result));

/* Ensures the file is at least off+len bytes long (fallocate mode 0; blocks stay holes). */
int rift_store_fallocate(struct rift_branch *b, uint64_t ino, uint64_t off, uint64_t len)
    __attribute__((warn_unused_result));

/*
 * Reference counting for open files and kernel lookups: an inode with references outlives its
 * last name. rift_store_unref frees an unlinked inode when the count reaches zero.
 */
int rift_store_ref(struct rift_branch *b, uint64_t ino);
int rift_store_unref(struct rift_branch *b, uint64_t ino);

/* Filesystem totals for statfs: bytes stored in the whole store and the inodes in use. */
int rift_store_statfs(struct rift_store *store, uint64_t *bytes_used, uint64_t *bytes_free);

#endif
