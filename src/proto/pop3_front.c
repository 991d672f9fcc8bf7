/* POP3 pre-login state machine with a command table. */
#include "proto/pop3_front.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xmalloc.h"
#include "proto/line.h"

enum pop3_front_state {
	POP3_FRONT_COMMAND,	/* reading commands */
	POP3_FRONT_SASL,	/* reading an AUTH response line */
	POP3_FRONT_AUTH_WAIT,	/* credentials handed over, awaiting a verdict */
	POP3_FRONT_DONE,	/* logged in or leaving: no more input */
};

struct pop3_front {
	struct front base;
	enum pop3_front_state state;
	char *user;		/* from USER, for PASS */
	struct sasl_server sasl;
};

typedef enum front_event pop3_cmd_fn(struct pop3_front *f, char *args,
				     struct sbuf *out);

struct pop3_cmd {
	const char *name;
	pop3_cmd_fn *fn;
};

static void pop3_front_set_state(struct pop3_front *f, enum pop3_front_state state)
{
	f->state = state;
}

static void pop3_reply(struct sbuf *out, const char *line)
{
	sbuf_appends(out, line);
	sbuf_appends(out, "\r\n");
}

/* Counts an invalid command; the last one allowed ends the connection. */
static enum front_event pop3_front_bad(struct pop3_front *f, struct sbuf *out,
				       const char *text)
{
	pop3_reply(out, text);
	if (++f->base.bad_commands < f->base.params.max_bad_commands)
		return FRONT_EV_NONE;
	pop3_reply(out, "-ERR Too many invalid bad commands.");
	f->base.close_reason = "too many invalid commands";
	pop3_front_set_state(f, POP3_FRONT_DONE);
	return FRONT_EV_CLOSE;
}

static enum front_event pop3_plaintext_disallowed(struct sbuf *out)
{
	pop3_reply(out, "-ERR [AUTH] Plaintext authentication disallowed on non-secure "
		   "(SSL/TLS) connections.");
	return FRONT_EV_NONE;
}

static enum front_event cmd_capa(struct pop3_front *f, char *args, struct sbuf *out)
{
	(void)args;
	sbuf_appends(out, "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\n"
		     "AUTH-RESP-CODE\r\n");
	if (f->base.starttls_available && !f->base.tls_active)
		sbuf_appends(out, "STLS\r\n");
	if (front_plaintext_allowed(&f->base)) {
		sbuf_appends(out, "USER\r\nSASL");
		sasl_mechs_append(out, " ", "");
		sbuf_appends(out, "\r\n");
	}
	sbuf_appends(out, ".\r\n");
	return FRONT_EV_NONE;
}

static enum front_event cmd_user(struct pop3_front *f, char *args, struct sbuf *out)
{
	if (!front_plaintext_allowed(&f->base))
		return pop3_plaintext_disallowed(out);
	free(f->user);
	f->user = xstrdup(args);
	pop3_reply(out, "+OK");
	return FRONT_EV_NONE;
}

static enum front_event cmd_pass(struct pop3_front *f, char *args, struct sbuf *out)
{
	if (!front_plaintext_allowed(&f->base))
		return pop3_plaintext_disallowed(out);
	if (f->user == NULL) {
		pop3_reply(out, "-ERR No username given.");
		return FRONT_EV_NONE;
	}
	f->base.login.mech = NULL;
	f->base.login.creds.authzid = xstrdup("");
	f->base.login.creds.authcid = f->user;
	f->base.login.creds.password = xstrdup(args);
	f->user = NULL;
	pop3_front_set_state(f, POP3_FRONT_AUTH_WAIT);
	return FRONT_EV_AUTH;
}

/* One SASL response (initial or continued). */
static enum front_event pop3_front_sasl_input(struct pop3_front *f,
					      const unsigned char *data, size_t len,
					      const char *bad_base64, struct sbuf *out)
{
	struct sbuf challenge = SBUF_INIT;
	enum front_event ev = FRONT_EV_NONE;
	switch (front_sasl_input(&f->base, &f->sasl, data, len, &challenge)) {
	case FRONT_SASL_CONTINUE:
		sbuf_appends(out, "+ ");
		sbuf_append(out, sbuf_data(&challenge), sbuf_len(&challenge));
		sbuf_appends(out, "\r\n");
		pop3_front_set_state(f, POP3_FRONT_SASL);
		break;
	case FRONT_SASL_DONE:
		pop3_front_set_state(f, POP3_FRONT_AUTH_WAIT);
		ev = FRONT_EV_AUTH;
		break;
	case FRONT_SASL_FAIL:
		pop3_reply(out, "-ERR [AUTH] Authentication failed.");
		pop3_front_set_state(f, POP3_FRONT_COMMAND);
		break;
	case FRONT_SASL_BAD_BASE64:
		pop3_reply(out, bad_base64);
		pop3_front_set_state(f, POP3_FRONT_COMMAND);
		break;
	}
	sbuf_free(&challenge);
	return ev;
}

