/* SMTP/LMTP parsing: command paths and MAIL parameters as a client sends
 * them, and reply lines and a whole LMTP backend conversation as a
 * backend sends them. The first byte picks the part. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/sbuf.h"
#include "common/xmalloc.h"
#include "proto/lmtp_client.h"
#include "proto/smtp_command.h"
#include "proto/smtp_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_lmtp_backend(const uint8_t *data, size_t size, uint8_t flags)
{
	struct lmtp_client_params p = {
		.hostname = "loft.example", .forward = (flags & 1) != 0,
		.client_port = 25000, .session_id = "0011", .ttl = 5,
	};
	(void)ipaddr_parse("192.0.2.1", &p.client_ip);
	struct lmtp_client c;
	struct sbuf in = SBUF_INIT, out = SBUF_INIT;
	lmtp_client_init(&c, &p);
	sbuf_append(&in, data, size);
	unsigned int rcpts = 0;
	for (int i = 0; i < 1000 && sbuf_len(&in) > 0; i++) {
		size_t consumed;
		enum lmtp_client_event ev = lmtp_client_feed(&c, (const unsigned char *)sbuf_data(&in),
							     sbuf_len(&in), &consumed, &out);
		sbuf_consume(&in, consumed);
		sbuf_reset(&out);
		if (ev == LMTP_EV_FAIL || (ev == LMTP_EV_NONE && consumed == 0))
			break;
		/* walk the transaction on as the session would */
		if (ev == LMTP_EV_READY)
			lmtp_client_mail(&c, "a@example", (flags & 2) != 0 ? "8BITMIME" : NULL, &out);
		else if (ev == LMTP_EV_REPLY && rcpts < 3)
			lmtp_client_rcpt(&c, rcpts++ == 0 ? "b@example" : "c@example", &out);
		else if (ev == LMTP_EV_REPLY)
			lmtp_client_data(&c, rcpts, &out);
	}
	lmtp_client_deinit(&c);
	sbuf_free(&in);
	sbuf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	uint8_t flags = data[0];
	data++;
	size--;
	if ((flags & 0x80) != 0) {
		fuzz_lmtp_backend(data, size, flags);
		return 0;
	}
	char *s = xmalloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	struct smtp_reply_line r;
	(void)smtp_reply_parse(s, size, &r);
	const char *ep;
	size_t elen;
	(void)smtp_ehlo_has(s, size, "XCLIENT", &ep, &elen);
	(void)smtp_words_have(s, size, "ADDR");
	char *path, *params;
	if (smtp_command_path(s, (flags & 1) != 0 ? "TO:" : "FROM:", &path, &params) == 0) {
		struct smtp_mail_params mp;
		(void)smtp_command_mail_params(params, &mp);
	}
	free(s);
	return 0;
}
