/* Unit tests for the LMTP pieces in src/proto: MAIL/RCPT argument parsing,
 * the server machine loft speaks to the MTA (lmtp_front) and the backend
 * client machine, whole and one byte at a time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/sbuf.h"
#include "common/xmalloc.h"
#include "proto/lmtp_client.h"
#include "proto/lmtp_front.h"
#include "proto/smtp_command.h"

static void test_command_paths(void **state)
{
	(void)state;
	static const struct {
		const char *args, *prefix, *path, *params;
	} good[] = {
		{ "FROM:<a@b.example>", "FROM:", "a@b.example", "" },
		{ "from:<> SIZE=100 BODY=8BITMIME", "FROM:", "", "SIZE=100 BODY=8BITMIME" },
		{ "TO: <jane@example.com>", "TO:", "jane@example.com", "" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		char *copy = xstrdup(good[i].args), *path, *params;
		assert_int_equal(smtp_command_path(copy, good[i].prefix, &path, &params), 0);
		assert_string_equal(path, good[i].path);
		assert_string_equal(params, good[i].params);
		free(copy);
	}
	static const char *const bad[] = {
		"FROM:a@b", "FROM:<a@b", "FROM:<a <b>", "TO:<a@b>", "FROM:<a@b>x", "FROM:<a b>",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char *copy = xstrdup(bad[i]), *path, *params;
		if (smtp_command_path(copy, "FROM:", &path, &params) == 0)
			fail_msg("accepted %s", bad[i]);
		free(copy);
	}
}

static void test_mail_params(void **state)
{
	(void)state;
	struct smtp_mail_params mp;
	assert_int_equal(smtp_command_mail_params("", &mp), SMTP_PARAMS_OK);
	assert_false(mp.has_size);
	assert_null(mp.body);
	assert_int_equal(smtp_command_mail_params("body=8bitmime  SIZE=12345", &mp),
			 SMTP_PARAMS_OK);
	assert_true(mp.has_size);
	assert_int_equal(mp.size, 12345);
	assert_string_equal(mp.body, "8BITMIME");
	assert_int_equal(smtp_command_mail_params("SIZE=0 BODY=7BIT", &mp), SMTP_PARAMS_OK);
	assert_true(mp.has_size);
	assert_int_equal(mp.size, 0);
	assert_string_equal(mp.body, "7BIT");

	static const char *const invalid[] = {
		"SIZE=x", "SIZE=12x", "SIZE=", "SIZE", "SIZE=99999999999999999999",
		"SIZE=0 SIZE=5", "BODY=BINARYMIME", "BODY=7BIT BODY=7BIT",
	};
	for (size_t i = 0; i < ARRAY_SIZE(invalid); i++) {
		if (smtp_command_mail_params(invalid[i], &mp) != SMTP_PARAMS_INVALID)
			fail_msg("not invalid: %s", invalid[i]);
	}
	static const char *const unsupported[] = {
		"RET=HDRS", "SIZE=10 ENVID=x", "SMTPUTF8", "SIZEX=1",
	};
	for (size_t i = 0; i < ARRAY_SIZE(unsupported); i++) {
		if (smtp_command_mail_params(unsupported[i], &mp) != SMTP_PARAMS_UNSUPPORTED)
			fail_msg("not unsupported: %s", unsupported[i]);
	}
}

static void expect(struct sbuf *out, const char *want)
{
	if (strcmp(sbuf_cstr(out), want) != 0)
		fail_msg("got:\n%s\nwant:\n%s", sbuf_cstr(out), want);
	sbuf_reset(out);
}

static void test_command_split(void **state)
{
	(void)state;
	char a[] = "MAIL FROM:<a@b> SIZE=1", b[] = "QUIT", c[] = "NOOP ";
	assert_string_equal(smtp_command_split(a), "FROM:<a@b> SIZE=1");
	assert_string_equal(a, "MAIL");
	assert_string_equal(smtp_command_split(b), "");
	assert_string_equal(b, "QUIT");
	assert_string_equal(smtp_command_split(c), "");
	assert_string_equal(c, "NOOP");
}

/* ---- lmtp_front: the MTA's side ------------------------------------ */

struct ldrive {
	struct lmtp_front f;
	struct sbuf in, out;
	bool bytewise;
	size_t most_held;	/* the most input ever left unconsumed */
};

static void ldrive_init(struct ldrive *d, bool bytewise, bool trusted, size_t max_line,
			uint64_t max_message_size)
{
	const struct lmtp_front_params p = {
		.hostname = "loft.example", .greeting = "loft ready.", .max_line = max_line,
		.max_message_size = max_message_size, .trusted = trusted,
	};
	memset(d, 0, sizeof(*d));
	d->bytewise = bytewise;
	lmtp_front_init(&d->f, &p);
	lmtp_front_greet(&d->f, &d->out);
}

