/* IMAP pre-login state machine with a command table; ID is read in
 * pieces beside it (imap_id). */
#include "proto/imap_front.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/base64.h"
#include "common/xmalloc.h"
#include "proto/imap_id.h"
#include "proto/imap_parser.h"

struct imap_front {
	struct front base;
	struct imap_parser parser;
	struct imap_id_reader id;	/* while in_id */
	bool in_id;		/* reading an ID command's parameters */
	bool id_seen;		/* a trusted client's first ID is past */
};

typedef enum front_event imap_cmd_fn(struct imap_front *f,
				     unsigned char *cmd, struct sbuf *out);

struct imap_cmd {
	const char *name;
	imap_cmd_fn *fn;
};

static void imap_append_tag(struct imap_front *f, const unsigned char *cmd,
			    struct sbuf *out)
{
	if (f->parser.have_tag)
		sbuf_append(out, cmd + f->parser.tag.off, f->parser.tag.len);
	else
		sbuf_appendc(out, '*');
}

static void imap_reply(struct imap_front *f, const unsigned char *cmd,
		       struct sbuf *out, const char *status, const char *text)
{
	imap_append_tag(f, cmd, out);
	sbuf_appendf(out, " %s %s\r\n", status, text);
}

static void imap_append_capability(struct imap_front *f, struct sbuf *out)
{
	sbuf_appends(out, "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+");
	if (f->base.starttls_available && !f->base.tls_active)
		sbuf_appends(out, " STARTTLS");
	front_append_mechs(&f->base, out, " AUTH=", "");
	if (!front_plaintext_allowed(&f->base))
		sbuf_appends(out, " LOGINDISABLED");
}

/* An invalid command: its reply, and it counts. */
static enum front_event imap_front_bad(struct imap_front *f,
				       const unsigned char *cmd, struct sbuf *out,
				       const char *text)
{
	size_t mark = sbuf_len(out);
	imap_reply(f, cmd, out, "BAD", text);
	return front_count_bad(&f->base, out, mark);
}

static enum front_event cmd_capability(struct imap_front *f, unsigned char *cmd,
				       struct sbuf *out)
{
	if (f->parser.nargs != 0)
		return imap_front_bad(f, cmd, out, "Unexpected arguments.");
	sbuf_appends(out, "* CAPABILITY ");
	imap_append_capability(f, out);
	sbuf_appends(out, "\r\n");
	imap_reply(f, cmd, out, "OK",
		   "Pre-login capabilities listed, post-login capabilities have more.");
	return FRONT_EV_NONE;
}

static enum front_event cmd_noop(struct imap_front *f, unsigned char *cmd,
				 struct sbuf *out)
{
	if (f->parser.nargs != 0)
		return imap_front_bad(f, cmd, out, "Unexpected arguments.");
	imap_reply(f, cmd, out, "OK", "NOOP completed.");
	return FRONT_EV_NONE;
}

static enum front_event cmd_logout(struct imap_front *f, unsigned char *cmd,
				   struct sbuf *out)
{
	if (f->parser.nargs != 0)
		return imap_front_bad(f, cmd, out, "Unexpected arguments.");
	sbuf_appends(out, "* BYE Logging out\r\n");
	imap_reply(f, cmd, out, "OK", "Logout completed.");
	f->base.close_reason = "logged out";
	front_set_state(&f->base, FRONT_DONE);
	return FRONT_EV_CLOSE;
}

static enum front_event cmd_starttls(struct imap_front *f, unsigned char *cmd,
				     struct sbuf *out)
{
	if (f->parser.nargs != 0)
		return imap_front_bad(f, cmd, out, "Unexpected arguments.");
	if (f->base.tls_active)
		return imap_front_bad(f, cmd, out, "TLS is already active.");
	if (!f->base.starttls_available)
		return imap_front_bad(f, cmd, out, "TLS support isn't enabled.");
	imap_reply(f, cmd, out, "OK", "Begin TLS negotiation now.");
	return FRONT_EV_STARTTLS;
}

/* "tag ID" not followed by a space: every ID with parameters is read by
 * imap_front_id_start and imap_front_id_input. */
static enum front_event cmd_id(struct imap_front *f, unsigned char *cmd,
			       struct sbuf *out)
{
	return imap_front_bad(f, cmd, out, "Invalid ID parameters.");
}

/* imap_id_retain: the client's own ID fields, which the backend gets
 * with loft's (§10.2). x-* fields never go: a trusted client's are
 * forwarding (imap_front_id_pair applies them); an untrusted client's
 * would pose as loft's. Only what a quoted string carries as it is (RFC
 * 2971 keys of at most 30 bytes), and no more than Dovecot keeps
 * (FRONT_CLIENT_ID_MAX): a field that does not fit is left out. The last
 * ID counts. */
