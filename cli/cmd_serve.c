/* cmd_serve.c — `rift serve` and `rift mount`: run riftd or rift-fs (cli_exec_sibling). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"

static bool riftd_answers(const char *state)
{
	struct cli_opts local = { .state = state };
	struct cli_response r;
	int rc = cli_http(&local, "GET", "/v1/status", NULL, &r);

	free(r.body);
	return rc == 0 && r.status == 200;
}

int cmd_serve(const struct cli_opts *o, int argc, char **argv)
{
	char *const riftd_args[] = { "riftd", "--state", (char *)o->state, NULL };
	char logpath[4200];
	bool background = false;
	int i, fd;
	pid_t pid;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--background") == 0 || strcmp(argv[i], "-b") == 0) {
			background = true;
		} else if (strcmp(argv[i], "--stop") == 0) {
			return cli_serve_stop(o);
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			printf(
			    "usage: rift serve [--background | --stop]\n\n"
			    "Runs riftd on the store: the router on 6432 (Postgres clients), the\n"
			    "control API, and one Postgres server per started branch. In the\n"
			    "foreground it logs to this terminal and stops on Ctrl-C; with\n"
			    "--background it logs to <state>/log/riftd.log and returns once riftd\n"
			    "is ready. --stop stops the riftd serving the store (its branch "
			    "servers,\n"
			    "mounts and store) and returns once it is gone. rift runs the riftd\n"
			    "beside it, else the one on PATH. For production use\n"
			    "packaging/riftd.service (systemd).\n\n"
			    "examples:\n  rift serve\n  rift serve --background && rift create "
			    "x\n  rift serve --stop\n");
			return 0;
		} else {
			fprintf(stderr, "rift serve: unknown argument %s (try rift serve --help)\n",
				argv[i]);
			return EXIT_USAGE;
		}
	}
	if (riftd_answers(o->state)) {
		fprintf(stderr, "rift serve: riftd is already running for %s\n", o->state);
		return background ? 0 : 1;
	}
	if (!background)
		return cli_exec_sibling("rift serve", "riftd", riftd_args);
	snprintf(logpath, sizeof(logpath), "%s/log/riftd.log", o->state);
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		setsid();
		fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			dup2(fd, STDIN_FILENO);
		/* its error, if it cannot, goes to the log, which the parent shows */
		cli_exec_sibling("rift serve", "riftd", riftd_args);
		_exit(127);
	}
	for (i = 0; i < 600; i++) { /* up to 60 s: restarting running branches takes a while */
		struct timespec tick = { 0, 100 * 1000 * 1000 };
		int status;
		if (riftd_answers(o->state)) {
			if (!o->quiet)
				fprintf(stderr, "rift serve: riftd running (pid %d), log in %s\n",
					(int)pid, logpath);
			return 0;
		}
		if (waitpid(pid, &status, WNOHANG) == pid) {
			fprintf(stderr, "rift serve: riftd exited at once; its log %s says why:\n",
				logpath);
			execlp("tail", "tail", "-n", "5", logpath, (char *)NULL);
			return 1;
		}
		nanosleep(&tick, NULL);
	}
	fprintf(stderr, "rift serve: riftd did not become ready in 60 s (see %s)\n", logpath);
	return 1;
}

/*
 * dir as an absolute path with no empty, "." or ".." component, links left as they are: riftd
 * refuses a path with a link in it (one another user could swap), so resolving links here would
 * only hide them from that check. Without links, ".." taken away in the text is the real parent.
 */
