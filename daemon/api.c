/* api.c — riftd's HTTP/JSON control API (libmicrohttpd) on a 0600 unix socket and optional TCP. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "rift/api.h"
#include "api_internal.h"
#include "rift/dashboard.h"
#include "rift/branch_secret.h"
#include "rift/labels.h"
#include "rift/log.h"
#include "rift/tls_pin.h"

#define MAX_BODY (64u * 1024u)

struct rift_api;

/* What the request handler is given: which API and which listener the request came in on. */
struct listener {
	struct rift_api *api;
	bool tcp; /* TCP or the dashboard's socket: the caller must show the token or a session */
};

struct rift_api {
	struct rift_manager *m;
	struct listener unix_l, tcp_l, dash_l;
	struct MHD_Daemon *unix_d, *tcp_d, *dash_d;
	struct rift_dash *dash;
	char sock_path[4200];
	char dash_path[4200]; /* run/dashboard.sock: what `rift dashboard` forwards a port to */
	char state[4096];
	char token[256]; /* required on TCP; "" when TCP is off */
	/* HTTPS on TCP ([api] tls = on): PEM text MHD keeps pointers to while it runs */
	char *tls_cert, *tls_key;
	char tls_pin[128]; /* the certificate's public-key pin, for rift status */
};

/* Per-request state: the body collected so far. */
struct request {
	char *body;
	size_t len;
	bool too_big;
	bool tcp;
};

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *doc)
{
	char *text = json_dumps(doc, JSON_COMPACT);

	json_decref(doc);
	if (text == NULL)
		return MHD_NO;
	return rift_dash_reply(c, status, text, strlen(text), "application/json");
}

/* Every error is {"error": {"status": N, "message": "..."}} with a message a person can act on. */
static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
	return send_json(
	    c, status, json_pack("{s:{s:i,s:s}}", "error", "status", (int)status, "message", msg));
}

