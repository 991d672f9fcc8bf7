/* Unit tests for src/cli/print: every formatter against output that
 * Debian's doveadm 2.3.19.1 printed for the same data (doveadm-captures.md
 * appendix B, numbers in brackets), the rules of reference §9 where no
 * capture exists, and loft's fixes where doveadm's output is broken. */
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

/* The session data behind captures [23], [24], [32], [33], [41], [42],
 * [59], [60]: who on backend be1. */
static const char *const who_rows[] = {
	"user24", "1", "imap", "(21348)", "(127.0.0.103)",
	"user12", "1", "imap", "(21354)", "(127.0.0.102)",
	"user23", "1", "imap", "(21346)", "(127.0.0.102)",
	"user6", "1", "pop3", "(21356)", "(127.0.0.103)",
	"user1", "2", "imap", "(21330 21328)", "(127.0.0.102 127.0.0.101)",
	"user5", "1", "imap", "(21338)", "(127.0.0.101)",
};
static const char *const who1_rows[] = {
	"user24", "imap", "21348", "127.0.0.103",
	"user12", "imap", "21354", "127.0.0.102",
	"user23", "imap", "21346", "127.0.0.102",
	"user6", "pop3", "21356", "127.0.0.103",
	"user1", "imap", "21330", "127.0.0.102",
	"user1", "imap", "21328", "127.0.0.101",
	"user5", "imap", "21338", "127.0.0.101",
};

struct col {
	const char *key, *title;
	unsigned int flags;
};

/* doveadm 2.3's who headers (titles "proto"; keys as 2.4 names them) */
static const struct col who_cols[] = {
	{ "username", "username", 0 }, { "connections", "#", PRINT_RIGHT },
	{ "service", "proto", 0 }, { "pids", "(pids)", 0 }, { "ips", "(ips)", 0 },
};
static const struct col who1_cols[] = {
	{ "username", "username", PRINT_EXPAND }, { "service", "proto", 0 },
	{ "pid", "pid", 0 }, { "ip", "ip", 0 },
};

static char *render_cols(const char *formatter, const struct col *cols, size_t ncols,
			 const char *const *values, size_t nvalues, const char *format)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct printer *p = print_new(formatter, false, f);
	assert_non_null(p);
	assert_string_equal(print_formatter_name(p), formatter);
	if (format != NULL)
		print_set_format(p, format);
	for (size_t i = 0; i < ncols; i++)
		print_header(p, cols[i].key, cols[i].title, cols[i].flags);
	for (size_t i = 0; i < nvalues; i++)
		print_value(p, values[i]);
	print_flush(p);
	print_free(&p);
	fclose(f);
	return buf;
}

#define RENDER(fmt, cols, rows, format) \
	render_cols(fmt, cols, ARRAY_SIZE(cols), rows, ARRAY_SIZE(rows), format)

static void expect_text(char *got, const char *want)
{
	if (strcmp(got, want) != 0)
		fail_msg("got:\n%s\nwant:\n%s", got, want);
	free(got);
}

static void test_flow(void **state)
{
	(void)state;
	/* [23], in this data's order */
	expect_text(RENDER("flow", who_cols, who_rows, NULL),
		"username=user24 #=1 proto=imap (pids)=(21348) (ips)=(127.0.0.103)\n"
		"username=user12 #=1 proto=imap (pids)=(21354) (ips)=(127.0.0.102)\n"
		"username=user23 #=1 proto=imap (pids)=(21346) (ips)=(127.0.0.102)\n"
		"username=user6 #=1 proto=pop3 (pids)=(21356) (ips)=(127.0.0.103)\n"
		"username=user1 #=2 proto=imap (pids)=(21330 21328) (ips)=(127.0.0.102 127.0.0.101)\n"
		"username=user5 #=1 proto=imap (pids)=(21338) (ips)=(127.0.0.101)\n");
	/* [24] */
	expect_text(RENDER("flow", who1_cols, who1_rows, NULL),
		"username=user24 proto=imap pid=21348 ip=127.0.0.103\n"
		"username=user12 proto=imap pid=21354 ip=127.0.0.102\n"
		"username=user23 proto=imap pid=21346 ip=127.0.0.102\n"
		"username=user6 proto=pop3 pid=21356 ip=127.0.0.103\n"
		"username=user1 proto=imap pid=21330 ip=127.0.0.102\n"
		"username=user1 proto=imap pid=21328 ip=127.0.0.101\n"
		"username=user5 proto=imap pid=21338 ip=127.0.0.101\n");
	/* a hidden title prints the value alone */
	static const struct col hidden[] = { { "hash", "hash", PRINT_HIDE_TITLE } };
	static const char *const one[] = { "617210206" };
	expect_text(RENDER("flow", hidden, one, NULL), "617210206\n");
}

