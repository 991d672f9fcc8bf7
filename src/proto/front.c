/* What every protocol front shares: state, the SASL exchange, the count
 * of invalid commands, the feed of the line-based protocols, and the
 * attributes a trusted client forwards. */
#include "proto/front.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/base64.h"
#include "common/xmalloc.h"
#include "proto/line.h"

void front_init(struct front *f, const struct front_ops *ops,
		const struct front_params *params)
{
	memset(f, 0, sizeof(*f));
	f->ops = ops;
	f->params = *params;
	front_forward_init(&f->forward);
}

void front_append_sanitized(struct sbuf *out, const char *text)
{
	for (; *text != '\0'; text++)
		sbuf_appendc(out, *text == '\r' || *text == '\n' ? ' ' : *text);
}

void front_append_auth_failure(struct sbuf *out, const char *const prefixes[],
			       enum front_auth_status status, const char *text)
{
	sbuf_appends(out, prefixes[status]);
	if (status == FRONT_AUTH_TEMPFAIL && text == NULL)
		text = "Temporary authentication failure.";
	if (status != FRONT_AUTH_FAILED)
		front_append_sanitized(out, text);
}

void front_forward_init(struct front_forward *fw)
{
	memset(fw, 0, sizeof(*fw));
	fw->ttl = FRONT_PROXY_TTL_DEFAULT;
}

void front_login_clear(struct front *f)
{
	sasl_credentials_clear(&f->login.creds);
	f->login.mech = NULL;
	f->login.relaying = false;
	sbuf_free_secret(&f->login.response);
}

void front_deinit(struct front *f)
{
	front_login_clear(f);
	sasl_server_deinit(&f->sasl);
	sbuf_free(&f->tag);
	sbuf_free(&f->client_id);
	free(f->helo);
	f->helo = NULL;
}

void front_set_state(struct front *f, enum front_state state)
{
	f->state = state;
}

static void front_append_tag(struct front *f, struct sbuf *out)
{
	if (sbuf_len(&f->tag) > 0) {
		sbuf_append(out, sbuf_data(&f->tag), sbuf_len(&f->tag));
		sbuf_appendc(out, ' ');
	}
}

void front_reply(struct front *f, struct sbuf *out, const char *text)
{
	front_append_tag(f, out);
	sbuf_appends(out, text);
	sbuf_appends(out, "\r\n");
}

enum front_event front_count_bad(struct front *f, struct sbuf *out, size_t reply_start)
{
	if (++f->bad_commands < f->params.max_bad_commands)
		return FRONT_EV_NONE;
	/* as Dovecot's login processes: the goodbye answers the last one */
	if (!f->ops->texts.last_bad_answered)
		sbuf_truncate(out, reply_start);
	sbuf_appendf(out, f->ops->texts.too_many_bad, f->params.hostname);
	sbuf_appends(out, "\r\n");
	f->close_reason = "too many invalid commands";
	front_set_state(f, FRONT_DONE);
	return FRONT_EV_CLOSE;
}

void front_logged_in(struct front *f, const char *text, struct sbuf *out)
{
	front_login_clear(f);
	front_append_tag(f, out);
	front_append_sanitized(out, text);
	sbuf_appends(out, "\r\n");
	front_set_state(f, FRONT_DONE);
}

/* A session id goes on unquoted in XCLIENT SESSION= and quoted in IMAP
 * ID: only the characters of Dovecot's ids (base64) and of common
 * separators, so that no upstream can add attributes through it. */
