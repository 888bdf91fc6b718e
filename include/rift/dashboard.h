/* dashboard.h — the web dashboard inside riftd's API: pages, login sessions, its own endpoints. */
#ifndef RIFT_DASHBOARD_H
#define RIFT_DASHBOARD_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

#include "rift/manager.h"
#include "rift/router.h"

struct rift_dash;

/* token: the TCP API's bearer token ("" when TCP is off), accepted by the login form. */
int rift_dash_open(struct rift_manager *m, const char *token, struct rift_dash **out)
    __attribute__((warn_unused_result));
void rift_dash_close(struct rift_dash *d);

/* The router whose connections the dashboard and /metrics show; NULL before it runs. */
void rift_dash_set_router(struct rift_dash *d, struct rift_router *r);

/* Adds the headers every answer of riftd's API carries: nothing framed, sniffed or cross-origin. */
void rift_dash_headers(struct MHD_Response *r);

/*
 * Queues text (malloc'd; always taken over) with the security headers and an ETag; a GET whose
 * If-None-Match names that ETag gets 304 and no body, so polling pages cost little.
 */
enum MHD_Result rift_dash_reply(struct MHD_Connection *c, unsigned status, char *text, size_t len,
				const char *type);

/* What a request came with. */
struct rift_dash_req {
	struct MHD_Connection *c;
	const char *url, *method, *body;
	size_t len;
	bool untrusted; /* came over TCP or the dashboard's socket: the caller must prove who */
	bool bearer_ok; /* trusted listener, or the right bearer token */
};

enum rift_dash_verdict {
	RIFT_DASH_PASS, /* authorized: the rest of the API answers */
	RIFT_DASH_DONE, /* answered here (a page, a login, a dashboard endpoint or a refusal) */
};

/*
 * Serves the pages and the login without credentials; then requires the bearer token or a
 * session cookie, and for a state change made with a cookie the session's CSRF token and a
 * same-origin request. *ret is the result for libmicrohttpd when DONE.
 */
enum rift_dash_verdict rift_dash_gate(struct rift_dash *d, const struct rift_dash_req *rq,
				      enum MHD_Result *ret);

/* The Prometheus text of /metrics (manager, branches, router, store); caller frees; NULL on
 * no memory. */
char *rift_dash_metrics(struct rift_dash *d, size_t *len);

#endif
