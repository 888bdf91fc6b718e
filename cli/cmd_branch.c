/* cmd_branch.c — the branch commands: create, delete, list, status, url, psql, reset, start, stop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "rift/base_meta.h"
#include "rift/branch_name.h"
#include "rift/config.h"
#include "rift/labels.h"
#include "rift/secret_read.h"

struct command {
	const char *name, *args, *summary, *examples;
	int (*run)(const struct cli_opts *o, int argc, char **argv);
};

static const struct command *find_command(const char *name);

static int usage_error(const char *cmd, const char *msg)
{
	fprintf(stderr, "rift %s: %s (try rift %s --help)\n", cmd, msg, cmd);
	return EXIT_USAGE;
}

static void human_bytes(unsigned long long n, char *out, size_t len)
{
	static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(out, len, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
}

/*
 * The URL a person pastes into psql: through the router, with the branch's own password
 * (rift create --new-password; given, or read from the state) or the demo password if rift
 * knows one. When pw_out is not NULL the password goes there instead of into the URL (rift
 * psql hands it over in the environment, never in an argument).
 */
/* How a URL selects its branch (rift url --style): the database name (<branch>), startup
 * options (-c rift.branch=<branch>, database keeps its name), or the TLS server name. */
enum url_style { URL_NAME, URL_OPTIONS, URL_SNI };

static int branch_url_styled(const struct cli_opts *o, const char *branch, const char *given,
			     char *out, size_t len, char *pw_out, size_t pwlen,
			     enum url_style style)
{
	struct rift_config cfg;
	struct rift_base_meta meta;
	char path[4200], err[512], host[256] = "localhost", user[300] = "", role[128], own[64];
	char enc[200];
	const char *colon, *port = "6432";
	int rc;

	if (o->host != NULL)
		return cli_remote_url(o, branch, given, out, len, pw_out, pwlen);
	rift_config_defaults(&cfg);
	snprintf(path, sizeof(path), "%s/rift.conf", o->state);
	if (rift_config_load(&cfg, path, err, sizeof(err)) != 0 ||
	    rift_base_meta_load(o->state, &meta, err, sizeof(err)) != 0) {
		fprintf(stderr, "rift: %s\n", err);
		return -1;
	}
	colon = strrchr(cfg.router_listen, ':');
	if (colon != NULL) {
		size_t hl = (size_t)(colon - cfg.router_listen);
		port = colon + 1;
		if (hl > 0 && hl < sizeof(host) && strncmp(cfg.router_listen, "*", hl) != 0 &&
		    strncmp(cfg.router_listen, "127.0.0.1", hl) != 0 &&
		    strncmp(cfg.router_listen, "0.0.0.0", hl) != 0)
			snprintf(host, sizeof(host), "%.*s", (int)hl, cfg.router_listen);
	}
	if (given != NULL) { /* just handed out by riftd: no need to read it back */
		snprintf(own, sizeof(own), "%s", given);
		rc = 0;
	} else {
		rc = rift_secret_load(o->state, branch, own, sizeof(own));
	}
	if (rc == -EACCES) {
		fprintf(stderr,
			"rift: branch \"%s\" has a password of its own in %s/secrets, readable "
			"only by root (run as root)\n",
			branch, o->state);
		return -1;
	}
	if (pw_out != NULL)
		pw_out[0] = '\0';
	if (rc == 0 && rift_secret_login_role(&meta, role, sizeof(role)) == 0) {
		cli_url_encode(role, enc, sizeof(enc));
		if (pw_out != NULL) {
			snprintf(pw_out, pwlen, "%s", own);
			snprintf(user, sizeof(user), "%s@", enc);
		} else {
			snprintf(user, sizeof(user), "%s:%s@", enc, own);
		}
	} else if (meta.demo_password[0] != '\0' && pw_out != NULL) {
		snprintf(pw_out, pwlen, "%s", meta.demo_password);
		snprintf(user, sizeof(user), "rift@");
	} else if (meta.demo_password[0] != '\0') {
		snprintf(user, sizeof(user), "rift:%s@", meta.demo_password);
	} else if (meta.login_role[0] != '\0') {
		cli_url_encode(meta.login_role, enc, sizeof(enc));
		snprintf(user, sizeof(user), "%s@", enc);
	} else if (strncmp(meta.upstream, "postgres://", 11) == 0) {
		const char *u = meta.upstream + 11, *at = strchr(u, '@');
		if (at != NULL && at - u < 100)
			snprintf(user, sizeof(user), "%.*s@", (int)(at - u), u);
	}
	if (style == URL_OPTIONS) {
		/* -c rift.branch=<branch>, percent-encoded; branch names need no encoding */
		snprintf(out, len, "postgres://%s%s:%s/%s?options=-c%%20rift.branch%%3D%s", user,
			 host, port, meta.default_db, branch);
	} else if (style == URL_SNI) {
		/* the server name's first label is the branch; an IP address or localhost cannot
		 * carry one, so the name is <branch>.localhost and hostaddr says where to go */
		unsigned char addr[16];
		bool literal = strcmp(host, "localhost") == 0 ||
			       inet_pton(AF_INET, host, addr) == 1 ||
			       inet_pton(AF_INET6, host, addr) == 1;
		if (literal)
			snprintf(out, len,
				 "postgres://%s%s.localhost:%s/%s?hostaddr=%s&sslmode=require",
				 user, branch, port, meta.default_db,
				 strcmp(host, "localhost") == 0 ? "127.0.0.1" : host);
		else
			snprintf(out, len, "postgres://%s%s.%s:%s/%s?sslmode=require", user, branch,
				 host, port, meta.default_db);
	} else {
		snprintf(out, len, "postgres://%s%s:%s/%s", user, host, port, branch);
	}
	explicit_bzero(&meta, sizeof(meta));
	return 0;
}

