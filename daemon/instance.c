/* instance.c — starts, watches and stops the Postgres server of one branch. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rift/log.h"
#include "rift/instance.h"
#include "rift/pgproc.h"

#define HBA_MARK "# rift: local trust for riftd's own 0700 socket directory"

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Removes path/name if it exists; ENOENT is fine. */
static int remove_in(const char *dir, const char *name)
{
	char path[4352];

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return -ENAMETOOLONG;
	if (unlink(path) != 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/* A branch never replays its parent's replication: slots would pin WAL forever. */
static int drop_slots(const char *datadir)
{
	char path[4352];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "%s/pg_replslot", datadir);
	d = opendir(path);
	if (d == NULL)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d)) != NULL) {
		char slot[4608];
		if (de->d_name[0] == '.')
			continue;
		snprintf(slot, sizeof(slot), "%s/%s", path, de->d_name);
		remove_in(slot, "state");
		if (rmdir(slot) != 0)
			LOG_WARN("instance", "cannot drop replication slot %s: %s", slot,
				 strerror(errno));
	}
	closedir(d);
	return 0;
}

/* Prepends rift's trust line for unix-socket connections; only root and the Postgres user can
 * reach the 0700 socket directory, and routed clients never use it (they come over TCP). */
static int add_hba_line(const char *datadir)
{
	char path[4352], tmp[4400], *old = NULL;
	struct stat st;
	int rc = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/pg_hba.conf", datadir);
	f = fopen(path, "re");
	if (f == NULL)
		return -errno;
	if (fstat(fileno(f), &st) != 0 || st.st_size > (1 << 20)) {
		fclose(f);
		return -EFBIG;
	}
	old = malloc((size_t)st.st_size + 1);
	n = old ? fread(old, 1, (size_t)st.st_size, f) : 0;
	fclose(f);
	if (old == NULL)
		return -ENOMEM;
	old[n] = '\0';
	if (strstr(old, HBA_MARK) != NULL)
		goto out;
	snprintf(tmp, sizeof(tmp), "%s.rift", path);
	f = fopen(tmp, "we");
	if (f == NULL) {
		rc = -errno;
		goto out;
	}
	fprintf(f, "%s\nlocal all all trust\n%s", HBA_MARK, old);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0 ||
	    fchown(fileno(f), st.st_uid, st.st_gid) != 0 ||
	    fchmod(fileno(f), st.st_mode & 07777) != 0)
		rc = -errno;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
out:
	free(old);
	return rc;
}

/* A postmaster.pid left by a server that died with riftd names a pid that is gone, a zombie,
 * or by now another process; Postgres would refuse to start over it. riftd starts the only
 * servers on its mounts and ends orphans first, so a lock file whose pid is not a live
 * postmaster on this very directory is stale. */
static int clear_stale_pidfile(const char *datadir)
{
	char path[4352], line[32] = "", proc[64], args[8192], stat[256];
	const char *paren;
	bool live = false;
	FILE *f;
	long pid;
	size_t n, i;

	if ((size_t)snprintf(path, sizeof(path), "%s/postmaster.pid", datadir) >= sizeof(path))
		return -ENAMETOOLONG;
	f = fopen(path, "re");
	if (f == NULL)
		return 0;
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	pid = strtol(line, NULL, 10);
	snprintf(proc, sizeof(proc), "/proc/%ld/stat", pid);
	f = pid > 0 ? fopen(proc, "re") : NULL;
	if (f != NULL) {
		n = fread(stat, 1, sizeof(stat) - 1, f);
		fclose(f);
		stat[n] = '\0';
		paren = strrchr(stat, ')');
		live = paren != NULL && paren[1] != '\0' && paren[2] != 'Z';
	}
	if (live) {
		snprintf(proc, sizeof(proc), "/proc/%ld/cmdline", pid);
		f = fopen(proc, "re");
		n = f ? fread(args, 1, sizeof(args) - 1, f) : 0;
		if (f != NULL)
			fclose(f);
		for (i = 0; i < n; i++)
			if (args[i] == '\0')
				args[i] = ' ';
		args[n] = '\0';
		live = strstr(args, datadir) != NULL;
	}
	if (live)
		return -EBUSY;
	return remove_in(datadir, "postmaster.pid");
}