static void imap_front_retain_id_field(struct imap_front *f, const char *key,
				       const char *value)
{
	struct sbuf *id = &f->base.client_id;

	if (strncasecmp(key, "x-", 2) == 0 || strlen(key) > IMAP_ID_KEY_MAX ||
	    !imap_is_quotable(key) || (value != NULL && !imap_is_quotable(value)))
		return;
	size_t need = (sbuf_len(id) > 0 ? 1 : 0) + imap_quoted_len(key) + 1 +
		(value != NULL ? imap_quoted_len(value) : 3);
	if (sbuf_len(id) + need >= FRONT_CLIENT_ID_MAX)
		return;
	if (sbuf_len(id) > 0)
		sbuf_appendc(id, ' ');
	imap_append_quoted(id, key);
	sbuf_appendc(id, ' ');
	if (value != NULL)
		imap_append_quoted(id, value);
	else
		sbuf_appends(id, "NIL");
}

/* One pair of an ID: a trusted client's first ID forwards the real
 * client's address and the like (§10.2); every ID's own fields may go on
 * to the backend. A key or value with a NUL is ignored. */
static void imap_front_id_pair(struct imap_front *f, const unsigned char *buf)
{
	const struct imap_id_reader *r = &f->id;
	char *key = imap_arg_dup(buf, &r->key);
	char *value = r->value_nil ? NULL : imap_arg_dup(buf, &r->value);

	if (key != NULL && (value != NULL || r->value_nil)) {
		if (f->base.trusted && !f->id_seen && value != NULL)
			front_forward_apply(&f->base.forward, key, value);
		imap_front_retain_id_field(f, key, value);
	}
	free(key);
	free(value);
}

/* A reply to the tag saved for a command answered later. */
static void imap_reply_saved(struct imap_front *f, struct sbuf *out,
			     const char *status, const char *text)
{
	sbuf_append(out, sbuf_data(&f->base.tag), sbuf_len(&f->base.tag));
	sbuf_appendf(out, " %s %s\r\n", status, text);
}

/* "tag ID " is in buf: its parameters come next, in pieces. */
static void imap_front_id_start(struct imap_front *f, const unsigned char *buf,
				size_t tag_len)
{
	sbuf_reset(&f->base.tag);
	sbuf_append(&f->base.tag, buf, tag_len);
	sbuf_reset(&f->base.client_id);
	imap_id_reader_init(&f->id, f->base.params.max_line, f->base.params.max_literal);
	f->in_id = true;
}

/* Reads on in an ID's parameters; *consumed_r as imap_id_read's. */
static enum front_event imap_front_id_input(struct imap_front *f, unsigned char *buf,
					    size_t len, size_t *consumed_r,
					    struct sbuf *out)
{
	enum parse_result r = imap_id_read(&f->id, buf, len);
	for (unsigned int i = 0; i < f->id.continuations; i++)
		sbuf_appends(out, "+ OK\r\n");
	*consumed_r = f->id.consumed;
	switch (r) {
	case PARSE_MORE:
		return FRONT_EV_NONE;
	case PARSE_OK:
		if (f->id.have_pair) {
			imap_front_id_pair(f, buf);
			return FRONT_EV_NONE;
		}
		f->in_id = false;
		f->id_seen = true;
		sbuf_appends(out, "* ID (\"name\" \"loft\")\r\n");
		imap_reply_saved(f, out, "OK", "ID completed.");
		return FRONT_EV_NONE;
	case PARSE_ERROR:
		break;
	}
	f->in_id = false;
	sbuf_reset(&f->base.client_id);
	size_t mark = sbuf_len(out);
	imap_reply_saved(f, out, "BAD", f->id.error);
	if (f->id.fatal) {
		sbuf_appendf(out, "* BYE %s\r\n", f->id.error);
		f->base.close_reason = f->id.error;
		front_set_state(&f->base, FRONT_DONE);
		return FRONT_EV_CLOSE;
	}
	if (!f->id.line_ended)
		imap_parser_skip_line(&f->parser);
	return front_count_bad(&f->base, out, mark);
}

/* LOGIN and AUTHENTICATE are answered later, to this tag. */
static void imap_save_tag(struct imap_front *f, const unsigned char *cmd)
{
	sbuf_reset(&f->base.tag);
	sbuf_append(&f->base.tag, cmd + f->parser.tag.off, f->parser.tag.len);
}