static int branch_url(const struct cli_opts *o, const char *branch, const char *given, char *out,
		      size_t len, char *pw_out, size_t pwlen)
{
	return branch_url_styled(o, branch, given, out, len, pw_out, pwlen, URL_NAME);
}

static void print_branch_line(const json_t *b)
{
	printf("%s %s\n", json_string_value(json_object_get(b, "name")),
	       json_string_value(json_object_get(b, "state")));
}

/* ---- commands ---- */

/* Parses 90s, 30m, 2h, 7d (or plain seconds). */
static long parse_duration(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || v <= 0)
		return -1;
	switch (*end) {
	case '\0':
	case 's':
		break;
	case 'm':
		v *= 60;
		break;
	case 'h':
		v *= 3600;
		break;
	case 'd':
		v *= 86400;
		break;
	default:
		return -1;
	}
	return end[0] != '\0' && end[1] != '\0' ? -1 : v;
}

static int run_create(const struct cli_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = { { "from", required_argument, NULL, 'f' },
						  { "ttl", required_argument, NULL, 't' },
						  { "max-size", required_argument, NULL, 'm' },
						  { "output", required_argument, NULL, 'o' },
						  { "new-password", no_argument, NULL, 'p' },
						  { "label", required_argument, NULL, 'l' },
						  { NULL, 0, NULL, 0 } };
	const char *label_args[RIFT_LABELS_COUNT];
	int nlabels = 0, i;
	bool new_password = false;
	const char *from = NULL, *output = "text";
	long ttl = 0;
	uint64_t max_size = 0;
	bool has_max_size = false;
	char body[4096], url[1024];
	json_t *doc, *req;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'f')
			from = optarg;
		else if (c == 't' && (ttl = parse_duration(optarg)) <= 0)
			return usage_error("create",
					   "--ttl wants a duration like 90s, 30m, 2h or 7d");
		else if (c == 'm') {
			if (rift_config_parse_size(optarg, &max_size) != 0 || optarg[0] == '\0')
				return usage_error("create",
						   "--max-size wants a size like 10G, 512M or 0 "
						   "(unlimited)");
			has_max_size = true;
		} else if (c == 'o')
			output = optarg;
		else if (c == 'p')
			new_password = true;
		else if (c == 'l') {
			const char *why = rift_label_check(optarg);
			if (why != NULL)
				return usage_error("create", why);
			if (nlabels >= RIFT_LABELS_COUNT)
				return usage_error("create", "at most 16 --label options");
			label_args[nlabels++] = optarg;
		} else if (c == '?') {
			return usage_error("create", "unknown option");
		}
	}
	if (optind != argc - 1)
		return usage_error("create", "expected exactly one NAME");
	if (strcmp(output, "text") != 0 && strcmp(output, "env") != 0 && strcmp(output, "url") != 0)
		return usage_error("create", "--output takes text, env or url");
	req = json_pack("{s:s}", "name", argv[optind]);
	if (from != NULL)
		json_object_set_new(req, "from", json_string(from));
	if (ttl > 0)
		json_object_set_new(req, "ttl_seconds", json_integer(ttl));
	if (has_max_size)
		json_object_set_new(req, "max_size", json_integer((json_int_t)max_size));
	if (new_password)
		json_object_set_new(req, "new_password", json_true());
	if (nlabels > 0) {
		json_t *labels = json_object();
		for (i = 0; i < nlabels; i++) {
			char key[RIFT_LABEL_PART];
			const char *eq = strchr(label_args[i], '=');
			snprintf(key, sizeof(key), "%.*s", (int)(eq - label_args[i]),
				 label_args[i]);
			json_object_set_new(labels, key, json_string(eq + 1));
		}
		json_object_set_new(req, "labels", labels);
	}
	{
		char *text = json_dumps(req, JSON_COMPACT);
		snprintf(body, sizeof(body), "%s", text ? text : "{}");
		free(text);
	}
	json_decref(req);
	rc = cli_call(o, "POST", "/v1/branches", body, &doc);
	if (rc != 0)
		return rc;
	if (branch_url(o, argv[optind], json_string_value(json_object_get(doc, "password")), url,
		       sizeof(url), NULL, 0) != 0) {
		json_decref(doc);
		return 1;
	}
	if (o->json) {
		json_object_set_new(doc, "url", json_string(url));
		json_dumpf(doc, stdout, JSON_COMPACT);
		printf("\n");
	} else if (strcmp(output, "env") == 0) {
		cli_print_env(stdout, "DATABASE_URL", url);
		cli_print_env(stdout, "RIFT_BRANCH", argv[optind]);
	} else if (strcmp(output, "url") == 0 || o->quiet) {
		printf("%s\n", url);
	} else {
		printf("created branch %s from %s\n  psql \"%s\"\n", argv[optind],
		       from ? from : "main", url);
	}
	json_decref(doc);
	return 0;
}

