/* cmd_init.c — `rift init`: runs `riftd init`, which makes the store; rift has no store code. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli.h"

/*
 * A new memory file holding args, each with its NUL, read from the start: the descriptor stays
 * open across exec (no close-on-exec) for riftd to read, and riftd closes it before running
 * any tool. Returns it, or -1 after saying why.
 */
static int args_file(int argc, char **argv)
{
	int fd = memfd_create("rift-init-args", 0), i, rc = -1;

	if (fd < 0) {
		fprintf(stderr, "rift init: cannot make a memory file for riftd's arguments: %s\n",
			strerror(errno));
		return -1;
	}
	for (i = 0; i < argc; i++) {
		const char *p = argv[i];
		size_t left = strlen(p) + 1;
		while (left > 0) {
			ssize_t n = write(fd, p, left);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				goto out;
			p += n;
			left -= (size_t)n;
		}
	}
	if (lseek(fd, 0, SEEK_SET) != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0) {
		fprintf(stderr, "rift init: cannot write riftd's arguments: %s\n", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int cmd_init(const struct cli_opts *o, int argc, char **argv)
{
	char fd_text[16], *args[10];
	int fd, n = 0;

	/*
	 * riftd owns the store, so riftd makes it; this process becomes `riftd init`, whose
	 * progress, messages and exit status are rift init's. init's own arguments go over a
	 * descriptor, none on riftd's command line: --upstream's URL may hold a password, and
	 * every local user can read a process's arguments (/proc/<pid>/cmdline). Telling which
	 * arguments hold one would mean parsing them here as riftd does; riftd parses them once.
	 */
	fd = args_file(argc - 1, argv + 1);
	if (fd < 0)
		return 1;
	snprintf(fd_text, sizeof(fd_text), "%d", fd);
	args[n++] = "riftd";
	args[n++] = "init";
	args[n++] = "--state";
	args[n++] = (char *)o->state;
	if (o->json)
		args[n++] = "--json";
	if (o->quiet)
		args[n++] = "--quiet";
	args[n++] = "--args-fd";
	args[n++] = fd_text;
	args[n] = NULL;
	cli_exec_sibling("rift init", "riftd", args);
	close(fd);
	return 1;
}
