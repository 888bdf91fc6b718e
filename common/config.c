/* config.c — riftd's INI configuration: one table of keys with defaults, ranges and help. */
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rift/config.h"

enum kind { K_STR, K_INT, K_SIZE };

struct key {
	const char *section, *name;
	enum kind kind;
	size_t offset;
	const char *def;
	long min, max; /* K_INT */
	const char *help;
};

#define OFF(field) offsetof(struct rift_config, field)

static const struct key keys[] = {
	{ "api", "listen", K_STR, OFF(api_listen), "", 0, 0,
	  "TCP address for the HTTP API (host:port), besides run/riftd.sock; empty = off" },
	{ "api", "token_file", K_STR, OFF(api_token_file), "", 0, 0,
	  "file holding the bearer token required on the TCP API" },
	{ "api", "tls", K_STR, OFF(api_tls), "on", 0, 0,
	  "on = the TCP API speaks HTTPS only (the token never crosses the network in clear); off "
	  "= plain HTTP, for a TLS proxy on the same host" },
	{ "api", "tls_cert", K_STR, OFF(api_tls_cert), "", 0, 0,
	  "TLS certificate (PEM) of the TCP API; empty = the router's ([router] tls_cert)" },
	{ "api", "tls_key", K_STR, OFF(api_tls_key), "", 0, 0,
	  "private key of [api] tls_cert (PEM); empty = the router's" },
	{ "api", "max_connections", K_INT, OFF(api_max_connections), "64", 1, 10000,
	  "TCP API connections served at once (each holds a thread); more wait until one ends" },
	{ "router", "listen", K_STR, OFF(router_listen), "127.0.0.1:6432", 0, 0,
	  "address of the Postgres router (host:port; *:6432 for every address)" },
	{ "router", "tls_cert", K_STR, OFF(tls_cert), "", 0, 0,
	  "TLS certificate (PEM) for sslmode=require/verify-full; empty = <state>/tls/server.crt" },
	{ "router", "tls_key", K_STR, OFF(tls_key), "", 0, 0,
	  "private key of tls_cert (PEM); empty = <state>/tls/server.key" },
	{ "router", "max_clients", K_INT, OFF(max_clients), "1000", 1, 100000,
	  "client connections the router accepts at once (more get SQLSTATE 53300)" },
	{ "router", "login_timeout", K_INT, OFF(login_timeout_s), "60", 1, 3600,
	  "seconds a client may take to send its startup packet (starting a branch not counted)" },
	{ "router", "max_startup_clients", K_INT, OFF(max_startup_clients), "1000", 1, 100000,
	  "connections that have not sent their startup packet yet; when full, the oldest of them "
	  "is closed to make room, so idle connections cannot keep real clients out" },
	{ "router", "start_on_connect", K_STR, OFF(start_on_connect), "always", 0, 0,
	  "who may start a stopped branch: always = any client; authenticated = only a SCRAM "
	  "password riftd can check (docs/configuration.md)" },
	{ "router", "startup_timeout", K_INT, OFF(startup_timeout_s), "10", 1, 3600,
	  "seconds a new connection may take to send its startup packet, TLS included (at most "
	  "login_timeout)" },
	{ "router", "kernel_splice", K_INT, OFF(kernel_splice), "2", 0, 2,
	  "after login the kernel relays plaintext sessions (BPF sockmap, needs root): 2 = into "
	  "the "
	  "server process's own socket when it can, 1 = between riftd's two sockets, 0 = off "
	  "(riftd relays every byte)" },
	{ "router", "pool_size", K_INT, OFF(pool_size), "100", 0, 100000,
	  "server sessions kept open after their clients leave, for the next client with the same "
	  "branch, database, user and options (reset with DISCARD ALL); 0 = none" },
	{ "router", "pool_idle_timeout", K_INT, OFF(pool_idle_s), "30", 1, 86400,
	  "seconds a kept server session waits for a client before it is closed" },
	{ "instances", "port_min", K_INT, OFF(port_min), "55000", 1024, 65535,
	  "lowest TCP port given to a branch's Postgres server" },
	{ "instances", "port_max", K_INT, OFF(port_max), "55999", 1024, 65535,
	  "highest TCP port given to a branch's Postgres server" },
	{ "instances", "pg_user", K_STR, OFF(pg_user), "postgres", 0, 0,
	  "operating-system user that runs the Postgres servers (never root)" },
	{ "instances", "uid_base", K_INT, OFF(uid_base), "1900000000", 1000, 2147483646,
	  "first OS uid (and gid) for branch servers: each running server gets one of its own, so "
	  "no branch reaches another's files, processes or sockets" },
	{ "instances", "uid_count", K_INT, OFF(uid_count), "65536", 0, 1 << 24,
	  "uids from uid_base (no user or group may have one); 0 = every server runs as pg_user "
	  "(no isolation between branches)" },
	{ "instances", "pg_bin", K_STR, OFF(pg_bin), "", 0, 0,
	  "directory of the Postgres binaries; empty = /usr/lib/postgresql/<version>/bin" },
	{ "instances", "shared_buffers_mb", K_INT, OFF(shared_buffers_mb), "32", 1, 1 << 20,
	  "shared_buffers of each branch's server, in MiB" },
	{ "instances", "idle_timeout", K_INT, OFF(idle_timeout_s), "600", 0, 1 << 30,
	  "seconds without connections before a branch's server stops; 0 = never" },
	{ "instances", "warm", K_INT, OFF(warm), "0", 0, 1000,
	  "servers kept started on fresh branches of main for `rift create` to hand over (no "
	  "start before the first query); refilled while main is stopped; 0 = none" },
	{ "instances", "max_starting", K_INT, OFF(max_starting), "0", 0, 10000,
	  "servers that may be starting at once; more wait their turn, first come first served, "
	  "within queue_timeout; 0 = two per CPU" },
	{ "instances", "start_timeout", K_INT, OFF(start_timeout_s), "60", 1, 3600,
	  "seconds a server may take to accept connections once its start began (crash recovery "
	  "included)" },
	{ "instances", "queue_timeout", K_INT, OFF(queue_timeout_s), "600", 1, 86400,
	  "seconds a start may wait for one of the max_starting slots; its clients are held "
	  "meanwhile and get SQLSTATE 57P03 only after it" },
	{ "instances", "stop_timeout", K_INT, OFF(stop_timeout_s), "30", 1, 3600,
	  "seconds of fast shutdown before the server is told to quit immediately" },
	{ "instances", "max_processes", K_INT, OFF(max_processes), "256", 0, 1 << 22,
	  "processes (threads included) a branch's server and what it runs (COPY ... TO PROGRAM) "
	  "may have at once under the branch's own uid, so one branch cannot use up the host's "
	  "process ids; 0 = no limit (none either when uid_count = 0)" },
	{ "fs", "threads", K_INT, OFF(fs_threads), "4", 1, 64,
	  "FUSE worker threads per mounted branch" },
	{ "store", "reserve_mb", K_INT, OFF(reserve_mb), "256", 0, 1 << 20,
	  "MiB kept free on the store's disk: under it the biggest branches, under a quarter of it "
	  "all branches get ENOSPC for new data (docs/configuration.md); 0 = off" },
	{ "store", "default_max_size", K_SIZE, OFF(default_max_size), "0", 0, 0,
	  "bytes a branch may store of its own unless `rift create --max-size` says (like 10G); "
	  "past it its writes fail with ENOSPC; 0 = unlimited" },
	{ "diff", "max_bytes", K_SIZE, OFF(diff_max_bytes), "256M", 0, 0,
	  "bytes one `rift diff` may read from both branch servers (rows, catalogs, pg_dump); "
	  "past it the diff fails (bounds riftd's memory); 0 = no cap" },
	{ "diff", "max_running", K_INT, OFF(diff_max_running), "1", 1, 64,
	  "diffs riftd runs at once; another one is refused (HTTP 503) until one ends" },
	{ "diff", "narrow", K_INT, OFF(diff_narrow), "1", 0, 1,
	  "1 = read only the table blocks the store saw either side change (docs/cli.md); 0 = "
	  "read whole tables always" },
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static int set_value(struct rift_config *cfg, const struct key *k, const char *value, char *why,
		     size_t whylen)
{
	char *base = (char *)cfg + k->offset;

	if (k->kind == K_SIZE) {
		uint64_t v;
		if (rift_config_parse_size(value, &v) != 0) {
			snprintf(why, whylen,
				 "\"%.64s\" is not a size (a number of bytes with an optional K, "
				 "M, G or T, like 10G; 0 = unlimited)",
				 value);
			return -1;
		}
		memcpy(base, &v, sizeof(v));
		return 0;
	}
	if (k->kind == K_STR) {
		if (strlen(value) >= RIFT_CONFIG_STR) {
			snprintf(why, whylen, "value longer than %u characters",
				 RIFT_CONFIG_STR - 1);
			return -1;
		}
		snprintf(base, RIFT_CONFIG_STR, "%s", value);
		return 0;
	}
	{
		char *end;
		long v;
		errno = 0;
		v = strtol(value, &end, 10);
		if (errno != 0 || end == value || *end != '\0' || v < k->min || v > k->max) {
			snprintf(why, whylen, "\"%.64s\" is not a whole number from %ld to %ld",
				 value, k->min, k->max);
			return -1;
		}
		*(int *)(void *)base = (int)v;
	}
	return 0;
}

int rift_config_parse_size(const char *text, uint64_t *out)
{
	unsigned long long v;
	unsigned shift = 0;
	char *end;

	*out = 0;
	if (text[0] == '\0')
		return 0;
	if (text[0] < '0' || text[0] > '9')
		return -1;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno != 0)
		return -1;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	case 't':
	case 'T':
		shift = 40;
		break;
	default:
		break;
	}
	if (shift != 0) {
		end++;
		if (end[0] == 'i' && end[1] == 'B')
			end += 2;
		else if (end[0] == 'B')
			end++;
	} else if (end[0] == 'B') {
		end++;
	}
	if (*end != '\0' || (shift != 0 && v > (~0ull >> shift)))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

