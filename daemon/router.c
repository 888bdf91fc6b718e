/* router.c — routes Postgres clients to branch servers and relays their bytes (libevent). */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rift/branch_name.h"
#include "rift/router.h"
#include "rift/splice.h"
#include "rift/startup.h"
#include "rift/tls.h"

#define MAX_LISTENERS 4
#define RELAY_HIGH    (1u << 20) /* stop reading a side while the other owes this much */
#define MAX_STARTING  256        /* clients waiting for a branch to start */
#define MAX_CANCEL    4096

#define LOG(...) fprintf(stderr, "riftd router: " __VA_ARGS__)

struct cancel_key {
	uint32_t pid;
	uint8_t key[RIFT_CANCEL_KEY_MAX];
	size_t keylen;
	int port; /* 0 = free slot */
};

struct client;

struct rift_router {
	struct rift_manager *m;
	struct client *all; /* every live client, for shutdown */
	atomic_int workers; /* start threads still running */
	struct event_base *base;
	struct evconnlistener *listeners[MAX_LISTENERS];
	size_t nlisteners;
	SSL_CTX *ssl;
	struct rift_splice *splice; /* NULL: every byte is relayed here */
	int splice_ep;              /* spliced sockets, watched for hang-ups only */
	struct event *splice_ev;
	pthread_t thread;
	bool thread_started;
	int clients, starting, max_clients, login_timeout_s;
	struct cancel_key cancels[MAX_CANCEL];
};

enum phase { P_STARTUP, P_STARTING, P_CONNECTING, P_WATCH, P_RELAY, P_SPLICED, P_CLOSING };

enum { SIDE_CLIENT, SIDE_SERVER };

struct client {
	struct rift_router *r;
	struct client *prev, *next;
	struct bufferevent *c, *s; /* client side (maybe TLS), server side */
	enum phase phase;
	bool tls, direct_tls, ssl_seen, gss_seen, routed, worker_busy, freed_later;
	char peer[64], branch[64], db[64], reason[256];
	uint8_t *startup; /* the rewritten StartupMessage for the server */
	size_t startup_len;
	int port;
	struct event *timer, *started;
	int start_status;
	char start_err[512];
	uint64_t in_bytes, out_bytes;
	struct timespec t0, close_by;
	struct cancel_key *key;
	/* spliced: the kernel relays between fd[0] (client) and fd[1] (server) */
	int fd[2];
	bool eof[2], server_shut, hangup_seen;
	uint64_t recv0[2], sent0[2]; /* socket totals when splicing began */
};

static void client_free(struct client *cl);
static void closing_check(struct client *cl);

/* ---- protocol answers ---- */

/* Sends FATAL ErrorResponse code/message (hint optional) and closes once it is written. */
static void fatal(struct client *cl, const char *code, const char *msg, const char *hint)
{
	struct evbuffer *out = bufferevent_get_output(cl->c);
	uint8_t hdr[5];
	size_t len = 4 + 1 + 6 + 1 + 6 + 1 + strlen(code) + 1 + 1 + strlen(msg) + 1 + 1;

	if (hint != NULL)
		len += 1 + strlen(hint) + 1;
	hdr[0] = 'E';
	hdr[1] = (uint8_t)(len >> 24);
	hdr[2] = (uint8_t)(len >> 16);
	hdr[3] = (uint8_t)(len >> 8);
	hdr[4] = (uint8_t)len;
	evbuffer_add(out, hdr, 5);
	evbuffer_add(out, "SFATAL", 7);
	evbuffer_add(out, "VFATAL", 7);
	evbuffer_add(out, "C", 1);
	evbuffer_add(out, code, strlen(code) + 1);
	evbuffer_add(out, "M", 1);
	evbuffer_add(out, msg, strlen(msg) + 1);
	if (hint != NULL) {
		evbuffer_add(out, "H", 1);
		evbuffer_add(out, hint, strlen(hint) + 1);
	}
	evbuffer_add(out, "", 1);
	snprintf(cl->reason, sizeof(cl->reason), "%s %s", code, msg);
	cl->phase = P_CLOSING;
	bufferevent_disable(cl->c, EV_READ);
	clock_gettime(CLOCK_MONOTONIC, &cl->close_by);
	cl->close_by.tv_sec += 5; /* a client that never reads its error is dropped after that */
	closing_check(cl);
}

/* Bytes still owed to the client: with TLS some sit in the socket bufferevent under the filter. */
static size_t pending(struct client *cl)
{
	struct bufferevent *under = bufferevent_get_underlying(cl->c);
	size_t n = evbuffer_get_length(bufferevent_get_output(cl->c));

	if (under != NULL)
		n += evbuffer_get_length(bufferevent_get_output(under));
	return n;
}

/* Frees a closing client once everything it is owed went out, or at its deadline. */
static void closing_check(struct client *cl)
{
	struct timeval tick = { 0, 20 * 1000 };
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (pending(cl) == 0 || now.tv_sec > cl->close_by.tv_sec) {
		client_free(cl);
		return;
	}
	evtimer_add(cl->timer, &tick);
}