static void ldrive_deinit(struct ldrive *d)
{
	lmtp_front_deinit(&d->f);
	sbuf_free(&d->in);
	sbuf_free(&d->out);
}

/* Feeds what is buffered until an event or until nothing is taken. */
static enum lmtp_front_event ldrive_run(struct ldrive *d)
{
	enum lmtp_front_event ev = LMTP_FRONT_EV_NONE;
	size_t consumed = 1;
	while (ev == LMTP_FRONT_EV_NONE && consumed > 0 && sbuf_len(&d->in) > 0) {
		ev = lmtp_front_feed(&d->f, (unsigned char *)sbuf_mdata(&d->in),
				     sbuf_len(&d->in), &consumed, &d->out);
		sbuf_consume(&d->in, consumed);
	}
	if (ev == LMTP_FRONT_EV_NONE && sbuf_len(&d->in) > d->most_held)
		d->most_held = sbuf_len(&d->in);
	return ev;
}

/* Sends len bytes, whole or one at a time; stops at the first event
 * (the rest waits in `in` for the next ldrive_run()). */
static enum lmtp_front_event ldrive_sendn(struct ldrive *d, const char *s, size_t len)
{
	if (!d->bytewise) {
		sbuf_append(&d->in, s, len);
		return ldrive_run(d);
	}
	for (size_t i = 0; i < len; i++) {
		sbuf_append(&d->in, s + i, 1);
		enum lmtp_front_event ev = ldrive_run(d);
		if (ev != LMTP_FRONT_EV_NONE) {
			sbuf_append(&d->in, s + i + 1, len - i - 1);
			return ev;
		}
	}
	return LMTP_FRONT_EV_NONE;
}

static enum lmtp_front_event ldrive_send(struct ldrive *d, const char *s)
{
	return ldrive_sendn(d, s, strlen(s));
}

#define LHLO_REPLY "250-loft.example\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n" \
	"250-SIZE 1000\r\n250 PIPELINING\r\n"

static void run_front_transaction(bool bytewise)
{
	struct ldrive d;
	ldrive_init(&d, bytewise, false, 512, 1000);
	expect(&d.out, "220 loft.example loft ready.\r\n");
	assert_int_equal(ldrive_send(&d, "LHLO mta.example\r\n"), LMTP_FRONT_EV_RESET);
	expect(&d.out, LHLO_REPLY);
	assert_int_equal(ldrive_send(&d, "MAIL FROM:<a@b.example> SIZE=10 BODY=8BITMIME\r\n"),
			 LMTP_FRONT_EV_NONE);
	expect(&d.out, "250 2.1.0 OK\r\n");
	assert_string_equal(d.f.mail_from, "a@b.example");
	assert_string_equal(d.f.mail_body, "8BITMIME");
	/* the rest is pipelined: the recipients go to the owner together,
	 * DATA and the body wait until both are answered */
	assert_int_equal(ldrive_send(&d, "RCPT TO:<jane@example.com>\r\nRCPT TO:<bob@x>\r\n"
				     "DATA\r\nSubject: hi\r\n\r\n..dot\r\nline\r\n.\r\nQUIT\r\n"),
			 LMTP_FRONT_EV_RCPT);
	assert_string_equal(d.f.rcpt, "jane@example.com");
	free(d.f.rcpt);		/* the owner takes it */
	d.f.rcpt = NULL;
	assert_int_equal(ldrive_run(&d), LMTP_FRONT_EV_RCPT);
	assert_string_equal(d.f.rcpt, "bob@x");
	assert_null(d.f.rcpt_refusal);
	assert_int_equal(d.f.asking, 2);
	assert_int_equal(ldrive_run(&d), LMTP_FRONT_EV_NONE);
	expect(&d.out, "");
	lmtp_front_rcpt_done(&d.f, "250 2.1.5 OK", true, &d.out);
	expect(&d.out, "250 2.1.5 OK\r\n");
	assert_int_equal(ldrive_run(&d), LMTP_FRONT_EV_NONE);
	/* text from a backend is one line, whatever it holds */
	lmtp_front_rcpt_done(&d.f, "550 5.1.1 no\r\nsuch user", false, &d.out);
	expect(&d.out, "550 5.1.1 no  such user\r\n");
	assert_int_equal(d.f.accepted, 1);
	assert_int_equal(d.f.asking, 0);
	/* the body as sent, its size without stuffing and final dot */
	assert_int_equal(ldrive_run(&d), LMTP_FRONT_EV_MESSAGE);
	expect(&d.out, "354 OK\r\n");
	assert_string_equal(sbuf_cstr(&d.f.body), "Subject: hi\r\n\r\n..dot\r\nline\r\n.\r\n");
	assert_int_equal(d.f.body_size, strlen("Subject: hi\r\n\r\n.dot\r\nline\r\n"));
	assert_int_equal(ldrive_run(&d), LMTP_FRONT_EV_NONE);
	lmtp_front_data_done(&d.f);
	assert_null(d.f.mail_from);
	assert_int_equal(sbuf_len(&d.f.body), 0);
	assert_int_equal(ldrive_run(&d), LMTP_FRONT_EV_CLOSE);
	expect(&d.out, "221 2.0.0 Bye\r\n");
	/* nothing after QUIT is read */
	assert_int_equal(ldrive_send(&d, "NOOP\r\n"), LMTP_FRONT_EV_NONE);
	expect(&d.out, "");
	ldrive_deinit(&d);
}

