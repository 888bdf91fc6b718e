/* startup.h — parser of the Postgres startup phase (startup, SSL, GSSENC, cancel); no I/O. */
#ifndef RIFT_STARTUP_H
#define RIFT_STARTUP_H

#include <stddef.h>
#include <stdint.h>

#define RIFT_STARTUP_MAX        10000u /* Postgres's MAX_STARTUP_PACKET_LENGTH */
#define RIFT_STARTUP_MAX_PARAMS 64u
#define RIFT_CANCEL_KEY_MAX     256u /* protocol 3.2 keys are 4..256 bytes */

/* Every length and code of the protocol is a big-endian 32-bit integer. */
static inline uint32_t rift_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline void rift_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

#define RIFT_CODE_SSL    80877103u
#define RIFT_CODE_GSSENC 80877104u
#define RIFT_CODE_CANCEL 80877102u

enum rift_startup_kind {
	RIFT_STARTUP_NEED_MORE, /* not a whole packet yet: read more (needed says how much) */
	RIFT_STARTUP_INVALID,   /* framing error: answer 08P01 and close (reason says why) */
	RIFT_STARTUP_SSL,
	RIFT_STARTUP_GSSENC,
	RIFT_STARTUP_CANCEL,
	RIFT_STARTUP_MESSAGE, /* a StartupMessage of protocol 3.x */
};

struct rift_startup_param {
	const char *name, *value; /* views into the caller's buffer, NUL-terminated there */
};

struct rift_startup {
	enum rift_startup_kind kind;
	size_t length; /* bytes the packet takes (when complete) */
	size_t needed; /* NEED_MORE: total bytes needed to decide */
	const char *reason;
	const char *dup_name; /* INVALID: the parameter name given twice, if that was the error */
	uint32_t protocol;    /* MESSAGE: major << 16 | minor */
	struct rift_startup_param params[RIFT_STARTUP_MAX_PARAMS];
	size_t nparams;
	uint32_t cancel_pid; /* CANCEL */
	const uint8_t *cancel_key;
	size_t cancel_key_len;
};

/*
 * Parses the first packet in buf (len bytes available). Views point into buf, which must stay
 * alive and unchanged. Never reads past len; never allocates.
 */
void rift_startup_parse(const uint8_t *buf, size_t len, struct rift_startup *out);

/* Value of parameter name, or NULL. */
const char *rift_startup_get(const struct rift_startup *s, const char *name);

/*
 * Writes a StartupMessage with s's protocol and parameters, except that "database" becomes
 * database. Returns the length, or 0 if it does not fit in cap bytes.
 */
size_t rift_startup_build(const struct rift_startup *s, const char *database, uint8_t *out,
			  size_t cap);

/*
 * As rift_startup_build, and "options" becomes options: NULL keeps it as it came, "" leaves the
 * parameter out (so the packet equals one that never had it).
 */
size_t rift_startup_build_with(const struct rift_startup *s, const char *database,
			       const char *options, uint8_t *out, size_t cap);

/*
 * Splits a routed database name: "branch" → (branch, NULL); "db@branch" → (branch, db). The
 * parts go into the given buffers. Returns 0, or -1 when a part does not fit or is empty.
 */
int rift_route_split(const char *dbname, char *branch, size_t blen, char *db, size_t dlen);

#endif