/* "k=v,k=v" as {"k": "v", ...}. */
static json_t *labels_json(const char *labels)
{
	json_t *o = json_object();
	const char *p = labels;

	while (o != NULL && *p != '\0') {
		size_t n = strcspn(p, ","), k = strcspn(p, "=");
		char key[RIFT_LABEL_PART], val[RIFT_LABEL_PART];
		if (k < n && k < sizeof(key) && n - k - 1 < sizeof(val)) {
			snprintf(key, sizeof(key), "%.*s", (int)k, p);
			snprintf(val, sizeof(val), "%.*s", (int)(n - k - 1), p + k + 1);
			json_object_set_new(o, key, json_string(val));
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return o;
}

static json_t *branch_json(struct rift_api *api, const struct rift_branch_view *v)
{
	const struct rift_base_meta *meta = rift_manager_base(api->m);
	char created[32];
	time_t secs = (time_t)(v->info.created_ns / 1000000000);
	struct tm tm;
	json_t *o;

	gmtime_r(&secs, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	o = json_pack("{s:s,s:s?,s:s,s:i,s:s,s:I,s:I,s:i,s:i,s:s}", "name", v->info.name, "parent",
		      v->info.parent[0] ? v->info.parent : NULL, "state",
		      v->starting  ? "starting"
		      : v->running ? "running"
				   : "stopped",
		      "port", v->port, "created", created, "bytes_own",
		      (json_int_t)v->info.bytes_own, "bytes_shared",
		      (json_int_t)v->info.bytes_shared, "chain_depth", (int)v->info.chain_depth,
		      "children", (int)v->info.nchildren, "database", meta->default_db);
	if (o != NULL)
		json_object_set_new(o, "max_size",
				    v->info.max_size ? json_integer((json_int_t)v->info.max_size)
						     : json_null());
	if (o != NULL) {
		json_object_set_new(o, "connections",
				    json_integer(v->connections > 0 ? v->connections : 0));
		json_object_set_new(o, "pooled", json_integer(v->pooled > 0 ? v->pooled : 0));
		json_object_set_new(o, "starts", json_integer((json_int_t)v->starts));
		/* on disk (overlay files and records): riftd's estimate, a few seconds old */
		json_object_set_new(o, "bytes_own_disk",
				    json_integer((json_int_t)v->info.bytes_own_disk));
		json_object_set_new(o, "bytes_shared_disk",
				    json_integer((json_int_t)v->info.bytes_shared_disk));
	}
	if (o != NULL && v->error[0])
		json_object_set_new(o, "last_error", json_string(v->error));
	if (o != NULL)
		json_object_set_new(o, "labels", labels_json(v->info.labels));
	if (o != NULL) {
		char expires[32] = "";
		if (v->expires_at > 0) {
			secs = (time_t)v->expires_at;
			gmtime_r(&secs, &tm);
			strftime(expires, sizeof(expires), "%Y-%m-%dT%H:%M:%SZ", &tm);
		}
		json_object_set_new(o, "expires", expires[0] ? json_string(expires) : json_null());
	}
	return o;
}

static enum MHD_Result reply_view(struct rift_api *api, struct MHD_Connection *c,
				  enum rift_status st, const struct rift_branch_view *v,
				  const char *err)
{
	if (st != RIFT_OK && st != RIFT_CREATED)
		return send_error(c, st, err);
	return send_json(c, st, branch_json(api, v));
}

/* Collects ?label=k=v arguments (repeatable) into a selector; a bad one is remembered. */
struct selector {
	char text[RIFT_LABELS_MAX];
	const char *bad;
};

static enum MHD_Result take_label(void *cls, enum MHD_ValueKind kind, const char *key,
				  const char *value)
{
	struct selector *sel = cls;
	size_t used = strlen(sel->text);

	(void)kind;
	if (strcmp(key, "label") != 0 || sel->bad != NULL)
		return MHD_YES;
	/* "key" alone selects any value of key; otherwise it must be a valid key=value */
	if (value == NULL || (strchr(value, '=') != NULL && rift_label_check(value) != NULL) ||
	    (strchr(value, '=') == NULL && (value[0] == '\0' || strchr(value, ',') != NULL)) ||
	    used + strlen(value) + 2 > sizeof(sel->text)) {
		sel->bad = value ? value : "";
		return MHD_YES;
	}
	snprintf(sel->text + used, sizeof(sel->text) - used, "%s%s", used ? "," : "", value);
	return MHD_YES;
}

static enum MHD_Result list_branches(struct rift_api *api, struct MHD_Connection *c)
{
	struct rift_branch_view *v;
	struct selector sel = { "", NULL };
	char err[1024];
	size_t n, i;
	json_t *arr;

	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, take_label, &sel);
	if (sel.bad != NULL) {
		snprintf(err, sizeof(err),
			 "?label=%.100s is not a label selector (key=value like pr=123, or a key "
			 "alone)",
			 sel.bad);
		return send_error(c, MHD_HTTP_BAD_REQUEST, err);
	}
	if (rift_manager_list(api->m, &v, &n, err, sizeof(err)) != RIFT_OK)
		return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, err);
	arr = json_array();
	for (i = 0; i < n; i++)
		if (rift_labels_match(v[i].info.labels, sel.text))
			json_array_append_new(arr, branch_json(api, &v[i]));
	free(v);
	return send_json(c, MHD_HTTP_OK, json_pack("{s:o}", "branches", arr));
}

static enum MHD_Result create_branch(struct rift_api *api, struct MHD_Connection *c,
				     const struct request *rq)
{
	struct rift_branch_view v;
	const char *name = NULL, *from = NULL;
	struct rift_create_opts opts = { 0 };
	json_int_t ttl = 0, max_size = -1;
	int new_password = 0;
	json_t *labels = NULL;
	char set[RIFT_LABELS_MAX] = "";
	json_error_t jerr;
	char err[1024];
	enum rift_status st;
	json_t *doc;

	if (rq->too_big)
		return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "request body over 64 KiB");
	doc = json_loadb(rq->body ? rq->body : "", rq->len, 0, &jerr);
	if (doc == NULL || !json_is_object(doc)) {
		snprintf(err, sizeof(err),
			 "the body must be a JSON object like {\"name\": \"feature-x\", \"from\": "
			 "\"main\"}: %s",
			 doc == NULL ? jerr.text : "not an object");
		json_decref(doc);
		return send_error(c, MHD_HTTP_BAD_REQUEST, err);
	}
	if (json_unpack_ex(doc, &jerr, 0, "{s:s,s?s,s?I,s?I,s?b,s?o}", "name", &name, "from", &from,
			   "ttl_seconds", &ttl, "max_size", &max_size, "new_password",
			   &new_password, "labels", &labels) != 0 ||
	    ttl < 0 || max_size < -1) {
		snprintf(err, sizeof(err),
			 "\"name\" and optional \"from\" must be strings, \"ttl_seconds\" a "
			 "positive integer, \"max_size\" bytes (0 = unlimited), \"new_password\" "
			 "true or false: %s",
			 jerr.text);
		json_decref(doc);
		return send_error(c, MHD_HTTP_BAD_REQUEST, err);
	}
	if (labels != NULL) {
		const char *key;
		json_t *val;
		if (!json_is_object(labels)) {
			json_decref(doc);
			return send_error(c, MHD_HTTP_BAD_REQUEST,
					  "\"labels\" must be an object like {\"pr\": \"123\"}");
		}
		json_object_foreach(labels, key, val)
		{
			char kv[2 * RIFT_LABEL_PART + 2];
			const char *why;
			int rc;
			snprintf(kv, sizeof(kv), "%.100s=%.100s", key,
				 json_is_string(val) ? json_string_value(val) : "");
			why = !json_is_string(val) ? "label values are strings"
						   : rift_label_check(kv);
			rc = why ? -EINVAL : rift_labels_add(set, sizeof(set), kv);
			if (rc != 0) {
				snprintf(err, sizeof(err), "label %s: %s", kv,
					 why ? why : "too many labels (at most 16, 255 bytes)");
				json_decref(doc);
				return send_error(c, MHD_HTTP_BAD_REQUEST, err);
			}
		}
		opts.labels = set;
	}
	opts.from = from;
	opts.ttl_s = (long)ttl;
	opts.has_max_size = max_size >= 0;
	opts.max_size = max_size >= 0 ? (uint64_t)max_size : 0;
	opts.new_password = new_password != 0;
	memset(&v, 0, sizeof(v));
	st = rift_manager_create(api->m, name, &opts, &v, err, sizeof(err));
	json_decref(doc);
	if (st == RIFT_CREATED && v.password[0] != '\0') {
		/* the only time riftd says it over the API; `rift url` reads it as root later */
		json_t *o = branch_json(api, &v);
		if (o != NULL)
			json_object_set_new(o, "password", json_string(v.password));
		explicit_bzero(v.password, sizeof(v.password));
		return send_json(c, st, o);
	}
	return reply_view(api, c, st, &v, err);
}

