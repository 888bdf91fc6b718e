/* router_tls_relay.c — relays logged-in TLS sessions on a few threads of their own, with
 * SSL_read/SSL_write straight on the client's socket and plain read/write on the server's:
 * no bufferevent filter, no BIO copies, no message parsing, one wake-up per burst, and a socket
 * read only when the loop said it is readable (no read that can only say EAGAIN). */
#include <assert.h>
#include <errno.h>
#include <openssl/err.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "router_internal.h"

#define PIPE_BUF_BYTES (64u * 1024u) /* per direction: four TLS records, one read's worth */
#define PUMP_ROUNDS    32            /* per wake-up, then the loop lets others run */

struct tls_relay_thread {
	struct event_base *base;
	pthread_t thread;
	bool started;
};

struct tls_pipe {
	struct client *cl;
	struct tls_relay_thread *t;
	SSL *ssl;
	int cfd, sfd;
	/* kick: a timer of zero, not event_active: libevent runs what a callback activates in
	 * the same pass, before it polls again, so a session that re-activated itself after every
	 * full turn would keep every other session of its thread waiting */
	struct event *c_rd, *c_wr, *s_rd, *s_wr, *kick;
	struct event *done; /* on the router's loop: the session ended */
	uint8_t c2s[PIPE_BUF_BYTES], s2c[PIPE_BUF_BYTES];
	size_t c2s_len, c2s_off, s2c_len, s2c_off;
	bool c_eof, s_eof, read_wants_write, write_wants_read, failed;
	/* the loop reported the socket readable and no read has drained it since; level-
	 * triggered events report it again if a short read left something behind */
	bool c_readable, s_readable;
	uint64_t in_bytes, out_bytes;
	char why[64];
};

