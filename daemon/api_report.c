/* api_report.c — GET /v1/branches/NAME/log (and diff): read-only reports on one branch. */
#include <jansson.h>
#include <stdatomic.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "rift/ddl_log.h"
#include "rift/diff.h"
#include "rift/log.h"
#include "rift/manager.h"
#include "rift/store.h"

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, json_t *doc)
{
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	struct MHD_Response *r;
	enum MHD_Result ret;

	json_decref(doc);
	if (text == NULL)
		return MHD_NO;
	r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "application/json");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
	return reply(c, status,
		     json_pack("{s:{s:i,s:s}}", "error", "status", (int)status, "message", msg));
}

bool rift_api_is_report(const char *action)
{
	return strcmp(action, "log") == 0 || strcmp(action, "diff") == 0;
}

/*
 * The DDL of branch name since it was made, from its server's log (log/NAME.log, riftd's own
 * file: the server writes it through the descriptor riftd gave it). Entries older than the
 * branch are skipped, so a log left by a deleted branch of the same name, or the time before a
 * reset, does not show.
 */
static enum MHD_Result ddl_log(struct rift_manager *m, struct MHD_Connection *c, const char *name)
{
	struct rift_branch_view v;
	struct rift_ddl_log l;
	char err[5000], path[4200];
	enum rift_status st;
	json_t *doc;
	int rc;

	st = rift_manager_get(m, name, &v, err, sizeof(err));
	if (st != RIFT_OK)
		return reply_error(c, st, err);
	snprintf(path, sizeof(path), "%.3000s/log/%s.log", rift_manager_state_dir(m), name);
	rift_ddl_log_init(&l, v.info.created_ns / 1000000);
	rc = rift_ddl_log_read_file(&l, path);
	if (rc != 0) {
		rift_ddl_log_free(&l);
		snprintf(err, sizeof(err), "cannot read the server log %s of branch \"%s\": %s",
			 path, name, strerror(-rc));
		LOG_WARN("api", "%s", err);
		return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, err);
	}
	doc = rift_ddl_log_json(&l);
	rift_ddl_log_free(&l);
	if (doc == NULL)
		return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	json_object_set_new(doc, "branch", json_string(name));
	return reply(c, MHD_HTTP_OK, doc);
}

#define DIFF_TIMEOUT_MS 600000 /* per query and per pg_dump */
#define DIFF_MAX_ROWS   1000

static bool flag(struct MHD_Connection *c, const char *name)
{
	const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);

	return v != NULL && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || v[0] == '\0');
}

/*
 * Compares branch name with ?against=OTHER, or without it with the point it was made from (its
 * parent as it was then, served by a temporary hidden branch over that layer). riftd itself
 * connects to both servers (maintenance connections: superuser over each server's 0700 socket
 * directory, search_path pg_catalog, read only, timeouts) and runs pg_dump as each server's own
 * uid; nothing of one branch is sent to the other's server. Whoever may call the API may read
 * every branch already (the unix socket is root's; the TCP API needs the token).
 */
static enum MHD_Result diff_one(struct rift_manager *m, struct MHD_Connection *c, const char *name);

/* Diffs running now: each may hold [diff] max_bytes, so riftd runs only [diff] max_running. */
static atomic_int diffs_running;

static enum MHD_Result diff(struct rift_manager *m, struct MHD_Connection *c, const char *name)
{
	const struct rift_config *cfg = rift_manager_config(m);
	enum MHD_Result ret;
	char msg[256];

	if (atomic_fetch_add(&diffs_running, 1) >= cfg->diff_max_running) {
		atomic_fetch_sub(&diffs_running, 1);
		snprintf(msg, sizeof(msg),
			 "riftd is running %d diff(s) already ([diff] max_running); try again when "
			 "it finishes",
			 cfg->diff_max_running);
		return reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, msg);
	}
	ret = diff_one(m, c, name);
	atomic_fetch_sub(&diffs_running, 1);
	return ret;
}

/*
 * Whether the store's changed blocks may stand for the tables of name and other. Against the
 * fork point (a fresh branch over the layer name left from), or when both chains part at a
 * base's root layer (a stopped cluster: both servers recover it alike), no transaction of
 * before that point can end differently on the two sides without writing its rows' blocks,
 * but prepared ones (checked per database). Two branches that parted at a frozen head of a
 * running server may not: a transaction in flight then can still commit on the parent's side,
 * in pg_xact only, so whole tables are compared.
 */
static void narrow_for(struct rift_manager *m, const char *name, const char *other, bool fork,
		       struct rift_diff_narrow *n)
{
	uint64_t layer;
	bool is_base = false;