static enum MHD_Result metrics(struct rift_api *api, struct MHD_Connection *c)
{
	size_t n = 0;
	char *buf = rift_dash_metrics(api->dash, &n);

	if (buf == NULL)
		return MHD_NO;
	return rift_dash_reply(c, MHD_HTTP_OK, buf, n, "text/plain; version=0.0.4");
}

/* What a remote CLI needs to reach the API: its address and the pin of its certificate. */
static json_t *status_extra(struct rift_api *api, json_t *o)
{
	const struct rift_config *cfg = rift_manager_config(api->m);

	if (o == NULL)
		return o;
	json_object_set_new(o, "api",
			    cfg->api_listen[0] ? json_string(cfg->api_listen) : json_null());
	json_object_set_new(o, "api_tls_pin",
			    api->tls_pin[0] ? json_string(api->tls_pin) : json_null());
	return o;
}

static enum MHD_Result status(struct rift_api *api, struct MHD_Connection *c)
{
	const struct rift_base_meta *meta = rift_manager_base(api->m);
	const struct rift_config *cfg = rift_manager_config(api->m);
	struct rift_branch_view *v;
	size_t n, i, running = 0;
	int starting, queued, slots, warm;
	unsigned long long taken, missed;
	char err[1024];

	rift_manager_start_counts(api->m, &starting, &queued, &slots);
	rift_manager_warm_counts(api->m, &warm, &taken, &missed);
	if (rift_manager_list(api->m, &v, &n, err, sizeof(err)) != RIFT_OK)
		return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, err);
	for (i = 0; i < n; i++)
		running += v[i].running;
	free(v);
	return send_json(
	    c, MHD_HTTP_OK,
	    status_extra(
		api, json_pack("{s:s,s:s,s:s,s:s,s:i,s:i,s:i,s:i,s:i,s:{s:i,s:i,s:I,s:I}}",
			       "version", RIFT_VERSION, "base_mode", meta->mode, "default_database",
			       meta->default_db, "router", cfg->router_listen, "branches", (int)n,
			       "running", (int)running, "starting", starting, "start_queue", queued,
			       "max_starting", slots, "warm", "ready", warm, "target", cfg->warm,
			       "taken", (json_int_t)taken, "missed", (json_int_t)missed)));
}