static int simple_action(const struct cli_opts *o, int argc, char **argv, const char *method,
			 const char *action)
{
	char path[256];
	json_t *doc;
	int rc;

	if (argc != 2)
		return usage_error(argv[0], "expected exactly one NAME");
	if (rift_branch_name_check(argv[1]) != RIFT_NAME_OK) {
		fprintf(stderr, "rift %s: \"%s\" is not a valid branch name: %s\n", argv[0],
			argv[1], rift_branch_name_explain(rift_branch_name_check(argv[1])));
		return 1;
	}
	snprintf(path, sizeof(path), "/v1/branches/%s%s%s", argv[1], action ? "/" : "",
		 action ? action : "");
	rc = cli_call(o, method, path, NULL, &doc);
	if (rc != 0)
		return rc;
	if (o->json) {
		json_dumpf(doc, stdout, JSON_COMPACT);
		printf("\n");
	} else if (!o->quiet) {
		if (strcmp(method, "DELETE") == 0)
			printf("deleted branch %s\n", argv[1]);
		else
			print_branch_line(doc);
	}
	json_decref(doc);
	return 0;
}

static int run_delete(const struct cli_opts *o, int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++)
		if (strncmp(argv[i], "--label", 7) == 0)
			return cli_delete_by_label(o, argc, argv);
	return simple_action(o, argc, argv, "DELETE", NULL);
}

static int run_start(const struct cli_opts *o, int argc, char **argv)
{
	return simple_action(o, argc, argv, "POST", "start");
}

static int run_stop(const struct cli_opts *o, int argc, char **argv)
{
	return simple_action(o, argc, argv, "POST", "stop");
}

static int run_reset(const struct cli_opts *o, int argc, char **argv)
{
	return simple_action(o, argc, argv, "POST", "reset");
}

