/* http.c — a minimal HTTP/1.1 client over riftd's unix socket; bounded, one request per call. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"

#define MAX_RESPONSE (64u << 20) /* rift diff --json with definitions and rows */

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int cli_http(const char *state, const char *method, const char *path, const char *body,
	     struct cli_response *resp)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char head[1024], *buf = NULL, *sep;
	size_t len = 0, cap = 0, blen = body ? strlen(body) : 0;
	int fd, n;

	memset(resp, 0, sizeof(*resp));
	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/run/riftd.sock", state) >=
	    sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		n = -errno;
		close(fd);
		return n;
	}
	n = snprintf(head, sizeof(head),
		     "%s %s HTTP/1.1\r\nHost: rift\r\nConnection: close\r\nContent-Type: "
		     "application/json\r\nContent-Length: %zu\r\n\r\n",
		     method, path, blen);
	if (n < 0 || (size_t)n >= sizeof(head) || write_all(fd, head, (size_t)n) != 0 ||
	    (blen > 0 && write_all(fd, body, blen) != 0)) {
		close(fd);
		return -EIO;
	}
	for (;;) {
		ssize_t r;
		if (len + 4096 + 1 > cap) {
			char *nb;
			cap = cap ? cap * 2 : 16384;
			if (cap > MAX_RESPONSE) {
				free(buf);
				close(fd);
				return -EFBIG;
			}
			nb = realloc(buf, cap);
			if (nb == NULL) {
				free(buf);
				close(fd);
				return -ENOMEM;
			}
			buf = nb;
		}
		r = read(fd, buf + len, cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	if (buf == NULL)
		return -EIO;
	buf[len] = '\0';
	sep = strstr(buf, "\r\n\r\n");
	if (strncmp(buf, "HTTP/1.", 7) != 0 || sep == NULL || len < 12) {
		free(buf);
		return -EPROTO;
	}
	resp->status = (int)strtol(buf + 9, NULL, 10);
	resp->body = strdup(sep + 4);
	free(buf);
	return resp->body ? 0 : -ENOMEM;
}