/* Routes /v1/branches/{name}[/{action}]. */
static enum MHD_Result branch_route(struct rift_api *api, struct MHD_Connection *c,
				    const char *method, const char *rest)
{
	char name[128], action[32] = "", err[1024];
	struct rift_branch_view v;
	const char *slash = strchr(rest, '/');
	enum rift_status st;
	size_t nlen = slash ? (size_t)(slash - rest) : strlen(rest);

	if (nlen >= sizeof(name) || (slash && strlen(slash + 1) >= sizeof(action)))
		return send_error(c, MHD_HTTP_NOT_FOUND, "no such resource");
	memcpy(name, rest, nlen);
	name[nlen] = '\0';
	if (slash)
		snprintf(action, sizeof(action), "%s", slash + 1);
	if (action[0] == '\0') {
		if (strcmp(method, "GET") == 0) {
			st = rift_manager_get(api->m, name, &v, err, sizeof(err));
			return reply_view(api, c, st, &v, err);
		}
		if (strcmp(method, "DELETE") == 0) {
			st = rift_manager_delete(api->m, name, err, sizeof(err));
			if (st != RIFT_OK)
				return send_error(c, st, err);
			return send_json(c, MHD_HTTP_OK, json_pack("{s:s}", "deleted", name));
		}
		return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED,
				  "use GET or DELETE on /v1/branches/{name}");
	}
	if (strcmp(method, "GET") == 0 && rift_api_is_report(action))
		return rift_api_report(api->m, c, name, action);
	if (strcmp(method, "POST") != 0)
		return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "actions take POST");
	if (strcmp(action, "start") == 0)
		st = rift_manager_start(api->m, name, &v, err, sizeof(err));
	else if (strcmp(action, "stop") == 0)
		st = rift_manager_stop(api->m, name, err, sizeof(err));
	else if (strcmp(action, "reset") == 0)
		st = rift_manager_reset(api->m, name, err, sizeof(err));
	else
		return send_error(c, MHD_HTTP_NOT_FOUND,
				  "unknown action (use start, stop or reset)");
	if (st == RIFT_OK && strcmp(action, "start") != 0)
		st = rift_manager_get(api->m, name, &v, err, sizeof(err));
	return reply_view(api, c, st, &v, err);
}

/* POST /v1/branches/{name}/mount {"path": DIR}: only on the unix socket. Over TCP a token holder
 * could lay a hostile branch's files over any directory of riftd's host (/etc/cron.d). */