static void *relay_main(void *arg)
{
	struct tls_relay_thread *t = arg;

	pthread_setname_np(pthread_self(), "tls-relay");
	event_base_loop(t->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

int tls_relay_open(struct rift_router *r)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int i;

	int n = cpus < 1 ? 1 : cpus > MAX_TLS_THREADS ? MAX_TLS_THREADS : (int)cpus;

	for (i = 0; i < n; i++) {
		struct tls_relay_thread *t = calloc(1, sizeof(*t));
		if (t == NULL)
			return -1;
		r->tls_threads[i] = t;
		r->ntls_threads = i + 1;
		t->base = event_base_new();
		if (t->base == NULL || pthread_create(&t->thread, NULL, relay_main, t) != 0)
			return -1;
		t->started = true;
	}
	return 0;
}

void tls_relay_close(struct rift_router *r)
{
	int i;

	for (i = 0; i < r->ntls_threads; i++) {
		struct tls_relay_thread *t = r->tls_threads[i];
		if (t != NULL && t->started) {
			event_base_loopbreak(t->base);
			pthread_join(t->thread, NULL);
			t->started = false;
		}
	}
}

void tls_relay_free(struct rift_router *r)
{
	int i;

	for (i = 0; i < MAX_TLS_THREADS; i++) {
		struct tls_relay_thread *t = r->tls_threads[i];
		if (t == NULL)
			continue;
		assert(!t->started);
		if (t->base != NULL)
			event_base_free(t->base);
		free(t);
		r->tls_threads[i] = NULL;
	}
	r->ntls_threads = 0;
}

static void pipe_release(struct tls_pipe *p)
{
	struct event **evs[] = { &p->c_rd, &p->c_wr, &p->s_rd, &p->s_wr, &p->kick };
	size_t i;

	for (i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
		if (*evs[i] != NULL)
			event_free(*evs[i]);
		*evs[i] = NULL;
	}
	if (p->ssl != NULL)
		SSL_free(p->ssl);
	p->ssl = NULL;
	if (p->cfd >= 0)
		close(p->cfd);
	if (p->sfd >= 0)
		close(p->sfd);
	p->cfd = p->sfd = -1;
}

void tls_pipe_free(struct tls_pipe *p)
{
	if (p == NULL)
		return;
	pipe_release(p);
	if (p->done != NULL)
		event_free(p->done);
	OPENSSL_cleanse(p->c2s, sizeof(p->c2s)); /* query text and results */
	OPENSSL_cleanse(p->s2c, sizeof(p->s2c));
	free(p);
}

/* Ends the session on the relay thread; the router's loop frees the client. */
static void pipe_end(struct tls_pipe *p, const char *why)
{
	if (p->s_eof && !p->failed)
		SSL_shutdown(p->ssl); /* close_notify, as the server's goodbye; best effort */
	snprintf(p->why, sizeof(p->why), "%s", why);
	pipe_release(p);
	event_active(p->done, 0, 0); /* after this, p belongs to the router's loop */
}

static void arm(struct event *ev, bool on)
{
	if (on && !event_pending(ev, EV_READ | EV_WRITE, NULL))
		event_add(ev, NULL);
	else if (!on && event_pending(ev, EV_READ | EV_WRITE, NULL))
		event_del(ev);
}

/* Runs on_pipe for p once the thread's loop has polled every socket again. */
static void kick(struct tls_pipe *p)
{
	static const struct timeval now = { 0, 0 };

	evtimer_add(p->kick, &now);
}

/* One round each way; true if anything moved. */
static bool pump_once(struct tls_pipe *p)
{
	bool moved = false;
	ssize_t n;
	int rc, err;

	/* client → server: decrypt one record's worth, write it on */
	if (p->c2s_off == p->c2s_len && !p->c_eof && (p->c_readable || SSL_has_pending(p->ssl))) {
		p->read_wants_write = false;
		rc = SSL_read(p->ssl, p->c2s, (int)sizeof(p->c2s));
		/* read-ahead took what the socket had, up to OpenSSL's buffer: anything beyond
		 * it is announced again by the loop */
		p->c_readable = false;
		if (rc > 0) {
			p->c2s_off = 0;
			p->c2s_len = (size_t)rc;
			p->in_bytes += (uint64_t)rc;
			moved = true;
		} else {
			err = SSL_get_error(p->ssl, rc);
			if (err == SSL_ERROR_WANT_WRITE)
				p->read_wants_write = true;
			else if (err != SSL_ERROR_WANT_READ) {
				p->c_eof = true;
				p->failed = err != SSL_ERROR_ZERO_RETURN;
				ERR_clear_error();
			}
		}
	}
	if (p->c2s_off < p->c2s_len) {
		n = send(p->sfd, p->c2s + p->c2s_off, p->c2s_len - p->c2s_off, MSG_NOSIGNAL);
		if (n > 0) {
			p->c2s_off += (size_t)n;
			moved = true;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			p->s_eof = true;
			p->failed = true;
		}
	}
	/* server → client: one large read, encrypted in as few records as it takes */
	if (p->s2c_off == p->s2c_len && !p->s_eof && p->s_readable) {
		n = recv(p->sfd, p->s2c, sizeof(p->s2c), 0);
		p->s_readable = n == (ssize_t)sizeof(p->s2c); /* a short read drained it */
		if (n > 0) {
			p->s2c_off = 0;
			p->s2c_len = (size_t)n;
			moved = true;
		} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			p->s_eof = true;
		}
	}
	if (p->s2c_off < p->s2c_len && !p->failed) {
		p->write_wants_read = false;
		rc = SSL_write(p->ssl, p->s2c + p->s2c_off, (int)(p->s2c_len - p->s2c_off));
		if (rc > 0) {
			p->s2c_off += (size_t)rc;
			p->out_bytes += (uint64_t)rc;
			moved = true;
		} else {
			err = SSL_get_error(p->ssl, rc);
			if (err == SSL_ERROR_WANT_READ)
				p->write_wants_read = true;
			else if (err != SSL_ERROR_WANT_WRITE) {
				p->failed = true;
				p->c_eof = true;
				ERR_clear_error();
			}
		}
	}
	return moved;
}

static void on_pipe(evutil_socket_t fd, short what, void *arg)
{
	struct tls_pipe *p = arg;
	int round;

	if (fd < 0) { /* the kick: after the hand-over or a long turn, look at everything */
		p->c_readable = p->s_readable = true;
	} else if (fd == p->cfd) {
		/* SSL_read that wanted to write retries once the socket can take it */
		p->c_readable |= (what & EV_READ) || ((what & EV_WRITE) && p->read_wants_write);
	} else if (what & EV_READ) {
		p->s_readable = true;
	}
	for (round = 0; round < PUMP_ROUNDS && pump_once(p); round++)
		;
	/* the client left (its Terminate, if any, passed on) or the server did (its last
	 * replies written): the session is over */
	if (p->c_eof && p->c2s_off == p->c2s_len) {
		pipe_end(p, p->failed ? "client error" : "client closed");
		return;
	}
	if (p->s_eof && (p->s2c_off == p->s2c_len || p->failed)) {
		pipe_end(p, "server closed");
		return;
	}
	if (round == PUMP_ROUNDS) { /* more to do: come back after the others had a turn */
		kick(p);
		return;
	}
	/* not while SSL_read waits to write: readable bytes would wake it to no avail */
	arm(p->c_rd,
	    (!p->c_eof && p->c2s_off == p->c2s_len && !p->read_wants_write) || p->write_wants_read);
	arm(p->c_wr, (p->s2c_off < p->s2c_len && !p->write_wants_read) || p->read_wants_write);
	arm(p->s_rd, !p->s_eof && p->s2c_off == p->s2c_len);
	arm(p->s_wr, p->c2s_off < p->c2s_len);
}

