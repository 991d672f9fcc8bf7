/* Unit tests for src/proto POP3: the pre-login front (every dialogue whole
 * and one byte at a time), with the replies a real Dovecot 2.3 pop3-login
 * gives, and the backend login machine against scripted replies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto/pop3_back.h"
#include "proto/pop3_front.h"
#include "proto_drive.h"

static const struct front_params test_params = {
	.greeting = "loft ready.",
	.max_line = 200,
	.max_literal = 100,
	.max_bad_commands = 3,
	.disable_plaintext_auth = false,
};

#define CAPA_HEAD "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\n"

/* ---- front ------------------------------------------------------------- */

static void run_front_basic(bool bytewise)
{
	struct drive d;
	drive_init(&d, &pop3_front_ops, &test_params);
	expect_out(&d, "+OK loft ready.\r\n");
	assert_int_equal(drive_send(&d, "CAPA\r\ncapa\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, CAPA_HEAD "STLS\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n"
		   CAPA_HEAD "STLS\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n");
	assert_int_equal(drive_send(&d, "AUTH\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n");
	assert_int_equal(drive_send(&d, "STLS\r\n", bytewise), FRONT_EV_STARTTLS);
	expect_out(&d, "+OK Begin TLS negotiation now.\r\n");
	d.f->tls_active = true;
	assert_int_equal(drive_send(&d, "CAPA\r\nSTLS\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, CAPA_HEAD "USER\r\nSASL PLAIN LOGIN\r\n.\r\n"
		   "-ERR TLS is already active.\r\n");
	assert_int_equal(drive_send(&d, "QUIT\r\n", bytewise), FRONT_EV_CLOSE);
	expect_out(&d, "+OK Logging out\r\n");
	assert_string_equal(d.f->close_reason, "logged out");
	drive_deinit(&d);
}

static void test_front_basic(void **state)
{
	(void)state;
	run_front_basic(false);
	run_front_basic(true);
}

static void run_front_user_pass(bool bytewise)
{
	struct drive d;
	drive_init(&d, &pop3_front_ops, &test_params);
	sbuf_reset(&d.out);
	assert_int_equal(drive_send(&d, "PASS x\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "-ERR No username given.\r\n");
	/* the password is the rest of the line, spaces included; what the
	 * client pipelined after PASS stays for the backend */
	assert_int_equal(drive_send(&d, "USER jane\r\nPASS se cret \r\nSTAT\r\n", bytewise),
			 FRONT_EV_AUTH);
	expect_out(&d, "+OK\r\n");
	assert_null(d.f->login.mech);
	assert_string_equal(d.f->login.creds.authcid, "jane");
	assert_string_equal(d.f->login.creds.password, "se cret ");
	assert_string_equal(sbuf_cstr(&d.in), "STAT\r\n");
	pop3_front_ops.auth_failed(d.f, FRONT_AUTH_FAILED, NULL, &d.out);
	expect_out(&d, "-ERR [AUTH] Authentication failed.\r\n");
	assert_null(d.f->login.creds.password);
	sbuf_reset(&d.in);
	/* USER is needed again after a failed PASS, as in Dovecot */
	assert_int_equal(drive_send(&d, "PASS again\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "-ERR No username given.\r\n");

	static const struct {
		enum front_auth_status status;
		const char *text, *reply;
	} failures[] = {
		{ FRONT_AUTH_TEMPFAIL, NULL, "-ERR [SYS/TEMP] Temporary authentication failure.\r\n" },
		{ FRONT_AUTH_TEMPFAIL, "Account is temporarily unavailable.",
		  "-ERR [SYS/TEMP] Account is temporarily unavailable.\r\n" },
		{ FRONT_AUTH_FAILED_REASON, "Gone\r\n+OK", "-ERR [AUTH] Gone  +OK\r\n" },
		{ FRONT_AUTH_BACKEND_REPLY, "-ERR [IN-USE] Locked", "-ERR [IN-USE] Locked\r\n" },
		{ FRONT_AUTH_LIMIT, "Too many", "-ERR [IN-USE] Too many\r\n" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(failures); i++) {
		assert_int_equal(drive_send(&d, "USER jane\r\nPASS secret\r\n", bytewise),
				 FRONT_EV_AUTH);
		sbuf_reset(&d.out);
		pop3_front_ops.auth_failed(d.f, failures[i].status, failures[i].text, &d.out);
		expect_out(&d, failures[i].reply);
	}
	assert_int_equal(drive_send(&d, "USER jane\r\nPASS secret\r\n", bytewise),
			 FRONT_EV_AUTH);
	sbuf_reset(&d.out);
	pop3_front_ops.logged_in(d.f, "+OK Logged in.", &d.out);
	expect_out(&d, "+OK Logged in.\r\n");
	/* after login the front takes no more input */
	size_t consumed;
	sbuf_reset(&d.in);
	sbuf_appends(&d.in, "STAT\r\n");
	assert_int_equal(pop3_front_ops.feed(d.f, (unsigned char *)sbuf_mdata(&d.in),
					     sbuf_len(&d.in), &consumed, &d.out),
			 FRONT_EV_NONE);
	assert_int_equal(consumed, 0);
	drive_deinit(&d);
}

static void test_front_user_pass(void **state)
{
	(void)state;
	run_front_user_pass(false);
	run_front_user_pass(true);
}

static void run_front_auth(bool bytewise)
{
	struct drive d;
	drive_init(&d, &pop3_front_ops, &test_params);
	sbuf_reset(&d.out);
	/* PLAIN with an initial response: \0jane\0secret */
	assert_int_equal(drive_send(&d, "AUTH PLAIN AGphbmUAc2VjcmV0\r\n", bytewise),
			 FRONT_EV_AUTH);
	assert_string_equal(d.f->login.creds.authcid, "jane");
	assert_string_equal(d.f->login.creds.password, "secret");
	pop3_front_ops.auth_failed(d.f, FRONT_AUTH_FAILED, NULL, &d.out);
	sbuf_reset(&d.out);
	/* PLAIN with a continuation */
	assert_int_equal(drive_send(&d, "AUTH PLAIN\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "+ \r\n");
	assert_int_equal(drive_send(&d, "AGphbmUAc2VjcmV0\r\n", bytewise), FRONT_EV_AUTH);
	pop3_front_ops.auth_failed(d.f, FRONT_AUTH_FAILED, NULL, &d.out);
	sbuf_reset(&d.out);
	/* LOGIN, as Dovecot prompts: "Username:", "Password:" */
	assert_int_equal(drive_send(&d, "AUTH LOGIN\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "+ VXNlcm5hbWU6\r\n");
	assert_int_equal(drive_send(&d, "amFuZQ==\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "+ UGFzc3dvcmQ6\r\n");
	assert_int_equal(drive_send(&d, "c2VjcmV0\r\n", bytewise), FRONT_EV_AUTH);
	assert_string_equal(d.f->login.creds.password, "secret");
	pop3_front_ops.auth_failed(d.f, FRONT_AUTH_FAILED, NULL, &d.out);
	sbuf_reset(&d.out);
	/* "*" cancels; bad base64 and unknown mechanisms are refused */
	assert_int_equal(drive_send(&d, "AUTH PLAIN\r\n*\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "+ \r\n-ERR Authentication aborted by client.\r\n");
	assert_int_equal(drive_send(&d, "AUTH PLAIN !!!\r\nAUTH FOO\r\n", bytewise),
			 FRONT_EV_NONE);
	expect_out(&d, "-ERR [AUTH] Invalid base64 data in initial response\r\n"
		   "-ERR [AUTH] Unsupported authentication mechanism.\r\n");
	assert_int_equal(drive_send(&d, "AUTH PLAIN\r\n!!!\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "+ \r\n-ERR [AUTH] Invalid base64 data in continued response\r\n");
	/* a malformed PLAIN message fails like a wrong password */
	assert_int_equal(drive_send(&d, "AUTH PLAIN amFuZQ==\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "-ERR [AUTH] Authentication failed.\r\n");
	drive_deinit(&d);
}

static void test_front_auth(void **state)
{
	(void)state;
	run_front_auth(false);
	run_front_auth(true);
}

static void test_front_plaintext_disabled(void **state)
{
	(void)state;
	struct front_params params = test_params;
	params.disable_plaintext_auth = true;
	struct drive d;
	drive_init(&d, &pop3_front_ops, &params);
	sbuf_reset(&d.out);
	drive_send(&d, "CAPA\r\nAUTH\r\nUSER jane\r\nPASS x\r\nAUTH PLAIN AGphbmUAeA==\r\n",
		   false);
	expect_out(&d, CAPA_HEAD "STLS\r\n.\r\n+OK\r\n.\r\n"
		   "-ERR [AUTH] Plaintext authentication disallowed on non-secure "
		   "(SSL/TLS) connections.\r\n"
		   "-ERR [AUTH] Plaintext authentication disallowed on non-secure "
		   "(SSL/TLS) connections.\r\n"
		   "-ERR [AUTH] Plaintext authentication disallowed on non-secure "
		   "(SSL/TLS) connections.\r\n");
	/* over TLS it is allowed */
	d.f->tls_active = true;
	assert_int_equal(drive_send(&d, "USER jane\r\nPASS x\r\n", false), FRONT_EV_AUTH);
	drive_deinit(&d);
	/* pass-through mechanisms: SCRAM is offered without TLS (and AUTH
	 * lists it), the bearer tokens are plaintext */
	char *names[] = { "SCRAM-SHA-1", "OAUTHBEARER" };
	const char *bad;
	assert_int_equal(sasl_passthrough_mask(names, 2, &params.passthrough_mechs, &bad), 0);
	drive_init(&d, &pop3_front_ops, &params);
	sbuf_reset(&d.out);
	drive_send(&d, "CAPA\r\nAUTH\r\nAUTH OAUTHBEARER\r\n", false);
	expect_out(&d, CAPA_HEAD "STLS\r\nSASL SCRAM-SHA-1\r\n.\r\n+OK\r\nSCRAM-SHA-1\r\n.\r\n"
		   "-ERR [AUTH] Plaintext authentication disallowed on non-secure "
		   "(SSL/TLS) connections.\r\n");
	d.f->tls_active = true;
	drive_send(&d, "CAPA\r\n", false);
	expect_out(&d, CAPA_HEAD "USER\r\nSASL PLAIN LOGIN SCRAM-SHA-1 OAUTHBEARER\r\n.\r\n");
	drive_deinit(&d);
}

static void run_front_limits(bool bytewise)
{
	struct drive d;
	drive_init(&d, &pop3_front_ops, &test_params);
	sbuf_reset(&d.out);
	/* NOOP is not a pre-login command; the third unknown one ends it */
	assert_int_equal(drive_send(&d, "NOOP\r\nFOO\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "-ERR Unknown command.\r\n-ERR Unknown command.\r\n");
	assert_int_equal(drive_send(&d, "BAR\r\nCAPA\r\n", bytewise), FRONT_EV_CLOSE);
	expect_out(&d, "-ERR Unknown command.\r\n-ERR Too many invalid bad commands.\r\n");
	assert_string_equal(d.f->close_reason, "too many invalid commands");
	drive_deinit(&d);

	/* an over-long line ends the connection, however it arrives */
	drive_init(&d, &pop3_front_ops, &test_params);
	sbuf_reset(&d.out);
	char line[400];
	memset(line, 'a', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	assert_int_equal(drive_send(&d, line, bytewise), FRONT_EV_CLOSE);
	expect_out(&d, "-ERR Input line too long, aborting.\r\n");
	drive_deinit(&d);
}

static void test_front_limits(void **state)
{
	(void)state;
	run_front_limits(false);
	run_front_limits(true);
}

static void test_front_xclient(void **state)
{
	(void)state;
	struct drive d;
	drive_init(&d, &pop3_front_ops, &test_params);
	sbuf_reset(&d.out);
	drive_send(&d, "XCLIENT ADDR=192.0.2.7\r\n", false);
	expect_out(&d, "-ERR You are not from trusted IP\r\n");
	assert_false(d.f->forward.have_ip);
	drive_deinit(&d);

	drive_init(&d, &pop3_front_ops, &test_params);
	d.f->trusted = true;
	sbuf_reset(&d.out);
	pop3_front_ops.greet(d.f, &d.out);
	expect_out(&d, "+OK [XCLIENT] loft ready.\r\n");
	drive_send(&d, "XCLIENT ADDR=192.0.2.7 PORT=4711 SESSION=abc TTL=3 LOGIN=x\r\n",
		   true);
	expect_out(&d, "+OK\r\n");
	char ip[IPADDR_STRLEN];
	assert_string_equal(ipaddr_to_str(&d.f->forward.ip, ip), "192.0.2.7");
	assert_int_equal(d.f->forward.port, 4711);
	assert_int_equal(d.f->forward.ttl, 3);
	assert_string_equal(d.f->forward.session_id, "abc");
	drive_deinit(&d);
}

static void test_front_disconnect(void **state)
{
	(void)state;
	struct drive d;
	drive_init(&d, &pop3_front_ops, &test_params);
	sbuf_reset(&d.out);
	pop3_front_ops.disconnect(d.f, "Kicked by admin.", &d.out);
	expect_out(&d, "-ERR Kicked by admin.\r\n");
	drive_deinit(&d);
}

/* ---- backend ------------------------------------------------------------ */

static struct back_params back_params(bool use_sasl, bool starttls)
{
	struct back_params p = {
		.user = "jane", .password = "secret", .use_sasl = use_sasl,
		.starttls = starttls, .forward = true, .client_port = 50000,
		.local_port = 110, .session_id = "00000001", .ttl = 5,
	};
	ipaddr_parse("192.0.2.7", &p.client_ip);
	ipaddr_parse("127.0.0.1", &p.local_ip);
	return p;
}

#define XCLIENT_LINE "XCLIENT ADDR=192.0.2.7 PORT=50000 SESSION=00000001 TTL=4\r\n"

static void run_back_login(bool bytewise)
{
	struct back_params p = back_params(false, false);
	struct sbuf out = SBUF_INIT;
	struct back *b = pop3_back_ops.create(&p);
	assert_int_equal(back_send(b, "+OK [XCLIENT] Dovecot ready.\r\n", bytewise, &out),
			 BACK_EV_NONE);
	expect_sbuf(&out, XCLIENT_LINE);
	assert_int_equal(back_send(b, "+OK\r\n", bytewise, &out), BACK_EV_NONE);
	expect_sbuf(&out, "USER jane\r\n");
	assert_int_equal(back_send(b, "+OK\r\n", bytewise, &out), BACK_EV_NONE);
	expect_sbuf(&out, "PASS secret\r\n");
	assert_int_equal(back_send(b, "+OK Logged in.\r\n", bytewise, &out), BACK_EV_OK);
	assert_string_equal(b->reply, "+OK Logged in.");
	pop3_back_ops.destroy(b);

	/* no [XCLIENT] in the banner: straight to USER */
	b = pop3_back_ops.create(&p);
	assert_int_equal(back_send(b, "+OK ready.\r\n", bytewise, &out), BACK_EV_NONE);
	expect_sbuf(&out, "USER jane\r\n");
	pop3_back_ops.destroy(b);

	/* STLS first, XCLIENT after TLS, then AUTH PLAIN */
	p = back_params(true, true);
	b = pop3_back_ops.create(&p);
	assert_int_equal(back_send(b, "+OK [XCLIENT] ready.\r\n", bytewise, &out),
			 BACK_EV_NONE);
	expect_sbuf(&out, "STLS\r\n");
	assert_int_equal(back_send(b, "+OK Begin TLS negotiation now.\r\n", bytewise, &out),
			 BACK_EV_STARTTLS);
	pop3_back_ops.tls_started(b, &out);
	expect_sbuf(&out, XCLIENT_LINE);
	assert_int_equal(back_send(b, "+OK\r\n", bytewise, &out), BACK_EV_NONE);
	expect_sbuf(&out, "AUTH PLAIN AGphbmUAc2VjcmV0\r\n");
	assert_int_equal(back_send(b, "+OK Logged in.\r\n", bytewise, &out), BACK_EV_OK);
	pop3_back_ops.destroy(b);
	sbuf_free(&out);
}

static void test_back_login(void **state)
{
	(void)state;
	run_back_login(false);
	run_back_login(true);
}

static void test_back_failures(void **state)
{
	(void)state;
	static const struct back_failure cases[] = {
		/* wrong password, or an unknown user: never told apart */
		{ "+OK hi\r\n+OK\r\n-ERR [AUTH] Authentication failed.\r\n", BACK_FAIL_AUTH, NULL },
		{ "+OK hi\r\n-ERR no such user\r\n", BACK_FAIL_AUTH, NULL },
		{ "+OK hi\r\n+OK\r\n-ERR bad password\r\n", BACK_FAIL_AUTH, NULL },
		/* other codes pass through */
		{ "+OK hi\r\n+OK\r\n-ERR [IN-USE] Mailbox locked\r\n", BACK_FAIL_REPLY,
		  "-ERR [IN-USE] Mailbox locked" },
		{ "+OK hi\r\n+OK\r\n-ERR [SYS/TEMP] Try later\r\n", BACK_FAIL_REPLY,
		  "-ERR [SYS/TEMP] Try later" },
		/* not POP3, or nonsense */
		{ "* OK IMAP ready\r\n", BACK_FAIL_TEMP, NULL },
		{ "+OKAY\r\n", BACK_FAIL_TEMP, NULL },
		{ "+OK hi\r\n+OK\r\nwhat?\r\n", BACK_FAIL_TEMP, NULL },
	};
	struct back_params bp = back_params(false, false);
	expect_back_failures(&pop3_back_ops, &bp, NULL, cases, ARRAY_SIZE(cases));
	/* STLS refused */
	struct back_params p = back_params(false, true);
	struct sbuf out = SBUF_INIT;
	struct back *b = pop3_back_ops.create(&p);
	assert_int_equal(back_send(b, "+OK hi\r\n-ERR no TLS\r\n", false, &out), BACK_EV_FAIL);
	assert_string_equal(b->error, "STLS failed");
	pop3_back_ops.destroy(b);
	/* a name USER cannot carry goes through AUTH PLAIN */
	p = back_params(false, false);
	p.user = "jane doe";
	b = pop3_back_ops.create(&p);
	sbuf_reset(&out);
	assert_int_equal(back_send(b, "+OK hi\r\n", false, &out), BACK_EV_NONE);
	assert_string_equal(sbuf_cstr(&out), "AUTH PLAIN AGphbmUgZG9lAHNlY3JldA==\r\n");
	pop3_back_ops.destroy(b);
	sbuf_free(&out);
}

/* A pass-through mechanism is asked only of a backend whose CAPA lists
 * it (RFC 2449 SASL); a backend without CAPA decides itself. */
static void run_back_passthrough(bool bytewise)
{
	struct back_params p = back_params(true, false);
	p.sasl_mech = "XOAUTH2";
	p.sasl_ir = (const unsigned char *)"user=jane\001auth=Bearer t\001\001";
	p.sasl_ir_len = strlen((const char *)p.sasl_ir);
	struct sbuf out = SBUF_INIT;
	struct back *b = pop3_back_ops.create(&p);
	assert_int_equal(back_send(b, "+OK ready.\r\n", bytewise, &out), BACK_EV_NONE);
	expect_sbuf(&out, "CAPA\r\n");
	assert_int_equal(back_send(b, "+OK\r\nTOP\r\nSASL PLAIN xoauth2 LOGIN\r\n"
				   "USER\r\n", bytewise, &out), BACK_EV_NONE);
	expect_sbuf(&out, "");
	assert_int_equal(back_send(b, ".\r\n", bytewise, &out), BACK_EV_NONE);
	expect_sbuf(&out, "AUTH XOAUTH2 dXNlcj1qYW5lAWF1dGg9QmVhcmVyIHQBAQ==\r\n");
	assert_int_equal(back_send(b, "+OK Logged in.\r\n", bytewise, &out), BACK_EV_OK);
	pop3_back_ops.destroy(b);

	/* not listed (nor as a part of another name): no attempt */
	b = pop3_back_ops.create(&p);
	assert_int_equal(back_send(b, "+OK ready.\r\n+OK\r\nSASL PLAIN XOAUTH2X\r\n"
				   "XOAUTH2\r\n.\r\n", bytewise, &out), BACK_EV_FAIL);
	assert_int_equal(b->fail, BACK_FAIL_TEMP);
	assert_string_equal(b->error, "the client's SASL mechanism is not advertised");
	expect_sbuf(&out, "CAPA\r\n");
	pop3_back_ops.destroy(b);

	/* CAPA refused: AUTH goes, the backend decides */
	b = pop3_back_ops.create(&p);
	assert_int_equal(back_send(b, "+OK ready.\r\n-ERR what?\r\n", bytewise, &out),
			 BACK_EV_NONE);
	expect_sbuf(&out, "CAPA\r\nAUTH XOAUTH2 dXNlcj1qYW5lAWF1dGg9QmVhcmVyIHQBAQ==\r\n");
	pop3_back_ops.destroy(b);
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
		cmocka_unit_test(test_front_user_pass),
		cmocka_unit_test(test_front_auth),
		cmocka_unit_test(test_front_plaintext_disabled),
		cmocka_unit_test(test_front_limits),
		cmocka_unit_test(test_front_xclient),
		cmocka_unit_test(test_front_disconnect),
		cmocka_unit_test(test_back_login),
		cmocka_unit_test(test_back_failures),
		cmocka_unit_test(test_back_passthrough),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
