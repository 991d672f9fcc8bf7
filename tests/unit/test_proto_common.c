/* Unit tests for what the protocol machines share in src/proto: line
 * splitting, the backend line loop, and the attributes a trusted client
 * forwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto/line.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_next),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
