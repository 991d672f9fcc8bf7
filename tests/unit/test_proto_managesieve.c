/* Unit tests for src/proto ManageSieve: the pre-login front (whole and one
 * byte at a time) with Dovecot 2.3 managesieve-login's replies, the
 * tagless parser mode it uses, and the backend login machine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto/managesieve_back.h"
#include "proto/managesieve_front.h"
#include "proto_drive.h"

static const struct front_params test_params = {
	.greeting = "loft ready.",
	.max_line = 200,
	.max_literal = 100,
	.max_bad_commands = 3,
	.disable_plaintext_auth = false,
	.sieve_capability = "fileinto vacation",
	.notify_capability = "mailto",
};

#define CAPS_HEAD "\"IMPLEMENTATION\" \"loft\"\r\n\"SIEVE\" \"fileinto vacation\"\r\n" \
	"\"NOTIFY\" \"mailto\"\r\n"
#define CAPS_TAIL "\"VERSION\" \"1.0\"\r\n"

static void run_front_basic(bool bytewise)
{
	struct drive d;
	drive_init(&d, &managesieve_front_ops, &test_params);
	expect_out(&d, CAPS_HEAD "\"SASL\" \"PLAIN LOGIN\"\r\n\"STARTTLS\"\r\n" CAPS_TAIL
		   "OK \"loft ready.\"\r\n");
	assert_int_equal(drive_send(&d, "CAPABILITY\r\nNOOP\r\nnoop \"t\\\"1\"\r\n"
				    "NOOP {2+}\r\nab\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, CAPS_HEAD "\"SASL\" \"PLAIN LOGIN\"\r\n\"STARTTLS\"\r\n" CAPS_TAIL
		   "OK \"Capability completed.\"\r\n"
		   "OK \"NOOP Completed\"\r\n"
		   "OK (TAG \"t\\\"1\") \"Done\"\r\n"
		   "OK (TAG \"ab\") \"Done\"\r\n");
	assert_int_equal(drive_send(&d, "STARTTLS\r\n", bytewise), FRONT_EV_STARTTLS);
	expect_out(&d, "OK \"Begin TLS negotiation now.\"\r\n");
	/* RFC 5804 §2.2: the capabilities again, without STARTTLS */
	d.f->tls_active = true;
	managesieve_front_ops.tls_started(d.f, &d.out);
	expect_out(&d, CAPS_HEAD "\"SASL\" \"PLAIN LOGIN\"\r\n" CAPS_TAIL
		   "OK \"TLS negotiation successful.\"\r\n");
	assert_int_equal(drive_send(&d, "STARTTLS\r\nLOGOUT\r\n", bytewise), FRONT_EV_CLOSE);
	expect_out(&d, "NO \"TLS is already active.\"\r\nOK \"Logout completed.\"\r\n");
	drive_deinit(&d);
}

static void test_front_basic(void **state)
{
	(void)state;
	run_front_basic(false);
	run_front_basic(true);
}

