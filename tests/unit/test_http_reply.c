/* test_http_reply.c — the CLI's local HTTP client: the answer parser, table-driven, and whole
 * requests against a unix-socket server thread that answers with canned bytes. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "cli.h"
#include "http_reply.h"

static void test_parse_table(void **state)
{
	static const struct {
		const char *in;
		bool eof;
		int rc, status;
		bool complete;
		const char *body;
	} cases[] = {
		{ "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", false, 0, 200, true, "{}" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{", false, 0, 200, false, NULL },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{", true, -EPROTO, 0, false, NULL },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}junk", false, 0, 200, true, "{}" },
		{ "HTTP/1.0 404 Not Found\r\n\r\nno", false, 0, 404, false, NULL },
		{ "HTTP/1.0 404 Not Found\r\n\r\nno", true, 0, 404, true, "no" },
		{ "HTTP/1.1 204\r\ncontent-length:0\r\n\r\n", false, 0, 204, true, "" },
		{ "HTTP/1.1 200 OK\r\nCONTENT-LENGTH:  3 \t\r\nX: y\r\n\r\nabc", false, 0, 200,
		  true, "abc" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", false, 0,
		  200, true, "abc" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", false,
		  -EPROTO, 0, false, NULL },
		{ "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, -EPROTO, 0, false, NULL },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", false, -EPROTO, 0, false, NULL },
		{ "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", false, -EPROTO, 0, false, NULL },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", false, -EFBIG,
		  0, false, NULL },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		  false, -EPROTO, 0, false, NULL },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nx", true, 0, 200, true,
		  "x" },
		{ "HTTP/1.1 100 Continue\r\n\r\n", false, -EPROTO, 0, false, NULL },
		{ "HTTP/1.1 600 What\r\n\r\n", false, -EPROTO, 0, false, NULL },
		{ "HTTP/2 200 OK\r\n\r\n", false, -EPROTO, 0, false, NULL },
		{ "HTTP/1.1 2x0 OK\r\n\r\n", false, -EPROTO, 0, false, NULL },
		{ "HTTP/1.1 200OK\r\n\r\n", false, -EPROTO, 0, false, NULL },
		{ "HTTP/1.1 200 OK\r\nno colon\r\n\r\n", false, -EPROTO, 0, false, NULL },
		{ "HTTP/1.1 200 OK\r\n: empty name\r\n\r\n", false, -EPROTO, 0, false, NULL },
		{ "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", false, -EPROTO, 0, false, NULL },
		{ "HTTP/1.1 200 OK\r\nA: b\nC: d\r\n\r\n", false, -EPROTO, 0, false, NULL },
		{ "HTTP/1.1 200 OK\r\nContent-Le", false, 0, 0, false, NULL },
		{ "HTTP/1.1 200 OK\r\nContent-Le", true, -EPROTO, 0, false, NULL },
		{ "", false, 0, 0, false, NULL },
		{ "", true, -EPROTO, 0, false, NULL },
		{ "SSH-2.0-OpenSSH\r\n\r\n", false, -EPROTO, 0, false, NULL },
	};
	struct http_reply r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *in = cases[i].in;
		int rc;
		memset(&r, 0, sizeof(r));
		rc = http_reply_parse(in, strlen(in), cases[i].eof, &r);
		if (rc != cases[i].rc)
			fail_msg("case %zu (%s): rc %d, want %d", i, in, rc, cases[i].rc);
		if (rc != 0)
			continue;
		assert_int_equal(r.complete, cases[i].complete);
		if (!r.complete)
			continue;
		assert_int_equal(r.status, cases[i].status);
		assert_int_equal(r.body_len, strlen(cases[i].body));
		assert_memory_equal(in + r.body_off, cases[i].body, r.body_len);
	}
}

/* Every prefix of a good answer is "more, please" (or, at EOF, cut short); only all of it is done.
 */
