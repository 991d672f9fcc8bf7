/* Submission pre-login state machine with a command table. */
#include "proto/submission_front.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xmalloc.h"

struct subm_front {
	struct front base;
};

typedef enum front_event subm_cmd_fn(struct subm_front *f, char *args, struct sbuf *out);

struct subm_cmd {
	const char *name;
	subm_cmd_fn *fn;
};

static void subm_reply(struct sbuf *out, const char *line)
{
	sbuf_appends(out, line);
	sbuf_appends(out, "\r\n");
}

/* An invalid command: its reply, and it counts. */
static enum front_event subm_bad(struct subm_front *f, struct sbuf *out, const char *text)
{
	size_t mark = sbuf_len(out);
	subm_reply(out, text);
	return front_count_bad(&f->base, out, mark);
}

/* EHLO's reply: the same extensions as Dovecot's submission-login, since
 * after login the client keeps talking as this reply allowed it to. */
static enum front_event cmd_ehlo(struct subm_front *f, char *args, struct sbuf *out)
{
	if (args[0] == '\0')
		return subm_bad(f, out, "501 5.5.4 Missing hostname");
	free(f->base.helo);
	f->base.helo = xstrdup(args);
	sbuf_appendf(out, "250-%s\r\n250-8BITMIME\r\n", f->base.params.hostname);
	size_t mark = sbuf_len(out);
	sbuf_appends(out, "250-AUTH");
	if (front_append_mechs(&f->base, out, " ", "") > 0)
		sbuf_appends(out, "\r\n");
	else
		sbuf_truncate(out, mark);
	sbuf_appends(out, "250-BURL imap\r\n250-CHUNKING\r\n250-ENHANCEDSTATUSCODES\r\n"
		     "250-SIZE\r\n");
	if (f->base.starttls_available && !f->base.tls_active)
		sbuf_appends(out, "250-STARTTLS\r\n");
	if (f->base.trusted)
		sbuf_appends(out, "250-XCLIENT ADDR PORT SESSION TTL\r\n");
	sbuf_appends(out, "250 PIPELINING\r\n");
	return FRONT_EV_NONE;
}

static enum front_event cmd_helo(struct subm_front *f, char *args, struct sbuf *out)
{
	if (args[0] == '\0')
		return subm_bad(f, out, "501 5.5.4 Missing hostname");
	free(f->base.helo);
	f->base.helo = xstrdup(args);
	sbuf_appendf(out, "250 %s\r\n", f->base.params.hostname);
	return FRONT_EV_NONE;
}

static enum front_event cmd_noop(struct subm_front *f, char *args, struct sbuf *out)
{
	(void)f;
	(void)args;
	subm_reply(out, "250 2.0.0 OK");
	return FRONT_EV_NONE;
}

static enum front_event cmd_quit(struct subm_front *f, char *args, struct sbuf *out)
{
	(void)args;
	subm_reply(out, "221 2.0.0 Bye");
	f->base.close_reason = "logged out";
	front_set_state(&f->base, FRONT_DONE);
	return FRONT_EV_CLOSE;
}

static enum front_event cmd_starttls(struct subm_front *f, char *args, struct sbuf *out)
{
	(void)args;
	if (f->base.tls_active)
		return subm_bad(f, out, "502 5.5.1 TLS is already active.");
	if (!f->base.starttls_available)
		return subm_bad(f, out, "502 5.5.1 TLS support isn't enabled.");
	subm_reply(out, "220 2.0.0 Begin TLS negotiation now.");
	/* RFC 3207: the client starts over with EHLO */
	free(f->base.helo);
	f->base.helo = NULL;
	return FRONT_EV_STARTTLS;
}

/* Commands that need a logged-in session. */
static enum front_event cmd_needs_auth(struct subm_front *f, char *args, struct sbuf *out)
{
	(void)f;
	(void)args;
	subm_reply(out, "530 5.7.0 Authentication required.");
	return FRONT_EV_NONE;
}

static enum front_event cmd_auth(struct subm_front *f, char *args, struct sbuf *out)
{
	if (args[0] == '\0')
		return subm_bad(f, out, "501 5.5.4 Missing SASL mechanism parameter");
	char *ir = strchr(args, ' ');
	if (ir != NULL)
		*ir++ = '\0';
	const struct sasl_mech *mech = front_sasl_mech_find(&f->base, args);
	if (mech == NULL) {
		subm_reply(out, "504 5.5.4 Unsupported authentication mechanism.");
		return FRONT_EV_NONE;
	}
	if (sasl_mech_is_plaintext(mech) && !front_plaintext_allowed(&f->base)) {
		subm_reply(out, "538 5.7.11 Encryption required for requested "
			   "authentication mechanism");
		return FRONT_EV_NONE;
	}
	return front_sasl_begin(&f->base, mech, (const unsigned char *)ir,
				ir == NULL ? 0 : strlen(ir), out);
}

