/* store_space.c — free-space reserve, per-branch size limits and RocksDB's stopped state. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "rift/log.h"
#include "store_internal.h"

/*
 * Policy (docs/architecture.md, "Full disks"). All branches share one RocksDB, and RocksDB stops
 * every write once one of its own writes fails for lack of space. So rift refuses writes that
 * add data BEFORE the disk is full, keeping `reserve` bytes free on the store's filesystem:
 *   - free >= reserve: writes go through (subject to each branch's own size limit);
 *   - reserve/4 <= free < reserve: the biggest branches (owning at least half as much as the
 *     largest, and at least a quarter of the reserve) are refused with ENOSPC: the one filling
 *     the disk is among them. The others keep writing from the reserve, so a small job beside
 *     a runaway one still commits;
 *   - free < reserve/4: every write that adds data is refused. What is left is RocksDB's
 *     headroom for flushes and deleting branches (a compaction that finds no room stops
 *     compacting but lets writes go on; a flush that finds none stops RocksDB's writes until
 *     the ballast below is released and it resumes on its own).
 * Reads, creating files, unlink, truncate, rename, setattr, writes of zeros and `rift delete`
 * are never refused: they free space or need almost none. Free space comes from statvfs, cached
 * for SPACE_REFRESH_NS or SPACE_REFRESH_BYTES written, whichever comes first.
 */
#define SPACE_REFRESH_NS    100000000LL /* 100 ms */
#define SPACE_REFRESH_BYTES (8ull << 20)
#define BALLAST_NAME        "reserve.ballast"
/* Files up to this size may still grow past a branch's size limit: Postgres rewrites its
 * relation-cache file (pg_internal.init, ~0.5 MiB) when a session starts after DDL and refuses
 * the connection (FATAL) if it cannot; a branch at its limit must stay reachable so that its
 * owner can drop what filled it. Many small files can go past the limit: the reserve is the
 * backstop against a branch that does that on purpose. */
#define LIMIT_SMALL_FILE (1ull << 20)

static void ballast_path(const struct rift_store *s, char *buf, size_t len)
{
	snprintf(buf, len, "%s/" BALLAST_NAME, s->state_dir);
}

/* Bytes of the ballast file: enough for RocksDB to resume (its write buffer) with slack. */
static uint64_t ballast_size(const struct rift_store *s)
{
	uint64_t want = 2ull * RIFT_WRITE_BUFFER;

	return s->reserve_bytes >= 2 * want ? want : 0;
}

/*
 * Creates the ballast file when it is missing and the disk can afford it: a preallocated file
 * that riftd deletes when RocksDB itself hits a full disk (something outside rift filled it),
 * so that RocksDB's recovery and `rift delete` find room.
 */
static void ballast_make(struct rift_store *s, uint64_t free_bytes)
{
	char path[4096 + 32];
	uint64_t size = ballast_size(s);
	int fd, rc;

	/* not while RocksDB is stopped: it needs the room to resume */
	if (size == 0 || atomic_load(&s->ballast_present) || atomic_load(&s->rocks_stopped) != 0 ||
	    free_bytes < s->reserve_bytes + size)
		return;
	ballast_path(s, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		LOG_WARN("store", "cannot create the reserve file %s: %s", path, strerror(errno));
		return;
	}
	rc = posix_fallocate(fd, 0, (off_t)size);
	if (close(fd) != 0 && rc == 0)
		rc = errno;
	if (rc != 0) {
		LOG_WARN("store", "cannot preallocate the reserve file %s: %s", path, strerror(rc));
		if (unlink(path) != 0)
			LOG_WARN("store", "cannot remove %s: %s", path, strerror(errno));
		return;
	}
	atomic_store(&s->ballast_present, true);
}

static void ballast_release(struct rift_store *s)
{
	char path[4096 + 32];

	if (!atomic_exchange(&s->ballast_present, false))
		return;
	ballast_path(s, path, sizeof(path));
	if (unlink(path) != 0 && errno != ENOENT)
		LOG_WARN("store", "cannot remove the reserve file %s: %s", path, strerror(errno));
	else
		LOG_WARN(
		    "store",
		    "%s: the disk is full; released the %llu MiB reserve file so the store can "
		    "recover (free space: delete branches with `rift delete`)",
		    s->state_dir, (unsigned long long)(ballast_size(s) >> 20));
}

void note_db_failed(struct rift_store *s, int e)
{
	if (atomic_exchange(&s->rocks_stopped, e) == 0)
		LOG_WARN("store",
			 "%s: the store's database refuses writes (%s); every branch's writes and "
			 "fsyncs fail until it recovers, reads keep working",
			 s->state_dir, strerror(-e));
	if (e == -ENOSPC)
		ballast_release(s);
}