static void close_quietly(struct client *cl, const char *why)
{
	snprintf(cl->reason, sizeof(cl->reason), "%s", why);
	client_free(cl);
}

/* ---- lifecycle ---- */

static void client_free(struct client *cl)
{
	struct rift_router *r = cl->r;
	struct timespec now;

	if (cl->worker_busy) { /* the start thread still owns a pointer: free when it reports */
		cl->freed_later = true;
		cl->phase = P_CLOSING;
		if (cl->c != NULL)
			bufferevent_disable(cl->c, EV_READ | EV_WRITE);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (cl->fd[SIDE_CLIENT] >= 0) { /* what the kernel relayed since the splice */
		uint64_t rc, qc, rs, qs;
		if (rift_splice_counters(cl->fd[SIDE_CLIENT], &rc, &qc) == 0 &&
		    rift_splice_counters(cl->fd[SIDE_SERVER], &rs, &qs) == 0) {
			cl->in_bytes += rc - cl->recv0[SIDE_CLIENT];
			cl->out_bytes += rs - cl->recv0[SIDE_SERVER];
		}
	}
	if (cl->routed) {
		LOG("%s branch %s closed (%s) after %.1f s, %llu bytes in, %llu out%s\n", cl->peer,
		    cl->branch, cl->reason[0] ? cl->reason : "done",
		    (double)(now.tv_sec - cl->t0.tv_sec) + (now.tv_nsec - cl->t0.tv_nsec) / 1e9,
		    (unsigned long long)cl->in_bytes, (unsigned long long)cl->out_bytes,
		    cl->fd[SIDE_CLIENT] >= 0 ? ", kernel-spliced" : "");
		rift_manager_touch(r->m, cl->branch, -1);
	}
	if (cl->key != NULL)
		cl->key->port = 0;
	if (cl->prev != NULL)
		cl->prev->next = cl->next;
	else
		r->all = cl->next;
	if (cl->next != NULL)
		cl->next->prev = cl->prev;
	if (cl->c != NULL)
		bufferevent_free(cl->c);
	if (cl->s != NULL)
		bufferevent_free(cl->s);
	if (cl->fd[SIDE_CLIENT] >= 0)
		close(cl->fd[SIDE_CLIENT]); /* closing also unjoins the pair */
	if (cl->fd[SIDE_SERVER] >= 0)
		close(cl->fd[SIDE_SERVER]);
	if (cl->timer != NULL)
		event_free(cl->timer);
	if (cl->started != NULL)
		event_free(cl->started);
	free(cl->startup);
	r->clients--;
	free(cl);
}

static void on_client_write(struct bufferevent *bev, void *arg);
static void on_client_read(struct bufferevent *bev, void *arg);
static void on_client_event(struct bufferevent *bev, short what, void *arg);
static void on_server_read(struct bufferevent *bev, void *arg);
static void on_server_write(struct bufferevent *bev, void *arg);
static void on_server_event(struct bufferevent *bev, short what, void *arg);

static void splice_progress(struct client *cl);

static void on_login_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct client *cl = arg;

	(void)fd;
	(void)what;
	if (cl->phase == P_STARTUP)
		close_quietly(cl, "login timeout: no startup packet");
	else if (cl->phase == P_CLOSING)
		closing_check(cl);
	else if (cl->phase == P_SPLICED)
		splice_progress(cl);
}

/* ---- TLS ---- */

static void start_tls(struct client *cl)
{
	SSL *ssl = SSL_new(cl->r->ssl);
	struct bufferevent *tls;

	if (ssl == NULL) {
		close_quietly(cl, "cannot allocate TLS state");
		return;
	}
	tls = bufferevent_openssl_filter_new(cl->r->base, cl->c, ssl, BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (tls == NULL) {
		SSL_free(ssl);
		close_quietly(cl, "cannot start TLS");
		return;
	}
	cl->c = tls;
	cl->tls = true;
	bufferevent_setcb(cl->c, on_client_read, on_client_write, on_client_event, cl);
	bufferevent_enable(cl->c, EV_READ | EV_WRITE);
}

/* ---- cancel ---- */

static void on_cancel_sent(struct bufferevent *bev, void *arg)
{
	(void)arg;
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_free(bev);
}

static void on_cancel_event(struct bufferevent *bev, short what, void *arg)
{
	(void)arg;
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF | BEV_EVENT_TIMEOUT))
		bufferevent_free(bev);
}

