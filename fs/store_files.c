/* store_files.c — the store's open host files: base files and layers' overlay files, cached. */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rift/log.h"
#include "rift/tree_remove.h"
#include "store_internal.h"

/*
 * One table of descriptors, keyed by (layer, data id): layer 0 is the base file of a data id
 * (read only), any other layer that layer's overlay file, `<state>/blocks/<layer>/<data id>`,
 * which holds the blocks the layer wrote of that file at offset block × 8 KiB. Readers and
 * writers hold an entry between file_get and file_put; eviction (the table is emptied whole at
 * the cap) closes only unheld entries, held ones close with their last user, so no pread ever
 * sees a closed or reused descriptor number (store_fdcache). An overlay entry written since its
 * last fdatasync is dirty. A dirty entry closed by an eviction marks the store, and the next
 * rift_store_sync syncs the whole filesystem under blocks/ once (syncfs) besides the dirty
 * entries still open; a file's own sync (rift_store_sync_file) opens it again if need be, and
 * fdatasync on any descriptor writes the file's dirty pages.
 */

static size_t fd_slot(uint64_t layer, uint64_t data_id, size_t cap)
{
	uint64_t h = (data_id ^ (layer * 0xC2B2AE3D27D4EB4Full)) * 0x9E3779B97F4A7C15ull;

	return (size_t)(h >> 23) & (cap - 1);
}

/* <state>/blocks holds every layer's directory of overlay files. */
#define BLOCKS_DIR "blocks"

static void blocks_dir(const struct rift_store *s, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/" BLOCKS_DIR, s->state_dir);
}

void overlay_path(const struct rift_store *s, uint64_t layer, uint64_t data_id, char *buf,
		  size_t cap)
{
	if (data_id == 0)
		snprintf(buf, cap, "%s/" BLOCKS_DIR "/%llu", s->state_dir,
			 (unsigned long long)layer);
	else
		snprintf(buf, cap, "%s/" BLOCKS_DIR "/%llu/%llu", s->state_dir,
			 (unsigned long long)layer, (unsigned long long)data_id);
}

/* fsyncs the directory at path; 0 or -errno. */
static int sync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) != 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Makes an overlay entry durable: its data, and its name if the file is new. Caller holds a
 * reference or fd_mu. Failures are sticky (the data may be gone from the page cache). */
static int entry_sync(struct rift_store *s, struct store_fd *f)
{
	char dir[4096];

	if (fdatasync(f->fd) != 0) {
		int e = errno;
		LOG_ERROR("store", "syncing overlay file of layer %llu, data %llu failed: %s",
			  (unsigned long long)f->layer, (unsigned long long)f->data_id,
			  strerror(e));
		return store_fail(s, NULL, "overlay file sync");
	}
	if (f->name_unsynced) {
		overlay_path(s, f->layer, 0, dir, sizeof(dir));
		int rc = sync_dir(dir);
		/* ENOENT: the layer was dropped meanwhile; none of its files matter any more */
		if (rc != 0 && rc != -ENOENT) {
			LOG_ERROR("store", "syncing %s failed: %s", dir, strerror(-rc));
			return store_fail(s, NULL, "overlay directory sync");
		}
		f->name_unsynced = false;
	}
	return 0;
}

/* Closes an entry nobody holds (caller holds fd_mu). A dirty one is not synced here, under
 * fd_mu: the next rift_store_sync syncs the whole filesystem once instead. */
static void fd_release(struct rift_store *s, struct store_fd *f)
{
	if (f->dirty || f->name_unsynced)
		atomic_store(&s->overlay_unsynced, true);
	if (close(f->fd) != 0)
		LOG_WARN("store", "closing a store file failed: %s", strerror(errno));
	free(f);
}

/* Empties the table (caller holds fd_mu). An entry somebody holds is only marked: its last
 * file_put closes it. */
