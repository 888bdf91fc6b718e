/* api_report.c — GET /v1/branches/NAME/log (and diff): read-only reports on one branch. */
#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "rift/ddl_log.h"
#include "rift/log.h"

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

enum MHD_Result rift_api_report(struct rift_manager *m, struct MHD_Connection *c, const char *name,
				const char *action)
{
	if (strcmp(action, "log") == 0)
		return ddl_log(m, c, name);
	return reply_error(c, MHD_HTTP_NOT_FOUND, "no such report (use log or diff)");
}