/* Forwards a CancelRequest to the server that issued the key; no reply either way. */
static void forward_cancel(struct client *cl, const struct rift_startup *st, const uint8_t *raw)
{
	struct rift_router *r = cl->r;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct timeval tv = { 5, 0 };
	struct bufferevent *bev;
	size_t i;

	for (i = 0; i < MAX_CANCEL; i++) {
		struct cancel_key *k = &r->cancels[i];
		if (k->port == 0 || k->pid != st->cancel_pid || k->keylen != st->cancel_key_len ||
		    memcmp(k->key, st->cancel_key, k->keylen) != 0)
			continue;
		sa.sin_port = htons((uint16_t)k->port);
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		bev = bufferevent_socket_new(r->base, -1, BEV_OPT_CLOSE_ON_FREE);
		if (bev == NULL)
			break;
		bufferevent_setcb(bev, NULL, on_cancel_sent, on_cancel_event, NULL);
		bufferevent_set_timeouts(bev, &tv, &tv);
		bufferevent_write(bev, raw, st->length);
		if (bufferevent_socket_connect(bev, (struct sockaddr *)&sa, sizeof(sa)) != 0)
			bufferevent_free(bev);
		LOG("%s cancel forwarded to server port %d\n", cl->peer, k->port);
		break;
	}
	close_quietly(cl, "cancel request");
}

/* ---- routing ---- */