static enum front_event imap_front_privacy_required(struct imap_front *f,
						    const unsigned char *cmd,
						    struct sbuf *out)
{
	imap_reply(f, cmd, out, "NO", "[PRIVACYREQUIRED] Plaintext authentication "
		   "disallowed on non-secure (SSL/TLS) connections.");
	return FRONT_EV_NONE;
}

static enum front_event cmd_login(struct imap_front *f, unsigned char *cmd,
				  struct sbuf *out)
{
	const struct imap_arg *a = f->parser.args;

	if (f->parser.nargs != 2 || !imap_arg_is_string(&a[0]) ||
	    !imap_arg_is_string(&a[1]))
		return imap_front_bad(f, cmd, out, "Invalid arguments.");
	if (!front_plaintext_allowed(&f->base))
		return imap_front_privacy_required(f, cmd, out);
	char *user = imap_arg_dup(cmd, &a[0]);
	char *pass = imap_arg_dup(cmd, &a[1]);
	if (user == NULL || pass == NULL) {
		free(user);
		xfree_secret(&pass);
		return imap_front_bad(f, cmd, out, "NUL in credentials.");
	}
	imap_save_tag(f, cmd);
	f->base.login.mech = NULL;
	f->base.login.creds.authzid = xstrdup("");
	f->base.login.creds.authcid = user;
	f->base.login.creds.password = pass;
	front_set_state(&f->base, FRONT_AUTH_WAIT);
	return FRONT_EV_AUTH;
}

static enum front_event cmd_authenticate(struct imap_front *f, unsigned char *cmd,
					 struct sbuf *out)
{
	const struct imap_arg *a = f->parser.args;
	unsigned int n = f->parser.nargs;

	if (n < 1 || n > 2 || a[0].type != IMAP_ARG_ATOM ||
	    (n == 2 && a[1].type != IMAP_ARG_ATOM))
		return imap_front_bad(f, cmd, out, "Invalid arguments.");
	char *name = imap_arg_dup(cmd, &a[0]);
	const struct sasl_mech *mech = name == NULL ? NULL : front_sasl_mech_find(&f->base, name);
	free(name);
	if (mech == NULL) {
		imap_reply(f, cmd, out, "NO", "Unsupported authentication mechanism.");
		return FRONT_EV_NONE;
	}
	if (sasl_mech_is_plaintext(mech) && !front_plaintext_allowed(&f->base))
		return imap_front_privacy_required(f, cmd, out);
	imap_save_tag(f, cmd);
	return front_sasl_begin(&f->base, mech, n == 2 ? cmd + a[1].off : NULL,
				n == 2 ? a[1].len : 0, out);
}

static const struct imap_cmd imap_cmds[] = {
	{ "CAPABILITY", cmd_capability },
	{ "NOOP", cmd_noop },
	{ "LOGOUT", cmd_logout },
	{ "ID", cmd_id },
	{ "STARTTLS", cmd_starttls },
	{ "LOGIN", cmd_login },
	{ "AUTHENTICATE", cmd_authenticate },
};

static enum front_event imap_front_command(struct imap_front *f,
					   unsigned char *cmd, struct sbuf *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(imap_cmds); i++) {
		if (imap_arg_equals_icase(cmd, &f->parser.cmd, imap_cmds[i].name))
			return imap_cmds[i].fn(f, cmd, out);
	}
	return imap_front_bad(f, cmd, out, "Error in IMAP command received by server.");
}

static enum front_event imap_front_parse_error(struct imap_front *f,
					       const unsigned char *cmd,
					       struct sbuf *out)
{
	if (f->base.state == FRONT_SASL) {
		/* an over-long response line ends the exchange */
		sasl_server_deinit(&f->base.sasl);
		sbuf_append(out, sbuf_data(&f->base.tag), sbuf_len(&f->base.tag));
		sbuf_appendf(out, " BAD %s\r\n", f->parser.error);
		front_set_state(&f->base, FRONT_COMMAND);
		return FRONT_EV_NONE;
	}
	if (f->parser.fatal) {
		imap_reply(f, cmd, out, "BAD", f->parser.error);
		sbuf_appendf(out, "* BYE %s\r\n", f->parser.error);
		f->base.close_reason = f->parser.error;
		front_set_state(&f->base, FRONT_DONE);
		return FRONT_EV_CLOSE;
	}
	return imap_front_bad(f, cmd, out, f->parser.error);
}

static enum front_event imap_front_feed(struct front *front, unsigned char *buf,
					size_t len, size_t *consumed_r,
					struct sbuf *out)
{
	struct imap_front *f = (struct imap_front *)front;
	enum front_event ev = FRONT_EV_NONE;
	size_t off = 0;

