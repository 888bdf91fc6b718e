/* pgproc.c — spawns Postgres programs as the Postgres OS user, with bounded captured output. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rift/pgproc.h"

extern char **environ;

int rift_pg_bindir(const char *pg_bin, const char *pgdata, char *out, size_t outlen, char *err,
		   size_t errlen)
{
	char path[4096], version[16] = "";
	FILE *f;
	int major;

	if (pg_bin != NULL && pg_bin[0] != '\0') {
		snprintf(out, outlen, "%s", pg_bin);
	} else {
		snprintf(path, sizeof(path), "%s/PG_VERSION", pgdata);
		f = fopen(path, "re");
		if (f == NULL || fgets(version, sizeof(version), f) == NULL) {
			snprintf(err, errlen, "%s is not a Postgres data directory (no PG_VERSION)",
				 pgdata);
			if (f != NULL)
				fclose(f);
			return -ENOENT;
		}
		fclose(f);
		version[strcspn(version, "\r\n")] = '\0';
		major = (int)strtol(version, NULL, 10);
		if (major <= 0) {
			snprintf(err, errlen, "%s/PG_VERSION says \"%s\", not a Postgres version",
				 pgdata, version);
			return -EINVAL;
		}
		snprintf(out, outlen, "/usr/lib/postgresql/%d/bin", major);
	}
	snprintf(path, sizeof(path), "%s/postgres", out);
	if (access(path, X_OK) != 0) {
		snprintf(err, errlen,
			 "Postgres binaries not found at %s (the data needs Postgres %s): install "
			 "postgresql-%s, or set [instances] pg_bin in rift.conf",
			 out, version[0] ? version : "?", version[0] ? version : "<version>");
		return -ENOENT;
	}
	return 0;
}

/* The Postgres OS user's entry, into pw and buf: -ENOENT if there is none, -EPERM for root. */
static int pg_passwd(const char *user, struct passwd *pw, char *buf, size_t buflen)
{
	struct passwd *res = NULL;

	if (getpwnam_r(user, pw, buf, buflen, &res) != 0 || res == NULL)
		return -ENOENT;
	return pw->pw_uid == 0 ? -EPERM : 0;
}

int rift_pg_user(const char *user, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
	struct passwd pw;
	char buf[4096];
	int rc = pg_passwd(user, &pw, buf, sizeof(buf));

	if (rc == -ENOENT) {
		snprintf(err, errlen,
			 "there is no OS user \"%s\" to run Postgres (install postgresql, or set "
			 "[instances] pg_user in rift.conf)",
			 user);
		return rc;
	}
	if (rc != 0) {
		snprintf(err, errlen, "Postgres must not run as root (user \"%s\")", user);
		return rc;
	}
	*uid = pw.pw_uid;
	*gid = pw.pw_gid;
	return 0;
}

/*
 * Between fork() and exec() the child of a threaded riftd may call only async-signal-safe
 * functions: another thread may have held a lock (malloc's, the environment's, NSS's) at the
 * fork, and the child's copy of it is never released. Under ASan a child calling setenv()
 * after fork hung on the allocator's lock before its exec (a pg_dump of rift diff, and the
 * server start that never logged a line in an earlier CI run). So everything is prepared
 * here, in the parent: the user's ids and groups, the whole environment; the child only
 * makes system calls.
 */
#define SPAWN_ENV_MAX 512 /* environment entries a spawned program gets */
#define SPAWN_GROUPS  256 /* supplementary groups of the Postgres user */

struct spawn_plan {
	const char *user; /* NULL: uid/gid with no groups and a clean environment */
	uid_t uid;
	gid_t gid;
	gid_t groups[SPAWN_GROUPS];
	int ngroups;
	char home[4200], user_var[300];
	char *envp[SPAWN_ENV_MAX + 1];
	size_t nenv;
	rlim_t max_processes; /* RLIMIT_NPROC, soft and hard; 0 = riftd's own */
};

/* Puts "KEY=value" entry e into the plan's environment, replacing one with the same key. */
static int env_put(struct spawn_plan *sp, char *e)
{
	size_t k = strcspn(e, "="), i;

	for (i = 0; i < sp->nenv; i++) {
		if (strncmp(sp->envp[i], e, k) == 0 && sp->envp[i][k] == '=') {
			sp->envp[i] = e;
			return 0;
		}
	}
	if (sp->nenv >= SPAWN_ENV_MAX)
		return -E2BIG;
	sp->envp[sp->nenv++] = e;
	sp->envp[sp->nenv] = NULL;
	return 0;
}

