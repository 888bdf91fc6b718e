/* remote.c — what the CLI does differently for a remote riftd (--host): URLs name the host the
 * CLI was given and come from riftd's API instead of the state directory. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void cli_remote_hostname(const struct cli_opts *o, char *out, size_t len)
{
	const char *h = strstr(o->host, "://"), *end;

	h = h ? h + 3 : o->host;
	if (h[0] == '[') { /* [v6]:port keeps its brackets, as URLs want them */
		end = strchr(h, ']');
		end = end ? end + 1 : h + strlen(h);
	} else {
		end = h + strcspn(h, ":/");
	}
	snprintf(out, len, "%.*s", (int)(end - h), h);
}

void cli_url_encode(const char *s, char *out, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t w = 0;

	for (; *s != '\0' && w + 4 < len; s++) {
		unsigned char ch = (unsigned char)*s;
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
			out[w++] = (char)ch;
		} else {
			out[w++] = '%';
			out[w++] = hex[ch >> 4];
			out[w++] = hex[ch & 15];
		}
	}
	out[w] = '\0';
}

int cli_remote_url(const struct cli_opts *o, const char *branch, const char *given, char *out,
		   size_t len, char *pw_out, size_t pwlen)
{
	char path[256], host[512], user[200] = "", pw[200] = "", auth[420] = "";
	const char *u, *p;
	json_t *doc;
	int rc;

	snprintf(path, sizeof(path), "/v1/branches/%.128s/connection", branch);
	rc = cli_call(o, "GET", path, NULL, &doc);
	if (rc != 0)
		return -1;
	u = json_string_value(json_object_get(doc, "user"));
	p = given ? given : json_string_value(json_object_get(doc, "password"));
	if (u != NULL)
		cli_url_encode(u, user, sizeof(user));
	if (p != NULL && pw_out == NULL)
		cli_url_encode(p, pw, sizeof(pw));
	if (pw_out != NULL)
		snprintf(pw_out, pwlen, "%s", p ? p : "");
	if (user[0] != '\0')
		snprintf(auth, sizeof(auth), "%s%s%s@", user, pw[0] ? ":" : "", pw);
	cli_remote_hostname(o, host, sizeof(host));
	snprintf(out, len, "postgres://%s%s:%lld/%s", auth, host,
		 (long long)json_integer_value(json_object_get(doc, "router_port")), branch);
	explicit_bzero(pw, sizeof(pw));
	json_decref(doc);
	return 0;
}
