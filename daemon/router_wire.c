/* router_wire.c — the wire-protocol module (pgwire.c) applied to the router's libevent buffers. */
#include <assert.h>
#include <string.h>

#include "router_internal.h"

void put_msg(struct evbuffer *out, char type, const void *body, size_t len)
{
	uint8_t hdr[RIFT_PGW_HEADER];

	/* header alone, then the body without a copy into a bounce buffer */
	rift_pgw_write(hdr, sizeof(hdr), (uint8_t)type, NULL, 0);
	rift_put_be32(hdr + 1, (uint32_t)(len + 4));
	evbuffer_add(out, hdr, sizeof(hdr));
	if (len > 0)
		evbuffer_add(out, body, len);
}

int take_msg(struct evbuffer *in, uint8_t *type, uint8_t *body, size_t cap, uint32_t *len)
{
	uint8_t hdr[RIFT_PGW_HEADER];
	uint32_t n;

	if (evbuffer_copyout(in, hdr, sizeof(hdr)) != (ev_ssize_t)sizeof(hdr))
		return 0;
	if (rift_pgw_header(hdr, type, &n) != 0 || n > cap)
		return -1;
	if (evbuffer_get_length(in) < sizeof(hdr) + (size_t)n)
		return 0;
	evbuffer_drain(in, sizeof(hdr));
	evbuffer_remove(in, body, n);
	*len = n;
	return 1;
}

#define SCAN_IOVECS 64

size_t scan_messages(struct client *cl, struct evbuffer *in, struct rift_pgw_scanner *sc,
		     const struct rift_pgw_scan_ops *ops)
{
	size_t avail = evbuffer_get_length(in), done = 0;
	struct evbuffer_iovec ev[SCAN_IOVECS];
	struct iovec iov[SCAN_IOVECS];
	struct evbuffer_ptr at;

	if (cl->untracked)
		return avail;
	/* in windows of up to 64 chunks, without copying; the scanner keeps its place between
	 * them. A message waited for whole (at most 8 KiB) that a window cuts is read from a
	 * copy, so nothing waits for bytes that are already here. */
	while (done < avail) {
		uint8_t tmp[RIFT_PGW_HEADER + RIFT_PGW_LOOK_MAX];
		size_t covered = 0, got;
		int n, i;
		if (evbuffer_ptr_set(in, &at, done, EVBUFFER_PTR_SET) != 0)
			break;
		n = evbuffer_peek(in, -1, &at, ev, SCAN_IOVECS);
		if (n > SCAN_IOVECS)
			n = SCAN_IOVECS;
		for (i = 0; i < n; i++) {
			iov[i].iov_base = ev[i].iov_base;
			iov[i].iov_len = ev[i].iov_len;
			covered += ev[i].iov_len;
		}
		if (covered == 0)
			break;
		got = rift_pgw_scan(sc, iov, (size_t)n, ops, cl);
		if (got == 0 && !sc->lost && done + covered < avail) {
			struct iovec one = { tmp, avail - done < sizeof(tmp) ? avail - done
									     : sizeof(tmp) };
			evbuffer_copyout_from(in, &at, tmp, one.iov_len);
			covered = one.iov_len;
			got = rift_pgw_scan(sc, &one, 1, ops, cl);
		}
		done += got;
		if (sc->lost) {
			cl->untracked = true;
			return avail;
		}
		if (sc->stopped || got == 0 || (got < covered && done + (covered - got) >= avail))
			break; /* look asked to stop, or a partial message at the very end */
	}
	assert(done <= avail);
	return done;
}
