/* Unit tests for src/proto IMAP: the command parser (whole and one byte
 * at a time), the pre-login front, SASL, and the backend login machine
 * against scripted backend replies. */
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
#include "proto/imap_back.h"
#include "proto/imap_front.h"
#include "proto/imap_parser.h"
#include "proto/sasl.h"
#include "proto_drive.h"

/* ---- parser ------------------------------------------------------- */

/* Renders what the parser produced: "tag|CMD|arg|arg" with lists as ( )
 * and results as OK, ERR:<text>, CONT (continuation owed). Runs the
 * parser over the input either whole or one byte at a time. */
static char *parse_render(const char *input, size_t len, bool bytewise,
			  size_t max_line, size_t max_literal)
{
	struct imap_parser p;
	struct sbuf buf = SBUF_INIT, res = SBUF_INIT;
	size_t fed = 0;

	imap_parser_init(&p, max_line, max_literal);
	while (fed < len) {
		size_t n = bytewise ? 1 : len - fed;
		sbuf_append(&buf, input + fed, n);
		fed += n;
		for (;;) {
			unsigned char *b = (unsigned char *)sbuf_mdata(&buf);
			if (sbuf_len(&buf) == 0)
				break;
			enum parse_result r = imap_parser_parse(&p, b, sbuf_len(&buf));
			for (unsigned int i = 0; i < p.continuations; i++)
				sbuf_appends(&res, "CONT;");
			if (r == PARSE_OK) {
				sbuf_append(&res, b + p.tag.off, p.tag.len);
				sbuf_appendc(&res, '|');
				sbuf_append(&res, b + p.cmd.off, p.cmd.len);
				for (unsigned int i = 0; i < p.nargs; i++) {
					const struct imap_arg *a = &p.args[i];
					sbuf_appendc(&res, '|');
					if (a->type == IMAP_ARG_LIST_START)
						sbuf_appendc(&res, '(');
					else if (a->type == IMAP_ARG_LIST_END)
						sbuf_appendc(&res, ')');
					else
						sbuf_append(&res, b + a->off, a->len);
				}
				sbuf_appends(&res, ";");
			} else if (r == PARSE_ERROR) {
				sbuf_appendf(&res, "ERR%s:%s;", p.fatal ? "!" : "", p.error);
			}
			size_t c = p.consumed;
			if (c == 0)
				break;
			sbuf_consume(&buf, c);
			imap_parser_reset(&p);
		}
	}
	sbuf_free(&buf);
	char *r = xstrdup(sbuf_cstr(&res));
	sbuf_free(&res);
	return r;
}

static void expect_parse(const char *input, size_t max_line, size_t max_literal,
			 const char *expected)
{
	size_t len = strlen(input);
	char *whole = parse_render(input, len, false, max_line, max_literal);
	char *bytes = parse_render(input, len, true, max_line, max_literal);
	if (strcmp(whole, expected) != 0)
		fail_msg("whole: got '%s' want '%s'", whole, expected);
	/* a byte at a time gives the same commands; the continuation is
	 * then owed before the literal arrives, exactly once per literal */
	if (strcmp(bytes, expected) != 0)
		fail_msg("bytewise: got '%s' want '%s'", bytes, expected);
	free(whole);
	free(bytes);
}

static void test_parser_basic(void **state)
{
	(void)state;
	expect_parse("a1 CAPABILITY\r\n", 100, 100, "a1|CAPABILITY;");
	expect_parse("a1 noop\n", 100, 100, "a1|noop;");
	expect_parse("a LOGIN user pass\r\nb LOGOUT\r\n", 100, 100,
		     "a|LOGIN|user|pass;b|LOGOUT;");
	expect_parse("a LOGIN \"us er\" \"p\\\"a\\\\ss\"\r\n", 100, 100,
		     "a|LOGIN|us er|p\"a\\ss;");
	expect_parse("a LOGIN \"\" \"\"\r\n", 100, 100, "a|LOGIN||;");
	expect_parse("a ID (\"name\" \"x\" \"version\" NIL)\r\n", 100, 100,
		     "a|ID|(|name|x|version|NIL|);");
	expect_parse("a ID ()\r\n", 100, 100, "a|ID|(|);");
	/* empty lines are ignored */
	expect_parse("\r\n\r\na NOOP\r\n", 100, 100, "a|NOOP;");
	/* UTF-8 in atoms passes */
	expect_parse("a LOGIN j\xc3\xa4ne pass\r\n", 100, 100,
		     "a|LOGIN|j\xc3\xa4ne|pass;");
}

static void test_parser_literals(void **state)
{
	(void)state;
	expect_parse("a LOGIN {4}\r\nuser {6}\r\nsecret\r\n", 100, 100,
		     "CONT;CONT;a|LOGIN|user|secret;");
	expect_parse("a LOGIN {4+}\r\nuser {6+}\r\nsecret\r\n", 100, 100,
		     "a|LOGIN|user|secret;");
	/* literal contents are opaque: CRLF, quotes, braces */
	expect_parse("a LOGIN {5+}\r\na\r\n\"{ pw\r\n", 100, 100,
		     "a|LOGIN|a\r\n\"{|pw;");
	expect_parse("a LOGIN {0}\r\n pw\r\n", 100, 100, "CONT;a|LOGIN||pw;");
	/* a refused synchronising literal costs only the command */
	expect_parse("a LOGIN {101}\r\nb NOOP\r\n", 100, 100,
		     "ERR:Literal too large.;b|NOOP;");
	/* a non-synchronising one is already on its way: fatal */
	expect_parse("a LOGIN {101+}\r\n", 100, 100, "ERR!:Literal too large.;");
	expect_parse("a LOGIN {1x}\r\nb NOOP\r\n", 100, 100,
		     "ERR:Invalid literal.;b|NOOP;");
	expect_parse("a LOGIN {3} x\r\n", 100, 100, "ERR:Invalid literal.;");
}

