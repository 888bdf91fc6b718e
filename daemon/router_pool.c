/* router_pool.c — keeps a branch server's session open after its client leaves, reset with
 * DISCARD ALL, and hands it to the next client with the same branch, database, user and
 * options, authenticating that client in the router the way the server did (trust or SCRAM). */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rift/verifiers.h"
#include "router_internal.h"

struct pooled {
	struct pooled *next;
	struct rift_router *r;
	struct client *holder; /* a client authenticating for it (then not in the list) */
	struct client *waiter; /* a client waiting for its reset (it stays in the list) */
	struct bufferevent *s;
	uint8_t *key; /* branch, NUL, the StartupMessage sent to the server */
	size_t keylen;
	char branch[64];
	int port;
	struct pg_params params;
	uint8_t keymsg[4 + RIFT_CANCEL_KEY_MAX]; /* the last one issued; its key dies on reuse */
	size_t keymsg_len;
	struct cancel_key *ck;
	bool ready, failed; /* reset finished; the reset reported an error */
	int replies;        /* ReadyForQuery messages seen of the reset's two queries */
	char dirty[160];    /* what the check after the reset found, "" = provably clean */
	bool checked;       /* the check's row arrived */
	struct timespec since;
};

/*
 * What DISCARD ALL leaves behind that a client could notice, asked of the server after the
 * reset: one row, empty when the session is as a new backend would be, else the reasons.
 * Every name is qualified with pg_catalog (operators too), so a role whose search_path puts
 * its own functions first cannot make the check pass. Why each check is there: see
 * docs/architecture.md ("Kept server sessions").
 */
static const char reset_check[] =
    "SELECT pg_catalog.concat_ws(', ', "
    /* DISCARD ALL drops temp tables but keeps the backend's temp namespace: a later
     * PREPARE TRANSACTION, search_path pg_temp, pg_my_temp_schema() all see it */
    "CASE WHEN pg_catalog.pg_my_temp_schema() OPERATOR(pg_catalog.<>) 0 "
    "THEN 'it has a temporary schema' END, "
    /* RESET SESSION AUTHORIZATION / RESET ROLE should have run: verify, against the role
     * the session logged in as (the backend's activity entry keeps that). Asked of this
     * backend's entry alone: the pg_stat_activity view joins every backend's with two
     * catalogs and cost a third of the check. A NULL anywhere counts as not the login role. */
    "CASE WHEN COALESCE(session_user OPERATOR(pg_catalog.<>) current_user OR session_user "
    "OPERATOR(pg_catalog.<>) pg_catalog.pg_get_userbyid((SELECT a.usesysid FROM "
    "pg_catalog.pg_stat_get_activity(pg_catalog.pg_backend_pid()) a)), true) "
    "THEN 'its role is not the login role' END, "
    "CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_locks l WHERE l.pid "
    "OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid() AND l.locktype "
    "OPERATOR(pg_catalog.=) 'advisory') THEN 'it holds advisory locks' END, "
    "CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_listening_channels()) "
    "THEN 'it listens on a channel' END, "
    "CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_prepared_statements) "
    "THEN 'it has prepared statements' END, "
    "CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_cursors) THEN 'it has open cursors' END, "
    "CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_settings s WHERE s.source "
    "OPERATOR(pg_catalog.=) 'session') THEN 'a setting is still changed' END, "
    /* a prepared transaction is not the session's once prepared, but one still open is */
    "CASE WHEN pg_catalog.pg_current_xact_id_if_assigned() IS NOT NULL "
    "THEN 'a transaction is open' END)";

/* A kept session whose reset has not ended after this long is closed (its waiter connects);
 * a literal, so the log line can say it. */
#define RESET_TIMEOUT_S 5
#define SECONDS_TEXT(n) #n " s"
#define SECONDS_OF(n)   SECONDS_TEXT(n)

struct secret_job {
	struct secret_job *next;
	struct rift_router *r;
	struct event *done;
	char branch[64], db[64], user[64];
	int rc;
	char secret[SCRAM_SECRET_MAX];
};

