/* fuzz_http_reply.c — libFuzzer target: the CLI's parser of the local riftd's HTTP answers. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_reply r, inc;
	size_t n;
	int eof, rc;

	for (eof = 0; eof < 2; eof++) {
		memset(&r, 0, sizeof(r));
		rc = http_reply_parse((const char *)data, size, eof, &r);
		/* fed in 7-byte steps with its state carried over, the parse frames it the same */
		memset(&inc, 0, sizeof(inc));
		for (n = 0; n < size; n += 7)
			if (http_reply_parse((const char *)data, n, false, &inc) != 0 ||
			    inc.complete)
				break;
		if (n >= size && http_reply_parse((const char *)data, size, eof, &inc) != rc)
			__builtin_trap();
		if (rc != 0 || !r.complete)
			continue;
		/* a complete answer lies inside what was read, behind a head that fits (traps:
		 * the fuzz build has NDEBUG) */
		if (r.status < 200 || r.status > 599 || r.body_off > size ||
		    r.body_len > size - r.body_off || r.body_off > HTTP_REPLY_MAX_HEAD)
			__builtin_trap();
		if (n >= size &&
		    (!inc.complete || inc.body_off != r.body_off || inc.body_len != r.body_len))
			__builtin_trap();
	}
	return 0;
}