static void test_parser_errors(void **state)
{
	(void)state;
	expect_parse("a LOGIN \"unterminated\r\nb NOOP\r\n", 100, 100,
		     "ERR:Missing '\"'.;b|NOOP;");
	expect_parse("a ID (\"x\" \"y\"\r\n", 100, 100, "ERR:Missing ')'.;");
	expect_parse("a ID \"x\")\r\n", 100, 100, "ERR:Unexpected ')'.;");
	expect_parse("a\r\n", 100, 100, "ERR:Missing command.;");
	expect_parse("a+b NOOP\r\n", 100, 100,
		     "ERR:Error in IMAP command received by server.;");
	expect_parse("\"a\" NOOP\r\n", 100, 100,
		     "ERR:Error in IMAP command received by server.;");
	expect_parse("a LOGIN \"x\\y\" p\r\n", 100, 100,
		     "ERR:Invalid escape in quoted string.;");
	expect_parse("a LOGIN \"x\"y\r\n", 100, 100,
		     "ERR:Missing space after quoted string.;");
	expect_parse("a LOGIN x\001y\r\n", 100, 100,
		     "ERR:Invalid characters in atom.;");
	/* too long, whole line present, and then still arriving */
	char line[301];
	memset(line, 'x', sizeof(line));
	memcpy(line, "a NOOP ", 7);
	memcpy(line + 290, "\r\nb NOOP\r\n", 11);
	char *whole = parse_render(line, strlen(line), false, 100, 100);
	assert_string_equal(whole, "ERR:Command line too long.;b|NOOP;");
	free(whole);
	/* bytewise the error comes as soon as the limit is passed, then
	 * the rest of the line is skipped */
	char *bytes = parse_render(line, strlen(line), true, 100, 100);
	assert_string_equal(bytes, "ERR:Command line too long.;b|NOOP;");
	free(bytes);
	/* exactly at the limit is fine */
	char ok[120];
	memset(ok, 'y', sizeof(ok));
	memcpy(ok, "a NOOP ", 7);
	memcpy(ok + 100, "\r\n", 3);
	char *r = parse_render(ok, strlen(ok), true, 100, 100);
	assert_non_null(strstr(r, "a|NOOP|yyy"));
	free(r);
	/* a line too long keeps the tag it starts with, for the reply */
	struct imap_parser p;
	imap_parser_init(&p, 100, 100);
	assert_int_equal(imap_parser_parse(&p, (unsigned char *)line, 150), PARSE_ERROR);
	assert_true(p.have_tag);
	assert_int_equal(p.tag.off, 0);
	assert_int_equal(p.tag.len, 1);
	imap_parser_init(&p, 100, 100);
	memset(line, 'x', 150);
	assert_int_equal(imap_parser_parse(&p, (unsigned char *)line, 150), PARSE_ERROR);
	assert_false(p.have_tag);
	/* a tag is at most 126 bytes, without + % * or \ (as imap-login) */
	struct sbuf tag = SBUF_INIT;
	for (int i = 0; i < IMAP_TAG_MAX_LEN; i++)
		sbuf_appendc(&tag, 't');
	sbuf_appends(&tag, " NOOP\r\n");
	r = parse_render(sbuf_cstr(&tag), sbuf_len(&tag), false, 1000, 100);
	assert_non_null(strstr(r, "|NOOP;"));
	free(r);
	sbuf_reset(&tag);
	for (int i = 0; i < IMAP_TAG_MAX_LEN + 1; i++)
		sbuf_appendc(&tag, 't');
	sbuf_appends(&tag, " NOOP\r\n");
	r = parse_render(sbuf_cstr(&tag), sbuf_len(&tag), false, 1000, 100);
	assert_string_equal(r, "ERR:Error in IMAP command received by server.;");
	free(r);
	sbuf_free(&tag);
	expect_parse("a%b NOOP\r\na*b NOOP\r\na\\b NOOP\r\na/b] NOOP\r\n", 100, 100,
		     "ERR:Error in IMAP command received by server.;"
		     "ERR:Error in IMAP command received by server.;"
		     "ERR:Error in IMAP command received by server.;a/b]|NOOP;");
	/* too many arguments */
	struct sbuf many = SBUF_INIT;
	sbuf_appends(&many, "a X");
	for (int i = 0; i < IMAP_MAX_ARGS + 1; i++)
		sbuf_appends(&many, " z");
	sbuf_appends(&many, "\r\n");
	r = parse_render(sbuf_cstr(&many), sbuf_len(&many), false, 1000, 100);
	assert_string_equal(r, "ERR:Too many arguments.;");
	free(r);
	sbuf_free(&many);
}

/* ---- front -------------------------------------------------------- */

static const struct front_params test_params = {
	.greeting = "loft ready.",
	.max_line = 200,
	.max_literal = 100,
	.max_bad_commands = 3,
	.disable_plaintext_auth = false,
};

#define CAPS "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+"