/* ---- ParameterStatus ---- */

void params_set(struct pg_params *p, const uint8_t *body, size_t len)
{
	const char *name = (const char *)body, *value;
	size_t nlen = strnlen(name, len), vlen;
	int i;

	if (nlen + 1 >= len) {
		p->overflow = true;
		return;
	}
	value = name + nlen + 1;
	vlen = strnlen(value, len - nlen - 1);
	if (nlen >= sizeof(p->name[0]) || vlen >= sizeof(p->value[0])) {
		p->overflow = true;
		return;
	}
	for (i = 0; i < p->n && strcmp(p->name[i], name) != 0; i++)
		;
	if (i == p->n) {
		if (p->n == MAX_PARAMS) {
			p->overflow = true;
			return;
		}
		p->n++;
		memcpy(p->name[i], name, nlen + 1);
	}
	memcpy(p->value[i], value, vlen);
	p->value[i][vlen] = '\0';
}

/* ---- what the server approved ---- */

static struct auth_rec *auth_find(struct rift_router *r, const char *branch, const char *db,
				  const char *user, bool create)
{
	struct auth_rec *oldest = NULL;
	size_t i;

	for (i = 0; i < MAX_AUTH_RECS; i++) {
		struct auth_rec *a = &r->auths[i];
		if (a->method != AUTH_UNKNOWN && strcmp(a->branch, branch) == 0 &&
		    strcmp(a->db, db) == 0 && strcmp(a->user, user) == 0)
			return a;
		if (!a->fetching && (oldest == NULL || a->method == AUTH_UNKNOWN ||
				     (oldest->method != AUTH_UNKNOWN &&
				      since_s(&a->approved) > since_s(&oldest->approved))))
			oldest = a;
	}
	if (!create || oldest == NULL)
		return NULL;
	memset(oldest, 0, sizeof(*oldest));
	snprintf(oldest->branch, sizeof(oldest->branch), "%s", branch);
	snprintf(oldest->db, sizeof(oldest->db), "%s", db);
	snprintf(oldest->user, sizeof(oldest->user), "%s", user);
	return oldest;
}

static void on_secret(evutil_socket_t fd, short what, void *arg)
{
	struct secret_job *job = arg, **jp;
	struct auth_rec *a = auth_find(job->r, job->branch, job->db, job->user, false);

	(void)fd;
	(void)what;
	if (a != NULL) {
		a->fetching = false;
		a->have_secret =
		    job->rc == 0 && rift_scram_parse_secret(job->secret, &a->secret) == 0;
		clock_gettime(CLOCK_MONOTONIC, &a->secret_at);
	}

	for (jp = &job->r->jobs; *jp != NULL && *jp != job; jp = &(*jp)->next)
		;
	if (*jp != NULL)
		*jp = job->next;
	event_free(job->done);
	free(job);
}

static void *secret_worker(void *arg)
{
	struct secret_job *job = arg;
	struct rift_router *r = job->r;

	pthread_setname_np(pthread_self(), "router-secret");
	job->rc = rift_manager_role_secret(r->m, job->branch, job->user, job->secret,
					   sizeof(job->secret));
	/* kept for starting the branch later (here, off the loop: it fsyncs): the verifier, or
	 * that the role has none any more (no SCRAM password, no LOGIN, expired); a server that
	 * did not answer changes nothing */
	if (r->start_authenticated && (job->rc == 0 || job->rc == -ENOENT)) {
		struct rift_scram_secret check;
		bool ok = job->rc == 0 && rift_scram_parse_secret(job->secret, &check) == 0;
		int rc =
		    rift_verifiers_put(r->state, job->branch, job->user, ok ? job->secret : NULL);
		if (rc != 0)
			LOG_WARN("router", "cannot keep user %s's verifier for branch %s: %s",
				 job->user, job->branch, strerror(-rc));
	}
	event_active(job->done, 0, 0);
	atomic_fetch_sub(&r->workers, 1); /* after this, job is not touched here */
	return NULL;
}