static void run_front_authenticate(bool bytewise)
{
	struct drive d;
	drive_init(&d, &managesieve_front_ops, &test_params);
	sbuf_reset(&d.out);
	/* an initial response as a quoted string; what follows stays */
	assert_int_equal(drive_send(&d, "AUTHENTICATE \"PLAIN\" \"AGphbmUAc2VjcmV0\"\r\n"
				    "LISTSCRIPTS\r\n", bytewise), FRONT_EV_AUTH);
	assert_string_equal(d.f->login.creds.authcid, "jane");
	assert_string_equal(d.f->login.creds.password, "secret");
	assert_string_equal(sbuf_cstr(&d.in), "LISTSCRIPTS\r\n");
	sbuf_reset(&d.in);
	managesieve_front_ops.auth_failed(d.f, FRONT_AUTH_FAILED, NULL, &d.out);
	expect_out(&d, "NO \"Authentication failed.\"\r\n");
	/* ... and as a literal */
	assert_int_equal(drive_send(&d, "AUTHENTICATE \"PLAIN\" {16+}\r\nAGphbmUAc2VjcmV0\r\n",
				    bytewise), FRONT_EV_AUTH);
	managesieve_front_ops.auth_failed(d.f, FRONT_AUTH_TEMPFAIL, NULL, &d.out);
	expect_out(&d, "NO (TRYLATER) \"Temporary authentication failure.\"\r\n");
	/* continuations are quoted strings; so are the responses */
	assert_int_equal(drive_send(&d, "AUTHENTICATE \"LOGIN\"\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "\"VXNlcm5hbWU6\"\r\n");
	assert_int_equal(drive_send(&d, "\"amFuZQ==\"\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "\"UGFzc3dvcmQ6\"\r\n");
	assert_int_equal(drive_send(&d, "{8+}\r\nc2VjcmV0\r\n", bytewise), FRONT_EV_AUTH);
	assert_string_equal(d.f->login.creds.password, "secret");
	managesieve_front_ops.auth_failed(d.f, FRONT_AUTH_BACKEND_REPLY,
					  "NO (TRYLATER) \"Busy\"", &d.out);
	expect_out(&d, "NO (TRYLATER) \"Busy\"\r\n");
	/* "*" cancels; an unknown mechanism; an atom is not a string */
	assert_int_equal(drive_send(&d, "AUTHENTICATE \"PLAIN\"\r\n\"*\"\r\n"
				    "AUTHENTICATE \"FOO\"\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "\"\"\r\nNO \"Authentication aborted by client.\"\r\n"
		   "NO \"Unsupported authentication mechanism.\"\r\n");
	assert_int_equal(drive_send(&d, "AUTHENTICATE PLAIN\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "NO \"Error in MANAGESIEVE command received by server.\"\r\n");
	assert_int_equal(drive_send(&d, "AUTHENTICATE \"PLAIN\" \"AGphbmUAc2VjcmV0\"\r\n",
				    bytewise), FRONT_EV_AUTH);
	managesieve_front_ops.logged_in(d.f, "OK \"Logged in.\"", &d.out);
	expect_out(&d, "OK \"Logged in.\"\r\n");
	drive_deinit(&d);
}

static void test_front_authenticate(void **state)
{
	(void)state;
	run_front_authenticate(false);
	run_front_authenticate(true);
}

static void run_front_errors(bool bytewise)
{
	struct drive d;
	drive_init(&d, &managesieve_front_ops, &test_params);
	sbuf_reset(&d.out);
	/* a synchronising literal is never invited: refused, not waited for */
	assert_int_equal(drive_send(&d, "NOOP {2}\r\n", bytewise), FRONT_EV_NONE);
	expect_out(&d, "NO \"Error in MANAGESIEVE command received by server.\"\r\n");
	assert_int_equal(drive_send(&d, "FOO\r\nBAR\r\n", bytewise), FRONT_EV_CLOSE);
	/* as Dovecot's managesieve-login: the BYE answers the third */
	expect_out(&d, "NO \"Error in MANAGESIEVE command received by server.\"\r\n"
		   "BYE \"Too many invalid MANAGESIEVE commands.\"\r\n");
	drive_deinit(&d);
	/* a literal larger than allowed ends the connection */
	drive_init(&d, &managesieve_front_ops, &test_params);
	sbuf_reset(&d.out);
	assert_int_equal(drive_send(&d, "NOOP {101+}\r\n", bytewise), FRONT_EV_CLOSE);
	expect_out(&d, "BYE \"Literal too large.\"\r\n");
	drive_deinit(&d);
}

static void test_front_errors(void **state)
{
	(void)state;
	run_front_errors(false);
	run_front_errors(true);
}

static void test_front_plaintext_and_xclient(void **state)
{
	(void)state;
	struct front_params params = test_params;
	params.disable_plaintext_auth = true;
	struct drive d;
	drive_init(&d, &managesieve_front_ops, &params);
	expect_out(&d, CAPS_HEAD "\"SASL\" \"\"\r\n\"STARTTLS\"\r\n" CAPS_TAIL
		   "OK \"loft ready.\"\r\n");
	drive_send(&d, "AUTHENTICATE \"PLAIN\" \"AGphbmUAeA==\"\r\n", false);
	expect_out(&d, "NO \"Plaintext authentication disallowed on non-secure (SSL/TLS) "
		   "connections.\"\r\n");
	drive_send(&d, "XCLIENT ADDR=192.0.2.7\r\n", false);
	expect_out(&d, "NO \"You are not from trusted IP\"\r\n");
	drive_deinit(&d);

	drive_init(&d, &managesieve_front_ops, &test_params);
	d.f->trusted = true;
	sbuf_reset(&d.out);
	drive_send(&d, "CAPABILITY\r\nXCLIENT ADDR=192.0.2.7 PORT=4711 TTL=2\r\n", true);
	expect_out(&d, CAPS_HEAD "\"SASL\" \"PLAIN LOGIN\"\r\n\"STARTTLS\"\r\n" CAPS_TAIL
		   "\"XCLIENT\"\r\nOK \"Capability completed.\"\r\nOK \"Updated\"\r\n");
	char ip[IPADDR_STRLEN];
	assert_string_equal(ipaddr_to_str(&d.f->forward.ip, ip), "192.0.2.7");
	assert_int_equal(d.f->forward.port, 4711);
	assert_int_equal(d.f->forward.ttl, 2);
	managesieve_front_ops.disconnect(d.f, "Kicked by admin.", &d.out);
	expect_out(&d, "BYE \"Kicked by admin.\"\r\n");
	drive_deinit(&d);
}

/* ---- backend ------------------------------------------------------------ */

static struct back_params back_params(bool starttls)
{
	struct back_params p = {
		.user = "jane", .password = "secret", .starttls = starttls,
		.forward = true, .client_port = 50000, .local_port = 4190,
		.session_id = "00000001", .ttl = 5,
	};
	ipaddr_parse("192.0.2.7", &p.client_ip);
	return p;
}

#define BACKEND_CAPS "\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\r\n" \
	"\"SIEVE\" \"fileinto\"\r\n\"SASL\" \"PLAIN LOGIN\"\r\n\"STARTTLS\"\r\n" \
	"\"VERSION\" \"1.0\"\r\n\"XCLIENT\"\r\n"

static void run_back(bool bytewise)
{
	struct back_params p = back_params(false);
	struct sbuf out = SBUF_INIT;
	struct back *b = managesieve_back_ops.create(&p);
	assert_int_equal(back_send(b, BACKEND_CAPS "OK \"ready\"\r\n", bytewise, &out),
			 BACK_EV_NONE);
	expect_sbuf(&out, "XCLIENT ADDR=192.0.2.7 PORT=50000 SESSION=00000001 TTL=4\r\n");
	assert_int_equal(back_send(b, "OK \"Updated\"\r\n", bytewise, &out), BACK_EV_NONE);
	expect_sbuf(&out, "AUTHENTICATE \"PLAIN\" \"AGphbmUAc2VjcmV0\"\r\n");
	assert_int_equal(back_send(b, "OK \"Logged in.\"\r\n", bytewise, &out), BACK_EV_OK);
	assert_string_equal(b->reply, "OK \"Logged in.\"");
	managesieve_back_ops.destroy(b);

	/* STARTTLS, the capabilities again, then the rest */
	p = back_params(true);
	b = managesieve_back_ops.create(&p);
	assert_int_equal(back_send(b, BACKEND_CAPS "OK \"ready\"\r\n", bytewise, &out),
			 BACK_EV_NONE);
	expect_sbuf(&out, "STARTTLS\r\n");
	assert_int_equal(back_send(b, "OK \"Begin TLS negotiation now.\"\r\n", bytewise, &out),
			 BACK_EV_STARTTLS);
	managesieve_back_ops.tls_started(b, &out);
	assert_int_equal(back_send(b, "\"SASL\" \"PLAIN\"\r\nOK \"TLS negotiation successful.\"\r\n",
				   bytewise, &out), BACK_EV_NONE);
	/* no XCLIENT in the capabilities after TLS: straight to the login */
	expect_sbuf(&out, "AUTHENTICATE \"PLAIN\" \"AGphbmUAc2VjcmV0\"\r\n");
	managesieve_back_ops.destroy(b);
	sbuf_free(&out);
}

static void test_back(void **state)
{
	(void)state;
	run_back(false);
	run_back(true);
}

#define SCRAM_CAPS "\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\r\n" \
	"\"SASL\" \"PLAIN LOGIN SCRAM-SHA-1 SCRAM-SHA-256\"\r\n\"VERSION\" \"1.0\"\r\n"

/* A pass-through login: challenges and answers are strings (RFC 5804). */
static void run_back_passthrough(bool bytewise)
{
	struct back_params p = back_params(false);
	p.forward = false;
	p.password = NULL;
	p.use_sasl = true;
	p.sasl_mech = "SCRAM-SHA-1";
	p.sasl_ir = (const unsigned char *)"n,,n=jane,r=abc";
	p.sasl_ir_len = 15;
	struct sbuf out = SBUF_INIT;
	struct back *b = managesieve_back_ops.create(&p);
	assert_int_equal(back_send(b, SCRAM_CAPS "OK \"ready\"\r\n", bytewise, &out),
			 BACK_EV_NONE);
	expect_sbuf(&out, "AUTHENTICATE \"SCRAM-SHA-1\" \"biwsbj1qYW5lLHI9YWJj\"\r\n");
	assert_int_equal(back_send(b, "\"cj1hYmNkZWY=\"\r\n", bytewise, &out),
			 BACK_EV_CHALLENGE);
	assert_string_equal(sbuf_cstr(&b->challenge), "cj1hYmNkZWY=");
	back_sasl_respond(b, "Yz1iaXdz", 8, &out);
	expect_sbuf(&out, "\"Yz1iaXdz\"\r\n");
	assert_int_equal(back_send(b, "OK \"Logged in.\"\r\n", bytewise, &out), BACK_EV_OK);
	managesieve_back_ops.destroy(b);
	/* not offered by the backend: nothing is tried */
	b = managesieve_back_ops.create(&p);
	assert_int_equal(back_send(b, BACKEND_CAPS "OK \"ready\"\r\n", bytewise, &out),
			 BACK_EV_FAIL);
	assert_string_equal(b->error, "the client's SASL mechanism is not advertised");
	assert_int_equal(sbuf_len(&out), 0);
	managesieve_back_ops.destroy(b);
	/* an unterminated string is no challenge */
	b = managesieve_back_ops.create(&p);
	back_send(b, SCRAM_CAPS "OK \"ready\"\r\n", bytewise, &out);
	assert_int_equal(back_send(b, "\"abc\r\n", bytewise, &out), BACK_EV_FAIL);
	assert_int_equal(b->fail, BACK_FAIL_TEMP);
	managesieve_back_ops.destroy(b);
	sbuf_free(&out);
}

static void test_back_passthrough(void **state)
{
	(void)state;
	run_back_passthrough(false);
	run_back_passthrough(true);
}

static void test_back_failures(void **state)
{
	(void)state;
	static const struct back_failure cases[] = {
		{ "OK \"hi\"\r\nNO \"Authentication failed.\"\r\n", BACK_FAIL_AUTH, NULL },
		{ "OK \"hi\"\r\nNO\r\n", BACK_FAIL_AUTH, NULL },
		{ "OK \"hi\"\r\nNO (TRYLATER) \"Busy\"\r\n", BACK_FAIL_REPLY,
		  "NO (TRYLATER) \"Busy\"" },
		{ "* OK IMAP\r\n", BACK_FAIL_TEMP, NULL },
		{ "OK \"hi\"\r\nBYE \"going\"\r\n", BACK_FAIL_TEMP, NULL },
	};
	struct back_params bp = back_params(false);
	expect_back_failures(&managesieve_back_ops, &bp, NULL, cases, ARRAY_SIZE(cases));
	/* STARTTLS asked of a backend that does not offer it */
	struct back_params p = back_params(true);
	struct sbuf out = SBUF_INIT;
	struct back *b = managesieve_back_ops.create(&p);
	assert_int_equal(back_send(b, "\"SASL\" \"PLAIN\"\r\nOK \"hi\"\r\n", false, &out),
			 BACK_EV_FAIL);
	assert_string_equal(b->error, "STARTTLS not supported");
	managesieve_back_ops.destroy(b);
	sbuf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_front_basic),
		cmocka_unit_test(test_front_authenticate),
		cmocka_unit_test(test_front_errors),
		cmocka_unit_test(test_front_plaintext_and_xclient),
		cmocka_unit_test(test_back_passthrough),
		cmocka_unit_test(test_back),
		cmocka_unit_test(test_back_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
