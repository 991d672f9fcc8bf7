/* IMAP backend login state machine. */
#include "proto/imap_back.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/base64.h"
#include "common/xmalloc.h"
#include "proto/imap_parser.h"

enum imap_back_state {
	IMAP_BACK_BANNER,	/* waiting for "* OK" */
	IMAP_BACK_STARTTLS,	/* waiting for "S OK" */
	IMAP_BACK_CAPABILITY,	/* waiting for "C OK" before logging in */
	IMAP_BACK_LOGIN,	/* waiting for "L OK" (or "+" for AUTHENTICATE) */
	IMAP_BACK_DONE,
};

enum imap_cap {
	IMAP_CAP_ID = 1 << 0,
	IMAP_CAP_STARTTLS = 1 << 1,
	IMAP_CAP_SASL_IR = 1 << 2,
	IMAP_CAP_LOGINDISABLED = 1 << 3,
	IMAP_CAP_LITERALPLUS = 1 << 4,
	IMAP_CAP_AUTH_PLAIN = 1 << 5,
};

static const struct {
	const char *name;
	enum imap_cap cap;
} imap_cap_names[] = {
	{ "ID", IMAP_CAP_ID },
	{ "STARTTLS", IMAP_CAP_STARTTLS },
	{ "SASL-IR", IMAP_CAP_SASL_IR },
	{ "LOGINDISABLED", IMAP_CAP_LOGINDISABLED },
	{ "LITERAL+", IMAP_CAP_LITERALPLUS },
	{ "AUTH=PLAIN", IMAP_CAP_AUTH_PLAIN },
};

struct imap_back {
	struct back base;
	enum imap_back_state state;
	unsigned int caps;
	bool caps_known;
	/* a pass-through login's mechanism is among the AUTH= capabilities */
	bool auth_mech;
	bool login_sent;
	bool ir_sent;
};

static void imap_back_set_state(struct imap_back *b, enum imap_back_state state)
{
	b->state = state;
}

static void imap_back_parse_caps(struct imap_back *b, const char *s, size_t len)
{
	const char *mech = b->base.params.sasl_mech;
	b->caps = 0;
	b->caps_known = true;
	b->auth_mech = false;
	while (len > 0) {
		const char *sp = memchr(s, ' ', len);
		size_t tlen = sp == NULL ? len : (size_t)(sp - s);
		for (size_t i = 0; i < ARRAY_SIZE(imap_cap_names); i++) {
			if (strlen(imap_cap_names[i].name) == tlen &&
			    strncasecmp(s, imap_cap_names[i].name, tlen) == 0)
				b->caps |= imap_cap_names[i].cap;
		}
		if (mech != NULL && tlen == 5 + strlen(mech) && strncasecmp(s, "AUTH=", 5) == 0 &&
		    strncasecmp(s + 5, mech, tlen - 5) == 0)
			b->auth_mech = true;
		if (sp == NULL)
			break;
		len -= tlen + 1;
		s = sp + 1;
	}
}

/* "[CAPABILITY a b c]" anywhere in a status response */
static void imap_back_caps_from_code(struct imap_back *b, const char *line, size_t len)
{
	static const char code[] = "[CAPABILITY ";
	const char *p = memmem(line, len, code, sizeof(code) - 1);
	if (p == NULL)
		return;
	p += sizeof(code) - 1;
	const char *end = memchr(p, ']', len - (size_t)(p - line));
	if (end != NULL)
		imap_back_parse_caps(b, p, (size_t)(end - p));
}

/* A quoted string, or a non-synchronising literal when quoting cannot
 * carry the bytes; -1 when neither is possible. */
static int imap_append_astring(struct imap_back *b, struct sbuf *out, const char *s)
{
	if (imap_is_quotable(s)) {
		imap_append_quoted(out, s);
		return 0;
	}
	if ((b->caps & IMAP_CAP_LITERALPLUS) == 0)
		return -1;
	sbuf_appendf(out, "{%zu+}\r\n", strlen(s));
	sbuf_appends(out, s);
	return 0;
}

