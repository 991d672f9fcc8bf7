/* POP3 backend login state machine. */
#include "proto/pop3_back.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/base64.h"
#include "common/xmalloc.h"
#include "proto/smtp_reply.h"

enum pop3_back_state {
	POP3_BACK_BANNER,	/* waiting for "+OK" */
	POP3_BACK_STARTTLS,	/* waiting for STLS's "+OK" */
	POP3_BACK_XCLIENT,	/* waiting for XCLIENT's "+OK" */
	POP3_BACK_CAPA,		/* reading CAPA's list, up to "." */
	POP3_BACK_USER,		/* waiting for USER's "+OK" */
	POP3_BACK_PASS,		/* waiting for the verdict (PASS or AUTH) */
	POP3_BACK_DONE,
};

struct pop3_back {
	struct back base;
	enum pop3_back_state state;
	bool xclient;		/* the banner advertised [XCLIENT] */
	bool ir_sent;		/* AUTH went with its initial response */
	bool capa_asked;	/* CAPA went (pass-through logins) */
	bool capa_listing;	/* its "+OK" came: lines up to "." follow */
	bool capa_mech;		/* the SASL line names the client's mechanism */
};

static enum back_event pop3_back_fail(struct pop3_back *b, enum back_fail fail,
				      const char *error)
{
	b->base.fail = fail;
	b->base.error = error;
	b->state = POP3_BACK_DONE;
	return BACK_EV_FAIL;
}

static bool pop3_ok(const char *line, size_t len)
{
	return len >= 3 && memcmp(line, "+OK", 3) == 0 && (len == 3 || line[3] == ' ');
}

/* USER/PASS carry any bytes but CR, LF and NUL. */
static bool pop3_sendable(const char *s)
{
	return strpbrk(s, "\r\n") == NULL;
}

/* RFC 2449's "SASL mech ..." line: whether it names mech. */
static bool pop3_capa_names(const char *line, size_t len, const char *mech)
{
	static const char sasl[] = "SASL ";
	return len >= sizeof(sasl) - 1 && strncasecmp(line, sasl, sizeof(sasl) - 1) == 0 &&
		smtp_words_have(line + sizeof(sasl) - 1, len - (sizeof(sasl) - 1), mech);
}

static enum back_event pop3_back_login(struct pop3_back *b, struct sbuf *out)
{
	const struct back_params *p = &b->base.params;
	/* a mechanism passed through is asked only of a backend that lists
	 * it: one that would refuse it anyway must not cost the client's
	 * address a failure (the mistake is the configuration's) */
	if (p->sasl_mech != NULL && !b->capa_asked) {
		sbuf_appends(out, "CAPA\r\n");
		b->capa_asked = true;
		b->state = POP3_BACK_CAPA;
		return BACK_EV_NONE;
	}
	if (!p->use_sasl && pop3_sendable(p->user) && strchr(p->user, ' ') == NULL &&
	    pop3_sendable(p->password)) {
		sbuf_appendf(out, "USER %s\r\n", p->user);
		b->state = POP3_BACK_USER;
		return BACK_EV_NONE;
	}
	sbuf_appendf(out, "AUTH %s ", back_sasl_mech(p));
	back_append_sasl_ir(p, out);
	sbuf_appends(out, "\r\n");
	/* a "+" now is the mechanism's next step */
	b->ir_sent = true;
	b->state = POP3_BACK_PASS;
	return BACK_EV_NONE;
}

/* After the banner or TLS: tell the backend who the client is, then log in. */
static enum back_event pop3_back_continue(struct pop3_back *b, struct sbuf *out)
{
	const struct back_params *p = &b->base.params;
	if (b->xclient && p->forward) {
		char ip[IPADDR_STRLEN];
		sbuf_appendf(out, "XCLIENT ADDR=%s PORT=%u SESSION=%s TTL=%u\r\n",
			     ipaddr_to_str(&p->client_ip, ip), p->client_port,
			     p->session_id, p->ttl - 1);
		b->state = POP3_BACK_XCLIENT;
		return BACK_EV_NONE;
	}
	return pop3_back_login(b, out);
}

static enum back_event pop3_back_banner(struct pop3_back *b, const char *line,
					size_t len, struct sbuf *out)
{
	static const char xclient[] = "+OK [XCLIENT]";
	if (!pop3_ok(line, len))
		return pop3_back_fail(b, BACK_FAIL_TEMP, "Invalid banner");
	b->xclient = len >= sizeof(xclient) - 1 &&
		memcmp(line, xclient, sizeof(xclient) - 1) == 0;
	if (b->base.params.starttls) {
		sbuf_appends(out, "STLS\r\n");
		b->state = POP3_BACK_STARTTLS;
		return BACK_EV_NONE;
	}
	return pop3_back_continue(b, out);
}