/* AUTH: the mechanism list; AUTH mech [initial-response] */
static enum front_event cmd_auth(struct pop3_front *f, char *args, struct sbuf *out)
{
	bool allowed = front_plaintext_allowed(&f->base);
	if (args[0] == '\0') {
		sbuf_appends(out, "+OK\r\n");
		if (allowed)
			sasl_mechs_append(out, "", "\r\n");
		sbuf_appends(out, ".\r\n");
		return FRONT_EV_NONE;
	}
	char *ir = strchr(args, ' ');
	if (ir != NULL)
		*ir++ = '\0';
	const struct sasl_mech *mech = sasl_mech_find(args);
	if (mech == NULL) {
		pop3_reply(out, "-ERR [AUTH] Unsupported authentication mechanism.");
		return FRONT_EV_NONE;
	}
	if (sasl_mech_is_plaintext(mech) && !allowed)
		return pop3_plaintext_disallowed(out);
	if (ir == NULL) {
		struct sbuf challenge = SBUF_INIT;
		front_sasl_start(&f->sasl, mech, &challenge);
		sbuf_appends(out, "+ ");
		sbuf_append(out, sbuf_data(&challenge), sbuf_len(&challenge));
		sbuf_appends(out, "\r\n");
		sbuf_free(&challenge);
		pop3_front_set_state(f, POP3_FRONT_SASL);
		return FRONT_EV_NONE;
	}
	sasl_server_init(&f->sasl, mech);
	return pop3_front_sasl_input(f, (const unsigned char *)ir, strlen(ir),
				     "-ERR [AUTH] Invalid base64 data in initial response",
				     out);
}

static enum front_event cmd_stls(struct pop3_front *f, char *args, struct sbuf *out)
{
	(void)args;
	if (f->base.tls_active) {
		pop3_reply(out, "-ERR TLS is already active.");
		return FRONT_EV_NONE;
	}
	if (!f->base.starttls_available) {
		pop3_reply(out, "-ERR TLS support isn't enabled.");
		return FRONT_EV_NONE;
	}
	pop3_reply(out, "+OK Begin TLS negotiation now.");
	return FRONT_EV_STARTTLS;
}

static enum front_event cmd_quit(struct pop3_front *f, char *args, struct sbuf *out)
{
	(void)args;
	pop3_reply(out, "+OK Logging out");
	f->base.close_reason = "logged out";
	pop3_front_set_state(f, POP3_FRONT_DONE);
	return FRONT_EV_CLOSE;
}

/* XCLIENT ADDR=ip PORT=port SESSION=id TTL=n from a trusted proxy: the real
 * client (§10.3); other attributes are ignored. */
static enum front_event cmd_xclient(struct pop3_front *f, char *args, struct sbuf *out)
{
	if (!f->base.trusted)
		return pop3_front_bad(f, out, "-ERR You are not from trusted IP");
	front_xclient_line(&f->base.forward, args);
	pop3_reply(out, "+OK");
	return FRONT_EV_NONE;
}

static const struct pop3_cmd pop3_cmds[] = {
	{ "CAPA", cmd_capa },
	{ "USER", cmd_user },
	{ "PASS", cmd_pass },
	{ "AUTH", cmd_auth },
	{ "STLS", cmd_stls },
	{ "QUIT", cmd_quit },
	{ "XCLIENT", cmd_xclient },
};

static enum front_event pop3_front_command(struct pop3_front *f, char *line,
					   struct sbuf *out)
{
	char *args = strchr(line, ' ');
	if (args != NULL)
		*args++ = '\0';
	else
		args = line + strlen(line);
	for (size_t i = 0; i < ARRAY_SIZE(pop3_cmds); i++) {
		if (strcasecmp(line, pop3_cmds[i].name) == 0)
			return pop3_cmds[i].fn(f, args, out);
	}
	return pop3_front_bad(f, out, "-ERR Unknown command.");
}

