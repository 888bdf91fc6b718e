/* ddl_log.c — parses a branch server's stderr log for the DDL it ran; bounded, any bytes in. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rift/ddl_log.h"

/*
 * The log is written by the branch's server, whose superuser is hostile: they can SET
 * log_statement = none, RAISE LOG anything, or (COPY ... TO PROGRAM) write raw bytes to the
 * server's stderr, which is this file. So the result is advisory, and the parser must survive
 * anything: every copy is bounded, no field is trusted to be text, and nothing read here ever
 * names a path or a process to riftd.
 */

#define READ_CHUNK (64u * 1024u)
#define MAX_LINE   (RIFT_DDL_MAX_STATEMENT + 512u) /* prefix, role@db, severity */

void rift_ddl_log_init(struct rift_ddl_log *l, int64_t since_ms)
{
	memset(l, 0, sizeof(*l));
	l->since_ms = since_ms;
}

void rift_ddl_log_free(struct rift_ddl_log *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[l->first + i].statement);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int digits(const char *p, int n)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

/* "YYYY-MM-DD HH:MM:SS.mmm UTC" (27 bytes) to unix ms; -1 if it is not that. */
static int64_t parse_time(const char *p, size_t len)
{
	struct tm tm = { 0 };
	int y, mo, d, h, mi, s, ms;

	if (len < 27 || p[4] != '-' || p[7] != '-' || p[10] != ' ' || p[13] != ':' ||
	    p[16] != ':' || p[19] != '.' || memcmp(p + 23, " UTC", 4) != 0)
		return -1;
	y = digits(p, 4);
	mo = digits(p + 5, 2);
	d = digits(p + 8, 2);
	h = digits(p + 11, 2);
	mi = digits(p + 14, 2);
	s = digits(p + 17, 2);
	ms = digits(p + 20, 3);
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 ||
	    mi > 59 || s < 0 || s > 60 || ms < 0)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	return (int64_t)timegm(&tm) * 1000 + ms;
}

static const char *find(const char *p, size_t len, const char *needle)
{
	size_t nl = strlen(needle), i;

	for (i = 0; i + nl <= len; i++)
		if (memcmp(p + i, needle, nl) == 0)
			return p + i;
	return NULL;
}

/* Appends bytes to e's statement, up to the cap. */
static int append(struct rift_ddl_log *l, struct rift_ddl_entry *e, const char *p, size_t n)
{
	char *ns;

	if (e->len + n > RIFT_DDL_MAX_STATEMENT) {
		n = RIFT_DDL_MAX_STATEMENT - e->len;
		e->truncated = true;
	}
	ns = realloc(e->statement, e->len + n + 1);
	if (ns == NULL)
		return -ENOMEM;
	/* a NUL cannot be in a statement; one in the log would cut the text short */
	memcpy(ns + e->len, p, n);
	for (size_t i = e->len; i < e->len + n; i++)
		if (ns[i] == '\0')
			ns[i] = '?';
	e->statement = ns;
	e->len += n;
	e->statement[e->len] = '\0';
	l->bytes += n;
	return 0;
}

/* Drops the oldest entries while the statements held pass the cap. */
static void trim(struct rift_ddl_log *l)
{
	while (l->bytes > RIFT_DDL_MAX_BYTES && l->n > 1) {
		struct rift_ddl_entry *e = &l->v[l->first];
		l->bytes -= e->len;
		free(e->statement);
		l->first++;
		l->n--;
		l->dropped++;
	}
}

static struct rift_ddl_entry *new_entry(struct rift_ddl_log *l)
{
	if (l->first + l->n == l->cap) {
		if (l->first > 0) { /* slide down what trim left behind */
			memmove(l->v, l->v + l->first, l->n * sizeof(*l->v));
			l->first = 0;
		}
		if (l->n == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 64;
			struct rift_ddl_entry *nv = realloc(l->v, cap * sizeof(*nv));
			if (nv == NULL)
				return NULL;
			l->v = nv;
			l->cap = cap;
		}
	}
	memset(&l->v[l->first + l->n], 0, sizeof(*l->v));
	return &l->v[l->first + l->n++];
}