/* -ERR [AUTH] and a bare -ERR are the generic failure; other codes pass. */
static enum back_event pop3_back_refused(struct pop3_back *b, const char *line,
					 size_t len)
{
	static const char err[] = "-ERR ";
	static const char auth[] = "-ERR [AUTH]";
	if (len < sizeof(err) - 1 || memcmp(line, err, sizeof(err) - 1) != 0)
		return pop3_back_fail(b, BACK_FAIL_TEMP, "unexpected reply to login");
	if (line[sizeof(err) - 1] != '[' ||
	    (len >= sizeof(auth) - 1 && memcmp(line, auth, sizeof(auth) - 1) == 0))
		return pop3_back_fail(b, BACK_FAIL_AUTH, "authentication failed");
	b->base.reply = xstrndup(line, len);
	return pop3_back_fail(b, BACK_FAIL_REPLY, "login refused");
}

static enum back_event pop3_back_line(struct back *back, const char *line, size_t len,
                                       struct sbuf *out)
{
	struct pop3_back *b = (struct pop3_back *)back;
	const struct back_params *p = &b->base.params;
	switch (b->state) {
	case POP3_BACK_BANNER:
		return pop3_back_banner(b, line, len, out);
	case POP3_BACK_STARTTLS:
		if (!pop3_ok(line, len))
			return pop3_back_fail(b, BACK_FAIL_TEMP, "STLS failed");
		return BACK_EV_STARTTLS;
	case POP3_BACK_XCLIENT:
		if (!pop3_ok(line, len))
			return pop3_back_fail(b, BACK_FAIL_TEMP, "XCLIENT failed");
		return pop3_back_login(b, out);
	case POP3_BACK_CAPA:
		if (!b->capa_listing) {
			/* no CAPA: nothing is known, the backend decides */
			if (!pop3_ok(line, len))
				return pop3_back_login(b, out);
			b->capa_listing = true;
			return BACK_EV_NONE;
		}
		if (len != 1 || line[0] != '.') {
			b->capa_mech = b->capa_mech || pop3_capa_names(line, len, p->sasl_mech);
			return BACK_EV_NONE;
		}
		if (!b->capa_mech)
			return pop3_back_fail(b, BACK_FAIL_TEMP,
					      "the client's SASL mechanism is not advertised");
		return pop3_back_login(b, out);
	case POP3_BACK_USER:
		if (!pop3_ok(line, len))
			return pop3_back_refused(b, line, len);
		sbuf_appendf(out, "PASS %s\r\n", p->password);
		b->state = POP3_BACK_PASS;
		return BACK_EV_NONE;
	case POP3_BACK_PASS:
		if (len >= 1 && line[0] == '+' && !pop3_ok(line, len) &&
		    b->ir_sent) {
			size_t skip = len >= 2 && line[1] == ' ' ? 2 : 1;
			enum back_event ev = back_sasl_challenge(&b->base, line + skip,
								 len - skip);
			if (ev == BACK_EV_FAIL)
				b->state = POP3_BACK_DONE;
			return ev;
		}
		if (!pop3_ok(line, len))
			return pop3_back_refused(b, line, len);
		b->base.reply = xstrndup(line, len);
		b->state = POP3_BACK_DONE;
		return BACK_EV_OK;
	case POP3_BACK_DONE:
		break;
	}
	return pop3_back_fail(b, BACK_FAIL_TEMP, "unexpected reply from backend");
}

static void pop3_back_tls_started(struct back *back, struct sbuf *out)
{
	struct pop3_back *b = (struct pop3_back *)back;
	b->base.params.tls_active = true;
	(void)pop3_back_continue(b, out);
}

static struct back *pop3_back_create(const struct back_params *params)
{
	struct pop3_back *b = xcalloc(1, sizeof(*b));
	back_init(&b->base, &pop3_back_ops, params);
	return &b->base;
}

static void pop3_back_destroy(struct back *back)
{
	back_deinit(back);
	free(back);
}

const struct back_ops pop3_back_ops = {
	.create = pop3_back_create,
	.destroy = pop3_back_destroy,
	.feed = back_feed_lines,
	.line = pop3_back_line,
	.tls_started = pop3_back_tls_started,
};
