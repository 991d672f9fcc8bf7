/* LMTP server machine: the command table, the transaction rules and the
 * DATA dot reader. */
#include "proto/lmtp_front.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xmalloc.h"
#include "proto/line.h"
#include "proto/smtp_command.h"

enum lmtp_front_state {
	LMTP_FRONT_COMMAND,	/* reading commands (only RCPTs while `asking`) */
	LMTP_FRONT_BODY,	/* reading the message */
	LMTP_FRONT_DELIVERING,	/* the message is with the owner */
	LMTP_FRONT_DONE,	/* QUIT: nothing more is read */
};

#define LMTP_FRONT_TOO_BIG "552 5.3.4 Message size exceeds fixed maximum message size"

typedef enum lmtp_front_event lmtp_front_cmd_fn(struct lmtp_front *f, char *args,
						struct sbuf *out);

static void lmtp_front_set_state(struct lmtp_front *f, enum lmtp_front_state state)
{
	f->state = state;
}

static void lmtp_front_reply(struct sbuf *out, const char *line)
{
	sbuf_appends(out, line);
	sbuf_appends(out, "\r\n");
}

static void lmtp_front_rcpt_clear(struct lmtp_front *f)
{
	free(f->rcpt);
	free(f->rcpt_refusal);
	f->rcpt = f->rcpt_refusal = NULL;
}

static void lmtp_front_reset(struct lmtp_front *f)
{
	free(f->mail_from);
	f->mail_from = NULL;
	lmtp_front_rcpt_clear(f);
	f->mail_body = NULL;
	f->accepted = 0;
	sbuf_free(&f->body);
	f->body_size = 0;
	f->body_mid_line = false;
	f->body_too_big = false;
}

void lmtp_front_init(struct lmtp_front *f, const struct lmtp_front_params *params)
{
	memset(f, 0, sizeof(*f));
	f->params = *params;
	lmtp_front_set_state(f, LMTP_FRONT_COMMAND);
	front_forward_init(&f->forward);
}

void lmtp_front_deinit(struct lmtp_front *f)
{
	lmtp_front_reset(f);
}

void lmtp_front_greet(struct lmtp_front *f, struct sbuf *out)
{
	sbuf_appendf(out, "220 %s %s\r\n", f->params.hostname, f->params.greeting);
}

/* ---- commands --------------------------------------------------------- */

static enum lmtp_front_event cmd_lhlo(struct lmtp_front *f, char *args, struct sbuf *out)
{
	if (args[0] == '\0') {
		lmtp_front_reply(out, "501 5.5.4 Missing hostname");
		return LMTP_FRONT_EV_NONE;
	}
	lmtp_front_reset(f);
	sbuf_appendf(out, "250-%s\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n"
		     "250-SIZE %llu\r\n%s250 PIPELINING\r\n", f->params.hostname,
		     (unsigned long long)f->params.max_message_size,
		     f->params.trusted ? "250-XCLIENT ADDR PORT SESSION TTL\r\n" : "");
	return LMTP_FRONT_EV_RESET;
}

static enum lmtp_front_event cmd_mail(struct lmtp_front *f, char *args, struct sbuf *out)
{
	char *path, *params;
	struct smtp_mail_params mp;
	if (f->mail_from != NULL) {
		lmtp_front_reply(out, "503 5.5.1 MAIL already given");
		return LMTP_FRONT_EV_NONE;
	}
	if (smtp_command_path(args, "FROM:", &path, &params) < 0) {
		lmtp_front_reply(out, "501 5.5.4 Invalid FROM: parameter");
		return LMTP_FRONT_EV_NONE;
	}
	/* SIZE is checked here and BODY handed on; neither is sent blindly,
	 * since a backend may not offer them (Dovecot's LMTP has no SIZE) */
	switch (smtp_command_mail_params(params, &mp)) {
	case SMTP_PARAMS_OK:
		break;
	case SMTP_PARAMS_INVALID:
		lmtp_front_reply(out, "501 5.5.4 Invalid parameters");
		return LMTP_FRONT_EV_NONE;
	case SMTP_PARAMS_UNSUPPORTED:
		lmtp_front_reply(out, "555 5.5.4 Unsupported parameters");
		return LMTP_FRONT_EV_NONE;
	}
	if (mp.has_size && mp.size > f->params.max_message_size) {
		lmtp_front_reply(out, LMTP_FRONT_TOO_BIG);
		return LMTP_FRONT_EV_NONE;
	}
	f->mail_from = xstrdup(path);
	f->mail_body = mp.body;
	lmtp_front_reply(out, "250 2.1.0 OK");
	return LMTP_FRONT_EV_NONE;
}

/* A recipient refused here: answered at once, or, while earlier ones are
 * with the owner, handed to it to answer in their order. */