static void test_parse_prefixes(void **state)
{
	const char *in = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
			 "Content-Length: 11\r\n\r\n{\"ok\":true}";
	struct http_reply r;
	size_t n, len = strlen(in);

	(void)state;
	for (n = 0; n < len; n++) {
		memset(&r, 0, sizeof(r));
		assert_int_equal(http_reply_parse(in, n, false, &r), 0);
		assert_false(r.complete);
		memset(&r, 0, sizeof(r));
		assert_int_equal(http_reply_parse(in, n, true, &r), -EPROTO);
	}
	memset(&r, 0, sizeof(r));
	assert_int_equal(http_reply_parse(in, len, false, &r), 0);
	assert_true(r.complete);
	assert_int_equal(r.status, 201);
	/* the same bytes one at a time, the state carried over (the end marker straddles reads) */
	memset(&r, 0, sizeof(r));
	for (n = 0; n < len; n++) {
		assert_int_equal(http_reply_parse(in, n, false, &r), 0);
		assert_false(r.complete);
	}
	assert_int_equal(http_reply_parse(in, len, false, &r), 0);
	assert_true(r.complete);
	assert_int_equal(r.status, 201);
	assert_int_equal(r.body_len, 11);
	assert_memory_equal(in + r.body_off, "{\"ok\":true}", 11);
}

static void test_parse_bounds(void **state)
{
	size_t n = HTTP_REPLY_MAX_HEAD + 2;
	char *big = malloc(n + 64);
	char hdr[64];
	struct http_reply r;

	(void)state;
	assert_non_null(big);
	/* a head that never ends */
	memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
	memset(big + 20, 'a', n - 20);
	memset(&r, 0, sizeof(r));
	assert_int_equal(http_reply_parse(big, n, false, &r), -EFBIG);
	/* a head that ends past the bound */
	memcpy(big + n, "\r\n\r\n", 4);
	memset(&r, 0, sizeof(r));
	assert_int_equal(http_reply_parse(big, n + 4, false, &r), -EFBIG);
	free(big);
	/* a length one past the body bound, and a body without length past it */
	snprintf(hdr, sizeof(hdr), "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n",
		 HTTP_REPLY_MAX_BODY + 1);
	memset(&r, 0, sizeof(r));
	assert_int_equal(http_reply_parse(hdr, strlen(hdr), false, &r), -EFBIG);
	snprintf(hdr, sizeof(hdr), "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n",
		 HTTP_REPLY_MAX_BODY);
	memset(&r, 0, sizeof(r));
	assert_int_equal(http_reply_parse(hdr, strlen(hdr), false, &r), 0);
	assert_false(r.complete);
}

/* ---- whole requests against a server thread */

struct server {
	int lfd;
	const char *answer; /* sent after the request's head (and body) is read */
	size_t answer_len;
	bool close_early;   /* close after reading, without answering */
	char request[4096]; /* what the client sent */
};

static void *serve_one(void *arg)
{
	struct server *s = arg;
	size_t got = 0;
	ssize_t n;
	int fd = accept(s->lfd, NULL, NULL);

	if (fd < 0)
		return NULL;
	/* the client sends Connection: close and a length; read until the head and body are in */
	while (got + 1 < sizeof(s->request)) {
		char *end;
		n = read(fd, s->request + got, sizeof(s->request) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		s->request[got] = '\0';
		end = strstr(s->request, "\r\n\r\n");
		if (end != NULL) {
			const char *cl = strstr(s->request, "Content-Length: ");
			size_t want = cl ? (size_t)atoi(cl + 16) : 0;
			if (got >= (size_t)(end + 4 - s->request) + want)
				break;
		}
	}
	if (!s->close_early && s->answer_len > 0 &&
	    write(fd, s->answer, s->answer_len) != (ssize_t)s->answer_len)
		fail_msg("the test server could not write its answer");
	close(fd);
	return NULL;
}

/* Resets s to answer with the bytes of answer (NULL: close without answering). */
static void answering(struct server *s, const char *answer)
{
	memset(s, 0, sizeof(*s));
	s->answer = answer;
	s->answer_len = answer != NULL ? strlen(answer) : 0;
	s->close_early = answer == NULL;
}

static int call(struct server *s, const char *dir, const char *method, const char *body,
		struct cli_response *resp)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	pthread_t t;
	int rc;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/riftd.sock", dir);
	unlink(sa.sun_path);
	s->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(s->lfd >= 0);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s->lfd, 1), 0);
	assert_int_equal(pthread_create(&t, NULL, serve_one, s), 0);
	rc = cli_http_local(sa.sun_path, method, "/v1/branches", body, resp);
	pthread_join(t, NULL);
	close(s->lfd);
	unlink(sa.sun_path);
	return rc;
}

