/* router.c — routes Postgres clients to branch servers and relays their bytes (libevent). */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rift/branch_name.h"
#include "rift/pgwire.h"
#include "rift/tls.h"
#include "router_internal.h"

static void closing_check(struct client *cl);

double since_s(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (now.tv_nsec - t->tv_nsec) / 1e9;
}

/* ---- protocol answers ---- */

/* Sends FATAL ErrorResponse code/message (hint optional) and closes once it is written. */
void fatal(struct client *cl, const char *code, const char *msg, const char *hint)
{
	uint8_t buf[4096];
	size_t n = rift_pgw_fatal(buf, sizeof(buf), code, msg, hint);

	assert(n > 0); /* every string is cut at 1000 bytes, so it always fits */
	evbuffer_add(bufferevent_get_output(cl->c), buf, n);
	snprintf(cl->reason, sizeof(cl->reason), "%s %s", code, msg);
	set_phase(cl, P_CLOSING);
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

void close_quietly(struct client *cl, const char *why)
{
	snprintf(cl->reason, sizeof(cl->reason), "%s", why);
	client_free(cl);
}

/* ---- lifecycle ---- */

static void unstarted_unlink(struct client *cl)
{
	struct rift_router *r = cl->r;
	int w = cl->ulist;

	if (w < 0)
		return;
	if (cl->uprev != NULL)
		cl->uprev->unext = cl->unext;
	else
		r->unstarted_head[w] = cl->unext;
	if (cl->unext != NULL)
		cl->unext->uprev = cl->uprev;
	else
		r->unstarted_tail[w] = cl->uprev;
	cl->uprev = cl->unext = NULL;
	cl->ulist = -1;
	r->unstarted--;
	assert(r->unstarted >= 0);
}

/* Appends cl to list w (0 silent, 1 heard from): the heads are the oldest. */
static void unstarted_append(struct client *cl, int w)
{
	struct rift_router *r = cl->r;

	assert(cl->phase == P_STARTUP && (w == 0 || w == 1));
	unstarted_unlink(cl);
	cl->ulist = w;
	cl->uprev = r->unstarted_tail[w];
	if (cl->uprev != NULL)
		cl->uprev->unext = cl;
	else
		r->unstarted_head[w] = cl;
	r->unstarted_tail[w] = cl;
	r->unstarted++;
}

#ifndef NDEBUG
/* The phases a client may move to from each phase; anything else is a bug in the router. */
#define TO(p) (1u << (p))
static const unsigned phase_next[] = {
	[P_STARTUP] = TO(P_STARTING) | TO(P_CONNECTING) | TO(P_AUTH) | TO(P_AWAIT) | TO(P_RELAY) |
		      TO(P_CLOSING),
	[P_AWAIT] = TO(P_STARTING) | TO(P_CONNECTING) | TO(P_AUTH) | TO(P_AWAIT) | TO(P_RELAY) |
		    TO(P_CLOSING),
	[P_STARTING] = TO(P_CONNECTING) | TO(P_CLOSING),
	[P_CONNECTING] = TO(P_WATCH) | TO(P_CLOSING),
	[P_WATCH] = TO(P_RELAY) | TO(P_CLOSING),
	[P_AUTH] = TO(P_RELAY) | TO(P_STARTING) | TO(P_CLOSING),
	[P_RELAY] = TO(P_SPLICED) | TO(P_TLSRELAY) | TO(P_CLOSING),
	[P_SPLICED] = TO(P_CLOSING),
	[P_TLSRELAY] = TO(P_CLOSING),
	[P_CLOSING] = TO(P_CLOSING),
};
#undef TO
#endif

void set_phase(struct client *cl, enum phase p)
{
	assert((phase_next[cl->phase] & (1u << p)) != 0);
	if (cl->phase == P_STARTUP && p != P_STARTUP)
		unstarted_unlink(cl);
	cl->phase = p;
	assert(cl->ulist < 0 || cl->phase == P_STARTUP);
}

/*
 * Closes the oldest connection that has not sent its startup packet, preferring one that has
 * sent nothing at all: a real client sends its packet (or SSLRequest) within a round trip, so
 * it is never the oldest for long, while idle connections held open to fill the router are.
 * Returns false when there is none.
 */
static bool evict_unstarted(struct rift_router *r, const char *why)
{
	struct client *victim = r->unstarted_head[0] ? r->unstarted_head[0] : r->unstarted_head[1];

	if (victim == NULL)
		return false;
	r->evicted++;
	/* one line per 10 s at most: this is what an attack looks like, and it must not flood */
	if (r->evicted_logged == 0 || since_s(&r->evict_log_at) >= 10) {
		LOG_WARN("router",
			 "%lu connection(s) without a startup packet closed to make room (%s); the "
			 "latest from %s, open %.1f s",
			 r->evicted - r->evicted_logged, why, victim->peer, since_s(&victim->t0));
		r->evicted_logged = r->evicted;
		clock_gettime(CLOCK_MONOTONIC, &r->evict_log_at);
	}
	close_quietly(victim, "closed to make room: no startup packet yet");
	return true;
}

void client_free(struct client *cl)
{
	struct rift_router *r = cl->r;

	if (cl->worker_busy) { /* the start thread still owns a pointer: free when it reports */
		cl->freed_later = true;
		set_phase(cl, P_CLOSING);
		if (cl->c != NULL)
			bufferevent_disable(cl->c, EV_READ | EV_WRITE);
		return;
	}
	if (cl->fd[SIDE_CLIENT] >= 0) { /* what the kernel relayed since the splice */
		uint64_t rc, qc, rs, qs;
		if (rift_splice_counters(cl->fd[SIDE_CLIENT], &rc, &qc) == 0 &&
		    rift_splice_counters(cl->fd[SIDE_SERVER], &rs, &qs) == 0) {
			cl->in_bytes += rc - cl->recv0[SIDE_CLIENT];
			cl->out_bytes +=
			    cl->direct ? qc - cl->sent0[SIDE_CLIENT] : rs - cl->recv0[SIDE_SERVER];
		}
	}
	if (cl->routed) {
		LOG("%s branch %s closed (%s) after %.1f s, %llu bytes in, %llu out%s%s\n",
		    cl->peer, cl->branch, cl->reason[0] ? cl->reason : "done", since_s(&cl->t0),
		    (unsigned long long)cl->in_bytes, (unsigned long long)cl->out_bytes,
		    cl->reused ? ", reused server session" : "",
		    cl->pipe != NULL          ? ", TLS relayed by a relay thread"
		    : cl->fd[SIDE_CLIENT] < 0 ? ""
		    : cl->direct              ? ", kernel-spliced to the server's socket"
					      : ", kernel-spliced");
		rift_manager_touch(r->m, cl->branch, -1);
		r->closed.sessions[cl->fd[SIDE_CLIENT] >= 0]++;
		r->closed.bytes[cl->fd[SIDE_CLIENT] >= 0] += cl->in_bytes + cl->out_bytes;
	}
	unstarted_unlink(cl);
	if (cl->held != NULL)
		pool_unhold(cl);
	if (cl->awaiting != NULL)
		pool_unawait(cl);
	if (cl->key != NULL) { /* the slot is this client's alone: free it */
		assert(cl->key->port != 0);
		cl->key->port = 0;
	}
	if (cl->spill != NULL)
		evbuffer_free(cl->spill);
	if (cl->prev != NULL)
		cl->prev->next = cl->next;
	else
		r->all = cl->next;
	if (cl->next != NULL)
		cl->next->prev = cl->prev;
	if (cl->c != NULL)
		bufferevent_free(cl->c);
	if (cl->ssl != NULL) /* TLS on the socket: its bufferevent closes nothing */
		SSL_free(cl->ssl);
	if (cl->tls_fd >= 0)
		close(cl->tls_fd);
	tls_pipe_free(cl->pipe);
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
	/* the ClientKey a proof gave up logs in as the role: not left in freed memory */
	OPENSSL_cleanse(&cl->scram, sizeof(cl->scram));
	OPENSSL_cleanse(&cl->sc, sizeof(cl->sc));
	r->clients--;
	assert(r->clients >= 0 && r->unstarted <= r->clients);
	free(cl);
}

static void on_login_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct client *cl = arg;

	(void)fd;
	(void)what;
	if (cl->phase == P_STARTUP)
		close_quietly(cl, "login timeout: no startup packet");
	else if (cl->phase == P_AUTH)
		close_quietly(cl, "login timeout: no password");
	else if (cl->phase == P_CLOSING)
		closing_check(cl);
	else if (cl->phase == P_SPLICED)
		splice_progress(cl);
}

