/* store_sizes.c — the disk each layer's blocks take: its overlay files and its records. */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "store_internal.h"

/* Bytes the filesystem allocated to layer's overlay files (holes and unwritten blocks are
 * free; a filesystem that compresses counts what it stored). */
static uint64_t overlay_bytes(struct rift_store *s, uint64_t layer)
{
	char path[4096];
	struct dirent *de;
	struct stat st;
	uint64_t sum = 0;
	DIR *d;

	overlay_path(s, layer, 0, path, sizeof(path));
	d = opendir(path);
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' &&
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			sum += (uint64_t)st.st_blocks * 512u;
	closedir(d);
	return sum;
}

/*
 * A layer's block records are the data family's keys that start with its id (big-endian), so
 * the range [id, id + 1) holds exactly them: RocksDB's estimate counts the table files
 * overlapping it (records still in the write buffer count from their flush). Its blocks are in
 * its overlay files, counted by what the filesystem allocated to them.
 */
int rift_store_refresh_disk_estimates(struct rift_store *s)
{
	const char **starts = NULL, **limits = NULL;
	size_t *start_lens = NULL, *limit_lens = NULL, i, n;
	uint64_t *ids = NULL, *sizes = NULL;
	uint8_t *keys = NULL;
	char *err = NULL;
	int rc = 0;

	/* the ids under the lock, the estimate without it: the lock prefers writers, so a create
	 * queued behind this call would hold up every reader of the data path */
	pthread_rwlock_rdlock(&s->lock);
	n = s->nlayers;
	if (n > 0 && (ids = calloc(n, sizeof(*ids))) != NULL)
		for (i = 0; i < n; i++)
			ids[i] = s->layers[i].id;
	pthread_rwlock_unlock(&s->lock);
	if (n == 0)
		return 0;
	assert(n <= INT_MAX);
	starts = calloc(n, sizeof(*starts));
	limits = calloc(n, sizeof(*limits));
	start_lens = calloc(n, sizeof(*start_lens));
	limit_lens = calloc(n, sizeof(*limit_lens));
	keys = calloc(n, 16);
	sizes = calloc(n, sizeof(*sizes));
	if (!ids || !starts || !limits || !start_lens || !limit_lens || !keys || !sizes) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		assert(ids[i] < UINT64_MAX);
		put_be64(keys + 16 * i, ids[i]);
		put_be64(keys + 16 * i + 8, ids[i] + 1);
		starts[i] = (const char *)keys + 16 * i;
		limits[i] = (const char *)keys + 16 * i + 8;
		start_lens[i] = limit_lens[i] = 8;
	}
	rocksdb_approximate_sizes_cf(s->db, s->cf_data, (int)n, starts, start_lens, limits,
				     limit_lens, sizes, &err);
	if (err != NULL) {
		rc = -EIO;
		goto out;
	}
	for (i = 0; i < n; i++)
		sizes[i] += overlay_bytes(s, ids[i]);
	/* layers made or dropped meanwhile: the array is mostly as it was, so try i first */
	pthread_rwlock_rdlock(&s->lock);
	pthread_mutex_lock(&s->mem_mu);
	for (i = 0; i < n; i++) {
		struct layer *l = i < s->nlayers && s->layers[i].id == ids[i]
				      ? &s->layers[i]
				      : store_layer(s, ids[i]);
		if (l != NULL)
			l->disk_bytes = sizes[i];
	}
	pthread_mutex_unlock(&s->mem_mu);
	pthread_rwlock_unlock(&s->lock);
out:
	rocksdb_free(err);
	free(ids);
	free(starts);
	free(limits);
	free(start_lens);
	free(limit_lens);
	free(keys);
	free(sizes);
	return rc;
}
