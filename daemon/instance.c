/* instance.c — starts, watches and stops the Postgres server of one branch. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <libpq-fe.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rift/datadir.h"
#include "rift/ddl_log.h"
#include "rift/identity.h"
#include "rift/log.h"
#include "rift/wal_dir.h"
#include "rift/instance.h"
#include "rift/pgproc.h"

#define HBA_MARK "# rift: local trust for riftd's own 0700 socket directory"

#define MAINT_QUERY_MS 5000  /* riftd's own lookups on a branch end within this */
#define MAINT_EXEC_MS  60000 /* its commands (CHECKPOINT before a branch is taken, ALTER ROLE) */

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Clears what must not survive into a new server and writes riftd's hba file for it, all
 * through a descriptor of the mount root: nothing under it is followed (datadir.h). */
static int prepare_datadir(const struct rift_instance *inst, uid_t uid, gid_t gid, char *err,
			   size_t errlen)
{
	int rootfd = rift_datadir_open(inst->datadir), rc;

	if (rootfd < 0) {
		snprintf(err, errlen, "cannot open the mount of branch \"%s\" at %s: %s",
			 inst->branch, inst->datadir, strerror(-rootfd));
		return rootfd;
	}
	rc = rift_datadir_prepare(rootfd, inst->branch, uid, gid, err, errlen);
	if (rc == 0 && inst->walroot[0] != '\0') {
		struct rift_wal_owner owner = { uid, gid, inst->wal_lo, inst->wal_hi };
		rc = rift_wal_prepare(inst->walroot, rootfd, inst->branch, inst->wal_id,
				      inst->wal_fork, &owner, inst->wal_in_store, err, errlen);
		if (rc == 0)
			rc =
			    rift_wal_temp_prepare(inst->walroot, rootfd, inst->branch, inst->wal_id,
						  uid, gid, inst->wal_in_store, err, errlen);
	}
	if (rc == 0)
		rc = rift_datadir_write_hba(rootfd, inst->branch, inst->hbafile, gid,
					    inst->hba_closed, err, errlen);
	close(rootfd);
	return rc;
}

/* The socket directory is made afresh for each start and handed to the server's uid through a
 * descriptor: whatever an earlier server (maybe another uid) left there, including a symlink in
 * its place, is removed, never followed, and never chowned. run/pg is riftd's (root, 0711), so
 * nobody else can put anything at that path meanwhile. */
