/* State shared by every protocol's backend side. */
#include "proto/back.h"

#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/xmalloc.h"
#include "proto/line.h"

void back_init(struct back *b, const struct back_ops *ops,
	       const struct back_params *params)
{
	memset(b, 0, sizeof(*b));
	b->ops = ops;
	b->params = *params;
}

void back_deinit(struct back *b)
{
	free(b->reply);
	b->reply = NULL;
	sbuf_free(&b->challenge);
}

long back_next_line(const unsigned char *buf, size_t len, size_t *consumed_r)
{
	return line_next(buf, len, BACK_MAX_LINE, consumed_r);
}

enum back_event back_feed_lines(struct back *b, const unsigned char *buf, size_t len,
				size_t *consumed_r, struct sbuf *out)
{
	enum back_event ev = BACK_EV_NONE;
	size_t off = 0;

	while (ev == BACK_EV_NONE && !b->done) {
		size_t consumed;
		long n = back_next_line(buf + off, len - off, &consumed);
		if (n == -1)
			break;
		if (n == -2) {
			b->fail = BACK_FAIL_TEMP;
			b->error = "backend line too long";
			ev = BACK_EV_FAIL;
			break;
		}
		ev = b->ops->line(b, (const char *)buf + off, (size_t)n, out);
		off += consumed;
	}
	if (ev == BACK_EV_OK || ev == BACK_EV_FAIL)
		b->done = true;
	*consumed_r = off;
	return ev;
}

/* The SASL PLAIN message for params' user and password, base64. */
static void back_append_plain(const struct back_params *p, struct sbuf *out)
{
	/* authzid NUL authcid NUL password: a master logs in as the user */
	const char *authzid = p->master_user != NULL ? p->user : "";
	const char *authcid = p->master_user != NULL ? p->master_user : p->user;
	size_t zlen = strlen(authzid), ulen = strlen(authcid), plen = strlen(p->password);
	size_t len = zlen + 1 + ulen + 1 + plen;
	char *msg = xmalloc(len);
	memcpy(msg, authzid, zlen);
	msg[zlen] = '\0';
	memcpy(msg + zlen + 1, authcid, ulen);
	msg[zlen + 1 + ulen] = '\0';
	memcpy(msg + zlen + 2 + ulen, p->password, plen);
	base64_encode(out, msg, len);
	explicit_bzero(msg, len);
	free(msg);
}

const char *back_sasl_mech(const struct back_params *p)
{
	return p->sasl_mech != NULL ? p->sasl_mech : "PLAIN";
}

void back_append_sasl_ir(const struct back_params *p, struct sbuf *out)
{
	if (p->sasl_mech == NULL)
		back_append_plain(p, out);
	else
		base64_encode(out, p->sasl_ir, p->sasl_ir_len);
}

enum back_event back_sasl_challenge(struct back *b, const char *text, size_t len)
{
	if (b->params.sasl_mech == NULL) {
		b->fail = BACK_FAIL_TEMP;
		b->error = "unexpected authentication challenge";
		return BACK_EV_FAIL;
	}
	sbuf_reset(&b->challenge);
	sbuf_append(&b->challenge, text, len);
	return BACK_EV_CHALLENGE;
}

void back_sasl_respond(struct back *b, const char *b64, size_t len, struct sbuf *out)
{
	if (b->ops->sasl_respond != NULL) {
		b->ops->sasl_respond(b, b64, len, out);
		return;
	}
	sbuf_append(out, b64, len);
	sbuf_appends(out, "\r\n");
}
