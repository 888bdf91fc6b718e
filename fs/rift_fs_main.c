/* rift_fs_main.c — rift-fs: mounts one branch of a store at a directory until told to stop. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rift/mount.h"
#include "rift/store.h"

#define EXIT_USAGE 2

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: rift-fs [options] BRANCH MOUNTPOINT\n"
	    "\n"
	    "Mounts branch BRANCH of a rift store at MOUNTPOINT (an existing, empty directory)\n"
	    "as a writable copy-on-write view of its data directory. Runs in the background\n"
	    "unless -f is given; stops and unmounts on SIGINT or SIGTERM, or when someone runs\n"
	    "`umount MOUNTPOINT`. Needs root and /dev/fuse.\n"
	    "\n"
	    "options:\n"
	    "  --state DIR     the store's state directory (default $RIFT_STATE, else\n"
	    "                  /var/lib/rift)\n"
	    "  -f, --foreground  stay in the foreground (errors and the exit go to this terminal)\n"
	    "  --read-only     refuse every change (EROFS)\n"
	    "  --threads N     FUSE worker threads (default 4)\n"
	    "  -d, --debug     print every FUSE request (implies -f)\n"
	    "  -h, --help      this text\n"
	    "\n"
	    "examples:\n"
	    "  rift-fs --state /var/lib/rift feature-x /mnt/feature-x\n"
	    "  rift-fs -f --read-only main /tmp/look   # Ctrl-C unmounts\n");
}

struct args {
	const char *state, *branch, *mountpoint;
	struct rift_mount_opts opts;
	bool foreground;
};

static int parse(int argc, char **argv, struct args *a)
{
	static const struct option longopts[] = {
		{ "state", required_argument, NULL, 's' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "read-only", no_argument, NULL, 'r' },
		{ "threads", required_argument, NULL, 't' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(a, 0, sizeof(*a));
	a->state = getenv("RIFT_STATE") ? getenv("RIFT_STATE") : "/var/lib/rift";
	while ((c = getopt_long(argc, argv, "fdh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			a->state = optarg;
			break;
		case 'f':
			a->foreground = true;
			break;
		case 'r':
			a->opts.read_only = true;
			break;
		case 't': {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (*end != '\0' || n < 1 || n > 64) {
				fprintf(stderr, "rift-fs: --threads wants a number from 1 to 64\n");
				return EXIT_USAGE;
			}
			a->opts.max_threads = (unsigned)n;
			break;
		}
		case 'd':
			a->opts.debug = true;
			a->foreground = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			fprintf(stderr, "rift-fs: try rift-fs --help\n");
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "rift-fs: expected BRANCH and MOUNTPOINT (try rift-fs --help)\n");
		return EXIT_USAGE;
	}
	a->branch = argv[optind];
	a->mountpoint = argv[optind + 1];
	return 0;
}

/* Mounts, then reports "ok" or the error on report_fd (-1: stderr only), then serves until a
 * signal or an external umount. */
static int serve(const struct args *a, int report_fd)
{
	char err[RIFT_ERRMSG_LEN] = "";
	struct rift_store *store = NULL;
	struct rift_mount *m = NULL;
	sigset_t stop;
	int rc, status = 1;

	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGHUP);
	/* Blocked before any thread starts, so only sigtimedwait below receives them. */
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	rc = rift_store_open(a->state, false, &store, err, sizeof(err));
	if (rc == 0)
		rc = rift_mount_start(store, a->branch, a->mountpoint, &a->opts, &m, err,
				      sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "rift-fs: %s\n", err[0] ? err : strerror(-rc));
		if (report_fd >= 0 && write(report_fd, err, strlen(err)) < 0)
			status = 1;
		goto out;
	}
	if (report_fd >= 0) {
		if (write(report_fd, "ok", 2) < 0)
			goto out;
		close(report_fd);
		report_fd = -1;
	}
	for (;;) {
		struct timespec tick = { 0, 200 * 1000 * 1000 };
		int sig = sigtimedwait(&stop, NULL, &tick);
		if (sig > 0 || rift_mount_ended(m))
			break;
	}
	status = 0;
out:
	rift_mount_stop(m);
	rift_store_close(store);
	if (report_fd >= 0)
		close(report_fd);
	return status;
}

int main(int argc, char **argv)
{
	struct args a;
	int pipefd[2], rc;
	char msg[RIFT_ERRMSG_LEN + 1];
	ssize_t n;
	pid_t pid;

	rc = parse(argc, argv, &a);
	if (rc != 0)
		return rc;
	if (a.foreground)
		return serve(&a, -1);
	/* Background: the child mounts and tells the parent how it went, so the exit status and
	 * the error message still reach whoever ran rift-fs. */
	if (pipe2(pipefd, O_CLOEXEC) != 0) {
		perror("rift-fs: pipe");
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		perror("rift-fs: fork");
		return 1;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
		close(pipefd[0]);
		setsid();
		if (devnull >= 0) {
			dup2(devnull, STDIN_FILENO);
			dup2(devnull, STDOUT_FILENO);
		}
		_exit(serve(&a, pipefd[1]));
	}
	close(pipefd[1]);
	n = read(pipefd[0], msg, sizeof(msg) - 1);
	close(pipefd[0]);
	if (n == 2 && memcmp(msg, "ok", 2) == 0) {
		printf(
		    "rift-fs: branch %s mounted at %s (pid %d; stop with kill %d or umount %s)\n",
		    a.branch, a.mountpoint, (int)pid, (int)pid, a.mountpoint);
		return 0;
	}
	waitpid(pid, NULL, 0); /* the child already printed the reason on stderr */
	return 1;
}