static void connect_server(struct client *cl)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int one = 1;

	sa.sin_port = htons((uint16_t)cl->port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cl->s = bufferevent_socket_new(cl->r->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (cl->s == NULL) {
		fatal(cl, "08006", "rift could not connect to the branch's server", NULL);
		return;
	}
	bufferevent_setcb(cl->s, on_server_read, on_server_write, on_server_event, cl);
	cl->phase = P_CONNECTING;
	if (bufferevent_socket_connect(cl->s, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		fatal(cl, "08006", "rift could not connect to the branch's server", NULL);
		return;
	}
	setsockopt(bufferevent_getfd(cl->s), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

struct start_job {
	struct client *cl;
	struct rift_manager *m;
	struct rift_router *r;
};

static void *start_worker(void *arg)
{
	struct start_job *job = arg;
	struct client *cl = job->cl;
	struct rift_branch_view v;

	cl->start_status =
	    rift_manager_start(job->m, cl->branch, &v, cl->start_err, sizeof(cl->start_err));
	cl->port = cl->start_status == RIFT_OK ? v.port : 0;
	event_active(cl->started, 0, 0);       /* back to the loop thread */
	atomic_fetch_sub(&job->r->workers, 1); /* after this, cl is not touched here */
	free(job);
	return NULL;
}

static void on_started(evutil_socket_t fd, short what, void *arg)
{
	struct client *cl = arg;

	(void)fd;
	(void)what;
	cl->worker_busy = false;
	cl->r->starting--;
	if (cl->freed_later) {
		client_free(cl);
		return;
	}
	if (cl->start_status != RIFT_OK) {
		char msg[768];
		snprintf(msg, sizeof(msg), "branch \"%s\" could not be started: %s", cl->branch,
			 cl->start_err);
		fatal(cl, "57P03", msg,
		      "rift status and the branch's log under <state>/log say more");
		return;
	}
	connect_server(cl);
}

static void route(struct client *cl, const struct rift_startup *st)
{
	struct rift_router *r = cl->r;
	const char *user = rift_startup_get(st, "user");
	const char *dbname = rift_startup_get(st, "database");
	const struct rift_base_meta *meta = rift_manager_base(r->m);
	struct rift_branch_view v;
	char msg[512], err[512];
	pthread_t t;
	struct start_job *job;

	if (user == NULL || user[0] == '\0') {
		fatal(cl, "28000", "no PostgreSQL user name specified in startup packet", NULL);
		return;
	}
	if (dbname == NULL || dbname[0] == '\0')
		dbname = user;
	if (rift_route_split(dbname, cl->branch, sizeof(cl->branch), cl->db, sizeof(cl->db)) != 0 ||
	    rift_branch_name_check(cl->branch) != RIFT_NAME_OK) {
		snprintf(msg, sizeof(msg), "database \"%.200s\" does not exist", dbname);
		fatal(cl, "3D000", msg,
		      "rift routes dbname=<branch> or <database>@<branch>; `rift list` shows the "
		      "branches");
		return;
	}
	if (rift_manager_get(r->m, cl->branch, &v, err, sizeof(err)) != RIFT_OK) {
		snprintf(msg, sizeof(msg),
			 "database \"%s\" does not exist: rift has no branch \"%s\"", dbname,
			 cl->branch);
		fatal(cl, "3D000", msg,
		      "`rift list` shows the branches; `rift create NAME` makes one");
		return;
	}
	if (cl->db[0] == '\0')
		snprintf(cl->db, sizeof(cl->db), "%s",
			 meta->default_db[0] ? meta->default_db : user);
	cl->startup = malloc(RIFT_STARTUP_MAX);
	cl->startup_len =
	    cl->startup ? rift_startup_build(st, cl->db, cl->startup, RIFT_STARTUP_MAX) : 0;
	if (cl->startup_len == 0) {
		fatal(cl, "08P01", "the startup packet is too large once rewritten", NULL);
		return;
	}
	cl->routed = true;
	rift_manager_touch(r->m, cl->branch, +1);
	LOG("%s user %s routed to branch %s database %s%s\n", cl->peer, user, cl->branch, cl->db,
	    v.running ? "" : " (starting it)");
	if (v.running && v.port > 0) {
		cl->port = v.port;
		connect_server(cl);
		return;
	}
	if (r->starting >= MAX_STARTING) {
		fatal(cl, "53300", "too many clients are waiting for branches to start", NULL);
		return;
	}
	/* Starting takes a while (mount, recovery): off the loop, single-flight in the manager. */
	cl->phase = P_STARTING;
	cl->started = event_new(r->base, -1, 0, on_started, cl);
	job = malloc(sizeof(*job));
	if (cl->started == NULL || job == NULL) {
		free(job);
		fatal(cl, "53200", "out of memory", NULL);
		return;
	}
	job->cl = cl;
	job->m = r->m;
	job->r = r;
	cl->worker_busy = true;
	r->starting++;
	atomic_fetch_add(&r->workers, 1);
	if (pthread_create(&t, NULL, start_worker, job) != 0) {
		atomic_fetch_sub(&r->workers, 1);
		cl->worker_busy = false;
		r->starting--;
		free(job);
		fatal(cl, "53000", "cannot start a thread to start the branch", NULL);
		return;
	}
	pthread_detach(t);
}

/* ---- reading the client ---- */

static void startup_phase(struct client *cl)
{
	struct evbuffer *in = bufferevent_get_input(cl->c);
	size_t avail = evbuffer_get_length(in);
	struct rift_startup st;
	uint8_t *raw;

	if (avail == 0)
		return;
	/* Direct TLS (PG 17 sslnegotiation=direct): a TLS ClientHello instead of a packet. */
	if (!cl->tls && !cl->ssl_seen && cl->r->ssl != NULL) {
		uint8_t first;
		evbuffer_copyout(in, &first, 1);
		if (first == 0x16) {
			cl->ssl_seen = true;
			cl->direct_tls = true;
			start_tls(cl);
			return;
		}
	}
	raw =
	    evbuffer_pullup(in, (ev_ssize_t)(avail < RIFT_STARTUP_MAX ? avail : RIFT_STARTUP_MAX));
	rift_startup_parse(raw, avail < RIFT_STARTUP_MAX ? avail : RIFT_STARTUP_MAX, &st);
	switch (st.kind) {
	case RIFT_STARTUP_NEED_MORE:
		return;
	case RIFT_STARTUP_INVALID:
		fatal(cl, "08P01", st.reason, NULL);
		return;
	case RIFT_STARTUP_SSL:
		evbuffer_drain(in, 8);
		if (cl->ssl_seen || cl->tls) {
			fatal(cl, "08P01", "duplicate SSLRequest", NULL);
			return;
		}
		cl->ssl_seen = true;
		/* Bytes after an SSLRequest would be read as if they came over TLS: an attack. */
		if (evbuffer_get_length(in) > 0) {
			close_quietly(cl, "data pipelined after SSLRequest");
			return;
		}
		if (cl->r->ssl == NULL) {
			bufferevent_write(cl->c, "N", 1);
			return;
		}
		bufferevent_write(cl->c, "S", 1);
		bufferevent_flush(cl->c, EV_WRITE, BEV_FLUSH);
		start_tls(cl);
		return;
	case RIFT_STARTUP_GSSENC:
		evbuffer_drain(in, 8);
		if (cl->tls || cl->gss_seen) {
			close_quietly(cl, "GSSENCRequest after encryption was negotiated");
			return;
		}
		cl->gss_seen = true;
		bufferevent_write(cl->c, "N", 1);
		if (evbuffer_get_length(in) > 0)
			startup_phase(cl);
		return;
	case RIFT_STARTUP_CANCEL: {
		uint8_t copy[12 + RIFT_CANCEL_KEY_MAX];
		memcpy(copy, raw, st.length);
		rift_startup_parse(copy, st.length, &st);
		evbuffer_drain(in, st.length);
		forward_cancel(cl, &st, copy);
		return;
	}
	case RIFT_STARTUP_MESSAGE:
		if (cl->r->clients > cl->r->max_clients) {
			fatal(cl, "53300", "sorry, too many clients already",
			      "raise [router] max_clients in rift.conf");
			return;
		}
		bufferevent_disable(cl->c, EV_READ); /* nothing more until the server answers */
		route(cl, &st);
		if (cl->phase != P_CLOSING)
			evbuffer_drain(in, st.length);
		return;
	}
}

/* Moves what src has to dst, pausing src while dst owes too much (backpressure). */
static void pump(struct bufferevent *src, struct bufferevent *dst, uint64_t *count)
{
	struct evbuffer *in = bufferevent_get_input(src), *out = bufferevent_get_output(dst);

	*count += evbuffer_get_length(in);
	evbuffer_add_buffer(out, in);
	if (evbuffer_get_length(out) >= RELAY_HIGH)
		bufferevent_disable(src, EV_READ);
}

static void on_client_read(struct bufferevent *bev, void *arg)
{
	struct client *cl = arg;

	(void)bev;
	if (cl->phase == P_STARTUP)
		startup_phase(cl);
	else if ((cl->phase == P_WATCH || cl->phase == P_RELAY) && cl->s != NULL)
		pump(cl->c, cl->s, &cl->in_bytes);
}

static void on_client_write(struct bufferevent *bev, void *arg)
{
	struct client *cl = arg;

	if (cl->phase == P_CLOSING) {
		if (!cl->worker_busy)
			closing_check(cl);
		return;
	}
	if (cl->s != NULL && evbuffer_get_length(bufferevent_get_output(bev)) < RELAY_HIGH / 2)
		bufferevent_enable(cl->s, EV_READ);
}

static void on_client_event(struct bufferevent *bev, short what, void *arg)
{
	struct client *cl = arg;

	if (what & BEV_EVENT_CONNECTED) {
		/* direct TLS must name the protocol, so a TLS connection meant for another service
		 * is never taken for Postgres (the ALPN-confusion attacks) */
		const unsigned char *alpn = NULL;
		unsigned alpn_len = 0;
		SSL *ssl = bufferevent_openssl_get_ssl(bev);
		if (cl->direct_tls && ssl != NULL) {
			SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
			if (alpn_len == 0)
				close_quietly(cl, "direct TLS without ALPN \"postgresql\"");
		}
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		if (cl->phase == P_STARTUP && cl->tls && (what & BEV_EVENT_ERROR))
			close_quietly(cl, "TLS handshake failed");
		else
			close_quietly(cl,
				      (what & BEV_EVENT_EOF) ? "client closed" : "client error");
	}
}

/* ---- kernel splicing (see splice.h) ---- */

/* Moves what already sits in from's receive queue to to, now; false if to could not take it. */
static bool move_queued(int from, int to, uint64_t *count)
{
	uint8_t buf[16384];
	int inq = 0, guard;

	for (guard = 0; guard < 64 && ioctl(from, FIONREAD, &inq) == 0 && inq > 0; guard++) {
		ssize_t n = recv(from, buf, sizeof(buf), MSG_DONTWAIT), off = 0;
		if (n <= 0)
			return n == 0 || errno == EAGAIN;
		while (off < n) {
			ssize_t w =
			    send(to, buf + off, (size_t)(n - off), MSG_DONTWAIT | MSG_NOSIGNAL);
			if (w <= 0)
				return false;
			off += w;
		}
		*count += (uint64_t)n;
	}
	return true;
}

/* Takes the socket out of a bufferevent without closing it. */
static int take_fd(struct bufferevent **bev)
{
	int fd = bufferevent_getfd(*bev);

	bufferevent_setfd(*bev, -1);
	bufferevent_free(*bev);
	*bev = NULL;
	return fd;
}

/*
 * After login, hands a plaintext connection's relaying to the kernel. Called when the server's
 * first ReadyForQuery was just queued for the client: the server now waits for the client, and
 * the client sends nothing before it reads that message, so no byte is in flight while the
 * sockets are joined; the message is written only after the join. When joining is refused the
 * connection stays relayed by the loop.
 */
static void try_splice(struct client *cl)
{
	struct rift_router *r = cl->r;
	struct evbuffer *replies, *pending_out;
	int cfd = bufferevent_getfd(cl->c), sfd = bufferevent_getfd(cl->s);
	int inq_c = 0, inq_s = 0, rc, i;
	uint64_t queued_c = 0;
	const char *fail = NULL;

	if (r->splice == NULL || cl->tls ||
	    evbuffer_get_length(bufferevent_get_input(cl->c)) != 0 ||
	    evbuffer_get_length(bufferevent_get_output(cl->s)) != 0 ||
	    evbuffer_get_length(bufferevent_get_input(cl->s)) != 0 ||
	    ioctl(cfd, FIONREAD, &inq_c) != 0 || ioctl(sfd, FIONREAD, &inq_s) != 0 || inq_c != 0 ||
	    inq_s != 0)
		return;
	replies = evbuffer_new();
	if (replies == NULL)
		return;
	rc = rift_splice_join(r->splice, cfd, sfd);
	if (rc != 0) {
		LOG("%s not spliced (%s); relaying it here\n", cl->peer, strerror(-rc));
		evbuffer_free(replies);
		return;
	}
	/* copied, not moved: libevent keeps a socket bufferevent's output frozen at its start */
	pending_out = bufferevent_get_output(cl->c);
	if (evbuffer_get_length(pending_out) > 0 &&
	    evbuffer_add(replies, evbuffer_pullup(pending_out, -1),
			 evbuffer_get_length(pending_out)) != 0) {
		fail = "out of memory";
		goto out;
	}
	cl->fd[SIDE_CLIENT] = take_fd(&cl->c);
	cl->fd[SIDE_SERVER] = take_fd(&cl->s);
	cl->phase = P_SPLICED;
	/* a client that sent before it was answered: its bytes stayed queued, pass them on */
	if (!move_queued(cfd, sfd, &cl->in_bytes) || !move_queued(sfd, cfd, &cl->out_bytes) ||
	    rift_splice_counters(cfd, &cl->recv0[SIDE_CLIENT], &queued_c) != 0 ||
	    rift_splice_counters(sfd, &cl->recv0[SIDE_SERVER], &cl->sent0[SIDE_SERVER]) != 0) {
		fail = "could not hand the connection to the kernel";
		goto out;
	}
	while (evbuffer_get_length(replies) > 0) {
		int n = evbuffer_write(replies, cfd);
		if (n <= 0)
			break;
		queued_c += (uint64_t)n;
	}
	cl->sent0[SIDE_CLIENT] = queued_c;
	if (evbuffer_get_length(replies) > 0) {
		fail = "client did not read its login replies";
		goto out;
	}
	for (i = 0; i < 2; i++) {
		/* hang-ups only: waking for every byte the kernel moves would undo the point */
		struct epoll_event ev = { .events = EPOLLRDHUP,
					  .data.u64 = (uintptr_t)cl | (unsigned)i };
		if (epoll_ctl(r->splice_ep, EPOLL_CTL_ADD, cl->fd[i], &ev) != 0) {
			fail = "cannot watch a spliced connection";
			goto out;
		}
	}
out:
	evbuffer_free(replies);
	if (fail != NULL)
		close_quietly(cl, fail);
}

/*
 * A side of a spliced pair hung up. The kernel may still hold bytes it received before the
 * hang-up and has not sent on yet (a Terminate message, a final error), so the other side is
 * shut down or closed only once its send totals caught up with the hung-up side's receive
 * totals, or after five seconds.
 */
static void splice_progress(struct client *cl)
{
	struct timeval tick = { 0, 2000 };
	struct timespec now;
	uint64_t rc, qc, rs, qs;
	bool expired, to_server_done, to_client_done;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!cl->hangup_seen) {
		cl->hangup_seen = true;
		cl->close_by = now;
		cl->close_by.tv_sec += 5;
		snprintf(cl->reason, sizeof(cl->reason), "%s",
			 cl->eof[SIDE_CLIENT] ? "client closed" : "server closed");
	}
	expired = now.tv_sec > cl->close_by.tv_sec ||
		  (now.tv_sec == cl->close_by.tv_sec && now.tv_nsec >= cl->close_by.tv_nsec);
	if (rift_splice_counters(cl->fd[SIDE_CLIENT], &rc, &qc) != 0 ||
	    rift_splice_counters(cl->fd[SIDE_SERVER], &rs, &qs) != 0) {
		client_free(cl);
		return;
	}
	to_server_done = qs - cl->sent0[SIDE_SERVER] >= rc - cl->recv0[SIDE_CLIENT];
	to_client_done = qc - cl->sent0[SIDE_CLIENT] >= rs - cl->recv0[SIDE_SERVER];
	if (cl->eof[SIDE_CLIENT] && !cl->server_shut && (to_server_done || expired)) {
		shutdown(cl->fd[SIDE_SERVER], SHUT_WR); /* the server ends the session on EOF */
		cl->server_shut = true;
	}
	/* a client that is gone needs nothing more: the server's last bytes have nowhere to go */
	if ((cl->eof[SIDE_SERVER] && (to_client_done || cl->eof[SIDE_CLIENT] || expired)) ||
	    (cl->eof[SIDE_CLIENT] && expired)) {
		client_free(cl);
		return;
	}
	evtimer_add(cl->timer, &tick);
}

static struct client *event_client(const struct epoll_event *ev)
{
	return (struct client *)(uintptr_t)(ev->data.u64 & ~(uint64_t)1);
}

static void on_splice_hangup(evutil_socket_t fd, short what, void *arg)
{
	struct rift_router *r = arg;
	struct epoll_event evs[64];
	int n, i, j;

	(void)what;
	n = epoll_wait(fd, evs, 64, 0);
	for (i = 0; i < n; i++) {
		struct client *cl = event_client(&evs[i]);
		int side = (int)(evs[i].data.u64 & 1);
		cl->eof[side] = true;
		epoll_ctl(r->splice_ep, EPOLL_CTL_DEL, cl->fd[side], NULL);
	}
	/* once per client: progress may free it, and both its sides may be in this batch */
	for (i = 0; i < n; i++) {
		for (j = 0; j < i && event_client(&evs[j]) != event_client(&evs[i]); j++)
			;
		if (j == i)
			splice_progress(event_client(&evs[i]));
	}
}

/* ---- reading the server ---- */

/* Until the first ReadyForQuery, watch for BackendKeyData to route CancelRequests later. */
static void watch_keys(struct client *cl)
{
	struct evbuffer *in = bufferevent_get_input(cl->s);
	size_t off = 0, avail = evbuffer_get_length(in);

	while (cl->phase == P_WATCH && avail - off >= 5) {
		uint8_t hdr[5];
		uint32_t len;
		struct evbuffer_ptr pos;
		evbuffer_ptr_set(in, &pos, off, EVBUFFER_PTR_SET);
		evbuffer_copyout_from(in, &pos, hdr, 5);
		len = ((uint32_t)hdr[1] << 24) | ((uint32_t)hdr[2] << 16) |
		      ((uint32_t)hdr[3] << 8) | hdr[4];
		if (len < 4 || avail - off < 1 + (size_t)len)
			break;
		if (hdr[0] == 'K' && len >= 8 && len - 8 <= RIFT_CANCEL_KEY_MAX) {
			uint8_t body[4 + RIFT_CANCEL_KEY_MAX];
			size_t i;
			evbuffer_ptr_set(in, &pos, off + 5, EVBUFFER_PTR_SET);
			evbuffer_copyout_from(in, &pos, body, len - 4);
			for (i = 0; i < MAX_CANCEL && cl->r->cancels[i].port != 0; i++)
				;
			if (i < MAX_CANCEL) {
				struct cancel_key *k = &cl->r->cancels[i];
				k->pid = ((uint32_t)body[0] << 24) | ((uint32_t)body[1] << 16) |
					 ((uint32_t)body[2] << 8) | body[3];
				k->keylen = len - 8;
				memcpy(k->key, body + 4, k->keylen);
				k->port = cl->port;
				cl->key = k;
			}
		} else if (hdr[0] == 'Z') {
			cl->phase = P_RELAY;
		}
		off += 1 + len;
	}
}

static void on_server_read(struct bufferevent *bev, void *arg)
{
	struct client *cl = arg;

	(void)bev;
	if (cl->phase == P_WATCH) {
		watch_keys(cl);
		pump(cl->s, cl->c, &cl->out_bytes);
		if (cl->phase == P_RELAY)
			try_splice(cl);
		return;
	}
	pump(cl->s, cl->c, &cl->out_bytes);
}

static void on_server_write(struct bufferevent *bev, void *arg)
{
	struct client *cl = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) < RELAY_HIGH / 2)
		bufferevent_enable(cl->c, EV_READ);
}

static void on_server_event(struct bufferevent *bev, short what, void *arg)
{
	struct client *cl = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		cl->phase = P_WATCH;
		evtimer_del(cl->timer);
		bufferevent_setwatermark(cl->c, EV_READ, 0, 0);
		bufferevent_write(cl->s, cl->startup, cl->startup_len);
		bufferevent_enable(cl->s, EV_READ | EV_WRITE);
		bufferevent_enable(cl->c, EV_READ | EV_WRITE);
		return;
	}
	if (cl->phase == P_CONNECTING) {
		fatal(cl, "08006", "rift could not reach the branch's server (it may have stopped)",
		      "retry; `rift status` shows the branch");
		return;
	}
	/* The server hung up: let the client read what it sent, then close. */
	if (cl->s != NULL)
		pump(cl->s, cl->c, &cl->out_bytes);
	bufferevent_free(cl->s);
	cl->s = NULL;
	snprintf(cl->reason, sizeof(cl->reason), "server closed");
	cl->phase = P_CLOSING;
	clock_gettime(CLOCK_MONOTONIC, &cl->close_by);
	cl->close_by.tv_sec += 5;
	closing_check(cl);
}

