/* second_keydata.c — a hostile Postgres library: backends send thousands of BackendKeyData. */
/*
 * A branch's superuser can load code into its backends (session_preload_libraries), so rift's
 * router must survive whatever such code sends. This library, loaded at backend start, writes
 * 5000 BackendKeyData messages of its own to the client socket before the server sends the real
 * one: more than the router has cancel slots (MAX_CANCEL), as an attacker would send to leak
 * them all. Built by router_second_key.sh with cc,
 * without Postgres's server headers: the few things it needs are declared here.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* Postgres 15's module magic block (fmgr.h): the server refuses a library without it. */
struct pg_magic {
	int len, version, funcmaxargs, indexmaxkeys, namedatalen, float8byval;
	char abi_extra[32];
};

const struct pg_magic *Pg_magic_func(void);
void _PG_init(void);

/* Port's first member is the client socket (libpq-be.h) */
extern void *MyProcPort;

const struct pg_magic *Pg_magic_func(void)
{
	static const struct pg_magic m = {
		sizeof(struct pg_magic), 1500, 100, 32, 64, 1, "PostgreSQL"
	};
	return &m;
}

/* All of buf to the socket, which the server keeps non-blocking; false when it is gone. */
static int write_all(int sock, const uint8_t *p, size_t left)
{
	struct pollfd pfd = { .fd = sock, .events = POLLOUT };

	while (left > 0) {
		ssize_t n = write(sock, p, left);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (poll(&pfd, 1, 5000) <= 0)
				return 0;
			continue;
		}
		if (n <= 0)
			return 0;
		p += n;
		left -= (size_t)n;
	}
	return 1;
}

void _PG_init(void)
{
	/* 'K', length 12, pid 4242, key 0x01020304: complete messages at a message boundary
	 * (what the server sent so far was flushed whole; the rest waits in its buffer) */
	static const uint8_t msg[13] = { 'K', 0, 0, 0, 12, 0, 0, 0x10, 0x92, 1, 2, 3, 4 };
	uint8_t buf[100 * sizeof(msg)];
	int sock, i;

	if (MyProcPort == NULL)
		return;
	memcpy(&sock, MyProcPort, sizeof(sock));
	for (i = 0; i < 100; i++)
		memcpy(buf + i * sizeof(msg), msg, sizeof(msg));
	for (i = 0; i < 50; i++)
		if (!write_all(sock, buf, sizeof(buf)))
			return;
}
