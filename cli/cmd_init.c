/* cmd_init.c — `rift init`: creates a store and its base from a demo, an upstream or a dir. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "rift/base_init.h"
#include "rift/store.h"

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

int cmd_init(const struct cli_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "upstream", required_argument, NULL, 'u' },
		{ "logical", no_argument, NULL, 'l' },
		{ "pgdata", required_argument, NULL, 'p' },
		{ "upstream-password-file", required_argument, NULL, 'P' },
		{ "login-role", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct rift_init_opts opts = { .mode = RIFT_INIT_DEMO, .progress = show_progress };
	char err[2048] = "", password[512] = "", *url = NULL;
	const char *password_file = NULL, *env_password = getenv("PGPASSWORD");
	bool logical = false;
	int c, rc = 1;

	/* Children inherit the environment, where other processes of the same user could read it:
	 * take PGPASSWORD out; it reaches upstream's tools through a passfile. */
	if (env_password != NULL) {
		snprintf(password, sizeof(password), "%s", env_password);
		explicit_bzero((char *)env_password, strlen(env_password));
		unsetenv("PGPASSWORD");
	}

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'u':
			/* keep a copy, then erase the password from the arguments every local user
			 * can read in /proc/<pid>/cmdline */
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
	if (optind != argc || (opts.upstream_url && opts.pgdata) ||
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
	if (o->quiet)
		opts.progress = NULL;
	if (rift_init(o->state, &opts, err, sizeof(err)) != 0) {
		fprintf(stderr, "rift init: %s\n", err);
		goto out;
	}
	if (o->json)
		printf("{\"state\":\"%s\",\"branch\":\"main\"}\n", o->state);
	else if (!o->quiet)
		printf("rift: store ready in %s; start it with `rift serve`, then `rift create "
		       "NAME`\n",
		       o->state);
	rc = 0;
out:
	explicit_bzero(password, sizeof(password));
	if (url != NULL) {
		explicit_bzero(url, strlen(url));
		free(url);
	}
	return rc;
}