void rift_config_defaults(struct rift_config *cfg)
{
	char why[128];
	size_t i;

	memset(cfg, 0, sizeof(*cfg));
	for (i = 0; i < NKEYS; i++)
		(void)set_value(cfg, &keys[i], keys[i].def, why, sizeof(why));
}

struct load_state {
	struct rift_config *cfg;
	char why[384];
	bool failed;
};

static int on_pair(void *user, const char *section, const char *name, const char *value)
{
	struct load_state *st = user;
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		if (strcmp(keys[i].section, section) != 0 || strcmp(keys[i].name, name) != 0)
			continue;
		char why[160];
		if (set_value(st->cfg, &keys[i], value, why, sizeof(why)) != 0) {
			if (!st->failed)
				snprintf(st->why, sizeof(st->why), "[%.32s] %.64s: %s", section,
					 name, why);
			st->failed = true;
			return 0;
		}
		return 1;
	}
	if (!st->failed)
		snprintf(
		    st->why, sizeof(st->why),
		    "unknown key \"%.64s\" in section [%.32s] (see docs/configuration.md for the "
		    "keys rift knows)",
		    name, section);
	st->failed = true;
	return 0;
}

/* libinih reads a line with fgets into INI_MAX_LINE bytes and takes what does not fit as the
 * next line: a long comment's tail would be read as a key. The longest line it reads whole with
 * its newline (one character more and the newline comes as a line of its own, which shifts the
 * line numbers of its errors). */