/* The verifier comes from the branch's own pg_authid, so it is the one the server would use. */
static void fetch_secret(struct rift_router *r, struct auth_rec *a)
{
	struct secret_job *job = calloc(1, sizeof(*job));
	pthread_t t;

	if (job == NULL)
		return;
	job->r = r;
	snprintf(job->branch, sizeof(job->branch), "%s", a->branch);
	snprintf(job->db, sizeof(job->db), "%s", a->db);
	snprintf(job->user, sizeof(job->user), "%s", a->user);
	job->done = event_new(r->base, -1, 0, on_secret, job);
	if (job->done == NULL) {
		free(job);
		return;
	}
	atomic_fetch_add(&r->workers, 1);
	if (pthread_create(&t, NULL, secret_worker, job) != 0) {
		atomic_fetch_sub(&r->workers, 1);
		event_free(job->done);
		free(job);
		return;
	}
	pthread_detach(t);
	job->next = r->jobs;
	r->jobs = job;
	a->fetching = true;
}

void auth_learn(struct client *cl)
{
	struct rift_router *r = cl->r;
	struct auth_rec *a;

	if (r->pool_size == 0 && !r->start_authenticated)
		return;
	a = auth_find(r, cl->branch, cl->db, cl->user, true);
	if (a == NULL)
		return;
	if (a->method != cl->auth_seen)
		a->have_secret = false;
	a->method = cl->auth_seen;
	clock_gettime(CLOCK_MONOTONIC, &a->approved);
	if (a->method == AUTH_SCRAM && !a->fetching &&
	    (!a->have_secret || since_s(&a->secret_at) > AUTH_FRESH_S / 2))
		fetch_secret(r, a);
}

/* ---- the pool ---- */

static void await_end(struct client *cl);

static void pool_drop(struct pooled *p)
{
	struct rift_router *r = p->r;
	struct client *waiter = p->waiter;
	struct pooled **pp;

	for (pp = &r->pool; *pp != NULL && *pp != p; pp = &(*pp)->next)
		;
	/* a held session is out of the list, and its holder holds exactly it */
	assert(*pp == NULL || p->holder == NULL);
	assert(p->holder == NULL || p->holder->held == p);
	/* (a session that became ready can still be dropped before its waiter is woken: the
	 * server sent something after its last ReadyForQuery) */
	if (waiter != NULL)
		pool_unawait(waiter);
	if (*pp != NULL)
		*pp = p->next;
	if (p->holder != NULL)
		p->holder->held = NULL;
	if (p->s != NULL)
		bufferevent_free(p->s);
	if (p->ck != NULL)
		p->ck->port = 0;
	rift_manager_pooled(r->m, p->branch, -1);
	r->pooled_count--;
	assert(r->pooled_count >= 0);
	free(p->key);
	free(p);
	if (waiter != NULL) /* its reset failed or hung: the waiter logs in afresh */
		await_end(waiter);
}

/* A DataRow of one text column: its value into p->dirty (cut to fit), or "?" if malformed. */
static void take_check_row(struct pooled *p, const uint8_t *body, uint32_t len)
{
	uint32_t vl;

	p->checked = true;
	if (len < 6 || body[0] != 0 || body[1] != 1 || (vl = rift_be32(body + 2)) > len - 6) {
		snprintf(p->dirty, sizeof(p->dirty), "its check answered unexpectedly");
		return;
	}
	if (vl >= sizeof(p->dirty))
		vl = sizeof(p->dirty) - 1;
	memcpy(p->dirty, body + 6, vl);
	p->dirty[vl] = '\0';
}

/* The session failed its check after the reset: closed, with the reason in the log. */
static void pool_reject(struct pooled *p, const char *why)
{
	LOG("server session of branch %s on port %d closed instead of kept: %s\n", p->branch,
	    p->port, why);
	pool_drop(p);
}