/*
 * A loopback TCP socket for a server connection (close-on-exec, unlike libevent's own). Out
 * of descriptors, a connection that has not sent its startup packet makes room: a client
 * already routed is worth more than one that may never speak.
 */
static int server_socket(struct rift_router *r)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0 && errno == EMFILE && r->spare_fd >= 0 &&
	    evict_unstarted(r, "out of file descriptors")) {
		/* libevent closes the evicted socket later in this turn of the loop: the spare
		 * descriptor stands in for it now, and is taken again once there is room */
		close(r->spare_fd);
		r->spare_fd = -1;
		fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	}
	return fd;
}

/* ---- TLS ---- */

static void start_tls(struct client *cl)
{
	SSL *ssl = SSL_new(cl->r->ssl);
	struct bufferevent *tls;
	struct evbuffer *in = bufferevent_get_input(cl->c), *out = bufferevent_get_output(cl->c);
	int fd = bufferevent_getfd(cl->c);

	if (ssl == NULL) {
		close_quietly(cl, "cannot allocate TLS state");
		return;
	}
	/* the 'S' (and a GSSENC 'N') go out before the first TLS byte; a bufferevent keeps the
	 * start of its output frozen to all but itself, so thaw it for this one write */
	if (evbuffer_unfreeze(out, 1) == 0) {
		while (evbuffer_get_length(out) > 0 && evbuffer_write(out, fd) > 0)
			;
		evbuffer_freeze(out, 1);
	}
	if (!cl->direct_tls && evbuffer_get_length(in) == 0 && evbuffer_get_length(out) == 0) {
		/* TLS straight on the socket: no filter's copies, and a logged-in session can leave
		 * for a relay thread with its socket and TLS state (router_tls_relay.c) */
		bufferevent_setfd(cl->c, -1);
		bufferevent_free(cl->c);
		cl->c = NULL;
		tls = bufferevent_openssl_socket_new(cl->r->base, fd, ssl,
						     BUFFEREVENT_SSL_ACCEPTING, 0);
		if (tls == NULL) {
			SSL_free(ssl);
			close(fd);
			close_quietly(cl, "cannot start TLS");
			return;
		}
		cl->ssl = ssl;
		cl->tls_fd = fd;
	} else { /* a direct-TLS ClientHello already read into the buffer: the filter reads it */
		tls = bufferevent_openssl_filter_new(
		    cl->r->base, cl->c, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		if (tls == NULL) {
			SSL_free(ssl);
			close_quietly(cl, "cannot start TLS");
			return;
		}
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
	int fd;

	for (i = 0; i < MAX_CANCEL; i++) {
		struct cancel_key *k = &r->cancels[i];
		if (k->port == 0 || k->pid != st->cancel_pid || k->keylen != st->cancel_key_len ||
		    memcmp(k->key, st->cancel_key, k->keylen) != 0)
			continue;
		uint8_t out[12 + RIFT_CANCEL_KEY_MAX];
		memcpy(out, raw, 12);
		memcpy(out + 12, k->skey, k->keylen); /* the server's key, not the one we issued */
		sa.sin_port = htons((uint16_t)k->port);
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fd = server_socket(r);
		if (fd < 0)
			break;
		bev = bufferevent_socket_new(r->base, fd, BEV_OPT_CLOSE_ON_FREE);
		if (bev == NULL) {
			close(fd);
			break;
		}
		bufferevent_setcb(bev, NULL, on_cancel_sent, on_cancel_event, NULL);
		bufferevent_set_timeouts(bev, &tv, &tv);
		bufferevent_write(bev, out, 12 + k->keylen);
		if (bufferevent_socket_connect(bev, (struct sockaddr *)&sa, sizeof(sa)) != 0)
			bufferevent_free(bev);
		LOG("%s cancel forwarded to server port %d\n", cl->peer, k->port);
		break;
	}
	close_quietly(cl, "cancel request");
}

/* ---- routing ---- */

void connect_server(struct client *cl)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int one = 1, fd = server_socket(cl->r);

	sa.sin_port = htons((uint16_t)cl->port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0) {
		char msg[256];
		snprintf(msg, sizeof(msg), "rift could not connect to the branch's server: %s",
			 strerror(errno));
		fatal(cl, "08006", msg, "riftd's log says whether it ran out of file descriptors");
		return;
	}
	cl->s = bufferevent_socket_new(cl->r->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (cl->s == NULL) {
		close(fd);
		fatal(cl, "08006", "rift could not connect to the branch's server", NULL);
		return;
	}
	bufferevent_setcb(cl->s, on_server_read, on_server_write, on_server_event, cl);
	set_phase(cl, P_CONNECTING);
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

	pthread_setname_np(pthread_self(), "router-start");
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
	assert(cl->r->starting >= 0);
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

void start_branch(struct client *cl)
{
	struct rift_router *r = cl->r;
	struct start_job *job;
	struct client *other;
	int same;
	pthread_t t;

	if (r->starting >= MAX_STARTING) {
		fatal(cl, "53300", "too many clients are waiting for branches to start", NULL);
		return;
	}
	/* one branch's waiters (a job hammering its own slow branch) never take every place */
	for (other = r->all, same = 0; other != NULL; other = other->next)
		same += other != cl && other->phase == P_STARTING &&
			strcmp(other->branch, cl->branch) == 0;
	if (same >= MAX_STARTING_PER_BRANCH) {
		fatal(cl, "53300", "too many clients are waiting for this branch to start",
		      "retry once it has started; `rift status` shows starts under way");
		return;
	}
	/* Starting takes a while (mount, recovery): off the loop, single-flight in the manager. */
	set_phase(cl, P_STARTING);
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
		if (st.dup_name != NULL) {
			char msg[128];
			snprintf(msg, sizeof(msg), "duplicate startup parameter \"%.64s\"",
				 st.dup_name);
			/* no server sees it, so only this line tells where it came from */
			LOG("%s refused: %s\n", cl->peer, msg);
			fatal(cl, "08P01", msg, "send each startup parameter once");
			return;
		}
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
		/* its packet is in: off the lists before a socket for it may evict one of them */
		unstarted_unlink(cl);
		memcpy(copy, raw, st.length);
		rift_startup_parse(copy, st.length, &st);
		evbuffer_drain(in, st.length);
		forward_cancel(cl, &st, copy);
		return;
	}
	case RIFT_STARTUP_MESSAGE:
		/* counted against max_clients from here on; the unstarted have a cap of their own
		 */
		if (cl->r->clients - cl->r->unstarted >= cl->r->max_clients) {
			fatal(cl, "53300", "sorry, too many clients already",
			      "raise [router] max_clients in rift.conf");
			return;
		}
		bufferevent_disable(cl->c, EV_READ); /* nothing more until the server answers */
		/* its packet is in: off the lists, so making room for its server socket can never
		 * close this very client */
		unstarted_unlink(cl);
		route(cl, &st);
		if (cl->phase != P_CLOSING)
			evbuffer_drain(in, st.length);
		return;
	}
}

void on_client_read(struct bufferevent *bev, void *arg)
{
	struct client *cl = arg;

	(void)bev;
	if (cl->phase == P_STARTUP) {
		if (cl->ulist == 0) /* it spoke: no longer first in line to make room */
			unstarted_append(cl, 1);
		startup_phase(cl);
	} else if (cl->phase == P_AUTH)
		pool_auth_read(cl);
	else if ((cl->phase == P_WATCH || cl->phase == P_RELAY) && cl->s != NULL)
		relay_from_client(cl);
}

void on_client_write(struct bufferevent *bev, void *arg)
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

void on_client_event(struct bufferevent *bev, short what, void *arg)
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

/* ---- the server's end ---- */

void on_server_event(struct bufferevent *bev, short what, void *arg)
{
	struct client *cl = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		set_phase(cl, P_WATCH);
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
		pump(cl->s, cl->c, evbuffer_get_length(bufferevent_get_input(cl->s)),
		     &cl->out_bytes);
	bufferevent_free(cl->s);
	cl->s = NULL;
	snprintf(cl->reason, sizeof(cl->reason), "server closed");
	set_phase(cl, P_CLOSING);
	clock_gettime(CLOCK_MONOTONIC, &cl->close_by);
	cl->close_by.tv_sec += 5;
	closing_check(cl);
}

/* ---- accepting ---- */

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	struct rift_router *r = arg;
	struct client *cl;
	struct timeval login = { r->startup_timeout_s, 0 };
	char host[INET6_ADDRSTRLEN] = "?", port[8] = "?";
	int one = 1;

	(void)l;
	if (r->spare_fd < 0)
		r->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (r->unstarted >= r->max_startup)
		evict_unstarted(r, "[router] max_startup_clients reached");
	cl = calloc(1, sizeof(*cl));
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
	cl->tls_fd = -1;
	cl->ulist = -1;
	clock_gettime(CLOCK_MONOTONIC, &cl->t0);
	r->clients++;
	cl->next = r->all;
	if (r->all != NULL)
		r->all->prev = cl;
	r->all = cl;
	unstarted_append(cl, 0);
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

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct rift_router *r = arg;
	size_t i;

	(void)fd;
	(void)what;
	for (i = 0; i < r->nlisteners; i++)
		evconnlistener_enable(r->listeners[i]);
}

