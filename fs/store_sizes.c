/* store_sizes.c — estimates of the disk each layer's blocks take, compressed, in the store. */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "store_internal.h"

/*
 * A layer's blocks are the data family's keys that start with its id (big-endian), so the range
 * [id, id + 1) holds exactly them. RocksDB's estimate counts the table files overlapping that
 * range (compressed, as stored); blocks still in the write buffer count from their flush, which
 * the WAL bound makes happen within a few tens of MiB of writes.
 */
int rift_store_refresh_disk_estimates(struct rift_store *s)
{
	const char **starts = NULL, **limits = NULL;
	size_t *start_lens = NULL, *limit_lens = NULL, i, n;
	uint8_t *keys = NULL;
	uint64_t *sizes = NULL;
	char *err = NULL;
	int rc = 0;

	pthread_rwlock_rdlock(&s->lock); /* the layer array stays as it is until the unlock */
	n = s->nlayers;
	if (n == 0)
		goto out;
	assert(n <= INT_MAX);
	starts = calloc(n, sizeof(*starts));
	limits = calloc(n, sizeof(*limits));
	start_lens = calloc(n, sizeof(*start_lens));
	limit_lens = calloc(n, sizeof(*limit_lens));
	keys = calloc(n, 16);
	sizes = calloc(n, sizeof(*sizes));
	if (!starts || !limits || !start_lens || !limit_lens || !keys || !sizes) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		uint64_t id = s->layers[i].id;
		assert(id < UINT64_MAX);
		put_be64(keys + 16 * i, id);
		put_be64(keys + 16 * i + 8, id + 1);
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
	pthread_mutex_lock(&s->mem_mu);
	for (i = 0; i < n; i++)
		s->layers[i].disk_bytes = sizes[i];
	pthread_mutex_unlock(&s->mem_mu);
out:
	pthread_rwlock_unlock(&s->lock);
	rocksdb_free(err);
	free(starts);
	free(limits);
	free(start_lens);
	free(limit_lens);
	free(keys);
	free(sizes);
	return rc;
}