static void test_pager(void **state)
{
	(void)state;
	/* [33]: FF LF between records, none after the last */
	expect_text(RENDER("pager", who1_cols, who1_rows, NULL),
		"username: user24\nproto: imap\npid: 21348\nip: 127.0.0.103\n\f\n"
		"username: user12\nproto: imap\npid: 21354\nip: 127.0.0.102\n\f\n"
		"username: user23\nproto: imap\npid: 21346\nip: 127.0.0.102\n\f\n"
		"username: user6\nproto: pop3\npid: 21356\nip: 127.0.0.103\n\f\n"
		"username: user1\nproto: imap\npid: 21330\nip: 127.0.0.102\n\f\n"
		"username: user1\nproto: imap\npid: 21328\nip: 127.0.0.101\n\f\n"
		"username: user5\nproto: imap\npid: 21338\nip: 127.0.0.101\n");
	/* [32]'s first record */
	char *got = RENDER("pager", who_cols, who_rows, NULL);
	assert_memory_equal(got, "username: user24\n#: 1\nproto: imap\n(pids): (21348)\n"
			    "(ips): (127.0.0.103)\n\f\nusername: user12\n", 86);
	free(got);
	static const struct col hidden[] = { { "hash", "hash", PRINT_HIDE_TITLE } };
	static const char *const one[] = { "617210206" };
	expect_text(RENDER("pager", hidden, one, NULL), "617210206\n");
}

static void test_tab_captures(void **state)
{
	(void)state;
	/* [42] */
	expect_text(RENDER("tab", who1_cols, who1_rows, NULL),
		"username\tproto\tpid\tip\n"
		"user24\timap\t21348\t127.0.0.103\n"
		"user12\timap\t21354\t127.0.0.102\n"
		"user23\timap\t21346\t127.0.0.102\n"
		"user6\tpop3\t21356\t127.0.0.103\n"
		"user1\timap\t21330\t127.0.0.102\n"
		"user1\timap\t21328\t127.0.0.101\n"
		"user5\timap\t21338\t127.0.0.101\n");
	/* [38]: tab prints a hidden title all the same */
	static const struct col hidden[] = { { "hash", "hash", PRINT_HIDE_TITLE } };
	static const char *const one[] = { "617210206" };
	expect_text(RENDER("tab", hidden, one, NULL), "hash\n617210206\n");
}

static void test_json(void **state)
{
	(void)state;
	/* [60], byte for byte, no trailing newline */
	expect_text(RENDER("json", who1_cols, who1_rows, NULL),
		"[{\"username\":\"user24\",\"service\":\"imap\",\"pid\":\"21348\",\"ip\":\"127.0.0.103\"},"
		"{\"username\":\"user12\",\"service\":\"imap\",\"pid\":\"21354\",\"ip\":\"127.0.0.102\"},"
		"{\"username\":\"user23\",\"service\":\"imap\",\"pid\":\"21346\",\"ip\":\"127.0.0.102\"},"
		"{\"username\":\"user6\",\"service\":\"pop3\",\"pid\":\"21356\",\"ip\":\"127.0.0.103\"},"
		"{\"username\":\"user1\",\"service\":\"imap\",\"pid\":\"21330\",\"ip\":\"127.0.0.102\"},"
		"{\"username\":\"user1\",\"service\":\"imap\",\"pid\":\"21328\",\"ip\":\"127.0.0.101\"},"
		"{\"username\":\"user5\",\"service\":\"imap\",\"pid\":\"21338\",\"ip\":\"127.0.0.101\"}]");
	/* [59] is malformed in doveadm ("[{...}],{...},..."); loft prints one
	 * valid array */
	char *got = RENDER("json", who_cols, who_rows, NULL);
	assert_memory_equal(got, "[{\"username\":\"user24\",\"connections\":\"1\",", 40);
	assert_non_null(strstr(got, "\"ips\":\"(127.0.0.103)\"},{\"username\":\"user12\""));
	assert_int_equal(got[strlen(got) - 1], ']');
	assert_null(strstr(got, "}]"  ",{"));
	free(got);
	/* nothing: an empty array */
	static const char *const none[] = { NULL };
	expect_text(render_cols("json", who1_cols, 4, none, 0, NULL), "[]");
	/* escaping: quotes, backslash, controls, U+2028, invalid UTF-8 */
	static const struct col kv[] = { { "k\"ey", "k", 0 }, { "n", "n", PRINT_NUMBER } };
	static const char *const odd[] = {
		"a\"b\\c\b\f\n\r\t\001x\xe2\x80\xa8y\xff\xc3(z\xc3\xa4", "42",
	};
	expect_text(RENDER("json", kv, odd, NULL),
		"[{\"k\\\"ey\":\"a\\\"b\\\\c\\b\\f\\n\\r\\t\\u0001x\\u2028y"
		"\xef\xbf\xbd\xef\xbf\xbd(z\xc3\xa4\",\"n\":42}]");
}

static void test_formatted(void **state)
{
	(void)state;
	static const struct col count[] = { { "count", "count", 0 } };
	static const char *const n[] = { "3" };
	expect_text(RENDER("formatted", count, n, "%{count} connections kicked\n"),
		    "3 connections kicked\n");
	static const struct col res[] = { { "result", "result", 0 } };
	static const char *const users[] = { "user23", "user24" };
	expect_text(RENDER("formatted", res, users, "%{result} "), "user23 user24 ");
	/* unknown keys expand to nothing; other text stays */
	expect_text(RENDER("formatted", res, users, "<%{nope}%{result}>"),
		    "<user23><user24>");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_who_one_per_line),
		cmocka_unit_test(test_table_who_grouped),
		cmocka_unit_test(test_table_shrinks_to_80),
		cmocka_unit_test(test_tab),
		cmocka_unit_test(test_flow),
		cmocka_unit_test(test_pager),
		cmocka_unit_test(test_tab_captures),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_formatted),
	};
	return cmocka_run_group_tests_name("cli_print", tests, NULL, NULL);
}
