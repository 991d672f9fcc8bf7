/* A libFuzzer harness for LMTP's server side (proto/lmtp_front), what the
 * MTA sends. The first byte chooses whether the client is trusted,
 * whether input arrives whole or byte by byte, which recipients the
 * owner accepts and the limits; the rest is what the client sends. Every
 * event is answered as lmtp_session.c would. Besides memory errors it
 * checks that input left unconsumed stays bounded (a line that never
 * ends must not pile up), that a recipient comes inside a transaction
 * and that a message comes with recipients and within the size limit. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/sbuf.h"
#include "proto/lmtp_front.h"

/* the output is dropped once it grows past this: bounded memory */
#define FUZZ_OUT_MAX 65536
#define FUZZ_MAX_LINE 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Answers one event; returns 0 once the front asked to close. */
static int fuzz_lmtp_event(struct lmtp_front *f, enum lmtp_front_event ev, uint8_t flags,
			   unsigned int *nrcpt, struct sbuf *out)
{
	switch (ev) {
	case LMTP_FRONT_EV_NONE:
	case LMTP_FRONT_EV_RESET:
	case LMTP_FRONT_EV_XCLIENT:
		return 1;
	case LMTP_FRONT_EV_RCPT:
		if (f->rcpt == NULL || f->mail_from == NULL)
			abort();
		/* accept recipients by the pattern in bits 4-6 */
		if (((flags >> 4) & (1u << ((*nrcpt)++ % 3))) != 0)
			lmtp_front_rcpt_done(f, "250 2.1.5 OK", true, out);
		else
			lmtp_front_rcpt_done(f, "550 5.1.1 <x> User doesn't exist\r\n", false, out);
		return 1;
	case LMTP_FRONT_EV_MESSAGE:
		if (f->accepted == 0 || f->body_size > f->params.max_message_size)
			abort();
		for (unsigned int i = 0; i < f->accepted; i++)
			sbuf_appends(out, "250 2.0.0 Saved\r\n");
		lmtp_front_data_done(f);
		return 1;
	case LMTP_FRONT_EV_CLOSE:
		return 0;
	}
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	uint8_t flags = data[0];
	const struct lmtp_front_params params = {
		.hostname = "fuzz.example",
		.greeting = "fuzz ready.",
		.max_line = FUZZ_MAX_LINE,
		.max_message_size = (flags & 4) != 0 ? 16 : 4096,
		.trusted = (flags & 1) != 0,
	};
	struct lmtp_front f;
	struct sbuf in = SBUF_INIT, out = SBUF_INIT;
	unsigned int nrcpt = 0;
	lmtp_front_init(&f, &params);
	lmtp_front_greet(&f, &out);
	/* whole, or one byte at a time: the same machine either way */
	size_t step = (flags & 0x80) != 0 ? 1 : size;
	int open = 1;
	for (size_t off = 1; off < size && open; off += step) {
		size_t n = size - off < step ? size - off : step;
		sbuf_append(&in, data + off, n);
		for (;;) {
			size_t consumed;
			enum lmtp_front_event ev = lmtp_front_feed(&f,
				(unsigned char *)sbuf_mdata(&in), sbuf_len(&in), &consumed, &out);
			sbuf_consume(&in, consumed);
			open = fuzz_lmtp_event(&f, ev, flags, &nrcpt, &out);
			if (sbuf_len(&out) > FUZZ_OUT_MAX)
				sbuf_reset(&out);
			if (!open || sbuf_len(&in) == 0)
				break;
			if (ev == LMTP_FRONT_EV_NONE) {
				/* what waits is at most a line, or a body line's start */
				if (sbuf_len(&in) > FUZZ_MAX_LINE + 2)
					abort();
				break;
			}
		}
	}
	lmtp_front_deinit(&f);
	sbuf_free(&in);
	sbuf_free(&out);
	return 0;
}