/* A response line during AUTH: base64, or "*" to cancel. */
static enum front_event pop3_front_sasl_line(struct pop3_front *f, char *line,
					     struct sbuf *out)
{
	if (strcmp(line, "*") == 0) {
		sasl_server_deinit(&f->sasl);
		pop3_reply(out, "-ERR Authentication aborted by client.");
		pop3_front_set_state(f, POP3_FRONT_COMMAND);
		return FRONT_EV_NONE;
	}
	return pop3_front_sasl_input(f, (const unsigned char *)line, strlen(line),
				     "-ERR [AUTH] Invalid base64 data in continued response",
				     out);
}

static enum front_event pop3_front_feed(struct front *front, unsigned char *buf,
					size_t len, size_t *consumed_r, struct sbuf *out)
{
	struct pop3_front *f = (struct pop3_front *)front;
	enum front_event ev = FRONT_EV_NONE;
	size_t off = 0;

	while (ev == FRONT_EV_NONE && off < len &&
	       (f->state == POP3_FRONT_COMMAND || f->state == POP3_FRONT_SASL)) {
		size_t consumed;
		long n = line_next(buf + off, len - off, f->base.params.max_line, &consumed);
		if (n == -1)
			break;
		if (n == -2) {
			pop3_reply(out, "-ERR Input line too long, aborting.");
			f->base.close_reason = "input line too long";
			pop3_front_set_state(f, POP3_FRONT_DONE);
			ev = FRONT_EV_CLOSE;
			break;
		}
		char *line = (char *)buf + off;
		line[n] = '\0';	/* over the CR or LF */
		if (memchr(line, '\0', (size_t)n) != NULL)
			ev = pop3_front_bad(f, out, "-ERR Invalid characters in command.");
		else if (f->state == POP3_FRONT_SASL)
			ev = pop3_front_sasl_line(f, line, out);
		else
			ev = pop3_front_command(f, line, out);
		if (ev == FRONT_EV_AUTH || f->state == POP3_FRONT_AUTH_WAIT ||
		    f->state == POP3_FRONT_SASL)
			explicit_bzero(buf + off, consumed); /* secrets were in there */
		off += consumed;
	}
	*consumed_r = off;
	return ev;
}

static struct front *pop3_front_create(const struct front_params *params)
{
	struct pop3_front *f = xcalloc(1, sizeof(*f));
	front_init(&f->base, &pop3_front_ops, params);
	return &f->base;
}

static void pop3_front_destroy(struct front *front)
{
	struct pop3_front *f = (struct pop3_front *)front;
	sasl_server_deinit(&f->sasl);
	free(f->user);
	front_deinit(&f->base);
	free(f);
}

static void pop3_front_greet(struct front *front, struct sbuf *out)
{
	sbuf_appends(out, front->trusted ? "+OK [XCLIENT] " : "+OK ");
	sbuf_appends(out, front->params.greeting);
	sbuf_appends(out, "\r\n");
}

static void pop3_front_auth_failed(struct front *front, enum front_auth_status status,
				   const char *text, struct sbuf *out)
{
	struct pop3_front *f = (struct pop3_front *)front;
	static const char *const prefixes[] = {
		[FRONT_AUTH_FAILED] = "-ERR [AUTH] Authentication failed.",
		[FRONT_AUTH_FAILED_REASON] = "-ERR [AUTH] ",
		[FRONT_AUTH_TEMPFAIL] = "-ERR [SYS/TEMP] ",
		[FRONT_AUTH_BACKEND_REPLY] = "",
		[FRONT_AUTH_LIMIT] = "-ERR [IN-USE] ",
	};
	front_login_clear(front);
	front_append_auth_failure(out, prefixes, status, text);
	sbuf_appends(out, "\r\n");
	pop3_front_set_state(f, POP3_FRONT_COMMAND);
}

static void pop3_front_logged_in(struct front *front, const char *text,
				 struct sbuf *out)
{
	struct pop3_front *f = (struct pop3_front *)front;
	front_login_clear(front);
	front_append_sanitized(out, text);
	sbuf_appends(out, "\r\n");
	pop3_front_set_state(f, POP3_FRONT_DONE);
}

static void pop3_front_disconnect(struct front *front, const char *text,
				  struct sbuf *out)
{
	struct pop3_front *f = (struct pop3_front *)front;
	sbuf_appends(out, "-ERR ");
	front_append_sanitized(out, text);
	sbuf_appends(out, "\r\n");
	pop3_front_set_state(f, POP3_FRONT_DONE);
}

const struct front_ops pop3_front_ops = {
	.service = "pop3",
	.create = pop3_front_create,
	.destroy = pop3_front_destroy,
	.greet = pop3_front_greet,
	.feed = pop3_front_feed,
	.auth_failed = pop3_front_auth_failed,
	.logged_in = pop3_front_logged_in,
	.disconnect = pop3_front_disconnect,
};
