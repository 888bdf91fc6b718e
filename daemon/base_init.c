/* base_init.c — `rift init`: a store whose base comes from a demo, a live server, or a data dir. */
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rift/base_copy.h"
#include "rift/base_init.h"
#include "rift/log.h"
#include "rift/pgproc.h"
#include "rift/store.h"
#include "rift/tls.h"
#include "rift/tree_remove.h"
#include "rift/bootstrap_role.h"

#define OUT_TAIL        2048
#define MAX_TABLESPACES 64

/* A tablespace of upstream at an absolute path, which pg_basebackup must map into the base. */
struct tablespace {
	unsigned oid;
	char location[1024];
};

struct init_ctx {
	const char *state;
	const struct rift_init_opts *opts;
	struct rift_config cfg;
	char bindir[4096];
	/* the Postgres user's tools (initdb, the temporary server, pg_basebackup) write work;
	 * root then copies it into staging, which only root can reach, and imports that */
	char work[4096];
	char staging[4096];
	char sockdir[4096];
	uid_t uid;
	gid_t gid;
	pid_t server; /* a temporary server on the work dir (demo, logical) */
	struct rift_base_meta meta;
	/* upstream's password as libpq found it (URL, --upstream-password-file, PGPASSWORD,
	 * ~/.pgpass); child tools read it from passfile, never from their argv */
	char password[512];
	char conninfo[4096]; /* upstream_url without its password, for child tools */
	char secret_dir[4200];
	char passfile[4300];
	struct tablespace *tablespaces;
	size_t ntablespaces;
	char *err;
	size_t errlen;
};