/* ---- accepting ---- */

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	struct rift_router *r = arg;
	struct client *cl = calloc(1, sizeof(*cl));
	struct timeval login = { r->login_timeout_s, 0 };
	char host[INET6_ADDRSTRLEN] = "?", port[8] = "?";
	int one = 1;

	(void)l;
	if (cl == NULL) {
		close(fd);
		return;
	}
	getnameinfo(sa, (socklen_t)salen, host, sizeof(host), port, sizeof(port),
		    NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(cl->peer, sizeof(cl->peer), "%s:%s", host, port);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	cl->r = r;
	cl->fd[SIDE_CLIENT] = cl->fd[SIDE_SERVER] = -1;
	clock_gettime(CLOCK_MONOTONIC, &cl->t0);
	r->clients++;
	cl->next = r->all;
	if (r->all != NULL)
		r->all->prev = cl;
	r->all = cl;
	cl->c = bufferevent_socket_new(r->base, fd, BEV_OPT_CLOSE_ON_FREE);
	cl->timer = evtimer_new(r->base, on_login_timeout, cl);
	if (cl->c == NULL || cl->timer == NULL) {
		if (cl->c == NULL)
			close(fd);
		client_free(cl);
		return;
	}
	/* bound what a client may send before it is routed: one startup packet */
	bufferevent_setwatermark(cl->c, EV_READ, 0, RIFT_STARTUP_MAX + 16);
	bufferevent_setcb(cl->c, on_client_read, on_client_write, on_client_event, cl);
	bufferevent_enable(cl->c, EV_READ | EV_WRITE);
	evtimer_add(cl->timer, &login);
}

