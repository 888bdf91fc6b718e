/* datadir.h — riftd's few touches of a branch's data directory, none through a planted link. */
#ifndef RIFT_DATADIR_H
#define RIFT_DATADIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Everything below a branch's mount belongs to the branch's OS user, who is hostile (a database
 * superuser gets a shell through COPY ... TO PROGRAM). riftd runs as root, so it reaches that
 * tree only through a descriptor of the mount root and *at() calls that never follow a link:
 * O_NOFOLLOW on every open, unlinkat on the name itself. docs/security.md lists every touch.
 */

/* The largest branch pg_hba.conf riftd copies into the file it gives the server. */
#define RIFT_HBA_MAX_BYTES (1 << 20)

/*
 * Opens the mount root of a branch (O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC). The path is riftd's
 * own (<state>/mnt/<branch>, in root-owned directories), so the branch's user cannot swap it.
 * Returns the descriptor or -errno.
 */
int rift_datadir_open(const char *mountpoint) __attribute__((warn_unused_result));

/*
 * Removes name below the directory at and, when it is a directory, what it holds (depth levels
 * at most). A link is removed as a link: openat with O_NOFOLLOW refuses it and unlinkat never
 * follows the last component, so nothing outside the branch is reached even when the branch's
 * user swaps entries meanwhile. A missing name is success; else 0 or -errno.
 */
int rift_datadir_remove(int at, const char *name, int depth) __attribute__((warn_unused_result));

/*
 * Readies a stopped branch for a server of riftd's own: removes postmaster.pid (riftd started
 * no server on this mount, and ends orphans of a previous riftd before any start, so a lock
 * file there is stale; it is never read), standby.signal and recovery.signal (a branch is a
 * primary), and every inherited replication slot (they would pin WAL forever). A pg_replslot
 * that is not a directory (a planted symlink) is replaced by an empty one owned by uid:gid. Links
 * are removed as links, never followed. 0, or -errno with *err saying what failed and what to do.
 */
int rift_datadir_prepare(int rootfd, const char *branch, uid_t uid, gid_t gid, char *err,
			 size_t errlen) __attribute__((warn_unused_result));

/*
 * Writes hbafile (riftd's own path, <state>/run/hba/<branch>.conf; its directory is made 0711
 * and must be root-owned and writable by root only): rift's `local all all trust` line for
 * riftd's 0700 socket directory, then the branch's own pg_hba.conf when it is a regular file of
 * at most RIFT_HBA_MAX_BYTES read without following links, else a strict default (scram-sha-256
 * on 127.0.0.1/32 and ::1/128) and a WARN saying what to fix. A rift line that an older riftd
 * prepended to the branch's file is dropped from the copy. Written to an O_EXCL temporary file
 * and renamed into place; mode 0640, owner root, group gid (the server reads it). closed: rift's
 * line only, so no client can log in over TCP (a warm-pool server before it is handed out).
 * 0 or -errno with *err.
 */
int rift_datadir_write_hba(int rootfd, const char *branch, const char *hbafile, gid_t gid,
			   bool closed, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Composes the file's text from the branch's pg_hba.conf (data, len) or, when data is NULL, the
 * strict default. Returns a malloc'ed NUL-terminated string the caller frees, or NULL when out
 * of memory. Exposed for the unit tests.
 */
char *rift_datadir_compose_hba(const char *data, size_t len);

#endif