/* Back on the router's loop: account, log and free the client. */
static void on_pipe_done(evutil_socket_t fd, short what, void *arg)
{
	struct client *cl = arg;
	struct tls_pipe *p = cl->pipe;

	(void)fd;
	(void)what;
	cl->in_bytes += p->in_bytes;
	cl->out_bytes += p->out_bytes;
	snprintf(cl->reason, sizeof(cl->reason), "%s", p->why);
	set_phase(cl, P_CLOSING);
	client_free(cl);
}

bool tls_relay_due(struct client *cl)
{
	if (!cl->tls || cl->direct_tls || cl->ssl == NULL || cl->r->ntls_threads == 0 ||
	    cl->cli_pending > 0 || cl->cli_unsynced || cl->phase != P_RELAY)
		return false;
	/* a session that may be kept stays where its Terminate can be seen, for a second */
	if (pool_could_keep(cl) && !cl->untracked &&
	    since_s(&cl->logged_in) * 1000 < SPLICE_AFTER_MS)
		return false;
	/* what riftd still holds must fit the pipe's buffers */
	return evbuffer_get_length(bufferevent_get_input(cl->c)) <= PIPE_BUF_BYTES &&
	       evbuffer_get_length(bufferevent_get_output(cl->c)) <= PIPE_BUF_BYTES &&
	       evbuffer_get_length(bufferevent_get_input(cl->s)) == 0 &&
	       evbuffer_get_length(bufferevent_get_output(cl->s)) == 0;
}

void tls_relay_hand_over(struct client *cl)
{
	struct rift_router *r = cl->r;
	struct tls_pipe *p = calloc(1, sizeof(*p));
	struct tls_relay_thread *t;
	struct evbuffer *cin, *cout;

	if (p == NULL)
		return; /* stays in the ordinary relay */
	assert(tls_relay_due(cl));
	t = r->tls_threads[r->next_tls_thread++ % r->ntls_threads];
	p->cl = cl;
	p->t = t;
	p->cfd = cl->tls_fd;
	p->sfd = bufferevent_getfd(cl->s);
	p->done = event_new(r->base, -1, 0, on_pipe_done, cl);
	p->c_rd = event_new(t->base, p->cfd, EV_READ | EV_PERSIST, on_pipe, p);
	p->c_wr = event_new(t->base, p->cfd, EV_WRITE | EV_PERSIST, on_pipe, p);
	p->s_rd = event_new(t->base, p->sfd, EV_READ | EV_PERSIST, on_pipe, p);
	p->s_wr = event_new(t->base, p->sfd, EV_WRITE | EV_PERSIST, on_pipe, p);
	p->kick = evtimer_new(t->base, on_pipe, p);
	if (p->done == NULL || p->c_rd == NULL || p->c_wr == NULL || p->s_rd == NULL ||
	    p->s_wr == NULL || p->kick == NULL) {
		p->cfd = p->sfd = -1; /* still the bufferevents' */
		tls_pipe_free(p);
		return;
	}
	/* what the bufferevents hold goes first: the client's early bytes to the server, the
	 * replies still owed (plaintext; any record half-written by OpenSSL is finished by
	 * SSL_write of the same bytes) to the client */
	cin = bufferevent_get_input(cl->c);
	cout = bufferevent_get_output(cl->c);
	{ /* tls_relay_due checked that both fit */
		int cn = evbuffer_remove(cin, p->c2s, sizeof(p->c2s));
		int sn = evbuffer_remove(cout, p->s2c, sizeof(p->s2c));
		p->c2s_len = cn > 0 ? (size_t)cn : 0;
		p->s2c_len = sn > 0 ? (size_t)sn : 0;
		p->in_bytes = p->c2s_len;
	}
	/* the sockets and the TLS state leave their bufferevents, which close nothing */
	p->ssl = cl->ssl;
	cl->ssl = NULL;
	/* whole socket reads into OpenSSL's buffer, not a header and a body per record */
	SSL_set_read_ahead(p->ssl, 1);
	SSL_set_mode(p->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	cl->tls_fd = -1;
	bufferevent_free(cl->c);
	cl->c = NULL;
	bufferevent_setfd(cl->s, -1);
	bufferevent_free(cl->s);
	cl->s = NULL;
	cl->pipe = p;
	set_phase(cl, P_TLSRELAY);
	/* first round at once: OpenSSL may hold decrypted bytes the socket will not announce */
	kick(p);
}
