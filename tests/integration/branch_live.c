/* branch_live.c — test helper: serves branch A, and on SIGUSR1 branches B off it live. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "rift/mount.h"
#include "rift/store.h"

/*
 * Usage: branch_live STATE A MNT_A B MNT_B READY_FILE
 * Mounts A and writes "mounted" to READY_FILE; on SIGUSR1 creates B from A while A keeps
 * serving writes, mounts B and writes "branched"; on SIGTERM unmounts both and exits 0.
 * One process owns the store, as riftd will.
 */

static int report(const char *file, const char *what)
{
	int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0 || write(fd, what, strlen(what)) < 0) {
		perror("branch_live: ready file");
		return -1;
	}
	return close(fd);
}

int main(int argc, char **argv)
{
	struct rift_mount_opts opts = { 0 };
	struct rift_mount *ma = NULL, *mb = NULL;
	char err[RIFT_ERRMSG_LEN] = "";
	struct rift_store *s = NULL;
	sigset_t set;
	int sig, rc = 1;

	if (argc != 7) {
		fprintf(stderr, "usage: branch_live STATE A MNT_A B MNT_B READY_FILE\n");
		return 2;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (rift_store_open(argv[1], false, &s, err, sizeof(err)) != 0 ||
	    rift_mount_start(s, argv[2], argv[3], &opts, &ma, err, sizeof(err)) != 0) {
		fprintf(stderr, "branch_live: %s\n", err);
		goto out;
	}
	if (report(argv[6], "mounted") != 0)
		goto out;
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			goto out;
		if (sig != SIGUSR1)
			break;
		if (mb != NULL)
			continue;
		rc = rift_store_branch_create(s, argv[4], argv[2], 0);
		if (rc != 0) {
			fprintf(stderr, "branch_live: create %s: %s\n", argv[4], strerror(-rc));
			rc = 1;
			goto out;
		}
		if (rift_mount_start(s, argv[4], argv[5], &opts, &mb, err, sizeof(err)) != 0) {
			fprintf(stderr, "branch_live: %s\n", err);
			rc = 1;
			goto out;
		}
		if (report(argv[6], "branched") != 0)
			goto out;
	}
	rc = 0;
out:
	rift_mount_stop(mb);
	rift_mount_stop(ma);
	rift_store_close(s);
	return rc;
}