static void test_front_transaction(void **state)
{
	(void)state;
	run_front_transaction(false);
	run_front_transaction(true);
}

/* While the owner has recipients, an RCPT the front refuses itself is
 * handed over too, to be answered in its turn; other commands, and a line
 * too long, wait until every recipient before them is answered. */
static void run_front_rcpt_batch(bool bytewise)
{
	struct ldrive d;
	ldrive_init(&d, bytewise, false, 64, 1000);
	assert_int_equal(ldrive_send(&d, "LHLO mta\r\nMAIL FROM:<>\r\n"), LMTP_FRONT_EV_RESET);
	assert_int_equal(ldrive_run(&d), LMTP_FRONT_EV_NONE);
	sbuf_reset(&d.out);
	/* alone, a refused recipient is answered at once */
	assert_int_equal(ldrive_send(&d, "RCPT TO:<>\r\n"), LMTP_FRONT_EV_NONE);
	expect(&d.out, "501 5.5.4 Invalid TO: parameter\r\n");
	assert_int_equal(ldrive_send(&d, "RCPT TO:<a@b>\r\nrcpt TO:<>\r\n"
				     "RCPT TO:<c@d> NOTIFY=NEVER\r\nRCPT TO:<e@f>\r\n"
				     "NOOP\r\nRCPT TO:<g@h>\r\n"), LMTP_FRONT_EV_RCPT);
	assert_string_equal(d.f.rcpt, "a@b");
	assert_int_equal(ldrive_run(&d), LMTP_FRONT_EV_RCPT);
	assert_null(d.f.rcpt);
	assert_string_equal(d.f.rcpt_refusal, "501 5.5.4 Invalid TO: parameter");
	assert_int_equal(ldrive_run(&d), LMTP_FRONT_EV_RCPT);
	assert_string_equal(d.f.rcpt_refusal, "555 5.5.4 Unsupported parameters");
	assert_int_equal(ldrive_run(&d), LMTP_FRONT_EV_RCPT);
	assert_string_equal(d.f.rcpt, "e@f");
	assert_null(d.f.rcpt_refusal);
	/* NOOP waits, and the RCPT behind it */
	assert_int_equal(ldrive_run(&d), LMTP_FRONT_EV_NONE);
	assert_int_equal(d.f.asking, 4);
	expect(&d.out, "");
	lmtp_front_rcpt_done(&d.f, "250 2.1.5 OK", true, &d.out);
	lmtp_front_rcpt_done(&d.f, "501 5.5.4 Invalid TO: parameter", false, &d.out);
	lmtp_front_rcpt_done(&d.f, "555 5.5.4 Unsupported parameters", false, &d.out);
	assert_int_equal(ldrive_run(&d), LMTP_FRONT_EV_NONE);
	expect(&d.out, "250 2.1.5 OK\r\n501 5.5.4 Invalid TO: parameter\r\n"
	       "555 5.5.4 Unsupported parameters\r\n");
	lmtp_front_rcpt_done(&d.f, "250 2.1.5 OK", true, &d.out);
	assert_int_equal(ldrive_run(&d), LMTP_FRONT_EV_RCPT);
	expect(&d.out, "250 2.1.5 OK\r\n250 2.0.0 OK\r\n");
	assert_string_equal(d.f.rcpt, "g@h");
	/* a line too long waits too, then is answered in its turn */
	char line[100];
	memset(line, 'x', sizeof(line));
	assert_int_equal(ldrive_sendn(&d, line, sizeof(line)), LMTP_FRONT_EV_NONE);
	expect(&d.out, "");
	lmtp_front_rcpt_done(&d.f, "250 2.1.5 OK", true, &d.out);
	assert_int_equal(ldrive_send(&d, "\r\nDATA\r\n"), LMTP_FRONT_EV_NONE);
	expect(&d.out, "250 2.1.5 OK\r\n500 5.5.2 Line too long\r\n354 OK\r\n");
	assert_int_equal(d.f.accepted, 3);
	ldrive_deinit(&d);
}

static void test_front_rcpt_batch(void **state)
{
	(void)state;
	run_front_rcpt_batch(false);
	run_front_rcpt_batch(true);
}

