/* store_branch.c — branch lifecycle: O(1) create, delete with space reclaim, listing, handles. */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rift/branch_name.h"
#include "store_internal.h"

void put_layer(struct rift_store *s, rocksdb_writebatch_t *wb, const struct layer *l)
{
	uint8_t k[9], v[LAYER_BUF];
	size_t n = layer_encode(l, v);

	key_layer(k, l->id);
	rocksdb_writebatch_put_cf(wb, s->cf_meta, (const char *)k, sizeof(k), (const char *)v, n);
}

void put_branch(struct rift_store *s, rocksdb_writebatch_t *wb, const struct branch_rec *b)
{
	uint8_t k[NAME_BUF + 1], v[BRANCH_BUF];
	size_t n = branch_encode(b, v);

	assert(n > 0); /* BRANCH_BUF holds every field at its largest */
	rocksdb_writebatch_put_cf(wb, s->cf_meta, (const char *)k, key_branch(k, b->name),
				  (const char *)v, n);
}

/*
 * Syncs the overlay files of branch `from`'s head before it freezes, outside the store lock
 * (fdatasync can be slow; the lock would hold up every branch); the few writes that land
 * between this and the write lock are synced under it.
 */
static int sync_head_files(struct rift_store *s, const char *from)
{
	struct branch_rec *p;
	uint64_t head = 0;

	pthread_rwlock_rdlock(&s->lock);
	p = store_branch_find(s, from);
	if (p != NULL)
		head = p->head;
	pthread_rwlock_unlock(&s->lock);
	return head != 0 ? overlay_sync_dirty(s, head) : 0;
}