static enum MHD_Result mount_branch(struct rift_api *api, struct MHD_Connection *c,
				    const struct request *rq, const char *name)
{
	struct rift_branch_view v;
	const char *path = NULL;
	json_error_t jerr;
	enum rift_status st;
	char err[1024];
	json_t *doc, *o;

	if (rq->tcp)
		return send_error(c, MHD_HTTP_FORBIDDEN,
				  "mounting a branch's files is allowed only on riftd's own "
				  "machine (run rift mount there, as root)");
	if (rq->too_big)
		return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "request body over 64 KiB");
	doc = json_loadb(rq->body ? rq->body : "", rq->len, 0, &jerr);
	if (doc == NULL || json_unpack_ex(doc, &jerr, 0, "{s:s}", "path", &path) != 0) {
		json_decref(doc);
		return send_error(c, MHD_HTTP_BAD_REQUEST,
				  "the body must be {\"path\": \"/absolute/empty/dir\"}");
	}
	memset(&v, 0, sizeof(v));
	st = rift_manager_mount(api->m, name, path, &v, err, sizeof(err));
	if (st != RIFT_OK) {
		json_decref(doc);
		return send_error(c, st, err);
	}
	o = branch_json(api, &v);
	if (o != NULL)
		json_object_set_new(o, "mounted_at", json_string(path));
	json_decref(doc);
	return send_json(c, MHD_HTTP_OK, o);
}

/*
 * GET /v1/branches/{name}/connection: what a URL through the router needs, for `rift url` of a
 * remote CLI (the local one reads the same from the state directory as root). The password is
 * the branch's own (rift create --new-password) or the demo's: whoever may call the API may
 * create branches and read them anyway.
 */
static enum MHD_Result connection_info(struct rift_api *api, struct MHD_Connection *c,
				       const char *name)
{
	const struct rift_base_meta *meta = rift_manager_base(api->m);
	const struct rift_config *cfg = rift_manager_config(api->m);
	const char *colon = strrchr(cfg->router_listen, ':');
	char err[1024], role[128] = "", own[64] = "";
	struct rift_branch_view v;
	enum rift_status st;
	json_t *o;

	st = rift_manager_get(api->m, name, &v, err, sizeof(err));
	if (st != RIFT_OK)
		return send_error(c, st, err);
	if (rift_secret_load(api->state, name, own, sizeof(own)) == 0) {
		if (rift_secret_login_role(meta, role, sizeof(role)) != 0)
			own[0] = '\0';
	} else if (meta->demo_password[0] != '\0') {
		snprintf(role, sizeof(role), "rift");
		snprintf(own, sizeof(own), "%s", meta->demo_password);
	} else if (rift_secret_login_role(meta, role, sizeof(role)) != 0) {
		role[0] = '\0';
	}
	o = json_pack("{s:s,s:s?,s:s?,s:s,s:i}", "name", name, "user", role[0] ? role : NULL,
		      "password", own[0] ? own : NULL, "database", meta->default_db, "router_port",
		      colon ? (int)strtol(colon + 1, NULL, 10) : 6432);
	explicit_bzero(own, sizeof(own));
	return send_json(c, MHD_HTTP_OK, o);
}

