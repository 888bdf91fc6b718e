/* router_route.c — which branch and database a startup packet means (dbname, options, SNI),
 * the packet the server gets instead, and where the client goes next. */
#include <assert.h>
#include <event2/bufferevent_ssl.h>
#include <stdlib.h>
#include <string.h>

#include "rift/branch_name.h"
#include "rift/branch_select.h"
#include "router_internal.h"

/*
 * Takes the user and database from the packet the server will get, not from the client's:
 * kept sessions are handed out, and logins vouched for, on exactly what the server saw. A user
 * name Postgres would cut to 63 bytes is refused rather than cut here too.
 */
static bool take_identity(struct client *cl)
{
	struct rift_startup fwd;
	const char *user, *db;

	rift_startup_parse(cl->startup, cl->startup_len, &fwd);
	assert(fwd.kind == RIFT_STARTUP_MESSAGE && fwd.length == cl->startup_len);
	user = rift_startup_get(&fwd, "user");
	db = rift_startup_get(&fwd, "database");
	assert(user != NULL && db != NULL && strcmp(db, cl->db) == 0);
	(void)db; /* read by the assert only */
	if (strlen(user) >= sizeof(cl->user)) {
		fatal(cl, "28000", "the user name is longer than 63 bytes",
		      "PostgreSQL role names have at most 63 bytes");
		return false;
	}
	memcpy(cl->user, user, strlen(user) + 1);
	return true;
}

/* The SNI host name a TLS client sent, or NULL. */
static const char *client_sni(struct client *cl)
{
	SSL *ssl = cl->tls ? bufferevent_openssl_get_ssl(cl->c) : NULL;

	return ssl != NULL ? SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) : NULL;
}

/*
 * Which branch and database a client means. In this order (docs/architecture.md, "Choosing the
 * branch"): options -c rift.branch=X (X, the database as named); a dbname of db@branch; the SNI
 * host name's first label when it names an existing branch (that branch, the database as
 * named); else dbname is the branch (its default database). Sets cl->branch, cl->db (""
 * for the default) and *options_out (NULL: forward options unchanged). False when the client
 * was refused.
 */
static bool choose_branch(struct client *cl, const struct rift_startup *st, const char *dbname,
			  char *rest, size_t rlen, const char **options_out, const char **how)
{
	const char *options = rift_startup_get(st, "options"), *why = NULL;
	char sni[64], msg[512];
	struct rift_branch_view v;
	enum rift_opt_branch orc = RIFT_OPT_NONE;

	*options_out = NULL;
	*how = "";
	if (options != NULL)
		orc = rift_options_take_branch(options, cl->branch, sizeof(cl->branch), rest, rlen,
					       &why);
	if (orc == RIFT_OPT_INVALID) {
		/* no server sees it, so only this line tells where it came from */
		LOG("%s refused: %s\n", cl->peer, why);
		fatal(cl, "22023", why,
		      "select a branch with options=-c rift.branch=<branch> (once), or "
		      "dbname=<database>@<branch>");
		return false;
	}
	if (orc == RIFT_OPT_BRANCH) {
		*options_out = rest;
		*how = " (branch from options)";
	} else if (strchr(dbname, '@') == NULL) {
		rift_sni_branch(client_sni(cl), sni, sizeof(sni));
		if (sni[0] != '\0' &&
		    rift_manager_get(cl->r->m, sni, &v, msg, sizeof(msg)) == RIFT_OK) {
			memcpy(cl->branch, sni, sizeof(sni));
			*how = " (branch from the TLS server name)";
		}
	}
	if (cl->branch[0] != '\0') { /* the database keeps its name */
		if (strlen(dbname) >= sizeof(cl->db)) {
			fatal(cl, "3D000", "the database name is longer than 63 bytes",
			      "PostgreSQL database names have at most 63 bytes");
			return false;
		}
		memcpy(cl->db, dbname, strlen(dbname) + 1);
		return true;
	}
	if (rift_route_split(dbname, cl->branch, sizeof(cl->branch), cl->db, sizeof(cl->db)) != 0 ||
	    rift_branch_name_check(cl->branch) != RIFT_NAME_OK) {
		cl->branch[0] = '\0';
		snprintf(msg, sizeof(msg), "database \"%.200s\" does not exist", dbname);
		fatal(cl, "3D000", msg,
		      "rift routes dbname=<branch>, <database>@<branch>, or any database with "
		      "options=-c rift.branch=<branch>; `rift list` shows the branches");
		return false;
	}
	return true;
}

void route(struct client *cl, const struct rift_startup *st)
{
	struct rift_router *r = cl->r;
	const char *user = rift_startup_get(st, "user");
	const char *dbname = rift_startup_get(st, "database");
	const struct rift_base_meta *meta = rift_manager_base(r->m);
	struct rift_branch_view v;
	char msg[512], err[512], rest[RIFT_STARTUP_MAX];
	const char *options, *how;

	if (user == NULL || user[0] == '\0') {
		fatal(cl, "28000", "no PostgreSQL user name specified in startup packet", NULL);
		return;
	}
	if (dbname == NULL || dbname[0] == '\0')
		dbname = user;
	if (!choose_branch(cl, st, dbname, rest, sizeof(rest), &options, &how))
		return;
	if (rift_manager_get(r->m, cl->branch, &v, err, sizeof(err)) != RIFT_OK) {
		snprintf(msg, sizeof(msg),
			 "database \"%s\" does not exist: rift has no branch \"%s\"", dbname,
			 cl->branch);
		fatal(cl, "3D000", msg,
		      "`rift list` shows the branches; `rift create NAME` makes one");
		return;
	}
	if (cl->db[0] == '\0' &&
	    snprintf(cl->db, sizeof(cl->db), "%s", meta->default_db[0] ? meta->default_db : user) >=
		(int)sizeof(cl->db)) {
		fatal(cl, "3D000", "the database name is longer than 63 bytes",
		      "name the database explicitly: dbname=<database>@<branch>");
		return;
	}
	cl->startup = malloc(RIFT_STARTUP_MAX);
	cl->startup_len = cl->startup ? rift_startup_build_with(st, cl->db, options, cl->startup,
								RIFT_STARTUP_MAX)
				      : 0;
	if (cl->startup_len == 0) {
		fatal(cl, "08P01", "the startup packet is too large once rewritten", NULL);
		return;
	}
	if (!take_identity(cl))
		return;
	cl->routed = true;
	rift_manager_touch(r->m, cl->branch, +1);
	LOG("%s user %s routed to branch %s database %s%s%s\n", cl->peer, user, cl->branch, cl->db,
	    how, v.running || r->start_authenticated ? "" : " (starting it)");
	route_go(cl, &v);
}

void route_go(struct client *cl, const struct rift_branch_view *v)
{
	if (v->running && v->port > 0) {
		cl->port = v->port;
		if (!pool_try_reuse(cl))
			connect_server(cl);
		return;
	}
	if (cl->r->start_authenticated) { /* its password first; the branch starts after */
		preauth_begin(cl);
		return;
	}
	start_branch(cl);
}