/*
 * Reads the replies to the reset (DISCARD ALL) and to the check that follows it; the session
 * is ready once both end idle and the check found nothing. Once idle, any message (a
 * shutdown's FATAL) ends the session.
 */
static void pool_on_read(struct bufferevent *bev, void *arg)
{
	struct pooled *p = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t type, body[512];
	uint32_t len;
	int rc;

	while (evbuffer_get_length(in) >= 5) {
		if (p->ready || (rc = take_msg(in, &type, body, sizeof(body), &len)) < 0) {
			pool_drop(p);
			return;
		}
		if (rc == 0)
			return;
		if (type == 'E') {
			p->failed = true;
		} else if (type == 'S') {
			params_set(&p->params, body, len);
		} else if (type == 'D' && p->replies == 1 && !p->checked) {
			take_check_row(p, body, len);
		} else if (type == 'Z') {
			if (p->failed || len != 1 || body[0] != 'I' || p->params.overflow) {
				pool_reject(p, p->failed ? "its reset failed"
							 : "its reset did not end idle");
				return;
			}
			if (++p->replies < 2)
				continue;
			if (!p->checked || p->dirty[0] != '\0') {
				pool_reject(p, p->checked ? p->dirty : "its check returned no row");
				return;
			}
			p->ready = true;
			clock_gettime(CLOCK_MONOTONIC, &p->since);
		}
	}
	if (p->ready && evbuffer_get_length(in) != 0) { /* a message's start after the end */
		pool_drop(p);
		return;
	}
	if (p->ready && p->waiter != NULL) {
		struct client *cl = p->waiter;
		pool_unawait(cl);
		await_end(cl); /* may hand p over: p is not touched after this */
	}
}

static void pool_on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	pool_drop(arg);
}

static uint8_t *make_key(const struct client *cl, size_t *len)
{
	size_t bl = strlen(cl->branch) + 1;
	uint8_t *key = malloc(bl + cl->startup_len);

	if (key != NULL) {
		memcpy(key, cl->branch, bl);
		memcpy(key + bl, cl->startup, cl->startup_len);
	}
	*len = bl + cl->startup_len;
	return key;
}

bool pool_could_keep(const struct client *cl)
{
	return cl->r->pool_size > 0 && !cl->params.overflow &&
	       (cl->auth_seen == AUTH_TRUST || cl->auth_seen == AUTH_SCRAM);
}

bool pool_keep(struct client *cl)
{
	struct rift_router *r = cl->r;
	struct pooled *p;

	if (!pool_could_keep(cl) || r->pooled_count >= r->pool_size || cl->phase != P_RELAY ||
	    cl->untracked || cl->srv_status != 'I' || cl->cli_pending != 0 || cl->cli_unsynced ||
	    evbuffer_get_length(bufferevent_get_output(cl->s)) != 0 ||
	    evbuffer_get_length(bufferevent_get_input(cl->s)) != 0)
		return false;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return false;
	p->key = make_key(cl, &p->keylen);
	if (p->key == NULL) {
		free(p);
		return false;
	}
	p->r = r;
	snprintf(p->branch, sizeof(p->branch), "%s", cl->branch);
	p->port = cl->port;
	p->params = cl->params;
	memcpy(p->keymsg, cl->keymsg, cl->keymsg_len);
	p->keymsg_len = cl->keymsg_len;
	p->ck = cl->key; /* the slot stays with the server session; hand_over issues a new key */
	assert(p->ck == NULL || p->ck->port == cl->port);
	cl->key = NULL;
	if (p->ck != NULL) {
		uint8_t unused[4 + RIFT_CANCEL_KEY_MAX];
		size_t unused_len;
		/* the leaving client's key dies now */
		cancel_key_issue(p->ck, unused, &unused_len);
	}
	p->s = cl->s;
	cl->s = NULL;
	clock_gettime(CLOCK_MONOTONIC, &p->since);
	/* the Terminate stays here; the server forgets the session's state instead */
	evbuffer_drain(bufferevent_get_input(cl->c), 5);
	cl->in_bytes += 5;
	bufferevent_setcb(p->s, pool_on_read, NULL, pool_on_event, p);
	/* two queries: DISCARD ALL refuses to run inside the implicit block of a multi-statement
	 * query; the check comes after it, so it sees what the reset could not undo */
	put_msg(bufferevent_get_output(p->s), 'Q', "DISCARD ALL", 12);
	put_msg(bufferevent_get_output(p->s), 'Q', reset_check, sizeof(reset_check));
	p->next = r->pool;
	r->pool = p;
	r->pooled_count++;
	rift_manager_pooled(r->m, p->branch, +1);
	snprintf(cl->reason, sizeof(cl->reason), "client closed; server session kept");
	client_free(cl);
	return true;
}