/*
 * Who the child becomes and what environment it gets. For a user: its ids and groups, riftd's
 * environment with HOME and USER set; for uid/gid: no groups and an environment of its own
 * (not riftd's, which a branch's superuser could read from /proc). Then env's entries on top.
 */
static int plan_spawn(struct spawn_plan *sp, const char *user, uid_t uid, gid_t gid,
		      char *const env[])
{
	static char path_var[] = "PATH=/usr/local/bin:/usr/bin:/bin", home_root[] = "HOME=/";
	size_t i;
	int rc = 0;

	sp->user = user;
	sp->nenv = 0;
	sp->envp[0] = NULL;
	if (user != NULL) {
		struct passwd pw;
		char buf[4096];
		if ((rc = pg_passwd(user, &pw, buf, sizeof(buf))) != 0)
			return rc;
		sp->uid = pw.pw_uid;
		sp->gid = pw.pw_gid;
		sp->ngroups = SPAWN_GROUPS;
		if (getgrouplist(user, pw.pw_gid, sp->groups, &sp->ngroups) < 0)
			return -E2BIG;
		snprintf(sp->home, sizeof(sp->home), "HOME=%s", pw.pw_dir);
		snprintf(sp->user_var, sizeof(sp->user_var), "USER=%s", user);
		for (i = 0; rc == 0 && environ != NULL && environ[i] != NULL; i++)
			rc = env_put(sp, environ[i]);
		if (rc == 0)
			rc = env_put(sp, sp->home);
		if (rc == 0)
			rc = env_put(sp, sp->user_var);
	} else {
		if (uid == 0 || gid == 0)
			return -EPERM;
		sp->uid = uid;
		sp->gid = gid;
		sp->ngroups = 0;
		rc = env_put(sp, path_var);
		if (rc == 0)
			rc = env_put(sp, home_root);
	}
	for (i = 0; rc == 0 && env != NULL && env[i] != NULL; i++)
		rc = env_put(sp, env[i]);
	return rc;
}

/* In the child: says why on stderr (the server's log, for a server) and exits 127. */
static void child_fail(const char *why)
{
	ssize_t n = write(STDERR_FILENO, why, strlen(why));

	(void)n;
	_exit(127);
}

/* In the child: become who the plan says, or exit 127. For uid/gid, no_new_privs: a setuid
 * program run from the server (COPY ... TO PROGRAM 'su ...') gains nothing. */
static void become(const struct spawn_plan *sp)
{
	/* set while still root, hard limit too: the program cannot raise it. The kernel counts
	 * every task of the real uid, so it bounds a branch only where the uid is the branch's */
	if (sp->max_processes > 0) {
		struct rlimit rl = { .rlim_cur = sp->max_processes, .rlim_max = sp->max_processes };
		if (setrlimit(RLIMIT_NPROC, &rl) != 0)
			child_fail("riftd: cannot set the process limit ([instances] "
				   "max_processes)\n");
	}
	if (setgroups((size_t)sp->ngroups, sp->ngroups > 0 ? sp->groups : NULL) != 0 ||
	    setgid(sp->gid) != 0 || setuid(sp->uid) != 0 || getuid() != sp->uid)
		_exit(127);
	if (sp->user == NULL && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		_exit(127);
}

/* In the child: closes every descriptor from 3 up. close_range where the kernel has it (5.9),
 * else each one /proc/self/fd lists, read with getdents64 into a buffer on the stack. */
static void close_from_3(void)
{
	char buf[4096];
	long n;
	int d;

#ifdef SYS_close_range
	if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0)
		return;
#endif
	d = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d < 0)
		_exit(127); /* cannot prove nothing leaks: do not run the program */
	while ((n = syscall(SYS_getdents64, d, buf, sizeof(buf))) > 0) {
		long off = 0;
		while (off < n) {
			/* struct linux_dirent64: ino (8), off (8), reclen (2), type (1), name */
			unsigned short reclen;
			const char *name = buf + off + 19;
			long fd = 0;
			memcpy(&reclen, buf + off + 16, sizeof(reclen));
			if (reclen == 0)
				_exit(127);
			for (; *name >= '0' && *name <= '9' && fd < 1L << 30; name++)
				fd = fd * 10 + (*name - '0');
			if (*name == '\0' && name != buf + off + 19 && fd >= 3 && fd != d)
				close((int)fd);
			off += reclen;
		}
	}
	close(d);
}

/* In the child: default dispositions for every signal (an ignored one would stay ignored across
 * exec) and none blocked. */
static void reset_signals(void)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t none;
	int sig;

	sigemptyset(&dfl.sa_mask);
	for (sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &dfl, NULL); /* EINVAL for the few it cannot set */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* user, or (user NULL) uid/gid: who the child becomes. */
