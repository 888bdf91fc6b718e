/* api_dashboard.c — the web dashboard in riftd's API: pages, login, CSRF, its own endpoints. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dash_internal.h"
#include "rift/branch_name.h"
#include "rift/branch_secret.h"
#include "rift/log.h"
#include "rift/web_assets.h"
#include "api_internal.h"

#define COOKIE        "rift_session"
#define CSRF_HEADER   "X-Rift-CSRF"
#define LOG_TAIL_MAX  (64u * 1024u)        /* of a server's log, the last this many bytes */
#define FAIL_DELAY_NS (300L * 1000 * 1000) /* after a wrong token: guessing stays slow */

/*
 * The page loads only its own script and style, talks only to this origin and is framed by no
 * one. Responses never name another origin (no CORS headers at all).
 */
#define CSP                                                                                        \
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "          \
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

void rift_dash_headers(struct MHD_Response *r)
{
	MHD_add_response_header(r, "Content-Security-Policy", CSP);
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, "Cross-Origin-Resource-Policy", "same-origin");
	MHD_add_response_header(r, "Cross-Origin-Opener-Policy", "same-origin");
}

static uint64_t fnv1a(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 1469598103934665603ull;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= b[i];
		h *= 1099511628211ull;
	}
	return h;
}

/* Queues a response for data (freed by MHD when must_free), with an ETag and 304 handling. */
static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const void *data,
			     size_t len, bool must_free, const char *type, const char *cookie)
{
	const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Match");
	struct MHD_Response *r;
	enum MHD_Result ret;
	char etag[40];

	snprintf(etag, sizeof(etag), "\"%016llx\"", (unsigned long long)fnv1a(data, len));
	if (status == MHD_HTTP_OK && cookie == NULL && inm != NULL && strcmp(inm, etag) == 0) {
		if (must_free)
			free((void *)data);
		r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
		status = MHD_HTTP_NOT_MODIFIED;
	} else {
		r = MHD_create_response_from_buffer(
		    len, (void *)data, must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
		if (r == NULL && must_free)
			free((void *)data);
	}
	if (r == NULL)
		return MHD_NO;
	rift_dash_headers(r);
	MHD_add_response_header(r, "ETag", etag);
	/* pages are revalidated every time; answers of the API (URLs with passwords among them)
	 * are never stored by the browser: the page keeps what it polls itself */
	MHD_add_response_header(r, "Cache-Control", must_free ? "no-store" : "no-cache");
	if (status != MHD_HTTP_NOT_MODIFIED)
		MHD_add_response_header(r, "Content-Type", type);
	if (cookie != NULL)
		MHD_add_response_header(r, "Set-Cookie", cookie);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result rift_dash_reply(struct MHD_Connection *c, unsigned status, char *text, size_t len,
				const char *type)
{
	return reply(c, status, text, len, true, type, NULL);
}

static enum MHD_Result send_doc(struct MHD_Connection *c, unsigned status, json_t *doc,
				const char *cookie)
{
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;

	json_decref(doc);
	if (text == NULL)
		return MHD_NO;
	return reply(c, status, text, strlen(text), true, "application/json", cookie);
}

static enum MHD_Result send_err(struct MHD_Connection *c, unsigned status, const char *msg)
{
	return send_doc(c, status,
			json_pack("{s:{s:i,s:s}}", "error", "status", (int)status, "message", msg),
			NULL);
}

static enum MHD_Result serve_asset(struct MHD_Connection *c, const char *url)
{
	size_t i;

	if (strcmp(url, "/") == 0)
		url = "/index.html";
	for (i = 0; i < rift_web_nassets; i++)
		if (strcmp(rift_web_assets[i].path, url) == 0)
			return reply(c, MHD_HTTP_OK, rift_web_assets[i].data,
				     rift_web_assets[i].len, false, rift_web_assets[i].type, NULL);
	return send_err(c, MHD_HTTP_NOT_FOUND, "no such page (the dashboard is at /)");
}

static bool is_asset(const char *url)
{
	size_t i;

	if (strcmp(url, "/") == 0)
		return true;
	for (i = 0; i < rift_web_nassets; i++)
		if (strcmp(rift_web_assets[i].path, url) == 0)
			return true;
	return false;
}

/*
 * A browser names where a request comes from (Origin, Sec-Fetch-Site); a state change must come
 * from a page of this very origin. Clients that send neither (curl, the CLI) are not browsers,
 * and a cookie-borne request still needs the CSRF token that only our own page can read.
 */
static bool same_origin(struct MHD_Connection *c)
{
	const char *site = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-Fetch-Site");
	const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
	const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
	char want[320];

	if (site != NULL && strcmp(site, "same-origin") != 0)
		return false;
	if (origin == NULL)
		return true;
	if (host == NULL || strlen(host) > 256)
		return false;
	snprintf(want, sizeof(want), "http://%s", host);
	if (strcmp(origin, want) == 0)
		return true;
	snprintf(want, sizeof(want), "https://%s", host);
	return strcmp(origin, want) == 0;
}

/* Whether c came over HTTPS ([api] tls = on): only then is the cookie marked Secure. */
static bool over_tls(struct MHD_Connection *c)
{
	return MHD_get_connection_info(c, MHD_CONNECTION_INFO_PROTOCOL) != NULL;
}

static bool is_safe_method(const char *method)
{
	return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

/* starttime (field 22) of /proc/PID/stat, or 0. */
static unsigned long long proc_start(long pid)
{
	char path[64], buf[1024], *p;
	unsigned long long start = 0;
	ssize_t n;
	int fd, field;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
	for (field = 2; p != NULL && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (p != NULL)
		start = strtoull(p + 1, NULL, 10);
	return start;
}

/* The process at the other end of c (a unix socket: the `rift dashboard` forwarder); {0, 0}
 * over TCP. */
static struct dash_owner peer_owner(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct dash_owner o = { 0, 0 };
	struct sockaddr_storage sa;
	socklen_t salen = sizeof(sa);
	struct ucred uc;
	socklen_t len = sizeof(uc);

	if (ci == NULL || getsockname(ci->connect_fd, (struct sockaddr *)&sa, &salen) != 0 ||
	    sa.ss_family != AF_UNIX)
		return o;
	if (getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == 0 && uc.pid > 0) {
		o.pid = uc.pid;
		o.start = proc_start(uc.pid);
	}
	if (o.pid != 0 && o.start == 0)
		o.pid = -1; /* gone already: matches no session */
	return o;
}

/* GET /v1/branches/NAME/diff: the one GET of the API that starts servers (api_report.c). */
static bool starts_server(const char *url)
{
	size_t n = strlen(url);

	return strncmp(url, "/v1/branches/", 13) == 0 && n > 18 &&
	       strcmp(url + n - 5, "/diff") == 0;
}

static enum MHD_Result login(struct rift_dash *d, const struct rift_dash_req *rq)
{
	const char *token = NULL, *ticket = NULL;
	char sid[DASH_HEX], csrf[DASH_HEX], cookie[160];
	json_t *doc = json_loadb(rq->body ? rq->body : "", rq->len, 0, NULL);
	struct dash_owner owner;
	bool ok = false;
	enum MHD_Result ret;

	if (!same_origin(rq->c)) {
		json_decref(doc);
		return send_err(rq->c, MHD_HTTP_FORBIDDEN,
				"login refused: the request came from another site");
	}
	if (doc == NULL || json_unpack(doc, "{s?s,s?s}", "token", &token, "ticket", &ticket) != 0 ||
	    (token == NULL) == (ticket == NULL)) {
		json_decref(doc);
		return send_err(rq->c, MHD_HTTP_BAD_REQUEST,
				"send {\"token\": \"<the token in [api] token_file>\"} or the "
				"{\"ticket\": ...} that `rift dashboard` printed");
	}
	if (token != NULL)
		ok = d->token[0] != '\0' && dash_equal_ct(token, d->token);
	else
		ok = dash_ticket_take(&d->sessions, ticket);
	json_decref(doc);
	if (!ok) {
		struct timespec pause = { 0, FAIL_DELAY_NS };
		LOG_WARN("dashboard", "refused a login with a wrong %s",
			 token != NULL ? "token" : "or used ticket");
		nanosleep(&pause, NULL);
		return send_err(rq->c, MHD_HTTP_UNAUTHORIZED,
				token != NULL && d->token[0] == '\0'
				    ? "this riftd has no API token ([api] listen is off): open "
				      "the link `rift dashboard` prints"
				: token != NULL
				    ? "wrong token (it is the line in the file [api] "
				      "token_file names)"
				    : "this login link was used already or is older than 2 "
				      "minutes; run `rift dashboard` again");
	}
	owner = peer_owner(rq->c);
	if (dash_session_new_for(&d->sessions, &owner, sid, csrf) != 0)
		return send_err(rq->c, MHD_HTTP_INTERNAL_SERVER_ERROR,
				"no randomness for a session id (getrandom failed); try again");
	snprintf(cookie, sizeof(cookie),
		 COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d%s", sid,
		 DASH_LIFETIME_S, over_tls(rq->c) ? "; Secure" : "");
	OPENSSL_cleanse(sid, sizeof(sid));
	ret = send_doc(rq->c, MHD_HTTP_OK, json_pack("{s:s,s:s}", "csrf", csrf, "auth", "cookie"),
		       cookie);
	OPENSSL_cleanse(cookie, sizeof(cookie));
	return ret;
}

static enum MHD_Result logout(struct rift_dash *d, const struct rift_dash_req *rq)
{
	const char *sid = MHD_lookup_connection_value(rq->c, MHD_COOKIE_KIND, COOKIE);

	if (sid != NULL)
		dash_session_end(&d->sessions, sid);
	return send_doc(rq->c, MHD_HTTP_OK, json_pack("{s:b}", "logged_out", 1),
			over_tls(rq->c) ? COOKIE
			    "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0; Secure"
					: COOKIE "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
}

/* ---- endpoints ---- */

static enum MHD_Result connections(struct rift_dash *d, struct MHD_Connection *c)
{
	struct rift_router *r = atomic_load(&d->router);
	struct rift_router_session *v = NULL;
	struct rift_router_totals tot = { { 0, 0 }, { 0, 0 } };
	size_t n = 0, i;
	json_t *arr = json_array();

	if (r == NULL || rift_router_sessions(r, &v, &n, &tot, 2000) != 0) {
		json_decref(arr);
		return send_err(c, MHD_HTTP_SERVICE_UNAVAILABLE,
				"the router did not answer within 2 s; retry (riftd's log says "
				"more)");
	}
	for (i = 0; i < n; i++)
		json_array_append_new(
		    arr,
		    json_pack("{s:s,s:s?,s:s?,s:s?,s:s,s:b,s:b,s:f,s:I,s:I}", "client", v[i].peer,
			      "branch", v[i].branch[0] ? v[i].branch : NULL, "database",
			      v[i].db[0] ? v[i].db : NULL, "user", v[i].user[0] ? v[i].user : NULL,
			      "mode", v[i].mode, "tls", (int)v[i].tls, "reused", (int)v[i].reused,
			      "age_s", v[i].age_s, "bytes_in", (json_int_t)v[i].in_bytes,
			      "bytes_out", (json_int_t)v[i].out_bytes));
	free(v);
	return send_doc(c, MHD_HTTP_OK,
			json_pack("{s:o,s:o,s:{s:I,s:I,s:I,s:I}}", "sessions", arr, "history",
				  dash_history_connections(d->history), "closed",
				  "relayed_sessions", (json_int_t)tot.sessions[0],
				  "spliced_sessions", (json_int_t)tot.sessions[1], "relayed_bytes",
				  (json_int_t)tot.bytes[0], "spliced_bytes",
				  (json_int_t)tot.bytes[1]),
			NULL);
}

/* postgres://user@host:port/name as `rift url` prints it; the password only when asked. */
static void branch_url(struct rift_dash *d, const char *name, bool with_password, char *out,
		       size_t len, bool *has_password)
{
	const struct rift_config *cfg = rift_manager_config(d->m);
	const struct rift_base_meta *meta = rift_manager_base(d->m);
	char host[256] = "localhost", user[256] = "", role[128], own[64];
	const char *colon = strrchr(cfg->router_listen, ':'), *port = "6432";
	const char *pw = NULL;

	if (colon != NULL) {
		size_t hl = (size_t)(colon - cfg->router_listen);
		port = colon + 1;
		if (hl > 0 && hl < sizeof(host) && strncmp(cfg->router_listen, "*", hl) != 0 &&
		    strncmp(cfg->router_listen, "127.0.0.1", hl) != 0 &&
		    strncmp(cfg->router_listen, "0.0.0.0", hl) != 0)
			snprintf(host, sizeof(host), "%.*s", (int)hl, cfg->router_listen);
	}
	if (rift_secret_load(rift_manager_state_dir(d->m), name, own, sizeof(own)) == 0 &&
	    rift_secret_login_role(meta, role, sizeof(role)) == 0) {
		pw = own;
		snprintf(user, sizeof(user), "%s", role);
	} else if (meta->demo_password[0] != '\0') {
		pw = meta->demo_password;
		snprintf(user, sizeof(user), "rift");
	} else if (strncmp(meta->upstream, "postgres://", 11) == 0) {
		const char *u = meta->upstream + 11, *at = strchr(u, '@'), *c2;
		size_t ul = at ? (size_t)(at - u) : 0;
		if ((c2 = memchr(u, ':', ul)) != NULL)
			ul = (size_t)(c2 - u); /* never the upstream's password */
		if (at != NULL && ul < 100)
			snprintf(user, sizeof(user), "%.*s", (int)ul, u);
	}
	*has_password = pw != NULL;
	snprintf(out, len, "postgres://%s%s%s%s%s:%s/%s", user, with_password && pw ? ":" : "",
		 with_password && pw ? pw : "", user[0] ? "@" : "", host, port, name);
	OPENSSL_cleanse(own, sizeof(own));
}

static enum MHD_Result branch_page(struct rift_dash *d, struct MHD_Connection *c, const char *name)
{
	struct rift_branch_view v;
	char err[1024], url[1024];
	bool has_pw;
	enum rift_status st = rift_manager_get(d->m, name, &v, err, sizeof(err));
	json_t *hist;

	if (st != RIFT_OK)
		return send_err(c, st, err);
	branch_url(d, name, false, url, sizeof(url), &has_pw);
	hist = dash_history_branch(d->history, name);
	return send_doc(c, MHD_HTTP_OK,
			json_pack("{s:s,s:s,s:b,s:o}", "name", name, "url", url, "has_password",
				  (int)has_pw, "history", hist ? hist : json_null()),
			NULL);
}

static enum MHD_Result branch_password(struct rift_dash *d, struct MHD_Connection *c,
				       const char *name)
{
	struct rift_branch_view v;
	char err[1024], url[1024];
	bool has_pw;
	enum rift_status st = rift_manager_get(d->m, name, &v, err, sizeof(err));
	enum MHD_Result ret;

	if (st != RIFT_OK)
		return send_err(c, st, err);
	branch_url(d, name, true, url, sizeof(url), &has_pw);
	LOG_INFO("dashboard", "showed the connection URL of branch %s with its password", name);
	ret = send_doc(c, MHD_HTTP_OK, json_pack("{s:s}", "url", url), NULL);
	OPENSSL_cleanse(url, sizeof(url));
	return ret;
}

/*
 * The tail of the branch's server log. The file is riftd's (root's directory, opened by riftd
 * for the server's stderr), but its text is the server's: shown as text, never as markup.
 */
static enum MHD_Result server_log(struct rift_dash *d, struct MHD_Connection *c, const char *name)
{
	char path[4200];
	struct stat st;
	off_t from;
	char *buf = NULL;
	ssize_t n = 0;
	int fd;
	enum MHD_Result ret;

	snprintf(path, sizeof(path), "%.4000s/log/%s.log", rift_manager_state_dir(d->m), name);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return send_doc(c, MHD_HTTP_OK, json_pack("{s:s,s:b}", "log", "", "truncated", 0),
				NULL);
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return send_err(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
				"the server log is not a regular file; see riftd's log directory");
	}
	from = st.st_size > (off_t)LOG_TAIL_MAX ? st.st_size - (off_t)LOG_TAIL_MAX : 0;
	buf = malloc(LOG_TAIL_MAX + 1);
	if (buf != NULL)
		n = pread(fd, buf, LOG_TAIL_MAX, from);
	close(fd);
	if (buf == NULL || n < 0) {
		free(buf);
		return send_err(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot read the server log");
	}
	buf[n] = '\0';
	/* jansson wants UTF-8: a log with other bytes is sent with them replaced */
	{
		json_t *s = json_stringn(buf, (size_t)n);
		if (s == NULL) {
			ssize_t i;
			for (i = 0; i < n; i++)
				if ((unsigned char)buf[i] >= 0x80 || buf[i] == '\0')
					buf[i] = '?';
			s = json_stringn(buf, (size_t)n);
		}
		ret = send_doc(c, MHD_HTTP_OK,
			       json_pack("{s:o,s:b}", "log", s ? s : json_string(""), "truncated",
					 (int)(from > 0)),
			       NULL);
	}
	free(buf);
	return ret;
}

static enum MHD_Result endpoint(struct rift_dash *d, const struct rift_dash_req *rq)
{
	const char *u = rq->url + strlen("/v1/dashboard/");
	bool get = is_safe_method(rq->method);
	char name[64], action[32] = "";

	if (strcmp(u, "connections") == 0 && get)
		return connections(d, rq->c);
	if (strcmp(u, "storage") == 0 && get)
		return send_doc(rq->c, MHD_HTTP_OK, dash_history_storage(d->history), NULL);
	if (strncmp(u, "branches/", 9) == 0) {
		const char *rest = u + 9, *slash = strchr(rest, '/');
		size_t nl = slash ? (size_t)(slash - rest) : strlen(rest);
		if (nl >= sizeof(name) || (slash && strlen(slash + 1) >= sizeof(action)))
			return send_err(rq->c, MHD_HTTP_NOT_FOUND, "no such branch");
		memcpy(name, rest, nl);
		name[nl] = '\0';
		if (slash)
			snprintf(action, sizeof(action), "%s", slash + 1);
		if (rift_branch_name_check(name) != RIFT_NAME_OK)
			return send_err(rq->c, MHD_HTTP_BAD_REQUEST,
					"not a valid branch name (rift list shows branches)");
		if (action[0] == '\0' && get)
			return branch_page(d, rq->c, name);
		if (strcmp(action, "password") == 0 && strcmp(rq->method, "POST") == 0)
			return branch_password(d, rq->c, name);
		if (strcmp(action, "serverlog") == 0 && get)
			return server_log(d, rq->c, name);
		/* a diff starts servers (a stopped branch, a hidden fork point): only on demand,
		 * as a POST that passed the CSRF check above */
		if (strcmp(action, "diff") == 0 && strcmp(rq->method, "POST") == 0)
			return rift_api_report(d->m, rq->c, name, "diff");
	}
	return send_err(
	    rq->c, MHD_HTTP_NOT_FOUND,
	    "no such dashboard resource (connections, storage, branches/NAME, "
	    "branches/NAME/serverlog, POST branches/NAME/password, POST branches/NAME/diff)");
}

enum rift_dash_verdict rift_dash_gate(struct rift_dash *d, const struct rift_dash_req *rq,
				      enum MHD_Result *ret)
{
	struct MHD_Connection *c = rq->c;
	const char *sid, *sent;
	char csrf[DASH_HEX] = "";
	bool by_cookie = false;

	if (is_asset(rq->url) && is_safe_method(rq->method)) {
		*ret = serve_asset(c, rq->url);
		return RIFT_DASH_DONE;
	}
	if (strcmp(rq->url, "/v1/dashboard/login") == 0 && strcmp(rq->method, "POST") == 0) {
		*ret = login(d, rq);
		return RIFT_DASH_DONE;
	}
	if (!rq->bearer_ok) {
		sid = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, COOKIE);
		struct dash_owner owner = peer_owner(c);
		by_cookie = sid != NULL && dash_session_check_for(&d->sessions, &owner, sid, csrf);
		if (!by_cookie) {
			*ret = send_err(c, MHD_HTTP_UNAUTHORIZED,
					"log in first: open the dashboard at / and give the token "
					"(or send Authorization: Bearer <token from [api] "
					"token_file>)");
			return RIFT_DASH_DONE;
		}
	}
	if (rq->untrusted && !is_safe_method(rq->method)) {
		sent = MHD_lookup_connection_value(c, MHD_HEADER_KIND, CSRF_HEADER);
		if (!same_origin(c) ||
		    (by_cookie && (sent == NULL || !dash_equal_ct(sent, csrf)))) {
			LOG_WARN("dashboard", "refused %s %s: %s", rq->method, rq->url,
				 same_origin(c) ? "no or wrong CSRF token" : "cross-site request");
			*ret = send_err(c, MHD_HTTP_FORBIDDEN,
					"refused: a change must come from the dashboard's own page "
					"(reload it and try again)");
			return RIFT_DASH_DONE;
		}
	}
	if (by_cookie && is_safe_method(rq->method) && starts_server(rq->url)) {
		*ret = send_err(c, MHD_HTTP_METHOD_NOT_ALLOWED,
				"a diff starts servers, so the dashboard asks for it with POST "
				"/v1/dashboard/branches/NAME/diff (its Compare button); GET is for "
				"rift diff over riftd.sock or the bearer token");
		return RIFT_DASH_DONE;
	}
	if (strcmp(rq->url, "/v1/dashboard/session") == 0 && is_safe_method(rq->method)) {
		*ret = send_doc(c, MHD_HTTP_OK,
				json_pack("{s:s,s:s,s:b}", "csrf", csrf, "auth",
					  by_cookie       ? "cookie"
					  : rq->untrusted ? "token"
							  : "socket",
					  "logout", (int)by_cookie),
				NULL);
		return RIFT_DASH_DONE;
	}
	if (strcmp(rq->url, "/v1/dashboard/logout") == 0 && strcmp(rq->method, "POST") == 0) {
		*ret = logout(d, rq);
		return RIFT_DASH_DONE;
	}
	if (strcmp(rq->url, "/v1/dashboard/ticket") == 0 && strcmp(rq->method, "POST") == 0) {
		char ticket[DASH_HEX];
		/* only root on the API socket hands out logins; a session cannot make more */
		if (rq->untrusted || dash_ticket_new(&d->sessions, ticket) != 0) {
			*ret = send_err(c, MHD_HTTP_FORBIDDEN,
					"login tickets are given only on riftd's unix socket (run "
					"`rift dashboard` as root)");
			return RIFT_DASH_DONE;
		}
		*ret = send_doc(
		    c, MHD_HTTP_OK,
		    json_pack("{s:s,s:i}", "ticket", ticket, "expires_in_s", DASH_TICKET_S), NULL);
		OPENSSL_cleanse(ticket, sizeof(ticket));
		return RIFT_DASH_DONE;
	}
	if (strncmp(rq->url, "/v1/dashboard/", 14) == 0) {
		*ret = endpoint(d, rq);
		return RIFT_DASH_DONE;
	}
	return RIFT_DASH_PASS;
}

void rift_dash_set_router(struct rift_dash *d, struct rift_router *r)
{
	atomic_store(&d->router, r);
}

int rift_dash_open(struct rift_manager *m, const char *token, struct rift_dash **out)
{
	struct rift_dash *d = calloc(1, sizeof(*d));
	int rc;

	*out = NULL;
	if (d == NULL)
		return -ENOMEM;
	d->m = m;
	snprintf(d->token, sizeof(d->token), "%s", token);
	dash_sessions_init(&d->sessions);
	rc = dash_history_start(m, &d->history);
	if (rc != 0) {
		dash_sessions_destroy(&d->sessions);
		free(d);
		return rc;
	}
	*out = d;
	return 0;
}

void rift_dash_close(struct rift_dash *d)
{
	if (d == NULL)
		return;
	dash_history_stop(d->history);
	dash_sessions_destroy(&d->sessions);
	OPENSSL_cleanse(d->token, sizeof(d->token));
	free(d);
}