static void run_front_rules(bool bytewise)
{
	static const struct {
		const char *command, *reply;
	} cases[] = {
		{ "RCPT TO:<a@b>", "503 5.5.1 MAIL needed first" },
		{ "DATA", "503 5.5.1 MAIL needed first" },
		{ "LHLO", "501 5.5.4 Missing hostname" },
		{ "MAIL FROM:<> SIZE=1001", "552 5.3.4 Message size exceeds fixed maximum "
		  "message size" },
		{ "MAIL FROM:a@b", "501 5.5.4 Invalid FROM: parameter" },
		{ "MAIL FROM:<> RET=HDRS", "555 5.5.4 Unsupported parameters" },
		{ "MAIL FROM:<> SIZE=x", "501 5.5.4 Invalid parameters" },
		{ "BOGUS", "500 5.5.1 Unknown command" },
		{ "XCLIENT ADDR=192.0.2.1", "550 5.7.0 You are not from trusted IP" },
		{ "noop", "250 2.0.0 OK" },
		{ "mail from:<>", "250 2.1.0 OK" },
		{ "MAIL FROM:<>", "503 5.5.1 MAIL already given" },
		{ "RCPT TO:<>", "501 5.5.4 Invalid TO: parameter" },
		{ "RCPT TO:<a@b> NOTIFY=NEVER", "555 5.5.4 Unsupported parameters" },
		{ "DATA", "554 5.5.1 No valid recipients" },
	};
	struct ldrive d;
	ldrive_init(&d, bytewise, false, 512, 1000);
	sbuf_reset(&d.out);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char line[128], want[128];
		snprintf(line, sizeof(line), "%s\r\n", cases[i].command);
		snprintf(want, sizeof(want), "%s\r\n", cases[i].reply);
		assert_int_equal(ldrive_send(&d, line), LMTP_FRONT_EV_NONE);
		expect(&d.out, want);
	}
	/* a refused recipient leaves nothing to send DATA for */
	assert_int_equal(ldrive_send(&d, "RCPT TO:<a@b>\r\n"), LMTP_FRONT_EV_RCPT);
	lmtp_front_rcpt_done(&d.f, "550 5.1.1 <a@b> User doesn't exist: a@b", false, &d.out);
	assert_int_equal(ldrive_send(&d, "DATA\r\n"), LMTP_FRONT_EV_NONE);
	expect(&d.out, "550 5.1.1 <a@b> User doesn't exist: a@b\r\n"
	       "554 5.5.1 No valid recipients\r\n");
	/* a NUL in a command line */
	assert_int_equal(ldrive_sendn(&d, "NOOP\0x\r\n", 8), LMTP_FRONT_EV_NONE);
	expect(&d.out, "500 5.5.2 Invalid command syntax\r\n");
	/* RSET ends the transaction */
	assert_int_equal(ldrive_send(&d, "RSET\r\n"), LMTP_FRONT_EV_RESET);
	expect(&d.out, "250 2.0.0 OK\r\n");
	assert_null(d.f.mail_from);
	assert_int_equal(ldrive_send(&d, "RCPT TO:<a@b>\r\n"), LMTP_FRONT_EV_NONE);
	expect(&d.out, "503 5.5.1 MAIL needed first\r\n");
	ldrive_deinit(&d);
}

static void test_front_rules(void **state)
{
	(void)state;
	run_front_rules(false);
	run_front_rules(true);
}

static void run_front_xclient(bool bytewise)
{
	struct ldrive d;
	ldrive_init(&d, bytewise, true, 512, 1000);
	sbuf_reset(&d.out);
	assert_int_equal(ldrive_send(&d, "LHLO relay\r\n"), LMTP_FRONT_EV_RESET);
	expect(&d.out, "250-loft.example\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n"
	       "250-SIZE 1000\r\n250-XCLIENT ADDR PORT SESSION TTL\r\n250 PIPELINING\r\n");
	assert_int_equal(ldrive_send(&d, "MAIL FROM:<>\r\n"), LMTP_FRONT_EV_NONE);
	assert_int_equal(ldrive_send(&d, "XCLIENT ADDR=192.0.2.9 PORT=2525 SESSION=abc TTL=3"
				     "\r\n"), LMTP_FRONT_EV_XCLIENT);
	expect(&d.out, "250 2.1.0 OK\r\n220 loft.example loft ready.\r\n");
	assert_true(d.f.forward.have_ip);
	assert_int_equal(d.f.forward.port, 2525);
	assert_int_equal(d.f.forward.ttl, 3);
	assert_string_equal(d.f.forward.session_id, "abc");
	assert_null(d.f.mail_from);	/* the transaction started over */
	/* a TTL at the floor: proxies forward in a loop */
	assert_int_equal(ldrive_send(&d, "XCLIENT TTL=1\r\n"), LMTP_FRONT_EV_XCLIENT);
	assert_int_equal(ldrive_send(&d, "MAIL FROM:<>\r\nRCPT TO:<u@x>\r\n"),
			 LMTP_FRONT_EV_NONE);
	expect(&d.out, "220 loft.example loft ready.\r\n250 2.1.0 OK\r\n"
	       "554 5.4.6 <u@x> Proxying appears to be looping (TTL=0)\r\n");
	ldrive_deinit(&d);
}