static void copy_name(char *out, size_t outlen, const char *p, size_t n)
{
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, p, n);
	out[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (out[i] == '\0')
			out[i] = '?';
}

/* The newest entry of pid, if it is among the last few (its ERROR follows it closely). */
static struct rift_ddl_entry *last_of(struct rift_ddl_log *l, int pid)
{
	size_t i;

	for (i = l->n; i > 0 && l->n - i < 64; i--)
		if (l->v[l->first + i - 1].pid == pid)
			return &l->v[l->first + i - 1];
	return NULL;
}

int rift_ddl_log_feed(struct rift_ddl_log *l, const char *line, size_t len)
{
	const char *rest, *end = line + len, *colon, *sev, *msg, *at, *stmt = NULL;
	struct rift_ddl_entry *e;
	int64_t t;
	long pid;
	char *pend;
	size_t i;

	if (len > 0 && line[0] == '\t') {
		/* Postgres puts a tab after every newline inside a message */
		if (!l->open || l->n == 0)
			return 0;
		e = &l->v[l->first + l->n - 1];
		if (append(l, e, "\n", 1) != 0 || append(l, e, line + 1, len - 1) != 0)
			return -ENOMEM;
		trim(l);
		return 0;
	}
	l->open = false;
	t = parse_time(line, len);
	if (t < 0 || len < 30 || line[27] != ' ' || line[28] != '[')
		return 0;
	/* the pid, then "] " */
	{
		char num[16];
		for (i = 0; i < sizeof(num) - 1 && 29 + i < len && line[29 + i] != ']'; i++)
			num[i] = line[29 + i];
		num[i] = '\0';
		if (29 + i + 1 >= len || line[29 + i] != ']' || line[29 + i + 1] != ' ')
			return 0;
		pid = strtol(num, &pend, 10);
		if (pend == num || *pend != '\0' || pid <= 0 || pid > 0x7fffffff)
			return 0;
		rest = line + 29 + i + 2;
	}
	/* "role@db SEVERITY:  message"; a process without a session has no role@db */
	colon = find(rest, (size_t)(end - rest), ":  ");
	if (colon == NULL)
		return 0;
	for (sev = colon; sev > rest && sev[-1] != ' '; sev--)
		;
	if (sev == rest) /* no session: not a client's statement */
		return 0;
	msg = colon + 3;
	if ((size_t)(colon - sev) == 5 && memcmp(sev, "ERROR", 5) == 0) {
		l->error_pid = (int)pid;
		return 0;
	}
	if ((size_t)(colon - sev) == 9 && memcmp(sev, "STATEMENT", 9) == 0) {
		/* the statement an ERROR was about: was it the DDL this session logged last? */
		if (l->error_pid == (int)pid && (e = last_of(l, (int)pid)) != NULL) {
			size_t first = strcspn(e->statement, "\n");
			if ((size_t)(end - msg) == first && memcmp(msg, e->statement, first) == 0)
				e->failed = true;
		}
		l->error_pid = 0;
		return 0;
	}
	if ((size_t)(colon - sev) != 3 || memcmp(sev, "LOG", 3) != 0)
		return 0;
	if ((size_t)(end - msg) >= 11 && memcmp(msg, "statement: ", 11) == 0) {
		stmt = msg + 11;
	} else if ((size_t)(end - msg) >= 8 && memcmp(msg, "execute ", 8) == 0) {
		/* extended protocol: "execute <name>: text" */
		const char *p = find(msg + 8, (size_t)(end - msg - 8), ": ");
		if (p != NULL)
			stmt = p + 2;
	}
	if (stmt == NULL || t < l->since_ms)
		return 0;
	/* role@database: split at the last '@' (a role may hold one; a database the router
	 * reaches as db@branch cannot) */
	for (at = sev - 1; at > rest && *at != '@'; at--)
		;
	if (*at != '@')
		return 0;
	e = new_entry(l);
	if (e == NULL)
		return -ENOMEM;
	e->time_ms = t;
	e->pid = (int)pid;
	copy_name(e->role, sizeof(e->role), rest, (size_t)(at - rest));
	copy_name(e->database, sizeof(e->database), at + 1, (size_t)(sev - 1 - (at + 1)));
	if (append(l, e, stmt, (size_t)(end - stmt)) != 0)
		return -ENOMEM;
	l->open = true;
	l->error_pid = 0;
	trim(l);
	return 0;
}

