/* http.c — the CLI's HTTP client (libcurl): riftd's unix socket locally, HTTPS with a bearer token
 * remotely (--host); bounded answers, one request per call. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rift/dbuf.h"

#define MAX_RESPONSE (64u << 20) /* rift diff --json with definitions and rows */

struct sink {
	struct dbuf b;
	bool too_big;
};

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;
	size_t add = size * n;

	if (s->b.len + add + 1 > MAX_RESPONSE) {
		s->too_big = true;
		return 0; /* curl stops with CURLE_WRITE_ERROR */
	}
	dbuf_put(&s->b, p, add);
	return s->b.oom ? 0 : add;
}

/* Sets what a remote call needs: the token header, and how the server's certificate is trusted. */
static int remote_setup(const struct cli_opts *o, CURL *c, struct curl_slist **hdrs)
{
	char auth[600];
	struct curl_slist *h;

	if (o->token != NULL && o->token[0] != '\0') {
		if ((size_t)snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o->token) >=
		    sizeof(auth))
			return -E2BIG;
		h = curl_slist_append(*hdrs, auth);
		explicit_bzero(auth, sizeof(auth));
		if (h == NULL)
			return -ENOMEM;
		*hdrs = h;
	}
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
	if (o->cacert != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, o->cacert);
	if (o->pin != NULL) {
		/* the pin is the trust: rift init's certificate is self-signed, named localhost */
		curl_easy_setopt(c, CURLOPT_PINNEDPUBLICKEY, o->pin);
		if (o->cacert == NULL) {
			curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
			curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
		}
	}
	return 0;
}

int cli_http(const struct cli_opts *o, const char *method, const char *path, const char *body,
	     struct cli_response *resp)
{
	struct curl_slist *hdrs = NULL;
	struct sink sink = { 0 };
	char url[2048], sock[4200], errbuf[CURL_ERROR_SIZE] = "";
	long status = 0, oserr = 0;
	CURLcode cc;
	CURL *c;
	int rc = 0;

	memset(resp, 0, sizeof(*resp));
	c = curl_easy_init();
	if (c == NULL)
		return -ENOMEM;
	if (o->host != NULL) {
		snprintf(url, sizeof(url), "%s%s", o->host, path);
		rc = remote_setup(o, c, &hdrs);
	} else {
		if ((size_t)snprintf(sock, sizeof(sock), "%s/run/riftd.sock", o->state) >=
		    sizeof(sock)) {
			rc = -ENAMETOOLONG;
			goto out;
		}
		curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
		snprintf(url, sizeof(url), "http://rift%s", path);
	}
	if (rc != 0)
		goto out;
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 600L); /* a create may wait for a start slot */
	if (body != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	} else if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
	}
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &oserr);
		snprintf(resp->error, sizeof(resp->error), "%s",
			 errbuf[0] ? errbuf : curl_easy_strerror(cc));
		if (sink.too_big)
			rc = -EFBIG;
		else if (cc == CURLE_PEER_FAILED_VERIFICATION ||
			 cc == CURLE_SSL_PINNEDPUBKEYNOTMATCH || cc == CURLE_SSL_CACERT_BADFILE)
			rc = -EKEYREJECTED;
		else if (cc == CURLE_COULDNT_CONNECT && oserr != 0)
			rc = -(int)oserr;
		else if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST)
			rc = -ECONNREFUSED;
		else
			rc = -EPROTO;
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	resp->status = (int)status;
	resp->body = sink.b.p ? sink.b.p : strdup("");
	sink.b.p = NULL;
	if (resp->body == NULL)
		rc = -ENOMEM;
out:
	free(sink.b.p);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	return rc;
}
