/* store_codec.c — encodes and decodes the store's RocksDB keys and records; no I/O. */
#include <errno.h>
#include <string.h>

#include "store_internal.h"

/* Values are little-endian fixed fields through these two cursors. */
struct wcur {
	uint8_t *p, *end;
	bool overflow;
};
struct rcur {
	const uint8_t *p, *end;
	bool underflow;
};

static void w_bytes(struct wcur *w, const void *src, size_t n)
{
	if (w->overflow || (size_t)(w->end - w->p) < n) {
		w->overflow = true;
		return;
	}
	memcpy(w->p, src, n);
	w->p += n;
}

static void w_u64(struct wcur *w, uint64_t v)
{
	uint8_t b[8];
	int i;

	for (i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	w_bytes(w, b, 8);
}

static void w_u32(struct wcur *w, uint32_t v)
{
	uint8_t b[4];
	int i;

	for (i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	w_bytes(w, b, 4);
}

static void w_ts(struct wcur *w, struct timespec ts)
{
	w_u64(w, (uint64_t)ts.tv_sec);
	w_u32(w, (uint32_t)ts.tv_nsec);
}

static void r_bytes(struct rcur *r, void *dst, size_t n)
{
	if (r->underflow || (size_t)(r->end - r->p) < n) {
		r->underflow = true;
		memset(dst, 0, n);
		return;
	}
	memcpy(dst, r->p, n);
	r->p += n;
}

static uint64_t r_u64(struct rcur *r)
{
	uint8_t b[8];
	uint64_t v = 0;
	int i;

	r_bytes(r, b, 8);
	for (i = 7; i >= 0; i--)
		v = (v << 8) | b[i];
	return v;
}

static uint32_t r_u32(struct rcur *r)
{
	uint8_t b[4];
	uint32_t v = 0;
	int i;

	r_bytes(r, b, 4);
	for (i = 3; i >= 0; i--)
		v = (v << 8) | b[i];
	return v;
}

static struct timespec r_ts(struct rcur *r)
{
	struct timespec ts;

	ts.tv_sec = (time_t)r_u64(r);
	ts.tv_nsec = (long)r_u32(r);
	return ts;
}

void put_be64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

size_t key_inode(uint8_t *k, uint64_t layer, uint64_t ino)
{
	k[0] = 'I';
	put_be64(k + 1, layer);
	put_be64(k + 9, ino);
	return 17;
}

size_t key_dentry(uint8_t *k, uint64_t layer, uint64_t dir, const char *name)
{
	size_t n = strnlen(name, RIFT_NAME_MAX_LEN);

	k[0] = 'D';
	put_be64(k + 1, layer);
	put_be64(k + 9, dir);
	memcpy(k + 17, name, n);
	return 17 + n;
}

size_t key_presence(uint8_t *k, uint64_t data_id, uint64_t layer)
{
	k[0] = 'P';
	put_be64(k + 1, data_id);
	put_be64(k + 9, layer);
	return 17;
}

size_t key_orphan(uint8_t *k, uint64_t layer, uint64_t ino)
{
	k[0] = 'O';
	put_be64(k + 1, layer);
	put_be64(k + 9, ino);
	return 17;
}

size_t key_layer(uint8_t *k, uint64_t layer)
{
	k[0] = 'L';
	put_be64(k + 1, layer);
	return 9;
}

size_t key_branch(uint8_t *k, const char *name)
{
	size_t n = strnlen(name, NAME_BUF - 1);

	k[0] = 'B';
	memcpy(k + 1, name, n);
	return 1 + n;
}

size_t key_base(uint8_t *k, uint32_t gen)
{
	k[0] = 'G';
	k[1] = (uint8_t)(gen >> 24);
	k[2] = (uint8_t)(gen >> 16);
	k[3] = (uint8_t)(gen >> 8);
	k[4] = (uint8_t)gen;
	return 5;
}

size_t key_data(uint8_t *k, uint64_t layer, uint64_t data_id, uint64_t block)
{
	put_be64(k, layer);
	put_be64(k + 8, data_id);
	put_be64(k + 16, block);
	return DATA_KEY_LEN;
}

#define INODE_VERSION 1u

size_t inode_encode(const struct inode_rec *rec, uint8_t *buf, size_t cap)
{
	struct wcur w = { buf, buf + cap, false };
	uint32_t i;

	w_u32(&w, INODE_VERSION);
	w_u32(&w, rec->mode);
	w_u32(&w, rec->uid);
	w_u32(&w, rec->gid);
	w_u32(&w, rec->nlink);
	w_u64(&w, rec->size);
	w_ts(&w, rec->atime);
	w_ts(&w, rec->mtime);
	w_ts(&w, rec->ctime);
	w_u64(&w, rec->parent);
	w_u64(&w, rec->data_id);
	w_u32(&w, rec->base_gen);
	w_u64(&w, rec->base_size);
	w_u64(&w, (uint64_t)rec->base_mtime_ns);
	w_u64(&w, rec->base_st_ino);
	w_u32(&w, rec->nmasks);
	for (i = 0; i < rec->nmasks && i < MAX_MASKS; i++) {
		w_u64(&w, rec->masks[i].layer);
		w_u64(&w, rec->masks[i].limit);
	}
	w_u32(&w, rec->tail_len);
	w_bytes(&w, rec->tail, rec->tail_len);
	return w.overflow ? 0 : (size_t)(w.p - buf);
}

int inode_decode(const uint8_t *buf, size_t len, struct inode_rec *rec)
{
	struct rcur r = { buf, buf + len, false };
	uint32_t i;

	if (r_u32(&r) != INODE_VERSION)
		return -EIO;
	rec->mode = r_u32(&r);
	rec->uid = r_u32(&r);
	rec->gid = r_u32(&r);
	rec->nlink = r_u32(&r);
	rec->size = r_u64(&r);
	rec->atime = r_ts(&r);
	rec->mtime = r_ts(&r);
	rec->ctime = r_ts(&r);
	rec->parent = r_u64(&r);
	rec->data_id = r_u64(&r);
	rec->base_gen = r_u32(&r);
	rec->base_size = r_u64(&r);
	rec->base_mtime_ns = (int64_t)r_u64(&r);
	rec->base_st_ino = r_u64(&r);
	rec->nmasks = r_u32(&r);
	if (rec->nmasks > MAX_MASKS)
		return -EIO;
	for (i = 0; i < rec->nmasks; i++) {
		rec->masks[i].layer = r_u64(&r);
		rec->masks[i].limit = r_u64(&r);
	}
	rec->tail_len = r_u32(&r);
	if (rec->tail_len > RIFT_SYMLINK_MAX)
		return -EIO;
	r_bytes(&r, rec->tail, rec->tail_len);
	rec->tail[rec->tail_len] = '\0';
	return r.underflow ? -EIO : 0;
}

size_t layer_encode(const struct layer *l, uint8_t *buf)
{
	struct wcur w = { buf, buf + LAYER_BUF, false };

	w_u64(&w, l->parent);
	w_u32(&w, l->gen);
	w_u32(&w, l->frozen ? 1u : 0u);
	w_u32(&w, l->nchildren);
	return (size_t)(w.p - buf);
}

int layer_decode(const uint8_t *buf, size_t len, struct layer *l)
{
	struct rcur r = { buf, buf + len, false };

	l->parent = r_u64(&r);
	l->gen = r_u32(&r);
	l->frozen = r_u32(&r) != 0;
	l->nchildren = r_u32(&r);
	l->bytes = 0;
	l->blocks = 0;
	return r.underflow ? -EIO : 0;
}

size_t branch_encode(const struct branch_rec *b, uint8_t *buf)
{
	struct wcur w = { buf, buf + BRANCH_BUF, false };

	w_bytes(&w, b->parent, NAME_BUF);
	w_u32(&w, b->gen);
	w_u64(&w, b->head);
	w_u64(&w, (uint64_t)b->created_ns);
	w_u64(&w, b->root_st_ino);
	w_u64(&w, b->max_size);
	/* labels come last, so records of older rifts (which end before them) still read */
	w_u32(&w, (uint32_t)strnlen(b->labels, RIFT_LABELS_MAX - 1));
	w_bytes(&w, b->labels, strnlen(b->labels, RIFT_LABELS_MAX - 1));
	return w.overflow ? 0 : (size_t)(w.p - buf);
}

int branch_decode(const uint8_t *buf, size_t len, struct branch_rec *b)
{
	struct rcur r = { buf, buf + len, false };

	r_bytes(&r, b->parent, NAME_BUF);
	b->parent[NAME_BUF - 1] = '\0';
	b->gen = r_u32(&r);
	b->head = r_u64(&r);
	b->created_ns = (int64_t)r_u64(&r);
	b->root_st_ino = r_u64(&r);
	/* records written before size limits existed end here */
	b->max_size = r.p < r.end ? r_u64(&r) : 0;
	/* and records written before labels existed here */
	memset(b->labels, 0, sizeof(b->labels));
	if (r.p < r.end) {
		uint32_t n = r_u32(&r);
		if (n >= RIFT_LABELS_MAX)
			return -EIO;
		r_bytes(&r, b->labels, n);
	}
	return r.underflow ? -EIO : 0;
}