static int spawn(const char *user, uid_t uid, gid_t gid, rlim_t max_processes, char *const argv[],
		 char *const env[], int log_fd, pid_t *pid)
{
	struct spawn_plan *sp = malloc(sizeof(*sp));
	pid_t p;
	int rc;

	if (sp == NULL)
		return -ENOMEM;
	rc = plan_spawn(sp, user, uid, gid, env);
	if (rc != 0) {
		free(sp);
		return rc;
	}
	sp->max_processes = max_processes;
	p = fork();
	if (p < 0) {
		rc = -errno;
		free(sp);
		return rc;
	}
	if (p == 0) {
		/* riftd's descriptors (sockets of other jobs' sessions, /dev/fuse, the store's
		 * files) are close-on-exec, but another thread may have opened one between
		 * socket() and fcntl() (libpq does so) or inherited one from riftd's parent: the
		 * program gets stdin, stdout and stderr and nothing else. Only system calls from
		 * here on (see struct spawn_plan). */
		int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
		reset_signals();
		setpgid(0, 0);
		if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0 ||
		    dup2(log_fd >= 0 ? log_fd : devnull, STDOUT_FILENO) < 0 ||
		    dup2(log_fd >= 0 ? log_fd : devnull, STDERR_FILENO) < 0)
			_exit(127);
		close_from_3();
		become(sp);
		if (chdir("/tmp") != 0)
			_exit(127);
		execve(argv[0], argv, sp->envp);
		/* the kernel refuses the exec when the uid already has its limit of tasks */
		child_fail(errno == EAGAIN ? "riftd: cannot run the program: its uid has "
					     "[instances] max_processes tasks already\n"
					   : "riftd: cannot run the program (execve failed)\n");
	}
	free(sp);
	*pid = p;
	return 0;
}

int rift_pg_spawn(const char *user, char *const argv[], char *const env[], int log_fd, pid_t *pid)
{
	return spawn(user, 0, 0, 0, argv, env, log_fd, pid);
}

int rift_pg_spawn_ids(uid_t uid, gid_t gid, long max_processes, char *const argv[],
		      char *const env[], int log_fd, pid_t *pid)
{
	if (uid == 0 || gid == 0 || max_processes < 0)
		return -EPERM;
	return spawn(NULL, uid, gid, (rlim_t)max_processes, argv, env, log_fd, pid);
}

int rift_pg_run(const char *user, char *const argv[], char *const env[], char *out, size_t outlen)
{
	return rift_pg_run_lines(user, argv, env, out, outlen, NULL, NULL);
}

/* Feeds complete lines of chunk to on_line, keeping a partial line in line/llen. */
static void split_lines(const char *chunk, size_t n, char *line, size_t *llen, size_t cap,
			void (*on_line)(const char *, void *), void *arg)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (chunk[i] == '\n' || chunk[i] == '\r') {
			line[*llen] = '\0';
			if (*llen > 0)
				on_line(line, arg);
			*llen = 0;
		} else if (*llen < cap - 1) {
			line[(*llen)++] = chunk[i];
		}
	}
}

int rift_pg_run_lines(const char *user, char *const argv[], char *const env[], char *out,
		      size_t outlen, void (*on_line)(const char *line, void *arg), void *arg)
{
	char line[1024];
	size_t llen = 0;
	int fds[2], status, rc;
	size_t used = 0;
	char chunk[1024];
	ssize_t n;
	pid_t pid = 0;

	if (outlen > 0)
		out[0] = '\0';
	if (pipe2(fds, O_CLOEXEC) != 0)
		return -errno;
	rc = rift_pg_spawn(user, argv, env, fds[1], &pid);
	close(fds[1]);
	if (rc != 0) {
		close(fds[0]);
		return rc;
	}
	/* Keep the tail: the last lines of a failing tool say why it failed. */
	while ((n = read(fds[0], chunk, sizeof(chunk))) > 0 || (n < 0 && errno == EINTR)) {
		size_t take = n > 0 ? (size_t)n : 0;
		if (on_line != NULL)
			split_lines(chunk, take, line, &llen, sizeof(line), on_line, arg);
		if (outlen < 2)
			continue;
		if (take > outlen - 1) {
			memcpy(out, chunk + take - (outlen - 1), outlen - 1);
			used = outlen - 1;
		} else {
			if (used + take > outlen - 1) {
				size_t drop = used + take - (outlen - 1);
				memmove(out, out + drop, used - drop);
				used -= drop;
			}
			memcpy(out + used, chunk, take);
			used += take;
		}
		out[used] = '\0';
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return -EINTR;
}
