/* instance.h — one Postgres server running on a mounted branch, as the Postgres OS user. */
#ifndef RIFT_INSTANCE_H
#define RIFT_INSTANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "rift/config.h"

struct rift_instance {
	char branch[64];
	char datadir[4096]; /* the branch's mount point */
	char sockdir[4096]; /* run/pg/<branch>, 0700, owned by the server's uid, made afresh */
	char logpath[4096]; /* log/<branch>.log */
	char hbafile[4096]; /* run/hba/<branch>.conf: riftd's, root-owned, outside the branch */
	bool hba_closed;    /* start with riftd's local line only (a warm-pool server) */
	int port;
	pid_t pid; /* 0 when not running */
	uid_t uid; /* the branch's own OS identity ([instances] uid_base..); 0 = cfg->pg_user */
	long max_processes; /* the RLIMIT_NPROC its server got; what runs as uid gets it too */
	gid_t gid;
	char walroot[4096];   /* <state>/wal: pg_wal is kept there (wal_dir.h); "" = in the store */
	uint64_t wal_id;      /* the branch's store id: its WAL directory is b-<wal_id> */
	uint64_t wal_fork;    /* the frozen layer its head sits on: l-<wal_fork> seeds a new one */
	bool wal_in_store;    /* a size-limited branch: its WAL stays in the store, counted */
	uid_t wal_lo, wal_hi; /* the servers' uids: whose files in a WAL directory are handed on */
};

/*
 * Prepares the branch's data directory for a server of its own through a descriptor of its
 * mount root (stale postmaster.pid, standby/recovery signal files and inherited replication
 * slots removed; nothing followed: datadir.h), writes hbafile (rift's local trust line for its
 * 0700 socket directory, then the branch's pg_hba.conf), starts postgres with rift's settings
 * (-c hba_file=hbafile among them) and waits until it accepts connections or
 * cfg->start_timeout_s passes. On failure the server is stopped and *err says why, with the
 * log's last line and path.
 */
int rift_instance_start(const struct rift_config *cfg, const char *bindir,
			struct rift_instance *inst, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Rewrites the running server's hba file from the branch's own pg_hba.conf (after a start with
 * hba_closed) and has the postmaster reload it (SIGHUP): logins from then on follow it.
 */
int rift_instance_open_hba(struct rift_instance *inst, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Fast shutdown (SIGINT), then immediate (SIGQUIT) after the timeout, then SIGKILL; reaps. */
void rift_instance_stop(struct rift_instance *inst, int timeout_s);

/*
 * Immediate shutdown (SIGQUIT, then SIGKILL after 5 s); reaps. For a server whose data is about
 * to be thrown away (delete, reset, a warm server dropped): a fast shutdown's checkpoint would
 * write and sync every dirty buffer into a branch no one will read.
 */
void rift_instance_discard(struct rift_instance *inst);

/* True while the server process exists (reaps it when it has exited). */
bool rift_instance_alive(struct rift_instance *inst);

/* Runs one SQL command over the instance's socket as the Postgres superuser. */
int rift_instance_exec(const struct rift_instance *inst, const char *pg_user, const char *sql,
		       char *err, size_t errlen);

/*
 * Logs in to database dbname once as the Postgres superuser, so that the first client's login
 * finds the database's relcache init file built (a warm server's first query is the user's).
 */
int rift_instance_prewarm(const struct rift_instance *inst, const char *pg_user, const char *dbname,
			  char *err, size_t errlen);

/*
 * The SCRAM verifier of a role that may log in now (pg_authid.rolpassword), into out. 0;
 * -ENOENT when the role is missing, cannot log in, has expired or has no SCRAM verifier;
 * -ECONNREFUSED when the server cannot be reached.
 */
int rift_instance_role_secret(const struct rift_instance *inst, const char *pg_user,
			      const char *role, char *out, size_t outlen);

/*
 * A maintenance connection to database dbname of the running server, as pg_user over the 0700
 * socket directory, checked to reach the postmaster riftd forked (SO_PEERCRED); search_path
 * pg_catalog, statement_timeout timeout_ms, log_statement none. NULL with *why on failure. The
 * caller PQfinish()es it. (For riftd's own read-only reports such as rift diff.)
 */
struct pg_conn;
struct pg_conn *rift_instance_connect(const struct rift_instance *inst, const char *pg_user,
				      const char *dbname, int timeout_ms, char *why, size_t whylen);

/*
 * Runs argv as the server's identity, as rift_pg_spawn_ids does: its own uid under its
 * max_processes cap (a task of the uid without the cap could be made to fork past it), or
 * pg_user when branches share that one (uid_count = 0).
 */
int rift_instance_spawn(const struct rift_instance *inst, const char *pg_user, char *const argv[],
			char *const env[], int log_fd, pid_t *pid);

/* Client connections now open on the instance (riftd's own excluded), or -1 on error. With
 * *sessions: the sessions ever opened on it by clients, riftd's included (pg_stat_database, so
 * PostgreSQL 14 or later), or -1 when that is unknown. */
int rift_instance_clients(const struct rift_instance *inst, const char *pg_user, int64_t *sessions);

#endif
