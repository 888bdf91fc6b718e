/* api.h — riftd's HTTP/JSON control API: /v1/branches, /v1/status, /metrics. */
#ifndef RIFT_API_H
#define RIFT_API_H

#include <stddef.h>

#include "rift/manager.h"

struct rift_api;

/*
 * Serves the API on `<state>/run/riftd.sock` (mode 0600) and, when [api] listen is set, on that
 * TCP address with the bearer token from [api] token_file. Requests run on their own threads.
 */
int rift_api_start(struct rift_manager *m, const char *state, struct rift_api **out, char *err,
		   size_t errlen) __attribute__((warn_unused_result));
void rift_api_stop(struct rift_api *api);

/* The router the dashboard and /metrics show connections of (set once it runs; NULL to stop). */
struct rift_router;
void rift_api_set_router(struct rift_api *api, struct rift_router *r);

#endif