static enum lmtp_front_event lmtp_front_rcpt_refuse(struct lmtp_front *f, char *reply,
						    struct sbuf *out)
{
	if (f->asking == 0) {
		lmtp_front_reply(out, reply);
		free(reply);
		return LMTP_FRONT_EV_NONE;
	}
	f->rcpt_refusal = reply;
	f->asking++;
	return LMTP_FRONT_EV_RCPT;
}

static enum lmtp_front_event cmd_rcpt(struct lmtp_front *f, char *args, struct sbuf *out)
{
	char *path, *params;
	lmtp_front_rcpt_clear(f);	/* what the owner did not take */
	if (f->mail_from == NULL)	/* (never while asking: MAIL came first) */
		return lmtp_front_rcpt_refuse(f, xstrdup("503 5.5.1 MAIL needed first"), out);
	if (smtp_command_path(args, "TO:", &path, &params) < 0 || path[0] == '\0')
		return lmtp_front_rcpt_refuse(f, xstrdup("501 5.5.4 Invalid TO: parameter"), out);
	if (params[0] != '\0') {
		/* no RCPT extension (DSN) is offered */
		return lmtp_front_rcpt_refuse(f, xstrdup("555 5.5.4 Unsupported parameters"),
					      out);
	}
	/* §10.5: a TTL at the floor means proxies loop */
	if (f->forward.ttl <= 1) {
		return lmtp_front_rcpt_refuse(f, xasprintf("554 5.4.6 <%s> Proxying appears "
							  "to be looping (TTL=0)", path), out);
	}
	f->rcpt = xstrdup(path);
	f->asking++;
	return LMTP_FRONT_EV_RCPT;
}

static enum lmtp_front_event cmd_data(struct lmtp_front *f, char *args, struct sbuf *out)
{
	(void)args;
	if (f->mail_from == NULL) {
		lmtp_front_reply(out, "503 5.5.1 MAIL needed first");
		return LMTP_FRONT_EV_NONE;
	}
	if (f->accepted == 0) {
		lmtp_front_reply(out, "554 5.5.1 No valid recipients");
		return LMTP_FRONT_EV_NONE;
	}
	lmtp_front_reply(out, "354 OK");
	lmtp_front_set_state(f, LMTP_FRONT_BODY);
	return LMTP_FRONT_EV_NONE;
}

static enum lmtp_front_event cmd_rset(struct lmtp_front *f, char *args, struct sbuf *out)
{
	(void)args;
	lmtp_front_reset(f);
	lmtp_front_reply(out, "250 2.0.0 OK");
	return LMTP_FRONT_EV_RESET;
}

static enum lmtp_front_event cmd_noop(struct lmtp_front *f, char *args, struct sbuf *out)
{
	(void)f;
	(void)args;
	lmtp_front_reply(out, "250 2.0.0 OK");
	return LMTP_FRONT_EV_NONE;
}

static enum lmtp_front_event cmd_quit(struct lmtp_front *f, char *args, struct sbuf *out)
{
	(void)args;
	lmtp_front_reply(out, "221 2.0.0 Bye");
	lmtp_front_set_state(f, LMTP_FRONT_DONE);
	return LMTP_FRONT_EV_CLOSE;
}

/* XCLIENT from a trusted relay: who the client is; the session starts
 * over with a greeting (Postfix's rule). */
static enum lmtp_front_event cmd_xclient(struct lmtp_front *f, char *args, struct sbuf *out)
{
	if (!f->params.trusted) {
		lmtp_front_reply(out, "550 5.7.0 You are not from trusted IP");
		return LMTP_FRONT_EV_NONE;
	}
	front_xclient_line(&f->forward, args);
	lmtp_front_reset(f);
	lmtp_front_greet(f, out);
	return LMTP_FRONT_EV_XCLIENT;
}

static const struct {
	const char *name;
	lmtp_front_cmd_fn *fn;
} lmtp_front_cmds[] = {
	{ "LHLO", cmd_lhlo }, { "MAIL", cmd_mail }, { "RCPT", cmd_rcpt },
	{ "DATA", cmd_data }, { "RSET", cmd_rset }, { "NOOP", cmd_noop },
	{ "QUIT", cmd_quit }, { "XCLIENT", cmd_xclient },
};

static enum lmtp_front_event lmtp_front_command(struct lmtp_front *f, char *line, size_t len,
						struct sbuf *out)
{
	if (memchr(line, '\0', len) != NULL) {
		lmtp_front_reply(out, "500 5.5.2 Invalid command syntax");
		return LMTP_FRONT_EV_NONE;
	}
	char *args = smtp_command_split(line);
	for (size_t i = 0; i < ARRAY_SIZE(lmtp_front_cmds); i++) {
		if (strcasecmp(line, lmtp_front_cmds[i].name) == 0)
			return lmtp_front_cmds[i].fn(f, args, out);
	}
	lmtp_front_reply(out, "500 5.5.1 Unknown command");
	return LMTP_FRONT_EV_NONE;
}

/* A whole command line that is an RCPT (n: its length, or -2 when too
 * long: no RCPT then). */