void note_db_ok(struct rift_store *s)
{
	if (atomic_exchange(&s->rocks_stopped, 0) != 0)
		LOG_INFO("store", "%s: the store's database accepts writes again", s->state_dir);
}

void space_wrote(struct rift_store *s, uint64_t bytes)
{
	atomic_fetch_add(&s->written_since, bytes);
}

/* Free bytes on the store's filesystem, from a cache refreshed by time or bytes written. */
static uint64_t free_bytes(struct rift_store *s)
{
	int64_t now = now_ns();
	struct statvfs sv;
	uint64_t f;

	if (now - atomic_load(&s->free_at_ns) < SPACE_REFRESH_NS &&
	    atomic_load(&s->written_since) < SPACE_REFRESH_BYTES)
		return atomic_load(&s->free_cached);
	if (statvfs(s->state_dir, &sv) != 0)
		return atomic_load(&s->free_cached);
	f = (uint64_t)sv.f_bavail * sv.f_frsize;
	atomic_store(&s->free_cached, f);
	atomic_store(&s->written_since, 0);
	atomic_store(&s->free_at_ns, now);
	ballast_make(s, f);
	return f;
}

bool space_low(struct rift_store *s)
{
	return s->reserve_bytes != 0 && free_bytes(s) < s->reserve_bytes;
}

/* Caller holds mem_mu. */
static uint64_t head_bytes(struct rift_store *s, const struct branch_rec *r)
{
	struct layer *l = store_layer(s, r->head);

	return l != NULL ? l->bytes : 0;
}

int space_admit(struct rift_branch *b, uint64_t grow, bool extends, uint64_t new_size)
{
	struct rift_store *s = b->store;
	uint64_t own, f, largest = 0;
	size_t i;

	ASSERT_LOCKED(s); /* shared is enough: the branch list cannot change */
	pthread_mutex_lock(&s->mem_mu);
	own = head_bytes(s, b->rec);
	pthread_mutex_unlock(&s->mem_mu);
	if (b->rec->max_size != 0 && extends && own + grow > b->rec->max_size &&
	    new_size > LIMIT_SMALL_FILE) {
		if (warn_now(s))
			LOG_WARN(
			    "store",
			    "branch %s reached its size limit (%llu of %llu bytes); its writes "
			    "fail with ENOSPC until it frees space",
			    b->rec->name, (unsigned long long)own,
			    (unsigned long long)b->rec->max_size);
		return -ENOSPC;
	}
	if (s->reserve_bytes == 0)
		return 0;
	f = free_bytes(s);
	f = f > grow ? f - grow : 0;
	if (f >= s->reserve_bytes)
		return 0;
	if (f >= s->reserve_bytes / 4) {
		pthread_mutex_lock(&s->mem_mu);
		for (i = 0; i < s->nbranches; i++) {
			uint64_t o = head_bytes(s, s->branches[i]);
			largest = o > largest ? o : largest;
		}
		pthread_mutex_unlock(&s->mem_mu);
		/* Not among the biggest, or small anyway: may write from the reserve. The second
		 * test matters while a big branch's delete is still compacting: the largest
		 * remaining branch may be a small one then. */
		if (own < largest / 2 || own < s->reserve_bytes / 4)
			return 0;
	}
	if (warn_now(s))
		LOG_WARN(
		    "store",
		    "%s: free space %llu MiB is below the reserve (%llu MiB); writes of branch "
		    "%s (%llu MiB of its own) fail with ENOSPC (free space: `rift delete` "
		    "branches)",
		    s->state_dir, (unsigned long long)(f >> 20),
		    (unsigned long long)(s->reserve_bytes >> 20), b->rec->name,
		    (unsigned long long)(own >> 20));
	return -ENOSPC;
}

int rift_store_set_reserve(struct rift_store *s, uint64_t bytes)
{
	char path[4096 + 32];
	struct stat st;

	pthread_rwlock_wrlock(&s->lock);
	s->reserve_bytes = bytes;
	ballast_path(s, path, sizeof(path));
	atomic_store(&s->ballast_present, stat(path, &st) == 0 &&
					      (uint64_t)st.st_size >= ballast_size(s) &&
					      ballast_size(s) != 0);
	atomic_store(&s->free_at_ns, 0); /* refresh now */
	(void)free_bytes(s);
	pthread_rwlock_unlock(&s->lock);
	return 0;
}