/* Gives a reset session to an authenticated client, replaying what its login would have said. */
static void hand_over(struct client *cl, struct pooled *p)
{
	struct evbuffer *out = bufferevent_get_output(cl->c);
	static const uint8_t ok[4] = { 0, 0, 0, 0 };
	const char idle = 'I';
	int i;

	/* from the list (trust) or held by cl alone (after its SCRAM exchange); cl owns no key */
	assert(p->holder == NULL ? cl->held == NULL : p->holder == cl && cl->held == p);
	assert(cl->key == NULL && cl->s == NULL && p->ready);
	cl->s = p->s;
	p->s = NULL;
	cl->key = p->ck;
	p->ck = NULL;
	cl->params = p->params;
	memcpy(cl->keymsg, p->keymsg, p->keymsg_len);
	cl->keymsg_len = p->keymsg_len;
	if (cl->key != NULL) /* a key the previous client never saw */
		cancel_key_issue(cl->key, cl->keymsg, &cl->keymsg_len);
	p->holder = NULL;
	cl->held = NULL;
	pool_drop(p); /* only the record: the session now belongs to cl */
	bufferevent_setcb(cl->s, on_server_read, on_server_write, on_server_event, cl);
	put_msg(out, 'R', ok, 4);
	for (i = 0; i < cl->params.n; i++) {
		char body[sizeof(cl->params.name[0]) + sizeof(cl->params.value[0])];
		size_t nl = strlen(cl->params.name[i]) + 1, vl = strlen(cl->params.value[i]) + 1;
		memcpy(body, cl->params.name[i], nl);
		memcpy(body + nl, cl->params.value[i], vl);
		put_msg(out, 'S', body, nl + vl);
	}
	if (cl->keymsg_len > 0)
		put_msg(out, 'K', cl->keymsg, cl->keymsg_len);
	put_msg(out, 'Z', &idle, 1);
	set_phase(cl, P_RELAY);
	cl->reused = true;
	cl->srv_status = 'I';
	cl->cli_pending = 0;
	cl->cli_unsynced = false;
	memset(&cl->srv_scan, 0, sizeof(cl->srv_scan));
	memset(&cl->cli_scan, 0, sizeof(cl->cli_scan));
	clock_gettime(CLOCK_MONOTONIC, &cl->logged_in);
	evtimer_del(cl->timer);
	bufferevent_setwatermark(cl->c, EV_READ, 0, 0);
	bufferevent_enable(cl->s, EV_READ | EV_WRITE);
	bufferevent_enable(cl->c, EV_READ | EV_WRITE);
}

