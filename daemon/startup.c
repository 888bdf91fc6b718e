/* startup.c — parses the Postgres startup packet and its SSL/GSSENC/cancel siblings; no I/O. */
#include <string.h>

#include "rift/startup.h"

static void invalid(struct rift_startup *out, const char *why)
{
	out->kind = RIFT_STARTUP_INVALID;
	out->reason = why;
}

/* The parameter list: name\0value\0 ... \0, the final NUL being the packet's last byte. Every
 * name and value must end inside the list, before that final NUL. A name given twice is refused:
 * Postgres takes the last "user" while a reader that stops at the first takes another, so the
 * router would vouch for one role while the server logged in another. Names compare exactly, as
 * Postgres compares "user" and "database"; the router reads no other name, and a kept session's
 * key is the forwarded packet's bytes. At most 64 names, so the quadratic check costs nothing. */
static void parse_params(const uint8_t *p, size_t n, struct rift_startup *out)
{
	size_t i = 0, m, k;

	if (n == 0 || p[n - 1] != '\0') {
		invalid(out, "the startup packet's parameter list is not terminated");
		return;
	}
	m = n - 1;
	while (i < m) {
		const char *name = (const char *)p + i, *value;
		size_t nl = strnlen(name, m - i), j, vl;
		if (nl == 0 || i + nl >= m) {
			invalid(out, "a startup parameter has no value");
			return;
		}
		j = i + nl + 1;
		value = (const char *)p + j;
		vl = strnlen(value, m - j);
		if (j + vl >= m) {
			invalid(out, "a startup parameter value is not terminated");
			return;
		}
		if (out->nparams == RIFT_STARTUP_MAX_PARAMS) {
			invalid(out, "too many startup parameters");
			return;
		}
		for (k = 0; k < out->nparams; k++) {
			if (strcmp(out->params[k].name, name) == 0) {
				invalid(out, "duplicate startup parameter");
				out->dup_name = name;
				return;
			}
		}
		out->params[out->nparams].name = name;
		out->params[out->nparams].value = value;
		out->nparams++;
		i = j + vl + 1;
	}
	out->kind = RIFT_STARTUP_MESSAGE;
}

void rift_startup_parse(const uint8_t *buf, size_t len, struct rift_startup *out)
{
	uint32_t plen, code;

	memset(out, 0, sizeof(*out));
	if (len < 8) {
		out->kind = RIFT_STARTUP_NEED_MORE;
		out->needed = 8;
		return;
	}
	plen = rift_be32(buf);
	code = rift_be32(buf + 4);
	if (plen < 8 || plen > RIFT_STARTUP_MAX) {
		invalid(out, "invalid length of startup packet");
		return;
	}
	if (len < plen) {
		out->kind = RIFT_STARTUP_NEED_MORE;
		out->needed = plen;
		return;
	}
	out->length = plen;
	if (code == RIFT_CODE_SSL || code == RIFT_CODE_GSSENC) {
		if (plen != 8) {
			invalid(out, "invalid length of encryption request");
			return;
		}
		out->kind = code == RIFT_CODE_SSL ? RIFT_STARTUP_SSL : RIFT_STARTUP_GSSENC;
		return;
	}
	if (code == RIFT_CODE_CANCEL) {
		if (plen < 12 + 4 || plen > 12 + RIFT_CANCEL_KEY_MAX) {
			invalid(out, "invalid length of cancel request");
			return;
		}
		out->kind = RIFT_STARTUP_CANCEL;
		out->cancel_pid = rift_be32(buf + 8);
		out->cancel_key = buf + 12;
		out->cancel_key_len = plen - 12;
		return;
	}
	if ((code >> 16) != 3) {
		invalid(out, "unsupported frontend protocol (rift speaks protocol 3.x)");
		return;
	}
	out->protocol = code;
	parse_params(buf + 8, plen - 8, out);
}

const char *rift_startup_get(const struct rift_startup *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->nparams; i++)
		if (strcmp(s->params[i].name, name) == 0)
			return s->params[i].value;
	return NULL;
}

static int append(uint8_t *out, size_t cap, size_t *at, const char *s)
{
	size_t n = strlen(s) + 1;

	if (*at + n > cap)
		return -1;
	memcpy(out + *at, s, n);
	*at += n;
	return 0;
}

size_t rift_startup_build(const struct rift_startup *s, const char *database, uint8_t *out,
			  size_t cap)
{
	return rift_startup_build_with(s, database, NULL, out, cap);
}

size_t rift_startup_build_with(const struct rift_startup *s, const char *database,
			       const char *options, uint8_t *out, size_t cap)
{
	size_t at = 8, i;
	int seen_db = 0;

	if (cap < 9)
		return 0;
	for (i = 0; i < s->nparams; i++) {
		const char *value = s->params[i].value;
		if (strcmp(s->params[i].name, "database") == 0) {
			value = database;
			seen_db = 1;
		} else if (options != NULL && strcmp(s->params[i].name, "options") == 0) {
			if (options[0] == '\0')
				continue;
			value = options;
		}
		if (append(out, cap, &at, s->params[i].name) != 0 ||
		    append(out, cap, &at, value) != 0)
			return 0;
	}
	if (!seen_db &&
	    (append(out, cap, &at, "database") != 0 || append(out, cap, &at, database) != 0))
		return 0;
	if (at + 1 > cap || at + 1 > RIFT_STARTUP_MAX)
		return 0;
	out[at++] = '\0';
	rift_put_be32(out, (uint32_t)at);
	rift_put_be32(out + 4, s->protocol);
	return at;
}

int rift_route_split(const char *dbname, char *branch, size_t blen, char *db, size_t dlen)
{
	const char *at = strrchr(dbname, '@');
	size_t n;

	if (at == NULL) {
		n = strlen(dbname);
		if (n == 0 || n >= blen)
			return -1;
		memcpy(branch, dbname, n + 1);
		if (dlen > 0)
			db[0] = '\0';
		return 0;
	}
	n = (size_t)(at - dbname);
	if (n == 0 || n >= dlen || strlen(at + 1) == 0 || strlen(at + 1) >= blen)
		return -1;
	memcpy(db, dbname, n);
	db[n] = '\0';
	memcpy(branch, at + 1, strlen(at + 1) + 1);
	return 0;
}
