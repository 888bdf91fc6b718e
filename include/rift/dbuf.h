/* dbuf.h — a growing NUL-terminated string (the diff's reports, the CLI's HTTP answers); no I/O. */
#ifndef RIFT_DBUF_H
#define RIFT_DBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* A growing string; after a failed allocation oom is set and appends do nothing. */
struct dbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static inline void dbuf_put(struct dbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		char *np;
		while (cap < b->len + n + 1)
			cap *= 2;
		np = realloc(b->p, cap);
		if (np == NULL) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static inline void dbuf_puts(struct dbuf *b, const char *s)
{
	dbuf_put(b, s, strlen(s));
}

#endif
