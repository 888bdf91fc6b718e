/* router_relay.c — relaying a routed session in riftd: backpressure, following message
 * boundaries both ways (login replies, ReadyForQuery, Terminate), and the moment to splice. */
#include <openssl/rand.h>
#include <string.h>
#include <sys/ioctl.h>

#include "router_internal.h"

/* Moves n bytes of src to dst, pausing src while dst owes too much (backpressure). */
void pump(struct bufferevent *src, struct bufferevent *dst, size_t n, uint64_t *count)
{
	struct evbuffer *in = bufferevent_get_input(src), *out = bufferevent_get_output(dst);

	*count += n;
	if (n == evbuffer_get_length(in))
		evbuffer_add_buffer(out, in);
	else
		evbuffer_remove_buffer(in, out, n);
	if (evbuffer_get_length(out) >= RELAY_HIGH)
		bufferevent_disable(src, EV_READ);
}

/* ---- client to server ---- */

/* Counts what the server owes a ReadyForQuery for, so a Terminate finds it truly idle. */
static bool client_header(void *arg, uint8_t type)
{
	struct client *cl = arg;

	switch (type) {
	case 'X':
		return true;
	case 'Q': /* simple query */
	case 'F': /* function call */
		cl->cli_pending++;
		break;
	case 'S': /* Sync ends an extended-protocol batch */
		cl->cli_pending++;
		cl->cli_unsynced = false;
		break;
	case 'P':
	case 'B':
	case 'D':
	case 'E':
	case 'C':
	case 'H':
		cl->cli_unsynced = true;
		break;
	default:
		break;
	}
	return false;
}

static bool client_look(void *arg, uint8_t type, const uint8_t *body, uint32_t len)
{
	struct client *cl = arg;

	(void)body;
	(void)len;
	cl->saw_terminate = type == 'X';
	return !cl->saw_terminate;
}

static const struct rift_pgw_scan_ops client_ops = { client_header, client_look,
						     RIFT_PGW_LOOK_MAX };

/* Relays the client's messages; a Terminate on a reusable idle session keeps the server's. */
void relay_from_client(struct client *cl)
{
	struct evbuffer *in = bufferevent_get_input(cl->c);
	size_t n;

	cl->saw_terminate = false;
	n = scan_messages(cl, in, &cl->cli_scan, &client_ops);
	if (!cl->saw_terminate) {
		if (n > 0)
			pump(cl->c, cl->s, n, &cl->in_bytes);
		return;
	}
	if (n > 5) /* what came before the Terminate */
		pump(cl->c, cl->s, n - 5, &cl->in_bytes);
	if (evbuffer_get_length(in) == 5 && pool_keep(cl))
		return;       /* the client is gone; its server session waits for the next one */
	cl->untracked = true; /* the server hears the Terminate and ends the session */
	pump(cl->c, cl->s, evbuffer_get_length(in), &cl->in_bytes);
}

/* ---- server to client ---- */

void cancel_key_issue(struct cancel_key *k, uint8_t *msg, size_t *msglen)
{
	if (RAND_bytes(k->key, (int)k->keylen) != 1)
		memcpy(k->key, k->skey, k->keylen); /* no randomness: the server's own key */
	rift_put_be32(msg, k->pid);
	memcpy(msg + 4, k->key, k->keylen);
	*msglen = 4 + k->keylen;
}

/*
 * Takes a slot for the server's BackendKeyData; body is rewritten with the key issued. A login
 * has one: a second comes only from a hostile server (its superuser can load code into its
 * backends) and, taken, would leak a slot per message until no cancel routes for any branch,
 * so it ends the session. False when it did (the client was told why).
 */
static bool note_cancel_key(struct client *cl, uint8_t *body, uint32_t len)
{
	struct cancel_key *k;
	size_t i;

	if (cl->key != NULL || cl->keymsg_len != 0) {
		LOG_WARN("router",
			 "%s branch %s: its server sent a second BackendKeyData; session closed",
			 cl->peer, cl->branch);
		bufferevent_disable(cl->s, EV_READ); /* nothing more from this server is relayed */
		fatal(cl, "08P01",
		      "protocol violation: the branch's server sent a second BackendKeyData",
		      "the branch's server is misbehaving (a library loaded by its superuser?); "
		      "check the branch, or delete it");
		return false;
	}
	if (len < 8 || len - 4 > RIFT_CANCEL_KEY_MAX)
		return true;
	for (i = 0; i < MAX_CANCEL && cl->r->cancels[i].port != 0; i++)
		;
	if (i == MAX_CANCEL) { /* no slot: the server's key as it is; cancels just do not route */
		memcpy(cl->keymsg, body, len);
		cl->keymsg_len = len;
		return true;
	}
	k = &cl->r->cancels[i];
	k->pid = rift_be32(body);
	k->keylen = len - 4;
	memcpy(k->skey, body + 4, k->keylen);
	k->port = cl->port;
	cl->key = k;
	cancel_key_issue(k, cl->keymsg, &cl->keymsg_len);
	memcpy(body, cl->keymsg, cl->keymsg_len);
	return true;
}

/* Login replies (to learn how the server authenticates), parameters and ReadyForQuery. */
static bool server_header(void *arg, uint8_t type)
{
	struct client *cl = arg;

	cl->z_last = false;
	if (type == 'S' || type == 'Z')
		return true;
	return cl->phase == P_WATCH && (type == 'R' || type == 'K');
}

