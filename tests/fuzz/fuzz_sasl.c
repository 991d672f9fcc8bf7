/* SASL server exchanges (PLAIN, LOGIN, the pass-through mechanisms' first
 * step) and base64: the first byte picks
 * the mechanism, the rest is split at newlines into client responses,
 * each given decoded and as base64 text. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/sbuf.h"
#include "common/xmalloc.h"
#include "proto/sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const mechs[] = {
		"PLAIN", "LOGIN", "plain", "CRAM-MD5",
		"XOAUTH2", "OAUTHBEARER", "SCRAM-SHA-1", "SCRAM-SHA-256",
	};
	if (size == 0)
		return 0;
	const struct sasl_mech *mech = sasl_mech_find(mechs[data[0] % 8], ~0u);
	/* any bytes as base64 text: decoding never writes past 3/4 of it */
	unsigned char *decoded = xmalloc(size);
	(void)base64_decode((const char *)data + 1, size - 1, decoded);
	free(decoded);
	if (mech == NULL)
		return 0;
	struct sasl_server s;
	struct sbuf challenge = SBUF_INIT;
	sasl_server_init(&s, mech);
	if ((data[0] & 0x80) != 0)
		sasl_server_initial_challenge(&s, &challenge);
	const uint8_t *p = data + 1, *end = data + size;
	while (p <= end) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = (size_t)((nl != NULL ? nl : end) - p);
		const char *error;
		sbuf_reset(&challenge);
		enum sasl_result r = sasl_server_step(&s, p, len, &challenge, &error);
		if (r != SASL_CONTINUE) {
			if (r == SASL_DONE) {
				struct sasl_credentials creds;
				sasl_server_take_credentials(&s, &creds);
				sasl_credentials_clear(&creds);
			}
			break;
		}
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	sasl_server_deinit(&s);
	sbuf_free(&challenge);
	return 0;
}
