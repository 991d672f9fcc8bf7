/* ManageSieve pre-login state machine with a command table. */
#include "proto/managesieve_front.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xmalloc.h"
#include "proto/imap_parser.h"

#define MSIEVE_ERROR "Error in MANAGESIEVE command received by server."
#define MSIEVE_PLAINTEXT_DISALLOWED \
	"Plaintext authentication disallowed on non-secure (SSL/TLS) connections."

struct msieve_front {
	struct front base;
	struct imap_parser parser;
};

typedef enum front_event msieve_cmd_fn(struct msieve_front *f, unsigned char *cmd,
				       struct sbuf *out);

struct msieve_cmd {
	const char *name;
	msieve_cmd_fn *fn;
};

void managesieve_append_quoted(struct sbuf *out, const char *s)
{
	sbuf_appendc(out, '"');
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			sbuf_appendc(out, '\\');
		sbuf_appendc(out, *s == '\r' || *s == '\n' ? ' ' : *s);
	}
	sbuf_appendc(out, '"');
}

/* "OK" / "NO" / "BYE" [(code)] "text" */
static void msieve_reply(struct sbuf *out, const char *status, const char *text)
{
	sbuf_appends(out, status);
	sbuf_appendc(out, ' ');
	managesieve_append_quoted(out, text);
	sbuf_appends(out, "\r\n");
}

static void msieve_capability(struct msieve_front *f, struct sbuf *out)
{
	const struct front_params *p = &f->base.params;
	sbuf_appends(out, "\"IMPLEMENTATION\" \"loft\"\r\n\"SIEVE\" ");
	managesieve_append_quoted(out, p->sieve_capability != NULL ?
				  p->sieve_capability : "");
	sbuf_appends(out, "\r\n");
	if (p->notify_capability != NULL && p->notify_capability[0] != '\0') {
		sbuf_appends(out, "\"NOTIFY\" ");
		managesieve_append_quoted(out, p->notify_capability);
		sbuf_appends(out, "\r\n");
	}
	sbuf_appends(out, "\"SASL\" \"");
	if (front_append_mechs(&f->base, out, "", " ") > 0)
		sbuf_truncate(out, sbuf_len(out) - 1);	/* the last space */
	sbuf_appends(out, "\"\r\n");
	if (f->base.starttls_available && !f->base.tls_active)
		sbuf_appends(out, "\"STARTTLS\"\r\n");
	sbuf_appends(out, "\"VERSION\" \"1.0\"\r\n");
	if (f->base.trusted)
		sbuf_appends(out, "\"XCLIENT\"\r\n");
}

/* An invalid command: its reply, and it counts. */
static enum front_event msieve_bad(struct msieve_front *f, struct sbuf *out,
				   const char *text)
{
	size_t mark = sbuf_len(out);
	msieve_reply(out, "NO", text);
	return front_count_bad(&f->base, out, mark);
}

static bool msieve_is_string(const struct imap_arg *a)
{
	return a->type == IMAP_ARG_QUOTED || a->type == IMAP_ARG_LITERAL;
}

static enum front_event cmd_capability(struct msieve_front *f, unsigned char *cmd,
				       struct sbuf *out)
{
	(void)cmd;
	if (f->parser.nargs != 0)
		return msieve_bad(f, out, MSIEVE_ERROR);
	msieve_capability(f, out);
	msieve_reply(out, "OK", "Capability completed.");
	return FRONT_EV_NONE;
}

static enum front_event cmd_noop(struct msieve_front *f, unsigned char *cmd,
				 struct sbuf *out)
{
	const struct imap_arg *a = f->parser.args;
	if (f->parser.nargs == 0) {
		msieve_reply(out, "OK", "NOOP Completed");
		return FRONT_EV_NONE;
	}
	if (f->parser.nargs != 1 || !msieve_is_string(&a[0]))
		return msieve_bad(f, out, MSIEVE_ERROR);
	char *tag = imap_arg_dup(cmd, &a[0]);
	if (tag == NULL)
		return msieve_bad(f, out, MSIEVE_ERROR);
	sbuf_appends(out, "OK (TAG ");
	managesieve_append_quoted(out, tag);
	sbuf_appends(out, ") \"Done\"\r\n");
	free(tag);
	return FRONT_EV_NONE;
}