static void run_front_basic(bool bytewise)
{
	struct drive d;
	drive_init(&d, &imap_front_ops, &test_params);
	expect_out(&d, "* OK [CAPABILITY " CAPS " STARTTLS AUTH=PLAIN AUTH=LOGIN] loft ready.\r\n");
	assert_int_equal(drive_send(&d, "a CAPABILITY\r\nb NOOP\r\nc ID NIL\r\n", bytewise),
			 FRONT_EV_NONE);
	expect_out(&d, "* CAPABILITY " CAPS " STARTTLS AUTH=PLAIN AUTH=LOGIN\r\n"
		   "a OK Pre-login capabilities listed, post-login capabilities have more.\r\n"
		   "b OK NOOP completed.\r\n"
		   "* ID (\"name\" \"loft\")\r\nc OK ID completed.\r\n");
	assert_int_equal(drive_send(&d, "d STARTTLS\r\n", bytewise), FRONT_EV_STARTTLS);
	expect_out(&d, "d OK Begin TLS negotiation now.\r\n");
	d.f->tls_active = true;
	assert_int_equal(drive_send(&d, "e CAPABILITY\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "* CAPABILITY " CAPS " AUTH=PLAIN AUTH=LOGIN\r\n"
		   "e OK Pre-login capabilities listed, post-login capabilities have more.\r\n");
	assert_int_equal(drive_send(&d, "f STARTTLS\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "f BAD TLS is already active.\r\n");
	assert_int_equal(drive_send(&d, "g LOGOUT\r\n", bytewise), FRONT_EV_CLOSE);
	expect_out(&d, "* BYE Logging out\r\ng OK Logout completed.\r\n");
	assert_string_equal(d.f->close_reason, "logged out");
	drive_deinit(&d);
}

static void test_front_basic(void **state)
{
	(void)state;
	run_front_basic(false);
	run_front_basic(true);
}

static void run_front_login(bool bytewise)
{
	struct drive d;
	drive_init(&d, &imap_front_ops, &test_params);
	sbuf_reset(&d.out);
	/* a pipelined command after LOGIN stays buffered for the backend */
	assert_int_equal(drive_send(&d, "a1 LOGIN {4}\r\njane {6+}\r\nsecret\r\na2 SELECT INBOX\r\n",
				    bytewise), FRONT_EV_AUTH);
	expect_out(&d, "+ OK\r\n");
	assert_null(d.f->login.mech);
	assert_string_equal(d.f->login.creds.authcid, "jane");
	assert_string_equal(d.f->login.creds.password, "secret");
	assert_string_equal(sbuf_cstr(&d.in), "a2 SELECT INBOX\r\n");
	/* a failure answers the saved tag and accepts commands again */
	imap_front_ops.auth_failed(d.f, FRONT_AUTH_FAILED, NULL, &d.out);
	expect_out(&d, "a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
	assert_null(d.f->login.creds.password);
	sbuf_reset(&d.in);
	assert_int_equal(drive_send(&d, "b LOGIN jane secret\r\n", bytewise), FRONT_EV_AUTH);
	imap_front_ops.auth_failed(d.f, FRONT_AUTH_TEMPFAIL, NULL, &d.out);
	expect_out(&d, "b NO [UNAVAILABLE] Temporary authentication failure.\r\n");
	assert_int_equal(drive_send(&d, "c LOGIN jane secret\r\n", bytewise), FRONT_EV_AUTH);
	imap_front_ops.auth_failed(d.f, FRONT_AUTH_FAILED_REASON, "Try later\r\n* BYE", &d.out);
	expect_out(&d, "c NO [AUTHENTICATIONFAILED] Try later  * BYE\r\n");
	assert_int_equal(drive_send(&d, "d LOGIN jane secret\r\n", bytewise), FRONT_EV_AUTH);
	imap_front_ops.auth_failed(d.f, FRONT_AUTH_BACKEND_REPLY, "NO [OVERQUOTA] Full", &d.out);
	expect_out(&d, "d NO [OVERQUOTA] Full\r\n");
	assert_int_equal(drive_send(&d, "e LOGIN jane secret\r\n", bytewise), FRONT_EV_AUTH);
	imap_front_ops.logged_in(d.f, "OK [CAPABILITY IMAP4rev1 IDLE] Logged in", &d.out);
	expect_out(&d, "e OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n");
	/* after login the front takes no more input */
	size_t consumed;
	sbuf_appends(&d.in, "f NOOP\r\n");
	assert_int_equal(imap_front_ops.feed(d.f, (unsigned char *)sbuf_mdata(&d.in),
					     sbuf_len(&d.in), &consumed, &d.out),
			 FRONT_EV_NONE);
	assert_int_equal(consumed, 0);
	drive_deinit(&d);
}

static void test_front_login(void **state)
{
	(void)state;
	run_front_login(false);
	run_front_login(true);
}

static void run_front_authenticate(bool bytewise)
{
	struct drive d;
	drive_init(&d, &imap_front_ops, &test_params);
	sbuf_reset(&d.out);
	/* SASL-IR: "\0jane\0secret" */
	assert_int_equal(drive_send(&d, "a AUTHENTICATE PLAIN AGphbmUAc2VjcmV0\r\n",
				    bytewise), FRONT_EV_AUTH);
	assert_string_equal(sasl_mech_name(d.f->login.mech), "PLAIN");
	assert_string_equal(d.f->login.creds.authcid, "jane");
	assert_string_equal(d.f->login.creds.authzid, "");
	assert_string_equal(d.f->login.creds.password, "secret");
	imap_front_ops.auth_failed(d.f, FRONT_AUTH_FAILED, NULL, &d.out);
	sbuf_reset(&d.out);
	/* continuation */
	assert_int_equal(drive_send(&d, "b authenticate plain\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "+ \r\n");
	assert_int_equal(drive_send(&d, "AGphbmUAc2VjcmV0\r\n", bytewise), FRONT_EV_AUTH);
	assert_string_equal(d.f->login.creds.password, "secret");
	imap_front_ops.auth_failed(d.f, FRONT_AUTH_FAILED, NULL, &d.out);
	sbuf_reset(&d.out);
	/* LOGIN mechanism with prompts */
	assert_int_equal(drive_send(&d, "c AUTHENTICATE LOGIN\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "+ VXNlcm5hbWU6\r\n");
	assert_int_equal(drive_send(&d, "amFuZQ==\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "+ UGFzc3dvcmQ6\r\n");
	assert_int_equal(drive_send(&d, "c2VjcmV0\r\n", bytewise), FRONT_EV_AUTH);
	assert_string_equal(sasl_mech_name(d.f->login.mech), "LOGIN");
	assert_string_equal(d.f->login.creds.authcid, "jane");
	assert_string_equal(d.f->login.creds.password, "secret");
	imap_front_ops.auth_failed(d.f, FRONT_AUTH_FAILED, NULL, &d.out);
	sbuf_reset(&d.out);
	/* "*" cancels; bad base64 is BAD; unknown mechanisms are NO */
	assert_int_equal(drive_send(&d, "d AUTHENTICATE PLAIN\r\n*\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "+ \r\nd BAD Authentication aborted by client.\r\n");
	assert_int_equal(drive_send(&d, "e AUTHENTICATE PLAIN\r\n!!!\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "+ \r\ne BAD Invalid base64 data in continued response.\r\n");
	assert_int_equal(drive_send(&d, "f AUTHENTICATE CRAM-MD5\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "f NO Unsupported authentication mechanism.\r\n");
	/* a malformed PLAIN message is a failed authentication */
	assert_int_equal(drive_send(&d, "g AUTHENTICATE PLAIN amFuZQ==\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "g NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
	/* empty initial response "=" */
	assert_int_equal(drive_send(&d, "h AUTHENTICATE PLAIN =\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "h NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
	drive_deinit(&d);
}

static void test_front_authenticate(void **state)
{
	(void)state;
	run_front_authenticate(false);
	run_front_authenticate(true);
}

/* auth.passthrough_mechanisms: offered as configured; the user read from
 * the first message; the backend's challenges relayed (issue 16). */
static void run_front_passthrough(bool bytewise)
{
	char *names[] = { "xoauth2", "SCRAM-SHA-256" };
	const char *bad;
	struct front_params params = test_params;
	assert_int_equal(sasl_passthrough_mask(names, 2, &params.passthrough_mechs, &bad), 0);
	struct drive d;
	drive_init(&d, &imap_front_ops, &params);
	sbuf_reset(&d.out);
	assert_int_equal(drive_send(&d, "a CAPABILITY\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "* CAPABILITY " CAPS " STARTTLS AUTH=PLAIN AUTH=LOGIN AUTH=SCRAM-SHA-256 "
		   "AUTH=XOAUTH2\r\na OK Pre-login capabilities listed, post-login "
		   "capabilities have more.\r\n");
	/* not configured: unknown */
	assert_int_equal(drive_send(&d, "b AUTHENTICATE OAUTHBEARER\r\n", bytewise),
			 FRONT_EV_NONE);
	expect_out(&d, "b NO Unsupported authentication mechanism.\r\n");
	/* XOAUTH2 with SASL-IR: "user=jane^Aauth=Bearer t^A^A" */
	assert_int_equal(drive_send(&d, "c AUTHENTICATE XOAUTH2 "
				    "dXNlcj1qYW5lAWF1dGg9QmVhcmVyIHQBAQ==\r\n", bytewise),
			 FRONT_EV_AUTH);
	assert_string_equal(d.f->login.creds.authcid, "jane");
	assert_null(d.f->login.creds.password);
	assert_int_equal(strlen(d.f->login.creds.message), 25);
	assert_memory_equal(d.f->login.creds.message, "user=jane\x01" "auth=Bearer t\x01\x01", 25);
	/* the backend's error challenge goes to the client, its answer back */
	assert_int_equal(front_sasl_relay(d.f, "eyJzIjoxfQ==", 12, &d.out), 0);
	expect_out(&d, "+ eyJzIjoxfQ==\r\n");
	assert_int_equal(drive_send(&d, "\r\n", bytewise), FRONT_EV_SASL_RESPONSE);
	assert_int_equal(sbuf_len(&d.f->login.response), 0);
	assert_int_equal(d.f->state, FRONT_AUTH_WAIT);
	imap_front_ops.auth_failed(d.f, FRONT_AUTH_FAILED, NULL, &d.out);
	expect_out(&d, "c NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
	/* SCRAM without an initial response: "n,,n=jane,r=abc", then the
	 * server-first message relayed, the client-final answer kept as sent */
	assert_int_equal(drive_send(&d, "d AUTHENTICATE SCRAM-SHA-256\r\n", bytewise),
			 FRONT_EV_NONE);
	expect_out(&d, "+ \r\n");
	assert_int_equal(drive_send(&d, "biwsbj1qYW5lLHI9YWJj\r\n", bytewise), FRONT_EV_AUTH);
	assert_string_equal(d.f->login.creds.authcid, "jane");
	front_login_clear(d.f);
	assert_int_equal(front_sasl_relay(d.f, "cj1hYmNkZWYscz1jMkZzZEE9PSxpPTQwOTY=", 36,
					  &d.out), 0);
	expect_out(&d, "+ cj1hYmNkZWYscz1jMkZzZEE9PSxpPTQwOTY=\r\n");
	assert_int_equal(drive_send(&d, "Yz1iaXdzLHI9YWJjZGVm\r\n", bytewise),
			 FRONT_EV_SASL_RESPONSE);
	assert_string_equal(sbuf_cstr(&d.f->login.response), "Yz1iaXdzLHI9YWJjZGVm");
	/* a challenge that is not base64 is not relayed */
	assert_int_equal(front_sasl_relay(d.f, "a\"b", 3, &d.out), -1);
	assert_int_equal(sbuf_len(&d.out), 0);
	/* "*" or bad base64 ends the exchange with the usual replies */
	assert_int_equal(front_sasl_relay(d.f, "", 0, &d.out), 0);
	expect_out(&d, "+ \r\n");
	assert_int_equal(drive_send(&d, "*\r\n", bytewise), FRONT_EV_SASL_ABORT);
	expect_out(&d, "d BAD Authentication aborted by client.\r\n");
	assert_int_equal(d.f->state, FRONT_COMMAND);
	d.f->state = FRONT_AUTH_WAIT;
	assert_int_equal(front_sasl_relay(d.f, "", 0, &d.out), 0);
	sbuf_reset(&d.out);
	assert_int_equal(drive_send(&d, "!!!\r\n", bytewise), FRONT_EV_SASL_ABORT);
	expect_out(&d, "d BAD Invalid base64 data in continued response.\r\n");
	/* a first message that names nobody fails here */
	assert_int_equal(drive_send(&d, "e AUTHENTICATE XOAUTH2 YXV0aD1CZWFyZXIgdAEB\r\n",
				    bytewise), FRONT_EV_NONE);
	expect_out(&d, "e NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
	/* ... and the session's log says why */
	assert_string_equal(d.f->sasl_refused_mech, "XOAUTH2");
	assert_string_equal(d.f->sasl_refused_why, "no user=");
	drive_deinit(&d);
	/* plaintext refused: the bearer tokens go with PLAIN and LOGIN */
	params.disable_plaintext_auth = true;
	drive_init(&d, &imap_front_ops, &params);
	sbuf_reset(&d.out);
	assert_int_equal(drive_send(&d, "a CAPABILITY\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "* CAPABILITY " CAPS " STARTTLS AUTH=SCRAM-SHA-256 LOGINDISABLED\r\n"
		   "a OK Pre-login capabilities listed, post-login capabilities have more.\r\n");
	drive_deinit(&d);
}

static void test_front_passthrough(void **state)
{
	(void)state;
	run_front_passthrough(false);
	run_front_passthrough(true);
	char *names[] = { "SCRAM-SHA-1", "CRAM-MD5" };
	unsigned int mask;
	const char *bad;
	assert_int_equal(sasl_passthrough_mask(names, 2, &mask, &bad), -1);
	assert_string_equal(bad, "CRAM-MD5");
	names[1] = "PLAIN";
	assert_int_equal(sasl_passthrough_mask(names, 2, &mask, &bad), -1);
}

static void test_front_plaintext_disabled(void **state)
{
	(void)state;
	struct front_params params = test_params;
	params.disable_plaintext_auth = true;
	struct drive d;
	drive_init(&d, &imap_front_ops, &params);
	expect_out(&d, "* OK [CAPABILITY " CAPS " STARTTLS LOGINDISABLED] loft ready.\r\n");
	assert_int_equal(drive_send(&d, "a LOGIN jane secret\r\n", false), FRONT_EV_NONE);
	expect_out(&d, "a NO [PRIVACYREQUIRED] Plaintext authentication disallowed on "
		   "non-secure (SSL/TLS) connections.\r\n");
	assert_int_equal(drive_send(&d, "b AUTHENTICATE PLAIN AGphbmUAc2VjcmV0\r\n", false),
			 FRONT_EV_NONE);
	expect_out(&d, "b NO [PRIVACYREQUIRED] Plaintext authentication disallowed on "
		   "non-secure (SSL/TLS) connections.\r\n");
	/* trusted networks count as secured */
	d.f->secured_network = true;
	assert_int_equal(drive_send(&d, "c LOGIN jane secret\r\n", false), FRONT_EV_AUTH);
	drive_deinit(&d);
	/* and so does TLS */
	drive_init(&d, &imap_front_ops, &params);
	d.f->tls_active = true;
	assert_int_equal(drive_send(&d, "c LOGIN jane secret\r\n", false), FRONT_EV_AUTH);
	drive_deinit(&d);
}

static void run_front_bad_commands(bool bytewise)
{
	struct drive d;
	drive_init(&d, &imap_front_ops, &test_params);
	sbuf_reset(&d.out);
	assert_int_equal(drive_send(&d, "a FOO\r\nb LOGIN x\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "a BAD Error in IMAP command received by server.\r\n"
		   "b BAD Invalid arguments.\r\n");
	/* as Dovecot's imap-login: the BYE answers the third, not a BAD */
	assert_int_equal(drive_send(&d, "c SELECT INBOX\r\nd NOOP\r\n", bytewise),
			 FRONT_EV_CLOSE);
	expect_out(&d, "* BYE Too many invalid IMAP commands.\r\n");
	/* nothing after the BYE is processed */
	assert_string_equal(sbuf_cstr(&d.in), "d NOOP\r\n");
	drive_deinit(&d);

	drive_init(&d, &imap_front_ops, &test_params);
	sbuf_reset(&d.out);
	assert_int_equal(drive_send(&d, "a LOGIN {500+}\r\n", true), FRONT_EV_CLOSE);
	expect_out(&d, "a BAD Literal too large.\r\n* BYE Literal too large.\r\n");
	drive_deinit(&d);

	drive_init(&d, &imap_front_ops, &test_params);
	sbuf_reset(&d.out);
	char big[400];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(drive_send(&d, big, true), FRONT_EV_NONE);
	expect_out(&d, "* BAD Command line too long.\r\n");
	/* the rest of the line is skipped; the next command works */
	assert_int_equal(drive_send(&d, "xxx\r\nz NOOP\r\n", true), FRONT_EV_NONE);
	expect_out(&d, "z OK NOOP completed.\r\n");
	drive_deinit(&d);

	/* an over-long line is answered to its tag (it counts), the rest of
	 * it skipped, as Dovecot's "a BAD IMAP command line too large" */
	drive_init(&d, &imap_front_ops, &test_params);
	sbuf_reset(&d.out);
	struct sbuf cmd = SBUF_INIT;
	sbuf_appends(&cmd, "a NOOP ");
	for (int i = 0; i < 300; i++)
		sbuf_appends(&cmd, "x ");
	sbuf_appends(&cmd, "\r\nb NOOP\r\n");
	assert_int_equal(drive_send(&d, sbuf_cstr(&cmd), bytewise), FRONT_EV_NONE);
	expect_out(&d, "a BAD Command line too long.\r\nb OK NOOP completed.\r\n");
	/* a SASL initial response too long, and a line that does not end:
	 * the tag is answered as soon as the limit is passed */
	sbuf_reset(&cmd);
	sbuf_appends(&cmd, "c AUTHENTICATE PLAIN ");
	for (int i = 0; i < 1000; i++)
		sbuf_appendc(&cmd, 'A');
	assert_int_equal(drive_send(&d, sbuf_cstr(&cmd), bytewise), FRONT_EV_NONE);
	expect_out(&d, "c BAD Command line too long.\r\n");
	assert_int_equal(drive_send(&d, sbuf_cstr(&cmd), bytewise), FRONT_EV_NONE);
	expect_out(&d, "");
	assert_int_equal(drive_send(&d, "\r\nd NOOP\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "d OK NOOP completed.\r\n");
	/* no tag to answer: an untagged BAD, and the third invalid command */
	sbuf_reset(&cmd);
	for (int i = 0; i < 300; i++)
		sbuf_appendc(&cmd, 'x');
	sbuf_appends(&cmd, " NOOP\r\n");
	assert_int_equal(drive_send(&d, sbuf_cstr(&cmd), bytewise), FRONT_EV_CLOSE);
	expect_out(&d, "* BYE Too many invalid IMAP commands.\r\n");
	sbuf_free(&cmd);
	drive_deinit(&d);

	/* bad base64 counts too: the third gets the BYE alone */
	drive_init(&d, &imap_front_ops, &test_params);
	sbuf_reset(&d.out);
	assert_int_equal(drive_send(&d, "a AUTHENTICATE PLAIN !!!\r\nb FOO\r\n"
				    "c AUTHENTICATE PLAIN\r\n!!!\r\n", bytewise),
			 FRONT_EV_CLOSE);
	expect_out(&d, "a BAD Invalid base64 data in initial response.\r\n"
		   "b BAD Error in IMAP command received by server.\r\n"
		   "+ \r\n* BYE Too many invalid IMAP commands.\r\n");
	drive_deinit(&d);
}

static void test_front_bad_commands(void **state)
{
	(void)state;
	run_front_bad_commands(false);
	run_front_bad_commands(true);
}

static void test_front_id_forwarding(void **state)
{
	(void)state;
	struct drive d;
	const char *id = "a ID (\"x-originating-ip\" \"192.0.2.7\" \"x-originating-port\" "
		"\"4711\" \"x-proxy-ttl\" \"3\" \"x-session-id\" \"abc\" "
		"\"x-connected-ip\" \"198.51.100.1\" \"name\" NIL)\r\n";
	/* untrusted clients cannot forward anything */
	drive_init(&d, &imap_front_ops, &test_params);
	drive_send(&d, id, false);
	assert_false(d.f->forward.have_ip);
	assert_int_equal(d.f->forward.ttl, 5);
	drive_deinit(&d);
	drive_init(&d, &imap_front_ops, &test_params);
	d.f->trusted = true;
	drive_send(&d, id, true);
	assert_true(d.f->forward.have_ip);
	char ip[IPADDR_STRLEN];
	assert_string_equal(ipaddr_to_str(&d.f->forward.ip, ip), "192.0.2.7");
	assert_int_equal(d.f->forward.port, 4711);
	assert_int_equal(d.f->forward.ttl, 3);
	assert_true(d.f->forward.have_local);
	assert_string_equal(d.f->forward.session_id, "abc");
	/* only the first ID counts, and the TTL can only go down */
	drive_send(&d, "b ID (\"x-originating-ip\" \"192.0.2.99\" \"x-proxy-ttl\" \"1\")\r\n", false);
	assert_string_equal(ipaddr_to_str(&d.f->forward.ip, ip), "192.0.2.7");
	assert_int_equal(d.f->forward.ttl, 3);
	sbuf_reset(&d.out);
	/* a key without a value is ignored, as by imap-login; a list is no value */
	drive_send(&d, "c ID (\"a\")\r\nd ID (\"a\" (\"b\"))\r\n", false);
	expect_out(&d, "* ID (\"name\" \"loft\")\r\nc OK ID completed.\r\n"
		   "d BAD Invalid ID parameters.\r\n");
	drive_deinit(&d);
}

#define ID_OK(tag) "* ID (\"name\" \"loft\")\r\n" tag " OK ID completed.\r\n"

/* ID is read in pieces: its size is not bounded by max_line (200 here),
 * only each string is, as in Dovecot's imap-login. */
static void run_front_id_pieces(bool bytewise)
{
	struct drive d;
	drive_init(&d, &imap_front_ops, &test_params);
	sbuf_reset(&d.out);
	struct sbuf id = SBUF_INIT;
	sbuf_appends(&id, "a ID (");
	for (int i = 0; i < 100; i++) {
		sbuf_appendf(&id, "%s\"key%d\" \"", i == 0 ? "" : " ", i);
		for (int j = 0; j < 150; j++)
			sbuf_appendc(&id, 'v');
		sbuf_appends(&id, "\"");
	}
	sbuf_appends(&id, ")\r\nb NOOP\r\n");
	assert_true(sbuf_len(&id) > 15000);
	assert_int_equal(drive_send(&d, sbuf_cstr(&id), bytewise), FRONT_EV_NONE);
	expect_out(&d, ID_OK("a") "b OK NOOP completed.\r\n");
	assert_int_equal(sbuf_len(&d.in), 0);
	/* literals, escapes, atoms, NIL, spaces, an empty list, NIL */
	assert_int_equal(drive_send(&d, "c id (\"name\" {4}\r\nab\r\n \"version\" {3+}\r\n"
				    "x\"z \"os\"  NIL \"q\\\"s\" atom)\r\n"
				    "d ID ()\r\ne ID NIL\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "+ OK\r\n" ID_OK("c") ID_OK("d") ID_OK("e"));
	/* refusals answer the tag; the rest of the line is skipped */
	static const struct {
		const char *command, *reply;
	} bad[] = {
		{ "f ID (\"k\" \"v\"\r\n", "f BAD Missing ')'.\r\n" },
		{ "f ID \"x\"\r\n", "f BAD Invalid ID parameters.\r\n" },
		{ "f ID (\"k\" (\"v\")) x\r\n", "f BAD Invalid ID parameters.\r\n" },
		{ "f ID (\"k\"\"v\")\r\n", "f BAD Invalid ID parameters.\r\n" },
		{ "f ID NIL x\r\n", "f BAD Invalid ID parameters.\r\n" },
		{ "f ID\r\n", "f BAD Invalid ID parameters.\r\n" },
		{ "f ID (\"k\\x\" \"v\")\r\n", "f BAD Invalid escape in quoted string.\r\n" },
		{ "f ID (\"k\" {1x}\r\n", "f BAD Invalid literal.\r\n" },
		{ "f ID (\"k\" {101}\r\n", "f BAD Literal too large.\r\n" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct drive e;
		drive_init(&e, &imap_front_ops, &test_params);
		sbuf_reset(&e.out);
		assert_int_equal(drive_send(&e, bad[i].command, bytewise), FRONT_EV_NONE);
		assert_int_equal(drive_send(&e, "g NOOP\r\n", bytewise), FRONT_EV_NONE);
		char *got = drive_take_out(&e);
		struct sbuf want = SBUF_INIT;
		sbuf_appends(&want, bad[i].reply);
		sbuf_appends(&want, "g OK NOOP completed.\r\n");
		if (strcmp(got, sbuf_cstr(&want)) != 0)
			fail_msg("case %zu: got\n%s\nwant\n%s", i, got, sbuf_cstr(&want));
		free(got);
		sbuf_free(&want);
		drive_deinit(&e);
	}
	/* a string longer than max_line: refused as soon as it is */
	sbuf_reset(&id);
	sbuf_appends(&id, "h ID (\"k\" \"");
	for (int j = 0; j < 300; j++)
		sbuf_appendc(&id, 'v');
	assert_int_equal(drive_send(&d, sbuf_cstr(&id), bytewise), FRONT_EV_NONE);
	expect_out(&d, "h BAD ID parameter too long.\r\n");
	assert_int_equal(drive_send(&d, "vvv\")\r\ni NOOP\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "i OK NOOP completed.\r\n");
	/* a LITERAL+ too large is on its way: the end (and the third) */
	assert_int_equal(drive_send(&d, "j ID (\"k\" {101+}\r\n", bytewise), FRONT_EV_CLOSE);
	expect_out(&d, "j BAD Literal too large.\r\n* BYE Literal too large.\r\n");
	sbuf_free(&id);
	drive_deinit(&d);
}

static void test_front_id_pieces(void **state)
{
	(void)state;
	run_front_id_pieces(false);
	run_front_id_pieces(true);
}

/* imap_id_retain: what of the client's ID the backend may get. */
static void run_front_id_retain(bool bytewise)
{
	struct drive d;
	for (int trusted = 0; trusted < 2; trusted++) {
		drive_init(&d, &imap_front_ops, &test_params);
		d.f->trusted = trusted;
		assert_int_equal(drive_send(&d, "a ID (\"name\" \"Thunderbird\" "
					    "\"x-originating-ip\" \"192.0.2.9\" \"X-Evil\" \"1\" "
					    "\"version\" \"115.0 \\\"beta\\\"\" \"vendor\" NIL "
					    "\"os\" \"caf\xc3\xa9\" "
					    "\"a-key-longer-than-thirty-bytes1\" \"x\" "
					    "\"support-url\" {5}\r\nx\r\nyz)\r\n", bytewise),
				 FRONT_EV_NONE);
		/* x-* fields never; 8-bit, CR/LF and long keys not */
		assert_string_equal(sbuf_cstr(&d.f->client_id),
				    "\"name\" \"Thunderbird\" \"version\" \"115.0 \\\"beta\\\"\" "
				    "\"vendor\" NIL");
		assert_int_equal(d.f->forward.have_ip, trusted);
		/* the last ID counts, and what is kept stays below 256 bytes:
		 * a field that does not fit is left out, a later one may fit */
		struct sbuf id = SBUF_INIT;
		sbuf_appends(&id, "b ID (\"a\" \"");
		for (int i = 0; i < 200; i++)
			sbuf_appendc(&id, '1');
		sbuf_appends(&id, "\" \"b\" \"");
		for (int i = 0; i < 100; i++)
			sbuf_appendc(&id, '2');
		sbuf_appends(&id, "\" \"c\" \"3\")\r\n");
		assert_int_equal(drive_send(&d, sbuf_cstr(&id), bytewise), FRONT_EV_NONE);
		assert_int_equal(sbuf_len(&d.f->client_id), 3 + 1 + 202 + 1 + 3 + 1 + 3);
		assert_non_null(strstr(sbuf_cstr(&d.f->client_id), "\"c\" \"3\""));
		assert_null(strstr(sbuf_cstr(&d.f->client_id), "\"b\""));
		/* a refused ID keeps nothing */
		assert_int_equal(drive_send(&d, "c ID (\"name\" \"x\" (\r\n", bytewise),
				 FRONT_EV_NONE);
		assert_int_equal(sbuf_len(&d.f->client_id), 0);
		sbuf_free(&id);
		drive_deinit(&d);
	}
}

static void test_front_id_retain(void **state)
{
	(void)state;
	run_front_id_retain(false);
	run_front_id_retain(true);
}

/* ---- backend ------------------------------------------------------ */

struct back_drive {
	struct back *b;
	struct sbuf out;
};

static struct back_params back_params(bool use_sasl, bool starttls)
{
	struct back_params p = {
		.user = "jane", .password = "secret", .use_sasl = use_sasl,
		.starttls = starttls, .forward = true, .client_port = 50000,
		.local_port = 143, .session_id = "00000001", .ttl = 5,
	};
	ipaddr_parse("192.0.2.7", &p.client_ip);
	ipaddr_parse("127.0.0.1", &p.local_ip);
	return p;
}

#define BANNER "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN] Dovecot ready.\r\n"
#define ID_LINE "I ID (\"x-session-id\" \"00000001\" \"x-originating-ip\" \"192.0.2.7\" " \
	"\"x-originating-port\" \"50000\" \"x-connected-ip\" \"127.0.0.1\" " \
	"\"x-connected-port\" \"143\" \"x-proxy-ttl\" \"4\")\r\n"

static void run_back_login(bool bytewise)
{
	struct back_params p = back_params(false, false);
	struct sbuf out = SBUF_INIT;
	struct back *b = imap_back_ops.create(&p);
	/* ID and LOGIN are pipelined after a banner with capabilities */
	assert_int_equal(back_send(b, BANNER, bytewise, &out), BACK_EV_NONE);
	expect_sbuf(&out, ID_LINE "L LOGIN \"jane\" \"secret\"\r\n");
	assert_int_equal(back_send(b, "I OK Id completed.\r\n"
				   "L OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n",
				   bytewise, &out), BACK_EV_OK);
	assert_string_equal(b->reply, "OK [CAPABILITY IMAP4rev1 IDLE] Logged in");
	imap_back_ops.destroy(b);
	sbuf_free(&out);
}

static void test_back_login(void **state)
{
	(void)state;
	run_back_login(false);
	run_back_login(true);
	/* imap_id_retain: the client's fields come first */
	struct back_params p = back_params(false, false);
	p.client_id = "\"name\" \"Thunderbird\" \"vendor\" NIL";
	struct sbuf out = SBUF_INIT;
	struct back *b = imap_back_ops.create(&p);
	assert_int_equal(back_send(b, BANNER, false, &out), BACK_EV_NONE);
	expect_sbuf(&out, "I ID (\"name\" \"Thunderbird\" \"vendor\" NIL "
		    "\"x-session-id\" \"00000001\" \"x-originating-ip\" \"192.0.2.7\" "
		    "\"x-originating-port\" \"50000\" \"x-connected-ip\" \"127.0.0.1\" "
		    "\"x-connected-port\" \"143\" \"x-proxy-ttl\" \"4\")\r\n"
		    "L LOGIN \"jane\" \"secret\"\r\n");
	imap_back_ops.destroy(b);
	sbuf_free(&out);
}

static void test_back_failures(void **state)
{
	(void)state;
	static const struct back_failure cases[] = {
		{ "L NO [AUTHENTICATIONFAILED] Authentication failed.\r\n", BACK_FAIL_AUTH, NULL },
		{ "L NO Authentication failed.\r\n", BACK_FAIL_AUTH, NULL },
		{ "L NO\r\n", BACK_FAIL_AUTH, NULL },
		{ "L NO [UNAVAILABLE] Maintenance\r\n", BACK_FAIL_REPLY, "NO [UNAVAILABLE] Maintenance" },
		{ "L NO [LIMIT] Too many\r\n", BACK_FAIL_REPLY, "NO [LIMIT] Too many" },
		{ "L BAD what\r\n", BACK_FAIL_TEMP, NULL },
		{ "X OK huh\r\n", BACK_FAIL_TEMP, NULL },
	};
	struct back_params bp = back_params(false, false);
	expect_back_failures(&imap_back_ops, &bp, BANNER, cases, ARRAY_SIZE(cases));
	/* an invalid banner */
	struct back_params p = back_params(false, false);
	struct sbuf out = SBUF_INIT;
	struct back *b = imap_back_ops.create(&p);
	assert_int_equal(back_send(b, "+OK POP3 ready\r\n", false, &out), BACK_EV_FAIL);
	assert_string_equal(b->error, "Invalid banner");
	imap_back_ops.destroy(b);
	/* LOGINDISABLED without TLS */
	b = imap_back_ops.create(&p);
	assert_int_equal(back_send(b, "* OK [CAPABILITY IMAP4rev1 LOGINDISABLED] x\r\n",
				   false, &out), BACK_EV_FAIL);
	assert_string_equal(b->error, "LOGINDISABLED advertised, but SSL/TLS not enabled");
	imap_back_ops.destroy(b);
	/* a line that never ends */
	b = imap_back_ops.create(&p);
	char *huge = xmalloc(BACK_MAX_LINE + 10);
	memset(huge, 'x', BACK_MAX_LINE + 9);
	huge[BACK_MAX_LINE + 9] = '\0';
	assert_int_equal(back_send(b, huge, false, &out), BACK_EV_FAIL);
	free(huge);
	imap_back_ops.destroy(b);
	sbuf_free(&out);
}

static void run_back_sasl_starttls(bool bytewise)
{
	struct back_params p = back_params(true, true);
	struct sbuf out = SBUF_INIT;
	struct back *b = imap_back_ops.create(&p);
	/* no capabilities in the banner: ID is not known to be supported */
	assert_int_equal(back_send(b, "* OK ready\r\n", bytewise, &out), BACK_EV_NONE);
	expect_sbuf(&out, "S STARTTLS\r\n");
	assert_int_equal(back_send(b, "S OK Begin TLS negotiation now.\r\n", bytewise, &out),
			 BACK_EV_STARTTLS);
	imap_back_ops.tls_started(b, &out);
	expect_sbuf(&out, "C CAPABILITY\r\n");
	assert_int_equal(back_send(b, "* CAPABILITY IMAP4rev1 ID AUTH=PLAIN\r\nC OK done\r\n",
				   bytewise, &out), BACK_EV_NONE);
	/* no SASL-IR: wait for the continuation */
	expect_sbuf(&out, "L AUTHENTICATE PLAIN\r\n");
	assert_int_equal(back_send(b, "+ \r\n", bytewise, &out), BACK_EV_NONE);
	expect_sbuf(&out, "AGphbmUAc2VjcmV0\r\n");
	assert_int_equal(back_send(b, "L OK Logged in\r\n", bytewise, &out), BACK_EV_OK);
	imap_back_ops.destroy(b);

	/* STARTTLS requested but not advertised */
	b = imap_back_ops.create(&p);
	assert_int_equal(back_send(b, "* OK [CAPABILITY IMAP4rev1] x\r\n", bytewise, &out),
			 BACK_EV_FAIL);
	assert_string_equal(b->error, "STARTTLS not supported");
	imap_back_ops.destroy(b);
	sbuf_free(&out);
}

static void test_back_sasl_starttls(void **state)
{
	(void)state;
	run_back_sasl_starttls(false);
	run_back_sasl_starttls(true);
}

/* A pass-through login: the client's mechanism and first message, the
 * backend's challenges out as BACK_EV_CHALLENGE, the answers in. */
static void run_back_passthrough(bool bytewise)
{
	struct back_params p = back_params(true, false);
	p.forward = false;
	p.password = NULL;
	p.sasl_mech = "SCRAM-SHA-256";
	p.sasl_ir = (const unsigned char *)"n,,n=jane,r=abc";
	p.sasl_ir_len = 15;
	struct sbuf out = SBUF_INIT;
	struct back *b = imap_back_ops.create(&p);
	assert_int_equal(back_send(b, "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN "
				   "AUTH=SCRAM-SHA-256] ready\r\n", bytewise, &out), BACK_EV_NONE);
	expect_sbuf(&out, "L AUTHENTICATE SCRAM-SHA-256 biwsbj1qYW5lLHI9YWJj\r\n");
	assert_int_equal(back_send(b, "+ cj1hYmNkZWYscz1jMkZzZEE9PSxpPTQwOTY=\r\n", bytewise,
				   &out), BACK_EV_CHALLENGE);
	assert_string_equal(sbuf_cstr(&b->challenge), "cj1hYmNkZWYscz1jMkZzZEE9PSxpPTQwOTY=");
	back_sasl_respond(b, "Yz1iaXdzLHI9YWJjZGVm", 20, &out);
	expect_sbuf(&out, "Yz1iaXdzLHI9YWJjZGVm\r\n");
	/* the server-final message, then the verdict */
	assert_int_equal(back_send(b, "+ dj1zaWc=\r\n", bytewise, &out), BACK_EV_CHALLENGE);
	assert_string_equal(sbuf_cstr(&b->challenge), "dj1zaWc=");
	back_sasl_respond(b, "", 0, &out);
	expect_sbuf(&out, "\r\n");
	assert_int_equal(back_send(b, "L OK Logged in\r\n", bytewise, &out), BACK_EV_OK);
	imap_back_ops.destroy(b);
	/* without SASL-IR the message answers the first "+" */
	b = imap_back_ops.create(&p);
	assert_int_equal(back_send(b, "* OK [CAPABILITY IMAP4rev1 auth=scram-sha-256] x\r\n",
				   bytewise, &out), BACK_EV_NONE);
	expect_sbuf(&out, "L AUTHENTICATE SCRAM-SHA-256\r\n");
	assert_int_equal(back_send(b, "+\r\n", bytewise, &out), BACK_EV_NONE);
	expect_sbuf(&out, "biwsbj1qYW5lLHI9YWJj\r\n");
	assert_int_equal(back_send(b, "+\r\n", bytewise, &out), BACK_EV_CHALLENGE);
	assert_string_equal(sbuf_cstr(&b->challenge), "");
	assert_int_equal(back_send(b, "L NO [AUTHENTICATIONFAILED] no\r\n", bytewise, &out),
			 BACK_EV_FAIL);
	assert_int_equal(b->fail, BACK_FAIL_AUTH);
	imap_back_ops.destroy(b);
	/* not offered by the backend (nor a prefix of it): nothing is tried */
	b = imap_back_ops.create(&p);
	assert_int_equal(back_send(b, "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=SCRAM-SHA-1 "
				   "AUTH=SCRAM-SHA-256-PLUS] x\r\n", bytewise, &out), BACK_EV_FAIL);
	assert_int_equal(b->fail, BACK_FAIL_TEMP);
	assert_string_equal(b->error, "the client's SASL mechanism is not advertised");
	assert_int_equal(sbuf_len(&out), 0);
	imap_back_ops.destroy(b);
	/* PLAIN has no second step */
	p = back_params(true, false);
	p.forward = false;
	b = imap_back_ops.create(&p);
	back_send(b, BANNER, bytewise, &out);
	expect_sbuf(&out, "L AUTHENTICATE PLAIN AGphbmUAc2VjcmV0\r\n");
	assert_int_equal(back_send(b, "+ eA==\r\n", bytewise, &out), BACK_EV_FAIL);
	assert_int_equal(b->fail, BACK_FAIL_TEMP);
	imap_back_ops.destroy(b);
	sbuf_free(&out);
}

static void test_back_passthrough(void **state)
{
	(void)state;
	run_back_passthrough(false);
	run_back_passthrough(true);
}

static void test_back_literal_fallbacks(void **state)
{
	(void)state;
	struct back_params p = back_params(false, false);
	p.password = "s\xc3\xa9" "cret";
	struct sbuf out = SBUF_INIT;
	struct back *b = imap_back_ops.create(&p);
	/* 8-bit password with LITERAL+: a non-synchronising literal */
	back_send(b, BANNER, false, &out);
	expect_sbuf(&out, ID_LINE "L LOGIN \"jane\" {7+}\r\ns\xc3\xa9" "cret\r\n");
	imap_back_ops.destroy(b);
	/* without LITERAL+ it falls back to SASL PLAIN with SASL-IR */
	p.forward = false;
	p.password = "a\"b\\c";
	b = imap_back_ops.create(&p);
	back_send(b, "* OK [CAPABILITY IMAP4rev1 SASL-IR] x\r\n", false, &out);
	expect_sbuf(&out, "L LOGIN \"jane\" \"a\\\"b\\\\c\"\r\n");
	imap_back_ops.destroy(b);
	p.password = "s\xc3\xa9";
	b = imap_back_ops.create(&p);
	back_send(b, "* OK [CAPABILITY IMAP4rev1 SASL-IR] x\r\n", false, &out);
	expect_sbuf(&out, "L AUTHENTICATE PLAIN AGphbmUAc8Op\r\n");
	imap_back_ops.destroy(b);
	sbuf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parser_basic),
		cmocka_unit_test(test_parser_literals),
		cmocka_unit_test(test_parser_errors),
		cmocka_unit_test(test_front_basic),
		cmocka_unit_test(test_front_login),
		cmocka_unit_test(test_front_authenticate),
		cmocka_unit_test(test_front_plaintext_disabled),
		cmocka_unit_test(test_front_bad_commands),
		cmocka_unit_test(test_front_id_forwarding),
		cmocka_unit_test(test_front_id_pieces),
		cmocka_unit_test(test_front_id_retain),
		cmocka_unit_test(test_front_passthrough),
		cmocka_unit_test(test_back_login),
		cmocka_unit_test(test_back_failures),
		cmocka_unit_test(test_back_sasl_starttls),
		cmocka_unit_test(test_back_literal_fallbacks),
		cmocka_unit_test(test_back_passthrough),
	};
	return cmocka_run_group_tests_name("proto_imap", tests, NULL, NULL);
}
