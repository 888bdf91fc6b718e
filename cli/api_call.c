/* api_call.c — one call of riftd's API with the CLI's error reporting: how to start riftd, the
 * API's own message, JSON errors under --json. */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Reports an API call that failed, in the API's words or with how to start riftd. */
static int api_failed(const struct cli_opts *o, int rc, const struct cli_response *r)
{
	if (o->host != NULL && rc == -EKEYREJECTED) {
		fprintf(stderr,
			"rift: cannot verify the TLS certificate of riftd at %s: %s (give --cacert "
			"FILE with riftd's certificate or its CA, or --pin with the api_tls_pin "
			"that `rift status --json` prints on riftd's machine)\n",
			o->host, r->error);
		return 1;
	}
	if (o->host != NULL && rc == -ENOSYS) { /* libcurl missing: the message says what to do */
		fprintf(stderr, "rift: %s\n", r->error);
		return 1;
	}
	if (o->host != NULL && rc != 0) {
		fprintf(stderr,
			"rift: cannot reach riftd at %s: %s (is [api] listen set in its rift.conf, "
			"and the address and port reachable from here?)\n",
			o->host, r->error[0] ? r->error : strerror(-rc));
		return 1;
	}
	if (o->host != NULL && r->status == 401) {
		fprintf(stderr,
			"rift: riftd at %s refused the API token (%s): set RIFT_TOKEN, or "
			"--token-file FILE, to the token in riftd's [api] token_file\n",
			o->host, o->token && o->token[0] ? "wrong token" : "no token given");
		if (o->json)
			printf("%s\n", r->body ? r->body : "");
		return 1;
	}
	if (rc == -ENOENT || rc == -ECONNREFUSED) {
		fprintf(stderr,
			"rift: riftd is not running for %s (start it with `rift serve`, or `rift "
			"serve --background`; --state or RIFT_STATE pick another store)\n",
			o->state);
		return 1;
	}
	if (rc == -EACCES) {
		fprintf(stderr, "rift: no permission to use %s/run/riftd.sock (run as root)\n",
			o->state);
		return 1;
	}
	if (rc != 0) {
		fprintf(stderr, "rift: cannot talk to riftd at %s/run/riftd.sock: %s\n", o->state,
			r->error[0] ? r->error : strerror(-rc));
		return 1;
	}
	{
		json_t *doc = json_loads(r->body, 0, NULL);
		const char *msg =
		    json_string_value(json_object_get(json_object_get(doc, "error"), "message"));
		if (o->json && doc != NULL)
			printf("%s\n", r->body);
		fprintf(stderr, "rift: %s\n", msg ? msg : r->body);
		json_decref(doc);
	}
	return 1;
}

/* Calls the API; on success *doc (caller decrefs) holds the JSON answer. With pass_409 a
 * conflict is returned as 409 with nothing printed, for the caller to explain. */
static int call(const struct cli_opts *o, const char *method, const char *path, const char *body,
		json_t **doc, bool pass_409)
{
	struct cli_response r;
	int rc = cli_http(o, method, path, body, &r);

	*doc = NULL;
	if (pass_409 && rc == 0 && r.status == 409) {
		free(r.body);
		return 409;
	}
	if (rc != 0 || r.status < 200 || r.status >= 300) {
		rc = api_failed(o, rc, &r);
		free(r.body);
		return rc;
	}
	*doc = json_loads(r.body, 0, NULL);
	free(r.body);
	if (*doc == NULL) {
		fprintf(stderr, "rift: riftd answered something that is not JSON\n");
		return 1;
	}
	return 0;
}

int cli_call(const struct cli_opts *o, const char *method, const char *path, const char *body,
	     json_t **doc)
{
	return call(o, method, path, body, doc, false);
}

int cli_call_status(const struct cli_opts *o, const char *method, const char *path,
		    const char *body, json_t **doc)
{
	return call(o, method, path, body, doc, true);
}
