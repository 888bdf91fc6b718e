/* router_internal.h — the router's state, shared by its relay, splice and session-pool parts. */
#ifndef RIFT_ROUTER_INTERNAL_H
#define RIFT_ROUTER_INTERNAL_H

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "rift/log.h"
#include "rift/pgwire.h"
#include "rift/router.h"
#include "rift/scram.h"
#include "rift/splice.h"
#include "rift/startup.h"

#define MAX_LISTENERS           4
#define RELAY_HIGH              (1u << 20) /* stop reading a side while the other owes this much */
#define MAX_STARTING            256        /* clients waiting for a branch to start */
#define MAX_STARTING_PER_BRANCH 64         /* of them, for any one branch */
#define MAX_CANCEL              4096
#define MAX_PARAMS              32  /* ParameterStatus values remembered per session */
#define MAX_AUTH_RECS           256 /* (branch, database, user) logins remembered for reuse */
#define AUTH_FRESH_S            10 /* how long a login the server approved vouches for reused ones */
#define SPLICE_AFTER_MS         1000 /* a reusable session is handed to the kernel once this old */
#define SCRAM_SECRET_MAX        512
#define MAX_TLS_THREADS         8 /* relay threads for logged-in TLS sessions */

#define LOG(...) LOG_INFO("router", __VA_ARGS__)

/*
 * A server session's cancel key. Clients get the server's pid with a key of the router's own,
 * so a client that left a kept session cannot cancel the next client's queries.
 */
struct cancel_key {
	uint32_t pid;
	uint8_t key[RIFT_CANCEL_KEY_MAX];  /* what the session's current client was given */
	uint8_t skey[RIFT_CANCEL_KEY_MAX]; /* the server's */
	size_t keylen;
	int port; /* 0 = free slot */
};

/* Gives the slot a fresh client key and writes the BackendKeyData body for it into msg. */
void cancel_key_issue(struct cancel_key *k, uint8_t *msg, size_t *msglen);

/* The server's ParameterStatus values, replayed to a client that gets a reused session. */
struct pg_params {
	int n;
	bool overflow; /* more or longer than fits: the session is not reused */
	char name[MAX_PARAMS][64];
	char value[MAX_PARAMS][128];
};

/* How the server authenticated a (branch, database, user) login through the router. */
enum auth_method { AUTH_UNKNOWN, AUTH_TRUST, AUTH_SCRAM, AUTH_OTHER };

struct auth_rec {
	char branch[64], db[64], user[64];
	enum auth_method method;
	struct timespec approved;        /* last login the server itself approved */
	struct rift_scram_secret secret; /* AUTH_SCRAM, when have_secret */
	bool have_secret, fetching;
	struct timespec secret_at;
};

struct client;
struct pooled;
struct secret_job;
struct tls_pipe;
struct tls_relay_thread;

struct rift_router {
	struct rift_manager *m;
	struct client *all; /* every live client, for shutdown */
	atomic_int workers; /* start and secret threads still running */
	struct event_base *base;
	struct evconnlistener *listeners[MAX_LISTENERS];
	size_t nlisteners;
	SSL_CTX *ssl;
	struct rift_splice *splice; /* NULL: every byte is relayed here */
	int splice_ep;              /* spliced sockets, watched for hang-ups only */
	struct event *splice_ev;
	bool splice_direct; /* [router] kernel_splice = 2 */
	struct tls_relay_thread *tls_threads[MAX_TLS_THREADS];
	int ntls_threads;
	unsigned next_tls_thread;
	pthread_t thread;
	bool thread_started;
	int clients, starting, max_clients, login_timeout_s;
	/*
	 * Connections still in P_STARTUP, oldest first: [0] sent nothing yet, [1] sent something
	 * (an SSLRequest, part of a packet). At max_startup the oldest silent one makes room.
	 */
	struct client *unstarted_head[2], *unstarted_tail[2];
	int unstarted, max_startup, startup_timeout_s;
	unsigned long evicted, evicted_logged;
	struct timespec evict_log_at;
	struct event *resume; /* listeners paused after an accept error start again */
	unsigned long accept_errors;
	int spare_fd; /* /dev/null, given up when a server socket finds no descriptor free */
	struct timespec accept_log_at;
	int pool_size, pool_idle_s, pooled_count;
	struct pooled *pool; /* server sessions kept between clients */
	struct event *pool_sweep;
	struct secret_job *jobs;  /* verifier fetches in flight */
	bool start_authenticated; /* [router] start_on_connect = authenticated */
	char state[4096];
	struct auth_rec auths[MAX_AUTH_RECS];
	struct cancel_key cancels[MAX_CANCEL];
	struct rift_router_totals closed; /* router thread only; copied out by snapshots */
};

