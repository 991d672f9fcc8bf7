/* A libFuzzer harness for a protocol's front (the client side before
 * login), included by one file per protocol that defines FUZZ_FRONT_OPS.
 * The first byte chooses the connection's facts, whether input arrives
 * whole or byte by byte, and how a login attempt ends; the rest is what
 * the client sends. Every event is answered as the session would (a
 * pass-through login gets one relayed challenge when flag 0x20 says). */
#include <stddef.h>
#include <stdint.h>

#include "common/sbuf.h"
#include "proto/front.h"

/* the output is dropped once it grows past this: bounded memory */
#define FUZZ_OUT_MAX 65536

static const struct front_params fuzz_front_params = {
	.greeting = "fuzz ready.",
	.max_line = 1024,
	.max_literal = 1024,
	.max_bad_commands = 3,
	.disable_plaintext_auth = true,
	.passthrough_mechs = ~0u,	/* every pass-through mechanism */
	.hostname = "fuzz.example",
	.sieve_capability = "fileinto vacation",
	.notify_capability = "mailto",
};

/* Returns false once the front asked to close. */
static int fuzz_front_event(struct front *f, enum front_event ev, uint8_t flags,
			    struct sbuf *out)
{
	static const enum front_auth_status statuses[] = {
		FRONT_AUTH_FAILED, FRONT_AUTH_FAILED_REASON, FRONT_AUTH_TEMPFAIL,
		FRONT_AUTH_BACKEND_REPLY, FRONT_AUTH_LIMIT,
	};
	switch (ev) {
	case FRONT_EV_NONE:
		return 1;
	case FRONT_EV_STARTTLS:
		f->tls_active = 1;
		if (f->ops->tls_started != NULL)
			f->ops->tls_started(f, out);
		return 1;
	case FRONT_EV_AUTH:
		if (f->login.mech != NULL && sasl_mech_is_passthrough(f->login.mech) &&
		    (flags & 0x20) != 0) {
			/* the backend's challenge, relayed */
			front_login_clear(f);
			(void)front_sasl_relay(f, "eA==", 4, out);
			return 1;
		}
		front_login_clear(f);
		if ((flags & 0x40) != 0) {
			f->ops->logged_in(f, "[CAPABILITY IMAP4rev1] Logged in", out);
			return 0;
		}
		f->ops->auth_failed(f, statuses[(flags >> 3) % 5], "[ALERT] no\r\nreally", out);
		return 1;
	case FRONT_EV_SASL_RESPONSE:
		f->ops->auth_failed(f, FRONT_AUTH_FAILED, NULL, out);
		return 1;
	case FRONT_EV_SASL_ABORT:
		return 1;
	case FRONT_EV_CLOSE:
		return 0;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	uint8_t flags = data[0];
	struct sbuf in = SBUF_INIT, out = SBUF_INIT;
	struct front *f = FUZZ_FRONT_OPS.create(&fuzz_front_params);
	f->trusted = (flags & 1) != 0;
	f->secured_network = (flags & 2) != 0;
	f->starttls_available = (flags & 4) != 0;
	FUZZ_FRONT_OPS.greet(f, &out);
	/* whole, or one byte at a time (the same parser state machine must
	 * give the same answers either way) */
	size_t step = (flags & 0x80) != 0 ? 1 : size;
	int open = 1;
	for (size_t off = 1; off < size && open; off += step) {
		size_t n = size - off < step ? size - off : step;
		sbuf_append(&in, data + off, n);
		for (;;) {
			size_t consumed;
			enum front_event ev = f->ops->feed(f, (unsigned char *)sbuf_mdata(&in),
							   sbuf_len(&in), &consumed, &out);
			sbuf_consume(&in, consumed);
			open = fuzz_front_event(f, ev, flags, &out);
			if (sbuf_len(&out) > FUZZ_OUT_MAX)
				sbuf_reset(&out);
			if (!open || (ev == FRONT_EV_NONE && consumed == 0) || sbuf_len(&in) == 0)
				break;
		}
	}
	f->ops->destroy(f);
	sbuf_free(&in);
	sbuf_free(&out);
	return 0;
}
