/* POP3 pre-login state machine with a command table. */
#include "proto/pop3_front.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xmalloc.h"

struct pop3_front {
	struct front base;
	char *user;		/* from USER, for PASS */
};

typedef enum front_event pop3_cmd_fn(struct pop3_front *f, char *args,
				     struct sbuf *out);

struct pop3_cmd {
	const char *name;
	pop3_cmd_fn *fn;
};

static void pop3_reply(struct sbuf *out, const char *line)
{
	sbuf_appends(out, line);
	sbuf_appends(out, "\r\n");
}

/* An invalid command: its reply, and it counts. */
static enum front_event pop3_front_bad(struct pop3_front *f, struct sbuf *out,
				       const char *text)
{
	size_t mark = sbuf_len(out);
	pop3_reply(out, text);
	return front_count_bad(&f->base, out, mark);
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
	if (front_plaintext_allowed(&f->base))
		sbuf_appends(out, "USER\r\n");
	size_t mark = sbuf_len(out);
	sbuf_appends(out, "SASL");
	if (front_append_mechs(&f->base, out, " ", "") > 0)
		sbuf_appends(out, "\r\n");
	else
		sbuf_truncate(out, mark);
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
	front_set_state(&f->base, FRONT_AUTH_WAIT);
	return FRONT_EV_AUTH;
}

/* AUTH: the mechanism list; AUTH mech [initial-response] */
static enum front_event cmd_auth(struct pop3_front *f, char *args, struct sbuf *out)
{
	bool allowed = front_plaintext_allowed(&f->base);
	if (args[0] == '\0') {
		sbuf_appends(out, "+OK\r\n");
		front_append_mechs(&f->base, out, "", "\r\n");
		sbuf_appends(out, ".\r\n");
		return FRONT_EV_NONE;
	}
	char *ir = strchr(args, ' ');
	if (ir != NULL)
		*ir++ = '\0';
	const struct sasl_mech *mech = front_sasl_mech_find(&f->base, args);
	if (mech == NULL) {
		pop3_reply(out, "-ERR [AUTH] Unsupported authentication mechanism.");
		return FRONT_EV_NONE;
	}
	if (sasl_mech_is_plaintext(mech) && !allowed)
		return pop3_plaintext_disallowed(out);
	return front_sasl_begin(&f->base, mech, (const unsigned char *)ir,
				ir == NULL ? 0 : strlen(ir), out);
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
	front_set_state(&f->base, FRONT_DONE);
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

static enum front_event pop3_front_command(struct front *front, char *line, size_t len,
					   struct sbuf *out)
{
	struct pop3_front *f = (struct pop3_front *)front;
	char *args = memchr(line, ' ', len);
	if (args != NULL)
		*args++ = '\0';
	else
		args = line + len;
	for (size_t i = 0; i < ARRAY_SIZE(pop3_cmds); i++) {
		if (strcasecmp(line, pop3_cmds[i].name) == 0)
			return pop3_cmds[i].fn(f, args, out);
	}
	return pop3_front_bad(f, out, "-ERR Unknown command.");
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
	front_set_state(front, FRONT_COMMAND);
}

static void pop3_front_disconnect(struct front *front, const char *text,
				  struct sbuf *out)
{
	sbuf_appends(out, "-ERR ");
	front_append_sanitized(out, text);
	sbuf_appends(out, "\r\n");
	front_set_state(front, FRONT_DONE);
}

const struct front_ops pop3_front_ops = {
	.service = "pop3",
	.texts = {
		.challenge_prefix = "+ ",
		.challenge_suffix = "",
		.sasl_failed = "-ERR [AUTH] Authentication failed.",
		.sasl_aborted = "-ERR Authentication aborted by client.",
		.bad_initial_base64 = "-ERR [AUTH] Invalid base64 data in initial response",
		.bad_continued_base64 = "-ERR [AUTH] Invalid base64 data in continued response",
		.too_many_bad = "-ERR Too many invalid bad commands.",
		.last_bad_answered = true,
		.line_too_long = "-ERR Input line too long, aborting.",
		.invalid_chars = "-ERR Invalid characters in command.",
	},
	.create = pop3_front_create,
	.destroy = pop3_front_destroy,
	.greet = pop3_front_greet,
	.feed = front_feed_lines,
	.command_line = pop3_front_command,
	.auth_failed = pop3_front_auth_failed,
	.logged_in = front_logged_in,
	.disconnect = pop3_front_disconnect,
};