static int run_list(const struct cli_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = { { "label", required_argument, NULL, 'l' },
						  { NULL, 0, NULL, 0 } };
	char query[1024] = "", path[1100];
	json_t *doc, *arr, *b;
	size_t i;
	int rc, c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c != 'l')
			return usage_error("list", "unknown option");
		rc = cli_label_selector("list", optarg, query, sizeof(query));
		if (rc != 0)
			return rc;
	}
	if (optind != argc)
		return usage_error("list", "takes no NAME (--label k=v selects)");
	snprintf(path, sizeof(path), "/v1/branches%s", query);
	rc = cli_call(o, "GET", path, NULL, &doc);
	if (rc != 0)
		return rc;
	if (o->json) {
		json_dumpf(doc, stdout, JSON_COMPACT);
		printf("\n");
		json_decref(doc);
		return 0;
	}
	arr = json_object_get(doc, "branches");
	printf("%-24s %-16s %-8s %-6s %10s %10s %10s  %-20s %-20s %s\n", "NAME", "PARENT", "STATE",
	       "PORT", "STORED", "ON DISK", "MAX", "CREATED", "EXPIRES", "LABELS");
	json_array_foreach(arr, i, b)
	{
		char stored[32], disk[32], limit[32] = "-", port[24] = "-";
		json_int_t max = json_integer_value(json_object_get(b, "max_size"));
		const char *parent = json_string_value(json_object_get(b, "parent"));
		const char *expires = json_string_value(json_object_get(b, "expires"));
		json_int_t p = json_integer_value(json_object_get(b, "port"));
		human_bytes((unsigned long long)json_integer_value(json_object_get(b, "bytes_own")),
			    stored, sizeof(stored));
		if (json_is_integer(
			json_object_get(b, "bytes_own_disk"))) /* not from older riftds */
			human_bytes((unsigned long long)json_integer_value(
					json_object_get(b, "bytes_own_disk")),
				    disk, sizeof(disk));
		else
			snprintf(disk, sizeof(disk), "-");
		if (p > 0)
			snprintf(port, sizeof(port), "%lld", (long long)p);
		if (max > 0)
			human_bytes((unsigned long long)max, limit, sizeof(limit));
		char labels[RIFT_LABELS_MAX] = "";
		const char *key;
		json_t *val;
		json_object_foreach(json_object_get(b, "labels"), key, val)
		{
			size_t used = strlen(labels);
			snprintf(labels + used, sizeof(labels) - used, "%s%s=%s", used ? "," : "",
				 key, json_string_value(val));
		}
		printf("%-24s %-16s %-8s %-6s %10s %10s %10s  %-20s %-20s %s\n",
		       json_string_value(json_object_get(b, "name")), parent ? parent : "(base)",
		       json_string_value(json_object_get(b, "state")), port, stored, disk, limit,
		       json_string_value(json_object_get(b, "created")), expires ? expires : "-",
		       labels[0] ? labels : "-");
	}
	json_decref(doc);
	return 0;
}

static int run_status(const struct cli_opts *o, int argc, char **argv)
{
	json_t *doc;
	int rc;

	(void)argv;
	if (argc != 1)
		return usage_error("status", "takes no arguments");
	rc = cli_call(o, "GET", "/v1/status", NULL, &doc);
	if (rc != 0)
		return rc;
	if (o->json) {
		json_dumpf(doc, stdout, JSON_COMPACT);
		printf("\n");
	} else {
		printf(
		    "riftd %s serving %s\n  base: %s, default database %s\n  router: %s\n"
		    "  branches: %lld, running: %lld, starting: %lld (of %lld at once), waiting to "
		    "start: %lld\n  warm pool: %lld ready of %lld\n",
		    json_string_value(json_object_get(doc, "version")), o->state,
		    json_string_value(json_object_get(doc, "base_mode")),
		    json_string_value(json_object_get(doc, "default_database")),
		    json_string_value(json_object_get(doc, "router")),
		    (long long)json_integer_value(json_object_get(doc, "branches")),
		    (long long)json_integer_value(json_object_get(doc, "running")),
		    (long long)json_integer_value(json_object_get(doc, "starting")),
		    (long long)json_integer_value(json_object_get(doc, "max_starting")),
		    (long long)json_integer_value(json_object_get(doc, "start_queue")),
		    (long long)json_integer_value(
			json_object_get(json_object_get(doc, "warm"), "ready")),
		    (long long)json_integer_value(
			json_object_get(json_object_get(doc, "warm"), "target")));
	}
	json_decref(doc);
	return 0;
}

static int run_url(const struct cli_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = { { "style", required_argument, NULL, 's' },
						  { NULL, 0, NULL, 0 } };
	enum url_style style = URL_NAME;
	char url[1024];
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 's' && strcmp(optarg, "name") == 0)
			style = URL_NAME;
		else if (c == 's' && strcmp(optarg, "options") == 0)
			style = URL_OPTIONS;
		else if (c == 's' && strcmp(optarg, "sni") == 0)
			style = URL_SNI;
		else if (c == 's')
			return usage_error("url", "--style takes name, options or sni");
		else
			return usage_error("url", "unknown option");
	}
	if (optind != argc - 1)
		return usage_error("url", "expected exactly one NAME");
	if (rift_branch_name_check(argv[optind]) != RIFT_NAME_OK)
		return usage_error("url", "not a valid branch name");
	if (branch_url_styled(o, argv[optind], NULL, url, sizeof(url), NULL, 0, style) != 0)
		return 1;
	if (o->json)
		printf("{\"name\":\"%s\",\"url\":\"%s\"}\n", argv[optind], url);
	else
		printf("%s\n", url);
	return 0;
}

