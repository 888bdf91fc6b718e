/* cmd_dashboard.c — rift dashboard: forwards a loopback TCP port to riftd's dashboard socket. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"

#define MAX_PIPES      64 /* browser connections forwarded at once */
#define PIPE_BUF_BYTES (64u * 1024u)

struct pipe_job {
	int a, b; /* browser side, riftd side */
};

static _Atomic int pipes_open;

/* Copies bytes both ways until either side closes; one thread per browser connection. */
static void *pipe_main(void *arg)
{
	struct pipe_job *j = arg;
	struct pollfd p[2] = { { .fd = j->a, .events = POLLIN }, { .fd = j->b, .events = POLLIN } };
	char *buf = malloc(PIPE_BUF_BYTES);

	while (buf != NULL && poll(p, 2, -1) > 0) {
		int i, done = 0;
		for (i = 0; i < 2 && !done; i++) {
			ssize_t n, off = 0;
			if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = read(p[i].fd, buf, PIPE_BUF_BYTES);
			if (n <= 0) {
				done = 1;
				break;
			}
			while (off < n) {
				ssize_t w = write(p[1 - i].fd, buf + off, (size_t)(n - off));
				if (w < 0 && errno == EINTR)
					continue;
				if (w <= 0) {
					done = 1;
					break;
				}
				off += w;
			}
		}
		if (done)
			break;
	}
	free(buf);
	close(j->a);
	close(j->b);
	free(j);
	pipes_open--;
	return NULL;
}

static int connect_dashboard(const char *state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/run/dashboard.sock", state) >=
	    sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

static int usage_error(const char *msg)
{
	fprintf(stderr, "rift dashboard: %s (try rift dashboard --help)\n", msg);
	return EXIT_USAGE;
}

/* A one-time login link from riftd, so the browser needs no token. */
static int get_ticket(const struct cli_opts *o, char *out, size_t len)
{
	struct cli_response resp;
	json_t *doc = NULL;
	const char *t;
	int rc = cli_http(o, "POST", "/v1/dashboard/ticket", "{}", &resp);

	if (rc != 0) {
		fprintf(
		    stderr,
		    "rift dashboard: cannot reach riftd on %s/run/riftd.sock: %s (is it running? "
		    "rift serve starts it; run as root)\n",
		    o->state, resp.error[0] ? resp.error : strerror(-rc));
		return 1;
	}
	if (resp.status == 200)
		doc = json_loads(resp.body ? resp.body : "", 0, NULL);
	t = doc ? json_string_value(json_object_get(doc, "ticket")) : NULL;
	if (t == NULL) {
		fprintf(stderr, "rift dashboard: riftd gave no login ticket (HTTP %d: %s)\n",
			resp.status, resp.body ? resp.body : "");
		free(resp.body);
		json_decref(doc);
		return 1;
	}
	snprintf(out, len, "%s", t);
	free(resp.body);
	json_decref(doc);
	return 0;
}

int cmd_dashboard(const struct cli_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = { { "port", required_argument, NULL, 'p' },
						  { "help", no_argument, NULL, 'h' },
						  { NULL, 0, NULL, 0 } };
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t slen = sizeof(sa);
	char ticket[128], *end;
	long port = 0;
	int c, lfd = -1, one = 1, probe, rc = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'p') {
			errno = 0;
			port = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || port < 0 || port > 65535)
				return usage_error("--port wants a number from 0 to 65535");
		} else if (c == 'h') {
			printf(
			    "usage: rift dashboard [--port N]\n\n"
			    "Opens riftd's web dashboard on http://127.0.0.1:N/ (N = --port, or a "
			    "free port)\nby forwarding it to riftd's dashboard socket, and prints "
			    "a link that logs the\nbrowser in once (within 2 minutes). Runs until "
			    "Ctrl-C. Needs root (the socket is\nroot's). Anyone else on this "
			    "machine who reaches the port still has to log in.\n\nexamples:\n"
			    "  sudo rift dashboard\n  sudo rift dashboard --port 8433\n");
			return 0;
		} else {
			return usage_error("unknown option");
		}
	}
	if (optind != argc)
		return usage_error("takes no arguments");
	if (o->host != NULL) {
		fprintf(stderr,
			"rift dashboard: forwards a port on riftd's own machine; for a remote "
			"riftd open %s/ in a browser and give the API token\n",
			o->host);
		return EXIT_USAGE;
	}
	/* fail early and clearly when riftd is not there */
	probe = connect_dashboard(o->state);
	if (probe < 0) {
		fprintf(stderr,
			"rift dashboard: cannot reach %s/run/dashboard.sock: %s (is riftd running, "
			"and are you root?)\n",
			o->state, strerror(-probe));
		return 1;
	}
	close(probe);
	if (get_ticket(o, ticket, sizeof(ticket)) != 0)
		return 1;
	sa.sin_port = htons((uint16_t)port);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 64) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &slen) != 0) {
		fprintf(
		    stderr,
		    "rift dashboard: cannot listen on 127.0.0.1:%ld: %s (pick another --port)\n",
		    port, strerror(errno));
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	if (o->json)
		printf("{\"address\":\"127.0.0.1:%u\",\"url\":\"http://127.0.0.1:%u/"
		       "#ticket=%s\"}\n",
		       ntohs(sa.sin_port), ntohs(sa.sin_port), ticket);
	else
		printf(
		    "dashboard on http://127.0.0.1:%u/ (Ctrl-C stops it)\nopen this link to log in "
		    "(once, within 2 minutes):\n  http://127.0.0.1:%u/#ticket=%s\n",
		    ntohs(sa.sin_port), ntohs(sa.sin_port), ticket);
	fflush(stdout);
	explicit_bzero(ticket, sizeof(ticket));
	for (;;) {
		struct pipe_job *j;
		pthread_t t;
		int a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC), b;
		if (a < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
				continue;
			fprintf(stderr, "rift dashboard: accept failed: %s\n", strerror(errno));
			goto out;
		}
		if (pipes_open >= MAX_PIPES) {
			close(a); /* a browser opens a handful; more is someone else */
			continue;
		}
		b = connect_dashboard(o->state);
		j = b >= 0 ? malloc(sizeof(*j)) : NULL;
		if (j == NULL) {
			if (b < 0)
				fprintf(stderr, "rift dashboard: riftd went away (%s)\n",
					strerror(-b));
			close(a);
			if (b >= 0)
				close(b);
			continue;
		}
		j->a = a;
		j->b = b;
		pipes_open++;
		if (pthread_create(&t, NULL, pipe_main, j) != 0) {
			pipes_open--;
			close(a);
			close(b);
			free(j);
			continue;
		}
		pthread_detach(t);
	}
out:
	if (lfd >= 0)
		close(lfd);
	return rc;
}