static void *loop_main(void *arg)
{
	struct rift_router *r = arg;

	event_base_dispatch(r->base);
	return NULL;
}

static int add_listener(struct rift_router *r, const char *host, const char *port, int family,
			char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_family = family,
				  .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV },
			*res = NULL, *ai;
	int rc = getaddrinfo(host, port, &hints, &res);

	if (rc != 0) {
		snprintf(err, errlen, "[router] listen: cannot resolve %s: %s", host ? host : "*",
			 gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL && r->nlisteners < MAX_LISTENERS; ai = ai->ai_next) {
		struct evconnlistener *l;
		l = evconnlistener_new_bind(r->base, on_accept, r,
					    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
						LEV_OPT_CLOSE_ON_EXEC,
					    512, ai->ai_addr, (int)ai->ai_addrlen);
		if (l == NULL) {
			snprintf(
			    err, errlen,
			    "the router cannot listen on %s:%s: %s (is another rift or pgbouncer "
			    "on that port? change [router] listen in rift.conf)",
			    host ? host : "*", port, strerror(errno));
			freeaddrinfo(res);
			return -1;
		}
		r->listeners[r->nlisteners++] = l;
		if (family == AF_UNSPEC)
			break;
	}
	freeaddrinfo(res);
	return 0;
}

/* Kernel splicing when the kernel allows it; its absence is not an error, only slower. */
static int start_splicing(struct rift_router *r, int max_clients)
{
	char why[512];

	r->splice = rift_splice_open((unsigned)max_clients + 16, why, sizeof(why));
	if (r->splice == NULL) {
		LOG("kernel splicing is unavailable (%s); relaying every byte in riftd\n", why);
		return 0;
	}
	r->splice_ep = epoll_create1(EPOLL_CLOEXEC);
	if (r->splice_ep < 0)
		return -1;
	r->splice_ev = event_new(r->base, r->splice_ep, EV_READ | EV_PERSIST, on_splice_hangup, r);
	if (r->splice_ev == NULL || event_add(r->splice_ev, NULL) != 0)
		return -1;
	LOG("plaintext connections are spliced in the kernel after login\n");
	return 0;
}

