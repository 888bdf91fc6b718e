/* wal_dir.h — a branch's pg_wal (and temporary files) as plain files beside the store. */
#ifndef RIFT_WAL_DIR_H
#define RIFT_WAL_DIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct rift_pg_checkpoint;

/*
 * Layout under <state>/wal (root's, 0711: a server's uid reaches its own directory by name and
 * can list none):
 *   b-<branch id>  the WAL of a branch: its server's uid and 0700 while it runs, root's 0700
 *                  while it is stopped (uids are reused by other branches);
 *   l-<layer id>   the WAL of a frozen layer as it was when the layer was frozen: root's, 0700.
 *                  A branch made later on that layer, and rift diff's server on a fork point,
 *                  start from a copy of it;
 *   t-<branch id>  a running branch's temporary files (base/pgsql_tmp): its server's uid,
 *                  0700, made empty at each start; at each stop made root's and moved aside,
 *                  then removed once the uid's processes are swept.
 * The branch's view holds `pg_wal` as a symbolic link to its b- directory, which Postgres
 * follows (as with initdb -X). Everything in a b- directory is the branch user's to change, so
 * riftd reads it only through descriptors opened O_NOFOLLOW|O_NONBLOCK, copies only regular
 * files with WAL names, and never follows what it finds (docs/security.md).
 * Ids are the store's (rift_branch_info.id and .fork_layer), never reused, so a rename (a warm
 * server taken) keeps its WAL. 0 or -errno everywhere, *err saying what failed and what to do.
 */

/* Who a running branch's WAL directory is given to. Files in it are copied or handed on only
 * when riftd wrote them or the uid it was last given to did (recorded in trusted.* xattrs, which
 * only root can set); on a filesystem without xattrs, root's and the servers' uids lo..hi. */
struct rift_wal_owner {
	uid_t uid;
	gid_t gid;
	uid_t lo, hi;
};

/* "<state>/wal" into buf; -ENAMETOOLONG if it does not fit. */
int rift_wal_root(const char *state, char *buf, size_t len) __attribute__((warn_unused_result));

/*
 * Before a server starts on the view at rootfd (with in_store, for a branch with a size limit,
 * which must count its WAL: brings it back into the view instead): makes the branch's b- directory
 * when it has none (from the view's own pg_wal directory, moving the WAL out of the store, or from
 * l-<fork_layer>), points the view's pg_wal at it, and gives the directory and its entries to owner
 * (only regular files with one name made by root or a server, and directories; nothing followed).
 */
int rift_wal_prepare(const char *walroot, int rootfd, const char *branch, uint64_t id,
		     uint64_t fork_layer, const struct rift_wal_owner *owner, bool in_store,
		     char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Before a server starts on the view at rootfd, after rift_wal_prepare: a fresh, empty
 * t-<id> for its temporary files (sort and hash spills), given to uid:gid, and the view's
 * base/pgsql_tmp pointing at it (whatever was there removed, never followed). Spilled through
 * the mount they would be pushed into the store at every close only to be deleted (the kernel's
 * writeback cache flushes a file's dirty pages on close). With in_store (a size-limited branch)
 * they stay in the view, counted against the limit; where the view's own pgsql_tmp cannot be
 * replaced (a tree deeper than a server makes), too, with a warning.
 */
int rift_wal_temp_prepare(const char *walroot, int rootfd, const char *branch, uint64_t id,
			  uid_t uid, gid_t gid, bool in_store, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* After its server stopped: the b- directory becomes root's 0700 again and so does t-, moved
 * aside at once whatever it holds. Best effort, logged. */
void rift_wal_close(const char *walroot, uint64_t id);

/*
 * After the store froze layer (the parent's head) for a new branch: when the parent keeps its
 * WAL beside the store (b-<parent_id>), copies it to l-<layer> unless that exists, then gives the
 * child its own copy (b-<child_id>); lo..hi as in struct rift_wal_owner. The copy is taken after
 * the freeze, so it holds all the WAL the frozen data depends on (Postgres writes WAL before the
 * data it covers); a gap in it (a checkpoint removed a segment while it was copied) fails with
 * -EAGAIN, and so does a copy without every segment from need's redo point to its checkpoint
 * record (the child's pg_control; NULL when it could not be read: not checked).
 */
int rift_wal_branched(const char *walroot, uint64_t parent_id, uint64_t layer, uint64_t child_id,
		      const struct rift_pg_checkpoint *need, uid_t lo, uid_t hi, char *err,
		      size_t errlen) __attribute__((warn_unused_result));

/* Disk taken by b-<id> and t-<id> (allocated blocks); UINT64_MAX when they hold more entries,
 * or deeper directories, than a server makes: the branch's user filled them with something
 * else. */
uint64_t rift_wal_size(const char *walroot, uint64_t id);

/* Removes what t-<id> held, however deep, once the uid that had it was swept (after a stop;
 * rift_wal_remove and riftd's start do it too). Best effort, logged. */
void rift_wal_temp_reap(const char *walroot, uint64_t id);

/* Removes b-<id> and t-<id> (a deleted branch). Best effort, logged. */
void rift_wal_remove(const char *walroot, uint64_t id);

struct rift_store;

/*
 * Removes l- directories of layers the store no longer has (squashed, or gone with the last
 * branch on them). With lock_all (riftd starting: no server runs and no branch is being made)
 * also b- directories of branches it no longer has, half copies a killed riftd left and every
 * t- directory, and every other b- directory becomes root's 0700.
 */
void rift_wal_collect(const char *walroot, struct rift_store *store, int lock_all);

#endif
