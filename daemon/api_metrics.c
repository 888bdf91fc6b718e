/* api_metrics.c — /metrics: the manager's series plus per-branch, router and store series. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dash_internal.h"
#include "rift/latency.h"

#define BASE_BUF       (256u * 1024u)
#define PER_BRANCH_BUF 1024u /* every series of one branch fits in this */

struct out {
	char *buf;
	size_t len, used;
	bool full;
};

static void emit(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void emit(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (o->full)
		return;
	va_start(ap, fmt);
	k = vsnprintf(o->buf + o->used, o->len - o->used, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= o->len - o->used) {
		o->full = true; /* cut at a line: a partial line would not parse */
		o->buf[o->used] = '\0';
		return;
	}
	o->used += (size_t)k;
}

static void histogram(struct out *o, const struct rift_latency *h, const char *name,
		      const char *labels)
{
	if (!o->full && rift_latency_format(h, name, labels, o->buf, o->len, &o->used) != 0)
		o->full = true;
}

static void branch_series(struct out *o, const struct rift_branch_view *v, size_t n)
{
	size_t i;

	emit(o, "# HELP rift_branch_connections Client connections routed to a branch now.\n"
		"# TYPE rift_branch_connections gauge\n");
	for (i = 0; i < n; i++)
		emit(o, "rift_branch_connections{branch=\"%s\"} %d\n", v[i].info.name,
		     v[i].connections > 0 ? v[i].connections : 0);
	emit(o, "# HELP rift_branch_pooled_sessions Idle server sessions kept for a branch.\n"
		"# TYPE rift_branch_pooled_sessions gauge\n");
	for (i = 0; i < n; i++)
		emit(o, "rift_branch_pooled_sessions{branch=\"%s\"} %d\n", v[i].info.name,
		     v[i].pooled > 0 ? v[i].pooled : 0);
	emit(o, "# HELP rift_branch_running Whether a branch's server runs (1) or not (0).\n"
		"# TYPE rift_branch_running gauge\n");
	for (i = 0; i < n; i++)
		emit(o, "rift_branch_running{branch=\"%s\"} %d\n", v[i].info.name,
		     v[i].running ? 1 : 0);
	emit(o, "# HELP rift_branch_starts_total Starts of a branch's server since riftd began.\n"
		"# TYPE rift_branch_starts_total counter\n");
	for (i = 0; i < n; i++)
		emit(o, "rift_branch_starts_total{branch=\"%s\"} %llu\n", v[i].info.name,
		     (unsigned long long)v[i].starts);
}

static void router_series(struct out *o, struct rift_router *r)
{
	static const char *modes[] = { "login", "starting", "relayed", "spliced", "closing" };
	struct rift_router_session *s = NULL;
	struct rift_router_totals tot;
	uint64_t open_bytes[2] = { 0, 0 };
	size_t n = 0, i, k;
	unsigned count[5] = { 0 };

	if (r == NULL || rift_router_sessions(r, &s, &n, &tot, 2000) != 0)
		return; /* the series are left out rather than wrong */
	for (i = 0; i < n; i++) {
		for (k = 0; k < 5 && strcmp(s[i].mode, modes[k]) != 0; k++)
			;
		if (k < 5)
			count[k]++;
		if (strcmp(s[i].mode, "spliced") == 0)
			open_bytes[1] += s[i].in_bytes + s[i].out_bytes;
		else
			open_bytes[0] += s[i].in_bytes + s[i].out_bytes;
	}
	free(s);
	emit(o, "# HELP rift_router_sessions Client connections of the router now, by what it is "
		"doing.\n# TYPE rift_router_sessions gauge\n");
	for (k = 0; k < 5; k++)
		emit(o, "rift_router_sessions{mode=\"%s\"} %u\n", modes[k], count[k]);
	emit(o,
	     "# HELP rift_router_sessions_closed_total Routed connections ended, by how they "
	     "were relayed at the end.\n# TYPE rift_router_sessions_closed_total counter\n"
	     "rift_router_sessions_closed_total{mode=\"relayed\"} %llu\n"
	     "rift_router_sessions_closed_total{mode=\"spliced\"} %llu\n",
	     (unsigned long long)tot.sessions[0], (unsigned long long)tot.sessions[1]);
	emit(o,
	     "# HELP rift_router_bytes_total Bytes relayed both ways, by riftd or the kernel "
	     "(a connection counts under the mode it has when it ends).\n"
	     "# TYPE rift_router_bytes_total counter\n"
	     "rift_router_bytes_total{mode=\"relayed\"} %llu\n"
	     "rift_router_bytes_total{mode=\"spliced\"} %llu\n",
	     (unsigned long long)(tot.bytes[0] + open_bytes[0]),
	     (unsigned long long)(tot.bytes[1] + open_bytes[1]));
}

char *rift_dash_metrics(struct rift_dash *d, size_t *len)
{
	const struct rift_latency *wl, *sl;
	struct rift_branch_view *v = NULL;
	char err[512];
	size_t n = 0;
	struct out o = { 0 };

	if (rift_manager_list(d->m, &v, &n, err, sizeof(err)) != RIFT_OK)
		n = 0;
	o.len = BASE_BUF + (n + 1) * PER_BRANCH_BUF;
	o.buf = malloc(o.len);
	if (o.buf == NULL) {
		free(v);
		return NULL;
	}
	o.used = rift_manager_metrics(d->m, o.buf, o.len);
	branch_series(&o, v, n);
	free(v);
	emit(&o,
	     "# HELP rift_start_seconds Time from asking for a branch's server to its being "
	     "ready, waiting for a start slot included.\n# TYPE rift_start_seconds histogram\n");
	histogram(&o, rift_manager_start_latency(d->m), "rift_start_seconds", "");
	router_series(&o, atomic_load(&d->router));
	rift_store_latency(rift_manager_store(d->m), &wl, &sl);
	emit(&o, "# HELP rift_store_write_seconds Time of a RocksDB write batch (a FUSE write, "
		 "create, rename...).\n# TYPE rift_store_write_seconds histogram\n");
	histogram(&o, wl, "rift_store_write_seconds", "");
	emit(&o, "# HELP rift_store_sync_seconds Time of a synced RocksDB write (fsync of a "
		 "branch file, a branch create).\n# TYPE rift_store_sync_seconds histogram\n");
	histogram(&o, sl, "rift_store_sync_seconds", "");
	*len = o.used;
	return o.buf;
}
