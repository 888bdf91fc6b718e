/* web_assets.h — the dashboard's HTML, CSS and JavaScript, embedded in riftd at build time. */
#ifndef RIFT_WEB_ASSETS_H
#define RIFT_WEB_ASSETS_H

#include <stddef.h>

struct rift_web_asset {
	const char *path; /* "/index.html" */
	const char *type; /* Content-Type */
	const unsigned char *data;
	size_t len;
};

extern const struct rift_web_asset rift_web_assets[];
extern const size_t rift_web_nassets;

#endif
