/* pgproc.c — spawns Postgres programs as the Postgres OS user, with bounded captured output. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
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

int rift_pg_user(const char *user, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) != 0 || res == NULL) {
		snprintf(err, errlen,
			 "there is no OS user \"%s\" to run Postgres (install postgresql, or set "
			 "[instances] pg_user in rift.conf)",
			 user);
		return -ENOENT;
	}
	if (pw.pw_uid == 0) {
		snprintf(err, errlen, "Postgres must not run as root (user \"%s\")", user);
		return -EPERM;
	}
	*uid = pw.pw_uid;
	*gid = pw.pw_gid;
	return 0;
}

/* In the child: become user, or exit 127. */
static void become(const char *user)
{
	struct passwd *pw = getpwnam(user);

	if (pw == NULL || pw->pw_uid == 0 || initgroups(user, pw->pw_gid) != 0 ||
	    setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
		_exit(127);
	if (setenv("HOME", pw->pw_dir, 1) != 0 || setenv("USER", user, 1) != 0)
		_exit(127);
}

/* In the child: become uid/gid with no supplementary groups and an environment of its own (not
 * riftd's, which a branch's superuser could read from /proc), or exit 127. */
static void become_ids(uid_t uid, gid_t gid)
{
	/* no_new_privs: a setuid program run from the server (COPY ... TO PROGRAM 'su ...') gains
	 * nothing */
	if (uid == 0 || gid == 0 || setgroups(0, NULL) != 0 || setgid(gid) != 0 ||
	    setuid(uid) != 0 || getuid() != uid || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		_exit(127);
	if (clearenv() != 0 || setenv("PATH", "/usr/local/bin:/usr/bin:/bin", 1) != 0 ||
	    setenv("HOME", "/", 1) != 0)
		_exit(127);
}

static void apply_env(char *const env[])
{
	size_t i;

	for (i = 0; env != NULL && env[i] != NULL; i++)
		if (putenv(env[i]) != 0)
			_exit(127);
}

/* In the child: closes every descriptor from 3 up. close_range where the kernel has it (5.9),
 * else each one /proc/self/fd lists (the directory's own descriptor is closed last). */
static void close_from_3(void)
{
	struct dirent *de;
	DIR *d;

#ifdef SYS_close_range
	if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0)
		return;
#endif
	d = opendir("/proc/self/fd");
	if (d == NULL)
		_exit(127); /* cannot prove nothing leaks: do not run the program */
	while ((de = readdir(d)) != NULL) {
		long fd = strtol(de->d_name, NULL, 10);
		if (de->d_name[0] >= '0' && de->d_name[0] <= '9' && fd >= 3 && fd != dirfd(d))
			close((int)fd);
	}
	closedir(d);
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
static int spawn(const char *user, uid_t uid, gid_t gid, char *const argv[], char *const env[],
		 int log_fd, pid_t *pid)
{
	pid_t p = fork();

	if (p < 0)
		return -errno;
	if (p == 0) {
		/* riftd's descriptors (sockets of other jobs' sessions, /dev/fuse, the store's
		 * files) are close-on-exec, but another thread may have opened one between
		 * socket() and fcntl() (libpq does so) or inherited one from riftd's parent: the
		 * program gets stdin, stdout and stderr and nothing else. */
		int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
		reset_signals();
		setpgid(0, 0);
		if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0 ||
		    dup2(log_fd >= 0 ? log_fd : devnull, STDOUT_FILENO) < 0 ||
		    dup2(log_fd >= 0 ? log_fd : devnull, STDERR_FILENO) < 0)
			_exit(127);
		close_from_3();
		if (user != NULL)
			become(user);
		else
			become_ids(uid, gid);
		apply_env(env);
		if (chdir("/tmp") != 0)
			_exit(127);
		execv(argv[0], argv);
		_exit(127);
	}
	*pid = p;
	return 0;
}

int rift_pg_spawn(const char *user, char *const argv[], char *const env[], int log_fd, pid_t *pid)
{
	return spawn(user, 0, 0, argv, env, log_fd, pid);
}

int rift_pg_spawn_ids(uid_t uid, gid_t gid, char *const argv[], char *const env[], int log_fd,
		      pid_t *pid)
{
	if (uid == 0 || gid == 0)
		return -EPERM;
	return spawn(NULL, uid, gid, argv, env, log_fd, pid);
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
