/* cli.h — what the rift command's files share: options, exit codes, the API client. */
#ifndef RIFT_CLI_H
#define RIFT_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#define EXIT_USAGE 2

struct cli_opts {
	const char *state;
	bool json;  /* machine-readable output */
	bool quiet; /* no progress or chatter on stderr */
	/* remote riftd (--host, RIFT_HOST): "https://HOST:PORT", NULL = the local unix socket */
	const char *host;
	const char *token;  /* bearer token (RIFT_TOKEN, --token-file) */
	const char *cacert; /* PEM file of riftd's certificate or its CA (--cacert, RIFT_CACERT) */
	const char *pin;    /* "sha256//..." public-key pin (--pin, RIFT_PIN) */
};

/* An answer of riftd's API; body is owned by the caller (free). */
struct cli_response {
	int status;
	char *body;
	char error[256]; /* why the call failed before an answer, for a person */
};

/*
 * Calls riftd's API: on <state>/run/riftd.sock, or at o->host with the token. 0; -errno when
 * riftd cannot be reached (ENOENT, ECONNREFUSED, EACCES: the socket's connect; EKEYREJECTED: the
 * server's TLS certificate failed verification), with resp->error saying more.
 */
int cli_http(const struct cli_opts *o, const char *method, const char *path, const char *body,
	     struct cli_response *resp);

/* cli_http's two halves: the local riftd at sockpath (http_local.c), a remote one at o->host
 * (http_remote.c, with libcurl loaded at the first call). Same returns as cli_http. */
int cli_http_local(const char *sockpath, const char *method, const char *path, const char *body,
		   struct cli_response *resp);
int cli_http_remote(const struct cli_opts *o, const char *method, const char *path,
		    const char *body, struct cli_response *resp);

/* The host part of o->host ("db.example.com" of "https://db.example.com:8432"), into out. */
void cli_remote_hostname(const struct cli_opts *o, char *out, size_t len);

/* `rift url` of a remote riftd: the URL through its router, from GET .../connection. */
int cli_remote_url(const struct cli_opts *o, const char *branch, const char *given, char *out,
		   size_t len, char *pw_out, size_t pwlen);

/* Calls the API; 0 with *doc (caller decrefs) holding the JSON answer, else the exit status
 * after saying on stderr what went wrong. */
struct json_t;
int cli_call(const struct cli_opts *o, const char *method, const char *path, const char *body,
	     struct json_t **doc);

/* Like cli_call, but a 409 Conflict returns 409 quietly (no *doc) for the caller to retry. */
int cli_call_status(const struct cli_opts *o, const char *method, const char *path,
		    const char *body, struct json_t **doc);

/* Appends "label=KV" to a query string ("?label=a=1&label=b=2"); EXIT_USAGE after saying why
 * when kv is not a label or a key. */
int cli_label_selector(const char *cmd, const char *kv, char *query, size_t len);

/* `rift delete --label k=v ...`: deletes exactly the branches having every label given. */
int cli_delete_by_label(const struct cli_opts *o, int argc, char **argv);

/* Prints KEY=value for `--output env`, single-quoted when the value holds anything a shell
 * would interpret. */
void cli_print_env(FILE *out, const char *key, const char *value);

/*
 * Replaces this process with program name (riftd, rift-fs) run with argv: the one in this
 * binary's directory, else the one on PATH. Returns only when it cannot: 1, after saying on
 * stderr, prefixed with who ("rift serve"), what was looked for where and what to do.
 */
int cli_exec_sibling(const char *who, const char *name, char *const argv[]);

/* `rift serve --stop`: SIGTERM to the riftd of o->state, then waits until it is gone. */
int cli_serve_stop(const struct cli_opts *o);

/* Each command gets argv starting at its own name; returns the process exit status. */
int cmd_init(const struct cli_opts *o, int argc, char **argv);
int cmd_serve(const struct cli_opts *o, int argc, char **argv);
int cmd_branch(const struct cli_opts *o, int argc, char **argv); /* create, delete, ... */
int cmd_mount(const struct cli_opts *o, int argc, char **argv);
int cmd_dashboard(const struct cli_opts *o, int argc, char **argv);

int cmd_log(const struct cli_opts *o, int argc, char **argv);  /* cmd_log.c */
int cmd_diff(const struct cli_opts *o, int argc, char **argv); /* cmd_diff.c */

/* Prints a report for --json on one line and frees it; the exit status. */
int cli_print_json(json_t *doc);

/* Prints text a branch wrote, with control characters escaped; indent after each newline. */
void cli_print_safe(FILE *out, const char *s, const char *indent);

/* One line per branch command, for rift --help. */
void cmd_branch_summaries(FILE *out);

/* Percent-encodes s for the user or password part of a URL (roles may hold @ : / and more);
 * cut to fit len. */
void cli_url_encode(const char *s, char *out, size_t len);

#endif
