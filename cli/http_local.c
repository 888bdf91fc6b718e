/* http_local.c — the CLI's HTTP/1.1 client for the local riftd's unix socket: one request per
 * connection, a bounded answer, no library. rift runs several times in every CI job, and loading
 * libcurl (with its TLS, LDAP and Kerberos libraries) cost more than the request; libcurl is
 * loaded only for a remote riftd (http_remote.c). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "http_reply.h"
#include "rift/dbuf.h"

#define ANSWER_TIMEOUT_MS (600 * 1000) /* a create may wait for a start slot */
#ifndef CONNECT_TIMEOUT_S              /* test_http_reply builds this file with 1 s */
#define CONNECT_TIMEOUT_S 30 /* a riftd whose listen queue stays full is stuck, not busy */
#endif
#define MAX_PATH_LEN 2048 /* rift list's label selectors are the longest paths */
#define READ_CHUNK   (64u << 10)

static long long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Waits until fd can do events, up to the deadline. 0, -ETIMEDOUT, or -errno. */
static int wait_for(int fd, short events, long long deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	long long left;
	int n;

	for (;;) {
		left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

/* A method or path that would break the request line or add a header is a bug of the caller. */
static bool token_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return false;
	return true;
}

static int send_all(int fd, const char *p, size_t n, long long deadline)
{
	ssize_t w;
	int rc;

	while (n > 0) {
		w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
		} else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			if ((rc = wait_for(fd, POLLOUT, deadline)) != 0)
				return rc;
		} else {
			return w < 0 ? -errno : -EPIPE;
		}
	}
	return 0;
}

/* Reads until the answer in *in is complete; r describes it. 0 or -errno. */
static int read_answer(int fd, struct dbuf *in, struct http_reply *r, long long deadline)
{
	char chunk[READ_CHUNK];
	ssize_t got;
	int rc;

	memset(r, 0, sizeof(*r));
	for (;;) {
		got = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
		if (got < 0 && (errno == EAGAIN || errno == EINTR)) {
			if ((rc = wait_for(fd, POLLIN, deadline)) != 0)
				return rc;
			continue;
		}
		if (got < 0)
			return -errno;
		dbuf_put(in, chunk, (size_t)got);
		if (in->oom)
			return -ENOMEM;
		rc = http_reply_parse(in->p ? in->p : "", in->len, got == 0, r);
		if (rc != 0 || r->complete)
			return rc;
	}
}

int cli_http_local(const char *sockpath, const char *method, const char *path, const char *body,
		   struct cli_response *resp)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	long long deadline = now_ms() + ANSWER_TIMEOUT_MS;
	struct timeval connect_wait = { .tv_sec = CONNECT_TIMEOUT_S };
	struct dbuf req = { 0 }, in = { 0 };
	struct http_reply r;
	char len_hdr[64];
	int fd = -1, rc = 0;

	memset(resp, 0, sizeof(*resp));
	if (!token_ok(method) || !token_ok(path) || path[0] != '/') {
		snprintf(resp->error, sizeof(resp->error), "bad request line: %.40s %.160s", method,
			 path);
		return -EINVAL;
	}
	if (strlen(sockpath) >= sizeof(sa.sun_path)) {
		snprintf(resp->error, sizeof(resp->error),
			 "the socket path %.200s is too long for a unix socket", sockpath);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, sockpath, strlen(sockpath) + 1);
	if (strlen(path) > MAX_PATH_LEN) {
		snprintf(resp->error, sizeof(resp->error), "request path too long: %.60s...", path);
		return -E2BIG;
	}
	/* a GET has no body; anything else says its length, as curl did */
	if (body == NULL && strcmp(method, "GET") != 0)
		body = "";
	dbuf_puts(&req, method);
	dbuf_puts(&req, " ");
	dbuf_puts(&req, path);
	dbuf_puts(&req, " HTTP/1.1\r\nHost: rift\r\nContent-Type: application/json\r\n"
			"Connection: close\r\n");
	if (body != NULL) {
		snprintf(len_hdr, sizeof(len_hdr), "Content-Length: %zu\r\n", strlen(body));
		dbuf_puts(&req, len_hdr);
	}
	dbuf_puts(&req, "\r\n");
	if (body != NULL)
		dbuf_puts(&req, body);
	if (req.oom) {
		rc = -ENOMEM;
		goto out;
	}
	/* a unix socket's connect waits while riftd's listen queue is full: bounded by the send
	 * timeout (the request itself goes out with MSG_DONTWAIT and the deadline) */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &connect_wait, sizeof(connect_wait)) != 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		rc = -errno;
		if (rc == -EAGAIN)
			snprintf(resp->error, sizeof(resp->error),
				 "riftd did not take the connection on %.120s within %d s: it is "
				 "stuck or overloaded (see its log)",
				 sockpath, CONNECT_TIMEOUT_S);
		else
			snprintf(resp->error, sizeof(resp->error), "cannot connect to %.200s: %s",
				 sockpath, strerror(-rc));
		goto out;
	}
	if ((rc = send_all(fd, req.p, req.len, deadline)) != 0) {
		snprintf(resp->error, sizeof(resp->error), "cannot send the request to riftd: %s",
			 strerror(-rc));
		rc = rc == -ETIMEDOUT ? rc : -EPROTO;
		goto out;
	}
	rc = read_answer(fd, &in, &r, deadline);
	if (rc == -EFBIG)
		snprintf(resp->error, sizeof(resp->error),
			 "riftd's answer is larger than rift reads (%u MiB)",
			 HTTP_REPLY_MAX_BODY >> 20);
	else if (rc == -ETIMEDOUT)
		snprintf(resp->error, sizeof(resp->error), "riftd did not answer within %d s",
			 ANSWER_TIMEOUT_MS / 1000);
	else if (rc == -EPROTO)
		snprintf(resp->error, sizeof(resp->error),
			 "riftd's answer was cut short or is not HTTP that rift reads");
	else if (rc != 0)
		snprintf(resp->error, sizeof(resp->error), "cannot read riftd's answer: %s",
			 strerror(-rc));
	if (rc != 0) {
		/* the callers tell "riftd is not running" by these codes: an answer gone wrong
		 * is not that */
		rc = rc == -EFBIG || rc == -ETIMEDOUT || rc == -ENOMEM ? rc : -EPROTO;
		goto out;
	}
	resp->status = r.status;
	resp->body = malloc(r.body_len + 1);
	if (resp->body == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(resp->body, in.p + r.body_off, r.body_len);
	resp->body[r.body_len] = '\0';
out:
	if (fd >= 0)
		close(fd);
	free(req.p);
	free(in.p);
	return rc;
}