#define CONF_LINE_MAX (INI_MAX_LINE - 2)

/* The first line of f longer than CONF_LINE_MAX (1-based), or 0; f is rewound. */
static int first_long_line(FILE *f)
{
	int c, line = 1, found = 0;
	size_t len = 0;

	while (found == 0 && (c = getc(f)) != EOF) {
		if (c == '\n') {
			line++;
			len = 0;
		} else if (++len > CONF_LINE_MAX) {
			found = line;
		}
	}
	rewind(f);
	return found;
}

#define MAX_PROCESSES_MIN 32 /* a postmaster and its helpers, a few sessions */

int rift_config_load(struct rift_config *cfg, const char *path, char *err, size_t errlen)
{
	struct load_state st = { .cfg = cfg };
	FILE *f = fopen(path, "re");
	int line;

	if (f == NULL) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	line = first_long_line(f);
	if (line != 0) {
		fclose(f);
		snprintf(err, errlen, "%s:%d: a line longer than %d characters; split it", path,
			 line, CONF_LINE_MAX);
		return -1;
	}
	line = ini_parse_file(f, on_pair, &st);
	fclose(f);
	if (line != 0) {
		if (!st.failed)
			snprintf(st.why, sizeof(st.why),
				 "not an INI line (expected [section] or key = value)");
		snprintf(err, errlen, "%s:%d: %s", path, line, st.why);
		return -1;
	}
	if (cfg->port_min > cfg->port_max) {
		snprintf(err, errlen, "%s: [instances] port_min (%d) is above port_max (%d)", path,
			 cfg->port_min, cfg->port_max);
		return -1;
	}
	if (strcmp(cfg->api_tls, "on") != 0 && strcmp(cfg->api_tls, "off") != 0) {
		snprintf(err, errlen, "%s: [api] tls = %.64s: expected on or off", path,
			 cfg->api_tls);
		return -1;
	}
	if (strcmp(cfg->start_on_connect, "always") != 0 &&
	    strcmp(cfg->start_on_connect, "authenticated") != 0) {
		snprintf(err, errlen,
			 "%s: [router] start_on_connect = %.64s: expected always or authenticated",
			 path, cfg->start_on_connect);
		return -1;
	}
	if ((long long)cfg->uid_base + cfg->uid_count > 2147483647LL) {
		snprintf(err, errlen,
			 "%s: [instances] uid_base + uid_count (%lld) goes past 2147483647; lower "
			 "uid_base or uid_count (some tools mistake larger uids for negative ones)",
			 path, (long long)cfg->uid_base + cfg->uid_count);
		return -1;
	}
	if (cfg->max_processes != 0 && cfg->max_processes < MAX_PROCESSES_MIN) {
		snprintf(err, errlen,
			 "%s: [instances] max_processes = %d leaves a server too few processes to "
			 "start; set 0 (no limit) or at least %d (a server needs about "
			 "max_connections + 20)",
			 path, cfg->max_processes, MAX_PROCESSES_MIN);
		return -1;
	}
	if (strcmp(cfg->pg_user, "root") == 0) {
		snprintf(
		    err, errlen,
		    "%s: [instances] pg_user must not be root: Postgres refuses to run as root",
		    path);
		return -1;
	}
	return 0;
}