static bool lmtp_front_is_rcpt(const char *line, long n)
{
	return n >= 4 && strncasecmp(line, "RCPT", 4) == 0 && (n == 4 || line[4] == ' ');
}

/* ---- the message ------------------------------------------------------ */

/* Takes the body from buf up to the "." line, from *off on; true once that
 * line was taken. A line is taken in pieces as it comes, so a long one
 * never piles up in the caller's buffer; only a line's first bytes wait,
 * as they may be the final dot. */
static bool lmtp_front_body(struct lmtp_front *f, const unsigned char *buf, size_t len,
			    size_t *off)
{
	for (;;) {
		const unsigned char *data = buf + *off;
		size_t left = len - *off;
		const unsigned char *lf = memchr(data, '\n', left);
		size_t n = lf != NULL ? (size_t)(lf - data) + 1 : left;
		bool line_start = !f->body_mid_line;
		if (line_start) {
			if (lf == NULL && left < 3)
				return false;
			if ((n == 3 && memcmp(data, ".\r\n", 3) == 0) ||
			    (n == 2 && data[0] == '.')) {
				*off += n;
				if (!f->body_too_big)
					sbuf_appends(&f->body, ".\r\n");
				return true;
			}
		}
		if (n == 0)
			return false;
		/* a line's first dot is stuffing (RFC 5321 §4.5.2) */
		f->body_size += n - (line_start && data[0] == '.' ? 1 : 0);
		if (!f->body_too_big && f->body_size > f->params.max_message_size) {
			f->body_too_big = true;
			sbuf_free(&f->body);
		}
		if (!f->body_too_big)
			sbuf_append(&f->body, data, n);
		*off += n;
		f->body_mid_line = lf == NULL;
	}
}

/* The final dot: the owner delivers, or a message over the limit is
 * refused for every recipient here. */
static enum lmtp_front_event lmtp_front_body_done(struct lmtp_front *f, struct sbuf *out)
{
	if (f->body_too_big) {
		for (unsigned int i = 0; i < f->accepted; i++)
			lmtp_front_reply(out, LMTP_FRONT_TOO_BIG);
		lmtp_front_reset(f);
		lmtp_front_set_state(f, LMTP_FRONT_COMMAND);
		return LMTP_FRONT_EV_RESET;
	}
	lmtp_front_set_state(f, LMTP_FRONT_DELIVERING);
	return LMTP_FRONT_EV_MESSAGE;
}

/* ---- input ------------------------------------------------------------ */

/* Drops the rest of an over-long line; true once its end was seen. */
static bool lmtp_front_skip(struct lmtp_front *f, const unsigned char *buf, size_t len,
			    size_t *off)
{
	const unsigned char *lf = memchr(buf + *off, '\n', len - *off);
	if (lf == NULL) {
		*off = len;
		return false;
	}
	*off = (size_t)(lf - buf) + 1;
	f->skipping = false;
	return true;
}

enum lmtp_front_event lmtp_front_feed(struct lmtp_front *f, unsigned char *buf,
				      size_t len, size_t *consumed_r, struct sbuf *out)
{
	enum lmtp_front_event ev = LMTP_FRONT_EV_NONE;
	size_t off = 0;

	while (ev == LMTP_FRONT_EV_NONE && off < len) {
		if (f->state == LMTP_FRONT_BODY) {
			if (!lmtp_front_body(f, buf, len, &off))
				break;
			ev = lmtp_front_body_done(f, out);
			break;
		}
		if (f->state != LMTP_FRONT_COMMAND)
			break;
		if (f->skipping) {
			if (!lmtp_front_skip(f, buf, len, &off))
				break;
			continue;
		}
		size_t consumed;
		long n = line_next(buf + off, len - off, f->params.max_line, &consumed);
		if (n == -1)
			break;
		/* while recipients are with the owner, only more recipients
		 * go ahead (RFC 2920 pipelining); anything else would be
		 * answered before them, and waits */
		if (f->asking > 0 && !lmtp_front_is_rcpt((char *)buf + off, n))
			break;
		if (n == -2) {
			/* answered now, not at the line's end, which may never come */
			lmtp_front_reply(out, "500 5.5.2 Line too long");
			f->skipping = true;
			continue;
		}
		char *line = (char *)buf + off;
		line[n] = '\0';
		off += consumed;
		ev = lmtp_front_command(f, line, (size_t)n, out);
	}
	*consumed_r = off;
	return ev;
}

void lmtp_front_rcpt_done(struct lmtp_front *f, const char *reply, bool accepted,
			  struct sbuf *out)
{
	front_append_sanitized(out, reply);
	sbuf_appends(out, "\r\n");
	if (accepted)
		f->accepted++;
	f->asking--;
}

void lmtp_front_data_done(struct lmtp_front *f)
{
	lmtp_front_reset(f);
	lmtp_front_set_state(f, LMTP_FRONT_COMMAND);
}
