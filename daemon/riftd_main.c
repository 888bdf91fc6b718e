/* riftd_main.c — riftd: owns the store, runs branch servers, serves the control API. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "rift/api.h"
#include "rift/log.h"
#include "rift/manager.h"
#include "rift/router.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: riftd [--state DIR]\n"
		"\n"
		"Runs rift's daemon in the foreground (logs on stderr; systemd Type=notify):\n"
		"mounts branches, runs one Postgres server per started branch, and serves the\n"
		"control API on <state>/run/riftd.sock. Stop it with SIGTERM or SIGINT.\n"
		"\n"
		"  --state DIR   the store (default $RIFT_STATE, else /var/lib/rift)\n"
		"  -h, --help    this text\n");
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
	if (rift_manager_open(state, &m, err, sizeof(err)) != 0 ||
	    rift_api_start(m, state, &api, err, sizeof(err)) != 0 ||
	    rift_router_start(m, state, &router, err, sizeof(err)) != 0) {
		LOG_ERROR("riftd", "%s", err);
		rift_api_stop(api);
		rift_manager_close(m);
		return 1;
	}
	LOG_INFO("riftd", "serving %s (API on %s/run/riftd.sock, Postgres clients on %s)", state,
		 state, rift_manager_config(m)->router_listen);
	sd_notify(0, "READY=1");
	for (;;) {
		if (sigwait(&stop, &sig) != 0 || sig != SIGHUP)
			break;
	}
	sd_notify(0, "STOPPING=1");
	LOG_INFO("riftd", "stopping: servers, mounts, store");
	rift_router_stop(router);
	rift_api_stop(api);
	rift_manager_close(m);
	return 0;
}
