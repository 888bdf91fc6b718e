/* cmd_stop.c — `rift serve --stop`: stops the riftd serving a store and waits until it is gone. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define STOP_WAIT_S 300 /* riftd stops every server (each up to stop_timeout) and syncs */

/* The pid of the process listening on <state>/run/riftd.sock (SO_PEERCRED), or -errno. The
 * socket is root's and 0600: only riftd can be listening on it. */
static int riftd_pid(const char *state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ucred cred = { 0 };
	socklen_t len = sizeof(cred);
	int fd, rc;

	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/run/riftd.sock", state) >=
	    sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
		rc = -errno;
	else
		rc = cred.pid > 0 ? (int)cred.pid : -ESRCH;
	close(fd);
	return rc;
}

/* Mounts below <state>/mnt/ still in the mount table: what a clean stop leaves none of. */
static int leftover_mounts(const char *state)
{
	char prefix[4200], line[8192], *f;
	FILE *mi = fopen("/proc/self/mountinfo", "re");
	int n = 0, i;

	if (mi == NULL)
		return 0;
	snprintf(prefix, sizeof(prefix), "%s/mnt/", state);
	while (fgets(line, sizeof(line), mi) != NULL) {
		/* field 5 is the mount point */
		for (f = line, i = 0; f != NULL && i < 4; i++) {
			f = strchr(f, ' ');
			if (f != NULL)
				f++;
		}
		if (f != NULL && strncmp(f, prefix, strlen(prefix)) == 0)
			n++;
	}
	fclose(mi);
	return n;
}

int cli_serve_stop(const struct cli_opts *o)
{
	struct timespec start, now;
	int pid, pidfd, left, rc = 1;
	char comm[64] = "", path[64];
	FILE *f;

	pid = riftd_pid(o->state);
	if (pid == -ENOENT || pid == -ECONNREFUSED) {
		if (!o->quiet)
			fprintf(stderr, "rift serve --stop: riftd is not running for %s\n",
				o->state);
		return 0;
	}
	if (pid == -EACCES) {
		fprintf(stderr,
			"rift serve --stop: no permission to reach %s/run/riftd.sock "
			"(run as root)\n",
			o->state);
		return 1;
	}
	if (pid < 0) {
		fprintf(stderr, "rift serve --stop: cannot reach riftd for %s: %s\n", o->state,
			strerror(-pid));
		return 1;
	}
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	f = fopen(path, "re");
	if (f != NULL) {
		if (fgets(comm, sizeof(comm), f) == NULL)
			comm[0] = '\0';
		fclose(f);
	}
	comm[strcspn(comm, "\n")] = '\0';
	if (strcmp(comm, "riftd") != 0) {
		fprintf(stderr,
			"rift serve --stop: the process on %s/run/riftd.sock is \"%s\" (pid %d), "
			"not riftd; not stopping it\n",
			o->state, comm, pid);
		return 1;
	}
	/* a pidfd names this process, never a later one that reuses its pid */
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0 || syscall(SYS_pidfd_send_signal, pidfd, SIGTERM, NULL, 0) != 0) {
		fprintf(stderr, "rift serve --stop: cannot signal riftd (pid %d): %s\n", pid,
			strerror(errno));
		goto out;
	}
	if (!o->quiet)
		fprintf(stderr,
			"rift serve --stop: stopping riftd (pid %d): branch servers, mounts, "
			"store...\n",
			pid);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		int r = poll(&p, 1, 5000);
		if (r > 0)
			break;
		if (r < 0 && errno != EINTR) {
			fprintf(stderr, "rift serve --stop: cannot wait for riftd: %s\n",
				strerror(errno));
			goto out;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= STOP_WAIT_S) {
			fprintf(stderr,
				"rift serve --stop: riftd (pid %d) is still stopping after %d s; "
				"its log (%s/log/riftd.log or journalctl -u riftd) says what it "
				"waits for\n",
				pid, STOP_WAIT_S, o->state);
			goto out;
		}
		if (!o->quiet)
			fprintf(stderr, "rift serve --stop: still stopping (%lld s)...\n",
				(long long)(now.tv_sec - start.tv_sec));
	}
	left = leftover_mounts(o->state);
	if (left > 0) {
		fprintf(stderr,
			"rift serve --stop: riftd exited but %d mount(s) below %s/mnt remain; "
			"the next `rift serve` removes them\n",
			left, o->state);
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (o->json)
		printf("{\"stopped\":true,\"pid\":%d}\n", pid);
	else if (!o->quiet)
		printf("riftd stopped (servers, mounts and store closed in %lld s)\n",
		       (long long)(now.tv_sec - start.tv_sec));
	rc = 0;
out:
	if (pidfd >= 0)
		close(pidfd);
	return rc;
}