static void test_local_calls(void **state)
{
	char dir[] = "/tmp/rift-test-http-XXXXXX", sock[64];
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n{\"name\":\"b1\"}";
	static const char cut[] = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n{\"na";
	static const char chunked[] =
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
	struct server s;
	struct cli_response resp;

	(void)state;
	assert_non_null(mkdtemp(dir));

	answering(&s, ok);
	assert_int_equal(call(&s, dir, "POST", "{\"name\":\"b1\"}", &resp), 0);
	assert_int_equal(resp.status, 200);
	assert_string_equal(resp.body, "{\"name\":\"b1\"}");
	free(resp.body);
	assert_non_null(strstr(s.request, "POST /v1/branches HTTP/1.1\r\nHost: rift\r\n"));
	assert_non_null(strstr(s.request, "Content-Length: 13\r\n\r\n{\"name\":\"b1\"}"));
	assert_non_null(strstr(s.request, "Connection: close\r\n"));

	answering(&s, ok); /* a GET says no length; a bodiless DELETE says 0 */
	assert_int_equal(call(&s, dir, "GET", NULL, &resp), 0);
	free(resp.body);
	assert_null(strstr(s.request, "Content-Length"));
	answering(&s, ok);
	assert_int_equal(call(&s, dir, "DELETE", NULL, &resp), 0);
	free(resp.body);
	assert_non_null(strstr(s.request, "Content-Length: 0\r\n"));

	answering(&s, cut);
	assert_int_equal(call(&s, dir, "GET", NULL, &resp), -EPROTO);
	assert_null(resp.body);
	assert_non_null(strstr(resp.error, "cut short"));
	answering(&s, chunked);
	assert_int_equal(call(&s, dir, "GET", NULL, &resp), -EPROTO);
	answering(&s, NULL);
	assert_int_equal(call(&s, dir, "GET", NULL, &resp), -EPROTO);

	/* nobody listening: the callers' "riftd is not running" */
	snprintf(sock, sizeof(sock), "%s/none.sock", dir);
	assert_int_equal(cli_http_local(sock, "GET", "/v1/status", NULL, &resp), -ENOENT);
	assert_non_null(strstr(resp.error, "cannot connect"));
	/* a request line that a path could break */
	assert_int_equal(cli_http_local(sock, "GET", "/v1/x HTTP/1.1\r\nX: y", NULL, &resp),
			 -EINVAL);
	assert_int_equal(cli_http_local(sock, "GET", "v1", NULL, &resp), -EINVAL);
	rmdir(dir);
}

/* A riftd that never accepts, its listen queue full: rift gives up after the connect bound
 * instead of hanging (libcurl's connect timeout did the same). This build of http_local.c has a
 * 1 s bound (tests/unit/CMakeLists.txt); rift's is 30 s. */
static void test_local_connect_bound(void **state)
{
	char dir[] = "/tmp/rift-test-http-XXXXXX";
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct cli_response resp;
	int l, filler;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/riftd.sock", dir);
	l = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(l, 0), 0);
	filler = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_int_equal(connect(filler, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(cli_http_local(sa.sun_path, "GET", "/v1/status", NULL, &resp), -EAGAIN);
	assert_non_null(strstr(resp.error, "did not take the connection"));
	close(filler);
	close(l);
	unlink(sa.sun_path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),         cmocka_unit_test(test_parse_prefixes),
		cmocka_unit_test(test_parse_bounds),        cmocka_unit_test(test_local_calls),
		cmocka_unit_test(test_local_connect_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
