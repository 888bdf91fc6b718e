/* pgwire.c — Postgres message framing: header, read, write, ErrorResponse, relay scanner; no I/O.
 */
#include <assert.h>
#include <string.h>

#include "rift/pgwire.h"

int rift_pgw_header(const uint8_t hdr[RIFT_PGW_HEADER], uint8_t *type, uint32_t *body_len)
{
	uint32_t n = rift_be32(hdr + 1);

	*type = hdr[0];
	if (n < 4)
		return -1;
	*body_len = n - 4;
	return 0;
}

int rift_pgw_read(const uint8_t *buf, size_t n, size_t max_body, struct rift_pgw_msg *m)
{
	uint32_t len;
	uint8_t type;

	if (n < RIFT_PGW_HEADER)
		return 0;
	if (rift_pgw_header(buf, &type, &len) != 0 || len > max_body)
		return -1;
	if (n - RIFT_PGW_HEADER < len)
		return 0;
	m->type = type;
	m->body = buf + RIFT_PGW_HEADER;
	m->len = len;
	m->size = RIFT_PGW_HEADER + (size_t)len;
	return 1;
}

size_t rift_pgw_write(uint8_t *out, size_t cap, uint8_t type, const void *body, size_t len)
{
	/* the length field counts itself: a body must leave room for it in 32 bits */
	if (len > UINT32_MAX - 4 || cap < RIFT_PGW_HEADER || cap - RIFT_PGW_HEADER < len)
		return 0;
	out[0] = type;
	rift_put_be32(out + 1, (uint32_t)(len + 4));
	if (len > 0)
		memcpy(out + RIFT_PGW_HEADER, body, len);
	return RIFT_PGW_HEADER + len;
}

/* Appends field code and the string s (cut at 1000 bytes) with its NUL; false if no room. */
static bool add_field(uint8_t *out, size_t cap, size_t *at, char code, const char *s)
{
	size_t n = strnlen(s, 1000);

	if (*at + 1 + n + 1 > cap)
		return false;
	out[(*at)++] = (uint8_t)code;
	memcpy(out + *at, s, n);
	*at += n;
	out[(*at)++] = '\0';
	return true;
}

size_t rift_pgw_fatal(uint8_t *out, size_t cap, const char *code, const char *msg, const char *hint)
{
	size_t at = RIFT_PGW_HEADER;

	if (cap < RIFT_PGW_HEADER || !add_field(out, cap, &at, 'S', "FATAL") ||
	    !add_field(out, cap, &at, 'V', "FATAL") || !add_field(out, cap, &at, 'C', code) ||
	    !add_field(out, cap, &at, 'M', msg) ||
	    (hint != NULL && !add_field(out, cap, &at, 'H', hint)) || at + 1 > cap)
		return 0;
	out[at++] = '\0';
	out[0] = RIFT_PGW_ERROR;
	rift_put_be32(out + 1, (uint32_t)(at - 1));
	return at;
}

/* A read position in a list of iovecs that only moves forward. */
struct cursor {
	const struct iovec *iov;
	size_t niov, i, off; /* iov[i], off bytes into it */
};

static void cursor_skip(struct cursor *c, size_t n)
{
	while (n > 0 && c->i < c->niov) {
		size_t left = c->iov[c->i].iov_len - c->off, k = n < left ? n : left;
		c->off += k;
		n -= k;
		if (c->off == c->iov[c->i].iov_len) {
			c->i++;
			c->off = 0;
		}
	}
	assert(n == 0);
}

/* Copies n bytes from c without moving it (the caller knows they are there). */
static void cursor_peek(const struct cursor *c, uint8_t *dst, size_t n)
{
	size_t i = c->i, off = c->off;

	while (n > 0) {
		size_t left, k;
		assert(i < c->niov);
		left = c->iov[i].iov_len - off;
		k = n < left ? n : left;
		memcpy(dst, (const uint8_t *)c->iov[i].iov_base + off, k);
		dst += k;
		n -= k;
		off += k;
		if (off == c->iov[i].iov_len) {
			i++;
			off = 0;
		}
	}
}

size_t rift_pgw_scan(struct rift_pgw_scanner *sc, const struct iovec *iov, size_t niov,
		     const struct rift_pgw_scan_ops *ops, void *arg)
{
	struct cursor c = { iov, niov, 0, 0 };
	size_t avail = 0, off = 0, i, max_body = ops->max_body;
	uint8_t hdr[RIFT_PGW_HEADER], body[RIFT_PGW_LOOK_MAX];

	sc->stopped = false;
	if (max_body > sizeof(body))
		max_body = sizeof(body);
	for (i = 0; i < niov; i++)
		avail += iov[i].iov_len;
	if (sc->lost)
		return avail;
	if (sc->skip > 0) {
		size_t k = avail < sc->skip ? avail : sc->skip;
		sc->skip -= (uint32_t)k;
		off = k;
		cursor_skip(&c, k);
	}
	while (avail - off >= RIFT_PGW_HEADER) {
		uint8_t type;
		uint32_t len;
		size_t whole;
		cursor_peek(&c, hdr, RIFT_PGW_HEADER);
		if (rift_pgw_header(hdr, &type, &len) != 0) {
			sc->lost = true; /* not the protocol we know: relay on without looking */
			return avail;
		}
		whole = RIFT_PGW_HEADER + (size_t)len;
		if (ops->header(arg, type) && len <= max_body) {
			if (avail - off < whole)
				break; /* wait for all of it */
			cursor_skip(&c, RIFT_PGW_HEADER);
			cursor_peek(&c, body, len);
			cursor_skip(&c, len);
			off += whole;
			if (!ops->look(arg, type, body, len)) {
				sc->stopped = true;
				return off;
			}
		} else if (avail - off >= whole) {
			cursor_skip(&c, whole);
			off += whole;
		} else {
			sc->skip = (uint32_t)(whole - (avail - off));
			return avail;
		}
	}
	return off;
}