int rift_router_start(struct rift_manager *m, const char *state, struct rift_router **out,
		      char *err, size_t errlen)
{
	const struct rift_config *cfg = rift_manager_config(m);
	struct rift_router *r = calloc(1, sizeof(*r));
	char host[256], cert[4200], key[4200];
	const char *colon = strrchr(cfg->router_listen, ':');
	size_t hl;

	*out = NULL;
	if (r == NULL)
		return -ENOMEM;
	r->m = m;
	r->splice_ep = -1;
	r->max_clients = cfg->max_clients;
	r->login_timeout_s = cfg->login_timeout_s;
	evthread_use_pthreads();
	r->base = event_base_new();
	if (r->base == NULL || colon == NULL) {
		snprintf(err, errlen, "[router] listen = %s: expected host:port",
			 cfg->router_listen);
		goto fail;
	}
	hl = (size_t)(colon - cfg->router_listen);
	if (hl >= sizeof(host))
		goto fail;
	memcpy(host, cfg->router_listen, hl);
	host[hl] = '\0';
	if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') { /* [::1]:6432 */
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	if (strcmp(host, "*") == 0) {
		if (add_listener(r, "0.0.0.0", colon + 1, AF_INET, err, errlen) != 0 ||
		    add_listener(r, "::", colon + 1, AF_INET6, err, errlen) != 0)
			goto fail;
	} else if (add_listener(r, host, colon + 1, AF_UNSPEC, err, errlen) != 0) {
		goto fail;
	}
	snprintf(cert, sizeof(cert), "%s", cfg->tls_cert);
	snprintf(key, sizeof(key), "%s", cfg->tls_key);
	if (cert[0] == '\0')
		snprintf(cert, sizeof(cert), "%.3000s/tls/server.crt", state);
	if (key[0] == '\0')
		snprintf(key, sizeof(key), "%.3000s/tls/server.key", state);
	if (access(cert, R_OK) == 0 || cfg->tls_cert[0] != '\0') {
		r->ssl = rift_tls_server_ctx(cert, key, err, errlen);
		if (r->ssl == NULL)
			goto fail;
	}
	if (cfg->kernel_splice && start_splicing(r, cfg->max_clients) != 0) {
		snprintf(err, errlen, "cannot watch spliced connections: %s", strerror(errno));
		goto fail;
	}
	if (pthread_create(&r->thread, NULL, loop_main, r) != 0) {
		snprintf(err, errlen, "cannot start the router thread");
		goto fail;
	}
	r->thread_started = true;
	*out = r;
	return 0;
fail:
	rift_router_stop(r);
	return -EIO;
}

void rift_router_stop(struct rift_router *r)
{
	size_t i;

	if (r == NULL)
		return;
	if (r->thread_started) {
		event_base_loopbreak(r->base);
		pthread_join(r->thread, NULL);
	}
	while (atomic_load(&r->workers) > 0) { /* start threads finish within start_timeout */
		struct timespec tick = { 0, 20 * 1000 * 1000 };
		nanosleep(&tick, NULL);
	}
	while (r->all != NULL) {
		r->all->worker_busy = false;
		client_free(r->all);
	}
	for (i = 0; i < r->nlisteners; i++)
		evconnlistener_free(r->listeners[i]);
	if (r->splice_ev != NULL)
		event_free(r->splice_ev);
	if (r->splice_ep >= 0)
		close(r->splice_ep);
	rift_splice_close(r->splice);
	if (r->base != NULL)
		event_base_free(r->base);
	SSL_CTX_free(r->ssl);
	free(r);
}