enum phase {
	P_STARTUP,    /* reading the startup packet (and SSL/GSS negotiation) */
	P_STARTING,   /* waiting for the branch's server to start */
	P_CONNECTING, /* connecting to the server */
	P_WATCH,      /* the server authenticates the client; watching its replies */
	P_AUTH,       /* the router authenticates the client for a reused session */
	P_AWAIT,      /* waiting for a kept session's reset to finish, to reuse it */
	P_RELAY,      /* relaying in riftd */
	P_SPLICED,    /* relayed by the kernel */
	P_TLSRELAY,   /* TLS relayed by a relay thread (router_tls_relay.c) */
	P_CLOSING     /* flushing a last message, then closing */
};

enum { SIDE_CLIENT, SIDE_SERVER };

struct client {
	struct rift_router *r;
	struct client *prev, *next;
	struct client *uprev, *unext; /* in r->unstarted_head[ulist] while ulist >= 0 */
	int ulist;
	struct bufferevent *c, *s; /* client side (maybe TLS), server side */
	enum phase phase;
	bool tls, direct_tls, ssl_seen, gss_seen, routed, worker_busy, freed_later;
	SSL *ssl;   /* TLS straight on the socket (not a filter): ours to free, with tls_fd */
	int tls_fd; /* -1 unless ssl */
	struct tls_pipe *pipe; /* P_TLSRELAY */
	char peer[64], branch[64], db[64], user[64], reason[256];
	uint8_t *startup; /* the rewritten StartupMessage for the server */
	size_t startup_len;
	int port;
	struct event *timer, *started;
	int start_status;
	char start_err[512];
	uint64_t in_bytes, out_bytes;
	struct timespec t0, close_by, logged_in;
	struct cancel_key *key;
	uint8_t keymsg[4 + RIFT_CANCEL_KEY_MAX]; /* BackendKeyData body, replayed on reuse */
	size_t keymsg_len;
	/* message tracking while riftd relays (for reuse and for splicing at a quiet moment) */
	struct rift_pgw_scanner srv_scan, cli_scan; /* message boundaries, each direction */
	bool untracked;                             /* framing lost: relay blindly, never reuse */
	char srv_status;   /* last ReadyForQuery status: 'I', 'T', 'E'; 0 = none yet */
	int cli_pending;   /* ReadyForQuery messages the client's requests still await */
	bool cli_unsynced; /* extended-protocol messages sent since the last Sync */
	bool saw_terminate, z_last;
	enum auth_method auth_seen; /* what the server asked of this client */
	bool auth_asked, auth_ok, reused;
	struct pg_params params;
	/* P_AUTH: the router's own SCRAM exchange for a reused session */
	struct pooled *held;
	struct pooled *awaiting; /* P_AWAIT: the kept session being reset for this client */
	struct rift_scram scram;
	struct rift_scram_secret held_secret;
	int scram_step;
	/* a stopped branch's client whose password riftd checked before starting it; the
	 * server is then logged in to with the ClientKey its proof gave up */
	bool preauth;
	struct rift_scram_client sc;
	/* spliced: the kernel relays between fd[0] (client) and fd[1] (server) */
	int fd[2];
	bool eof[2], server_shut, hangup_seen;
	bool direct; /* joined with the server process's own socket; our server socket idles */
	uint64_t recv0[2], sent0[2]; /* socket totals when splicing began */
	struct evbuffer *spill;      /* replies still to write to the client after the join */
};

/* router_wire.c: the pgwire module (rift/pgwire.h) on libevent buffers */
/* Appends message type/body to out. */
void put_msg(struct evbuffer *out, char type, const void *body, size_t len);
/*
 * Takes the whole message at the front of in: its type, and its body into body (cap bytes).
 * 1 when taken; 0 while it is not all there (*type is set once its header is); -1 when its
 * length is invalid or its body would not fit (nothing is taken).
 */
