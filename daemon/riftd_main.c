/* riftd_main.c — riftd: owns the store, runs branch servers, serves the control API. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "rift/api.h"
#include "rift/config.h"
#include "rift/log.h"
#include "rift/manager.h"
#include "rift/router.h"
#include "riftd_init.h"

/* What riftd asks for when the hard limit allows more than the router needs: room to spare
 * for branches' mounts and the store, without handing every child the system's maximum. */
#define NOFILE_TARGET 65536u

/*
 * Raises the soft open-file limit toward the hard one (never the hard limit itself: that is the
 * administrator's, e.g. LimitNOFILE= in riftd.service). A routed client holds two descriptors
 * (its socket and the server's), a connection before its startup packet one, a kept server
 * session one; 1024 more are for the store, mounts, the API and starting servers. The default
 * soft limit of 1024 would run out at a few hundred clients.
 */
static void raise_nofile(const struct rift_config *cfg)
{
	unsigned long long need = 2ull * (unsigned long long)cfg->max_clients +
				  (unsigned long long)cfg->max_startup_clients +
				  (unsigned long long)cfg->pool_size + 1024ull,
			   want = need > NOFILE_TARGET ? need : NOFILE_TARGET, was;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		LOG_WARN("riftd", "cannot read the open-file limit: %s", strerror(errno));
		return;
	}
	was = rl.rlim_cur;
	if (rl.rlim_cur < want) {
		rl.rlim_cur =
		    rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want ? rl.rlim_max : want;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
			LOG_WARN("riftd", "cannot raise the open-file limit from %llu: %s", was,
				 strerror(errno));
			rl.rlim_cur = was;
		}
	}
	if (rl.rlim_cur >= need) {
		LOG_INFO("riftd",
			 "open-file limit %llu (was %llu; the router needs about %llu for "
			 "max_clients = %d)",
			 (unsigned long long)rl.rlim_cur, was, need, cfg->max_clients);
		return;
	}
	LOG_WARN("riftd",
		 "open-file limit %llu (hard limit %llu) is below the %llu that [router] "
		 "max_clients = %d needs (2 per client, 1 per connection before its startup "
		 "packet, 1 per kept session, 1024 for the store and servers): near the limit the "
		 "router closes connections that have not logged in yet and pauses accepting; "
		 "raise the hard limit (LimitNOFILE= in riftd.service, ulimit -Hn) or lower "
		 "max_clients in rift.conf",
		 (unsigned long long)rl.rlim_cur,
		 rl.rlim_max == RLIM_INFINITY ? 0ull : (unsigned long long)rl.rlim_max, need,
		 cfg->max_clients);
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: riftd [--state DIR]\n"
		"       riftd init [--state DIR] [rift init's options]\n"
		"\n"
		"Runs rift's daemon in the foreground (logs on stderr; systemd Type=notify):\n"
		"mounts branches, runs one Postgres server per started branch, and serves the\n"
		"control API on <state>/run/riftd.sock. Stop it with SIGTERM or SIGINT.\n"
		"\n"
		"  --state DIR   the store (default $RIFT_STATE, else /var/lib/rift)\n"
		"  -h, --help    this text\n"
		"\n"
		"riftd init makes a new store and its base: what `rift init` runs (riftd init\n"
		"--help lists its options).\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "state", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *state = getenv("RIFT_STATE") ? getenv("RIFT_STATE") : "/var/lib/rift";
	struct rift_manager *m = NULL;
	struct rift_api *api = NULL;
	struct rift_router *router = NULL;
	char err[2048] = "";
	sigset_t stop;
	int c, sig;

	/* the store is riftd's, so riftd makes it; rift init runs this (docs/architecture.md) */
	if (argc >= 2 && strcmp(argv[1], "init") == 0)
		return rift_init_main(argc - 1, argv + 1);
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 's') {
			state = optarg;
		} else if (c == 'h') {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "riftd: try riftd --help\n");
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "riftd: unexpected argument %s (try riftd --help)\n", argv[optind]);
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "riftd: must run as root (it mounts branches and runs Postgres as "
				"its own user)\n");
		return 1;
	}
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop, NULL); /* inherited by every thread; sigwait below */
	signal(SIGPIPE, SIG_IGN);
	rift_log_init();
	if (rift_manager_open(state, &m, err, sizeof(err)) == 0)
		raise_nofile(rift_manager_config(m));
	if (m == NULL || rift_api_start(m, state, &api, err, sizeof(err)) != 0 ||
	    rift_router_start(m, state, &router, err, sizeof(err)) != 0) {
		LOG_ERROR("riftd", "%s", err);
		rift_api_stop(api);
		rift_manager_close(m);
		return 1;
	}
	rift_api_set_router(api, router);
	LOG_INFO("riftd", "serving %s (API on %s/run/riftd.sock, Postgres clients on %s)", state,
		 state, rift_manager_config(m)->router_listen);
	sd_notify(0, "READY=1");
	for (;;) {
		if (sigwait(&stop, &sig) != 0 || sig != SIGHUP)
			break;
	}
	sd_notify(0, "STOPPING=1");
	LOG_INFO("riftd", "stopping: servers, mounts, store");
	/* starts queued for a slot give up now: the API's requests and the router's start
	 * threads are waited for below, and a queued start may otherwise wait queue_timeout */
	rift_manager_close_queue(m);
	rift_api_stop(api); /* first: its requests may still ask the router for sessions */
	rift_router_stop(router);
	rift_manager_close(m);
	return 0;
}
