/* store_reclaim.c — gives back promptly the disk space of file data dropped inside a branch. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

/*
 * Deleting or truncating a file to 0 inside a branch (Postgres removes a WAL segment after each
 * checkpoint, drops and rewrites relations) deletes its blocks with one DeleteRange, but the
 * blocks stay on disk until a compaction happens to reach their files, which for a store that
 * is mostly idle can be never. So dropped ranges are queued here and, once RECLAIM_BYTES of
 * data is waiting, the background thread compacts just those ranges: the space comes back
 * within a few WAL segments of churn, without rewriting the rest of the store.
 */
#define RECLAIM_BYTES (64ull << 20)

/* reclaim_mu is a leaf: callers hold the store lock, so this only signals the reclaim thread,
 * which compacts without holding anything. */
void reclaim_note(struct rift_store *s, uint64_t layer, uint64_t data_id, uint64_t bytes)
{
	pthread_mutex_lock(&s->reclaim_mu);
	if (s->reclaim_n < RECLAIM_QUEUE) {
		s->reclaim_q[s->reclaim_n].layer = layer;
		s->reclaim_q[s->reclaim_n].data_id = data_id;
		s->reclaim_n++;
	} else {
		s->reclaim_overflow = true; /* then the whole data column family is compacted */
	}
	s->reclaim_pending += bytes;
	if (s->reclaim_pending >= RECLAIM_BYTES)
		pthread_cond_signal(&s->reclaim_cv);
	pthread_mutex_unlock(&s->reclaim_mu);
}

/* Takes the queue (caller holds reclaim_mu) and compacts it with the mutex released. */
static void reclaim_run(struct rift_store *s)
{
	struct reclaim_range q[RECLAIM_QUEUE];
	bool all;
	size_t n, i;

	n = s->reclaim_n;
	all = s->reclaim_overflow;
	memcpy(q, s->reclaim_q, n * sizeof(q[0]));
	s->reclaim_n = 0;
	s->reclaim_overflow = false;
	s->reclaim_pending = 0;
	pthread_mutex_unlock(&s->reclaim_mu);
	if (all)
		rocksdb_compact_range_cf(s->db, s->cf_data, NULL, 0, NULL, 0);
	for (i = 0; !all && i < n; i++) {
		uint8_t from[DATA_KEY_LEN], to[DATA_KEY_LEN];
		key_data(from, q[i].layer, q[i].data_id, 0);
		key_data(to, q[i].layer, q[i].data_id + 1, 0);
		rocksdb_compact_range_cf(s->db, s->cf_data, (const char *)from, sizeof(from),
					 (const char *)to, sizeof(to));
	}
	pthread_mutex_lock(&s->reclaim_mu);
}

void *reclaim_thread(void *arg)
{
	struct rift_store *s = arg;

	pthread_setname_np(pthread_self(), "store-reclaim");
	pthread_mutex_lock(&s->reclaim_mu);
	while (!s->reclaim_stop) {
		if (s->reclaim_pending >= RECLAIM_BYTES)
			reclaim_run(s);
		else
			pthread_cond_wait(&s->reclaim_cv, &s->reclaim_mu);
	}
	pthread_mutex_unlock(&s->reclaim_mu);
	return NULL;
}

void reclaim_stop(struct rift_store *s)
{
	if (!s->reclaimer_running)
		return;
	pthread_mutex_lock(&s->reclaim_mu);
	s->reclaim_stop = true;
	pthread_cond_signal(&s->reclaim_cv);
	pthread_mutex_unlock(&s->reclaim_mu);
	pthread_join(s->reclaimer, NULL);
	s->reclaimer_running = false;
}