static void test_front_xclient(void **state)
{
	(void)state;
	run_front_xclient(false);
	run_front_xclient(true);
}

/* Over-long lines are answered at once and skipped as they come; the
 * session goes on, and no more than a line's worth is ever held. */
static void run_front_long_lines(bool bytewise)
{
	struct ldrive d;
	char line[300];
	ldrive_init(&d, bytewise, false, 64, 1000);
	sbuf_reset(&d.out);
	memset(line, 'A', sizeof(line));
	assert_int_equal(ldrive_send(&d, "NOOP "), LMTP_FRONT_EV_NONE);
	assert_int_equal(ldrive_sendn(&d, line, sizeof(line)), LMTP_FRONT_EV_NONE);
	expect(&d.out, "500 5.5.2 Line too long\r\n");
	assert_true(d.f.skipping);
	for (int i = 0; i < 1000; i++)	/* a line that does not end */
		assert_int_equal(ldrive_sendn(&d, line, sizeof(line)), LMTP_FRONT_EV_NONE);
	expect(&d.out, "");
	assert_int_equal(ldrive_send(&d, "\r\nNOOP\r\n"), LMTP_FRONT_EV_NONE);
	expect(&d.out, "250 2.0.0 OK\r\n");
	assert_true(d.most_held <= 64 + 2);
	/* the limit and a CR may still end in LF; one byte more may not */
	assert_int_equal(ldrive_sendn(&d, line, 65), LMTP_FRONT_EV_NONE);
	expect(&d.out, "");
	assert_int_equal(ldrive_sendn(&d, line, 1), LMTP_FRONT_EV_NONE);
	expect(&d.out, "500 5.5.2 Line too long\r\n");
	assert_int_equal(ldrive_send(&d, "\n"), LMTP_FRONT_EV_NONE);
	/* just at the limit, with and without CR */
	memcpy(line, "NOOP ", 5);
	memcpy(line + 64, "\r\n", 2);
	assert_int_equal(ldrive_sendn(&d, line, 66), LMTP_FRONT_EV_NONE);
	line[64] = '\n';
	assert_int_equal(ldrive_sendn(&d, line, 65), LMTP_FRONT_EV_NONE);
	expect(&d.out, "250 2.0.0 OK\r\n250 2.0.0 OK\r\n");
	/* body lines have no such limit */
	assert_int_equal(ldrive_send(&d, "MAIL FROM:<>\r\nRCPT TO:<a@b>\r\n"),
			 LMTP_FRONT_EV_RCPT);
	lmtp_front_rcpt_done(&d.f, "250 2.1.5 OK", true, &d.out);
	assert_int_equal(ldrive_send(&d, "DATA\r\n"), LMTP_FRONT_EV_NONE);
	assert_int_equal(ldrive_sendn(&d, line, sizeof(line)), LMTP_FRONT_EV_NONE);
	assert_int_equal(ldrive_send(&d, "\r\n.\r\n"), LMTP_FRONT_EV_MESSAGE);
	assert_int_equal(sbuf_len(&d.f.body), sizeof(line) + 5);
	expect(&d.out, "250 2.1.0 OK\r\n250 2.1.5 OK\r\n354 OK\r\n");
	ldrive_deinit(&d);
}

static void test_front_long_lines(void **state)
{
	(void)state;
	run_front_long_lines(false);
	run_front_long_lines(true);
}

/* The dot reader: stuffing, the final dot with CRLF or a bare LF, the
 * size as RFC 1870 counts it, and a message over the limit. */