int take_msg(struct evbuffer *in, uint8_t *type, uint8_t *body, size_t cap, uint32_t *len);
/*
 * rift_pgw_scan over the bytes in holds, for cl (ops get cl); a scanner that loses the framing
 * marks cl untracked. Returns how many bytes at the front of in may be relayed.
 */
size_t scan_messages(struct client *cl, struct evbuffer *in, struct rift_pgw_scanner *sc,
		     const struct rift_pgw_scan_ops *ops);

/* router_relay.c */
/* Moves n bytes of src to dst, pausing src while dst owes too much (backpressure). */
void pump(struct bufferevent *src, struct bufferevent *dst, size_t n, uint64_t *count);
/* Relays the client's messages; a Terminate on a reusable idle session keeps the server's. */
void relay_from_client(struct client *cl);

/* router_tls_relay.c */
int tls_relay_open(struct rift_router *r);
/* Stops the relay threads (their sessions stay, to be freed with their clients). */
void tls_relay_close(struct rift_router *r);
void tls_relay_free(struct rift_router *r);
void tls_pipe_free(struct tls_pipe *p);
/* Whether cl's TLS session may leave for a relay thread at this ReadyForQuery. */
bool tls_relay_due(struct client *cl);
/* Hands cl's sockets and TLS state to a relay thread; cl waits in P_TLSRELAY. */
void tls_relay_hand_over(struct client *cl);

/* router_route.c */
/* Routes a client by its StartupMessage: reuses a kept session, connects, or starts the
 * branch; or refuses the client with the reason. */
void route(struct client *cl, const struct rift_startup *st);

/* router.c */
/* Connects cl to its branch's server (cl->port). */
void connect_server(struct client *cl);
/* Moves cl to phase p; leaving P_STARTUP takes it off the list of unstarted connections. */
void set_phase(struct client *cl, enum phase p);
void client_free(struct client *cl);
void close_quietly(struct client *cl, const char *why);
void fatal(struct client *cl, const char *code, const char *msg, const char *hint);
void on_server_read(struct bufferevent *bev, void *arg);
void on_server_write(struct bufferevent *bev, void *arg);
void on_server_event(struct bufferevent *bev, short what, void *arg);
void on_client_read(struct bufferevent *bev, void *arg);
void on_client_write(struct bufferevent *bev, void *arg);
void on_client_event(struct bufferevent *bev, short what, void *arg);
double since_s(const struct timespec *t);

/* router_splice.c */
int splice_open(struct rift_router *r, int max_clients);
void splice_close(struct rift_router *r);
void try_splice(struct client *cl);
void splice_progress(struct client *cl);

/* router_pool.c */
int pool_open(struct rift_router *r);
void pool_close(struct rift_router *r);
void params_set(struct pg_params *p, const uint8_t *body, size_t len);
/* A login the server approved: remembers how, and fetches the SCRAM verifier when needed. */
void auth_learn(struct client *cl);
/*
 * Reuses a kept session for cl if one fits and the login may be vouched for; true if taken.
 * A fitting session still being reset is taken too: cl waits in P_AWAIT for its reset, then
 * is handed it, or connects to the server itself if the session is closed instead.
 */
bool pool_try_reuse(struct client *cl);
/* cl gave up while in P_AWAIT: the session it waited for no longer waits for it. */
void pool_unawait(struct client *cl);
/* Whether cl's session could ever be kept: pooling on, its login vouched for, its params held. */
bool pool_could_keep(const struct client *cl);
/* The client ended cleanly on an idle session: keep the server session for the next one. */
bool pool_keep(struct client *cl);
/* start_on_connect = authenticated: checks cl's password against the branch's cached
 * verifier before its server is started, or refuses cl. */
void preauth_begin(struct client *cl);
/* A server's authentication request to a pre-authenticated client, answered by the router;
 * true when the message is to be passed on to the client (AuthenticationOk). */
bool preauth_server(struct client *cl, const uint8_t *body, uint32_t len);
/* Where routed client cl goes, as branch view v says now: a kept or new session of the running
 * server, or the branch's start (router_route.c). */
void route_go(struct client *cl, const struct rift_branch_view *v);
/* Starts cl's stopped branch on a worker thread, then connects (router.c). */
void start_branch(struct client *cl);
/* P_AUTH: reads the client's SCRAM messages. */
void pool_auth_read(struct client *cl);
/* The client gave up during P_AUTH: its held session goes back to the pool. */
void pool_unhold(struct client *cl);

#endif