static bool authorized(struct rift_api *api, struct MHD_Connection *c, const struct request *rq)
{
	const char *auth;
	size_t a, b, i;
	unsigned char diff = 0;

	if (!rq->tcp)
		return true; /* the unix socket is 0600: reaching it is the credential */
	auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	if (auth == NULL || strncmp(auth, "Bearer ", 7) != 0 || api->token[0] == '\0')
		return false;
	auth += 7;
	a = strlen(auth);
	b = strlen(api->token);
	/* compare in constant time: the token guards every branch */
	for (i = 0; i < a && i < b; i++)
		diff |= (unsigned char)(auth[i] ^ api->token[i]);
	return diff == 0 && a == b;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	const struct listener *l = cls;
	struct rift_api *api = l->api;
	struct request *rq = *con_cls;

	(void)version;
	if (rq == NULL) {
		rq = calloc(1, sizeof(*rq));
		if (rq == NULL)
			return MHD_NO;
		rq->tcp = l->tcp;
		*con_cls = rq;
		return MHD_YES;
	}
	if (*upload_size > 0) {
		if (rq->len + *upload_size > MAX_BODY) {
			rq->too_big = true;
		} else {
			char *nb = realloc(rq->body, rq->len + *upload_size + 1);
			if (nb == NULL)
				return MHD_NO;
			rq->body = nb;
			memcpy(rq->body + rq->len, upload, *upload_size);
			rq->len += *upload_size;
			rq->body[rq->len] = '\0';
		}
		*upload_size = 0;
		return MHD_YES;
	}
	{
		/* the dashboard's pages and login are open; everything else needs the token, or a
		 * session cookie with its CSRF token for changes (api_dashboard.c) */
		struct rift_dash_req dr = { .c = c,
					    .url = url,
					    .method = method,
					    .body = rq->body,
					    .len = rq->len,
					    .untrusted = rq->tcp,
					    .bearer_ok = authorized(api, c, rq) };
		enum MHD_Result ret = MHD_NO;
		if (rift_dash_gate(api->dash, &dr, &ret) == RIFT_DASH_DONE)
			return ret;
	}
	if (strcmp(url, "/metrics") == 0 && strcmp(method, "GET") == 0)
		return metrics(api, c);
	if (strcmp(url, "/v1/status") == 0 && strcmp(method, "GET") == 0)
		return status(api, c);
	if (strcmp(url, "/v1/branches") == 0) {
		if (strcmp(method, "GET") == 0)
			return list_branches(api, c);
		if (strcmp(method, "POST") == 0)
			return create_branch(api, c, rq);
		return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED,
				  "use GET or POST on /v1/branches");
	}
	if (strncmp(url, "/v1/branches/", 13) == 0 && strcmp(method, "POST") == 0 &&
	    strlen(url) > 19 && strcmp(url + strlen(url) - 6, "/mount") == 0) {
		char name[128];
		size_t nlen = strlen(url) - 13 - 6;
		if (nlen == 0 || nlen >= sizeof(name) || memchr(url + 13, '/', nlen) != NULL)
			return send_error(c, MHD_HTTP_NOT_FOUND, "no such resource");
		memcpy(name, url + 13, nlen);
		name[nlen] = '\0';
		return mount_branch(api, c, rq, name);
	}
	if (strncmp(url, "/v1/branches/", 13) == 0 && strcmp(method, "GET") == 0 &&
	    strlen(url) > 24 && strcmp(url + strlen(url) - 11, "/connection") == 0) {
		char name[128];
		size_t nlen = strlen(url) - 13 - 11;
		if (nlen == 0 || nlen >= sizeof(name) || memchr(url + 13, '/', nlen) != NULL)
			return send_error(c, MHD_HTTP_NOT_FOUND, "no such resource");
		memcpy(name, url + 13, nlen);
		name[nlen] = '\0';
		return connection_info(api, c, name);
	}
	if (strncmp(url, "/v1/branches/", 13) == 0)
		return branch_route(api, c, method, url + 13);
	return send_error(c, MHD_HTTP_NOT_FOUND,
			  "no such resource (try GET /v1/branches, /v1/status or /metrics)");
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct request *rq = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (rq != NULL) {
		free(rq->body);
		free(rq);
		*con_cls = NULL;
	}
}

static int listen_unix(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "socket path %s is too long for a unix socket", path);
		return -1;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	unlink(path); /* a socket left by a killed riftd */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || chmod(path, 0600) != 0 ||
	    listen(fd, 64) != 0)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

static int read_token(struct rift_api *api, const char *file, char *err, size_t errlen)
{
	FILE *f = fopen(file, "re");

	if (f == NULL || fgets(api->token, sizeof(api->token), f) == NULL) {
		snprintf(
		    err, errlen,
		    "[api] listen is set but the token file %s cannot be read (%s); put a long "
		    "random token in it",
		    file, f ? "empty" : strerror(errno));
		if (f != NULL)
			fclose(f);
		return -1;
	}
	fclose(f);
	api->token[strcspn(api->token, "\r\n")] = '\0';
	if (strlen(api->token) < 16) {
		snprintf(err, errlen, "the API token in %s is shorter than 16 characters", file);
		return -1;
	}
	return 0;
}

