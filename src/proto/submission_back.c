/* Submission backend login state machine. */
#include "proto/submission_back.h"

#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "proto/smtp_reply.h"

enum subm_back_state {
	SUBM_BACK_GREETING,	/* 220 */
	SUBM_BACK_EHLO,		/* 250 extensions */
	SUBM_BACK_STARTTLS,	/* 220 to STARTTLS */
	SUBM_BACK_XCLIENT,	/* 220: the session starts over */
	SUBM_BACK_AUTH,		/* 235 or a refusal */
	SUBM_BACK_DONE,
};

/* XCLIENT attributes loft can fill, sent when the backend lists them */
enum subm_xclient_attr {
	XCLIENT_ADDR = 1 << 0,
	XCLIENT_PORT = 1 << 1,
	XCLIENT_SESSION = 1 << 2,
	XCLIENT_TTL = 1 << 3,
	XCLIENT_HELO = 1 << 4,
	XCLIENT_PROTO = 1 << 5,
};

static const struct {
	const char *name;
	enum subm_xclient_attr attr;
} subm_xclient_names[] = {
	{ "ADDR", XCLIENT_ADDR }, { "PORT", XCLIENT_PORT }, { "SESSION", XCLIENT_SESSION },
	{ "TTL", XCLIENT_TTL }, { "HELO", XCLIENT_HELO }, { "PROTO", XCLIENT_PROTO },
};

struct subm_back {
	struct back base;
	enum subm_back_state state;
	/* from the last EHLO; auth_mech: the login's mechanism among AUTH's */
	bool starttls, auth_mech, auth;
	unsigned int xclient;			/* attributes offered; 0: none */
	bool xclient_done;
	struct sbuf reply;			/* a multiline reply so far */
};

static enum back_event subm_back_fail(struct subm_back *b, enum back_fail fail,
				      const char *error)
{
	b->base.fail = fail;
	b->base.error = error;
	b->state = SUBM_BACK_DONE;
	return BACK_EV_FAIL;
}

static void subm_back_ehlo(struct subm_back *b, struct sbuf *out)
{
	const struct back_params *p = &b->base.params;
	b->starttls = b->auth_mech = b->auth = false;
	b->xclient = 0;
	sbuf_appendf(out, "EHLO %s\r\n", p->hostname != NULL ? p->hostname : "loft");
	b->state = SUBM_BACK_EHLO;
}

/* One line of the EHLO reply: the extensions that matter here. */
static void subm_back_extension(struct subm_back *b, const char *text, size_t len)
{
	const char *params;
	size_t plen;
	if (smtp_ehlo_has(text, len, "STARTTLS", NULL, NULL))
		b->starttls = true;
	if (smtp_ehlo_has(text, len, "AUTH", &params, &plen)) {
		b->auth = true;
		b->auth_mech = smtp_words_have(params, plen,
					       back_sasl_mech(&b->base.params));
	}
	if (smtp_ehlo_has(text, len, "XCLIENT", &params, &plen)) {
		for (size_t i = 0; i < ARRAY_SIZE(subm_xclient_names); i++) {
			if (smtp_words_have(params, plen, subm_xclient_names[i].name))
				b->xclient |= subm_xclient_names[i].attr;
		}
	}
}

static void subm_back_xclient(struct subm_back *b, struct sbuf *out)
{
	const struct back_params *p = &b->base.params;
	char ip[IPADDR_STRLEN];
	sbuf_appends(out, "XCLIENT");
	if (b->xclient & XCLIENT_ADDR)
		sbuf_appendf(out, " ADDR=%s", ipaddr_to_str(&p->client_ip, ip));
	if (b->xclient & XCLIENT_PORT)
		sbuf_appendf(out, " PORT=%u", p->client_port);
	if (b->xclient & XCLIENT_SESSION)
		sbuf_appendf(out, " SESSION=%s", p->session_id);
	if (b->xclient & XCLIENT_TTL)
		sbuf_appendf(out, " TTL=%u", p->ttl - 1);
	/* a name that is not a plain token is left out rather than quoted */
	if ((b->xclient & XCLIENT_HELO) && p->helo != NULL && p->helo[0] != '\0' &&
	    strpbrk(p->helo, " \r\n=") == NULL)
		sbuf_appendf(out, " HELO=%s", p->helo);
	if (b->xclient & XCLIENT_PROTO)
		sbuf_appends(out, " PROTO=ESMTP");
	sbuf_appends(out, "\r\n");
	b->xclient_done = true;
	b->state = SUBM_BACK_XCLIENT;
}