static void fd_evict_all(struct rift_store *s)
{
	size_t i;

	for (i = 0; i < s->fds_cap; i++) {
		struct store_fd *f = s->fds[i];
		if (f == NULL)
			continue;
		s->fds[i] = NULL;
		assert(!f->evicted);
		if (f->refs == 0)
			fd_release(s, f);
		else
			f->evicted = true;
	}
	s->fds_used = 0;
}

void store_files_close(struct rift_store *s)
{
	pthread_mutex_lock(&s->fd_mu);
	fd_evict_all(s);
	free(s->fds);
	s->fds = NULL;
	s->fds_cap = 0;
	pthread_mutex_unlock(&s->fd_mu);
}

void file_put(struct rift_store *s, struct store_fd *f, bool wrote)
{
	pthread_mutex_lock(&s->fd_mu);
	assert(f->refs > 0);
	if (wrote)
		f->dirty = true; /* after the pwrite: a sync that cleared it before sees it again */
	if (--f->refs == 0 && f->evicted)
		fd_release(s, f);
	pthread_mutex_unlock(&s->fd_mu);
}

static int open_base_file(struct rift_store *s, const struct inode_rec *rec)
{
	char path[4096 + 64];
	int fd;

	snprintf(path, sizeof(path), "%s/base/%u/%s", s->state_dir, rec->base_gen, rec->tail);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	if (errno == EMFILE || errno == ENFILE || errno == ENOMEM)
		return -errno;
	LOG_ERROR("store", "base file %s cannot be opened: %s", path, strerror(errno));
	return -EIO;
}

/* Opens layer's overlay file of data_id, making it (and the layer's directory) when create;
 * -ENOENT when it does not exist and !create. *made tells whether the name is new. */
static int open_overlay(struct rift_store *s, uint64_t layer, uint64_t data_id, bool create,
			bool *made)
{
	char path[4096];
	int fd;

	*made = false;
	overlay_path(s, layer, data_id, path, sizeof(path));
	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0 || errno != ENOENT || !create)
		return fd >= 0 ? fd : -errno;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 && errno == ENOENT) {
		/* the layer's first file: its directory, made durable at once (once per layer) */
		char dir[4096], top[4096];
		overlay_path(s, layer, 0, dir, sizeof(dir));
		blocks_dir(s, top, sizeof(top));
		if (mkdir(top, 0700) != 0 && errno != EEXIST)
			return -errno;
		if (mkdir(dir, 0700) != 0 && errno != EEXIST)
			return -errno;
		if (sync_dir(top) != 0)
			return -EIO;
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	}
	if (fd < 0)
		return -errno;
	*made = true;
	return fd;
}

static int open_entry(struct rift_store *s, uint64_t layer, const struct inode_rec *rec,
		      uint64_t data_id, bool create, bool *made)
{
	int attempt, fd = -EIO;

	*made = false;
	for (attempt = 0; attempt < 2; attempt++) {
		fd = layer == 0 ? open_base_file(s, rec)
				: open_overlay(s, layer, data_id, create, made);
		if (fd >= 0 || (fd != -EMFILE && fd != -ENFILE) || attempt > 0)
			break;
		/* Out of descriptors: give back the cached ones nobody is using and retry. */
		fd_evict_all(s);
	}
	if (fd == -EMFILE || fd == -ENFILE || fd == -ENOMEM)
		LOG_WARN("store",
			 "a store file cannot be opened: %s; this call fails, later ones retry "
			 "(raise riftd's open-files limit)",
			 strerror(-fd));
	return fd;
}

/*
 * Returns in *out a held entry for (layer, data_id) — layer 0: the base file behind rec — or a
 * negative errno: -ENOENT for an overlay file that does not exist and !create, -EMFILE/-ENFILE
 * when riftd ran out of descriptors (not sticky). The caller uses it and calls file_put.
 */