static int listen_tcp(const char *addr, char *err, size_t errlen)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE },
			*res = NULL;
	int fd = -1, one = 1;

	if (colon == NULL || (size_t)(colon - addr) >= sizeof(host)) {
		snprintf(err, errlen, "[api] listen = %s: expected host:port", addr);
		return -1;
	}
	snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
	if (getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, colon + 1, &hints, &res) != 0 ||
	    res == NULL) {
		snprintf(err, errlen, "[api] listen = %s: cannot resolve that address", addr);
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 64) != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/*
 * libmicrohttpd's own messages, into riftd's log as warnings. The common one over HTTPS,
 * "received handshake message out of context", is a client that aborted the handshake with an
 * alert: a browser that does not trust riftd's certificate does that before it asks its user.
 */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	if (strstr(msg, "handshake") != NULL)
		LOG_WARN("api",
			 "TLS: %s (a client ended its handshake; a browser does that when it does "
			 "not trust riftd's certificate: docs/dashboard.md says how to trust it)",
			 msg);
	else
		LOG_WARN("api", "HTTP server: %s", msg);
}

static struct MHD_Daemon *start_daemon(struct listener *l, int fd)
{
	const unsigned flags =
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
	const struct rift_config *cfg = rift_manager_config(l->api->m);

	if (!l->tcp)
		return MHD_start_daemon(flags, 0, NULL, NULL, handle, l, MHD_OPTION_EXTERNAL_LOGGER,
					mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
					MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
					MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_END);
	/* The logger goes first: libmicrohttpd logs options it parses before it. TCP: every
	 * connection holds a thread, so their number is capped ([api] max_connections) and an idle
	 * one is dropped sooner than on the local socket */
	if (l->api->tls_cert == NULL)
		return MHD_start_daemon(
		    flags, 0, NULL, NULL, handle, l, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		    MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
		    MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_CONNECTION_LIMIT,
		    (unsigned)cfg->api_max_connections, MHD_OPTION_END);
	return MHD_start_daemon(
	    flags | MHD_USE_TLS, 0, NULL, NULL, handle, l, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
	    NULL, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
	    MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned)cfg->api_max_connections, MHD_OPTION_HTTPS_MEM_CERT, l->api->tls_cert,
	    MHD_OPTION_HTTPS_MEM_KEY, l->api->tls_key, MHD_OPTION_HTTPS_PRIORITIES,
	    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2", MHD_OPTION_END);
}