static void imap_back_append_id(struct imap_back *b, struct sbuf *out)
{
	const struct back_params *p = &b->base.params;
	char ip[IPADDR_STRLEN];

	sbuf_appends(out, "I ID (");
	if (p->client_id != NULL && p->client_id[0] != '\0') {
		sbuf_appends(out, p->client_id);
		sbuf_appendc(out, ' ');
	}
	sbuf_appends(out, "\"x-session-id\" ");
	imap_append_quoted(out, p->session_id);
	sbuf_appendf(out, " \"x-originating-ip\" \"%s\"", ipaddr_to_str(&p->client_ip, ip));
	sbuf_appendf(out, " \"x-originating-port\" \"%u\"", p->client_port);
	sbuf_appendf(out, " \"x-connected-ip\" \"%s\"", ipaddr_to_str(&p->local_ip, ip));
	sbuf_appendf(out, " \"x-connected-port\" \"%u\"", p->local_port);
	sbuf_appendf(out, " \"x-proxy-ttl\" \"%u\")\r\n", p->ttl - 1);
}

static enum back_event imap_back_fail(struct imap_back *b, enum back_fail fail,
				      const char *error)
{
	b->base.fail = fail;
	b->base.error = error;
	imap_back_set_state(b, IMAP_BACK_DONE);
	return BACK_EV_FAIL;
}

/* Sends the login command; returns BACK_EV_FAIL if it cannot be sent. */
static enum back_event imap_back_send_login(struct imap_back *b, struct sbuf *out)
{
	const struct back_params *p = &b->base.params;
	bool sasl = p->use_sasl;

	/* the client chose a mechanism the backend does not offer: no
	 * attempt, so no failure counts against the client's address */
	if (p->sasl_mech != NULL && b->caps_known && !b->auth_mech)
		return imap_back_fail(b, BACK_FAIL_TEMP,
				      "the client's SASL mechanism is not advertised");
	if (!sasl && (b->caps & IMAP_CAP_LOGINDISABLED) != 0) {
		if (!p->tls_active)
			return imap_back_fail(b, BACK_FAIL_TEMP,
					      "LOGINDISABLED advertised, but SSL/TLS not enabled");
		/* LOGIN is off even over TLS: SASL PLAIN carries any bytes */
		sasl = true;
	}
	if (!sasl) {
		size_t mark = sbuf_len(out);
		sbuf_appends(out, "L LOGIN ");
		if (imap_append_astring(b, out, p->user) == 0) {
			sbuf_appendc(out, ' ');
			if (imap_append_astring(b, out, p->password) == 0) {
				sbuf_appends(out, "\r\n");
				goto sent;
			}
		}
		/* neither quotable nor LITERAL+: fall back to SASL */
		explicit_bzero(sbuf_mdata(out) + mark, sbuf_len(out) - mark);
		sbuf_truncate(out, mark);
	}
	sbuf_appendf(out, "L AUTHENTICATE %s", back_sasl_mech(p));
	if (b->caps_known && (b->caps & IMAP_CAP_SASL_IR) != 0) {
		sbuf_appendc(out, ' ');
		back_append_sasl_ir(p, out);
		/* a "+" now is the mechanism's next step */
		b->ir_sent = true;
	}
	sbuf_appends(out, "\r\n");
sent:
	b->login_sent = true;
	imap_back_set_state(b, IMAP_BACK_LOGIN);
	return BACK_EV_NONE;
}

/* After the banner or TLS: either ask for capabilities or log in. */
static enum back_event imap_back_continue(struct imap_back *b, struct sbuf *out)
{
	if (!b->caps_known) {
		sbuf_appends(out, "C CAPABILITY\r\n");
		imap_back_set_state(b, IMAP_BACK_CAPABILITY);
		return BACK_EV_NONE;
	}
	return imap_back_send_login(b, out);
}

static enum back_event imap_back_banner(struct imap_back *b, const char *line,
					size_t len, struct sbuf *out)
{
	if (len < 5 || memcmp(line, "* OK ", 5) != 0)
		return imap_back_fail(b, BACK_FAIL_TEMP, "Invalid banner");
	imap_back_caps_from_code(b, line, len);
	if (b->base.params.forward && (b->caps & IMAP_CAP_ID) != 0)
		imap_back_append_id(b, out);
	if (b->base.params.starttls) {
		if (b->caps_known && (b->caps & IMAP_CAP_STARTTLS) == 0)
			return imap_back_fail(b, BACK_FAIL_TEMP, "STARTTLS not supported");
		sbuf_appends(out, "S STARTTLS\r\n");
		imap_back_set_state(b, IMAP_BACK_STARTTLS);
		return BACK_EV_NONE;
	}
	return imap_back_continue(b, out);
}

static bool imap_line_has_tag(const char *line, size_t len, char tag)
{
	return len >= 2 && line[0] == tag && line[1] == ' ';
}