static bool server_look(void *arg, uint8_t type, const uint8_t *body, uint32_t len)
{
	struct client *cl = arg;

	uint32_t code;

	switch (type) {
	case 'R':
		if (len < 4)
			break;
		code = rift_be32(body);
		if (code == 0) { /* AuthenticationOk; before any request: the server trusts us */
			cl->auth_ok = true;
			if (!cl->auth_asked)
				cl->auth_seen = AUTH_TRUST;
		} else if (code == 10) { /* SASL, with its NUL-separated mechanisms */
			cl->auth_asked = true;
			cl->auth_seen = memmem(body + 4, len - 4, "SCRAM-SHA-256", 14) != NULL
					    ? AUTH_SCRAM
					    : AUTH_OTHER;
		} else if (code != 11 && code != 12) { /* not SASL's continue and final */
			cl->auth_asked = true;
			cl->auth_seen = AUTH_OTHER;
		}
		break;
	case 'K': /* handled by relay_login, which may rewrite it */
		break;
	case 'S':
		params_set(&cl->params, body, len);
		break;
	case 'Z':
		cl->z_last = true;
		cl->srv_status = len >= 1 ? (char)body[0] : 0;
		if (cl->phase == P_WATCH) {
			set_phase(cl, P_RELAY);
			clock_gettime(CLOCK_MONOTONIC, &cl->logged_in);
			if (cl->auth_ok)
				auth_learn(cl);
		} else if (cl->cli_pending > 0) {
			cl->cli_pending--;
		}
		break;
	default:
		break;
	}
	return true;
}

static const struct rift_pgw_scan_ops server_ops = { server_header, server_look,
						     RIFT_PGW_LOOK_MAX };

/*
 * Whether to hand the session to the kernel at this ReadyForQuery. A session that may be kept
 * for the next client stays here for its first second (a kernel-relayed session cannot be
 * kept: its Terminate goes straight to the server); the others go at once. Only when the
 * client owes nothing and is owed little, so the last replies are written in one go.
 */
static bool splice_due(struct client *cl)
{
	int outq = 0;

	if (cl->r->splice == NULL || cl->tls || cl->untracked || cl->cli_pending > 0 ||
	    cl->cli_unsynced)
		return false;
	if (pool_could_keep(cl) && since_s(&cl->logged_in) * 1000 < SPLICE_AFTER_MS)
		return false;
	return evbuffer_get_length(bufferevent_get_output(cl->c)) <= 4096 &&
	       ioctl(bufferevent_getfd(cl->c), TIOCOUTQ, &outq) == 0 && outq <= 4096;
}

/*
 * Until the first ReadyForQuery the server's messages (all small) are passed on one by one,
 * so BackendKeyData can carry a key of the router's own. A message too large to hold here
 * ends the watching: the rest is relayed as it comes.
 */
static void relay_login(struct client *cl)
{
	struct evbuffer *in = bufferevent_get_input(cl->s), *out = bufferevent_get_output(cl->c);
	uint8_t type, body[8192];
	uint32_t len;
	int rc;

	while (cl->phase == P_WATCH && (rc = take_msg(in, &type, body, sizeof(body), &len)) != 0) {
		if (rc < 0) {
			cl->untracked = true;
			set_phase(cl, P_RELAY);
			return;
		}
		if (type == 'R' && cl->preauth) {
			if (!preauth_server(cl, body, len))
				continue; /* answered here, or the client was told why not */
		} else if (type == 'K') {
			if (!note_cancel_key(cl, body, len))
				return; /* the session is closing */
		} else if (server_header(cl, type)) {
			server_look(cl, type, body, len);
		}
		put_msg(out, (char)type, body, len);
		cl->out_bytes += 5 + len;
	}
}

void on_server_read(struct bufferevent *bev, void *arg)
{
	struct client *cl = arg;
	struct evbuffer *in = bufferevent_get_input(cl->s);
	size_t n = 0, avail;
	bool ready_last = false;

	(void)bev;
	if (cl->phase == P_WATCH) {
		relay_login(cl);
		if (cl->phase == P_CLOSING) /* the server broke the protocol: it is heard no more */
			return;
		ready_last = cl->phase == P_RELAY && !cl->untracked && evbuffer_get_length(in) == 0;
	}
	avail = evbuffer_get_length(in);
	if (cl->phase != P_WATCH && avail > 0) {
		cl->z_last = false;
		n = scan_messages(cl, in, &cl->srv_scan, &server_ops);
		if (n > 0)
			pump(cl->s, cl->c, n, &cl->out_bytes);
		ready_last = n == avail && cl->z_last;
	}
	if (evbuffer_get_length(bufferevent_get_output(cl->c)) >= RELAY_HIGH)
		bufferevent_disable(cl->s, EV_READ);
	if (ready_last && cl->phase == P_RELAY && splice_due(cl))
		try_splice(cl);
	else if (ready_last && cl->phase == P_RELAY && tls_relay_due(cl))
		tls_relay_hand_over(cl);
}

void on_server_write(struct bufferevent *bev, void *arg)
{
	struct client *cl = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) < RELAY_HIGH / 2)
		bufferevent_enable(cl->c, EV_READ);
}
