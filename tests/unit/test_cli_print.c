/* Unit tests for src/cli/print: the table formatter against output that
 * Debian's doveadm 2.3.19.1 printed (doveadm-captures.md [66], [67]), and
 * the width rules of reference §9.4. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cli/print.h"
#include "common/macros.h"

static char *render(const char *formatter, bool hide,
		    const char *const *headers, const unsigned int *flags, size_t ncols,
		    const char *const *values, size_t nvalues)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct printer *p = print_new(formatter, hide, f);
	assert_non_null(p);
	for (size_t i = 0; i < ncols; i++)
		print_header(p, headers[i], headers[i], flags[i]);
	for (size_t i = 0; i < nvalues; i++)
		print_value(p, values[i]);
	print_flush(p);
	print_free(&p);
	fclose(f);
	return buf;
}

/* doveadm who -1 (2.3 titles), all rows buffered: [66] */
static void test_table_who_one_per_line(void **state)
{
	(void)state;
	static const char *const h[] = { "username", "proto", "pid", "ip" };
	static const unsigned int fl[] = { PRINT_EXPAND, 0, 0, 0 };
	static const char *const v[] = {
		"user24", "imap", "21348", "127.0.0.103",
		"user12", "imap", "21354", "127.0.0.102",
		"user23", "imap", "21346", "127.0.0.102",
		"user6", "pop3", "21356", "127.0.0.103",
		"user1", "imap", "21330", "127.0.0.102",
		"user1", "imap", "21328", "127.0.0.101",
		"user5", "imap", "21338", "127.0.0.101",
	};
	char *out = render("table", false, h, fl, 4, v, ARRAY_SIZE(v));
	assert_string_equal(out,
		"username                         proto pid   ip         \n"
		"user24                           imap  21348 127.0.0.103\n"
		"user12                           imap  21354 127.0.0.102\n"
		"user23                           imap  21346 127.0.0.102\n"
		"user6                            pop3  21356 127.0.0.103\n"
		"user1                            imap  21330 127.0.0.102\n"
		"user1                            imap  21328 127.0.0.101\n"
		"user5                            imap  21338 127.0.0.101\n");
	free(out);
}

/* doveadm who user1 (grouped, one row): [67] */
static void test_table_who_grouped(void **state)
{
	(void)state;
	static const char *const h[] = { "username", "#", "proto", "(pids)", "(ips)" };
	static const unsigned int fl[] = { 0, PRINT_RIGHT, 0, 0, 0 };
	static const char *const v[] = {
		"user1", "2", "imap", "(21330 21328)", "(127.0.0.102 127.0.0.101)",
	};
	char *out = render("table", false, h, fl, 5, v, ARRAY_SIZE(v));
	assert_string_equal(out,
		"username # proto (pids)        (ips)                                \n"
		"user1    2 imap  (21330 21328) (127.0.0.102 127.0.0.101)            \n");
	free(out);
	/* -h hides the header row only */
	out = render("table", true, h, fl, 5, v, ARRAY_SIZE(v));
	assert_string_equal(out,
		"user1    2 imap  (21330 21328) (127.0.0.102 127.0.0.101)            \n");
	free(out);
	/* no rows: the header alone */
	out = render("table", false, h, fl, 5, v, 0);
	assert_string_equal(out, "username # proto (pids) (ips)                         \n");
	free(out);
}

static void test_table_shrinks_to_80(void **state)
{
	(void)state;
	static const char *const h[] = { "a", "b" };
	static const unsigned int fl[] = { 0, PRINT_RIGHT };
	char wide[61], wider[61];
	memset(wide, 'x', 60);
	wide[60] = '\0';
	memset(wider, 'y', 60);
	wider[60] = '\0';
	const char *v[] = { wide, wider, "s", "t" };
	char *out = render("table", false, h, fl, 2, v, 4);
	/* total 121 > 80: the last column shrinks by (60-1)/2 = 29 first, then
	 * the first one by the remaining excess; long values overflow */
	char *nl = strchr(out, '\n');
	assert_int_equal(nl - out, 80);
	free(out);
}

static void test_tab(void **state)
{
	(void)state;
	static const char *const h[] = { "username", "#" };
	static const unsigned int fl[] = { 0, 0 };
	static const char *const v[] = { "jane", "2", "bob", "1" };
	char *out = render("tab", false, h, fl, 2, v, 4);
	assert_string_equal(out, "username\t#\njane\t2\nbob\t1\n");
	free(out);
	out = render("tab", true, h, fl, 2, v, 4);
	assert_string_equal(out, "jane\t2\nbob\t1\n");
	free(out);
	out = render("tab", false, h, fl, 2, v, 0);
	assert_string_equal(out, "username\t#\n");
	free(out);
	assert_null(print_new("xml", false, stdout));
	assert_true(print_formatter_exists("table"));
	assert_int_equal(print_text_width("j\xc3\xa4ne"), 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_who_one_per_line),
		cmocka_unit_test(test_table_who_grouped),
		cmocka_unit_test(test_table_shrinks_to_80),
		cmocka_unit_test(test_tab),
	};
	return cmocka_run_group_tests_name("cli_print", tests, NULL, NULL);
}