static bool imap_status_is(const char *line, size_t len, const char *status)
{
	size_t slen = strlen(status);
	return len >= 2 + slen && strncasecmp(line + 2, status, slen) == 0 &&
		(len == 2 + slen || line[2 + slen] == ' ');
}

static enum back_event imap_back_login_reply(struct imap_back *b, const char *line,
					     size_t len)
{
	if (imap_status_is(line, len, "OK")) {
		b->base.reply = xstrndup(line + 2, len - 2);
		imap_back_set_state(b, IMAP_BACK_DONE);
		return BACK_EV_OK;
	}
	if (imap_status_is(line, len, "NO")) {
		const char *text = line + 5;
		size_t tlen = len < 5 ? 0 : len - 5;
		static const char authfailed[] = "[AUTHENTICATIONFAILED]";
		if (tlen == 0 || text[0] != '[' ||
		    (tlen >= sizeof(authfailed) - 1 &&
		     strncasecmp(text, authfailed, sizeof(authfailed) - 1) == 0))
			return imap_back_fail(b, BACK_FAIL_AUTH, "authentication failed");
		b->base.reply = xstrndup(line + 2, len - 2);
		return imap_back_fail(b, BACK_FAIL_REPLY, "login refused");
	}
	return imap_back_fail(b, BACK_FAIL_TEMP, "unexpected reply to login");
}

static enum back_event imap_back_line(struct back *back, const char *line, size_t len,
                                       struct sbuf *out)
{
	struct imap_back *b = (struct imap_back *)back;
	if (b->state == IMAP_BACK_BANNER)
		return imap_back_banner(b, line, len, out);
	if (len >= 2 && line[0] == '*' && line[1] == ' ') {
		static const char cap[] = "* CAPABILITY ";
		if (len >= sizeof(cap) - 1 &&
		    strncasecmp(line, cap, sizeof(cap) - 1) == 0)
			imap_back_parse_caps(b, line + sizeof(cap) - 1,
					     len - (sizeof(cap) - 1));
		return BACK_EV_NONE;
	}
	if (imap_line_has_tag(line, len, 'I'))
		return BACK_EV_NONE; /* the ID reply does not matter */
	if (b->state == IMAP_BACK_STARTTLS && imap_line_has_tag(line, len, 'S')) {
		if (!imap_status_is(line, len, "OK"))
			return imap_back_fail(b, BACK_FAIL_TEMP, "STARTTLS failed");
		return BACK_EV_STARTTLS;
	}
	if (b->state == IMAP_BACK_CAPABILITY && imap_line_has_tag(line, len, 'C')) {
		if (!imap_status_is(line, len, "OK"))
			return imap_back_fail(b, BACK_FAIL_TEMP, "CAPABILITY failed");
		b->caps_known = true;
		return imap_back_send_login(b, out);
	}
	if (b->state == IMAP_BACK_LOGIN && len >= 1 && line[0] == '+') {
		if (b->ir_sent) {
			size_t skip = len >= 2 && line[1] == ' ' ? 2 : 1;
			enum back_event ev = back_sasl_challenge(&b->base, line + skip,
								 len - skip);
			if (ev == BACK_EV_FAIL)
				imap_back_set_state(b, IMAP_BACK_DONE);
			return ev;
		}
		back_append_sasl_ir(&b->base.params, out);
		sbuf_appends(out, "\r\n");
		b->ir_sent = true;
		return BACK_EV_NONE;
	}
	if (b->state == IMAP_BACK_LOGIN && imap_line_has_tag(line, len, 'L'))
		return imap_back_login_reply(b, line, len);
	return imap_back_fail(b, BACK_FAIL_TEMP, "unexpected reply from backend");
}

static void imap_back_tls_started(struct back *back, struct sbuf *out)
{
	struct imap_back *b = (struct imap_back *)back;
	/* capabilities seen before TLS cannot be trusted after it */
	b->caps = 0;
	b->caps_known = false;
	b->base.params.tls_active = true;
	(void)imap_back_continue(b, out);
}

static struct back *imap_back_create(const struct back_params *params)
{
	struct imap_back *b = xcalloc(1, sizeof(*b));
	back_init(&b->base, &imap_back_ops, params);
	return &b->base;
}

static void imap_back_destroy(struct back *back)
{
	back_deinit(back);
	free(back);
}

const struct back_ops imap_back_ops = {
	.create = imap_back_create,
	.destroy = imap_back_destroy,
	.feed = back_feed_lines,
	.line = imap_back_line,
	.tls_started = imap_back_tls_started,
};
