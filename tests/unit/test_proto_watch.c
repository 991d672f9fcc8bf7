/* Unit tests for proto/command_watch: what the last line of a client's
 * read says (a logout, the start of compression), for every protocol,
 * and that nothing else does (a line cut short, a literal's text, an
 * argument, another command). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "proto/command_watch.h"

static unsigned int watch(const struct command_watch *w, const char *data)
{
	return command_watch_last_line(w, data, strlen(data));
}

static void test_imap(void **state)
{
	(void)state;
	const struct command_watch *w = &command_watch_imap;
	assert_int_equal(watch(w, "a LOGOUT\r\n"), COMMAND_WATCH_LOGOUT);
	assert_int_equal(watch(w, "a1 logout\n"), COMMAND_WATCH_LOGOUT);
	assert_int_equal(watch(w, "x NOOP\r\ny LOGOUT\r\n"), COMMAND_WATCH_LOGOUT);
	assert_int_equal(watch(w, "c COMPRESS DEFLATE\r\n"), COMMAND_WATCH_OPAQUE);
	assert_int_equal(watch(w, "c compress deflate\r\n"), COMMAND_WATCH_OPAQUE);
	/* only the last line counts */
	assert_int_equal(watch(w, "a LOGOUT\r\nb NOOP\r\n"), 0);
	assert_int_equal(watch(w, "c COMPRESS DEFLATE\r\nd NOOP\r\n"), 0);
	/* not a complete line, no tag, arguments, another command */
	assert_int_equal(watch(w, "a LOGOUT"), 0);
	assert_int_equal(watch(w, "LOGOUT\r\n"), 0);
	assert_int_equal(watch(w, " LOGOUT\r\n"), 0);
	assert_int_equal(watch(w, "a LOGOUT now\r\n"), 0);
	assert_int_equal(watch(w, "a LOGOUTX\r\n"), 0);
	assert_int_equal(watch(w, "a XLOGOUT\r\n"), 0);
	assert_int_equal(watch(w, "\r\n"), 0);
	assert_int_equal(watch(w, ""), 0);
}

static void test_line_protocols(void **state)
{
	(void)state;
	assert_int_equal(watch(&command_watch_pop3, "QUIT\r\n"), COMMAND_WATCH_LOGOUT);
	assert_int_equal(watch(&command_watch_pop3, "RETR 1\r\nquit\r\n"),
			 COMMAND_WATCH_LOGOUT);
	assert_int_equal(watch(&command_watch_pop3, "a QUIT\r\n"), 0);
	assert_int_equal(watch(&command_watch_submission, "QUIT\r\n"),
			 COMMAND_WATCH_LOGOUT);
	assert_int_equal(watch(&command_watch_managesieve, "LOGOUT\r\n"),
			 COMMAND_WATCH_LOGOUT);
	/* compression exists only in IMAP here */
	assert_int_equal(watch(&command_watch_pop3, "COMPRESS DEFLATE\r\n"), 0);
	assert_int_equal(watch(&command_watch_submission, "DATA\r\n"), 0);
}

/* Every split of a read: only a read that ends with the logout line says
 * so, whatever came before it in that read. */
static void test_any_split(void **state)
{
	(void)state;
	const char *text = "a SELECT INBOX\r\nb LOGOUT\r\n";
	size_t len = strlen(text);
	for (size_t start = 0; start < len; start++) {
		for (size_t end = start + 1; end <= len; end++) {
			unsigned int f = command_watch_last_line(&command_watch_imap,
								 text + start, end - start);
			/* the read ends the logout line and holds it whole */
			bool whole = end == len && start <= 16;
			assert_int_equal(f, whole ? COMMAND_WATCH_LOGOUT : 0);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_imap),
		cmocka_unit_test(test_line_protocols),
		cmocka_unit_test(test_any_split),
	};
	return cmocka_run_group_tests_name("proto_watch", tests, NULL, NULL);
}