static enum front_event cmd_logout(struct msieve_front *f, unsigned char *cmd,
				   struct sbuf *out)
{
	(void)cmd;
	if (f->parser.nargs != 0)
		return msieve_bad(f, out, MSIEVE_ERROR);
	msieve_reply(out, "OK", "Logout completed.");
	f->base.close_reason = "logged out";
	front_set_state(&f->base, FRONT_DONE);
	return FRONT_EV_CLOSE;
}

static enum front_event cmd_starttls(struct msieve_front *f, unsigned char *cmd,
				     struct sbuf *out)
{
	(void)cmd;
	if (f->parser.nargs != 0)
		return msieve_bad(f, out, MSIEVE_ERROR);
	if (f->base.tls_active) {
		msieve_reply(out, "NO", "TLS is already active.");
		return FRONT_EV_NONE;
	}
	if (!f->base.starttls_available) {
		msieve_reply(out, "NO", "TLS support isn't enabled.");
		return FRONT_EV_NONE;
	}
	msieve_reply(out, "OK", "Begin TLS negotiation now.");
	return FRONT_EV_STARTTLS;
}

static enum front_event cmd_authenticate(struct msieve_front *f, unsigned char *cmd,
					 struct sbuf *out)
{
	const struct imap_arg *a = f->parser.args;
	unsigned int n = f->parser.nargs;
	if (n < 1 || n > 2 || !msieve_is_string(&a[0]) || (n == 2 && !msieve_is_string(&a[1])))
		return msieve_bad(f, out, MSIEVE_ERROR);
	char *name = imap_arg_dup(cmd, &a[0]);
	const struct sasl_mech *mech = name == NULL ? NULL : front_sasl_mech_find(&f->base, name);
	free(name);
	if (mech == NULL) {
		msieve_reply(out, "NO", "Unsupported authentication mechanism.");
		return FRONT_EV_NONE;
	}
	if (sasl_mech_is_plaintext(mech) && !front_plaintext_allowed(&f->base)) {
		msieve_reply(out, "NO", MSIEVE_PLAINTEXT_DISALLOWED);
		return FRONT_EV_NONE;
	}
	return front_sasl_begin(&f->base, mech, n == 2 ? cmd + a[1].off : NULL,
				n == 2 ? a[1].len : 0, out);
}

/* XCLIENT ADDR=ip PORT=port SESSION=id TTL=n from a trusted proxy. */
static enum front_event cmd_xclient(struct msieve_front *f, unsigned char *cmd,
				    struct sbuf *out)
{
	if (!f->base.trusted)
		return msieve_bad(f, out, "You are not from trusted IP");
	for (unsigned int i = 0; i < f->parser.nargs; i++) {
		char *attr = imap_arg_dup(cmd, &f->parser.args[i]);
		if (attr != NULL)
			front_xclient_attr(&f->base.forward, attr);
		free(attr);
	}
	msieve_reply(out, "OK", "Updated");
	return FRONT_EV_NONE;
}

static const struct msieve_cmd msieve_cmds[] = {
	{ "CAPABILITY", cmd_capability },
	{ "NOOP", cmd_noop },
	{ "LOGOUT", cmd_logout },
	{ "STARTTLS", cmd_starttls },
	{ "AUTHENTICATE", cmd_authenticate },
	{ "XCLIENT", cmd_xclient },
};

static enum front_event msieve_command(struct msieve_front *f, unsigned char *cmd,
				       struct sbuf *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(msieve_cmds); i++) {
		if (imap_arg_equals_icase(cmd, &f->parser.cmd, msieve_cmds[i].name))
			return msieve_cmds[i].fn(f, cmd, out);
	}
	return msieve_bad(f, out, MSIEVE_ERROR);
}

/* A response during AUTHENTICATE: one string, "*" to cancel. */
static enum front_event msieve_sasl_response(struct msieve_front *f, unsigned char *cmd,
					     struct sbuf *out)
{
	const struct imap_arg *a = f->parser.args;
	if (f->parser.nargs != 1 || !msieve_is_string(&a[0])) {
		sasl_server_deinit(&f->base.sasl);
		front_set_state(&f->base, FRONT_COMMAND);
		return msieve_bad(f, out, MSIEVE_ERROR);
	}
	return front_sasl_continue(&f->base, cmd + a[0].off, a[0].len, out);
}

