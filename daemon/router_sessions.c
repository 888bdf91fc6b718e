/* router_sessions.c — snapshots of the router's connections for other threads (dashboard, metrics).
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "router_internal.h"

/*
 * A request handed to the router's loop. Both sides hold a reference: the asker may give up
 * (timeout) before the loop runs it, and whoever drops the last one frees it.
 */
struct snap {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int refs;
	bool done;
	struct rift_router *r;
	struct rift_router_session *v;
	size_t n;
	struct rift_router_totals totals;
	int rc;
};

static void snap_unref(struct snap *s)
{
	bool last;

	pthread_mutex_lock(&s->mu);
	last = --s->refs == 0;
	pthread_mutex_unlock(&s->mu);
	if (!last)
		return;
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s->v);
	free(s);
}

static const char *mode_of(const struct client *cl)
{
	switch (cl->phase) {
	case P_STARTUP:
	case P_WATCH:
	case P_AUTH:
	case P_AWAIT:
		return "login";
	case P_STARTING:
	case P_CONNECTING:
		return "starting";
	case P_RELAY:
	case P_TLSRELAY: /* on a relay thread: TLS, relayed in user space */
		return "relayed";
	case P_SPLICED:
		return "spliced";
	case P_CLOSING:
		break;
	}
	return "closing";
}

/* On the router's thread: copies what each client is doing. */
static void take(evutil_socket_t fd, short what, void *arg)
{
	struct snap *s = arg;
	struct rift_router *r = s->r;
	const struct client *cl;
	size_t n = 0, i = 0;

	(void)fd;
	(void)what;
	for (cl = r->all; cl != NULL; cl = cl->next)
		n++;
	s->v = calloc(n + 1, sizeof(*s->v));
	s->rc = s->v == NULL ? -ENOMEM : 0;
	for (cl = r->all; cl != NULL && s->v != NULL; cl = cl->next, i++) {
		struct rift_router_session *o = &s->v[i];
		assert(i < n);
		snprintf(o->peer, sizeof(o->peer), "%s", cl->peer);
		snprintf(o->branch, sizeof(o->branch), "%s", cl->routed ? cl->branch : "");
		snprintf(o->db, sizeof(o->db), "%s", cl->routed ? cl->db : "");
		snprintf(o->user, sizeof(o->user), "%s", cl->routed ? cl->user : "");
		o->mode = mode_of(cl);
		o->tls = cl->tls;
		o->reused = cl->reused;
		o->age_s = since_s(&cl->t0);
		o->in_bytes = cl->in_bytes;
		o->out_bytes = cl->out_bytes;
		if (cl->fd[SIDE_CLIENT] >= 0) { /* the kernel's share since the splice */
			uint64_t rc, qc, rs, qs;
			if (rift_splice_counters(cl->fd[SIDE_CLIENT], &rc, &qc) == 0 &&
			    rift_splice_counters(cl->fd[SIDE_SERVER], &rs, &qs) == 0) {
				o->in_bytes += rc - cl->recv0[SIDE_CLIENT];
				o->out_bytes += cl->direct ? qc - cl->sent0[SIDE_CLIENT]
							   : rs - cl->recv0[SIDE_SERVER];
			}
		}
	}
	s->n = s->v != NULL ? n : 0;
	s->totals = r->closed;
	pthread_mutex_lock(&s->mu);
	s->done = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	snap_unref(s);
}

int rift_router_sessions(struct rift_router *r, struct rift_router_session **out, size_t *count,
			 struct rift_router_totals *totals, int timeout_ms)
{
	struct timeval now = { 0, 0 };
	struct timespec deadline;
	struct snap *s = calloc(1, sizeof(*s));
	int rc = 0;

	*out = NULL;
	*count = 0;
	if (s == NULL)
		return -ENOMEM;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->r = r;
	s->refs = 2;
	if (event_base_once(r->base, -1, EV_TIMEOUT, take, s, &now) != 0) {
		s->refs = 1;
		snap_unref(s);
		return -EIO;
	}
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->mu);
	while (!s->done && rc == 0)
		rc = pthread_cond_timedwait(&s->cv, &s->mu, &deadline);
	if (s->done) {
		rc = s->rc;
		if (rc == 0) {
			*out = s->v;
			*count = s->n;
			s->v = NULL;
			if (totals != NULL)
				*totals = s->totals;
		}
	} else {
		rc = -ETIMEDOUT;
	}
	pthread_mutex_unlock(&s->mu);
	snap_unref(s);
	return rc;
}
