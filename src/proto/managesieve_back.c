/* ManageSieve backend login state machine. */
#include "proto/managesieve_back.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xmalloc.h"
#include "proto/smtp_reply.h"

enum msieve_back_state {
	MSIEVE_BACK_GREETING,	/* capability lines until OK */
	MSIEVE_BACK_STARTTLS,	/* waiting for STARTTLS's OK */
	MSIEVE_BACK_TLS_CAPS,	/* capabilities again after TLS, until OK */
	MSIEVE_BACK_XCLIENT,	/* waiting for XCLIENT's OK */
	MSIEVE_BACK_LOGIN,	/* waiting for AUTHENTICATE's verdict */
	MSIEVE_BACK_DONE,
};

struct msieve_back {
	struct back base;
	enum msieve_back_state state;
	bool xclient;		/* "XCLIENT" among the capabilities */
	bool starttls;		/* "STARTTLS" among the capabilities */
	bool sasl_mech;		/* a pass-through login's mechanism in "SASL" */
};

static enum back_event msieve_back_fail(struct msieve_back *b, enum back_fail fail,
					const char *error)
{
	b->base.fail = fail;
	b->base.error = error;
	b->state = MSIEVE_BACK_DONE;
	return BACK_EV_FAIL;
}

static bool msieve_status(const char *line, size_t len, const char *status)
{
	size_t slen = strlen(status);
	return len >= slen && strncasecmp(line, status, slen) == 0 &&
		(len == slen || line[slen] == ' ');
}

/* A capability line: "NAME" ["value"] */
static void msieve_back_capability(struct msieve_back *b, const char *line, size_t len)
{
	static const char sasl[] = "\"SASL\" \"";
	const char *mech = b->base.params.sasl_mech;
	if (len >= 10 && strncasecmp(line, "\"STARTTLS\"", 10) == 0)
		b->starttls = true;
	if (len >= 9 && strncasecmp(line, "\"XCLIENT\"", 9) == 0)
		b->xclient = true;
	if (mech != NULL && len > sizeof(sasl) && strncasecmp(line, sasl, sizeof(sasl) - 1) == 0 &&
	    line[len - 1] == '"')
		b->sasl_mech = smtp_words_have(line + sizeof(sasl) - 1, len - sizeof(sasl), mech);
}

static enum back_event msieve_back_login(struct msieve_back *b, struct sbuf *out)
{
	/* the client chose a mechanism the backend does not offer: no
	 * attempt, so no failure counts against the client's address */
	if (b->base.params.sasl_mech != NULL && !b->sasl_mech)
		return msieve_back_fail(b, BACK_FAIL_TEMP,
					"the client's SASL mechanism is not advertised");
	sbuf_appendf(out, "AUTHENTICATE \"%s\" \"", back_sasl_mech(&b->base.params));
	back_append_sasl_ir(&b->base.params, out);
	sbuf_appends(out, "\"\r\n");
	b->state = MSIEVE_BACK_LOGIN;
	return BACK_EV_NONE;
}

/* The capabilities are known: STARTTLS, or XCLIENT, or the login. */
static enum back_event msieve_back_ready(struct msieve_back *b, struct sbuf *out)
{
	const struct back_params *p = &b->base.params;
	if (p->starttls && !p->tls_active) {
		if (!b->starttls)
			return msieve_back_fail(b, BACK_FAIL_TEMP, "STARTTLS not supported");
		sbuf_appends(out, "STARTTLS\r\n");
		b->state = MSIEVE_BACK_STARTTLS;
		return BACK_EV_NONE;
	}
	if (b->xclient && p->forward) {
		char ip[IPADDR_STRLEN];
		sbuf_appendf(out, "XCLIENT ADDR=%s PORT=%u SESSION=%s TTL=%u\r\n",
			     ipaddr_to_str(&p->client_ip, ip), p->client_port,
			     p->session_id, p->ttl - 1);
		b->state = MSIEVE_BACK_XCLIENT;
		return BACK_EV_NONE;
	}
	return msieve_back_login(b, out);
}

