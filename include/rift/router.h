/* router.h — the Postgres wire-protocol router: dbname=<branch> or <db>@<branch> → its server. */
#ifndef RIFT_ROUTER_H
#define RIFT_ROUTER_H

#include <stddef.h>

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

#endif