static enum front_event msieve_parse_error(struct msieve_front *f, struct sbuf *out)
{
	if (f->base.state == FRONT_SASL) {
		sasl_server_deinit(&f->base.sasl);
		front_set_state(&f->base, FRONT_COMMAND);
	}
	if (f->parser.fatal) {
		msieve_reply(out, "BYE", f->parser.error);
		f->base.close_reason = f->parser.error;
		front_set_state(&f->base, FRONT_DONE);
		return FRONT_EV_CLOSE;
	}
	return msieve_bad(f, out, MSIEVE_ERROR);
}

static enum front_event msieve_feed(struct front *front, unsigned char *buf, size_t len,
				    size_t *consumed_r, struct sbuf *out)
{
	struct msieve_front *f = (struct msieve_front *)front;
	enum front_event ev = FRONT_EV_NONE;
	size_t off = 0;

	while (ev == FRONT_EV_NONE && off < len &&
	       (f->base.state == FRONT_COMMAND || f->base.state == FRONT_SASL)) {
		unsigned char *cmd = buf + off;
		bool sasl = f->base.state == FRONT_SASL;
		/* a SASL response is a line of one string, without a command */
		f->parser.response = sasl;
		enum parse_result r = imap_parser_parse(&f->parser, cmd, len - off);
		if (r == PARSE_OK)
			ev = sasl ? msieve_sasl_response(f, cmd, out) : msieve_command(f, cmd, out);
		else if (r == PARSE_ERROR)
			ev = msieve_parse_error(f, out);
		size_t consumed = f->parser.consumed;
		if (consumed == 0)
			break;
		if (sasl || ev == FRONT_EV_AUTH)
			explicit_bzero(cmd, consumed); /* secrets were in there */
		off += consumed;
		imap_parser_reset(&f->parser);
	}
	*consumed_r = off;
	return ev;
}

static struct front *msieve_create(const struct front_params *params)
{
	struct msieve_front *f = xcalloc(1, sizeof(*f));
	front_init(&f->base, &managesieve_front_ops, params);
	imap_parser_init_tagless(&f->parser, params->max_line, params->max_literal);
	return &f->base;
}

static void msieve_destroy(struct front *front)
{
	front_deinit(front);
	free(front);
}

static void msieve_greet(struct front *front, struct sbuf *out)
{
	struct msieve_front *f = (struct msieve_front *)front;
	msieve_capability(f, out);
	msieve_reply(out, "OK", front->params.greeting);
}

/* RFC 5804 §2.2: after STARTTLS the capabilities come again */
static void msieve_tls_started(struct front *front, struct sbuf *out)
{
	struct msieve_front *f = (struct msieve_front *)front;
	msieve_capability(f, out);
	msieve_reply(out, "OK", "TLS negotiation successful.");
}

static void msieve_auth_failed(struct front *front, enum front_auth_status status,
			       const char *text, struct sbuf *out)
{
	front_login_clear(front);
	switch (status) {
	case FRONT_AUTH_FAILED:
		msieve_reply(out, "NO", "Authentication failed.");
		break;
	case FRONT_AUTH_FAILED_REASON:
		msieve_reply(out, "NO", text);
		break;
	case FRONT_AUTH_TEMPFAIL:
	case FRONT_AUTH_LIMIT:
		msieve_reply(out, "NO (TRYLATER)", text != NULL ? text :
			     "Temporary authentication failure.");
		break;
	case FRONT_AUTH_BACKEND_REPLY:
		front_append_sanitized(out, text);
		sbuf_appends(out, "\r\n");
		break;
	}
	front_set_state(front, FRONT_COMMAND);
}

static void msieve_disconnect(struct front *front, const char *text, struct sbuf *out)
{
	msieve_reply(out, "BYE", text);
	front_set_state(front, FRONT_DONE);
}

const struct front_ops managesieve_front_ops = {
	.service = "managesieve",
	.texts = {
		.challenge_prefix = "\"",
		.challenge_suffix = "\"",
		.sasl_failed = "NO \"Authentication failed.\"",
		.sasl_aborted = "NO \"Authentication aborted by client.\"",
		.bad_initial_base64 = "NO \"Invalid base64 data in SASL response.\"",
		.bad_continued_base64 = "NO \"Invalid base64 data in SASL response.\"",
		.too_many_bad = "BYE \"Too many invalid MANAGESIEVE commands.\"",
	},
	.create = msieve_create,
	.destroy = msieve_destroy,
	.greet = msieve_greet,
	.feed = msieve_feed,
	.tls_started = msieve_tls_started,
	.auth_failed = msieve_auth_failed,
	.logged_in = front_logged_in,
	.disconnect = msieve_disconnect,
};
