/* Unit tests for what the protocol machines share in src/proto: line
 * splitting, the backend line loop, and the attributes a trusted client
 * forwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/sbuf.h"
#include "proto/back.h"
#include "proto/front.h"
#include "proto/imap_back.h"
#include "proto/line.h"
#include "proto/managesieve_back.h"
#include "proto/pop3_back.h"
#include "proto/submission_back.h"

/* ---- line_next ------------------------------------------------------ */

struct line_case {
	const char *input;
	long result;		/* the line's length, -1 (more) or -2 (too long) */
	size_t consumed;
};

static void test_line_next(void **state)
{
	(void)state;
	/* max = 4 bytes without the line end */
	static const struct line_case cases[] = {
		{ "abcd\n", 4, 5 },
		{ "abcd\r\n", 4, 6 },
		{ "ab\r\ncd\r\n", 2, 4 },
		{ "\r\n", 0, 2 },
		{ "\n", 0, 1 },
		/* one byte too many, with or without the CR */
		{ "abcde\n", -2, 0 },
		{ "abcde\r\n", -2, 0 },
		/* no line end yet: the CR of a full line may still come */
		{ "abcd", -1, 0 },
		{ "abcd\r", -1, 0 },
		{ "abcde", -1, 0 },
		{ "abcdef", -2, 0 },
		{ "", -1, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t consumed = 99;
		long r = line_next((const unsigned char *)cases[i].input,
				   strlen(cases[i].input), 4, &consumed);
		if (r != cases[i].result || consumed != cases[i].consumed)
			fail_msg("case %zu '%s': got %ld/%zu, want %ld/%zu", i,
				 cases[i].input, r, consumed, cases[i].result,
				 cases[i].consumed);
	}
}

/* ---- back_feed_lines ------------------------------------------------ */

static const struct back_ops *const back_machines[] = {
	&imap_back_ops, &pop3_back_ops, &managesieve_back_ops, &submission_back_ops,
};

/* Feeds s whole or one byte at a time; the last event and what the
 * machine consumed in all. */
static enum back_event back_feed_all(struct back *b, const struct sbuf *s, bool bytewise,
				     size_t *consumed_r)
{
	struct sbuf in = SBUF_INIT, out = SBUF_INIT;
	enum back_event ev = BACK_EV_NONE;
	*consumed_r = 0;
	for (size_t i = 0; i < sbuf_len(s) && ev == BACK_EV_NONE; ) {
		size_t n = bytewise ? 1 : sbuf_len(s);
		sbuf_append(&in, sbuf_data(s) + i, n);
		i += n;
		size_t consumed;
		ev = b->ops->feed(b, (const unsigned char *)sbuf_data(&in), sbuf_len(&in),
				  &consumed, &out);
		sbuf_consume(&in, consumed);
		*consumed_r += consumed;
	}
	sbuf_free(&in);
	sbuf_free(&out);
	return ev;
}

static void test_back_feed_lines(void **state)
{
	(void)state;
	struct back_params p = {
		.user = "jane", .password = "secret", .session_id = "1", .ttl = 5,
	};
	struct sbuf line = SBUF_INIT;
	for (size_t i = 0; i < BACK_MAX_LINE + 1; i++)
		sbuf_appendc(&line, 'x');
	sbuf_appends(&line, "\r\n");
	for (size_t m = 0; m < sizeof(back_machines) / sizeof(back_machines[0]); m++) {
		for (int bytewise = 0; bytewise < 2; bytewise++) {
			struct back *b = back_machines[m]->create(&p);
			size_t consumed;
			assert_int_equal(back_feed_all(b, &line, bytewise, &consumed),
					 BACK_EV_FAIL);
			assert_int_equal(consumed, 0);
			assert_int_equal(b->fail, BACK_FAIL_TEMP);
			assert_string_equal(b->error, "backend line too long");
			/* a machine that is done reads nothing more */
			struct sbuf ok = SBUF_INIT;
			sbuf_appends(&ok, "* OK +OK 220 OK\r\n");
			assert_int_equal(back_feed_all(b, &ok, false, &consumed), BACK_EV_NONE);
			assert_int_equal(consumed, 0);
			sbuf_free(&ok);
			b->ops->destroy(b);
		}
	}
	sbuf_free(&line);
}

/* ---- forwarded attributes ------------------------------------------ */

static void test_forward_session_id(void **state)
{
	(void)state;
	static const struct {
		const char *value;
		const char *kept;	/* "" when dropped */
	} cases[] = {
		{ "aBc09+/=_-", "aBc09+/=_-" },
		{ "R2Vu7iHd6bV/AAAB", "R2Vu7iHd6bV/AAAB" },
		/* what would add attributes to XCLIENT or to an IMAP ID */
		{ "abc ADDR=192.0.2.66", "" },
		{ "abc\" \"x-originating-ip\" \"192.0.2.66", "" },
		{ "abc\\", "" },
		{ "abc\r\nQUIT", "" },
		{ "abc;def", "" },
		{ "j\xc3\xa4ne", "" },
		/* and one too long for the field */
		{ "0123456789012345678901234567890123456789012345678901234567890123", "" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (int form = 0; form < 3; form++) {
			struct front_forward fw;
			front_forward_init(&fw);
			if (form == 0) {
				front_forward_apply(&fw, "x-session-id", cases[i].value);
			} else if (form == 1) {
				front_forward_apply(&fw, "session-ext-id", cases[i].value);
			} else {
				/* XCLIENT SESSION=, one token */
				char token[128];
				snprintf(token, sizeof(token), "SESSION=%s", cases[i].value);
				front_xclient_attr(&fw, token);
			}
			if (strcmp(fw.session_id, cases[i].kept) != 0)
				fail_msg("case %zu form %d: got '%s', want '%s'", i, form,
					 fw.session_id, cases[i].kept);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_next),
		cmocka_unit_test(test_back_feed_lines),
		cmocka_unit_test(test_forward_session_id),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
