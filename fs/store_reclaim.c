/* store_reclaim.c — gives back promptly the disk space of file data dropped inside a branch. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

/*
 * Deleting or truncating a file to 0 inside a branch (Postgres drops and rewrites relations)
 * deletes its block records with one DeleteRange in the caller's batch. Its overlay file must
 * outlive that batch (a batch that fails leaves the records, which still name the file), so the
 * caller, which holds the store lock for writing until the batch is written, queues it here,
 * and this thread removes it once it gets the lock shared: after the commit. A file whose
 * layer holds blocks of its data id again (a failed batch reloaded the counts) stays. When the
 * queue overflows, one sweep under the write lock removes every file no record names.
 *
 * The records' tombstones are compacted away once RECLAIM_BYTES of blocks were dropped; the
 * data family holds only small records, so that compacts all of it.
 */
#define RECLAIM_BYTES (64ull << 20)

/* reclaim_mu is a leaf: callers hold the store lock, so this only signals the reclaim thread. */
void reclaim_note(struct rift_store *s, uint64_t layer, uint64_t data_id, uint64_t bytes)
{
	pthread_mutex_lock(&s->reclaim_mu);
	if (s->reclaim_n < RECLAIM_QUEUE) {
		s->reclaim_q[s->reclaim_n].layer = layer;
		s->reclaim_q[s->reclaim_n].data_id = data_id;
		s->reclaim_n++;
	} else {
		s->reclaim_overflow = true;
	}
	s->reclaim_pending += bytes;
	pthread_cond_signal(&s->reclaim_cv);
	pthread_mutex_unlock(&s->reclaim_mu);
}

/* Removes the queued overlay files whose records are gone (store lock held shared). */
static void unlink_dropped(struct rift_store *s, const struct reclaim_range *q, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		bool held;
		pthread_mutex_lock(&s->mem_mu);
		held = index_get(s, q[i].data_id, q[i].layer) != NULL;
		pthread_mutex_unlock(&s->mem_mu);
		if (!held)
			overlay_unlink(s, q[i].layer, q[i].data_id);
	}
}

/* Takes the queue (caller holds reclaim_mu) and works through it with the mutex released. */
static void reclaim_run(struct rift_store *s)
{
	struct reclaim_range q[RECLAIM_QUEUE];
	bool overflow, compact;
	size_t n;

	n = s->reclaim_n;
	overflow = s->reclaim_overflow;
	compact = s->reclaim_pending >= RECLAIM_BYTES;
	memcpy(q, s->reclaim_q, n * sizeof(q[0]));
	s->reclaim_n = 0;
	s->reclaim_overflow = false;
	if (compact)
		s->reclaim_pending = 0;
	pthread_mutex_unlock(&s->reclaim_mu);
	if (overflow) {
		pthread_rwlock_wrlock(&s->lock);
		if (store_sync_wal(s) == 0)
			(void)overlay_sweep(s);
		pthread_rwlock_unlock(&s->lock);
	} else {
		pthread_rwlock_rdlock(&s->lock);
		/* the drops durable first: after a power loss no record names a removed file */
		if (store_sync_wal(s) == 0)
			unlink_dropped(s, q, n);
		pthread_rwlock_unlock(&s->lock);
	}
	if (compact)
		rocksdb_compact_range_cf(s->db, s->cf_data, NULL, 0, NULL, 0);
	pthread_mutex_lock(&s->reclaim_mu);
}

void *reclaim_thread(void *arg)
{
	struct rift_store *s = arg;

	pthread_setname_np(pthread_self(), "store-reclaim");
	pthread_mutex_lock(&s->reclaim_mu);
	while (!s->reclaim_stop) {
		if (s->reclaim_n > 0 || s->reclaim_overflow || s->reclaim_pending >= RECLAIM_BYTES)
			reclaim_run(s);
		else
			pthread_cond_wait(&s->reclaim_cv, &s->reclaim_mu);
	}
	pthread_mutex_unlock(&s->reclaim_mu);
	return NULL;
}

/* Stops the thread; what is still queued is removed now (the caller holds no store lock). */
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
	pthread_mutex_lock(&s->reclaim_mu);
	if (s->reclaim_n > 0 || s->reclaim_overflow)
		reclaim_run(s);
	pthread_mutex_unlock(&s->reclaim_mu);
}