int rift_ddl_log_read_file(struct rift_ddl_log *l, const char *path)
{
	char *chunk = NULL, *line = NULL;
	size_t llen = 0, i;
	bool cut = false;
	ssize_t n;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	chunk = malloc(READ_CHUNK);
	line = malloc(MAX_LINE);
	if (chunk == NULL || line == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	while ((n = read(fd, chunk, READ_CHUNK)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		for (i = 0; i < (size_t)n; i++) {
			if (chunk[i] != '\n') {
				if (llen < MAX_LINE)
					line[llen++] = chunk[i];
				else
					cut = true; /* the rest of an overlong line is dropped */
				continue;
			}
			rc = rift_ddl_log_feed(l, line, llen);
			if (rc != 0)
				goto out;
			if (cut && l->open && l->n > 0)
				l->v[l->first + l->n - 1].truncated = true;
			llen = 0;
			cut = false;
		}
	}
	/* a last line without its newline is still being written: leave it for next time */
out:
	free(chunk);
	free(line);
	close(fd);
	return rc;
}

/* A copy of p with every byte that is not part of valid UTF-8 replaced by '?'. */
static char *utf8_clean(const char *p, size_t n)
{
	char *out = malloc(n + 1);
	const unsigned char *s = (const unsigned char *)p;
	size_t i = 0, k;

	if (out == NULL)
		return NULL;
	while (i < n) {
		size_t need;
		unsigned cp = s[i];
		if (s[i] < 0x80) {
			need = 0;
		} else if (s[i] >= 0xc2 && s[i] <= 0xdf) {
			need = 1;
			cp &= 0x1f;
		} else if (s[i] >= 0xe0 && s[i] <= 0xef) {
			need = 2;
			cp &= 0x0f;
		} else if (s[i] >= 0xf0 && s[i] <= 0xf4) {
			need = 3;
			cp &= 0x07;
		} else {
			goto bad;
		}
		if (i + need >= n && need > 0)
			goto bad;
		for (k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				goto bad;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		/* overlong, surrogate, beyond U+10FFFF */
		if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			goto bad;
		memcpy(out + i, p + i, need + 1);
		i += need + 1;
		continue;
	bad:
		out[i++] = '?';
	}
	out[n] = '\0';
	return out;
}

static json_t *clean_string(const char *p, size_t n)
{
	char *c = utf8_clean(p, n);
	json_t *s = c ? json_stringn(c, n) : NULL;

	free(c);
	return s;
}

json_t *rift_ddl_log_json(const struct rift_ddl_log *l)
{
	json_t *arr = json_array(), *doc;
	size_t i;

	if (arr == NULL)
		return NULL;
	for (i = 0; i < l->n; i++) {
		const struct rift_ddl_entry *e = &l->v[l->first + i];
		char when[96];
		time_t secs = (time_t)(e->time_ms / 1000);
		struct tm tm;
		json_t *o;
		gmtime_r(&secs, &tm);
		snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, (int)(e->time_ms % 1000));
		o = json_pack("{s:s,s:i,s:o,s:o,s:o,s:b,s:b}", "time", when, "pid", e->pid, "role",
			      clean_string(e->role, strlen(e->role)), "database",
			      clean_string(e->database, strlen(e->database)), "statement",
			      clean_string(e->statement ? e->statement : "", e->len), "failed",
			      e->failed, "truncated", e->truncated);
		if (o == NULL || json_array_append_new(arr, o) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	doc = json_pack("{s:o,s:I}", "entries", arr, "dropped", (json_int_t)l->dropped);
	return doc;
}