/*
 * accept() failed for a reason other than "try again". libevent leaves the listener on, and
 * its socket stays readable while connections wait in the backlog, so doing nothing would
 * spin at full CPU for as long as the cause lasts. Out of descriptors, the oldest connection
 * without a startup packet makes room (as at max_startup_clients) and accepting goes on; with
 * none to close, or any other error, the listeners pause for 100 ms.
 */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
	struct rift_router *r = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval pause = { 0, 100 * 1000 };
	size_t i;

	(void)l;
	if (err == EMFILE && evict_unstarted(r, "out of file descriptors"))
		return;
	r->accept_errors++;
	if (r->accept_errors == 1 || since_s(&r->accept_log_at) >= 10) {
		struct rlimit rl = { 0, 0 };
		getrlimit(RLIMIT_NOFILE, &rl);
		LOG_WARN("router",
			 "cannot accept connections: %s (%lu time(s) since the last such line; "
			 "open-file limit %llu, %d clients); pausing 100 ms%s",
			 strerror(err), r->accept_errors, (unsigned long long)rl.rlim_cur,
			 r->clients,
			 err == EMFILE || err == ENFILE
			     ? "; raise LimitNOFILE= for riftd or lower [router] max_clients"
			     : "");
		r->accept_errors = 0;
		clock_gettime(CLOCK_MONOTONIC, &r->accept_log_at);
	}
	for (i = 0; i < r->nlisteners; i++)
		evconnlistener_disable(r->listeners[i]);
	evtimer_add(r->resume, &pause);
}