static int make_sockdir(const char *dir, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	char parent[4096];
	const char *base = strrchr(dir, '/');
	struct stat st;
	int pfd = -1, fd = -1, rc = 0;

	if (base == NULL || (size_t)(base - dir) >= sizeof(parent))
		return -EINVAL;
	snprintf(parent, sizeof(parent), "%.*s", (int)(base - dir), dir);
	base++;
	pfd = open(parent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (pfd < 0 || fstat(pfd, &st) != 0) {
		rc = -errno;
		goto out;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
		snprintf(err, errlen,
			 "%s must be owned by riftd's user and writable by it alone (chown root "
			 "%s; chmod 0711 %s)",
			 parent, parent, parent);
		rc = -EPERM;
		goto done;
	}
	rc = rift_remove_tree_at(pfd, base);
	if (rc == 0 && mkdirat(pfd, base, 0700) != 0)
		rc = -errno;
	if (rc == 0) {
		fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			rc = -errno;
	}
	if (rc == 0 && (fstat(fd, &st) != 0 || st.st_uid != geteuid()))
		rc = -EPERM;
	if (rc == 0 && (fchown(fd, uid, gid) != 0 || fchmod(fd, 0700) != 0))
		rc = -errno;
out:
	if (rc != 0)
		snprintf(err, errlen, "cannot prepare socket directory %s: %s", dir, strerror(-rc));
done:
	if (fd >= 0)
		close(fd);
	if (pfd >= 0)
		close(pfd);
	return rc;
}

bool rift_instance_alive(struct rift_instance *inst)
{
	int status;

	if (inst->pid <= 0)
		return false;
	if (waitpid(inst->pid, &status, WNOHANG) == inst->pid) {
		inst->pid = 0;
		return false;
	}
	return kill(inst->pid, 0) == 0;
}

/*
 * riftd's own connections run as root over the branch's socket directory, which the branch's
 * user owns: whatever answers there must get no password, so neither PGPASSWORD nor root's
 * ~/.pgpass is consulted (an empty password and a password file that does not exist). The
 * branch's superuser can also set a role's search_path to a schema of look-alike views that
 * never return, or a statement_timeout of 0: options sent at connection outrank role and
 * database settings, so riftd's queries see only pg_catalog and end within timeout_ms.
 * log_statement=none keeps riftd's own commands (ALTER ROLE ... PASSWORD) out of the branch's
 * DDL log (rift log) and out of the server log. The keys and values go to libpq as arrays
 * (expand_dbname 0), so no database name is ever read as a connection string.
 */
struct conn_params {
	char port[16], timeout[16], opts[320];
	const char *keys[9], *vals[9];
};

static void conn_params(struct conn_params *p, const struct rift_instance *inst, const char *user,
			const char *dbname, int connect_s, int timeout_ms, bool read_only)
{
	static const char *const keys[] = {
		"host",     "port",     "dbname",  "user", "connect_timeout",
		"password", "passfile", "options", NULL
	};

	snprintf(p->port, sizeof(p->port), "%d", inst->port);
	snprintf(p->timeout, sizeof(p->timeout), "%d", connect_s);
	snprintf(p->opts, sizeof(p->opts),
		 "-c search_path=pg_catalog -c statement_timeout=%d -c lock_timeout=%d "
		 "-c log_statement=none -c default_transaction_read_only=%s",
		 timeout_ms, timeout_ms, read_only ? "on" : "off");
	memcpy(p->keys, keys, sizeof(keys));
	p->vals[0] = inst->sockdir;
	p->vals[1] = p->port;
	p->vals[2] = dbname;
	p->vals[3] = user;
	p->vals[4] = p->timeout;
	p->vals[5] = "";
	p->vals[6] = "/nonexistent/rift-no-passfile";
	p->vals[7] = p->opts;
	p->vals[8] = NULL;
}

/*
 * Runs one query with a deadline on the client side too: a server the branch's user stopped
 * (SIGSTOP of its own postmaster) honours no statement_timeout, and riftd's idle thread, the
 * router's verifier fetches and creates must never hang on one branch. The query is cancelled
 * at the deadline. Returns the last result (the caller clears it) or NULL.
 */
static PGresult *query_deadline(PGconn *c, const char *sql, int nparams, const char *const *params,
				int timeout_ms)
{
	struct timespec start, now;
	PGresult *last = NULL, *r;
	long left_ms;

	if (!PQsendQueryParams(c, sql, nparams, NULL, params, NULL, NULL, 0))
		return NULL;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct pollfd pfd = { .fd = PQsocket(c), .events = POLLIN };
		while (!PQisBusy(c)) {
			r = PQgetResult(c);
			if (r == NULL)
				return last;
			PQclear(last);
			last = r;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		left_ms = timeout_ms + 1000 - (now.tv_sec - start.tv_sec) * 1000 -
			  (now.tv_nsec - start.tv_nsec) / 1000000;
		if (left_ms <= 0)
			break;
		if (poll(&pfd, 1, (int)left_ms) < 0 && errno != EINTR)
			break;
		if (!PQconsumeInput(c))
			break;
	}
	PQclear(last);
	return NULL; /* the caller's PQfinish drops the connection; the server ends the query */
}

/*
 * A connection to the server riftd started, or NULL with *why. The branch's user could put a
 * socket of their own in the server's place (or a link to any socket on the host): the peer
 * must be the postmaster riftd forked, as SO_PEERCRED names the process that listened.
 */
static PGconn *connect_checked(const struct rift_instance *inst, const char *user,
			       const char *dbname, int connect_s, int timeout_ms, bool read_only,
			       char *why, size_t whylen)
{
	struct conn_params p;
	struct ucred cred = { 0 };
	socklen_t credlen = sizeof(cred);
	PGconn *c;

	conn_params(&p, inst, user, dbname, connect_s, timeout_ms, read_only);
	c = PQconnectdbParams(p.keys, p.vals, 0);
	if (PQstatus(c) != CONNECTION_OK) {
		snprintf(why, whylen, "%s", PQerrorMessage(c));
		goto fail;
	}
	if (getsockopt(PQsocket(c), SOL_SOCKET, SO_PEERCRED, &cred, &credlen) != 0 ||
	    inst->pid <= 0 || cred.pid != inst->pid) {
		LOG_WARN("instance",
			 "branch %s: the socket in %s is not its server's (pid %d, not %d); "
			 "riftd does not talk to it (restart the branch: rift stop %s)",
			 inst->branch, inst->sockdir, (int)cred.pid, (int)inst->pid, inst->branch);
		snprintf(why, whylen, "the socket in %s is not the server's (restart the branch)",
			 inst->sockdir);
		goto fail;
	}
	return c;
fail:
	PQfinish(c);
	return NULL;
}

/* A maintenance connection to database postgres, which every cluster rift serves has. */
static PGconn *connect_maint(const struct rift_instance *inst, const char *user, int timeout_ms,
			     char *why, size_t whylen)
{
	return connect_checked(inst, user, "postgres", 5, timeout_ms, false, why, whylen);
}

struct pg_conn *rift_instance_connect(const struct rift_instance *inst, const char *pg_user,
				      const char *dbname, int timeout_ms, char *why, size_t whylen)
{
	/* 30 s to connect: a report may wait on a busy machine, unlike the router's lookups */
	return (struct pg_conn *)connect_checked(inst, pg_user, dbname, 30, timeout_ms, true, why,
						 whylen);
}

/* The last line of the server log, so a failed start can say why without a trip to the file. */
static void last_log_line(const char *path, char *out, size_t len)
{
	char line[512] = "";
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;

	out[0] = '\0';
	if (f == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	if (fseek(f, -4096, SEEK_END) != 0)
		rewind(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (line[0] != '\n')
			snprintf(out, len, "%s", line);
	fclose(f);
	out[strcspn(out, "\n")] = '\0';
}

/* Does the log, from offset on, contain needle? (It is this start's part of the log.) */
static bool log_mentions(const char *path, off_t offset, const char *needle)
{
	char buf[8192];
	bool found = false;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return false;
	n = pread(fd, buf, sizeof(buf) - 1, offset);
	if (n > 0) {
		buf[n] = '\0';
		found = strstr(buf, needle) != NULL;
	}
	close(fd);
	return found;
}

/* What a server logs once it accepts connections (PostgreSQL's text, lc_messages C or en). */
#define READY_LINE     "database system is ready to accept connections"
#define READY_PING_MS  100 /* ask by connecting this often when the log says nothing */
#define READY_GAP_MS   20  /* and at most this often when it does (it may be a planted line) */
#define READY_POLL_MS  5   /* read the log this often */
#define READY_READ_MAX 16384

/*
 * Whether the log, from *scanned on, holds READY_LINE; *scanned moves past what was read (less
 * a line's length, so a line cut by the read is found next time). One bounded read per call:
 * a process left behind by the branch's user may hold the log open and fill it.
 */
static bool log_says_ready(int fd, off_t *scanned)
{
	char buf[READY_READ_MAX];
	const size_t len = sizeof(READY_LINE) - 1;
	ssize_t n = fd >= 0 ? pread(fd, buf, sizeof(buf), *scanned) : -1;

	if (n < (ssize_t)len)
		return false;
	*scanned += n - (ssize_t)(len - 1);
	return memmem(buf, (size_t)n, READY_LINE, len) != NULL;
}

/*
 * Waits until the new server accepts connections. Why the log: asking by connecting every
 * 20 ms made the postmaster fork a backend for each attempt ("starting up"), which, with
 * several servers starting at once on a small machine, cost more CPU than the starts
 * themselves (a 270 ms start used 560 ms). The log is riftd's own file outside the branch
 * (nothing is read through the mount); its line only says when to ask, and one connection
 * confirms. A line written by a process the branch's user left behind makes riftd ask early
 * (every READY_GAP_MS at most), nothing more; a server logging in another language is asked
 * every READY_PING_MS.
 * 0, -EADDRINUSE (another server took the port), -EIO (it exited), -ETIMEDOUT; *err set.
 */
static int wait_ready(const struct rift_config *cfg, struct rift_instance *inst,
		      const struct conn_params *ping_params, off_t log_start, char *err,
		      size_t errlen)
{
	struct timespec start, now;
	char why[512];
	int fd = open(inst->logpath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), rc;
	off_t scanned = log_start;
	long since_ping = READY_GAP_MS;
	bool said_ready = false;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if (log_says_ready(fd, &scanned))
			said_ready = true;
		/* a process the branch's user left holding the log could write the line over and
		 * over: each connection forks a backend, so the log's word is heeded at most every
		 * READY_GAP_MS */
		if ((said_ready && since_ping >= READY_GAP_MS) || since_ping >= READY_PING_MS) {
			said_ready = false;
			since_ping = 0;
			if (PQpingParams(ping_params->keys, ping_params->vals, 0) == PQPING_OK) {
				rc = 0;
				break;
			}
		}
		if (!rift_instance_alive(inst)) {
			/* another server took the port between our check and its bind: the
			 * caller picks another port */
			if (log_mentions(inst->logpath, log_start, "already in use")) {
				rc = -EADDRINUSE;
				break;
			}
			last_log_line(inst->logpath, why, sizeof(why));
			snprintf(err, errlen,
				 "the server of branch \"%s\" exited while starting: %s (log: %s)",
				 inst->branch, why[0] ? why : "no reason logged", inst->logpath);
			rc = -EIO;
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= cfg->start_timeout_s) {
			last_log_line(inst->logpath, why, sizeof(why));
			snprintf(
			    err, errlen,
			    "the server of branch \"%s\" did not accept connections within %d "
			    "s (last log line: %s; log: %s; raise [instances] start_timeout for "
			    "long recoveries)",
			    inst->branch, cfg->start_timeout_s, why, inst->logpath);
			rc = -ETIMEDOUT;
			break;
		}
		sleep_ms(READY_POLL_MS);
		since_ping += READY_POLL_MS;
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

int rift_instance_spawn(const struct rift_instance *inst, const char *pg_user, char *const argv[],
			char *const env[], int log_fd, pid_t *pid)
{
	if (inst->uid != 0)
		return rift_pg_spawn_ids(inst->uid, inst->gid, inst->max_processes, argv, env,
					 log_fd, pid);
	return rift_pg_spawn(pg_user, argv, env, log_fd, pid);
}

int rift_instance_start(const struct rift_config *cfg, const char *bindir,
			struct rift_instance *inst, char *err, size_t errlen)
{
	char exe[4200], port[16], sock[4200], sb[32], cluster[96];
	struct conn_params ping_params;
	char hba[4200];
	/* allow_in_place_tablespaces: a base's tablespaces are directories in pg_tblspc (rift
	 * init copies them in), which recovery to a consistent state refuses otherwise */
	char *argv[] = { exe, "-D", inst->datadir, "-p", port, "-k", sock, "-c",
			 "listen_addresses=127.0.0.1", "-c", "wal_init_zero=off", "-c",
			 "wal_recycle=off", "-c", sb, "-c", cluster, "-c", "archive_mode=off", "-c",
			 "allow_in_place_tablespaces=on",
			 /* riftd's hba file, outside the data directory: a -c option outranks
			  * postgresql.conf and ALTER SYSTEM */
			 "-c", hba,
			 /* rift log: the DDL each session runs, in a shape ddl_log.c parses, to
			  * stderr (log/<branch>.log, riftd's file outside the branch) whatever the
			  * base's own logging settings say */
			 "-c", "log_statement=ddl", "-c", "log_line_prefix=" RIFT_DDL_LOG_PREFIX,
			 "-c", "log_timezone=UTC", "-c", "log_destination=stderr", "-c",
			 "logging_collector=off", NULL };
	uid_t uid;
	gid_t gid;
	off_t log_start;
	int rc, log_fd;

	if (inst->uid != 0) {
		uid = inst->uid;
		gid = inst->gid;
	} else {
		rc = rift_pg_user(cfg->pg_user, &uid, &gid, err, errlen);
		if (rc != 0)
			return rc;
	}
	rc = make_sockdir(inst->sockdir, uid, gid, err, errlen);
	if (rc == 0)
		rc = prepare_datadir(inst, uid, gid, err, errlen);
	if (rc != 0)
		return rc;
	snprintf(exe, sizeof(exe), "%s/postgres", bindir);
	snprintf(port, sizeof(port), "%d", inst->port);
	snprintf(sock, sizeof(sock), "%s", inst->sockdir);
	snprintf(sb, sizeof(sb), "shared_buffers=%dMB", cfg->shared_buffers_mb);
	snprintf(cluster, sizeof(cluster), "cluster_name=rift-%s", inst->branch);
	if ((size_t)snprintf(hba, sizeof(hba), "hba_file=%s", inst->hbafile) >= sizeof(hba)) {
		snprintf(err, errlen, "the hba file path %s is too long", inst->hbafile);
		return -ENAMETOOLONG;
	}
	log_fd = open(inst->logpath, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (log_fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot open the log %s: %s", inst->logpath, strerror(-rc));
		return rc;
	}
	log_start = lseek(log_fd, 0, SEEK_END);
	if (log_start < 0)
		log_start = 0;
	inst->max_processes = cfg->max_processes;
	rc = rift_instance_spawn(inst, cfg->pg_user, argv, NULL, log_fd, &inst->pid);
	close(log_fd);
	if (rc != 0) {
		snprintf(err, errlen, "cannot start %s: %s", exe, strerror(-rc));
		return rc;
	}
	conn_params(&ping_params, inst, cfg->pg_user, "postgres", 5, MAINT_QUERY_MS, false);
	rc = wait_ready(cfg, inst, &ping_params, log_start, err, errlen);
	if (rc == -ETIMEDOUT)
		rift_instance_stop(inst, 5);
	return rc;
}

static bool wait_exit(struct rift_instance *inst, int timeout_ms)
{
	int waited;

	for (waited = 0; waited < timeout_ms; waited += 20) {
		if (!rift_instance_alive(inst))
			return true;
		sleep_ms(20);
	}
	return !rift_instance_alive(inst);
}

void rift_instance_stop(struct rift_instance *inst, int timeout_s)
{
	if (!rift_instance_alive(inst))
		return;
	kill(inst->pid, SIGINT); /* fast shutdown: a checkpoint, then exit */
	if (wait_exit(inst, timeout_s * 1000))
		return;
	kill(inst->pid, SIGQUIT); /* immediate: crash recovery at the next start */
	if (wait_exit(inst, 5000))
		return;
	kill(-inst->pid, SIGKILL);
	wait_exit(inst, 5000);
}

void rift_instance_discard(struct rift_instance *inst)
{
	if (!rift_instance_alive(inst))
		return;
	kill(inst->pid, SIGQUIT); /* immediate: no shutdown checkpoint for data about to go */
	if (wait_exit(inst, 5000))
		return;
	kill(-inst->pid, SIGKILL);
	wait_exit(inst, 5000);
}

int rift_instance_open_hba(struct rift_instance *inst, char *err, size_t errlen)
{
	int rootfd = rift_datadir_open(inst->datadir), rc;

	if (rootfd < 0) {
		snprintf(err, errlen, "cannot open the mount of branch \"%s\" at %s: %s",
			 inst->branch, inst->datadir, strerror(-rootfd));
		return rootfd;
	}
	inst->hba_closed = false;
	rc = rift_datadir_write_hba(rootfd, inst->branch, inst->hbafile, inst->gid, false, err,
				    errlen);
	close(rootfd);
	/* the postmaster rereads hba_file on SIGHUP; new logins follow it from then on */
	if (rc == 0 && (inst->pid <= 0 || kill(inst->pid, SIGHUP) != 0)) {
		rc = -ESRCH;
		snprintf(err, errlen, "the server of branch \"%s\" is not running", inst->branch);
	}
	return rc;
}

int rift_instance_exec(const struct rift_instance *inst, const char *pg_user, const char *sql,
		       char *err, size_t errlen)
{
	char why[512];
	PGconn *c;
	PGresult *r;
	int rc = 0;

	c = connect_maint(inst, pg_user, MAINT_EXEC_MS, why, sizeof(why));
	if (c == NULL) {
		snprintf(err, errlen, "cannot connect to the server of branch \"%s\": %s",
			 inst->branch, why);
		return -ECONNREFUSED;
	}
	r = query_deadline(c, sql, 0, NULL, MAINT_EXEC_MS);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "%s on branch \"%s\" failed: %s", sql, inst->branch,
			 PQerrorMessage(c));
		rc = -EIO;
	}
	PQclear(r);
	PQfinish(c);
	return rc;
}

int rift_instance_prewarm(const struct rift_instance *inst, const char *pg_user, const char *dbname,
			  char *err, size_t errlen)
{
	char why[512];
	PGconn *c;
	PGresult *r;
	int rc = 0;

	/* the first login to a database after a start rebuilds its relcache init file
	 * (base/<oid>/pg_internal.init, removed at startup); one login here spares the client's */
	c = (PGconn *)rift_instance_connect(inst, pg_user, dbname, MAINT_QUERY_MS, why,
					    sizeof(why));
	if (c == NULL) {
		snprintf(err, errlen, "cannot connect to database \"%s\" of branch \"%s\": %s",
			 dbname, inst->branch, why);
		return -ECONNREFUSED;
	}
	r = query_deadline(c, "select 1", 0, NULL, MAINT_QUERY_MS);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "select 1 in database \"%s\" of branch \"%s\" failed: %s",
			 dbname, inst->branch, PQerrorMessage(c));
		rc = -EIO;
	}
	PQclear(r);
	PQfinish(c);
	return rc;
}

int rift_instance_role_secret(const struct rift_instance *inst, const char *pg_user,
			      const char *role, char *out, size_t outlen)
{
	const char *params[1] = { role };
	char why[512];
	PGconn *c;
	PGresult *r;
	int rc = -ENOENT;

	c = connect_maint(inst, pg_user, MAINT_QUERY_MS, why, sizeof(why));
	if (c == NULL)
		return -ECONNREFUSED;
	r = query_deadline(c,
			   "select rolpassword from pg_catalog.pg_authid where rolname = $1 and "
			   "rolcanlogin and (rolvaliduntil is null or rolvaliduntil > "
			   "pg_catalog.now()) and rolpassword like 'SCRAM-SHA-256$%'",
			   1, params, MAINT_QUERY_MS);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
	    strlen(PQgetvalue(r, 0, 0)) < outlen) {
		snprintf(out, outlen, "%s", PQgetvalue(r, 0, 0));
		rc = 0;
	}
	PQclear(r);
	PQfinish(c);
	return rc;
}