static bool front_session_id_is_valid(const char *id)
{
	static const char allowed[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-";
	return id[strspn(id, allowed)] == '\0';
}

void front_forward_apply(struct front_forward *fw, const char *name, const char *value)
{
	if (strncasecmp(name, "x-", 2) == 0)
		name += 2;
	if (strcasecmp(name, "originating-ip") == 0) {
		if (ipaddr_parse(value, &fw->ip) == 0)
			fw->have_ip = true;
	} else if (strcasecmp(name, "originating-port") == 0) {
		(void)port_parse(value, &fw->port);
	} else if (strcasecmp(name, "connected-ip") == 0) {
		if (ipaddr_parse(value, &fw->local_ip) == 0)
			fw->have_local = true;
	} else if (strcasecmp(name, "connected-port") == 0) {
		(void)port_parse(value, &fw->local_port);
	} else if (strcasecmp(name, "proxy-ttl") == 0) {
		char *end;
		unsigned long ttl = strtoul(value, &end, 10);
		/* a trusted upstream may only lower the TTL (§10.5) */
		if (*value != '\0' && *end == '\0' && ttl < fw->ttl)
			fw->ttl = (unsigned int)ttl;
	} else if (strcasecmp(name, "session-id") == 0 ||
		   strcasecmp(name, "session-ext-id") == 0) {
		size_t len = strlen(value);
		if (len < sizeof(fw->session_id) && front_session_id_is_valid(value))
			memcpy(fw->session_id, value, len + 1);
	}
}

static void front_send_challenge(struct front *f, const struct sbuf *challenge,
				 struct sbuf *out)
{
	sbuf_appends(out, f->ops->texts.challenge_prefix);
	base64_encode(out, sbuf_data(challenge), sbuf_len(challenge));
	sbuf_appends(out, f->ops->texts.challenge_suffix);
	sbuf_appends(out, "\r\n");
	front_set_state(f, FRONT_SASL);
}

const struct sasl_mech *front_sasl_mech_find(const struct front *f, const char *name)
{
	return sasl_mech_find(name, f->params.passthrough_mechs);
}

size_t front_append_mechs(const struct front *f, struct sbuf *out, const char *prefix,
			  const char *suffix)
{
	return sasl_mechs_append(out, prefix, suffix, f->params.passthrough_mechs,
				 front_plaintext_allowed(f));
}

/* base64 (RFC 4648 alphabet and padding) and nothing else: what the
 * backend or the client sends passes through unchanged, so it must not
 * be able to carry a quote, a line end or a protocol's syntax */
static bool front_is_base64(const char *s, size_t len)
{
	unsigned char *decoded = xmalloc(BASE64_DECODED_MAX(len) + 1);
	bool ok = base64_decode(s, len, decoded) >= 0;
	explicit_bzero(decoded, BASE64_DECODED_MAX(len) + 1);
	free(decoded);
	return ok;
}

int front_sasl_relay(struct front *f, const char *b64, size_t len, struct sbuf *out)
{
	if (!front_is_base64(b64, len))
		return -1;
	sbuf_appends(out, f->ops->texts.challenge_prefix);
	sbuf_append(out, b64, len);
	sbuf_appends(out, f->ops->texts.challenge_suffix);
	sbuf_appends(out, "\r\n");
	f->login.relaying = true;
	front_set_state(f, FRONT_SASL);
	return 0;
}

/* The client's answer to a relayed challenge: kept for the backend as
 * sent, or the end of the exchange. */
static enum front_event front_sasl_relay_input(struct front *f, const unsigned char *line,
					       size_t len, struct sbuf *out)
{
	const char *text = NULL;
	if (len == 1 && line[0] == '*')
		text = f->ops->texts.sasl_aborted;
	else if (!front_is_base64((const char *)line, len))
		text = f->ops->texts.bad_continued_base64;
	f->login.relaying = false;
	if (text != NULL) {
		front_reply(f, out, text);
		front_set_state(f, FRONT_COMMAND);
		return FRONT_EV_SASL_ABORT;
	}
	sbuf_reset(&f->login.response);
	sbuf_append(&f->login.response, line, len);
	front_set_state(f, FRONT_AUTH_WAIT);
	return FRONT_EV_SASL_RESPONSE;
}

/* One decoded response: the next challenge, the credentials, or the end
 * of a malformed exchange. */
static enum front_event front_sasl_step(struct front *f, const unsigned char *resp,
					size_t len, struct sbuf *out)
{
	struct sbuf challenge = SBUF_INIT;
	const char *error;
	enum front_event ev = FRONT_EV_NONE;

	switch (sasl_server_step(&f->sasl, resp, len, &challenge, &error)) {
	case SASL_CONTINUE:
		front_send_challenge(f, &challenge, out);
		sbuf_free(&challenge);
		return FRONT_EV_NONE;
	case SASL_DONE:
		f->login.mech = f->sasl.mech;
		sasl_server_take_credentials(&f->sasl, &f->login.creds);
		front_set_state(f, FRONT_AUTH_WAIT);
		ev = FRONT_EV_AUTH;
		break;
	case SASL_FAIL:
		front_reply(f, out, f->ops->texts.sasl_failed);
		front_set_state(f, FRONT_COMMAND);
		f->sasl_refused_mech = sasl_mech_name(f->sasl.mech);
		f->sasl_refused_why = error;
		break;
	}
	sbuf_free(&challenge);
	sasl_server_deinit(&f->sasl);
	return ev;
}

/* One client response: base64, or "=" for an empty one. */
static enum front_event front_sasl_input(struct front *f, const unsigned char *data,
					 size_t len, const char *bad_base64,
					 struct sbuf *out)
{
	if (len == 1 && data[0] == '=')
		return front_sasl_step(f, data, 0, out);
	unsigned char *decoded = xmalloc(BASE64_DECODED_MAX(len));
	long n = base64_decode((const char *)data, len, decoded);
	enum front_event ev;
	if (n >= 0) {
		ev = front_sasl_step(f, decoded, (size_t)n, out);
	} else {
		size_t mark = sbuf_len(out);
		sasl_server_deinit(&f->sasl);
		front_reply(f, out, bad_base64);
		front_set_state(f, FRONT_COMMAND);
		ev = f->ops->texts.bad_base64_counts ? front_count_bad(f, out, mark) :
			FRONT_EV_NONE;
	}
	explicit_bzero(decoded, BASE64_DECODED_MAX(len));
	free(decoded);
	return ev;
}

enum front_event front_sasl_begin(struct front *f, const struct sasl_mech *mech,
				  const unsigned char *ir, size_t ir_len,
				  struct sbuf *out)
{
	sasl_server_init(&f->sasl, mech);
	if (ir != NULL)
		return front_sasl_input(f, ir, ir_len, f->ops->texts.bad_initial_base64, out);
	struct sbuf challenge = SBUF_INIT;
	sasl_server_initial_challenge(&f->sasl, &challenge);
	front_send_challenge(f, &challenge, out);
	sbuf_free(&challenge);
	return FRONT_EV_NONE;
}

enum front_event front_sasl_continue(struct front *f, const unsigned char *line,
				     size_t len, struct sbuf *out)
{
	if (f->login.relaying)
		return front_sasl_relay_input(f, line, len, out);
	if (len == 1 && line[0] == '*') {
		sasl_server_deinit(&f->sasl);
		front_reply(f, out, f->ops->texts.sasl_aborted);
		front_set_state(f, FRONT_COMMAND);
		return FRONT_EV_NONE;
	}
	return front_sasl_input(f, line, len, f->ops->texts.bad_continued_base64, out);
}

enum front_event front_feed_lines(struct front *f, unsigned char *buf, size_t len,
				  size_t *consumed_r, struct sbuf *out)
{
	enum front_event ev = FRONT_EV_NONE;
	size_t off = 0;

	while (ev == FRONT_EV_NONE && off < len &&
	       (f->state == FRONT_COMMAND || f->state == FRONT_SASL)) {
		size_t consumed;
		long n = line_next(buf + off, len - off, f->params.max_line, &consumed);
		if (n == -1)
			break;
		if (n == -2) {
			front_reply(f, out, f->ops->texts.line_too_long);
			f->close_reason = "input line too long";
			front_set_state(f, FRONT_DONE);
			ev = FRONT_EV_CLOSE;
			break;
		}
		char *line = (char *)buf + off;
		bool sasl = f->state == FRONT_SASL;
		line[n] = '\0';	/* over the CR or LF */
		if (memchr(line, '\0', (size_t)n) != NULL) {
			size_t mark = sbuf_len(out);
			front_reply(f, out, f->ops->texts.invalid_chars);
			ev = front_count_bad(f, out, mark);
		} else if (sasl) {
			ev = front_sasl_continue(f, (const unsigned char *)line, (size_t)n, out);
		} else {
			ev = f->ops->command_line(f, line, (size_t)n, out);
		}
		if (sasl || ev == FRONT_EV_AUTH || f->state == FRONT_AUTH_WAIT ||
		    f->state == FRONT_SASL)
			explicit_bzero(buf + off, consumed); /* secrets were in there */
		off += consumed;
	}
	*consumed_r = off;
	return ev;
}

void front_xclient_attr(struct front_forward *fw, char *token)
{
	static const struct {
		const char *attr, *forward;
	} attrs[] = {
		{ "ADDR", "originating-ip" }, { "PORT", "originating-port" },
		{ "SESSION", "session-id" }, { "TTL", "proxy-ttl" },
	};
	char *eq = strchr(token, '=');
	if (eq == NULL)
		return;
	*eq = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(attrs); i++) {
		if (strcasecmp(token, attrs[i].attr) == 0)
			front_forward_apply(fw, attrs[i].forward, eq + 1);
	}
}

void front_xclient_line(struct front_forward *fw, char *args)
{
	char *save;
	for (char *tok = strtok_r(args, " ", &save); tok != NULL;
	     tok = strtok_r(NULL, " ", &save))
		front_xclient_attr(fw, tok);
}