static void run_front_body(bool bytewise)
{
	static const struct {
		const char *body;	/* as sent, up to the final dot */
		uint64_t size;
	} cases[] = {
		{ ".\r\n", 0 },
		{ ".\n", 0 },
		{ "a\r\n.\r\n", 3 },
		{ "..\r\n...\r\n.x\r\n.\r\n", 3 + 4 + 3 },
		{ ". \r\n.\n", 3 },
		{ "a\nb\n.\n", 4 },
		{ "x.\r\n.y\r\n.\r\n", 4 + 3 },
		{ "Subject: 1\r\n\r\n.\r\r\n.\r\n", 12 + 2 + 3 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct ldrive d;
		ldrive_init(&d, bytewise, false, 512, 1000);
		assert_int_equal(ldrive_send(&d, "MAIL FROM:<>\r\nRCPT TO:<a@b>\r\n"),
				 LMTP_FRONT_EV_RCPT);
		lmtp_front_rcpt_done(&d.f, "250 2.1.5 OK", true, &d.out);
		assert_int_equal(ldrive_send(&d, "DATA\r\n"), LMTP_FRONT_EV_NONE);
		if (ldrive_send(&d, cases[i].body) != LMTP_FRONT_EV_MESSAGE)
			fail_msg("case %zu: no message", i);
		size_t len = strlen(cases[i].body);
		bool bare_lf = cases[i].body[len - 2] == '.' && cases[i].body[len - 1] == '\n';
		/* kept as sent; the final dot as ".\r\n" */
		assert_int_equal(sbuf_len(&d.f.body), len + bare_lf);
		assert_memory_equal(sbuf_data(&d.f.body), cases[i].body, len - 2);
		if (d.f.body_size != cases[i].size)
			fail_msg("case %zu: size %llu, want %llu", i,
				 (unsigned long long)d.f.body_size,
				 (unsigned long long)cases[i].size);
		ldrive_deinit(&d);
	}

	/* over the limit: read to its end, refused for every recipient */
	struct ldrive d;
	ldrive_init(&d, bytewise, false, 512, 20);
	sbuf_reset(&d.out);
	assert_int_equal(ldrive_send(&d, "MAIL FROM:<>\r\nRCPT TO:<a@b>\r\n"), LMTP_FRONT_EV_RCPT);
	lmtp_front_rcpt_done(&d.f, "250 2.1.5 OK", true, &d.out);
	assert_int_equal(ldrive_run(&d), LMTP_FRONT_EV_NONE);
	assert_int_equal(ldrive_send(&d, "RCPT TO:<c@d>\r\n"), LMTP_FRONT_EV_RCPT);
	lmtp_front_rcpt_done(&d.f, "250 2.1.5 OK", true, &d.out);
	assert_int_equal(ldrive_send(&d, "DATA\r\n0123456789\r\n012345\r\n"), LMTP_FRONT_EV_NONE);
	assert_int_equal(sbuf_len(&d.f.body), 20);	/* just the limit: kept */
	assert_int_equal(ldrive_send(&d, "..\r\n"), LMTP_FRONT_EV_NONE);
	assert_int_equal(sbuf_len(&d.f.body), 0);	/* no longer kept */
	assert_int_equal(ldrive_send(&d, ".\r\nNOOP\r\n"), LMTP_FRONT_EV_RESET);
	expect(&d.out, "250 2.1.0 OK\r\n250 2.1.5 OK\r\n250 2.1.5 OK\r\n354 OK\r\n"
	       "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
	       "552 5.3.4 Message size exceeds fixed maximum message size\r\n");
	assert_null(d.f.mail_from);
	assert_int_equal(ldrive_run(&d), LMTP_FRONT_EV_NONE);
	expect(&d.out, "250 2.0.0 OK\r\n");
	ldrive_deinit(&d);

	/* a message of just the limit, counted unstuffed, is taken */
	ldrive_init(&d, bytewise, false, 512, 10);
	assert_int_equal(ldrive_send(&d, "MAIL FROM:<>\r\nRCPT TO:<a@b>\r\n"), LMTP_FRONT_EV_RCPT);
	lmtp_front_rcpt_done(&d.f, "250 2.1.5 OK", true, &d.out);
	assert_int_equal(ldrive_send(&d, "DATA\r\n..ab\r\n..de\r\n.\r\n"),
			 LMTP_FRONT_EV_MESSAGE);
	assert_int_equal(d.f.body_size, 10);
	ldrive_deinit(&d);
}

static void test_front_body(void **state)
{
	(void)state;
	run_front_body(false);
	run_front_body(true);
}

/* ---- lmtp_client: towards a backend ------------------------------- */

static enum lmtp_client_event feed(struct lmtp_client *c, struct sbuf *in, const char *s,
				   bool bytewise, struct sbuf *out)
{
	enum lmtp_client_event ev = LMTP_EV_NONE;
	size_t len = strlen(s);
	for (size_t i = 0; i < len && ev == LMTP_EV_NONE; ) {
		size_t n = bytewise ? 1 : len - i, consumed;
		sbuf_append(in, s + i, n);
		i += n;
		ev = lmtp_client_feed(c, (const unsigned char *)sbuf_data(in), sbuf_len(in),
				      &consumed, out);
		sbuf_consume(in, consumed);
	}
	return ev;
}

static void run_client(bool bytewise)
{
	struct lmtp_client_params p = {
		.hostname = "loft.example", .forward = true, .client_port = 40000,
		.session_id = "s1", .ttl = 5,
	};
	ipaddr_parse("192.0.2.7", &p.client_ip);
	struct lmtp_client c;
	struct sbuf in = SBUF_INIT, out = SBUF_INIT;
	lmtp_client_init(&c, &p);
	assert_true(lmtp_client_owes_reply(&c));	/* the greeting */
	assert_int_equal(feed(&c, &in, "220 be1 LMTP ready\r\n", bytewise, &out), LMTP_EV_NONE);
	expect(&out, "LHLO loft.example\r\n");
	assert_int_equal(feed(&c, &in, "250-be1\r\n250-PIPELINING\r\n"
			      "250 XCLIENT ADDR PORT SESSION TTL TIMEOUT\r\n", bytewise, &out),
			 LMTP_EV_NONE);
	expect(&out, "XCLIENT ADDR=192.0.2.7 PORT=40000 SESSION=s1 TTL=4\r\n");
	assert_int_equal(feed(&c, &in, "220 be1 LMTP ready\r\n", bytewise, &out), LMTP_EV_NONE);
	expect(&out, "LHLO loft.example\r\n");
	assert_int_equal(feed(&c, &in, "250-be1\r\n250-8BITMIME\r\n250 XCLIENT ADDR\r\n",
			      bytewise, &out), LMTP_EV_READY);
	/* nothing owed between commands: no backend timer runs then */
	assert_false(lmtp_client_owes_reply(&c));
	lmtp_client_mail(&c, "a@b", "8BITMIME", &out);
	assert_true(lmtp_client_owes_reply(&c));
	expect(&out, "MAIL FROM:<a@b> BODY=8BITMIME\r\n");
	assert_int_equal(feed(&c, &in, "250 2.1.0 OK\r\n", bytewise, &out), LMTP_EV_REPLY);
	assert_int_equal(c.code, 250);
	assert_false(lmtp_client_owes_reply(&c));
	lmtp_client_rcpt(&c, "jane", &out);
	assert_int_equal(feed(&c, &in, "250 2.1.5 OK\r\n", bytewise, &out), LMTP_EV_REPLY);
	lmtp_client_rcpt(&c, "bob", &out);
	assert_int_equal(feed(&c, &in, "550 5.1.1 <bob> User doesn't exist\r\n", bytewise,
			      &out), LMTP_EV_REPLY);
	assert_int_equal(c.code, 550);
	assert_string_equal(sbuf_cstr(&c.reply), "550 5.1.1 <bob> User doesn't exist");
	lmtp_client_rcpt(&c, "joe", &out);
	assert_int_equal(feed(&c, &in, "250 2.1.5 OK\r\n", bytewise, &out), LMTP_EV_REPLY);
	sbuf_reset(&out);
	lmtp_client_data(&c, 2, &out);
	expect(&out, "DATA\r\n");
	assert_int_equal(feed(&c, &in, "354 OK\r\n", bytewise, &out), LMTP_EV_DATA_GO);
	assert_true(lmtp_client_owes_reply(&c));
	/* one reply per accepted recipient, in order */
	assert_int_equal(feed(&c, &in, "250 2.0.0 <jane> Saved\r\n", bytewise, &out),
			 LMTP_EV_DATA_REPLY);
	assert_string_equal(sbuf_cstr(&c.reply), "250 2.0.0 <jane> Saved");
	assert_int_equal(feed(&c, &in, "452 4.2.2 <joe> Quota exceeded\r\n", bytewise, &out),
			 LMTP_EV_DATA_REPLY);
	assert_int_equal(c.code, 452);
	assert_false(lmtp_client_owes_reply(&c));
	/* ready for the next transaction */
	lmtp_client_mail(&c, "", NULL, &out);
	expect(&out, "MAIL FROM:<>\r\n");
	lmtp_client_deinit(&c);
	sbuf_free(&in);
	sbuf_free(&out);
}

static void test_client(void **state)
{
	(void)state;
	run_client(false);
	run_client(true);
}

/* MAIL and RCPT pipelined (one reply each, in order); a transaction
 * left undelivered gets an RSET before the next MAIL, whose reply is no
 * event; a delivered one does not. */
static void run_client_reuse(bool bytewise)
{
	struct lmtp_client_params p = { .hostname = "loft", .ttl = 5 };
	struct lmtp_client c;
	struct sbuf in = SBUF_INIT, out = SBUF_INIT;

	lmtp_client_init(&c, &p);
	assert_int_equal(feed(&c, &in, "220 x\r\n250-be\r\n250 PIPELINING\r\n", bytewise,
			      &out), LMTP_EV_READY);
	assert_true(c.pipelining);
	sbuf_reset(&out);
	lmtp_client_mail(&c, "a@b", NULL, &out);
	lmtp_client_rcpt(&c, "jane", &out);
	expect(&out, "MAIL FROM:<a@b>\r\nRCPT TO:<jane>\r\n");
	assert_int_equal(feed(&c, &in, "250 2.1.0 OK\r\n", bytewise, &out), LMTP_EV_REPLY);
	assert_true(lmtp_client_owes_reply(&c));	/* the RCPT's */
	assert_false(lmtp_client_is_idle(&c));
	assert_int_equal(feed(&c, &in, "250 2.1.5 OK\r\n", bytewise, &out), LMTP_EV_REPLY);
	assert_true(lmtp_client_is_idle(&c));
	/* the client gave up that transaction (RSET): the backend must too */
	lmtp_client_mail(&c, "c@d", NULL, &out);
	expect(&out, "RSET\r\nMAIL FROM:<c@d>\r\n");
	assert_int_equal(feed(&c, &in, "250 2.0.0 OK\r\n", bytewise, &out), LMTP_EV_NONE);
	assert_true(lmtp_client_owes_reply(&c));
	assert_int_equal(feed(&c, &in, "250 2.1.0 OK\r\n", bytewise, &out), LMTP_EV_REPLY);
	lmtp_client_rcpt(&c, "jane", &out);
	assert_int_equal(feed(&c, &in, "250 2.1.5 OK\r\n", bytewise, &out), LMTP_EV_REPLY);
	sbuf_reset(&out);
	lmtp_client_data(&c, 1, &out);
	expect(&out, "DATA\r\n");
	assert_int_equal(feed(&c, &in, "354 go\r\n", bytewise, &out), LMTP_EV_DATA_GO);
	assert_int_equal(feed(&c, &in, "250 2.0.0 <jane> Saved\r\n", bytewise, &out),
			 LMTP_EV_DATA_REPLY);
	assert_true(lmtp_client_is_idle(&c));
	/* delivered: the next MAIL goes alone */
	lmtp_client_mail(&c, "e@f", NULL, &out);
	expect(&out, "MAIL FROM:<e@f>\r\n");
	assert_int_equal(feed(&c, &in, "250 2.1.0 OK\r\n", bytewise, &out), LMTP_EV_REPLY);
	/* an RSET refused: the connection is not to be trusted */
	lmtp_client_mail(&c, "g@h", NULL, &out);
	expect(&out, "RSET\r\nMAIL FROM:<g@h>\r\n");
	assert_int_equal(feed(&c, &in, "421 4.3.2 Shutting down\r\n", bytewise, &out),
			 LMTP_EV_FAIL);
	assert_string_equal(c.error, "RSET failed");
	assert_false(lmtp_client_is_idle(&c));
	lmtp_client_deinit(&c);
	sbuf_free(&in);
	sbuf_free(&out);
}

static void test_client_reuse(void **state)
{
	(void)state;
	run_client_reuse(false);
	run_client_reuse(true);
}

static void test_client_failures(void **state)
{
	(void)state;
	struct lmtp_client_params p = { .hostname = "loft", .ttl = 5 };
	struct lmtp_client c;
	struct sbuf in = SBUF_INIT, out = SBUF_INIT;

	lmtp_client_init(&c, &p);
	assert_int_equal(feed(&c, &in, "* OK IMAP\r\n", false, &out), LMTP_EV_FAIL);
	assert_string_equal(c.error, "Invalid banner");
	lmtp_client_deinit(&c);

	sbuf_reset(&in);
	lmtp_client_init(&c, &p);
	assert_int_equal(feed(&c, &in, "220 x\r\n500 no\r\n", false, &out), LMTP_EV_FAIL);
	assert_string_equal(c.error, "LHLO failed");
	lmtp_client_deinit(&c);

	/* without XCLIENT offered (or forwarding off) LHLO leads to READY;
	 * a refused DATA stands for every recipient */
	sbuf_reset(&in);
	lmtp_client_init(&c, &p);
	assert_int_equal(feed(&c, &in, "220 x\r\n250 be\r\n", false, &out), LMTP_EV_READY);
	sbuf_reset(&out);
	/* no 8BITMIME offered: the client's BODY= is not passed on */
	lmtp_client_mail(&c, "a@b", "8BITMIME", &out);
	expect(&out, "MAIL FROM:<a@b>\r\n");
	assert_int_equal(feed(&c, &in, "250 OK\r\n", false, &out), LMTP_EV_REPLY);
	lmtp_client_data(&c, 3, &out);
	assert_int_equal(feed(&c, &in, "554 5.5.1 No valid recipients\r\n", false, &out),
			 LMTP_EV_DATA_REPLY);
	assert_int_equal(c.data_replies, 0);
	assert_int_equal(c.code, 554);
	lmtp_client_deinit(&c);
	sbuf_free(&in);
	sbuf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_command_paths),
		cmocka_unit_test(test_mail_params),
		cmocka_unit_test(test_command_split),
		cmocka_unit_test(test_front_transaction),
		cmocka_unit_test(test_front_rcpt_batch),
		cmocka_unit_test(test_front_rules),
		cmocka_unit_test(test_front_xclient),
		cmocka_unit_test(test_front_long_lines),
		cmocka_unit_test(test_front_body),
		cmocka_unit_test(test_client),
		cmocka_unit_test(test_client_reuse),
		cmocka_unit_test(test_client_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
