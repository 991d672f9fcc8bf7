/* LMTP client state machine. */
#include "proto/lmtp_client.h"

#include <stdlib.h>
#include <string.h>

#include "proto/back.h"
#include "proto/smtp_reply.h"

enum lmtp_client_state {
	LMTP_C_GREETING,	/* 220 */
	LMTP_C_LHLO,		/* 250 extensions */
	LMTP_C_XCLIENT,		/* 220: the session starts over */
	LMTP_C_READY,		/* no command outstanding */
	LMTP_C_COMMAND,		/* MAIL or RCPT sent (`pending` of them) */
	LMTP_C_DATA,		/* DATA sent: 354 */
	LMTP_C_BODY,		/* body sent: per-recipient replies */
	LMTP_C_DONE,
};

void lmtp_client_init(struct lmtp_client *c, const struct lmtp_client_params *params)
{
	memset(c, 0, sizeof(*c));
	c->params = *params;
	c->state = LMTP_C_GREETING;
}

void lmtp_client_deinit(struct lmtp_client *c)
{
	sbuf_free(&c->reply);
}

static enum lmtp_client_event lmtp_client_fail(struct lmtp_client *c, const char *error)
{
	c->error = error;
	c->state = LMTP_C_DONE;
	return LMTP_EV_FAIL;
}

static void lmtp_client_lhlo(struct lmtp_client *c, struct sbuf *out)
{
	sbuf_appendf(out, "LHLO %s\r\n", c->params.hostname);
	c->xclient = false;
	c->eightbitmime = false;
	c->pipelining = false;
	c->state = LMTP_C_LHLO;
}

/* "XCLIENT ADDR PORT ..." among the extensions: all four are sent;
 * "8BITMIME": BODY= may be passed on */
static void lmtp_client_extension(struct lmtp_client *c, const char *text, size_t len)
{
	const char *params;
	size_t plen;
	if (smtp_ehlo_has(text, len, "XCLIENT", &params, &plen) &&
	    smtp_words_have(params, plen, "ADDR"))
		c->xclient = true;
	if (smtp_ehlo_has(text, len, "8BITMIME", &params, &plen))
		c->eightbitmime = true;
	if (smtp_ehlo_has(text, len, "PIPELINING", &params, &plen))
		c->pipelining = true;
}

static enum lmtp_client_event lmtp_client_reply(struct lmtp_client *c, int code,
						struct sbuf *out)
{
	const struct lmtp_client_params *p = &c->params;
	c->code = code;
	if (c->rset_replies > 0 && c->state == LMTP_C_COMMAND) {
		/* the RSET sent ahead of a MAIL: its reply is no event */
		c->rset_replies--;
		if (code / 100 != 2)
			return lmtp_client_fail(c, "RSET failed");
		return LMTP_EV_NONE;
	}
	switch (c->state) {
	case LMTP_C_GREETING:
	case LMTP_C_XCLIENT:
		if (code != 220)
			return lmtp_client_fail(c, c->state == LMTP_C_GREETING ?
						"Invalid banner" : "XCLIENT failed");
		lmtp_client_lhlo(c, out);
		return LMTP_EV_NONE;
	case LMTP_C_LHLO:
		if (code != 250)
			return lmtp_client_fail(c, "LHLO failed");
		if (c->xclient && p->forward && !c->xclient_done) {
			char ip[IPADDR_STRLEN];
			sbuf_appendf(out, "XCLIENT ADDR=%s PORT=%u SESSION=%s TTL=%u\r\n",
				     ipaddr_to_str(&p->client_ip, ip), p->client_port,
				     p->session_id, p->ttl - 1);
			c->xclient_done = true;
			c->state = LMTP_C_XCLIENT;
			return LMTP_EV_NONE;
		}
		c->state = LMTP_C_READY;
		return LMTP_EV_READY;
	case LMTP_C_COMMAND:
		if (--c->pending == 0)
			c->state = LMTP_C_READY;
		return LMTP_EV_REPLY;
	case LMTP_C_DATA:
		if (code != 354) {
			/* every recipient gets this refusal */
			c->state = LMTP_C_BODY;
			c->data_replies = 0;
			return LMTP_EV_DATA_REPLY;
		}
		c->state = LMTP_C_BODY;
		return LMTP_EV_DATA_GO;
	case LMTP_C_BODY:
		if (c->data_replies > 0 && --c->data_replies == 0) {
			c->state = LMTP_C_READY;
			c->in_transaction = false;
		}
		return LMTP_EV_DATA_REPLY;
	default:
		break;
	}
	return lmtp_client_fail(c, "unexpected reply from backend");
}

enum lmtp_client_event lmtp_client_feed(struct lmtp_client *c, const unsigned char *buf,
					size_t len, size_t *consumed_r, struct sbuf *out)
{
	enum lmtp_client_event ev = LMTP_EV_NONE;
	size_t off = 0;

	while (ev == LMTP_EV_NONE && c->state != LMTP_C_DONE) {
		size_t consumed;
		long n = back_next_line(buf + off, len - off, &consumed);
		if (n == -1)
			break;
		if (n == -2) {
			ev = lmtp_client_fail(c, "backend line too long");
			break;
		}
		const char *line = (const char *)buf + off;
		struct smtp_reply_line r;
		off += consumed;
		if (smtp_reply_parse(line, (size_t)n, &r) < 0) {
			ev = lmtp_client_fail(c, c->state == LMTP_C_GREETING ? "Invalid banner" :
					      "invalid reply from backend");
			break;
		}
		if (c->state == LMTP_C_LHLO)
			lmtp_client_extension(c, r.text, r.len);
		sbuf_reset(&c->reply);
		sbuf_append(&c->reply, line, (size_t)n);
		if (r.last)
			ev = lmtp_client_reply(c, r.code, out);
	}
	*consumed_r = off;
	return ev;
}

bool lmtp_client_owes_reply(const struct lmtp_client *c)
{
	return c->state != LMTP_C_READY && c->state != LMTP_C_DONE;
}

bool lmtp_client_is_idle(const struct lmtp_client *c)
{
	return c->state == LMTP_C_READY;
}

void lmtp_client_mail(struct lmtp_client *c, const char *from, const char *body,
		      struct sbuf *out)
{
	if (c->in_transaction) {
		/* the last MAIL's transaction was never delivered */
		sbuf_appends(out, "RSET\r\n");
		c->rset_replies++;
	}
	c->in_transaction = true;
	if (body != NULL && c->eightbitmime)
		sbuf_appendf(out, "MAIL FROM:<%s> BODY=%s\r\n", from, body);
	else
		sbuf_appendf(out, "MAIL FROM:<%s>\r\n", from);
	c->pending++;
	c->state = LMTP_C_COMMAND;
}

void lmtp_client_rcpt(struct lmtp_client *c, const char *to, struct sbuf *out)
{
	sbuf_appendf(out, "RCPT TO:<%s>\r\n", to);
	c->pending++;
	c->state = LMTP_C_COMMAND;
}

void lmtp_client_data(struct lmtp_client *c, unsigned int accepted, struct sbuf *out)
{
	sbuf_appends(out, "DATA\r\n");
	c->data_replies = accepted;
	c->state = LMTP_C_DATA;
}
