/* A libFuzzer harness for a protocol's back (loftd logging in to a
 * backend), included by one file per protocol that defines FUZZ_BACK_OPS.
 * The first byte chooses the login's parameters (0x40: a pass-through
 * SCRAM login, whose every challenge gets an answer) and whole or
 * byte-wise input; the rest is what the backend sends. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/sbuf.h"
#include "proto/back.h"

#define FUZZ_OUT_MAX 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	uint8_t flags = data[0];
	struct back_params p = {
		.user = "user@example.com",
		.password = "pa ss\"word",
		.use_sasl = (flags & 1) != 0,
		.starttls = (flags & 2) != 0,
		.tls_active = (flags & 4) != 0,
		.forward = (flags & 8) != 0,
		.client_port = 50000,
		.local_port = 143,
		.session_id = "00112233aabbccdd",
		.client_id = "\"name\" \"fuzz\"",
		.helo = "client.example",
		.hostname = "loft.example",
		.ttl = (flags >> 4) & 7,
	};
	if ((flags & 0x40) != 0) {
		p.sasl_mech = "SCRAM-SHA-256";
		p.sasl_ir = (const unsigned char *)"n,,n=user,r=abc";
		p.sasl_ir_len = 15;
	}
	(void)ipaddr_parse("192.0.2.7", &p.client_ip);
	(void)ipaddr_parse("2001:db8::1", &p.local_ip);
	struct sbuf in = SBUF_INIT, out = SBUF_INIT;
	struct back *b = FUZZ_BACK_OPS.create(&p);
	size_t step = (flags & 0x80) != 0 ? 1 : size;
	int done = 0;
	for (size_t off = 1; off < size && !done; off += step) {
		size_t n = size - off < step ? size - off : step;
		sbuf_append(&in, data + off, n);
		for (;;) {
			size_t consumed;
			enum back_event ev = b->ops->feed(b, (const unsigned char *)sbuf_data(&in),
							  sbuf_len(&in), &consumed, &out);
			sbuf_consume(&in, consumed);
			if (ev == BACK_EV_STARTTLS && b->ops->tls_started != NULL)
				b->ops->tls_started(b, &out);
			if (ev == BACK_EV_CHALLENGE)
				back_sasl_respond(b, "eA==", 4, &out);
			done = ev == BACK_EV_OK || ev == BACK_EV_FAIL;
			if (sbuf_len(&out) > FUZZ_OUT_MAX)
				sbuf_reset(&out);
			if (done || (ev == BACK_EV_NONE && consumed == 0) || sbuf_len(&in) == 0)
				break;
		}
	}
	b->ops->destroy(b);
	sbuf_free(&in);
	sbuf_free(&out);
	return 0;
}
