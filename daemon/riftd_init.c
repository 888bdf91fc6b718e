/* riftd_init.c — `riftd init`: makes a store and its base for `rift init`, which runs it. */
#include <errno.h>
#include <jansson.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "riftd_init.h"
#include "rift/base_init.h"

/*
 * Everything here speaks to the person who typed `rift init`, on the terminal rift handed over:
 * plain lines prefixed "rift init:", as rift printed them when it made stores itself, not
 * riftd's log format. The store is riftd's, so is the code that makes it: the rift CLI links
 * none of it (docs/architecture.md).
 */

#define EXIT_USAGE     2
#define ARGS_MAX_BYTES 65536 /* what --args-fd may carry: init's options and their values */
#define ARGS_MAX_COUNT 64

static void init_usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: rift init [--state DIR] [--upstream URL [--logical]\n"
	    "                 [--upstream-password-file FILE] | --pgdata DIR] [--login-role ROLE]\n"
	    "\n"
	    "Creates a rift store and its base, then the branch \"main\":\n"
	    "  (no option)        a demo database (\"demo\": customers, products, orders) with a\n"
	    "                     generated password; needs nothing but this machine\n"
	    "  --upstream URL     copies a running server with pg_basebackup (needs a role with\n"
	    "                     REPLICATION and a pg_hba \"replication\" line for this host)\n"
	    "  --logical          with --upstream: pg_dump/pg_restore of the URL's database\n"
	    "                     instead, for managed services that forbid replication\n"
	    "  --upstream-password-file FILE\n"
	    "                     reads upstream's password from the first line of FILE (or\n"
	    "                     set PGPASSWORD, or use ~/.pgpass): a password typed in the\n"
	    "                     URL is visible to every local user until rift erases it\n"
	    "  --pgdata DIR       copies a stopped data directory\n"
	    "  --login-role ROLE  the role branch URLs (rift url) name; default: the bootstrap\n"
	    "                     superuser of a --pgdata or physical base\n"
	    "  --state DIR        where the store lives (default $RIFT_STATE or /var/lib/rift)\n"
	    "\n"
	    "rift init runs `riftd init` (found beside rift, else on PATH), which makes the\n"
	    "store: riftd owns it. riftd init takes the same options, and --json and -q.\n"
	    "\n"
	    "The base depends on nothing outside it: a pg_wal or tablespace that is a link to\n"
	    "elsewhere is copied into it; any other link leading out of the data directory is\n"
	    "refused. Tools run at init never get the password on their command line.\n"
	    "\n"
	    "examples:\n"
	    "  rift init\n"
	    "  rift init --upstream postgres://replicator@db.internal:5432/app \\\n"
	    "            --upstream-password-file /run/secrets/replicator\n"
	    "  PGPASSWORD=... rift init --upstream postgres://user@rds-host/app --logical\n");
}

/* pg_basebackup --progress says "123/4567 kB (2%), 0/1 tablespace": on a terminal that becomes a
 * bar with an ETA, elsewhere plain lines. */