/* After an EHLO reply: STARTTLS, XCLIENT or the login, in that order. */
static enum back_event subm_back_next(struct subm_back *b, struct sbuf *out)
{
	const struct back_params *p = &b->base.params;
	if (p->starttls && !p->tls_active) {
		if (!b->starttls)
			return subm_back_fail(b, BACK_FAIL_TEMP, "STARTTLS not supported");
		sbuf_appends(out, "STARTTLS\r\n");
		b->state = SUBM_BACK_STARTTLS;
		return BACK_EV_NONE;
	}
	if (b->xclient != 0 && p->forward && !b->xclient_done) {
		subm_back_xclient(b, out);
		return BACK_EV_NONE;
	}
	if (!b->auth || (!b->auth_mech && p->sasl_mech == NULL))
		return subm_back_fail(b, BACK_FAIL_TEMP, "Authentication support not "
				      "advertised (TLS required?)");
	if (!b->auth_mech)
		return subm_back_fail(b, BACK_FAIL_TEMP,
				      "the client's SASL mechanism is not advertised");
	sbuf_appendf(out, "AUTH %s ", back_sasl_mech(p));
	back_append_sasl_ir(p, out);
	sbuf_appends(out, "\r\n");
	b->state = SUBM_BACK_AUTH;
	return BACK_EV_NONE;
}

/* A whole reply (its last line): what it means in the current state. */
static enum back_event subm_back_reply(struct subm_back *b, int code, struct sbuf *out)
{
	switch (b->state) {
	case SUBM_BACK_GREETING:
	case SUBM_BACK_XCLIENT:
		if (code != 220)
			return subm_back_fail(b, BACK_FAIL_TEMP, b->state == SUBM_BACK_GREETING ?
					      "Invalid banner" : "XCLIENT failed");
		subm_back_ehlo(b, out);
		return BACK_EV_NONE;
	case SUBM_BACK_EHLO:
		if (code != 250)
			return subm_back_fail(b, BACK_FAIL_TEMP, "EHLO failed");
		return subm_back_next(b, out);
	case SUBM_BACK_STARTTLS:
		if (code != 220)
			return subm_back_fail(b, BACK_FAIL_TEMP, "STARTTLS failed");
		return BACK_EV_STARTTLS;
	case SUBM_BACK_AUTH:
		if (code == 235) {
			b->base.reply = xstrndup(sbuf_data(&b->reply), sbuf_len(&b->reply));
			b->state = SUBM_BACK_DONE;
			return BACK_EV_OK;
		}
		if (code == 535)
			return subm_back_fail(b, BACK_FAIL_AUTH, "authentication failed");
		if (code == 334) {
			/* the mechanism's next step (AUTH went with its
			 * initial response): the text after "334 " */
			size_t rlen = sbuf_len(&b->reply);
			enum back_event ev = back_sasl_challenge(&b->base,
				sbuf_data(&b->reply) + MIN(rlen, 4), rlen - MIN(rlen, 4));
			if (ev == BACK_EV_FAIL)
				b->state = SUBM_BACK_DONE;
			return ev;
		}
		b->base.reply = xstrndup(sbuf_data(&b->reply), sbuf_len(&b->reply));
		return subm_back_fail(b, BACK_FAIL_REPLY, "login refused");
	case SUBM_BACK_DONE:
		break;
	}
	return subm_back_fail(b, BACK_FAIL_TEMP, "unexpected reply from backend");
}

static enum back_event subm_back_line(struct back *back, const char *line, size_t len,
                                       struct sbuf *out)
{
	struct subm_back *b = (struct subm_back *)back;
	struct smtp_reply_line r;
	if (smtp_reply_parse(line, len, &r) < 0)
		return subm_back_fail(b, BACK_FAIL_TEMP, b->state == SUBM_BACK_GREETING ?
				      "Invalid banner" : "invalid reply from backend");
	if (b->state == SUBM_BACK_EHLO)
		subm_back_extension(b, r.text, r.len);
	/* keep the last line: a refusal passes on as one line */
	sbuf_reset(&b->reply);
	sbuf_append(&b->reply, line, len);
	if (!r.last)
		return BACK_EV_NONE;
	return subm_back_reply(b, r.code, out);
}

/* RFC 3207: after TLS the session starts over with EHLO. */
static void subm_back_tls_started(struct back *back, struct sbuf *out)
{
	struct subm_back *b = (struct subm_back *)back;
	b->base.params.tls_active = true;
	subm_back_ehlo(b, out);
}

static struct back *subm_back_create(const struct back_params *params)
{
	struct subm_back *b = xcalloc(1, sizeof(*b));
	back_init(&b->base, &submission_back_ops, params);
	return &b->base;
}

static void subm_back_destroy(struct back *back)
{
	struct subm_back *b = (struct subm_back *)back;
	sbuf_free(&b->reply);
	back_deinit(back);
	free(b);
}

const struct back_ops submission_back_ops = {
	.create = subm_back_create,
	.destroy = subm_back_destroy,
	.feed = back_feed_lines,
	.line = subm_back_line,
	.tls_started = subm_back_tls_started,
};
