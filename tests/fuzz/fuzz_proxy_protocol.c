/* PROXY protocol v1 and v2 headers: every prefix of the input must give
 * MORE, or the same verdict as the whole (a header arriving in pieces). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "proto/proxy_protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_protocol_header h;
	size_t len = 0;
	const char *error;
	enum parse_result whole = proxy_protocol_parse(data, size, &h, &len, &error);
	if (whole == PARSE_OK && (len == 0 || len > size))
		abort();
	for (size_t n = 0; n < size && n <= PROXY_PROTOCOL_MAX; n++) {
		size_t plen = 0;
		enum parse_result r = proxy_protocol_parse(data, n, &h, &plen, &error);
		/* a complete header is complete in every longer input */
		if (r == PARSE_OK && (whole != PARSE_OK || plen != len))
			abort();
	}
	return 0;
}