bool pool_try_reuse(struct client *cl)
{
	struct rift_router *r = cl->r;
	struct auth_rec *a;
	struct pooled *p, **pp, *resetting = NULL;
	uint8_t *key;
	size_t keylen;
	static const uint8_t sasl[] = { 0,   0,   0,   10,  'S', 'C', 'R', 'A', 'M', '-',
					'S', 'H', 'A', '-', '2', '5', '6', 0,   0 };

	if (r->pool == NULL)
		return false;
	/* reuse only what a recent login through the server vouches for, done the same way */
	a = auth_find(r, cl->branch, cl->db, cl->user, false);
	if (a == NULL || since_s(&a->approved) > AUTH_FRESH_S ||
	    (a->method != AUTH_TRUST && a->method != AUTH_SCRAM) ||
	    (a->method == AUTH_SCRAM && (!a->have_secret || since_s(&a->secret_at) > AUTH_FRESH_S)))
		return false;
	key = make_key(cl, &keylen);
	if (key == NULL)
		return false;
	for (pp = &r->pool; (p = *pp) != NULL; pp = &p->next) {
		if (p->port != cl->port || p->keylen != keylen || memcmp(p->key, key, keylen) != 0)
			continue;
		if (p->ready)
			break;
		if (resetting == NULL && p->waiter == NULL)
			resetting = p;
	}
	free(key);
	if (p == NULL && resetting != NULL) {
		/* its reset takes a millisecond or two; a new backend takes ten times that, and
		 * a client that just left and came back would find its server session busy */
		assert(cl->awaiting == NULL);
		resetting->waiter = cl;
		cl->awaiting = resetting;
		set_phase(cl, P_AWAIT);
		/* read on, so a client that leaves while waiting is seen leaving (what it sends
		 * stays buffered, bounded by the startup watermark) */
		bufferevent_enable(cl->c, EV_READ);
		return true;
	}
	if (p == NULL)
		return false;
	assert(p->holder == NULL && cl->held == NULL); /* the list holds no held session */
	*pp = p->next;                                 /* out of the list while a client holds it */
	p->next = NULL;
	cl->auth_seen = a->method;
	if (a->method == AUTH_TRUST) {
		hand_over(cl, p);
		return true;
	}
	p->holder = cl;
	cl->held = p;
	cl->held_secret = a->secret;
	cl->scram_step = 0;
	set_phase(cl, P_AUTH);
	{ /* the password gets login_timeout of its own, not what the startup packet left */
		struct timeval login = { r->login_timeout_s, 0 };
		evtimer_add(cl->timer, &login);
	}
	put_msg(bufferevent_get_output(cl->c), 'R', sasl, sizeof(sasl));
	bufferevent_enable(cl->c, EV_READ | EV_WRITE);
	return true;
}

/*
 * cl's wait is over (the session is ready, or gone): its branch is asked again where its server
 * is, since the session may be gone because the server stopped, and its port may since serve
 * another branch; then a kept session, a new one, or the branch's start.
 */
static void await_end(struct client *cl)
{
	struct rift_branch_view v;
	char err[512];

	assert(cl->phase == P_AWAIT && cl->awaiting == NULL);
	bufferevent_disable(cl->c, EV_READ); /* as route() left it: the next step enables it */
	if (rift_manager_get(cl->r->m, cl->branch, &v, err, sizeof(err)) != RIFT_OK) {
		char msg[256];
		snprintf(msg, sizeof(msg), "branch \"%s\" was deleted while this connection waited",
			 cl->branch);
		fatal(cl, "3D000", msg, "`rift list` shows the branches");
		return;
	}
	route_go(cl, &v);
}

void pool_unawait(struct client *cl)
{
	struct pooled *p = cl->awaiting;

	assert(p != NULL && p->waiter == cl);
	p->waiter = NULL;
	cl->awaiting = NULL;
}

void pool_unhold(struct client *cl)
{
	struct pooled *p = cl->held;

	cl->held = NULL;
	if (p == NULL)
		return;
	assert(p->holder == cl);
	p->holder = NULL;
	p->next = cl->r->pool; /* untouched: it is as reset as it was */
	cl->r->pool = p;
}

