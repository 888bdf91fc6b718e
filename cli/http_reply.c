/* http_reply.c — reads one HTTP/1.1 answer of the local riftd from bytes: status, length, body. */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "http_reply.h"

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* A Content-Length value: digits only, at most HTTP_REPLY_MAX_BODY + 1 (more is -EFBIG). */
static int parse_length(const char *v, size_t n, size_t *out)
{
	size_t i, x = 0;

	if (n == 0)
		return -EPROTO;
	for (i = 0; i < n; i++) {
		if (!is_digit(v[i]))
			return -EPROTO;
		x = x * 10 + (size_t)(v[i] - '0');
		if (x > HTTP_REPLY_MAX_BODY)
			return -EFBIG;
	}
	*out = x;
	return 0;
}

/* One header line (without its CRLF): notes Content-Length, refuses encodings rift cannot read. */
static int parse_header(const char *line, size_t n, bool *have_len, size_t *len)
{
	const char *colon = memchr(line, ':', n), *v;
	size_t name_len, vn, x;
	int rc;

	if (colon == NULL || colon == line)
		return -EPROTO;
	name_len = (size_t)(colon - line);
	v = colon + 1;
	vn = n - name_len - 1;
	while (vn > 0 && (*v == ' ' || *v == '\t'))
		v++, vn--;
	while (vn > 0 && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
		vn--;
	if (name_len == 14 && strncasecmp(line, "content-length", 14) == 0) {
		if ((rc = parse_length(v, vn, &x)) != 0)
			return rc;
		/* two different lengths: which one frames the body is anybody's guess */
		if (*have_len && x != *len)
			return -EPROTO;
		*have_len = true;
		*len = x;
	} else if (name_len == 17 && strncasecmp(line, "transfer-encoding", 17) == 0) {
		/* riftd answers from buffers, always with a length: chunked means another server */
		if (vn != 8 || strncasecmp(v, "identity", 8) != 0)
			return -EPROTO;
	}
	return 0;
}

/* Parses the head, buf[0..head) ending in the blank line: status and Content-Length into r. */
static int parse_head(const char *buf, size_t head, struct http_reply *r)
{
	const char *stop = buf + head, *line, *nl;
	int rc;

	/* "HTTP/1.x NNN reason" */
	if (head < 16 || memcmp(buf, "HTTP/1.", 7) != 0 || (buf[7] != '0' && buf[7] != '1') ||
	    buf[8] != ' ' || !is_digit(buf[9]) || !is_digit(buf[10]) || !is_digit(buf[11]) ||
	    (buf[12] != ' ' && buf[12] != '\r'))
		return -EPROTO;
	r->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	/* 1xx comes only after Expect: 100-continue, which rift never sends */
	if (r->status < 200 || r->status > 599)
		return -EPROTO;
	/* the blank line ending the head is at stop - 2, so every line before it ends by stop */
	for (line = buf;; line = nl + 1) {
		size_t n;
		nl = line < stop ? memchr(line, '\n', (size_t)(stop - line)) : NULL;
		if (nl == NULL || nl == line || nl[-1] != '\r')
			return -EPROTO;
		n = (size_t)(nl - line) - 1;
		if (n == 0)
			return 0;
		if (line != buf && (rc = parse_header(line, n, &r->has_length, &r->length)) != 0)
			return rc;
	}
}

int http_reply_parse(const char *buf, size_t len, bool eof, struct http_reply *r)
{
	assert(len >= r->scanned);
	if (!r->head_done) {
		/* resume the search 3 bytes back: the marker may straddle the last read */
		size_t from = r->scanned > 3 ? r->scanned - 3 : 0;
		const char *end = memmem(buf + from, len - from, "\r\n\r\n", 4);
		int rc;

		if (end == NULL) {
			r->scanned = len;
			if (len > HTTP_REPLY_MAX_HEAD)
				return -EFBIG;
			return eof ? -EPROTO : 0;
		}
		r->body_off = (size_t)(end - buf) + 4;
		r->scanned = r->body_off;
		if (r->body_off > HTTP_REPLY_MAX_HEAD)
			return -EFBIG;
		if ((rc = parse_head(buf, r->body_off, r)) != 0)
			return rc;
		r->head_done = true;
	}
	if (r->has_length) {
		if (len - r->body_off >= r->length) {
			r->body_len = r->length;
			r->complete = true;
		} else if (eof) {
			return -EPROTO; /* cut short */
		}
		return 0;
	}
	if (len - r->body_off > HTTP_REPLY_MAX_BODY)
		return -EFBIG;
	if (eof) { /* no length: the body is all the peer sent */
		r->body_len = len - r->body_off;
		r->complete = true;
	}
	return 0;
}