static void say(struct init_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(struct init_ctx *c, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (c->opts->progress == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	c->opts->progress(line, c->opts->progress_arg);
}

static void relay_line(const char *line, void *arg)
{
	struct init_ctx *c = arg;

	say(c, "  %s", line);
}

/* The last non-empty line of a tool's output: usually its error. */
static const char *last_line(char *out)
{
	char *end = out + strlen(out), *start;

	while (end > out && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
		*--end = '\0';
	start = end;
	while (start > out && start[-1] != '\n' && start[-1] != '\r')
		start--;
	return start;
}

static int make_owned_dir(struct init_ctx *c, const char *path, mode_t mode)
{
	if ((mkdir(path, mode) != 0 && errno != EEXIST) || chown(path, c->uid, c->gid) != 0 ||
	    chmod(path, mode) != 0) {
		snprintf(c->err, c->errlen, "cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Generates a password of 24 letters and digits from the kernel's random source. */
static int make_password(char *out, size_t len)
{
	static const char alphabet[] = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
	unsigned char raw[24];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	size_t i;

	if (fd < 0 || read(fd, raw, sizeof(raw)) != (ssize_t)sizeof(raw) || len <= sizeof(raw)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	for (i = 0; i < sizeof(raw); i++)
		out[i] = alphabet[raw[i] % (sizeof(alphabet) - 1)];
	out[sizeof(raw)] = '\0';
	return 0;
}

static int run_initdb(struct init_ctx *c, const char *pwfile)
{
	char exe[4200], out[OUT_TAIL], pwopt[4200];
	char *argv[] = { exe,
			 "-D",
			 c->work,
			 "-U",
			 "postgres",
			 "--auth-local=peer",
			 "--auth-host=scram-sha-256",
			 pwopt,
			 NULL };

	snprintf(exe, sizeof(exe), "%s/initdb", c->bindir);
	snprintf(pwopt, sizeof(pwopt), "--pwfile=%s", pwfile);
	say(c, "initdb %s", c->work);
	if (rift_pg_run(c->cfg.pg_user, argv, NULL, out, sizeof(out)) != 0) {
		snprintf(c->err, c->errlen, "initdb failed: %s", last_line(out));
		return -1;
	}
	return 0;
}

/* Starts a server on the work dir, reachable only through a private socket. */
static int start_temp_server(struct init_ctx *c)
{
	char exe[4200], port[16];
	char *argv[] = { exe,
			 "-D",
			 c->work,
			 "-k",
			 c->sockdir,
			 "-p",
			 port,
			 "-c",
			 "listen_addresses=",
			 "-c",
			 "wal_init_zero=off",
			 NULL };
	int i;

	snprintf(exe, sizeof(exe), "%s/postgres", c->bindir);
	snprintf(port, sizeof(port), "%d", c->cfg.port_max);
	if (rift_pg_spawn(c->cfg.pg_user, argv, NULL, -1, &c->server) != 0) {
		snprintf(c->err, c->errlen, "cannot start a temporary server on %s", c->work);
		return -1;
	}
	for (i = 0; i < 600; i++) {
		char conn[4400];
		struct timespec tick = { 0, 50 * 1000 * 1000 };
		snprintf(conn, sizeof(conn), "host=%s port=%s dbname=postgres", c->sockdir, port);
		if (PQping(conn) == PQPING_OK)
			return 0;
		if (waitpid(c->server, NULL, WNOHANG) == c->server) {
			c->server = 0;
			break;
		}
		nanosleep(&tick, NULL);
	}
	snprintf(c->err, c->errlen, "the temporary server on %s did not start", c->work);
	return -1;
}

static void stop_temp_server(struct init_ctx *c)
{
	int i;

	if (c->server <= 0)
		return;
	kill(c->server, SIGINT);
	for (i = 0; i < 600; i++) {
		struct timespec tick = { 0, 50 * 1000 * 1000 };
		if (waitpid(c->server, NULL, WNOHANG) == c->server)
			break;
		nanosleep(&tick, NULL);
	}
	if (i == 600) {
		kill(c->server, SIGKILL);
		waitpid(c->server, NULL, 0);
	}
	c->server = 0;
}

/* Runs SQL (a file) with psql as the Postgres user on the temporary server. */
static int psql_file(struct init_ctx *c, const char *db, const char *file)
{
	char exe[4200], port[16], out[OUT_TAIL];
	char *argv[] = { exe,  "-X", "-q",       "-v", "ON_ERROR_STOP=1", "-h", c->sockdir, "-p",
			 port, "-d", (char *)db, "-f", (char *)file,      NULL };

	snprintf(exe, sizeof(exe), "%s/psql", c->bindir);
	snprintf(port, sizeof(port), "%d", c->cfg.port_max);
	if (rift_pg_run(c->cfg.pg_user, argv, NULL, out, sizeof(out)) != 0) {
		snprintf(c->err, c->errlen, "loading %s failed: %s", file, last_line(out));
		return -1;
	}
	return 0;
}

static int write_file(struct init_ctx *c, const char *path, const char *text, mode_t mode,
		      bool postgres_owned)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	size_t n = strlen(text);

	if (fd < 0 || write(fd, text, n) != (ssize_t)n ||
	    (postgres_owned && fchown(fd, c->uid, c->gid) != 0) || fsync(fd) != 0) {
		snprintf(c->err, c->errlen, "cannot write %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return close(fd);
}

static const char demo_sql[] =
    "create role rift login superuser password :'pw';\n"
    "create database demo owner rift;\n"
    "\\connect demo\n"
    "set role rift;\n"
    "create table customers (id serial primary key, name text not null, email text unique);\n"
    "create table products (id serial primary key, name text not null, price numeric(10,2));\n"
    "create table orders (id serial primary key,\n"
    "  customer_id int not null references customers(id),\n"
    "  product_id int not null references products(id),\n"
    "  quantity int not null check (quantity > 0),\n"
    "  created_at timestamptz not null default now());\n"
    "insert into customers (name, email)\n"
    "  select 'customer ' || i, 'c' || i || '@example.com' from generate_series(1, 2000) i;\n"
    "insert into products (name, price)\n"
    "  select 'product ' || i, (i % 97) + 0.99 from generate_series(1, 200) i;\n"
    "insert into orders (customer_id, product_id, quantity, created_at)\n"
    "  select 1 + i % 2000, 1 + i % 200, 1 + i % 5, now() - i * interval '1 minute'\n"
    "  from generate_series(1, 5000) i;\n"
    "create index on orders (customer_id);\n"
    "analyze;\n";

static int init_demo(struct init_ctx *c)
{
	char pwfile[4200], sqlfile[4200], pwset[256], text[sizeof(demo_sql) + 128];

	if (make_password(c->meta.demo_password, sizeof(c->meta.demo_password)) != 0) {
		snprintf(c->err, c->errlen, "cannot read /dev/urandom for a password");
		return -1;
	}
	snprintf(pwfile, sizeof(pwfile), "%s/run/init-pw", c->state);
	snprintf(sqlfile, sizeof(sqlfile), "%s/run/init.sql", c->state);
	snprintf(pwset, sizeof(pwset), "%s\n", c->meta.demo_password);
	snprintf(text, sizeof(text), "\\set pw '%s'\n%s", c->meta.demo_password, demo_sql);
	if (write_file(c, pwfile, pwset, 0600, true) != 0 ||
	    write_file(c, sqlfile, text, 0600, true) != 0)
		return -1;
	if (run_initdb(c, pwfile) != 0)
		return -1;
	unlink(pwfile);
	say(c, "loading the sample schema (customers, products, orders)");
	if (start_temp_server(c) != 0 || psql_file(c, "postgres", sqlfile) != 0)
		return -1;
	stop_temp_server(c);
	unlink(sqlfile);
	snprintf(c->meta.default_db, sizeof(c->meta.default_db), "demo");
	return 0;
}

/* The upstream URL as a person may see it: without the password. */
static void redact(const char *url, char *out, size_t len)
{
	PQconninfoOption *opts = PQconninfoParse(url, NULL), *o;
	const char *host = "localhost", *port = "5432", *user = "", *db = "";

	for (o = opts; o != NULL && o->keyword != NULL; o++) {
		if (o->val == NULL)
			continue;
		if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
		else if (strcmp(o->keyword, "user") == 0)
			user = o->val;
		else if (strcmp(o->keyword, "dbname") == 0)
			db = o->val;
	}
	snprintf(out, len, "postgres://%s%s%s:%s/%s", user, *user ? "@" : "", host, port, db);
	PQconninfoFree(opts);
}

/* Upstream's tablespaces at absolute paths: pg_basebackup would write them to the same paths
 * on this machine, so each gets mapped into the base instead. */
static int find_tablespaces(struct init_ctx *c, PGconn *conn)
{
	PGresult *r = PQexec(conn, "select oid, pg_tablespace_location(oid) from pg_tablespace "
				   "where pg_tablespace_location(oid) like '/%'");
	int i, n, rc = -1;

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(c->err, c->errlen, "cannot list upstream's tablespaces: %s",
			 PQresultErrorMessage(r));
		goto out;
	}
	n = PQntuples(r);
	if (n > MAX_TABLESPACES) {
		snprintf(c->err, c->errlen,
			 "upstream has %d tablespaces; rift init copies at most %d (use --logical)",
			 n, MAX_TABLESPACES);
		goto out;
	}
	c->tablespaces = calloc((size_t)n + 1, sizeof(*c->tablespaces));
	if (c->tablespaces == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		c->tablespaces[i].oid = (unsigned)strtoul(PQgetvalue(r, i, 0), NULL, 10);
		snprintf(c->tablespaces[i].location, sizeof(c->tablespaces[i].location), "%s",
			 PQgetvalue(r, i, 1));
	}
	c->ntablespaces = (size_t)n;
	rc = 0;
out:
	PQclear(r);
	return rc;
}

/* Connects to upstream once to say early and clearly what is wrong, before copying anything. */
static int check_upstream(struct init_ctx *c, int *major, char *db, size_t dblen)
{
	const char *keys[] = { "dbname", "password", NULL };
	const char *vals[] = { c->opts->upstream_url, c->opts->upstream_password, NULL };
	PGconn *conn;
	PGresult *r = NULL;
	char path[256];
	struct statvfs sv;
	long long need = 0;
	int rc = -1;

	if (c->opts->upstream_password == NULL)
		keys[1] = NULL;
	conn = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(conn) != CONNECTION_OK) {
		const char *m = PQerrorMessage(conn);
		if (strstr(m, "password authentication failed") || strstr(m, "no password"))
			snprintf(c->err, c->errlen,
				 "upstream %s refused the login: %s (check the user and the "
				 "password: --upstream-password-file, PGPASSWORD, ~/.pgpass or "
				 "the URL)",
				 c->meta.upstream, m);
		else
			snprintf(
			    c->err, c->errlen,
			    "cannot reach upstream %s: %s (is the server running and listening "
			    "on that address?)",
			    c->meta.upstream, m);
		goto out;
	}
	if (PQconnectionUsedPassword(conn) && PQpass(conn) != NULL)
		snprintf(c->password, sizeof(c->password), "%s", PQpass(conn));
	snprintf(db, dblen, "%s", PQdb(conn));
	*major = PQserverVersion(conn) / 10000;
	snprintf(path, sizeof(path), "/usr/lib/postgresql/%d/bin/postgres", *major);
	if (access(path, X_OK) != 0) {
		snprintf(c->err, c->errlen,
			 "upstream runs Postgres %d but this machine has no Postgres %d binaries: "
			 "install postgresql-%d (branches run the same major version as upstream)",
			 *major, *major, *major);
		goto out;
	}
	r = PQexec(conn, c->opts->mode == RIFT_INIT_PHYSICAL
			     ? "select sum(pg_database_size(oid))::bigint from pg_database"
			     : "select pg_database_size(current_database())::bigint");
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		need = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	if (statvfs(c->state, &sv) == 0 && need > 0 &&
	    (unsigned long long)need + (64ull << 20) >
		(unsigned long long)sv.f_bavail * sv.f_frsize) {
		snprintf(c->err, c->errlen,
			 "not enough disk for the base: upstream holds %lld MiB, %s has %llu MiB "
			 "free; free some space or pick another --state",
			 need >> 20, c->state, (unsigned long long)sv.f_bavail * sv.f_frsize >> 20);
		goto out;
	}
	say(c, "upstream %s: Postgres %d, %lld MiB to copy", c->meta.upstream, *major, need >> 20);
	if (c->opts->mode == RIFT_INIT_PHYSICAL && find_tablespaces(c, conn) != 0)
		goto out;
	if (c->opts->mode == RIFT_INIT_PHYSICAL) {
		/* the copy's superuser, whom `rift url` names: the replication role may have
		 * no right to the databases */
		PQclear(r);
		r = PQexec(conn, "select rolname from pg_catalog.pg_roles where oid = 10");
		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
		    c->meta.login_role[0] == '\0')
			snprintf(c->meta.login_role, sizeof(c->meta.login_role), "%s",
				 PQgetvalue(r, 0, 0));
	}
	rc = 0;
out:
	PQclear(r);
	PQfinish(conn);
	return rc;
}

static void explain_basebackup(struct init_ctx *c, char *out)
{
	const char *line = last_line(out);

	if (strstr(out, "no pg_hba.conf entry for replication")) {
		const char *host = strstr(out, "host \"");
		char addr[64] = "<rift's address>";
		if (host != NULL)
			snprintf(addr, sizeof(addr), "%.*s", (int)strcspn(host + 6, "\""),
				 host + 6);
		snprintf(c->err, c->errlen,
			 "upstream refuses replication connections from %s: add this line to "
			 "upstream's pg_hba.conf and reload it (SELECT pg_reload_conf()):\n"
			 "  host  replication  <user>  %s/32  scram-sha-256\n(%s)",
			 addr, addr, line);
	} else if (strstr(out, "replication role") ||
		   strstr(out, "permission denied to start WAL")) {
		snprintf(
		    c->err, c->errlen,
		    "the upstream user may not replicate: run ALTER ROLE <user> REPLICATION on "
		    "upstream, or use --logical (%s)",
		    line);
	} else if (strstr(out, "incompatible server version")) {
		snprintf(c->err, c->errlen, "pg_basebackup and upstream differ in version: %s",
			 line);
	} else {
		snprintf(c->err, c->errlen, "pg_basebackup failed: %s", line);
	}
}

/* Child tools get the URL without its password, and the password in a passfile that only the
 * Postgres user can read: argv is public (ps, /proc/<pid>/cmdline) and /proc/<pid>/environ is
 * readable by the same uid for the tool's whole life, while the file lives only as long as the
 * tool runs. */
static int upstream_secrets(struct init_ctx *c, char *env_passfile, size_t len)
{
	PQconninfoOption *opts, *o;
	char *perr = NULL, text[1100];
	size_t used = 0, i, t = 0;
	int rc = -1, fd = -1;

	opts = PQconninfoParse(c->opts->upstream_url, &perr);
	if (opts == NULL) {
		snprintf(c->err, c->errlen,
			 "cannot read the upstream URL: %s (write it as "
			 "postgres://USER@HOST:PORT/DATABASE)",
			 perr != NULL ? perr : "out of memory");
		PQfreemem(perr);
		return -1;
	}
	for (o = opts; o->keyword != NULL; o++) {
		const char *v;
		if (o->val == NULL || strcmp(o->keyword, "password") == 0 ||
		    strcmp(o->keyword, "sslpassword") == 0)
			continue; /* an encrypted client key needs its key file unencrypted */
		used += (size_t)snprintf(c->conninfo + used, sizeof(c->conninfo) - used, "%s%s='",
					 used ? " " : "", o->keyword);
		for (v = o->val; *v != '\0' && used + 4 < sizeof(c->conninfo); v++) {
			if (*v == '\'' || *v == '\\')
				c->conninfo[used++] = '\\';
			c->conninfo[used++] = *v;
		}
		if (used + 2 >= sizeof(c->conninfo)) {
			snprintf(c->err, c->errlen, "the upstream URL is too long");
			goto out;
		}
		c->conninfo[used++] = '\'';
		c->conninfo[used] = '\0';
	}
	env_passfile[0] = '\0';
	if (c->password[0] == '\0') {
		rc = 0; /* upstream asked for no password */
		goto out;
	}
	snprintf(c->secret_dir, sizeof(c->secret_dir), "%s/run/init-secret", c->state);
	snprintf(c->passfile, sizeof(c->passfile), "%s/pgpass", c->secret_dir);
	t = (size_t)snprintf(text, sizeof(text), "*:*:*:*:");
	for (i = 0; c->password[i] != '\0' && t + 3 < sizeof(text); i++) {
		if (c->password[i] == ':' || c->password[i] == '\\')
			text[t++] = '\\';
		text[t++] = c->password[i];
	}
	text[t++] = '\n';
	text[t] = '\0';
	/* The directory is root's until the file is in it: the Postgres user (whom other stores'
	 * branch superusers can become) never gets a moment to plant a link where root writes. */
	if (mkdir(c->secret_dir, 0700) != 0) {
		snprintf(c->err, c->errlen, "cannot create %s: %s", c->secret_dir, strerror(errno));
		goto out;
	}
	fd = open(c->passfile, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, text, t) != (ssize_t)t || fchown(fd, c->uid, c->gid) != 0) {
		snprintf(c->err, c->errlen, "cannot write %s: %s", c->passfile, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	if (close(fd) != 0 || chown(c->secret_dir, c->uid, c->gid) != 0) {
		snprintf(c->err, c->errlen, "cannot hand %s to the Postgres user: %s",
			 c->secret_dir, strerror(errno));
		goto out;
	}
	snprintf(env_passfile, len, "PGPASSFILE=%s", c->passfile);
	rc = 0;
out:
	explicit_bzero(text, sizeof(text));
	PQconninfoFree(opts);
	return rc;
}

static void remove_secrets(struct init_ctx *c)
{
	/* secret_dir is the Postgres user's by now: whatever they put there goes, never followed */
	if (c->secret_dir[0] != '\0' && rift_tree_remove(c->secret_dir) != 0)
		LOG_WARN("init", "cannot remove %s; remove it by hand", c->secret_dir);
	c->passfile[0] = c->secret_dir[0] = '\0';
	explicit_bzero(c->password, sizeof(c->password));
}

static int init_physical(struct init_ctx *c)
{
	char exe[4200], out[OUT_TAIL], db[64], env_pass[4400], mapdir[4200], mapreal[4096];
	char *env[] = { env_pass, NULL };
	char *argv[16 + 2 * MAX_TABLESPACES] = {
		exe, "-d", c->conninfo, "-D", c->work, "-X", "stream", "-c", "fast", "--progress"
	};
	char(*maps)[2 * 4200] = NULL;
	size_t i, n = 10;
	int major, rc = -1;

	if (check_upstream(c, &major, db, sizeof(db)) != 0 ||
	    upstream_secrets(c, env_pass, sizeof(env_pass)) != 0)
		goto out;
	snprintf(c->bindir, sizeof(c->bindir), "/usr/lib/postgresql/%d/bin", major);
	snprintf(exe, sizeof(exe), "%s/pg_basebackup", c->bindir);
	/* tablespaces go below the state directory; copying work into the base follows the
	 * pg_tblspc/<oid> links into them, like those of a --pgdata source */
	snprintf(mapdir, sizeof(mapdir), "%s/staging.tblspc", c->state);
	if (c->ntablespaces > 0) {
		maps = calloc(c->ntablespaces, sizeof(*maps));
		if (maps == NULL || make_owned_dir(c, mapdir, 0700) != 0 ||
		    realpath(mapdir, mapreal) == NULL) {
			snprintf(c->err, c->errlen, "cannot prepare %s: %s", mapdir,
				 strerror(errno));
			goto out;
		}
	}
	for (i = 0; i < c->ntablespaces; i++) {
		const char *l = c->tablespaces[i].location;
		size_t m = 0;
		for (; *l != '\0' && m + 3 < sizeof(maps[i]) / 2; l++) {
			if (*l == '=') /* pg_basebackup's escape for = in OLDDIR */
				maps[i][m++] = '\\';
			maps[i][m++] = *l;
		}
		snprintf(maps[i] + m, sizeof(maps[i]) - m, "=%s/%u", mapreal,
			 c->tablespaces[i].oid);
		argv[n++] = "-T";
		argv[n++] = maps[i];
		say(c, "tablespace %u (%s upstream) goes into the base", c->tablespaces[i].oid,
		    c->tablespaces[i].location);
	}
	argv[n] = NULL;
	say(c, "pg_basebackup -X stream from %s", c->meta.upstream);
	if (env_pass[0] == '\0')
		env[0] = NULL;
	rc = rift_pg_run_lines(c->cfg.pg_user, argv, env, out, sizeof(out), relay_line, c);
	remove_secrets(c);
	if (rc != 0) {
		explain_basebackup(c, out);
		rc = -1;
		goto out;
	}
	snprintf(c->meta.default_db, sizeof(c->meta.default_db), "%s", db[0] ? db : "postgres");
out:
	free(maps);
	return rc;
}

static int init_logical(struct init_ctx *c)
{
	char pwfile[4200], sqlfile[4200], pwset[256], sql[512], out[OUT_TAIL], db[64], cmd[512];
	char env_url[4300], env_bin[4300], env_sock[4300], env_port[64], env_db[128];
	char env_pass[4400];
	char *env[] = { env_url, env_bin, env_sock, env_port, env_db, env_pass, NULL };
	char *argv[] = { "/bin/bash", "-o", "pipefail", "-c", cmd, NULL };
	int major;

	if (check_upstream(c, &major, db, sizeof(db)) != 0 ||
	    upstream_secrets(c, env_pass, sizeof(env_pass)) != 0)
		return -1;
	snprintf(c->bindir, sizeof(c->bindir), "/usr/lib/postgresql/%d/bin", major);
	if (make_password(c->meta.demo_password, sizeof(c->meta.demo_password)) != 0)
		return -1;
	snprintf(pwfile, sizeof(pwfile), "%s/run/init-pw", c->state);
	snprintf(sqlfile, sizeof(sqlfile), "%s/run/init.sql", c->state);
	snprintf(pwset, sizeof(pwset), "%s\n", c->meta.demo_password);
	snprintf(sql, sizeof(sql), "create role rift login superuser password '%s';\n%s%s%s",
		 c->meta.demo_password, strcmp(db, "postgres") != 0 ? "create database \"" : "",
		 strcmp(db, "postgres") != 0 ? db : "", strcmp(db, "postgres") != 0 ? "\";\n" : "");
	if (write_file(c, pwfile, pwset, 0600, true) != 0 ||
	    write_file(c, sqlfile, sql, 0600, true) != 0 || run_initdb(c, pwfile) != 0)
		return -1;
	unlink(pwfile);
	if (start_temp_server(c) != 0 || psql_file(c, "postgres", sqlfile) != 0)
		return -1;
	unlink(sqlfile);
	snprintf(env_url, sizeof(env_url), "RIFT_UPSTREAM=%s", c->conninfo);
	snprintf(env_bin, sizeof(env_bin), "RIFT_BIN=%s", c->bindir);
	snprintf(env_sock, sizeof(env_sock), "RIFT_SOCK=%s", c->sockdir);
	snprintf(env_port, sizeof(env_port), "RIFT_PORT=%d", c->cfg.port_max);
	snprintf(env_db, sizeof(env_db), "RIFT_DB=%s", db);
	snprintf(cmd, sizeof(cmd),
		 "\"$RIFT_BIN/pg_dump\" -Fc -d \"$RIFT_UPSTREAM\" | \"$RIFT_BIN/pg_restore\" "
		 "--no-owner --no-acl --no-tablespaces --exit-on-error -h \"$RIFT_SOCK\" -p "
		 "\"$RIFT_PORT\" -d "
		 "\"$RIFT_DB\"");
	say(c, "pg_dump | pg_restore of %s", c->meta.upstream);
	if (env_pass[0] == '\0')
		env[5] = NULL;
	if (rift_pg_run_lines(c->cfg.pg_user, argv, env, out, sizeof(out), relay_line, c) != 0) {
		remove_secrets(c);
		snprintf(c->err, c->errlen, "pg_dump | pg_restore failed: %s", last_line(out));
		return -1;
	}
	remove_secrets(c);
	stop_temp_server(c);
	snprintf(c->meta.default_db, sizeof(c->meta.default_db), "%s", db);
	return 0;
}

/* A data directory with a live postmaster must not be copied: the copy would be torn. */
static int check_stopped(struct init_ctx *c, const char *pgdata)
{
	char path[4200], line[64] = "";
	FILE *f;
	long pid;

	snprintf(path, sizeof(path), "%s/PG_VERSION", pgdata);
	if (access(path, R_OK) != 0) {
		snprintf(c->err, c->errlen, "%s is not a Postgres data directory (no PG_VERSION)",
			 pgdata);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/postmaster.pid", pgdata);
	f = fopen(path, "re");
	if (f == NULL)
		return 0;
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	pid = strtol(line, NULL, 10);
	if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM)) {
		snprintf(c->err, c->errlen,
			 "%s is in use by a running server (pid %ld); stop it first (pg_ctl -D %s "
			 "stop) or use --upstream to copy it live",
			 pgdata, pid, pgdata);
		return -1;
	}
	return 0;
}

/* Settings that would make a branch's server read or write outside its own data directory:
 * data_directory would even run it on the source's. */
static int check_config(struct init_ctx *c, const char *datadir)
{
	static const char *files[] = { "postgresql.conf", "postgresql.auto.conf" };
	static const char *keys[] = { "data_directory", "config_file", "hba_file",
				      "ident_file",     "include",     "include_if_exists",
				      "include_dir" };
	char path[4300], line[1024];
	size_t i, k;

	snprintf(path, sizeof(path), "%s/postgresql.conf", datadir);
	if (access(path, F_OK) != 0) {
		snprintf(c->err, c->errlen,
			 "the data directory has no postgresql.conf (Debian and Ubuntu keep it in "
			 "/etc/postgresql/<version>/<cluster>/); a branch's server reads its "
			 "settings from the base: copy the data directory (cp -a), put "
			 "postgresql.conf, pg_hba.conf and pg_ident.conf into the copy, without "
			 "their data_directory, hba_file, ident_file and include lines, and give "
			 "rift init --pgdata the copy");
		return -1;
	}
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		int fd;
		FILE *f;
		snprintf(path, sizeof(path), "%s/%s", datadir, files[i]);
		/* root reads it: never through a link (links were checked, but could be swapped) */
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		f = fd >= 0 ? fdopen(fd, "re") : NULL;
		if (f == NULL) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		while (fgets(line, sizeof(line), f) != NULL) {
			const char *p = line + strspn(line, " \t");
			for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
				size_t n = strlen(keys[k]);
				const char *v = p + n;
				if (strncmp(p, keys[k], n) != 0 ||
				    (*v != ' ' && *v != '\t' && *v != '=' && *v != '\''))
					continue;
				v += strspn(v, " \t=\'");
				if (k >= 4 && *v != '/' && strstr(v, "..") == NULL)
					continue; /* an include of a file inside the base is fine */
				line[strcspn(line, "\r\n")] = '\0';
				snprintf(c->err, c->errlen,
					 "%s sets \"%s\": a branch's server must read and write "
					 "only its own data directory; remove the line from the "
					 "source (or from a copy of it), then run rift init again",
					 files[i], p);
				fclose(f);
				return -1;
			}
		}
		fclose(f);
	}
	return 0;
}

static int save_meta(struct init_ctx *c)
{
	char path[4200], text[1024];

	snprintf(path, sizeof(path), "%s/base.conf", c->state);
	snprintf(text, sizeof(text),
		 "mode=%s\ndefault_db=%s\nupstream=%s\ndemo_password=%s\nlogin_role=%s\n",
		 c->meta.mode, c->meta.default_db, c->meta.upstream, c->meta.demo_password,
		 c->meta.login_role);
	return write_file(c, path, text, 0600, false);
}

static bool empty_or_missing(const char *dir)
{
	struct stat st;

	if (stat(dir, &st) != 0)
		return errno == ENOENT;
	return S_ISDIR(st.st_mode) && rmdir(dir) == 0; /* rmdir succeeds only when empty */
}

int rift_init(const char *state, const struct rift_init_opts *opts, char *err, size_t errlen)
{
	static const char *modes[] = { "demo", "physical", "logical", "pgdata" };
	struct init_ctx c = { .state = state, .opts = opts, .err = err, .errlen = errlen };
	struct rift_store *store = NULL;
	char path[4200], serr[RIFT_ERRMSG_LEN];
	const char *subdirs[] = { "mnt", "run", "log", "tls" };
	uint32_t gen;
	size_t i;
	int rc = -1;

	rift_config_defaults(&c.cfg);
	if (!empty_or_missing(state)) {
		snprintf(err, errlen,
			 "%s already holds something (a rift store?); pick an empty --state or "
			 "remove it first",
			 state);
		return -EEXIST;
	}
	if (rift_pg_user(c.cfg.pg_user, &c.uid, &c.gid, err, errlen) != 0)
		return -ENOENT;
	if (rift_store_open(state, true, &store, serr, sizeof(serr)) != 0) {
		snprintf(err, errlen, "%s", serr);
		goto fail;
	}
	/* The servers (as the Postgres user) must traverse the state directory to their mounts. */
	chmod(state, 0711);
	for (i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", state, subdirs[i]);
		if (mkdir(path, 0711) != 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
			goto fail;
		}
	}
	snprintf(path, sizeof(path), "%s/rift.conf", state);
	if (rift_config_write_defaults(path, err, errlen) != 0)
		goto fail;
	{
		char cert[4200], key[4200];
		snprintf(cert, sizeof(cert), "%s/tls/server.crt", state);
		snprintf(key, sizeof(key), "%s/tls/server.key", state);
		chmod(path, 0600);
		snprintf(path, sizeof(path), "%s/tls", state);
		chmod(path, 0700);
		if (rift_tls_make_self_signed(cert, key, err, errlen) != 0)
			goto fail;
	}
	snprintf(c.meta.mode, sizeof(c.meta.mode), "%s", modes[opts->mode]);
	snprintf(c.work, sizeof(c.work), "%s/work", state);
	snprintf(c.staging, sizeof(c.staging), "%s/staging", state);
	snprintf(c.sockdir, sizeof(c.sockdir), "%s/run/init", state);
	/* staging is root's alone from the start: root writes into it, and a directory of the
	 * Postgres user's on the way would let them swap a link in under root's writes */
	if (mkdir(c.staging, 0700) != 0) {
		snprintf(err, errlen, "cannot create %s: %s", c.staging, strerror(errno));
		goto fail;
	}
	if ((opts->mode != RIFT_INIT_PGDATA && make_owned_dir(&c, c.work, 0700) != 0) ||
	    make_owned_dir(&c, c.sockdir, 0700) != 0)
		goto fail;
	if (opts->upstream_url != NULL)
		redact(opts->upstream_url, c.meta.upstream, sizeof(c.meta.upstream));
	if (opts->login_role != NULL)
		snprintf(c.meta.login_role, sizeof(c.meta.login_role), "%s", opts->login_role);
	snprintf(c.bindir, sizeof(c.bindir), "/usr/lib/postgresql/15/bin");
	switch (opts->mode) {
	case RIFT_INIT_DEMO:
		rc = init_demo(&c);
		break;
	case RIFT_INIT_PHYSICAL:
		rc = init_physical(&c);
		break;
	case RIFT_INIT_LOGICAL:
		rc = init_logical(&c);
		break;
	case RIFT_INIT_PGDATA:
		rc = check_stopped(&c, opts->pgdata);
		if (rc == 0)
			rc = check_config(&c, opts->pgdata);
		if (rc == 0) {
			say(&c, "copying %s into the base", opts->pgdata);
			rc = rift_base_copy(opts->pgdata, c.staging, opts->progress,
					    opts->progress_arg, err, errlen);
		}
		snprintf(c.meta.default_db, sizeof(c.meta.default_db), "postgres");
		break;
	}
	stop_temp_server(&c);
	remove_secrets(&c);
	free(c.tablespaces);
	if (rc == 0 && opts->mode != RIFT_INIT_PGDATA) {
		/* Every tool has exited, but a process of the Postgres user may still hold a
		 * descriptor on a file of work: the base is a fresh copy made by root, so no such
		 * descriptor reaches it. */
		say(&c, "copying the new data directory into the base");
		rc = rift_base_copy(c.work, c.staging, opts->progress, opts->progress_arg, err,
				    errlen);
		snprintf(path, sizeof(path), "%s/staging.tblspc", state);
		if (rc == 0 &&
		    ((rc = rift_tree_remove(c.work)) != 0 || (rc = rift_tree_remove(path)) != 0))
			snprintf(err, errlen, "cannot remove %s after copying it: %s", c.work,
				 strerror(-rc));
	}
	if (rc == 0 && opts->mode == RIFT_INIT_PGDATA && c.meta.login_role[0] == '\0') {
		if (rift_bootstrap_role(c.staging, c.meta.login_role, sizeof(c.meta.login_role)) ==
		    0)
			say(&c, "branch URLs name the bootstrap superuser \"%s\"",
			    c.meta.login_role);
		else
			say(&c, "cannot tell the bootstrap superuser from the copy; `rift url` "
				"names no user (rift init --login-role ROLE names one)");
	}
	if (rc == 0)
		rc = rift_base_check_links(c.staging, err, errlen);
	if (rc == 0)
		rc = check_config(&c, c.staging);
	if (rc != 0)
		goto fail;
	say(&c, "recording the base (file identities) in the store");
	/* root's on disk, the server user's in every branch */
	rc = rift_store_base_import_as(store, c.staging, c.uid, c.gid, &gen, serr, sizeof(serr));
	if (rc == 0)
		rc = rift_store_branch_create(store, "main", NULL, gen);
	if (rc != 0) {
		snprintf(err, errlen, "%s", serr[0] ? serr : strerror(-rc));
		goto fail;
	}
	if (save_meta(&c) != 0)
		goto fail;
	rmdir(c.sockdir);
	rift_store_close(store);
	say(&c, "base generation %u ready; branch \"main\" created", gen);
	return 0;
fail:
	stop_temp_server(&c);
	remove_secrets(&c);
	rift_store_close(store);
	/* nothing half-made: a second `rift init` starts clean. Never following a link, since
	 * the Postgres user can change work, staging.tblspc and run/init meanwhile */
	if (rift_tree_remove(state) != 0)
		LOG_WARN("init", "cannot remove all of %s; remove it before the next rift init",
			 state);
	return rc < 0 ? rc : -EIO;
}

/* Marks s[from, to) for removal. */
static void drop(bool *gone, size_t from, size_t to)
{
	for (; from < to; from++)
		gone[from] = true;
}

void rift_conninfo_scrub(char *s)
{
	size_t len = strlen(s), i, w = 0;
	bool *gone = calloc(len + 1, sizeof(*gone));
	const char *scheme = strstr(s, "://");

	if (gone == NULL) {
		explicit_bzero(s, len); /* cannot tell the password apart: hide it all */
		return;
	}
	if (scheme != NULL &&
	    (strncmp(s, "postgres://", 11) == 0 || strncmp(s, "postgresql://", 13) == 0)) {
		size_t start = (size_t)(scheme - s) + 3, q = start + strcspn(s + start, "?");
		size_t at = q, colon;
		/* user:password@host; the last @ before the query, in case the password has one */
		for (i = start; i < q; i++)
			if (s[i] == '@')
				at = i;
		colon = start + strcspn(s + start, ":");
		if (at < q && colon < at)
			drop(gone, colon, at);
		for (i = q; i < len; i++) { /* ?password=...&sslpassword=... */
			size_t k = strncmp(s + i + 1, "password=", 9) == 0       ? 10
				   : strncmp(s + i + 1, "sslpassword=", 12) == 0 ? 13
										 : 0;
			if ((s[i] == '?' || s[i] == '&') && k > 0)
				drop(gone, i + k, i + k + strcspn(s + i + k, "&"));
		}
	} else {
		for (i = 0; i < len; i++) { /* keyword form: password = 'value' */
			size_t j = strncmp(s + i, "sslpassword", 11) == 0 ? i + 11
				   : strncmp(s + i, "password", 8) == 0   ? i + 8
									  : 0,
			       v;
			if (j == 0 || (i > 0 && s[i - 1] != ' ' && s[i - 1] != '\t'))
				continue;
			while (s[j] == ' ' || s[j] == '\t')
				j++;
			if (s[j] != '=')
				continue;
			for (j++; s[j] == ' ' || s[j] == '\t';)
				j++;
			v = j;
			if (s[j] == '\'') {
				for (j++; s[j] != '\0' && s[j] != '\''; j++)
					if (s[j] == '\\' && s[j + 1] != '\0')
						j++;
				if (s[j] == '\'')
					j++;
			} else {
				j += strcspn(s + j, " \t");
			}
			drop(gone, v, j);
		}
	}
	for (i = 0; i < len; i++)
		if (!gone[i])
			s[w++] = s[i];
	memset(s + w, 0, len - w);
	free(gone);
}