static void *loop_main(void *arg)
{
	struct rift_router *r = arg;

	pthread_setname_np(pthread_self(), "router");
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
		/* "*" binds 0.0.0.0 and :: apart: a dual-stack :: would take the IPv4 port too
		 * and fail with EADDRINUSE after 0.0.0.0 (net.ipv6.bindv6only = 0, the default) */
		l = evconnlistener_new_bind(r->base, on_accept, r,
					    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
						LEV_OPT_CLOSE_ON_EXEC |
						(family == AF_INET6 ? LEV_OPT_BIND_IPV6ONLY : 0),
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
		evconnlistener_set_error_cb(l, on_accept_error);
		r->listeners[r->nlisteners++] = l;
		if (family == AF_UNSPEC)
			break;
	}
	freeaddrinfo(res);
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
	r->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	r->max_clients = cfg->max_clients;
	r->login_timeout_s = cfg->login_timeout_s;
	r->max_startup = cfg->max_startup_clients;
	r->start_authenticated = strcmp(cfg->start_on_connect, "authenticated") == 0;
	snprintf(r->state, sizeof(r->state), "%s", state);
	r->startup_timeout_s = cfg->startup_timeout_s < cfg->login_timeout_s
				   ? cfg->startup_timeout_s
				   : cfg->login_timeout_s;
	evthread_use_pthreads();
	r->base = event_base_new();
	if (r->base != NULL)
		r->resume = evtimer_new(r->base, on_resume, r);
	if (r->base == NULL || r->resume == NULL || colon == NULL) {
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
	r->pool_size = cfg->pool_size;
	r->pool_idle_s = cfg->pool_idle_s;
	if (pool_open(r) != 0) {
		snprintf(err, errlen, "cannot start the session pool's timer");
		goto fail;
	}
	r->splice_direct = cfg->kernel_splice >= 2;
	if (cfg->kernel_splice && splice_open(r, cfg->max_clients) != 0) {
		snprintf(err, errlen, "cannot watch spliced connections: %s", strerror(errno));
		goto fail;
	}
	if (r->ssl != NULL && tls_relay_open(r) != 0) {
		snprintf(err, errlen, "cannot start the TLS relay threads");
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
	tls_relay_close(r); /* before the clients whose sessions its threads relay */
	/* start threads finish within start_timeout (riftd closed the start queue first) */
	while (atomic_load(&r->workers) > 0) {
		struct timespec tick = { 0, 20 * 1000 * 1000 };
		nanosleep(&tick, NULL);
	}
	while (r->all != NULL) {
		r->all->worker_busy = false;
		client_free(r->all);
	}
	for (i = 0; i < r->nlisteners; i++)
		evconnlistener_free(r->listeners[i]);
	if (r->resume != NULL)
		event_free(r->resume);
	if (r->spare_fd >= 0)
		close(r->spare_fd);
	pool_close(r); /* after the clients: one may have held a kept session */
	tls_relay_free(r);
	splice_close(r);
	if (r->base != NULL)
		event_base_free(r->base);
	SSL_CTX_free(r->ssl);
	free(r);
}
