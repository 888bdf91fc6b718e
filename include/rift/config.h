/* config.h — riftd's settings: defaults, and the INI file `<state>/rift.conf` that overrides them.
 */
#ifndef RIFT_CONFIG_H
#define RIFT_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define RIFT_CONFIG_STR 256u

struct rift_config {
	/* [api] */
	char api_listen[RIFT_CONFIG_STR]; /* "" = unix socket only; else host:port for TCP */
	char api_token_file[RIFT_CONFIG_STR];
	char api_tls[RIFT_CONFIG_STR];      /* "on" (HTTPS on TCP) or "off" (plain HTTP) */
	char api_tls_cert[RIFT_CONFIG_STR]; /* "" = the router's certificate */
	char api_tls_key[RIFT_CONFIG_STR];
	int api_max_connections; /* TCP connections at once (one thread each) */
	/* [router] */
	char router_listen[RIFT_CONFIG_STR];
	char tls_cert[RIFT_CONFIG_STR]; /* "" = <state>/tls/server.crt (made by rift init) */
	char tls_key[RIFT_CONFIG_STR];
	int max_clients;
	int kernel_splice; /* 0 off, 1 between riftd's sockets, 2 into the server's socket */
	int pool_size;     /* server sessions kept for reuse; 0 = none */
	int pool_idle_s;
	int login_timeout_s;
	int max_startup_clients; /* connections not past their startup packet */
	int startup_timeout_s;
	char start_on_connect[RIFT_CONFIG_STR]; /* "always" or "authenticated" */
	/* [instances] */
	int port_min, port_max;
	char pg_user[RIFT_CONFIG_STR]; /* runs rift init's tools; servers too when uid_count = 0 */
	int uid_base, uid_count;       /* each running server's own uid/gid: [base, base+count) */
	char pg_bin[RIFT_CONFIG_STR];  /* "" = /usr/lib/postgresql/<PG_VERSION>/bin */
	int shared_buffers_mb;
	int idle_timeout_s; /* 0 = never stop idle instances */
	int start_timeout_s;
	int queue_timeout_s;
	int max_starting; /* servers starting at once; 0 = two per CPU */
	int warm;         /* servers kept started on fresh branches of main for creates */
	int stop_timeout_s;
	int max_processes; /* RLIMIT_NPROC of each server's own uid; 0 = none */
	/* [fs] */
	int fs_threads;
	/* [store] */
	int reserve_mb;            /* MiB kept free on the state directory's filesystem; 0 = none */
	uint64_t default_max_size; /* bytes a new branch may store of its own; 0 = unlimited */
	/* [diff] */
	uint64_t diff_max_bytes; /* bytes one rift diff may receive from the servers; 0 = no cap */
	int diff_max_running;    /* diffs riftd runs at once; more get 503 */
	int diff_narrow;         /* 1: narrow row diffs by the store's changed blocks */
};

/*
 * Parses a size like "10G", "512M", "64k" or "1048576" (bytes; K/M/G/T are powers of 1024, an
 * optional trailing "B" or "iB" is accepted). "" and "0" are 0 (unlimited where that applies).
 * Returns 0, or -1 for anything else (no sign, no fraction, no overflow).
 */
int rift_config_parse_size(const char *text, uint64_t *out);

/* Fills cfg with every default. */
void rift_config_defaults(struct rift_config *cfg);

/*
 * Reads path over the defaults already in cfg. A missing file is fine (defaults stay). An
 * unknown section or key, or a bad value, fails with *err naming the file, the line and the
 * accepted values. Returns 0 or -1.
 */
int rift_config_load(struct rift_config *cfg, const char *path, char *err, size_t errlen);

/* Writes every key with its default and a comment saying what it does (for `rift init`). */
int rift_config_write_defaults(const char *path, char *err, size_t errlen);

#endif
