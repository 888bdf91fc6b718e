/* store_index.c — in-memory index of which layers hold blocks of which data id, with counts. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

/*
 * Open addressing keyed by data id; the table never shrinks and an entry whose vector becomes
 * empty stays (with n = 0) as a tombstone so probe chains stay intact. Callers hold the store
 * lock: for writing to change it, for reading to look.
 */

static size_t slot_of(uint64_t data_id, size_t cap)
{
	uint64_t h = data_id * 0x9E3779B97F4A7C15ull;

	return (size_t)(h >> 17) & (cap - 1);
}

struct data_index_entry *index_find(struct rift_store *s, uint64_t data_id)
{
	size_t i, cap = s->index_cap;

	if (cap == 0)
		return NULL;
	for (i = slot_of(data_id, cap);; i = (i + 1) & (cap - 1)) {
		struct data_index_entry *e = &s->index[i];
		if (e->data_id == data_id)
			return e;
		if (e->data_id == 0)
			return NULL;
	}
}

static int grow(struct rift_store *s)
{
	size_t cap = s->index_cap ? s->index_cap * 2 : 1024, i;
	struct data_index_entry *old = s->index, *n = calloc(cap, sizeof(*n));

	if (n == NULL)
		return -ENOMEM;
	for (i = 0; i < s->index_cap; i++) {
		size_t j;
		if (old[i].data_id == 0)
			continue;
		for (j = slot_of(old[i].data_id, cap); n[j].data_id != 0; j = (j + 1) & (cap - 1))
			;
		n[j] = old[i];
	}
	free(old);
	s->index = n;
	s->index_cap = cap;
	return 0;
}

struct presence *index_get(struct rift_store *s, uint64_t data_id, uint64_t layer)
{
	struct data_index_entry *e = index_find(s, data_id);
	uint32_t i;

	if (e == NULL)
		return NULL;
	for (i = 0; i < e->n; i++)
		if (e->v[i].layer == layer)
			return &e->v[i];
	return NULL;
}

struct presence *index_add(struct rift_store *s, uint64_t data_id, uint64_t layer)
{
	struct data_index_entry *e;
	struct presence *p = index_get(s, data_id, layer);

	if (p != NULL)
		return p;
	e = index_find(s, data_id);
	if (e == NULL) {
		size_t i;
		if ((s->index_used + 1) * 4 > s->index_cap * 3 && grow(s) != 0)
			return NULL;
		for (i = slot_of(data_id, s->index_cap); s->index[i].data_id != 0;
		     i = (i + 1) & (s->index_cap - 1))
			;
		e = &s->index[i];
		e->data_id = data_id;
		s->index_used++;
	}
	if (e->n == e->cap) {
		uint32_t cap = e->cap ? e->cap * 2 : 2;
		struct presence *v = realloc(e->v, cap * sizeof(*v));
		if (v == NULL)
			return NULL;
		e->v = v;
		e->cap = cap;
	}
	p = &e->v[e->n++];
	memset(p, 0, sizeof(*p));
	p->layer = layer;
	return p;
}

void index_remove(struct rift_store *s, uint64_t data_id, uint64_t layer)
{
	struct data_index_entry *e = index_find(s, data_id);
	uint32_t i;

	if (e == NULL)
		return;
	for (i = 0; i < e->n; i++) {
		if (e->v[i].layer == layer) {
			e->v[i] = e->v[--e->n];
			return;
		}
	}
}

void index_free(struct rift_store *s)
{
	size_t i;

	for (i = 0; i < s->index_cap; i++)
		free(s->index[i].v);
	free(s->index);
	s->index = NULL;
	s->index_cap = 0;
	s->index_used = 0;
}

/* Writes the persistent copy of p (or deletes it when p holds no blocks) into wb. */
void presence_put(struct rift_store *s, rocksdb_writebatch_t *wb, uint64_t data_id,
		  const struct presence *p)
{
	uint8_t k[17], v[16];

	key_presence(k, data_id, p->layer);
	if (p->nfull == 0 && p->nzero == 0) {
		rocksdb_writebatch_delete_cf(wb, s->cf_meta, (const char *)k, sizeof(k));
		return;
	}
	put_be64(v, p->nfull);
	put_be64(v + 8, p->nzero);
	rocksdb_writebatch_put_cf(wb, s->cf_meta, (const char *)k, sizeof(k), (const char *)v,
				  sizeof(v));
}
