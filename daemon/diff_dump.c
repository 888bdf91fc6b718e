/* diff_dump.c — runs pg_dump --schema-only of one branch database as that branch's own uid. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "diff_internal.h"
#include "rift/instance.h"

#define MAX_DUMP (64u << 20)

/* A libpq connection-string value in single quotes (\ and ' escaped). */
static void cvalue(struct dbuf *b, const char *s)
{
	dbuf_put(b, "'", 1);
	for (; *s; s++) {
		if (*s == '\'' || *s == '\\')
			dbuf_put(b, "\\", 1);
		dbuf_put(b, s, 1);
	}
	dbuf_put(b, "'", 1);
}

/*
 * Why as the branch's uid: pg_dump talks to a server whose superuser is hostile, over a socket
 * directory that user owns (it could put a link to another branch's socket there). As the
 * branch's own uid, pg_dump can reach nothing that uid cannot already reach, and a pg_dump
 * exploited by a malicious server gains nothing either. Its output is stdout and stderr
 * together (rift_pg_spawn's one descriptor); on success pg_dump writes nothing to stderr but
 * warnings, whose lines start with "pg_dump: " and are dropped.
 */
int rift_diff_dump(const struct rift_diff_side *s, const char *dbname, int timeout_ms, char **out,
		   size_t *len, char *err, size_t errlen)
{
	char exe[4200], port[16];
	struct dbuf conn = { 0 }, got = { 0 };
	char *argv[] = { exe, "--schema-only", "--no-password", "-d", NULL, NULL };
	char *env[] = { "PGPASSFILE=/nonexistent/rift-no-passfile", "PGCONNECT_TIMEOUT=30",
			/* the same rendering on both sides whatever ALTER SYSTEM set: timestamptz
			 * constants and string literals in defaults, checks and views */
			"PGOPTIONS=-c log_statement=none -c TimeZone=UTC -c "
			"standard_conforming_strings=on",
			NULL };
	struct timespec t0, now;
	int fds[2] = { -1, -1 }, status = 0, rc = 0;
	pid_t pid = 0;
	char chunk[65536];

	*out = NULL;
	*len = 0;
	snprintf(exe, sizeof(exe), "%.4000s/pg_dump", s->bindir);
	snprintf(port, sizeof(port), "%d", s->inst->port);
	dbuf_puts(&conn, "host=");
	cvalue(&conn, s->inst->sockdir);
	dbuf_puts(&conn, " port=");
	dbuf_puts(&conn, port);
	dbuf_puts(&conn, " user=");
	cvalue(&conn, s->pg_user);
	dbuf_puts(&conn, " dbname=");
	cvalue(&conn, dbname);
	if (conn.oom || pipe2(fds, O_CLOEXEC) != 0) {
		rc = -ENOMEM;
		snprintf(err, errlen, "cannot run pg_dump: out of resources");
		goto out;
	}
	argv[4] = conn.p;
	rc = rift_instance_spawn(s->inst, s->pg_user, argv, env, fds[1], &pid);
	close(fds[1]);
	fds[1] = -1;
	if (rc != 0) {
		snprintf(err, errlen, "cannot run %s: %s", exe, strerror(-rc));
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd p = { .fd = fds[0], .events = POLLIN };
		long left;
		ssize_t n;
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = timeout_ms -
		       ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0) {
			snprintf(
			    err, errlen,
			    "pg_dump of database \"%s\" on branch \"%s\" did not finish within "
			    "%d ms",
			    dbname, s->name, timeout_ms);
			rc = -ETIMEDOUT;
			break;
		}
		if (poll(&p, 1, (int)(left > 1000 ? 1000 : left)) <= 0)
			continue;
		n = read(fds[0], chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (got.len + (size_t)n > MAX_DUMP) {
			snprintf(err, errlen,
				 "the schema of database \"%s\" on branch \"%s\" is over 64 MiB as "
				 "SQL; rift diff does not compare schemas that large",
				 dbname, s->name);
			rc = -EFBIG;
			break;
		}
		dbuf_put(&got, chunk, (size_t)n);
	}
	if (rc != 0)
		kill(-pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (rc == 0 && got.oom)
		rc = -ENOMEM;
	if (rc == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
		const char *tail = got.p ? got.p + (got.len > 400 ? got.len - 400 : 0) : "";
		snprintf(err, errlen, "pg_dump of database \"%s\" on branch \"%s\" failed: %s",
			 dbname, s->name, tail);
		rc = -EIO;
	}
	if (rc == 0) {
		/* drop pg_dump's own warning lines */
		char *r = got.p ? got.p : "", *w = r, *line = r;
		while (*line) {
			char *nl = strchr(line, '\n');
			size_t l = nl ? (size_t)(nl - line + 1) : strlen(line);
			if (strncmp(line, "pg_dump: ", 9) != 0) {
				memmove(w, line, l);
				w += l;
			}
			line += l;
		}
		*w = '\0';
		*len = (size_t)(w - r);
		*out = got.p;
		got.p = NULL;
		if (*out == NULL)
			rc = -EIO;
	}
out:
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	free(conn.p);
	free(got.p);
	return rc;
}
