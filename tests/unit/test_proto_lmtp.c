/* Unit tests for the LMTP pieces in src/proto: MAIL/RCPT argument parsing
 * and the backend client machine, whole and one byte at a time. */
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

static void expect(struct sbuf *out, const char *want)
{
	if (strcmp(sbuf_cstr(out), want) != 0)
		fail_msg("got:\n%s\nwant:\n%s", sbuf_cstr(out), want);
	sbuf_reset(out);
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
		cmocka_unit_test(test_client),
		cmocka_unit_test(test_client_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