/* psql gets the URL without the password, which goes in PGPASSWORD: every local user can read
 * a process's arguments (ps, /proc/<pid>/cmdline), while its environment is readable only by
 * the same user and root, who can read base.conf anyway. */
static int run_psql(const struct cli_opts *o, int argc, char **argv)
{
	char url[1024], password[64], *args[64];
	int i, n = 0;

	if (argc < 2)
		return usage_error("psql", "expected a branch NAME");
	if (rift_branch_name_check(argv[1]) != RIFT_NAME_OK)
		return usage_error("psql", "not a valid branch name");
	if (branch_url(o, argv[1], NULL, url, sizeof(url), password, sizeof(password)) != 0)
		return 1;
	if (password[0] != '\0' && setenv("PGPASSWORD", password, 1) != 0) {
		fprintf(stderr, "rift psql: cannot set PGPASSWORD: %s\n", strerror(errno));
		return 1;
	}
	explicit_bzero(password, sizeof(password));
	args[n++] = "psql";
	args[n++] = url;
	for (i = 2; i < argc && n < 62; i++)
		if (!(i == 2 && strcmp(argv[i], "--") == 0))
			args[n++] = argv[i];
	args[n] = NULL;
	execvp("psql", args);
	fprintf(stderr, "rift psql: cannot run psql: %s (install postgresql-client)\n",
		strerror(errno));
	return 1;
}

static const struct command commands[] = {
	{ "create",
	  "NAME [--from BRANCH] [--ttl DURATION] [--max-size SIZE] [--new-password] "
	  "[--label KEY=VALUE]... [--output text|env|url]",
	  "create a branch (from main unless --from) and print how to connect;\n"
	  "--new-password gives the branch's login role a fresh random password in this branch\n"
	  "only, so its URL opens no other branch (rift url NAME prints it, as root)",
	  "  rift create feature-x\n  rift create pr-42 --from staging --ttl 2h --output env\n"
	  "  rift create ci-1234 --max-size 10G   (its writes past 10 GiB fail with ENOSPC)\n"
	  "  rift create ci-1234 --new-password --ttl 1h --output env\n"
	  "  rift create pr-42 --label pr=42 --label job=lint   (rift delete --label pr=42)",
	  run_create },
	{ "delete", "NAME | --label KEY=VALUE...",
	  "stop a branch's server and delete the branch, freeing its space; with --label,\n"
	  "every branch having all the labels given (a key alone: any value)",
	  "  rift delete feature-x\n  rift delete --label pr=42", run_delete },
	{ "list", "[--label KEY=VALUE]...",
	  "list branches (alias: ls); --label shows those having all the labels given",
	  "  rift list\n  rift list --label pr=42\n  rift list --json | jq .", run_list },
	{ "ls", "[--label KEY=VALUE]...", "list branches", "  rift ls", run_list },
	{ "status", "", "show riftd's state", "  rift status", run_status },
	{ "url", "NAME [--style name|options|sni]",
	  "print a connection URL that works as is with psql; --style says how it names the\n"
	  "branch: as the database (name, the default: dbname=<branch>), in startup options\n"
	  "(options: -c rift.branch=<branch>, the database keeps its own name), or as the first\n"
	  "label of the TLS server name (sni: <branch>.localhost, TLS required)",
	  "  psql \"$(rift url feature-x)\"\n  psql \"$(rift url feature-x --style options)\"",
	  run_url },
	{ "psql", "NAME [-- PSQL ARGS]", "run psql on a branch through the router",
	  "  rift psql feature-x -- -c 'select 1'", run_psql },
	{ "reset", "NAME", "bring a branch back to its parent's current state (same name)",
	  "  rift reset feature-x", run_reset },
	{ "start", "NAME", "start a branch's server now (connections start it anyway)",
	  "  rift start feature-x", run_start },
	{ "stop", "NAME", "stop a branch's server (its data stays)", "  rift stop feature-x",
	  run_stop },
};

static const struct command *find_command(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* Lists the branch commands for rift --help. */
void cmd_branch_summaries(FILE *out)
{
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, "ls") != 0)
			fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
}

int cmd_branch(const struct cli_opts *o, int argc, char **argv)
{
	const struct command *c = find_command(argv[0]);
	int i;

	if (c == NULL)
		return -1;
	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			printf("usage: rift %s %s\n\n%s.\n\nexamples:\n%s\n", c->name, c->args,
			       c->summary, c->examples);
			return 0;
		}
	}
	return c->run(o, argc, argv);
}