	*n = (struct rift_diff_narrow){ .store = rift_manager_store(m), .a = name, .b = other };
	if (!rift_manager_config(m)->diff_narrow)
		n->off = "[diff] narrow = 0 in rift.conf";
	else if (fork)
		return;
	else if (rift_store_common_layer(n->store, name, other, &layer, &is_base) != 0)
		n->off = "the two branches share no layer in the store";
	else if (!is_base)
		n->off = "the two branches parted at a point of a running server (only a diff "
			 "against the fork point, or of branches that share a base, is narrowed)";
}

static enum MHD_Result diff_one(struct rift_manager *m, struct MHD_Connection *c, const char *name)
{
	const struct rift_config *cfg = rift_manager_config(m);
	const char *against = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "against");
	const char *rows = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "rows");
	struct rift_diff_opts opts = { .timeout_ms = DIFF_TIMEOUT_MS,
				       .max_bytes = cfg->diff_max_bytes };
	struct rift_instance bi, oi;
	struct rift_diff_side bs, os;
	struct rift_diff_narrow narrow;
	struct rift_branch_view v;
	char err[5000], other[64], label[160];
	enum rift_status st;
	bool fork;
	json_t *doc = NULL;
	char *end;
	long n;
	int rc;

	st = rift_manager_get(m, name, &v, err, sizeof(err));
	if (st != RIFT_OK)
		return reply_error(c, st, err);
	if (rows != NULL) {
		n = strtol(rows, &end, 10);
		if (end == rows || *end != '\0' || n < 0 || n > DIFF_MAX_ROWS)
			return reply_error(c, MHD_HTTP_BAD_REQUEST,
					   "rows must be a number from 0 to 1000");
		opts.rows = (int)n;
	}
	opts.sql = flag(c, "sql");
	opts.with_text = flag(c, "definitions");
	fork = against == NULL || against[0] == '\0';
	if (fork) {
		/* the parent as it was when name was made: a hidden branch over that point */
		snprintf(label, sizeof(label), "%s (as %s was made)",
			 v.info.parent[0] ? v.info.parent : "the base", name);
		st = rift_manager_fork_hold(m, name, other, sizeof(other), &oi, err, sizeof(err));
		if (st != RIFT_OK)
			return reply_error(
			    c, st == RIFT_NOT_FOUND || st == RIFT_CONFLICT ? st : RIFT_UNAVAILABLE,
			    err);
	} else {
		snprintf(other, sizeof(other), "%s", against);
		snprintf(label, sizeof(label), "%s", against);
		if (strcmp(other, name) == 0)
			return reply_error(c, MHD_HTTP_BAD_REQUEST,
					   "a branch compared with itself has no differences; name "
					   "another");
		st = rift_manager_get(m, other, &v, err, sizeof(err));
		if (st != RIFT_OK)
			return reply_error(c, st, err);
		st = rift_manager_hold(m, other, &oi, err, sizeof(err));
		if (st != RIFT_OK)
			return reply_error(c, st == RIFT_NOT_FOUND ? st : RIFT_UNAVAILABLE, err);
	}
	st = rift_manager_hold(m, name, &bi, err, sizeof(err));
	if (st != RIFT_OK) {
		if (fork)
			rift_manager_fork_drop(m, other, true);
		else
			rift_manager_release(m, other);
		return reply_error(c, st == RIFT_NOT_FOUND ? st : RIFT_UNAVAILABLE, err);
	}
	narrow_for(m, name, other, fork, &narrow);
	narrow.mnt_a = bi.datadir;
	narrow.mnt_b = oi.datadir;
	opts.narrow = &narrow;
	bs = (struct rift_diff_side){ name, &bi, cfg->pg_user, rift_manager_bindir(m) };
	os = (struct rift_diff_side){ label, &oi, cfg->pg_user, rift_manager_bindir(m) };
	rc = rift_diff_branches(&bs, &os, &opts, &doc, err, sizeof(err));
	rift_manager_release(m, name);
	if (fork)
		rift_manager_fork_drop(m, other, true);
	else
		rift_manager_release(m, other);
	if (rc != 0) {
		LOG_WARN("api", "diff %s against %s: %s", name, label, err);
		return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, err);
	}
	json_object_set_new(doc, "fork_point", json_boolean(fork));
	if (fork)
		json_object_set_new(doc, "against",
				    v.info.parent[0] ? json_string(v.info.parent) : json_null());
	return reply(c, MHD_HTTP_OK, doc);
}

enum MHD_Result rift_api_report(struct rift_manager *m, struct MHD_Connection *c, const char *name,
				const char *action)
{
	if (strcmp(action, "log") == 0)
		return ddl_log(m, c, name);
	if (strcmp(action, "diff") == 0)
		return diff(m, c, name);
	return reply_error(c, MHD_HTTP_NOT_FOUND, "no such report (use log or diff)");
}