int file_get(struct rift_store *s, uint64_t layer, const struct inode_rec *rec, uint64_t data_id,
	     bool create, struct store_fd **out)
{
	struct store_fd *f = NULL;
	size_t i;
	int rc = 0, fd;
	bool made;

	assert(layer != 0 || rec != NULL);
	pthread_mutex_lock(&s->fd_mu);
	if (s->fds_cap != 0) {
		for (i = fd_slot(layer, data_id, s->fds_cap); s->fds[i] != NULL;
		     i = (i + 1) & (s->fds_cap - 1)) {
			if (s->fds[i]->data_id == data_id && s->fds[i]->layer == layer) {
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
	fd = open_entry(s, layer, rec, data_id, create, &made);
	if (fd < 0) {
		free(f);
		f = NULL;
		rc = fd;
		goto out;
	}
	f->layer = layer;
	f->data_id = data_id;
	f->fd = fd;
	f->name_unsynced = made;
	for (i = fd_slot(layer, data_id, s->fds_cap); s->fds[i] != NULL;
	     i = (i + 1) & (s->fds_cap - 1))
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

/* Takes (layer, data_id) out of the table, closing it unless held (caller holds fd_mu). Keeps
 * linear probing intact by moving later entries of the run back into the hole. */
static void fd_forget(struct rift_store *s, uint64_t layer, uint64_t data_id)
{
	size_t mask = s->fds_cap - 1, i, j;
	struct store_fd *f;

	if (s->fds_cap == 0)
		return;
	for (i = fd_slot(layer, data_id, s->fds_cap); s->fds[i] != NULL; i = (i + 1) & mask)
		if (s->fds[i]->data_id == data_id && s->fds[i]->layer == layer)
			break;
	f = s->fds[i];
	if (f == NULL)
		return;
	s->fds[i] = NULL;
	s->fds_used--;
	f->dirty = f->name_unsynced = false; /* its file is going away: nothing to make durable */
	if (f->refs == 0)
		fd_release(s, f);
	else
		f->evicted = true;
	for (j = (i + 1) & mask; s->fds[j] != NULL; j = (j + 1) & mask) {
		size_t home = fd_slot(s->fds[j]->layer, s->fds[j]->data_id, s->fds_cap);
		/* the entry at j may move to the hole at i unless its home lies in (i, j] */
		bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (stays)
			continue;
		s->fds[i] = s->fds[j];
		s->fds[j] = NULL;
		i = j;
	}
}

/* Takes every entry of layer out of the table (its files are going away). */
static void fd_forget_layer(struct rift_store *s, uint64_t layer)
{
	uint64_t *ids = NULL;
	size_t n = 0, i;

	pthread_mutex_lock(&s->fd_mu);
	if (s->fds_used > 0)
		ids = malloc(s->fds_used * sizeof(*ids));
	if (ids == NULL && s->fds_used > 0) {
		fd_evict_all(s); /* out of memory: the blunt way */
		goto out;
	}
	for (i = 0; i < s->fds_cap; i++)
		if (s->fds[i] != NULL && s->fds[i]->layer == layer)
			ids[n++] = s->fds[i]->data_id;
	for (i = 0; i < n; i++)
		fd_forget(s, layer, ids[i]);
out:
	pthread_mutex_unlock(&s->fd_mu);
	free(ids);
}

/* Syncs what an eviction closed unsynced: the whole filesystem of blocks/, once. */
static int sync_evicted(struct rift_store *s)
{
	char top[4096];
	int fd, rc = 0;

	if (!atomic_exchange(&s->overlay_unsynced, false))
		return 0;
	blocks_dir(s, top, sizeof(top));
	fd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || syncfs(fd) != 0) {
		LOG_ERROR("store", "syncing %s failed: %s", top, strerror(errno));
		rc = store_fail(s, NULL, "overlay files sync");
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Syncs the dirty overlay entries of layer (0: of every layer), and what evictions closed
 * unsynced; 0 or -EIO. */
int overlay_sync_dirty(struct rift_store *s, uint64_t layer)
{
	struct store_fd **v = NULL;
	size_t n = 0, i;
	int rc = sync_evicted(s);

	if (rc != 0)
		return rc;
	pthread_mutex_lock(&s->fd_mu);
	if (s->fds_used > 0)
		v = malloc(s->fds_used * sizeof(*v));
	for (i = 0; v != NULL && i < s->fds_cap; i++) {
		struct store_fd *f = s->fds[i];
		if (f == NULL || f->layer == 0 || (layer != 0 && f->layer != layer) ||
		    !(f->dirty || f->name_unsynced))
			continue;
		f->dirty = false; /* a write that ends after this sets it again (file_put) */
		f->refs++;
		v[n++] = f;
	}
	if (v == NULL && s->fds_used > 0)
		rc = -ENOMEM;
	pthread_mutex_unlock(&s->fd_mu);
	for (i = 0; i < n; i++) {
		if (rc == 0)
			rc = entry_sync(s, v[i]);
		file_put(s, v[i], false);
	}
	free(v);
	return rc;
}

/* Syncs layer's overlay file of data_id if it exists; 0 or -errno. */
int overlay_sync_one(struct rift_store *s, uint64_t layer, uint64_t data_id)
{
	struct store_fd *f;
	/* an eviction may have closed this file dirty, or with its name unsynced */
	int rc = sync_evicted(s);

	if (rc == 0)
		rc = file_get(s, layer, NULL, data_id, false, &f);

	if (rc == -ENOENT)
		return 0;
	if (rc != 0)
		return rc;
	pthread_mutex_lock(&s->fd_mu);
	f->dirty = false;
	pthread_mutex_unlock(&s->fd_mu);
	rc = entry_sync(s, f);
	file_put(s, f, false);
	return rc;
}

/* Removes layer's overlay file of data_id (its blocks were dropped in a committed batch). */
void overlay_unlink(struct rift_store *s, uint64_t layer, uint64_t data_id)
{
	char path[4096];

	pthread_mutex_lock(&s->fd_mu);
	fd_forget(s, layer, data_id);
	pthread_mutex_unlock(&s->fd_mu);
	overlay_path(s, layer, data_id, path, sizeof(path));
	if (unlink(path) != 0 && errno != ENOENT)
		LOG_WARN("store", "removing overlay file %s failed: %s", path, strerror(errno));
}

/* Removes a dropped layer's overlay directory and everything in it. */
void overlay_remove_layer(struct rift_store *s, uint64_t layer)
{
	char path[4096];
	int rc;

	fd_forget_layer(s, layer);
	overlay_path(s, layer, 0, path, sizeof(path));
	rc = rift_tree_remove(path);
	if (rc != 0)
		LOG_WARN("store", "removing %s failed: %s", path, strerror(-rc));
}

/* A name under blocks/ as rift writes it: decimal digits only, no leading zero; else 0. */
static uint64_t parse_id(const char *name)
{
	char *end = NULL;
	unsigned long long v;

	if (name[0] < '1' || name[0] > '9')
		return 0;
	errno = 0;
	v = strtoull(name, &end, 10);
	return errno == 0 && *end == '\0' ? (uint64_t)v : 0;
}

/*
 * At open (store lock held for writing, records loaded): removes what a crash left under
 * blocks/ that no record names — directories of layers that are gone (a delete or squash whose
 * batch committed), and overlay files of a layer that holds no blocks of that data id (dropped
 * by a truncation, unlink or orphan recovery whose batch committed before the file went).
 */
int overlay_sweep(struct rift_store *s)
{
	char top[4096], path[4096];
	DIR *d, *ld;
	struct dirent *de, *fe;
	int rc = 0;

	blocks_dir(s, top, sizeof(top));
	if (mkdir(top, 0700) != 0 && errno != EEXIST)
		return -errno;
	d = opendir(top);
	if (d == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		uint64_t layer = parse_id(de->d_name);
		if (de->d_name[0] == '.')
			continue;
		if (layer == 0 || store_layer(s, layer) == NULL) {
			if (layer != 0)
				overlay_remove_layer(s, layer);
			else
				LOG_WARN("store", "%s/%s is not rift's; left alone", top,
					 de->d_name);
			continue;
		}
		overlay_path(s, layer, 0, path, sizeof(path));
		ld = opendir(path);
		if (ld == NULL)
			continue;
		while ((fe = readdir(ld)) != NULL) {
			uint64_t data_id = parse_id(fe->d_name);
			if (fe->d_name[0] == '.' || data_id == 0)
				continue;
			if (index_get(s, data_id, layer) == NULL)
				overlay_unlink(s, layer, data_id); /* with its cached descriptor */
		}
		closedir(ld);
	}
	closedir(d);
	return rc;
}

int overlay_read(struct rift_store *s, uint64_t layer, uint64_t data_id, uint64_t block,
		 uint8_t *out)
{
	struct store_fd *f;
	ssize_t got;
	int rc = file_get(s, layer, NULL, data_id, false, &f);

	if (rc == -ENOENT) {
		/* Only after a power loss took a new file's name: the block was never synced, so
		 * Postgres did not rely on it; it reads as a new page, as over a hole. */
		if (warn_now(s))
			LOG_WARN("store",
				 "overlay file of layer %llu, data %llu is missing; its "
				 "blocks read as zeros",
				 (unsigned long long)layer, (unsigned long long)data_id);
		memset(out, 0, RIFT_BLOCK_SIZE);
		return 0;
	}
	if (rc != 0)
		return rc;
	got = pread(f->fd, out, RIFT_BLOCK_SIZE, (off_t)(block * RIFT_BLOCK_SIZE));
	if (got < 0)
		rc = -EIO;
	else
		memset(out + got, 0, RIFT_BLOCK_SIZE - (size_t)got);
	file_put(s, f, false);
	return rc;
}

int overlay_write(struct rift_store *s, uint64_t layer, uint64_t data_id, uint64_t block,
		  const uint8_t *in)
{
	struct store_fd *f;
	ssize_t put;
	int rc = file_get(s, layer, NULL, data_id, true, &f);

	if (rc != 0)
		return rc;
	put = pwrite(f->fd, in, RIFT_BLOCK_SIZE, (off_t)(block * RIFT_BLOCK_SIZE));
	if (put != RIFT_BLOCK_SIZE) {
		int e = put < 0 ? errno : EIO;
		/* a full disk or a file past the host filesystem's largest: that write fails */
		rc = e == ENOSPC || e == EDQUOT ? -ENOSPC : e == EFBIG ? -EFBIG : -EIO;
		if (rc == -EIO && warn_now(s))
			LOG_ERROR(
			    "store", "writing layer %llu's overlay file of data %llu failed: %s",
			    (unsigned long long)layer, (unsigned long long)data_id, strerror(e));
	}
	file_put(s, f, put > 0);
	return rc;
}

/* Gives back the space of blocks >= from of layer's overlay file (their records are gone). */
void overlay_trim(struct rift_store *s, uint64_t layer, uint64_t data_id, uint64_t from)
{
	struct store_fd *f;
	struct stat st;

	if (file_get(s, layer, NULL, data_id, false, &f) != 0)
		return;
	if (fstat(f->fd, &st) == 0 && (uint64_t)st.st_size > from * RIFT_BLOCK_SIZE &&
	    ftruncate(f->fd, (off_t)(from * RIFT_BLOCK_SIZE)) != 0)
		LOG_WARN("store", "shrinking layer %llu's overlay file of data %llu failed: %s",
			 (unsigned long long)layer, (unsigned long long)data_id, strerror(errno));
	file_put(s, f, false);
}

/* Gives back the space of the blocks in p (their records are gone or ZERO markers now). */
void overlay_punch(struct rift_store *s, const struct punch_list *p)
{
	struct store_fd *f;
	uint32_t i;

	if (p->n == 0 || file_get(s, p->layer, NULL, p->data_id, false, &f) != 0)
		return;
	for (i = 0; i < p->n; i++)
		if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)(p->blocks[i] * RIFT_BLOCK_SIZE), RIFT_BLOCK_SIZE) != 0 &&
		    errno != EOPNOTSUPP)
			LOG_WARN("store", "freeing a block of layer %llu's overlay file failed: %s",
				 (unsigned long long)p->layer, strerror(errno));
	file_put(s, f, false);
}
