/* Unit tests for src/proto Submission: the pre-login front (whole and one
 * byte at a time) with Dovecot 2.3 submission-login's replies, SMTP reply
 * parsing, and the backend login machine with EHLO, STARTTLS, XCLIENT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto/smtp_reply.h"
#include "proto/submission_back.h"
#include "proto/submission_front.h"
#include "proto_drive.h"

static const struct front_params test_params = {
	.greeting = "loft ready.",
	.hostname = "mx.example",
	.max_line = 200,
	.max_literal = 100,
	.max_bad_commands = 3,
	.disable_plaintext_auth = false,
};

#define EHLO_REPLY(auth, starttls) "250-mx.example\r\n250-8BITMIME\r\n" auth \
	"250-BURL imap\r\n250-CHUNKING\r\n250-ENHANCEDSTATUSCODES\r\n250-SIZE\r\n" \
	starttls "250 PIPELINING\r\n"

static void run_front_basic(bool bytewise)
{
	struct drive d;
	drive_init(&d, &submission_front_ops, &test_params);
	expect_out(&d, "220 mx.example loft ready.\r\n");
	assert_int_equal(drive_send(&d, "EHLO client.example\r\nNOOP\r\nRSET\r\n"
				    "MAIL FROM:<a@b>\r\nVRFY x\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, EHLO_REPLY("250-AUTH PLAIN LOGIN\r\n", "250-STARTTLS\r\n")
		   "250 2.0.0 OK\r\n250 2.0.0 OK\r\n"
		   "530 5.7.0 Authentication required.\r\n"
		   "530 5.7.0 Authentication required.\r\n");
	assert_string_equal(d.f->helo, "client.example");
	assert_int_equal(drive_send(&d, "STARTTLS\r\n", bytewise), FRONT_EV_STARTTLS);
	expect_out(&d, "220 2.0.0 Begin TLS negotiation now.\r\n");
	assert_null(d.f->helo);	/* EHLO starts over after TLS */
	d.f->tls_active = true;
	assert_int_equal(drive_send(&d, "ehlo again\r\nHELO h\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, EHLO_REPLY("250-AUTH PLAIN LOGIN\r\n", "") "250 mx.example\r\n");
	assert_int_equal(drive_send(&d, "QUIT\r\n", bytewise), FRONT_EV_CLOSE);
	expect_out(&d, "221 2.0.0 Bye\r\n");
	drive_deinit(&d);
}

static void test_front_basic(void **state)
{
	(void)state;
	run_front_basic(false);
	run_front_basic(true);
}

static void run_front_auth(bool bytewise)
{
	struct drive d;
	drive_init(&d, &submission_front_ops, &test_params);
	sbuf_reset(&d.out);
	assert_int_equal(drive_send(&d, "EHLO c\r\nAUTH PLAIN AGphbmUAc2VjcmV0\r\nMAIL FROM:<>\r\n",
				    bytewise), FRONT_EV_AUTH);
	sbuf_reset(&d.out);
	assert_string_equal(d.f->login.creds.authcid, "jane");
	assert_string_equal(d.f->login.creds.password, "secret");
	assert_string_equal(sbuf_cstr(&d.in), "MAIL FROM:<>\r\n");
	sbuf_reset(&d.in);
	submission_front_ops.auth_failed(d.f, FRONT_AUTH_FAILED, NULL, &d.out);
	expect_out(&d, "535 5.7.8 Authentication failed.\r\n");
	assert_int_equal(drive_send(&d, "AUTH LOGIN\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "334 VXNlcm5hbWU6\r\n");
	assert_int_equal(drive_send(&d, "amFuZQ==\r\nc2VjcmV0\r\n", bytewise), FRONT_EV_AUTH);
	expect_out(&d, "334 UGFzc3dvcmQ6\r\n");
	submission_front_ops.auth_failed(d.f, FRONT_AUTH_TEMPFAIL, NULL, &d.out);
	expect_out(&d, "454 4.7.0 Temporary authentication failure.\r\n");
	assert_int_equal(drive_send(&d, "AUTH PLAIN\r\n*\r\nAUTH\r\nAUTH FOO\r\n", bytewise),
			 FRONT_EV_NONE);
	expect_out(&d, "334 \r\n501 5.5.2 Authentication aborted by client.\r\n"
		   "501 5.5.4 Missing SASL mechanism parameter\r\n"
		   "504 5.5.4 Unsupported authentication mechanism.\r\n");
	assert_int_equal(drive_send(&d, "AUTH PLAIN AGphbmUAc2VjcmV0\r\n", bytewise),
			 FRONT_EV_AUTH);
	submission_front_ops.logged_in(d.f, "235 2.7.0 Logged in.", &d.out);
	expect_out(&d, "235 2.7.0 Logged in.\r\n");
	drive_deinit(&d);
}

static void test_front_auth(void **state)
{
	(void)state;
	run_front_auth(false);
	run_front_auth(true);
}

static void test_front_limits_and_trust(void **state)
{
	(void)state;
	struct drive d;
	drive_init(&d, &submission_front_ops, &test_params);
	sbuf_reset(&d.out);
	assert_int_equal(drive_send(&d, "HELP\r\nFOO\r\nXCLIENT ADDR=192.0.2.7\r\n", false),
			 FRONT_EV_CLOSE);
	/* as Dovecot's submission-login: the 421, with the server's name,
	 * answers the last one */
	expect_out(&d, "500 5.5.1 Unknown command\r\n500 5.5.1 Unknown command\r\n"
		   "421 4.7.0 mx.example Too many invalid commands.\r\n");
	drive_deinit(&d);

	struct front_params params = test_params;
	params.disable_plaintext_auth = true;
	drive_init(&d, &submission_front_ops, &params);
	d.f->trusted = true;
	sbuf_reset(&d.out);
	drive_send(&d, "EHLO c\r\nAUTH PLAIN AGphbmUAeA==\r\n", false);
	expect_out(&d, "250-mx.example\r\n250-8BITMIME\r\n250-BURL imap\r\n250-CHUNKING\r\n"
		   "250-ENHANCEDSTATUSCODES\r\n250-SIZE\r\n250-STARTTLS\r\n"
		   "250-XCLIENT ADDR PORT SESSION TTL\r\n250 PIPELINING\r\n"
		   "538 5.7.11 Encryption required for requested authentication mechanism\r\n");
	drive_send(&d, "XCLIENT ADDR=192.0.2.7 PORT=4711 TTL=3\r\n", true);
	expect_out(&d, "220 mx.example loft ready.\r\n");
	char ip[IPADDR_STRLEN];
	assert_string_equal(ipaddr_to_str(&d.f->forward.ip, ip), "192.0.2.7");
	assert_int_equal(d.f->forward.ttl, 3);
	submission_front_ops.disconnect(d.f, "Kicked by admin.", &d.out);
	expect_out(&d, "421 4.3.2 Kicked by admin.\r\n");
	drive_deinit(&d);
}

static void test_smtp_reply(void **state)
{
	(void)state;
	struct smtp_reply_line r;
	assert_int_equal(smtp_reply_parse("250-8BITMIME", 12, &r), 0);
	assert_int_equal(r.code, 250);
	assert_false(r.last);
	assert_int_equal(smtp_reply_parse("354 go", 6, &r), 0);
	assert_true(r.last);
	assert_int_equal(smtp_reply_parse("250", 3, &r), 0);
	assert_true(r.last);
	assert_int_equal(smtp_reply_parse("25", 2, &r), -1);
	assert_int_equal(smtp_reply_parse("2500", 4, &r), -1);
	assert_int_equal(smtp_reply_parse("650 x", 5, &r), -1);
	const char *params;
	size_t plen;
	assert_true(smtp_ehlo_has("AUTH PLAIN LOGIN", 16, "auth", &params, &plen));
	assert_true(smtp_words_have(params, plen, "login"));
	assert_false(smtp_words_have(params, plen, "LOG"));
	assert_false(smtp_ehlo_has("AUTHX", 5, "AUTH", NULL, NULL));
}

/* ---- backend ------------------------------------------------------------ */

static struct back_params back_params(bool starttls)
{
	struct back_params p = {
		.user = "jane", .password = "secret", .starttls = starttls,
		.forward = true, .client_port = 50000, .local_port = 587,
		.session_id = "00000001", .ttl = 5, .helo = "client.example",
		.hostname = "loft.example",
	};
	ipaddr_parse("192.0.2.7", &p.client_ip);
	return p;
}

#define BACKEND_EHLO "250-be1\r\n250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n250-STARTTLS\r\n" \
	"250 XCLIENT ADDR PORT PROTO HELO LOGIN SESSION TTL TIMEOUT FORWARD\r\n"

static void run_back(bool bytewise)
{
	struct back_params p = back_params(false);
	struct sbuf out = SBUF_INIT;
	struct back *b = submission_back_ops.create(&p);
	assert_int_equal(back_send(b, "220-be1 multi\r\n220 be1 ready\r\n", bytewise, &out),
			 BACK_EV_NONE);
	expect_sbuf(&out, "EHLO loft.example\r\n");
	assert_int_equal(back_send(b, BACKEND_EHLO, bytewise, &out), BACK_EV_NONE);
	expect_sbuf(&out, "XCLIENT ADDR=192.0.2.7 PORT=50000 SESSION=00000001 TTL=4 "
		    "HELO=client.example PROTO=ESMTP\r\n");
	/* XCLIENT starts the session over */
	assert_int_equal(back_send(b, "220 be1 ready\r\n", bytewise, &out), BACK_EV_NONE);
	expect_sbuf(&out, "EHLO loft.example\r\n");
	assert_int_equal(back_send(b, BACKEND_EHLO, bytewise, &out), BACK_EV_NONE);
	expect_sbuf(&out, "AUTH PLAIN AGphbmUAc2VjcmV0\r\n");
	assert_int_equal(back_send(b, "235 2.7.0 Logged in.\r\n", bytewise, &out), BACK_EV_OK);
	assert_string_equal(b->reply, "235 2.7.0 Logged in.");
	submission_back_ops.destroy(b);

	/* STARTTLS first; the attributes offered are the ones sent */
	p = back_params(true);
	b = submission_back_ops.create(&p);
	back_send(b, "220 be1\r\n", bytewise, &out);
	sbuf_reset(&out);
	assert_int_equal(back_send(b, BACKEND_EHLO, bytewise, &out), BACK_EV_NONE);
	expect_sbuf(&out, "STARTTLS\r\n");
	assert_int_equal(back_send(b, "220 2.0.0 go\r\n", bytewise, &out), BACK_EV_STARTTLS);
	submission_back_ops.tls_started(b, &out);
	expect_sbuf(&out, "EHLO loft.example\r\n");
	assert_int_equal(back_send(b, "250-be1\r\n250-AUTH PLAIN\r\n250 XCLIENT ADDR\r\n",
				   bytewise, &out), BACK_EV_NONE);
	expect_sbuf(&out, "XCLIENT ADDR=192.0.2.7\r\n");
	submission_back_ops.destroy(b);
	sbuf_free(&out);
}

static void test_back(void **state)
{
	(void)state;
	run_back(false);
	run_back(true);
}

static void test_back_failures(void **state)
{
	(void)state;
	static const struct back_failure cases[] = {
		{ "250-be1\r\n250 AUTH PLAIN\r\n535 5.7.8 Authentication failed.\r\n",
		  BACK_FAIL_AUTH, NULL },
		{ "250-be1\r\n250 AUTH PLAIN\r\n454 4.7.0 Try later\r\n", BACK_FAIL_REPLY,
		  "454 4.7.0 Try later" },
		{ "250-be1\r\n250 8BITMIME\r\n", BACK_FAIL_TEMP, NULL },	/* no AUTH */
		{ "250-be1\r\n250 AUTH LOGIN\r\n", BACK_FAIL_TEMP, NULL },	/* no PLAIN */
		{ "554 go away\r\n", BACK_FAIL_TEMP, NULL },
		{ "hello\r\n", BACK_FAIL_TEMP, NULL },
	};
	struct back_params p = back_params(false);
	p.forward = false;
	expect_back_failures(&submission_back_ops, &p, "220 be1\r\n", cases,
			     ARRAY_SIZE(cases));
}

/* A pass-through login: the backend must offer the client's mechanism;
 * its 334 challenges come out, the answers go in. */
static void run_back_passthrough(bool bytewise)
{
	struct back_params p = back_params(false);
	p.forward = false;
	p.password = NULL;
	p.use_sasl = true;
	p.sasl_mech = "XOAUTH2";
	p.sasl_ir = (const unsigned char *)"user=jane\x01" "auth=Bearer t\x01\x01";
	p.sasl_ir_len = 25;
	struct sbuf out = SBUF_INIT;
	struct back *b = submission_back_ops.create(&p);
	back_send(b, "220 be1\r\n", bytewise, &out);
	sbuf_reset(&out);
	assert_int_equal(back_send(b, "250-be1\r\n250 AUTH PLAIN XOAUTH2\r\n", bytewise, &out),
			 BACK_EV_NONE);
	expect_sbuf(&out, "AUTH XOAUTH2 dXNlcj1qYW5lAWF1dGg9QmVhcmVyIHQBAQ==\r\n");
	assert_int_equal(back_send(b, "334 eyJzIjoxfQ==\r\n", bytewise, &out), BACK_EV_CHALLENGE);
	assert_string_equal(sbuf_cstr(&b->challenge), "eyJzIjoxfQ==");
	back_sasl_respond(b, "", 0, &out);
	expect_sbuf(&out, "\r\n");
	assert_int_equal(back_send(b, "535 5.7.8 Authentication failed\r\n", bytewise, &out),
			 BACK_EV_FAIL);
	assert_int_equal(b->fail, BACK_FAIL_AUTH);
	submission_back_ops.destroy(b);
	/* not offered by the backend: a temporary failure, nothing sent */
	b = submission_back_ops.create(&p);
	back_send(b, "220 be1\r\n", bytewise, &out);
	sbuf_reset(&out);
	assert_int_equal(back_send(b, "250-be1\r\n250 AUTH PLAIN\r\n", bytewise, &out),
			 BACK_EV_FAIL);
	assert_string_equal(b->error, "the client's SASL mechanism is not advertised");
	assert_int_equal(sbuf_len(&out), 0);
	submission_back_ops.destroy(b);
	sbuf_free(&out);
}

static void test_back_passthrough(void **state)
{
	(void)state;
	run_back_passthrough(false);
	run_back_passthrough(true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_front_basic),
		cmocka_unit_test(test_back_passthrough),
		cmocka_unit_test(test_front_auth),
		cmocka_unit_test(test_front_limits_and_trust),
		cmocka_unit_test(test_smtp_reply),
		cmocka_unit_test(test_back),
		cmocka_unit_test(test_back_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