/* XCLIENT ADDR=.. PORT=.. SESSION=.. TTL=.. from a trusted proxy; the
 * session then starts over with a greeting (Postfix's rule). */
static enum front_event cmd_xclient(struct subm_front *f, char *args, struct sbuf *out)
{
	if (!f->base.trusted)
		return subm_bad(f, out, "550 5.7.0 You are not from trusted IP");
	front_xclient_line(&f->base.forward, args);
	sbuf_appendf(out, "220 %s %s\r\n", f->base.params.hostname, f->base.params.greeting);
	return FRONT_EV_NONE;
}

static const struct subm_cmd subm_cmds[] = {
	{ "EHLO", cmd_ehlo },
	{ "HELO", cmd_helo },
	{ "AUTH", cmd_auth },
	{ "STARTTLS", cmd_starttls },
	{ "NOOP", cmd_noop },
	{ "RSET", cmd_noop },
	{ "QUIT", cmd_quit },
	{ "XCLIENT", cmd_xclient },
	{ "MAIL", cmd_needs_auth },
	{ "RCPT", cmd_needs_auth },
	{ "DATA", cmd_needs_auth },
	{ "BDAT", cmd_needs_auth },
	{ "BURL", cmd_needs_auth },
	{ "VRFY", cmd_needs_auth },
};

static enum front_event subm_command(struct front *front, char *line, size_t len,
				     struct sbuf *out)
{
	struct subm_front *f = (struct subm_front *)front;
	char *args = memchr(line, ' ', len);
	if (args != NULL)
		*args++ = '\0';
	else
		args = line + len;
	for (size_t i = 0; i < ARRAY_SIZE(subm_cmds); i++) {
		if (strcasecmp(line, subm_cmds[i].name) == 0)
			return subm_cmds[i].fn(f, args, out);
	}
	return subm_bad(f, out, "500 5.5.1 Unknown command");
}

static struct front *subm_create(const struct front_params *params)
{
	struct subm_front *f = xcalloc(1, sizeof(*f));
	front_init(&f->base, &submission_front_ops, params);
	return &f->base;
}

static void subm_destroy(struct front *front)
{
	front_deinit(front);
	free(front);
}

static void subm_greet(struct front *front, struct sbuf *out)
{
	sbuf_appendf(out, "220 %s %s\r\n", front->params.hostname, front->params.greeting);
}

static void subm_auth_failed(struct front *front, enum front_auth_status status,
			     const char *text, struct sbuf *out)
{
	static const char *const prefixes[] = {
		[FRONT_AUTH_FAILED] = "535 5.7.8 Authentication failed.",
		[FRONT_AUTH_FAILED_REASON] = "535 5.7.8 ",
		[FRONT_AUTH_TEMPFAIL] = "454 4.7.0 ",
		[FRONT_AUTH_BACKEND_REPLY] = "",
		[FRONT_AUTH_LIMIT] = "454 4.7.0 ",
	};
	front_login_clear(front);
	front_append_auth_failure(out, prefixes, status, text);
	sbuf_appends(out, "\r\n");
	front_set_state(front, FRONT_COMMAND);
}

static void subm_disconnect(struct front *front, const char *text, struct sbuf *out)
{
	sbuf_appends(out, "421 4.3.2 ");
	front_append_sanitized(out, text);
	sbuf_appends(out, "\r\n");
	front_set_state(front, FRONT_DONE);
}

const struct front_ops submission_front_ops = {
	.service = "submission",
	.texts = {
		.challenge_prefix = "334 ",
		.challenge_suffix = "",
		.sasl_failed = "535 5.7.8 Authentication failed.",
		.sasl_aborted = "501 5.5.2 Authentication aborted by client.",
		.bad_initial_base64 = "501 5.5.2 Invalid base64 data in SASL response.",
		.bad_continued_base64 = "501 5.5.2 Invalid base64 data in SASL response.",
		.too_many_bad = "421 4.7.0 %s Too many invalid commands.",
		.line_too_long = "500 5.5.2 Line too long, aborting.",
		.invalid_chars = "500 5.5.2 Invalid characters in command",
	},
	.create = subm_create,
	.destroy = subm_destroy,
	.greet = subm_greet,
	.feed = front_feed_lines,
	.command_line = subm_command,
	.auth_failed = subm_auth_failed,
	.logged_in = front_logged_in,
	.disconnect = subm_disconnect,
};
