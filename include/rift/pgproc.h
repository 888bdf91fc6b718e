/* pgproc.h — running Postgres programs as the Postgres OS user (never root), and finding them. */
#ifndef RIFT_PGPROC_H
#define RIFT_PGPROC_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Finds the binaries for the cluster in pgdata: pg_bin if set, else
 * /usr/lib/postgresql/<major from PG_VERSION>/bin. Writes the directory to out. Fails with *err
 * saying which version is needed and which package provides it.
 */
int rift_pg_bindir(const char *pg_bin, const char *pgdata, char *out, size_t outlen, char *err,
		   size_t errlen);

/* Looks up user; fills uid/gid. -ENOENT with *err when there is no such user, -EPERM for root. */
int rift_pg_user(const char *user, uid_t *uid, gid_t *gid, char *err, size_t errlen);

/*
 * Starts argv[0] (an absolute path) as user in a new process group, stdin from /dev/null,
 * stdout and stderr to log_fd (or /dev/null when -1), extra environment entries env (NULL-ended,
 * may be NULL). The child holds no other descriptor of riftd's (all from 3 up are closed before
 * exec) and starts with default signal dispositions and an empty signal mask. *pid receives the
 * child. The caller reaps it.
 */
int rift_pg_spawn(const char *user, char *const argv[], char *const env[], int log_fd, pid_t *pid);

/*
 * As rift_pg_spawn, as uid/gid (which need no /etc/passwd entry; never 0): no supplementary
 * groups, no_new_privs (setuid programs gain nothing), and an environment of PATH and HOME=/
 * plus env, nothing of riftd's. max_processes > 0 caps the tasks uid may have at once
 * (RLIMIT_NPROC, soft and hard, inherited by all it starts); 0 leaves riftd's limit. -EPERM
 * for root.
 */
int rift_pg_spawn_ids(uid_t uid, gid_t gid, long max_processes, char *const argv[],
		      char *const env[], int log_fd, pid_t *pid);

/*
 * Runs argv as user and waits. The last output (up to outlen-1 bytes, stdout and stderr
 * together) lands in out, so errors can be shown to a person. Returns the exit status (0..255),
 * or a negative errno when it could not run or was killed.
 */
int rift_pg_run(const char *user, char *const argv[], char *const env[], char *out, size_t outlen);

/* As rift_pg_run, also calling on_line (if not NULL) for every output line as it arrives
 * (lines end at \n or \r, so progress meters come through). */
int rift_pg_run_lines(const char *user, char *const argv[], char *const env[], char *out,
		      size_t outlen, void (*on_line)(const char *line, void *arg), void *arg);

#endif
