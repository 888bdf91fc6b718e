/* pgwire.h — Postgres wire-protocol framing after the startup phase: message types, reading and
 * writing one message, ErrorResponse, and the relay's incremental header scanner; no I/O. */
#ifndef RIFT_PGWIRE_H
#define RIFT_PGWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "rift/startup.h" /* rift_be32, rift_put_be32 */

/* Every message: a type byte, then Int32 length counting itself and the body. */
#define RIFT_PGW_HEADER 5u

/* Frontend (client → server) message types the router cares about. */
#define RIFT_PGW_QUERY     'Q'
#define RIFT_PGW_FUNCCALL  'F'
#define RIFT_PGW_PARSE     'P'
#define RIFT_PGW_BIND      'B'
#define RIFT_PGW_DESCRIBE  'D'
#define RIFT_PGW_EXECUTE   'E'
#define RIFT_PGW_CLOSE     'C'
#define RIFT_PGW_FLUSH     'H'
#define RIFT_PGW_SYNC      'S'
#define RIFT_PGW_TERMINATE 'X'
#define RIFT_PGW_PASSWORD  'p' /* also SASLInitialResponse and SASLResponse */

/* Backend (server → client) message types. */
#define RIFT_PGW_AUTH        'R'
#define RIFT_PGW_KEYDATA     'K'
#define RIFT_PGW_PARAMSTATUS 'S'
#define RIFT_PGW_READY       'Z'
#define RIFT_PGW_ERROR       'E'
#define RIFT_PGW_NOTICE      'N'
#define RIFT_PGW_ROWDESC     'T'
#define RIFT_PGW_DATAROW     'D'
#define RIFT_PGW_COMPLETE    'C'

/* Authentication request codes (the Int32 that starts an 'R' body). */
#define RIFT_PGW_AUTH_OK            0u
#define RIFT_PGW_AUTH_SASL          10u
#define RIFT_PGW_AUTH_SASL_CONTINUE 11u
#define RIFT_PGW_AUTH_SASL_FINAL    12u

/*
 * Reads a message header: its type and body length. Returns 0, or -1 when the length field is
 * below 4 (not the protocol: framing is lost).
 */
int rift_pgw_header(const uint8_t hdr[RIFT_PGW_HEADER], uint8_t *type, uint32_t *body_len)
    __attribute__((warn_unused_result));

/* One whole message at the front of a contiguous buffer: views into it. */
struct rift_pgw_msg {
	uint8_t type;
	const uint8_t *body;
	uint32_t len; /* body bytes */
	size_t size;  /* bytes the message takes: RIFT_PGW_HEADER + len */
};

/*
 * Reads the message at the front of buf (n bytes). Returns 1 with *m filled, 0 when it is not
 * all there yet, -1 when its length is invalid or its body is longer than max_body.
 */
int rift_pgw_read(const uint8_t *buf, size_t n, size_t max_body, struct rift_pgw_msg *m)
    __attribute__((warn_unused_result));

/*
 * Writes message type/body (len bytes) to out (cap bytes). Returns the bytes written, or 0
 * when it does not fit (nothing written then).
 */
size_t rift_pgw_write(uint8_t *out, size_t cap, uint8_t type, const void *body, size_t len);

/*
 * Writes a FATAL ErrorResponse: S and V FATAL, C code (5 characters), M msg, and H hint when
 * not NULL. Returns the bytes written, or 0 when it does not fit in cap. Each string is cut at
 * 1000 bytes so a long name in a message cannot make the reply unbounded.
 */
size_t rift_pgw_fatal(uint8_t *out, size_t cap, const char *code, const char *msg,
		      const char *hint);

/*
 * The relay's scanner: follows message boundaries through a byte stream that arrives in
 * pieces, without copying what it only walks past. Per direction, start zeroed.
 */
struct rift_pgw_scanner {
	uint32_t skip; /* bytes of the current message still to come (walked past, not read) */
	bool lost;     /* framing lost (a length below 4): everything is relayed unread */
	bool stopped;  /* the last scan ended because look returned false */
};

struct rift_pgw_scan_ops {
	/* Sees every message type; true when look must see the message whole (it is then
	 * waited for; bodies over max_body are walked past, never looked at). */
	bool (*header)(void *arg, uint8_t type);
	/* A whole message header asked for; false stops the walk after it. */
	bool (*look)(void *arg, uint8_t type, const uint8_t *body, uint32_t len);
	size_t max_body; /* at most RIFT_PGW_LOOK_MAX */
};

#define RIFT_PGW_LOOK_MAX 8192u

/*
 * Walks the whole messages in the bytes iov[0..niov) holds (the front of a stream whose first
 * *sc->skip bytes belong to a message already seen). Returns how many bytes may be relayed:
 * all but a partial header, or a partial message that look waits for. The caller relays them
 * and calls again with what is left once more arrives.
 */
size_t rift_pgw_scan(struct rift_pgw_scanner *sc, const struct iovec *iov, size_t niov,
		     const struct rift_pgw_scan_ops *ops, void *arg);

#endif