static int prepare_datadir(const char *datadir, char *err, size_t errlen)
{
	int rc = clear_stale_pidfile(datadir);

	if (rc == -EBUSY) {
		snprintf(err, errlen,
			 "another Postgres server is already running on %s; stop it first",
			 datadir);
		return rc;
	}
	if (rc == 0)
		rc = remove_in(datadir, "standby.signal");

	if (rc == 0)
		rc = remove_in(datadir, "recovery.signal");
	if (rc == 0)
		rc = drop_slots(datadir);
	if (rc == 0)
		rc = add_hba_line(datadir);
	if (rc != 0)
		snprintf(err, errlen, "cannot prepare %s for its server: %s", datadir,
			 strerror(-rc));
	return rc;
}

static int make_sockdir(const char *dir, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	if ((mkdir(dir, 0700) != 0 && errno != EEXIST) || chown(dir, uid, gid) != 0 ||
	    chmod(dir, 0700) != 0) {
		snprintf(err, errlen, "cannot prepare socket directory %s: %s", dir,
			 strerror(errno));
		return -errno;
	}
	return 0;
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

static void conninfo(const struct rift_instance *inst, const char *user, char *out, size_t len)
{
	if ((size_t)snprintf(out, len, "host=%s port=%d dbname=postgres user=%s connect_timeout=5",
			     inst->sockdir, inst->port, user) >= len)
		out[0] = '\0'; /* libpq then fails to connect, which callers report */
}

/* The last line of the server log, so a failed start can say why without a trip to the file. */
static void last_log_line(const char *path, char *out, size_t len)
{
	char line[512] = "";
	FILE *f = fopen(path, "re");

	out[0] = '\0';
	if (f == NULL)
		return;
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
	int fd = open(path, O_RDONLY | O_CLOEXEC);

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

int rift_instance_start(const struct rift_config *cfg, const char *bindir,
			struct rift_instance *inst, char *err, size_t errlen)
{
	char exe[4200], port[16], sock[4200], sb[32], cluster[96], conn[4400], why[512];
	/* allow_in_place_tablespaces: a base's tablespaces are directories in pg_tblspc (rift
	 * init copies them in), which recovery to a consistent state refuses otherwise */
	char *argv[] = { exe,
			 "-D",
			 inst->datadir,
			 "-p",
			 port,
			 "-k",
			 sock,
			 "-c",
			 "listen_addresses=127.0.0.1",
			 "-c",
			 "wal_init_zero=off",
			 "-c",
			 "wal_recycle=off",
			 "-c",
			 sb,
			 "-c",
			 cluster,
			 "-c",
			 "archive_mode=off",
			 "-c",
			 "allow_in_place_tablespaces=on",
			 NULL };
	struct timespec start, now;
	uid_t uid;
	gid_t gid;
	off_t log_start;
	int rc, log_fd;

	rc = rift_pg_user(cfg->pg_user, &uid, &gid, err, errlen);
	if (rc != 0)
		return rc;
	rc = make_sockdir(inst->sockdir, uid, gid, err, errlen);
	if (rc == 0)
		rc = prepare_datadir(inst->datadir, err, errlen);
	if (rc != 0)
		return rc;
	snprintf(exe, sizeof(exe), "%s/postgres", bindir);
	snprintf(port, sizeof(port), "%d", inst->port);
	snprintf(sock, sizeof(sock), "%s", inst->sockdir);
	snprintf(sb, sizeof(sb), "shared_buffers=%dMB", cfg->shared_buffers_mb);
	snprintf(cluster, sizeof(cluster), "cluster_name=rift-%s", inst->branch);
	log_fd = open(inst->logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (log_fd < 0) {
		snprintf(err, errlen, "cannot open the log %s: %s", inst->logpath, strerror(errno));
		return -errno;
	}
	log_start = lseek(log_fd, 0, SEEK_END);
	if (log_start < 0)
		log_start = 0;
	rc = rift_pg_spawn(cfg->pg_user, argv, NULL, log_fd, &inst->pid);
	close(log_fd);
	if (rc != 0) {
		snprintf(err, errlen, "cannot start %s: %s", exe, strerror(-rc));
		return rc;
	}
	conninfo(inst, cfg->pg_user, conn, sizeof(conn));
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		PGPing ping = PQping(conn);
		if (ping == PQPING_OK)
			return 0;
		if (!rift_instance_alive(inst)) {
			/* another server took the port between our check and its bind: the
			 * caller picks another port */
			if (log_mentions(inst->logpath, log_start, "already in use"))
				return -EADDRINUSE;
			last_log_line(inst->logpath, why, sizeof(why));
			snprintf(err, errlen,
				 "the server of branch \"%s\" exited while starting: %s "
				 "(log: %s)",
				 inst->branch, why[0] ? why : "no reason logged", inst->logpath);
			return -EIO;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= cfg->start_timeout_s)
			break;
		sleep_ms(20);
	}
	last_log_line(inst->logpath, why, sizeof(why));
	snprintf(err, errlen,
		 "the server of branch \"%s\" did not accept connections within %d s (last log "
		 "line: %s; log: %s; raise [instances] start_timeout for long recoveries)",
		 inst->branch, cfg->start_timeout_s, why, inst->logpath);
	rift_instance_stop(inst, 5);
	return -ETIMEDOUT;
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

int rift_instance_exec(const struct rift_instance *inst, const char *pg_user, const char *sql,
		       char *err, size_t errlen)
{
	char conn[4400];
	PGconn *c;
	PGresult *r;
	int rc = 0;

	conninfo(inst, pg_user, conn, sizeof(conn));
	c = PQconnectdb(conn);
	if (PQstatus(c) != CONNECTION_OK) {
		snprintf(err, errlen, "cannot connect to the server of branch \"%s\": %s",
			 inst->branch, PQerrorMessage(c));
		PQfinish(c);
		return -ECONNREFUSED;
	}
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "%s on branch \"%s\" failed: %s", sql, inst->branch,
			 PQerrorMessage(c));
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
	char conn[4400];
	PGconn *c;
	PGresult *r;
	int rc = -ENOENT;

	conninfo(inst, pg_user, conn, sizeof(conn));
	c = PQconnectdb(conn);
	if (PQstatus(c) != CONNECTION_OK) {
		PQfinish(c);
		return -ECONNREFUSED;
	}
	r = PQexecParams(c,
			 "select rolpassword from pg_authid where rolname = $1 and rolcanlogin and "
			 "(rolvaliduntil is null or rolvaliduntil > now()) and "
			 "rolpassword like 'SCRAM-SHA-256$%'",
			 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
	    strlen(PQgetvalue(r, 0, 0)) < outlen) {
		snprintf(out, outlen, "%s", PQgetvalue(r, 0, 0));
		rc = 0;
	}
	PQclear(r);
	PQfinish(c);
	return rc;
}

int rift_instance_clients(const struct rift_instance *inst, const char *pg_user)
{
	char conn[4400];
	PGconn *c;
	PGresult *r;
	int n = -1;

	conninfo(inst, pg_user, conn, sizeof(conn));
	c = PQconnectdb(conn);
	if (PQstatus(c) == CONNECTION_OK) {
		r = PQexec(c, "select count(*) from pg_stat_activity where backend_type = 'client "
			      "backend' and pid <> pg_backend_pid()");
		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
			n = (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
		PQclear(r);
	}
	PQfinish(c);
	return n;
}
