/* http.c — the CLI's one way to call riftd's API: the local riftd's unix socket, or a remote
 * riftd over HTTPS when --host is given. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cli_http(const struct cli_opts *o, const char *method, const char *path, const char *body,
	     struct cli_response *resp)
{
	char sock[4200];

	if (o->host != NULL)
		return cli_http_remote(o, method, path, body, resp);
	memset(resp, 0, sizeof(*resp));
	if ((size_t)snprintf(sock, sizeof(sock), "%s/run/riftd.sock", o->state) >= sizeof(sock)) {
		snprintf(resp->error, sizeof(resp->error),
			 "the state directory's path is too long");
		return -ENAMETOOLONG;
	}
	return cli_http_local(sock, method, path, body, resp);
}