void pool_auth_read(struct client *cl)
{
	struct evbuffer *in = bufferevent_get_input(cl->c);
	uint8_t type, body[RIFT_SCRAM_MSG_MAX + 64];
	char reply[RIFT_SCRAM_MSG_MAX + 4];
	char msg[256];
	int rc;

	while (cl->phase == P_AUTH && evbuffer_get_length(in) >= 5) {
		uint32_t len, n;
		size_t ml;
		const char *mech;
		rc = take_msg(in, &type, body, sizeof(body), &len);
		if (rc < 0 || type != 'p') {
			fatal(cl, "08P01", "expected a SASL response", NULL);
			return;
		}
		if (rc == 0)
			return;
		if (cl->held == NULL && !cl->preauth) {
			fatal(cl, "08006", "the branch's server ended the session being set up",
			      "retry");
			return;
		}
		if (cl->scram_step == 0) { /* SASLInitialResponse: mechanism, length, data */
			mech = (const char *)body;
			ml = strnlen(mech, len);
			if (ml + 5 > len || strcmp(mech, "SCRAM-SHA-256") != 0) {
				fatal(cl, "28000", "rift offers only SASL mechanism SCRAM-SHA-256",
				      NULL);
				return;
			}
			n = rift_be32(body + ml + 1);
			if (n != len - ml - 5 ||
			    rift_scram_first(&cl->scram, &cl->held_secret,
					     (const char *)body + ml + 5, n, NULL, reply + 4,
					     sizeof(reply) - 4) != 0) {
				fatal(cl, "08P01", "malformed SCRAM client-first-message", NULL);
				return;
			}
			rift_put_be32((uint8_t *)reply, 11); /* AuthenticationSASLContinue */
			put_msg(bufferevent_get_output(cl->c), 'R', reply, 4 + strlen(reply + 4));
			cl->scram_step = 1;
			continue;
		}
		rc = rift_scram_final(&cl->scram, (const char *)body, len, reply + 4,
				      sizeof(reply) - 4);
		if (rc == -EACCES) {
			snprintf(msg, sizeof(msg), "password authentication failed for user \"%s\"",
				 cl->user);
			fatal(cl, "28P01", msg, NULL);
			return;
		}
		if (rc != 0) {
			fatal(cl, "08P01", "malformed SCRAM client-final-message", NULL);
			return;
		}
		rift_put_be32((uint8_t *)reply, 12); /* AuthenticationSASLFinal */
		put_msg(bufferevent_get_output(cl->c), 'R', reply, 4 + strlen(reply + 4));
		if (cl->preauth) {
			/* the proof is right: now the branch may start; AuthenticationOk comes
			 * when its server has let the router in with the same key */
			LOG("%s password checked by riftd: starting branch %s\n", cl->peer,
			    cl->branch);
			bufferevent_disable(cl->c, EV_READ);
			evtimer_del(cl->timer);
			start_branch(cl);
			return;
		}
		hand_over(cl, cl->held);
	}
}

void preauth_begin(struct client *cl)
{
	static const uint8_t sasl[] = { 0,   0,   0,   10,  'S', 'C', 'R', 'A', 'M', '-',
					'S', 'H', 'A', '-', '2', '5', '6', 0,   0 };
	struct timeval login = { cl->r->login_timeout_s, 0 };
	char text[SCRAM_SECRET_MAX], msg[256];

	if (rift_verifiers_get(cl->r->state, cl->branch, cl->user, text, sizeof(text)) != 0 ||
	    rift_scram_parse_secret(text, &cl->held_secret) != 0) {
		snprintf(msg, sizeof(msg),
			 "branch \"%s\" is stopped, and rift cannot check user \"%s\"'s password "
			 "before starting it",
			 cl->branch, cl->user);
		fatal(cl, "28000", msg,
		      "start it first (rift start <branch>); riftd learns a role's SCRAM "
		      "verifier when it logs in through the router while the branch runs "
		      "([router] start_on_connect in rift.conf)");
		return;
	}
	cl->preauth = true;
	cl->auth_seen = AUTH_SCRAM;
	cl->scram_step = 0;
	set_phase(cl, P_AUTH);
	evtimer_add(cl->timer, &login);
	put_msg(bufferevent_get_output(cl->c), 'R', sasl, sizeof(sasl));
	bufferevent_enable(cl->c, EV_READ | EV_WRITE);
}