static void show_progress(const char *line, void *arg)
{
	static struct timespec start;
	static bool started, bar_open;
	long long done, total;
	struct timespec now;

	(void)arg;
	if (sscanf(line, " %lld/%lld kB", &done, &total) == 2 && total > 0) {
		double pct = 100.0 * (double)done / (double)total, secs, eta;
		char bar[41];
		int i, fill = (int)(pct * 40 / 100);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (!started) {
			start = now;
			started = true;
		}
		secs = (double)(now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9;
		eta = done > 0 ? secs * (double)(total - done) / (double)done : 0;
		if (!isatty(STDERR_FILENO)) {
			fprintf(stderr, "rift init: copied %lld of %lld MiB (%.0f%%), ETA %.0f s\n",
				done >> 10, total >> 10, pct, eta);
			return;
		}
		for (i = 0; i < 40; i++)
			bar[i] = i < fill ? '#' : '.';
		bar[40] = '\0';
		fprintf(stderr, "\rrift init: [%s] %3.0f%% %lld/%lld MiB, ETA %.0f s ", bar, pct,
			done >> 10, total >> 10, eta);
		bar_open = true;
		return;
	}
	if (bar_open) {
		fputc('\n', stderr);
		bar_open = false;
	}
	fprintf(stderr, "rift init: %s\n", line);
}

/* The first line of path, for --upstream-password-file. */
static int read_password_file(const char *path, char *out, size_t len)
{
	FILE *f = fopen(path, "re");

	if (f == NULL) {
		fprintf(stderr, "rift init: cannot read the password file %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	if (fgets(out, (int)len, f) == NULL)
		out[0] = '\0';
	fclose(f);
	out[strcspn(out, "\r\n")] = '\0';
	if (out[0] == '\0') {
		fprintf(stderr,
			"rift init: the password file %s is empty (the password goes on its "
			"first line)\n",
			path);
		return -1;
	}
	return 0;
}

/*
 * The arguments `rift init` wrote to descriptor text ("3"), each ending in a NUL, into *buf
 * (the caller's, to erase and free: a URL in it may hold a password) and *len; the descriptor is
 * closed, so the tools init runs never inherit it. 0, or -1 after saying why.
 */
static int read_args_fd(const char *text, char **buf, size_t *len)
{
	char *data = NULL, *end;
	size_t used = 0;
	long fd;
	int rc = -1;

	errno = 0;
	fd = strtol(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || fd <= STDERR_FILENO || fd > INT_MAX) {
		fprintf(stderr,
			"rift init: --args-fd wants a descriptor number above 2, not \"%s\"\n",
			text);
		return -1;
	}
	data = malloc(ARGS_MAX_BYTES + 1);
	if (data == NULL) {
		fprintf(stderr, "rift init: out of memory reading the arguments\n");
		goto out;
	}
	for (;;) {
		ssize_t n = read((int)fd, data + used, ARGS_MAX_BYTES + 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr,
				"rift init: cannot read the arguments from descriptor %ld: %s (run "
				"rift init, which passes them)\n",
				fd, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		used += (size_t)n;
		if (used > ARGS_MAX_BYTES) {
			fprintf(stderr, "rift init: more than %d bytes of arguments\n",
				ARGS_MAX_BYTES);
			goto out;
		}
	}
	if (used > 0 && data[used - 1] != '\0') {
		fprintf(stderr,
			"rift init: the arguments on descriptor %ld do not end in a NUL "
			"byte\n",
			fd);
		goto out;
	}
	*buf = data;
	*len = used;
	rc = 0;
out:
	close((int)fd);
	if (rc != 0 && data != NULL) {
		explicit_bzero(data, used);
		free(data);
	}
	return rc;
}

/*
 * Into *out (the caller frees the array; its strings belong to argv and buf): argv without
 * "--args-fd N", with the arguments read from N appended; *buf and *buflen as read_args_fd says.
 * 0, or the exit status after saying why.
 */
static int gather_args(int argc, char **argv, char ***out, int *outc, char **buf, size_t *buflen)
{
	const char *fd_text = NULL;
	char **all = NULL;
	size_t i;
	int k, n = 0, extra = 0, skip = -1, rc = 1;

	*buf = NULL;
	*buflen = 0;
	for (k = 1; k < argc && strcmp(argv[k], "--") != 0; k++) {
		if (strncmp(argv[k], "--args-fd=", 10) == 0) {
			fd_text = argv[k] + 10;
			skip = k;
			break;
		}
		if (strcmp(argv[k], "--args-fd") == 0) {
			if (k + 1 >= argc) {
				fprintf(stderr, "rift init: --args-fd needs a descriptor number\n");
				return EXIT_USAGE;
			}
			fd_text = argv[k + 1];
			skip = k;
			break;
		}
	}
	if (fd_text != NULL && read_args_fd(fd_text, buf, buflen) != 0)
		return EXIT_USAGE;
	for (i = 0; i < *buflen; i++)
		extra += (*buf)[i] == '\0';
	if (extra > ARGS_MAX_COUNT) {
		fprintf(stderr, "rift init: more than %d arguments\n", ARGS_MAX_COUNT);
		rc = EXIT_USAGE;
		goto out;
	}
	all = calloc((size_t)argc + (size_t)extra + 1, sizeof(*all));
	if (all == NULL) {
		fprintf(stderr, "rift init: out of memory\n");
		goto out;
	}
	for (k = 0; k < argc; k++) {
		if (k == skip) {
			k += strcmp(argv[k], "--args-fd") == 0; /* and its value */
			continue;
		}
		all[n++] = argv[k];
	}
	for (i = 0; i < *buflen; i += strlen(*buf + i) + 1)
		all[n++] = *buf + i;
	all[n] = NULL;
	*out = all;
	*outc = n;
	rc = 0;
out:
	if (rc != 0 && *buf != NULL) {
		explicit_bzero(*buf, *buflen);
		free(*buf);
		*buf = NULL;
	}
	return rc;
}

int rift_init_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "upstream", required_argument, NULL, 'u' },
		{ "logical", no_argument, NULL, 'l' },
		{ "pgdata", required_argument, NULL, 'p' },
		{ "upstream-password-file", required_argument, NULL, 'P' },
		{ "login-role", required_argument, NULL, 'r' },
		{ "state", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct rift_init_opts opts = { .mode = RIFT_INIT_DEMO, .progress = show_progress };
	char err[2048] = "", password[512] = "", *url = NULL, *argbuf = NULL, **args = NULL;
	const char *password_file = NULL, *env_password = getenv("PGPASSWORD");
	const char *state = getenv("RIFT_STATE") ? getenv("RIFT_STATE") : "/var/lib/rift";
	bool logical = false, json = false, quiet = false;
	size_t arglen = 0;
	int c, nargs = 0, rc = 1;

	/* Children inherit the environment, where other processes of the same user could read it:
	 * take PGPASSWORD out; it reaches upstream's tools through a passfile. */
	if (env_password != NULL) {
		snprintf(password, sizeof(password), "%s", env_password);
		explicit_bzero((char *)env_password, strlen(env_password));
		unsetenv("PGPASSWORD");
	}
	rc = gather_args(argc, argv, &args, &nargs, &argbuf, &arglen);
	if (rc != 0)
		goto out;
	rc = 1;

	optind = 1;
	while ((c = getopt_long(nargs, args, "hq", longopts, NULL)) != -1) {
		switch (c) {
		case 'u':
			/* keep a copy, then erase the password from the arguments every local user
			 * can read in /proc/<pid>/cmdline (when riftd init was typed as such; rift
			 * init hands them over through --args-fd) */
			free(url);
			url = strdup(optarg);
			if (url == NULL)
				goto out;
			rift_conninfo_scrub(optarg);
			opts.upstream_url = url;
			break;
		case 'P':
			password_file = optarg;
			break;
		case 'r':
			if (optarg[0] == '\0' || strlen(optarg) >= 64 || strchr(optarg, '\n')) {
				fprintf(stderr,
					"rift init: --login-role wants a role name (under 64 "
					"bytes)\n");
				rc = EXIT_USAGE;
				goto out;
			}
			opts.login_role = optarg;
			break;
		case 'l':
			logical = true;
			break;
		case 'p':
			opts.pgdata = optarg;
			break;
		case 's':
			state = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			init_usage(stdout);
			rc = 0;
			goto out;
		default:
			fprintf(stderr, "rift init: try rift init --help\n");
			rc = EXIT_USAGE;
			goto out;
		}
	}
	if (optind != nargs || (opts.upstream_url && opts.pgdata) ||
	    ((logical || password_file) && !opts.upstream_url)) {
		fprintf(stderr, "rift init: use either --upstream URL [--logical] "
				"[--upstream-password-file FILE] or --pgdata DIR (try rift init "
				"--help)\n");
		rc = EXIT_USAGE;
		goto out;
	}
	if (password_file != NULL &&
	    read_password_file(password_file, password, sizeof(password)) != 0)
		goto out;
	if (password[0] != '\0')
		opts.upstream_password = password;
	if (opts.upstream_url != NULL)
		opts.mode = logical ? RIFT_INIT_LOGICAL : RIFT_INIT_PHYSICAL;
	else if (opts.pgdata != NULL)
		opts.mode = RIFT_INIT_PGDATA;
	if (geteuid() != 0) {
		fprintf(stderr, "rift init: run as root: rift mounts filesystems and runs Postgres "
				"as its own user (try sudo rift init)\n");
		goto out;
	}
	if (quiet)
		opts.progress = NULL;
	if (rift_init(state, &opts, err, sizeof(err)) != 0) {
		fprintf(stderr, "rift init: %s\n", err);
		goto out;
	}
	if (json) {
		json_t *o = json_pack("{s:s,s:s}", "state", state, "branch", "main");
		char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
		if (text != NULL)
			printf("%s\n", text);
		free(text);
		json_decref(o);
		if (text == NULL) {
			fprintf(stderr, "rift init: out of memory writing the JSON answer\n");
			goto out;
		}
	} else if (!quiet)
		printf("rift: store ready in %s; start it with `rift serve`, then `rift create "
		       "NAME`\n",
		       state);
	rc = 0;
out:
	explicit_bzero(password, sizeof(password));
	if (url != NULL) {
		explicit_bzero(url, strlen(url));
		free(url);
	}
	if (argbuf != NULL) {
		explicit_bzero(argbuf, arglen);
		free(argbuf);
	}
	free(args);
	return rc;
}
