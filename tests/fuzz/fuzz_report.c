/* fuzz_report.c — libFuzzer target: the parsers of what a branch's server writes, the DDL log
 * parser (server log lines) and the schema diff (two pg_dump texts, split at a NUL). */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rift/ddl_log.h"
#include "rift/diff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *nl, *mid;
	struct rift_ddl_log l;
	char *a, *b, *sql = NULL;
	json_t *doc;

	rift_ddl_log_init(&l, 0);
	for (; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		if (rift_ddl_log_feed(&l, p, (size_t)(nl - p)) != 0)
			break;
	}
	doc = rift_ddl_log_json(&l);
	json_decref(doc);
	rift_ddl_log_free(&l);

	/* the schema diff takes NUL-terminated texts (pg_dump output has no NUL) */
	mid = memchr(data, '\0', size);
	a = strndup((const char *)data, mid ? (size_t)(mid - (const char *)data) : size);
	b = strndup(mid ? mid + 1 : "", mid ? (size_t)(end - mid - 1) : 0);
	if (a != NULL && b != NULL) {
		doc = rift_diff_schema(a, strlen(a), b, strlen(b), true, &sql);
		json_decref(doc);
		free(sql);
	}
	free(a);
	free(b);
	return 0;
}
