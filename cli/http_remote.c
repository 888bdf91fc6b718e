/* http_remote.c — the CLI's HTTPS client for a remote riftd (--host): libcurl, loaded only then,
 * a bearer token, the server's certificate pinned or checked; bounded answers. */
#include <assert.h>
#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "http_reply.h"
#include "rift/dbuf.h"

#define MAX_RESPONSE HTTP_REPLY_MAX_BODY
#define LIBCURL      "libcurl.so.4"

/* The libcurl functions rift calls, looked up when a remote call is made: the local riftd is
 * reached without libcurl, and loading it (and the libraries it needs) on every run of rift cost
 * more than the local request itself. */
static struct {
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_perform)(CURL *);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	const char *(*easy_strerror)(CURLcode);
	void (*easy_cleanup)(CURL *);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
} curl;

/* Loads libcurl once. 0, or -ENOSYS with err saying what to install. */
static int curl_load(char *err, size_t errlen)
{
	static bool loaded;
	void *h;

	if (loaded)
		return 0;
	h = dlopen(LIBCURL, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		snprintf(
		    err, errlen,
		    "a remote riftd (--host) needs libcurl, and %s cannot be loaded (%s): install "
		    "it (Debian: apt-get install libcurl4)",
		    LIBCURL, dlerror());
		return -ENOSYS;
	}
#define LOAD(field, sym)                                                                           \
	if ((*(void **)&curl.field = dlsym(h, sym)) == NULL) {                                     \
		snprintf(err, errlen, "%s lacks %s: is it libcurl?", LIBCURL, sym);                \
		dlclose(h);                                                                        \
		return -ENOSYS;                                                                    \
	}
	LOAD(easy_init, "curl_easy_init");
	LOAD(easy_setopt, "curl_easy_setopt");
	LOAD(easy_perform, "curl_easy_perform");
	LOAD(easy_getinfo, "curl_easy_getinfo");
	LOAD(easy_strerror, "curl_easy_strerror");
	LOAD(easy_cleanup, "curl_easy_cleanup");
	LOAD(slist_append, "curl_slist_append");
	LOAD(slist_free_all, "curl_slist_free_all");
#undef LOAD
	loaded = true; /* the handle stays open: the functions are used until rift exits */
	return 0;
}

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

/* Sets what a remote call needs: the token header, and how the server's certificate is trusted.
 * 0, or -errno with err saying what is missing. */
static int remote_setup(const struct cli_opts *o, CURL *c, struct curl_slist **hdrs, char *err,
			size_t errlen)
{
	char auth[600];
	struct curl_slist *h;

	if (o->token != NULL && o->token[0] != '\0') {
		if ((size_t)snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o->token) >=
		    sizeof(auth)) {
			snprintf(err, errlen, "the API token is too long");
			return -E2BIG;
		}
		h = curl.slist_append(*hdrs, auth);
		explicit_bzero(auth, sizeof(auth));
		if (h == NULL)
			return -ENOMEM;
		*hdrs = h;
	}
	if (curl.easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http") != CURLE_OK) {
		snprintf(err, errlen, "%s is older than 7.85, which rift needs", LIBCURL);
		return -ENOSYS;
	}
	if (o->cacert != NULL && curl.easy_setopt(c, CURLOPT_CAINFO, o->cacert) != CURLE_OK) {
		snprintf(err, errlen, "%s cannot take --cacert %s", LIBCURL, o->cacert);
		return -ENOSYS;
	}
	if (o->pin != NULL) {
		/* the pin is the trust: rift init's certificate is self-signed, named localhost;
		 * the usual checks go off only once libcurl took the pin */
		if (curl.easy_setopt(c, CURLOPT_PINNEDPUBLICKEY, o->pin) != CURLE_OK) {
			snprintf(
			    err, errlen,
			    "%s cannot pin a public key (--pin): its TLS library lacks it; give "
			    "--cacert instead",
			    LIBCURL);
			return -ENOSYS;
		}
		if (o->cacert == NULL) {
			curl.easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
			curl.easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
		}
	}
	return 0;
}

int cli_http_remote(const struct cli_opts *o, const char *method, const char *path,
		    const char *body, struct cli_response *resp)
{
	struct curl_slist *hdrs = NULL;
	struct sink sink = { 0 };
	char url[2048], errbuf[CURL_ERROR_SIZE] = "";
	long status = 0, oserr = 0;
	CURLcode cc;
	CURL *c;
	int rc = 0;

	memset(resp, 0, sizeof(*resp));
	assert(o->host != NULL);
	if ((rc = curl_load(resp->error, sizeof(resp->error))) != 0)
		return rc;
	c = curl.easy_init();
	if (c == NULL)
		return -ENOMEM;
	snprintf(url, sizeof(url), "%s%s", o->host, path);
	if ((rc = remote_setup(o, c, &hdrs, resp->error, sizeof(resp->error))) != 0)
		goto out;
	hdrs = curl.slist_append(hdrs, "Content-Type: application/json");
	curl.easy_setopt(c, CURLOPT_URL, url);
	curl.easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl.easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl.easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl.easy_setopt(c, CURLOPT_WRITEDATA, &sink);
	curl.easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl.easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	curl.easy_setopt(c, CURLOPT_TIMEOUT, 600L); /* a create may wait for a start slot */
	if (body != NULL) {
		curl.easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl.easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	} else if (strcmp(method, "GET") != 0) {
		curl.easy_setopt(c, CURLOPT_POSTFIELDS, "");
		curl.easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
	}
	cc = curl.easy_perform(c);
	if (cc != CURLE_OK) {
		curl.easy_getinfo(c, CURLINFO_OS_ERRNO, &oserr);
		snprintf(resp->error, sizeof(resp->error), "%s",
			 errbuf[0] ? errbuf : curl.easy_strerror(cc));
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
	curl.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	resp->status = (int)status;
	resp->body = sink.b.p ? sink.b.p : strdup("");
	sink.b.p = NULL;
	if (resp->body == NULL)
		rc = -ENOMEM;
out:
	free(sink.b.p);
	curl.slist_free_all(hdrs);
	curl.easy_cleanup(c);
	return rc;
}
