/* http_reply.h — reads one HTTP/1.1 answer of the local riftd from bytes; no I/O. */
#ifndef RIFT_CLI_HTTP_REPLY_H
#define RIFT_CLI_HTTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_REPLY_MAX_HEAD (64u << 10) /* status line and headers */
#define HTTP_REPLY_MAX_BODY (64u << 20) /* rift diff --json with definitions and rows */

/* What the parse has found so far; zero it before the first call on a buffer. */
struct http_reply {
	int status;      /* 200..599 */
	size_t body_off; /* where the body starts in the buffer */
	size_t body_len; /* its length, once complete */
	bool complete;   /* the whole answer is in the buffer */
	/* carried between calls as the buffer grows, so a trickled answer is not parsed again */
	size_t scanned; /* bytes already searched for the head's end */
	bool head_done, has_length;
	size_t length; /* Content-Length, when has_length */
};

/*
 * Parses buf[0..len) as far as it goes, resuming where the last call on the same growing buffer
 * stopped (len never shrinks between calls). 0 with r->complete set once the whole answer is
 * there, 0 without it while more bytes are needed; -EPROTO when the bytes are not an answer rift
 * reads (no status line, a chunked or otherwise encoded body, a bad or repeated Content-Length),
 * -EFBIG when the head or the body would pass the bounds above. eof says the peer closed: a body
 * without Content-Length ends there, and an answer cut short is -EPROTO.
 */
int http_reply_parse(const char *buf, size_t len, bool eof, struct http_reply *r);

#endif