/* Writes text as "; " comment lines of at most CONF_COMMENT_COLS columns, broken at spaces. */
#define CONF_COMMENT_COLS 96
static void write_comment(FILE *f, const char *text)
{
	while (*text != '\0') {
		size_t n = strlen(text), cut = n;
		if (n > CONF_COMMENT_COLS - 2) {
			cut = CONF_COMMENT_COLS - 2;
			while (cut > 0 && text[cut] != ' ')
				cut--;
			if (cut == 0) /* one word longer than a line: it stays whole */
				cut = strcspn(text, " ");
		}
		fprintf(f, "; %.*s\n", (int)cut, text);
		text += cut;
		while (*text == ' ')
			text++;
	}
}

int rift_config_write_defaults(const char *path, char *err, size_t errlen)
{
	const char *section = "";
	FILE *f = fopen(path, "wxe");
	size_t i;

	if (f == NULL) {
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	fprintf(f, "; rift.conf — riftd's settings. Every key is shown with its default.\n");
	for (i = 0; i < NKEYS; i++) {
		if (strcmp(section, keys[i].section) != 0) {
			section = keys[i].section;
			fprintf(f, "\n[%s]\n", section);
		}
		write_comment(f, keys[i].help);
		fprintf(f, "%s = %s\n", keys[i].name, keys[i].def);
	}
	if (fclose(f) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}
