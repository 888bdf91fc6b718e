/* fuzz_pgwire.c — libFuzzer target: the message reader and the relay scanner. The scanner must
 * see the same messages whether a stream comes whole or in pieces split anywhere. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rift/pgwire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct trace {
	uint8_t seen[4096];
	size_t n;
	uint8_t want;
};

static bool header(void *arg, uint8_t type)
{
	const struct trace *t = arg;
	return type == t->want || type == 'Z';
}

static bool look(void *arg, uint8_t type, const uint8_t *body, uint32_t len)
{
	struct trace *t = arg;

	if (len > 0 && (body[0] ^ body[len - 1]) == 0xff)
		t->seen[t->n % sizeof(t->seen)] ^= 1; /* touch every byte the view claims */
	if (t->n < sizeof(t->seen))
		t->seen[t->n++] = type;
	return type != 'X';
}

/* Relays data through the scanner in pieces of step bytes (two iovecs each); the bytes it
 * relays, and what it looked at, go into *t. */
static size_t run(const uint8_t *data, size_t size, size_t step, struct trace *t)
{
	const struct rift_pgw_scan_ops ops = { header, look, 64 };
	struct rift_pgw_scanner sc = { 0 };
	size_t relayed = 0, have = 0;

	while (relayed < size) {
		struct iovec iov[2];
		size_t half, got;
		have = have + step < size ? have + step : size;
		half = (have - relayed) / 3;
		iov[0].iov_base = (void *)(data + relayed);
		iov[0].iov_len = half;
		iov[1].iov_base = (void *)(data + relayed + half);
		iov[1].iov_len = have - relayed - half;
		got = rift_pgw_scan(&sc, iov, 2, &ops, t);
		if (got > have - relayed)
			__builtin_trap();
		relayed += got;
		if (got == 0 && have == size && !sc.stopped)
			break;
	}
	return relayed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct trace whole = { .want = 'S' }, split = { .want = 'S' };
	struct rift_pgw_msg m;
	size_t a, b, step;

	if (size < 2)
		return 0;
	step = 1 + data[0] % 17;
	whole.want = split.want = data[1];
	data += 2;
	size -= 2;
	if (rift_pgw_read(data, size, 1024, &m) == 1 &&
	    (m.size > size || m.body + m.len > data + size || m.len > 1024))
		__builtin_trap();
	a = run(data, size, size > 0 ? size : 1, &whole);
	b = run(data, size, step, &split);
	if (a != b || whole.n != split.n || memcmp(whole.seen, split.seen, whole.n) != 0)
		__builtin_trap(); /* a split changed what the scanner saw */
	return 0;
}