int rift_store_branch_create(struct rift_store *s, const char *name, const char *from,
			     uint32_t base_gen)
{
	struct branch_rec *c = calloc(1, sizeof(*c)), *p = NULL;
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	struct layer frozen, parent_head, child_head, *l;
	uint8_t k[KEY_MAX], v[DENTRY_LEN] = { 0 };
	size_t i;
	int rc;

	if (c == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (rift_branch_name_check(name) != RIFT_NAME_OK) {
		rc = -EINVAL;
		goto out;
	}
	if (from != NULL && (rc = sync_head_files(s, from)) != 0)
		goto out;
	pthread_rwlock_wrlock(&s->lock); /* the write barrier: no call is half-applied now */
	rc = atomic_load(&s->error);
	if (rc != 0)
		goto unlock;
	if (store_branch_find(s, name) != NULL) {
		rc = -EEXIST;
		goto unlock;
	}
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->created_ns = now_ns();
	c->root_st_ino = store_alloc_id(s, wb);
	memset(&child_head, 0, sizeof(child_head));
	child_head.id = store_alloc_id(s, wb);
	if (from != NULL) {
		p = store_branch_find(s, from);
		if (p == NULL) {
			rc = -ENOENT;
			goto unlock;
		}
		l = store_layer(s, p->head);
		if (l == NULL) {
			rc = -EIO;
			goto unlock;
		}
		/* Writes that landed since sync_head_files (writers are excluded now): a file's
		 * fsync after the freeze syncs only the new head's overlay file. */
		if ((rc = overlay_sync_dirty(s, p->head)) != 0)
			goto unlock;
		snprintf(c->parent, sizeof(c->parent), "%s", from);
		c->gen = p->gen;
		if (!l->dirty && l->parent != 0) {
			/* The parent changed nothing since its head was made: the child can hang
			 * off the same frozen layer, and chains stay short however many branches
			 * are taken from an idle branch. */
			l = store_layer(s, l->parent);
			if (l == NULL) {
				rc = -EIO;
				goto unlock;
			}
			frozen = *l;
			frozen.nchildren++;
			p = NULL; /* the parent keeps its head */
		} else {
			frozen = *l;
			frozen.frozen = true;
			frozen.nchildren = 2;
			memset(&parent_head, 0, sizeof(parent_head));
			parent_head.id = store_alloc_id(s, wb);
			parent_head.parent = frozen.id;
			parent_head.gen = frozen.gen;
			put_layer(s, wb, &parent_head);
		}
	} else {
		uint64_t bl;
		if (base_gen == 0) {
			for (i = 0; i < s->nbases; i++)
				if (s->bases[i].gen > base_gen)
					base_gen = s->bases[i].gen;
		}
		bl = store_base_layer(s, base_gen);
		l = bl ? store_layer(s, bl) : NULL;
		if (l == NULL) {
			rc = -ENOENT;
			goto unlock;
		}
		frozen = *l;
		frozen.nchildren++;
		c->gen = base_gen;
	}
	child_head.parent = frozen.id;
	child_head.gen = frozen.gen;
	put_layer(s, wb, &frozen);
	put_layer(s, wb, &child_head);
	c->head = child_head.id;
	put_branch(s, wb, c);
	/* A branch never inherits its parent's lock file: its server would refuse to start. */
	rocksdb_writebatch_put_cf(wb, s->cf_meta, (const char *)k,
				  key_dentry(k, child_head.id, RIFT_ROOT_INO, POSTMASTER_PID),
				  (const char *)v, sizeof(v));
	if (p != NULL) {
		struct branch_rec moved = *p;
		moved.head = parent_head.id;
		put_branch(s, wb, &moved);
	}
	rc = store_write(s, wb, true);
	if (rc != 0)
		goto unlock;
	/* Durable; now the in-memory picture follows. */
	*store_layer(s, frozen.id) = frozen;
	if (store_layer_add(s, &child_head) == NULL ||
	    (p != NULL && store_layer_add(s, &parent_head) == NULL) ||
	    store_branch_add(s, c) != 0) {
		rc = store_fail(s, NULL, "branch create (out of memory)");
		goto unlock;
	}
	if (p != NULL) {
		p->head = parent_head.id;
		rc = store_chain_build(s, p);
	}
	if (rc == 0)
		rc = store_chain_build(s, c);
	c = NULL;
unlock:
	pthread_rwlock_unlock(&s->lock);
out:
	rocksdb_writebatch_destroy(wb);
	free(c);
	return rc;
}

/* Drops layer id's records and blocks into wb and forgets it in memory. */
void drop_layer(struct rift_store *s, rocksdb_writebatch_t *wb, uint64_t id)
{
	uint8_t from[KEY_MAX], to[KEY_MAX], k[9];
	const char prefixes[] = { 'I', 'D', 'O' };
	size_t i;

	for (i = 0; i < sizeof(prefixes); i++) {
		from[0] = to[0] = (uint8_t)prefixes[i];
		put_be64(from + 1, id);
		put_be64(to + 1, id + 1);
		rocksdb_writebatch_delete_range_cf(wb, s->cf_meta, (const char *)from, 9,
						   (const char *)to, 9);
	}
	put_be64(from, id);
	put_be64(to, id + 1);
	rocksdb_writebatch_delete_range_cf(wb, s->cf_data, (const char *)from, 8, (const char *)to,
					   8);
	for (i = 0; i < s->index_cap; i++) {
		struct data_index_entry *e = &s->index[i];
		uint32_t j;
		for (j = 0; e->data_id != 0 && j < e->n; j++) {
			if (e->v[j].layer == id) {
				uint8_t pk[17];
				key_presence(pk, e->data_id, id);
				rocksdb_writebatch_delete_cf(wb, s->cf_meta, (const char *)pk, 17);
				index_remove_at(s, e, j);
				break;
			}
		}
	}
	key_layer(k, id);
	rocksdb_writebatch_delete_cf(wb, s->cf_meta, (const char *)k, sizeof(k));
	store_layer_remove(s, id);
}

/* Gives back a dropped layer's space: its overlay files, and its records' tombstones. */
void compact_layer(struct rift_store *s, uint64_t id)
{
	uint8_t from[9], to[9];

	overlay_remove_layer(s, id);
	put_be64(from, id);
	put_be64(to, id + 1);
	rocksdb_compact_range_cf(s->db, s->cf_data, (const char *)from, 8, (const char *)to, 8);
}

static void flush_all(struct rift_store *s)
{
	rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
	char *err = NULL;

	rocksdb_flushoptions_set_wait(fo, 1);
	rocksdb_flush_cf(s->db, fo, s->cf_meta, &err);
	free(err);
	err = NULL;
	rocksdb_flush_cf(s->db, fo, s->cf_data, &err);
	free(err);
	rocksdb_flushoptions_destroy(fo);
}

/* Remembers l as it was before its first change (a layer is saved once). */
static int save_layer(struct layer **v, size_t *n, const struct layer *l)
{
	struct layer *nv;
	size_t i;

	for (i = 0; i < *n; i++)
		if ((*v)[i].id == l->id)
			return 0;
	nv = realloc(*v, (*n + 1) * sizeof(*nv));
	if (nv == NULL)
		return -ENOMEM;
	nv[(*n)++] = *l;
	*v = nv;
	return 0;
}

static int delete_once(struct rift_store *s, const char *name)
{
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	uint64_t dropped[256];
	struct layer *saved = NULL;
	size_t ndropped = 0, nsaved = 0, i, idx = 0;
	struct branch_rec *b;
	uint8_t k[NAME_BUF + 1];
	uint64_t id;
	int rc;

	pthread_rwlock_wrlock(&s->lock);
	rc = atomic_load(&s->error);
	if (rc != 0)
		goto unlock;
	b = store_branch_find(s, name);
	if (b == NULL) {
		rc = -ENOENT;
		goto unlock;
	}
	if (b->open != NULL) {
		rc = -EBUSY;
		goto unlock;
	}
	for (i = 0; i < s->nbranches; i++) {
		if (strcmp(s->branches[i]->parent, name) == 0) {
			rc = -ENOTEMPTY;
			goto unlock;
		}
		if (s->branches[i] == b)
			idx = i;
	}
	rocksdb_writebatch_delete_cf(wb, s->cf_meta, (const char *)k, key_branch(k, name));
	/* Drop the head, then every frozen ancestor left with no child; bases stay. */
	id = b->head;
	for (;;) {
		struct layer *l = store_layer(s, id), *parent;
		uint64_t pid;
		if (l == NULL) {
			rc = store_fail(s, NULL, "branch delete (layer missing)");
			goto unlock;
		}
		pid = l->parent;
		if ((rc = save_layer(&saved, &nsaved, l)) != 0)
			goto restore;
		drop_layer(s, wb, id);
		if (ndropped < sizeof(dropped) / sizeof(dropped[0]))
			dropped[ndropped++] = id;
		parent = store_layer(s, pid);
		if (parent == NULL)
			break;
		if ((rc = save_layer(&saved, &nsaved, parent)) != 0)
			goto restore;
		assert(parent->nchildren > 0);
		parent->nchildren--;
		if (parent->parent != 0 && parent->nchildren == 0) {
			id = pid;
			continue;
		}
		put_layer(s, wb, parent);
		break;
	}
	rc = store_write(s, wb, true);
	atomic_fetch_add(&s->chain_gen, 1);
restore:
	if (rc != 0) {
		/* Nothing was committed: put the layers and counts back as RocksDB has them. */
		for (i = 0; i < nsaved; i++) {
			struct layer *l = store_layer(s, saved[i].id);
			if (l != NULL)
				*l = saved[i];
			else if (store_layer_add(s, &saved[i]) == NULL)
				rc = store_fail(s, NULL, "branch delete rollback (out of memory)");
		}
		ndropped = 0;
		if (store_reload_counts(s) != 0)
			rc = -EIO;
		goto unlock;
	}
	free(b->chain);
	free(b);
	s->branches[idx] = s->branches[--s->nbranches];
unlock:
	pthread_rwlock_unlock(&s->lock);
	rocksdb_writebatch_destroy(wb);
	free(saved);
	/* Outside the lock: compaction can take a while and nothing needs to wait for it. */
	for (i = 0; rc == 0 && i < ndropped; i++)
		compact_layer(s, dropped[i]);
	if (rc == 0)
		flush_all(s); /* lets RocksDB drop the logs that still hold the deleted blocks */
	if (rc == 0)
		store_squash_kick(s);
	return rc;
}

int rift_store_branch_set_max_size(struct rift_store *s, const char *name, uint64_t max_size)
{
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	struct branch_rec *b, copy;
	int rc;

	pthread_rwlock_wrlock(&s->lock);
	rc = atomic_load(&s->error);
	if (rc != 0)
		goto unlock;
	b = store_branch_find(s, name);
	if (b == NULL) {
		rc = -ENOENT;
		goto unlock;
	}
	copy = *b;
	copy.max_size = max_size;
	put_branch(s, wb, &copy);
	rc = store_write(s, wb, true);
	if (rc == 0)
		b->max_size = max_size;
unlock:
	pthread_rwlock_unlock(&s->lock);
	rocksdb_writebatch_destroy(wb);
	return rc;
}

int rift_store_branch_set_labels(struct rift_store *s, const char *name, const char *labels)
{
	rocksdb_writebatch_t *wb;
	struct branch_rec *b, *copy = NULL;
	int rc;

	if (strlen(labels) >= RIFT_LABELS_MAX)
		return -E2BIG;
	wb = rocksdb_writebatch_create();
	pthread_rwlock_wrlock(&s->lock);
	rc = atomic_load(&s->error);
	if (rc != 0)
		goto unlock;
	b = store_branch_find(s, name);
	if (b == NULL) {
		rc = -ENOENT;
		goto unlock;
	}
	copy = malloc(sizeof(*copy));
	if (copy == NULL) {
		rc = -ENOMEM;
		goto unlock;
	}
	*copy = *b;
	snprintf(copy->labels, sizeof(copy->labels), "%s", labels);
	put_branch(s, wb, copy);
	rc = store_write(s, wb, true);
	if (rc == 0)
		snprintf(b->labels, sizeof(b->labels), "%s", labels);
unlock:
	pthread_rwlock_unlock(&s->lock);
	rocksdb_writebatch_destroy(wb);
	free(copy);
	return rc;
}

/*
 * Deleting is what frees space, so it must work on a full disk: rift's reserve leaves room for
 * its batch, and if RocksDB itself stopped on a full disk (the ballast file is released then)
 * it resumes on its own within seconds; retry for that long rather than fail.
 */
int rift_store_branch_delete(struct rift_store *s, const char *name)
{
	int rc, tries;

	for (tries = 0;; tries++) {
		rc = delete_once(s, name);
		if (rc != -ENOSPC || tries >= 15)
			return rc;
		sleep(1);
	}
}

uint64_t rift_store_branch_max_size(struct rift_branch *h)
{
	uint64_t v;

	pthread_rwlock_rdlock(&h->store->lock);
	v = h->rec->max_size;
	pthread_rwlock_unlock(&h->store->lock);
	return v;
}

static int cmp_layer_id(const void *a, const void *b)
{
	uint64_t x = (*(struct layer *const *)a)->id, y = (*(struct layer *const *)b)->id;

	return x < y ? -1 : x > y;
}

/* The layer id in idx (n layers sorted by id), or with idx NULL a scan of the store's. */
static struct layer *find_layer(struct rift_store *s, struct layer **idx, size_t n, uint64_t id)
{
	struct layer key = { .id = id }, *kp = &key, **hit;

	if (idx == NULL)
		return store_layer(s, id);
	hit = bsearch(&kp, idx, n, sizeof(*idx), cmp_layer_id);
	return hit ? *hit : NULL;
}

/*
 * Fills info from b; caller holds the lock. With a layer index (a listing of every branch) the
 * caller counts children itself: scanning every branch for each would cost n² at 1,000 branches.
 */
static void fill_info(struct rift_store *s, const struct branch_rec *b,
		      struct rift_branch_info *info, struct layer **idx, size_t nidx)
{
	uint32_t i;
	size_t j;

	memset(info, 0, sizeof(*info));
	snprintf(info->name, sizeof(info->name), "%s", b->name);
	info->id = b->root_st_ino;
	snprintf(info->parent, sizeof(info->parent), "%s", b->parent);
	info->base_gen = b->gen;
	info->head_layer = b->head;
	info->chain_depth = b->depth > 0 ? b->depth - 1 : 0;
	info->created_ns = b->created_ns;
	info->fork_layer = b->depth > 1 ? b->chain[1] : 0;
	info->head_changed = true;
	info->max_size = b->max_size;
	snprintf(info->labels, sizeof(info->labels), "%s", b->labels);
	for (i = 0; i < b->depth; i++) {
		struct layer *l = find_layer(s, idx, nidx, b->chain[i]);
		if (l == NULL)
			continue;
		/* The head is the branch's own; frozen layers are shared with its relatives. */
		if (i == 0)
			info->head_changed = l->dirty;
		if (i == 0) {
			info->bytes_own += l->bytes;
			info->bytes_own_disk += l->disk_bytes;
		} else {
			info->bytes_shared += l->bytes;
			info->bytes_shared_disk += l->disk_bytes;
		}
	}
	if (idx != NULL)
		return;
	for (j = 0; j < s->nbranches; j++)
		if (strcmp(s->branches[j]->parent, b->name) == 0)
			info->nchildren++;
}

int rift_store_branch_mark_changed(struct rift_store *s, const char *name)
{
	struct branch_rec *b;
	struct layer *l = NULL;

	pthread_rwlock_rdlock(&s->lock);
	b = store_branch_find(s, name);
	pthread_mutex_lock(&s->mem_mu);
	if (b != NULL && (l = store_layer(s, b->head)) != NULL)
		l->dirty = true;
	pthread_mutex_unlock(&s->mem_mu);
	pthread_rwlock_unlock(&s->lock);
	return l != NULL ? 0 : -ENOENT;
}

int rift_store_branch_info(struct rift_store *s, const char *name, struct rift_branch_info *info)
{
	struct branch_rec *b;
	int rc = 0;

	pthread_rwlock_rdlock(&s->lock);
	b = store_branch_find(s, name);
	if (b == NULL)
		rc = -ENOENT;
	else {
		pthread_mutex_lock(&s->mem_mu);
		fill_info(s, b, info, NULL, 0);
		pthread_mutex_unlock(&s->mem_mu);
	}
	pthread_rwlock_unlock(&s->lock);
	return rc;
}

static int cmp_info(const void *a, const void *b)
{
	return strcmp(((const struct rift_branch_info *)a)->name,
		      ((const struct rift_branch_info *)b)->name);
}

int rift_store_branch_list(struct rift_store *s, struct rift_branch_info **out, size_t *count)
{
	struct rift_branch_info *v, key, *parent;
	struct layer **idx;
	size_t i, n;

	pthread_rwlock_rdlock(&s->lock);
	v = calloc(s->nbranches + 1, sizeof(*v));
	idx = calloc(s->nlayers + 1, sizeof(*idx));
	if (v == NULL || idx == NULL) {
		pthread_rwlock_unlock(&s->lock);
		free(v);
		free(idx);
		return -ENOMEM;
	}
	for (i = 0; i < s->nlayers; i++)
		idx[i] = &s->layers[i];
	qsort(idx, s->nlayers, sizeof(*idx), cmp_layer_id);
	pthread_mutex_lock(&s->mem_mu); /* counts change under it while writes run */
	for (i = 0; i < s->nbranches; i++)
		fill_info(s, s->branches[i], &v[i], idx, s->nlayers);
	pthread_mutex_unlock(&s->mem_mu);
	n = s->nbranches;
	pthread_rwlock_unlock(&s->lock);
	free(idx);
	qsort(v, n, sizeof(*v), cmp_info);
	for (i = 0; i < n; i++) {
		if (v[i].parent[0] == '\0')
			continue;
		snprintf(key.name, sizeof(key.name), "%s", v[i].parent);
		parent = bsearch(&key, v, n, sizeof(*v), cmp_info);
		if (parent != NULL)
			parent->nchildren++;
	}
	*count = n;
	*out = v;
	return 0;
}

int rift_store_layer_info(struct rift_store *s, uint64_t id, struct rift_layer_info *info)
{
	struct layer *l;
	int rc = 0;

	pthread_rwlock_rdlock(&s->lock);
	l = store_layer(s, id);
	if (l == NULL) {
		rc = -ENOENT;
	} else {
		info->id = l->id;
		info->parent = l->parent;
		info->base_gen = l->gen;
		info->frozen = l->frozen;
		info->nchildren = l->nchildren;
		pthread_mutex_lock(&s->mem_mu);
		info->bytes = l->bytes;
		info->blocks = l->blocks;
		pthread_mutex_unlock(&s->mem_mu);
	}
	pthread_rwlock_unlock(&s->lock);
	return rc;
}

int rift_store_branch_open(struct rift_store *s, const char *name, struct rift_branch **out)
{
	struct rift_branch *h = calloc(1, sizeof(*h));
	struct branch_rec *b;
	int rc = 0;

	*out = NULL;
	if (h == NULL)
		return -ENOMEM;
	pthread_rwlock_wrlock(&s->lock);
	b = store_branch_find(s, name);
	if (b == NULL)
		rc = -ENOENT;
	else if (b->open != NULL)
		rc = -EBUSY;
	if (rc == 0) {
		h->store = s;
		h->rec = b;
		pthread_mutex_init(&h->refs_mu, NULL);
		pthread_mutex_init(&h->cache_mu, NULL);
		for (size_t i = 0; i < INO_STRIPES; i++)
			pthread_mutex_init(&h->ino_mu[i], NULL);
		b->open = h;
		*out = h;
		h = NULL;
	}
	pthread_rwlock_unlock(&s->lock);
	free(h);
	return rc;
}

void rift_store_branch_close(struct rift_branch *h)
{
	struct rift_store *s;

	if (h == NULL)
		return;
	s = h->store;
	ns_release_all(h);
	pthread_rwlock_wrlock(&s->lock);
	h->rec->open = NULL;
	pthread_rwlock_unlock(&s->lock);
	pthread_mutex_destroy(&h->refs_mu);
	pthread_mutex_destroy(&h->cache_mu);
	for (size_t i = 0; i < INO_STRIPES; i++)
		pthread_mutex_destroy(&h->ino_mu[i]);
	free(h);
}
