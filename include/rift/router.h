/* router.h — the Postgres wire-protocol router: dbname=<branch> or <db>@<branch> → its server. */
#ifndef RIFT_ROUTER_H
#define RIFT_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rift/manager.h"

struct rift_router;

/*
 * Listens on [router] listen (host:port, *:port for every address, [v6]:port) and serves
 * clients on its own thread and event loop: negotiates TLS (with the configured or self-signed
 * certificate) or refuses it, routes each startup packet to its branch's server over loopback
 * TCP (starting the branch when needed), then relays bytes both ways. *err says why it could
 * not listen.
 */
int rift_router_start(struct rift_manager *m, const char *state, struct rift_router **out,
		      char *err, size_t errlen) __attribute__((warn_unused_result));
void rift_router_stop(struct rift_router *r);

/* One client connection of the router as the dashboard shows it. */
struct rift_router_session {
	char peer[64], branch[64], db[64], user[64];
	const char *mode; /* "login", "starting", "relayed", "spliced", "closing" */
	bool tls, reused;
	double age_s;
	uint64_t in_bytes, out_bytes; /* client to server, server to client, so far */
};

/* What closed connections moved, by how riftd relayed them when they ended. */
struct rift_router_totals {
	uint64_t sessions[2], bytes[2]; /* [0] relayed in riftd, [1] spliced in the kernel */
};

/*
 * A snapshot of every connection, taken on the router's own thread (its loop owns the list), so
 * any thread may call this. *out (caller frees) gets *count sessions; totals may be NULL.
 * 0, or -ETIMEDOUT when the router's loop did not answer within timeout_ms, -ENOMEM.
 */
int rift_router_sessions(struct rift_router *r, struct rift_router_session **out, size_t *count,
			 struct rift_router_totals *totals, int timeout_ms)
    __attribute__((warn_unused_result));

#endif