static int absolute_path(const char *dir, char *out, size_t outlen)
{
	char full[PATH_MAX * 2], *save = NULL, *part;
	size_t n = 0, cut[PATH_MAX / 2];
	size_t depth = 0;

	if (dir[0] == '/')
		snprintf(full, sizeof(full), "%s", dir);
	else if (getcwd(full, PATH_MAX) != NULL)
		snprintf(full + strlen(full), sizeof(full) - strlen(full), "/%s", dir);
	else
		return -errno;
	out[0] = '\0';
	for (part = strtok_r(full, "/", &save); part != NULL; part = strtok_r(NULL, "/", &save)) {
		if (strcmp(part, ".") == 0)
			continue;
		if (strcmp(part, "..") == 0) {
			if (depth > 0)
				n = cut[--depth];
			out[n] = '\0';
			continue;
		}
		if (depth == sizeof(cut) / sizeof(cut[0]) || n + 1 + strlen(part) >= outlen)
			return -ENAMETOOLONG;
		cut[depth++] = n;
		n += (size_t)snprintf(out + n, outlen - n, "/%s", part);
	}
	if (n == 0)
		snprintf(out, outlen, "/");
	return 0;
}

/* riftd serves the store: it binds the running branch's view read-only at dir. */
static int mount_live(const struct cli_opts *o, const char *name, const char *dir)
{
	char real[PATH_MAX], path[256];
	json_t *req, *doc;
	char *body;
	int rc;

	/* riftd resolves nothing relative to its own cwd */
	rc = absolute_path(dir, real, sizeof(real));
	if (rc != 0) {
		fprintf(stderr, "rift mount: %s: %s\n", dir, strerror(-rc));
		return 1;
	}
	snprintf(path, sizeof(path), "/v1/branches/%.128s/mount", name);
	req = json_pack("{s:s}", "path", real);
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (body == NULL)
		return 1;
	rc = cli_call(o, "POST", path, body, &doc);
	free(body);
	if (rc != 0)
		return rc;
	if (o->json) {
		json_dumpf(doc, stdout, JSON_COMPACT);
		printf("\n");
	} else if (!o->quiet) {
		printf("branch %s (running, port %lld) mounted read-only at %s; `umount %s` ends "
		       "it\n",
		       name, (long long)json_integer_value(json_object_get(doc, "port")), real,
		       real);
	}
	json_decref(doc);
	return 0;
}

int cmd_mount(const struct cli_opts *o, int argc, char **argv)
{
	const char *args[8];
	int i, n = 0;
	bool ro = false;

	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			printf(
			    "usage: rift mount NAME DIR [--read-only]\n\n"
			    "Mounts branch NAME at DIR (an existing empty directory) to inspect "
			    "it or\n"
			    "run your own tools on its files; `umount DIR` ends it.\n"
			    "While riftd serves the store, riftd starts the branch if needed and\n"
			    "mounts its live files read-only (nosuid, nodev, noexec; only root "
			    "and\n"
			    "the branch's own uid can enter); riftd unmounts it when the branch\n"
			    "stops. With riftd stopped, rift runs rift-fs (beside rift, else on\n"
			    "PATH), which mounts the branch, writable unless --read-only.\n\n"
			    "examples:\n  rift mount feature-x /mnt/x\n");
			return 0;
		} else if (strcmp(argv[i], "--read-only") == 0) {
			ro = true;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "rift mount: unknown option %s (try rift mount --help)\n",
				argv[i]);
			return EXIT_USAGE;
		}
	if (argc - (ro ? 1 : 0) != 3) {
		fprintf(stderr, "rift mount: expected NAME and DIR (try rift mount --help)\n");
		return EXIT_USAGE;
	}
	if (riftd_answers(o->state)) {
		const char *name = NULL, *dir = NULL;
		for (i = 1; i < argc; i++)
			if (strcmp(argv[i], "--read-only") != 0) {
				if (name == NULL)
					name = argv[i];
				else
					dir = argv[i];
			}
		return mount_live(o, name, dir);
	}
	args[n++] = "rift-fs";
	args[n++] = "--state";
	args[n++] = o->state;
	if (ro)
		args[n++] = "--read-only";
	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], "--read-only") != 0)
			args[n++] = argv[i];
	args[n] = NULL;
	return cli_exec_sibling("rift mount", "rift-fs", (char *const *)args);
}
