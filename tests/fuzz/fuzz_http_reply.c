/* fuzz_http_reply.c — libFuzzer target: the CLI's parser of the local riftd's HTTP answers. */
#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_reply r;
	int eof;

	for (eof = 0; eof < 2; eof++) {
		if (http_reply_parse((const char *)data, size, eof, &r) != 0 || !r.complete)
			continue;
		/* a complete answer lies inside what was read, behind a head that fits */
		assert(r.status >= 200 && r.status <= 599);
		assert(r.body_off <= size && r.body_len <= size - r.body_off);
		assert(r.body_off <= HTTP_REPLY_MAX_HEAD);
	}
	return 0;
}