	while (ev == FRONT_EV_NONE && off < len &&
	       (f->base.state == FRONT_COMMAND || f->base.state == FRONT_SASL)) {
		unsigned char *cmd = buf + off;
		enum parse_result r;
		if (f->in_id) {
			size_t consumed;
			ev = imap_front_id_input(f, cmd, len - off, &consumed, out);
			off += consumed;
			/* a refused ID leaves the parser to skip its line */
			if (consumed == 0 && f->in_id)
				break;
			continue;
		}
		if (f->base.state == FRONT_COMMAND && imap_parser_at_start(&f->parser)) {
			/* ID goes its own way, as in Dovecot's imap-login: its
			 * size is not bounded by the line's */
			size_t tag_len;
			long n = imap_id_command_prefix(cmd, len - off, &tag_len);
			if (n < 0)
				break;
			if (n > 0) {
				imap_front_id_start(f, cmd, tag_len);
				off += (size_t)n;
				continue;
			}
		}
		if (f->base.state == FRONT_SASL) {
			const unsigned char *line;
			size_t llen;
			r = imap_parser_read_line(&f->parser, cmd, len - off, &line, &llen);
			if (r == PARSE_OK)
				ev = front_sasl_continue(&f->base, line, llen, out);
		} else {
			r = imap_parser_parse(&f->parser, cmd, len - off);
			for (unsigned int i = 0; i < f->parser.continuations; i++)
				sbuf_appends(out, "+ OK\r\n");
			if (r == PARSE_OK)
				ev = imap_front_command(f, cmd, out);
		}
		if (r == PARSE_ERROR)
			ev = imap_front_parse_error(f, cmd, out);
		size_t consumed = f->parser.consumed;
		if (consumed == 0)
			break;
		if (ev == FRONT_EV_AUTH)
			explicit_bzero(cmd, consumed); /* the password was in there */
		off += consumed;
		imap_parser_reset(&f->parser);
	}
	*consumed_r = off;
	return ev;
}

static struct front *imap_front_create(const struct front_params *params)
{
	struct imap_front *f = xcalloc(1, sizeof(*f));
	front_init(&f->base, &imap_front_ops, params);
	imap_parser_init(&f->parser, params->max_line, params->max_literal);
	return &f->base;
}

static void imap_front_destroy(struct front *front)
{
	front_deinit(front);
	free(front);
}

static void imap_front_greet(struct front *front, struct sbuf *out)
{
	struct imap_front *f = (struct imap_front *)front;
	sbuf_appends(out, "* OK [CAPABILITY ");
	imap_append_capability(f, out);
	sbuf_appendf(out, "] %s\r\n", f->base.params.greeting);
}

static void imap_front_auth_failed(struct front *front, enum front_auth_status status,
				   const char *text, struct sbuf *out)
{
	static const char *const prefixes[] = {
		[FRONT_AUTH_FAILED] = " NO [AUTHENTICATIONFAILED] Authentication failed.",
		[FRONT_AUTH_FAILED_REASON] = " NO [AUTHENTICATIONFAILED] ",
		[FRONT_AUTH_TEMPFAIL] = " NO [UNAVAILABLE] ",
		[FRONT_AUTH_BACKEND_REPLY] = " ",
		[FRONT_AUTH_LIMIT] = " NO [LIMIT] ",
	};

	front_login_clear(front);
	sbuf_append(out, sbuf_data(&front->tag), sbuf_len(&front->tag));
	front_append_auth_failure(out, prefixes, status, text);
	sbuf_appends(out, "\r\n");
	front_set_state(front, FRONT_COMMAND);
}

static void imap_front_disconnect(struct front *front, const char *text,
				  struct sbuf *out)
{
	sbuf_appends(out, "* BYE ");
	front_append_sanitized(out, text);
	sbuf_appends(out, "\r\n");
	front_set_state(front, FRONT_DONE);
}

const struct front_ops imap_front_ops = {
	.service = "imap",
	.texts = {
		.challenge_prefix = "+ ",
		.challenge_suffix = "",
		.sasl_failed = "NO [AUTHENTICATIONFAILED] Authentication failed.",
		.sasl_aborted = "BAD Authentication aborted by client.",
		.bad_initial_base64 = "BAD Invalid base64 data in initial response.",
		.bad_continued_base64 = "BAD Invalid base64 data in continued response.",
		.bad_base64_counts = true,
		.too_many_bad = "* BYE Too many invalid IMAP commands.",
	},
	.create = imap_front_create,
	.destroy = imap_front_destroy,
	.greet = imap_front_greet,
	.feed = imap_front_feed,
	.auth_failed = imap_front_auth_failed,
	.logged_in = front_logged_in,
	.disconnect = imap_front_disconnect,
};