bool preauth_server(struct client *cl, const uint8_t *body, uint32_t len)
{
	uint8_t msg[RIFT_SCRAM_MSG_MAX + 32];
	char out[RIFT_SCRAM_MSG_MAX];
	uint32_t code;
	size_t n;
	int rc;

	if (len < 4) {
		fatal(cl, "08P01", "the branch's server sent a malformed authentication request",
		      NULL);
		return false;
	}
	code = rift_be32(body);
	switch (code) {
	case 0: /* AuthenticationOk: the client, told SASLFinal already, hears this now */
		cl->auth_ok = true;
		if (!cl->auth_asked)
			cl->auth_seen = AUTH_TRUST;
		return true;
	case 10: /* SASL: log in with the client's key */
		if (memmem(body + 4, len - 4, "SCRAM-SHA-256", 14) == NULL)
			break;
		cl->auth_asked = true;
		cl->auth_seen = AUTH_SCRAM;
		if (rift_scram_client_first(&cl->sc, cl->scram.client_key, &cl->held_secret, out,
					    sizeof(out)) != 0)
			break;
		n = strlen(out);
		memcpy(msg, "SCRAM-SHA-256", 14);
		rift_put_be32(msg + 14, (uint32_t)n);
		memcpy(msg + 18, out, n);
		put_msg(bufferevent_get_output(cl->s), 'p', msg, 18 + n);
		return false;
	case 11: /* SASLContinue: the server's first message */
		rc = rift_scram_client_final(&cl->sc, (const char *)body + 4, len - 4, out,
					     sizeof(out));
		if (rc == -ESTALE) {
			char m[256];
			snprintf(m, sizeof(m),
				 "password authentication failed for user \"%s\": its password "
				 "changed since riftd last saw it",
				 cl->user);
			fatal(cl, "28P01", m,
			      "the branch is running now: connect again with the current password");
			return false;
		}
		if (rc != 0)
			break;
		put_msg(bufferevent_get_output(cl->s), 'p', out, strlen(out));
		return false;
	case 12: /* SASLFinal: the server proves it knew the verifier too */
		if (rift_scram_client_verify(&cl->sc, (const char *)body + 4, len - 4) != 0)
			break;
		return false;
	default:
		break;
	}
	fatal(cl, "28000",
	      "the branch's server asked for an authentication rift cannot answer for a client "
	      "it checked itself",
	      "use scram-sha-256 or trust for host connections in the branch's pg_hba.conf, or "
	      "set [router] start_on_connect = always");
	return false;
}

/* Lets go of sessions idle longer than pool_idle_timeout, and of resets that hang. */
static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct rift_router *r = arg;
	struct pooled *p = r->pool;

	(void)fd;
	(void)what;
	while (p != NULL) {
		if (since_s(&p->since) > (p->ready ? r->pool_idle_s : RESET_TIMEOUT_S)) {
			/* its waiter, if any, may take another session off the list: scan again */
			if (p->ready)
				pool_drop(p);
			else
				pool_reject(
				    p, "its reset took longer than " SECONDS_OF(RESET_TIMEOUT_S));
			p = r->pool;
		} else {
			p = p->next;
		}
	}
}

int pool_open(struct rift_router *r)
{
	struct timeval tick = { 1, 0 };

	if (r->pool_size == 0)
		return 0;
	r->pool_sweep = event_new(r->base, -1, EV_PERSIST, on_sweep, r);
	if (r->pool_sweep == NULL || event_add(r->pool_sweep, &tick) != 0)
		return -1;
	return 0;
}

void pool_close(struct rift_router *r)
{
	while (r->pool != NULL)
		pool_drop(r->pool);
	if (r->pool_sweep != NULL)
		event_free(r->pool_sweep);
	while (r->jobs != NULL) { /* finished fetches whose reports the stopped loop never ran */
		struct secret_job *job = r->jobs;
		r->jobs = job->next;
		event_free(job->done);
		free(job);
	}
}
