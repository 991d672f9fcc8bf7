/* A libFuzzer harness for LMTP's server side (proto/lmtp_front), what the
 * MTA sends. The first byte chooses whether the client is trusted,
 * whether input arrives whole or byte by byte, which recipients the
 * owner accepts, how many recipients it holds before answering (a
 * pipelined batch) and the limits; the rest is what the client sends.
 * Every event is answered as lmtp_session.c would. Besides memory errors
 * it checks that input left unconsumed stays bounded (a line that never
 * ends must not pile up), that a recipient comes inside a transaction,
 * that a refusal is handed over only behind recipients held, and that a
 * message comes with recipients, none held, within the size limit. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/sbuf.h"
#include "proto/lmtp_front.h"

/* the output is dropped once it grows past this: bounded memory */
#define FUZZ_OUT_MAX 65536
#define FUZZ_MAX_LINE 64
#define FUZZ_MAX_HELD 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The owner's recipients not answered yet, in order. */
struct fuzz_owner {
	uint8_t flags;
	unsigned int nrcpt, batch, nheld;
	char *held[FUZZ_MAX_HELD];	/* the reply each gets */
	bool held_ok[FUZZ_MAX_HELD];
};

static void fuzz_lmtp_answer_held(struct fuzz_owner *o, struct lmtp_front *f,
				  struct sbuf *out)
{
	for (unsigned int i = 0; i < o->nheld; i++) {
		lmtp_front_rcpt_done(f, o->held[i], o->held_ok[i], out);
		free(o->held[i]);
	}
	o->nheld = 0;
	if (f->asking != 0)
		abort();
}

/* Answers one event; returns 0 once the front asked to close. */
static int fuzz_lmtp_event(struct lmtp_front *f, enum lmtp_front_event ev,
			   struct fuzz_owner *o, struct sbuf *out)
{
	switch (ev) {
	case LMTP_FRONT_EV_NONE:
	case LMTP_FRONT_EV_RESET:
	case LMTP_FRONT_EV_XCLIENT:
		return 1;
	case LMTP_FRONT_EV_RCPT:
		if ((f->rcpt == NULL) == (f->rcpt_refusal == NULL) || f->mail_from == NULL ||
		    (f->rcpt_refusal != NULL && o->nheld == 0) || f->asking != o->nheld + 1)
			abort();
		if (f->rcpt_refusal != NULL) {
			o->held[o->nheld] = f->rcpt_refusal;
			o->held_ok[o->nheld++] = false;
			f->rcpt_refusal = NULL;
		} else {
			/* accept recipients by the pattern in bits 4-6 */
			bool ok = ((o->flags >> 4) & (1u << (o->nrcpt++ % 3))) != 0;
			o->held[o->nheld] = strdup(ok ? "250 2.1.5 OK" :
						   "550 5.1.1 <x> User doesn't exist\r\n");
			o->held_ok[o->nheld++] = ok;
			free(f->rcpt);
			f->rcpt = NULL;
		}
		if (o->nheld == o->batch)
			fuzz_lmtp_answer_held(o, f, out);
		return 1;
	case LMTP_FRONT_EV_MESSAGE:
		if (f->accepted == 0 || f->body_size > f->params.max_message_size ||
		    o->nheld != 0)
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
	/* recipients held before answering: 1 to 4, by bits 1 and 3 */
	struct fuzz_owner o = { .flags = flags, .batch = 1 + ((flags >> 1) & 1) +
				2 * ((flags >> 3) & 1) };
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
			open = fuzz_lmtp_event(&f, ev, &o, &out);
			if (sbuf_len(&out) > FUZZ_OUT_MAX)
				sbuf_reset(&out);
			if (!open || sbuf_len(&in) == 0)
				break;
			if (ev == LMTP_FRONT_EV_NONE && o.nheld > 0) {
				/* the answers come: what waited goes on */
				fuzz_lmtp_answer_held(&o, &f, &out);
				continue;
			}
			if (ev == LMTP_FRONT_EV_NONE) {
				/* what waits is at most a line, or a body line's start */
				if (sbuf_len(&in) > FUZZ_MAX_LINE + 2)
					abort();
				break;
			}
		}
	}
	for (unsigned int i = 0; i < o.nheld; i++)
		free(o.held[i]);
	lmtp_front_deinit(&f);
	sbuf_free(&in);
	sbuf_free(&out);
	return 0;
}