/* A PEM file into a new NUL-terminated buffer (caller frees), at most 1 MiB. */
static char *read_pem(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t n;

	if (f == NULL) {
		snprintf(
		    err, errlen,
		    "[api] tls = on but %s cannot be read (%s); set [api] tls_cert and tls_key, "
		    "or tls = off behind a TLS proxy",
		    path, strerror(errno));
		return NULL;
	}
	buf = malloc(1u << 20);
	if (buf != NULL) {
		n = fread(buf, 1, (1u << 20) - 1, f);
		buf[n] = '\0';
		if (n == 0 || strstr(buf, "-----BEGIN") == NULL) {
			snprintf(err, errlen, "%s holds no PEM data", path);
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	return buf;
}

/* The API's certificate and key ([api] tls_cert, else the router's, else rift init's). */
static int load_tls(struct rift_api *api, const char *state, char *err, size_t errlen)
{
	const struct rift_config *cfg = rift_manager_config(api->m);
	char cert[4200], key[4200];

	if (cfg->api_tls_cert[0] != '\0') {
		snprintf(cert, sizeof(cert), "%s", cfg->api_tls_cert);
		snprintf(key, sizeof(key), "%s", cfg->api_tls_key);
	} else if (cfg->tls_cert[0] != '\0') {
		snprintf(cert, sizeof(cert), "%s", cfg->tls_cert);
		snprintf(key, sizeof(key), "%s", cfg->tls_key);
	} else {
		snprintf(cert, sizeof(cert), "%.3000s/tls/server.crt", state);
		snprintf(key, sizeof(key), "%.3000s/tls/server.key", state);
	}
	api->tls_cert = read_pem(cert, err, errlen);
	api->tls_key = api->tls_cert ? read_pem(key, err, errlen) : NULL;
	if (api->tls_key == NULL)
		return -1;
	if (rift_tls_pin(cert, api->tls_pin, sizeof(api->tls_pin)) != 0)
		api->tls_pin[0] = '\0';
	if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
		snprintf(err, errlen,
			 "this libmicrohttpd has no TLS support; set [api] tls = off (behind a TLS "
			 "proxy) or install a libmicrohttpd built with GnuTLS");
		return -1;
	}
	return 0;
}

void rift_api_set_router(struct rift_api *api, struct rift_router *r)
{
	rift_dash_set_router(api->dash, r);
}

int rift_api_start(struct rift_manager *m, const char *state, struct rift_api **out, char *err,
		   size_t errlen)
{
	const struct rift_config *cfg = rift_manager_config(m);
	struct rift_api *api = calloc(1, sizeof(*api));
	int fd;

	*out = NULL;
	if (api == NULL)
		return -ENOMEM;
	api->m = m;
	snprintf(api->state, sizeof(api->state), "%s", state);
	snprintf(api->sock_path, sizeof(api->sock_path), "%.3000s/run/riftd.sock", state);
	snprintf(api->dash_path, sizeof(api->dash_path), "%.3000s/run/dashboard.sock", state);
	if (cfg->api_listen[0] != '\0' && read_token(api, cfg->api_token_file, err, errlen) != 0)
		goto fail;
	if (rift_dash_open(m, api->token, &api->dash) != 0) {
		snprintf(err, errlen, "cannot start the dashboard's sampling thread");
		goto fail;
	}
	fd = listen_unix(api->sock_path, err, errlen);
	if (fd < 0)
		goto fail;
	api->unix_l.api = api;
	api->tcp_l.api = api;
	api->tcp_l.tcp = true;
	api->dash_l.api = api;
	api->dash_l.tcp = true;
	api->unix_d = start_daemon(&api->unix_l, fd);
	if (api->unix_d == NULL) {
		close(fd);
		snprintf(err, errlen, "cannot start the API server on %s", api->sock_path);
		goto fail;
	}
	fd = listen_unix(api->dash_path, err, errlen);
	if (fd < 0)
		goto fail;
	api->dash_d = start_daemon(&api->dash_l, fd);
	if (api->dash_d == NULL) {
		close(fd);
		snprintf(err, errlen, "cannot start the API server on %s", api->dash_path);
		goto fail;
	}
	if (cfg->api_listen[0] != '\0') {
		if (strcmp(cfg->api_tls, "on") == 0 && load_tls(api, state, err, errlen) != 0)
			goto fail;
		fd = listen_tcp(cfg->api_listen, err, errlen);
		if (fd < 0)
			goto fail;
		api->tcp_d = start_daemon(&api->tcp_l, fd);
		if (api->tcp_d == NULL) {
			close(fd);
			snprintf(err, errlen, "cannot start the API server on %s", cfg->api_listen);
			goto fail;
		}
		LOG_INFO("api", "TCP API on %s://%s (bearer token; at most %d connections)%s%s",
			 api->tls_cert ? "https" : "http", cfg->api_listen,
			 cfg->api_max_connections, api->tls_pin[0] ? "; certificate pin " : "",
			 api->tls_pin);
	}
	*out = api;
	return 0;
fail:
	rift_api_stop(api);
	return -EIO;
}

void rift_api_stop(struct rift_api *api)
{
	if (api == NULL)
		return;
	if (api->tcp_d != NULL)
		MHD_stop_daemon(api->tcp_d);
	if (api->unix_d != NULL)
		MHD_stop_daemon(api->unix_d);
	if (api->dash_d != NULL) {
		MHD_stop_daemon(api->dash_d);
		unlink(api->dash_path);
	}
	rift_dash_close(api->dash);
	unlink(api->sock_path);
	explicit_bzero(api->token, sizeof(api->token));
	if (api->tls_key != NULL)
		explicit_bzero(api->tls_key, strlen(api->tls_key));
	free(api->tls_key);
	free(api->tls_cert);
	free(api);
}