/* NO "text" is the generic failure; NO (code) "text" passes through. */
static enum back_event msieve_back_verdict(struct msieve_back *b, const char *line,
					   size_t len)
{
	if (msieve_status(line, len, "OK")) {
		b->base.reply = xstrndup(line, len);
		b->state = MSIEVE_BACK_DONE;
		return BACK_EV_OK;
	}
	if (!msieve_status(line, len, "NO"))
		return msieve_back_fail(b, BACK_FAIL_TEMP, "unexpected reply to login");
	if (len < 4 || line[3] != '(')
		return msieve_back_fail(b, BACK_FAIL_AUTH, "authentication failed");
	b->base.reply = xstrndup(line, len);
	return msieve_back_fail(b, BACK_FAIL_REPLY, "login refused");
}

static enum back_event msieve_back_line(struct back *back, const char *line, size_t len,
                                         struct sbuf *out)
{
	struct msieve_back *b = (struct msieve_back *)back;
	switch (b->state) {
	case MSIEVE_BACK_GREETING:
	case MSIEVE_BACK_TLS_CAPS:
		if (len > 0 && line[0] == '"') {
			msieve_back_capability(b, line, len);
			return BACK_EV_NONE;
		}
		if (!msieve_status(line, len, "OK"))
			return msieve_back_fail(b, BACK_FAIL_TEMP, "Invalid banner");
		return msieve_back_ready(b, out);
	case MSIEVE_BACK_STARTTLS:
		if (!msieve_status(line, len, "OK"))
			return msieve_back_fail(b, BACK_FAIL_TEMP, "STARTTLS failed");
		return BACK_EV_STARTTLS;
	case MSIEVE_BACK_XCLIENT:
		if (!msieve_status(line, len, "OK"))
			return msieve_back_fail(b, BACK_FAIL_TEMP, "XCLIENT failed");
		return msieve_back_login(b, out);
	case MSIEVE_BACK_LOGIN:
		/* the mechanism's next step: a quoted string (RFC 5804 §2.1;
		 * base64 never needs a literal's escapes) */
		if (len > 0 && line[0] == '"') {
			enum back_event ev = len >= 2 && line[len - 1] == '"' ?
				back_sasl_challenge(&b->base, line + 1, len - 2) :
				msieve_back_fail(b, BACK_FAIL_TEMP, "invalid challenge");
			if (ev == BACK_EV_FAIL)
				b->state = MSIEVE_BACK_DONE;
			return ev;
		}
		return msieve_back_verdict(b, line, len);
	case MSIEVE_BACK_DONE:
		break;
	}
	return msieve_back_fail(b, BACK_FAIL_TEMP, "unexpected reply from backend");
}

/* RFC 5804 §2.1: the client's answers are strings too. */
static void msieve_back_sasl_respond(struct back *back, const char *b64, size_t len,
				     struct sbuf *out)
{
	(void)back;
	sbuf_appendc(out, '"');
	sbuf_append(out, b64, len);
	sbuf_appends(out, "\"\r\n");
}

/* After TLS the backend sends its capabilities again, then OK. */
static void msieve_back_tls_started(struct back *back, struct sbuf *out)
{
	struct msieve_back *b = (struct msieve_back *)back;
	(void)out;
	b->base.params.tls_active = true;
	b->xclient = b->starttls = b->sasl_mech = false;
	b->state = MSIEVE_BACK_TLS_CAPS;
}

static struct back *msieve_back_create(const struct back_params *params)
{
	struct msieve_back *b = xcalloc(1, sizeof(*b));
	back_init(&b->base, &managesieve_back_ops, params);
	return &b->base;
}

static void msieve_back_destroy(struct back *back)
{
	back_deinit(back);
	free(back);
}

const struct back_ops managesieve_back_ops = {
	.create = msieve_back_create,
	.destroy = msieve_back_destroy,
	.feed = back_feed_lines,
	.line = msieve_back_line,
	.tls_started = msieve_back_tls_started,
	.sasl_respond = msieve_back_sasl_respond,
};
