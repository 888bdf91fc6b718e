/* store_index.c — in-memory index of which layers hold blocks of which data id, with counts. */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

/*
 * Open addressing keyed by data id; the table never shrinks and an entry whose vector becomes
 * empty stays (with n = 0) as a tombstone so probe chains stay intact. Callers hold the store
 * lock: for writing to change it, for reading to look.
 */

/* A presence's bits cover blocks below this (16 GiB files; Postgres's segments are 1 GiB)... */
#define PRESENCE_BITS_BLOCKS (1u << 21)
/* ...and all of them together take at most this much memory: a branch that writes one block at
 * the far end of many files cannot make riftd grow without bound. Past either, a presence's
 * blocks are asked of RocksDB, as before bits existed. */
#define PRESENCE_BITS_MAX_BYTES (64u << 20)
#define PRESENCE_BITS_MIN_WORDS 16u

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
	/* Not in the index means no records: a layer's records and its presence record are
	 * written in the same batches, and an entry leaves the index only with its records (or
	 * the whole index is reloaded after a failed batch). So a new entry's bits are known,
	 * all clear; load_presence makes them unknown for entries that have records. */
	p->known = true;
	return p;
}

void presence_forget(struct rift_store *s, struct presence *p)
{
	assert(s->presence_bits_bytes >= (size_t)p->nwords * 8);
	s->presence_bits_bytes -= (size_t)p->nwords * 8;
	free(p->bits);
	p->bits = NULL;
	p->nwords = 0;
	p->known = false;
}

void presence_mark(struct rift_store *s, struct presence *p, uint64_t block)
{
	uint64_t word = block / 64;

	ASSERT_MEM(s);
	if (!p->known)
		return;
	if (word >= p->nwords) {
		uint32_t n = p->nwords ? p->nwords : PRESENCE_BITS_MIN_WORDS;
		uint64_t *bits;
		while (n <= word && n < PRESENCE_BITS_BLOCKS / 64)
			n *= 2;
		if (block >= PRESENCE_BITS_BLOCKS ||
		    s->presence_bits_bytes + (size_t)(n - p->nwords) * 8 >
			PRESENCE_BITS_MAX_BYTES ||
		    (bits = realloc(p->bits, (size_t)n * 8)) == NULL) {
			presence_forget(s, p);
			return;
		}
		memset(bits + p->nwords, 0, (size_t)(n - p->nwords) * 8);
		s->presence_bits_bytes += (size_t)(n - p->nwords) * 8;
		p->bits = bits;
		p->nwords = n;
	}
	p->bits[word] |= 1ull << (block % 64);
}

bool presence_may_hold(const struct presence *p, uint64_t block)
{
	if (!p->known)
		return true;
	return block / 64 < p->nwords && ((p->bits[block / 64] >> (block % 64)) & 1);
}

void index_remove_at(struct rift_store *s, struct data_index_entry *e, uint32_t i)
{
	assert(i < e->n);
	presence_forget(s, &e->v[i]);
	e->v[i] = e->v[--e->n];
}

void index_remove(struct rift_store *s, uint64_t data_id, uint64_t layer)
{
	struct data_index_entry *e = index_find(s, data_id);
	uint32_t i;

	if (e == NULL)
		return;
	for (i = 0; i < e->n; i++) {
		if (e->v[i].layer == layer) {
			index_remove_at(s, e, i);
			return;
		}
	}
}

void index_free(struct rift_store *s)
{
	size_t i;
	uint32_t j;

	for (i = 0; i < s->index_cap; i++) {
		for (j = 0; j < s->index[i].n; j++)
			free(s->index[i].v[j].bits);
		free(s->index[i].v);
	}
	s->presence_bits_bytes = 0;
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