/* A count the branch's superuser may have forged: a plain decimal within range, or -1. */
static int64_t parse_count(PGresult *r)
{
	const char *v;
	char *end;
	long long n;

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 || PQnfields(r) != 1)
		return -1;
	v = PQgetvalue(r, 0, 0);
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || n < 0)
		return -1;
	return (int64_t)n;
}

int rift_instance_clients(const struct rift_instance *inst, const char *pg_user, int64_t *sessions)
{
	char why[512];
	PGconn *c;
	PGresult *r;
	int64_t n = -1;

	*sessions = -1;
	c = connect_maint(inst, pg_user, MAINT_QUERY_MS, why, sizeof(why));
	if (c != NULL) {
		r = query_deadline(
		    c,
		    "select pg_catalog.count(*) from pg_catalog.pg_stat_activity where "
		    "backend_type = 'client backend' and pid <> "
		    "pg_catalog.pg_backend_pid()",
		    0, NULL, MAINT_QUERY_MS);
		n = parse_count(r);
		PQclear(r);
		/* the column came in PostgreSQL 14: not asked of older servers, where it would only
		 * log an error at every count */
		if (n >= 0 && PQserverVersion(c) >= 140000) {
			r = query_deadline(c,
					   "select pg_catalog.sum(sessions) from "
					   "pg_catalog.pg_stat_database",
					   0, NULL, MAINT_QUERY_MS);
			*sessions = parse_count(r);
			PQclear(r);
		}
	}
	PQfinish(c);
	return n > INT_MAX ? INT_MAX : (int)n;
}
