/* Unit tests for src/daemon/notify: $NOTIFY_SOCKET addresses (paths,
 * abstract names, what is refused), $WATCHDOG_USEC/$WATCHDOG_PID, the
 * RELOADING and STATUS messages, datagrams as a manager receives them on
 * a socket this test binds, and a full queue that fails a send instead
 * of blocking it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/notify.h"

/* A bound datagram socket standing in for the service manager's. */
struct manager {
	int fd;
	char dir[64];
	char address[96];
};

static void manager_bind(struct manager *m, bool abstract)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	socklen_t len;
	m->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(m->fd >= 0);
	m->dir[0] = '\0';
	if (abstract) {
		snprintf(m->address, sizeof(m->address), "@loft-notify-test-%ld",
			 (long)getpid());
		memcpy(addr.sun_path, m->address, strlen(m->address));
		addr.sun_path[0] = '\0';
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(m->address));
	} else {
		snprintf(m->dir, sizeof(m->dir), "/tmp/loft-notify-XXXXXX");
		assert_non_null(mkdtemp(m->dir));
		snprintf(m->address, sizeof(m->address), "%s/notify", m->dir);
		snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", m->address);
		len = sizeof(addr);
	}
	assert_int_equal(bind(m->fd, (struct sockaddr *)&addr, len), 0);
}

static void manager_close(struct manager *m)
{
	close(m->fd);
	if (m->dir[0] != '\0') {
		unlink(m->address);
		rmdir(m->dir);
	}
}

/* The next datagram, as text. */
static char *manager_recv(struct manager *m, char *buf, size_t size)
{
	ssize_t n = recv(m->fd, buf, size - 1, MSG_DONTWAIT);
	assert_true(n >= 0);
	buf[n] = '\0';
	return buf;
}

static void test_path_and_abstract_addresses(void **state)
{
	(void)state;
	char buf[256];
	for (int abstract = 0; abstract <= 1; abstract++) {
		struct manager m;
		struct notify *n;
		char *error = NULL;
		manager_bind(&m, abstract);
		assert_int_equal(notify_open(m.address, &n, &error), 0);
		assert_non_null(n);
		assert_int_equal(notify_send(n, "READY=1\nSTATUS=up", &error), 0);
		assert_int_equal(notify_send(n, "WATCHDOG=1", &error), 0);
		/* one datagram per message, in order */
		assert_string_equal(manager_recv(&m, buf, sizeof(buf)), "READY=1\nSTATUS=up");
		assert_string_equal(manager_recv(&m, buf, sizeof(buf)), "WATCHDOG=1");
		notify_free(&n);
		assert_null(n);
		manager_close(&m);
	}
}

static void test_no_manager(void **state)
{
	(void)state;
	struct notify *n = (struct notify *)(uintptr_t)1;
	char *error = NULL;
	assert_int_equal(notify_open(NULL, &n, &error), 0);
	assert_null(n);
	assert_int_equal(notify_open("", &n, &error), 0);
	assert_null(n);
	/* every call takes the NULL of "no manager" */
	assert_int_equal(notify_send(n, "READY=1", &error), 0);
	notify_free(&n);
	assert_null(error);
}

static void test_unusable_addresses(void **state)
{
	(void)state;
	static const struct {
		const char *address, *error;
	} cases[] = {
		{ "run/notify", "NOTIFY_SOCKET=run/notify: not an absolute path or @abstract name" },
		{ "vsock:2:1234", "NOTIFY_SOCKET=vsock:2:1234: not an absolute path" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct notify *n;
		char *error = NULL;
		assert_int_equal(notify_open(cases[i].address, &n, &error), -1);
		assert_null(n);
		assert_non_null(strstr(error, cases[i].error));
		free(error);
	}
	/* sun_path is 108 bytes: a path needs its NUL, an abstract name not */
	char path[200], name[200];
	memset(path, 'p', sizeof(path));
	path[0] = '/';
	memset(name, 'a', sizeof(name));
	name[0] = '@';
	for (size_t len = 100; len < 112; len++) {
		struct notify *n;
		char *error = NULL;
		path[len] = '\0';
		name[len] = '\0';
		assert_int_equal(notify_open(path, &n, &error), len <= 107 ? 0 : -1);
		if (n == NULL)
			assert_non_null(strstr(error, "longer than a socket address can be (107 bytes)"));
		notify_free(&n);
		free(error);
		error = NULL;
		assert_int_equal(notify_open(name, &n, &error), len <= 108 ? 0 : -1);
		notify_free(&n);
		free(error);
		path[len] = 'p';
		name[len] = 'a';
	}
}

static void test_watchdog_usec(void **state)
{
	(void)state;
	uint64_t usec = 99;
	char *error = NULL;
	assert_int_equal(notify_watchdog_usec(NULL, NULL, 42, &usec, &error), 0);
	assert_int_equal(usec, 0);
	assert_int_equal(notify_watchdog_usec("30000000", NULL, 42, &usec, &error), 0);
	assert_int_equal(usec, 30000000);
	assert_int_equal(notify_watchdog_usec("30000000", "42", 42, &usec, &error), 0);
	assert_int_equal(usec, 30000000);
	/* meant for another process */
	assert_int_equal(notify_watchdog_usec("30000000", "43", 42, &usec, &error), 0);
	assert_int_equal(usec, 0);
	assert_int_equal(notify_watchdog_usec("0", NULL, 42, &usec, &error), 0);
	assert_int_equal(usec, 0);
	assert_null(error);
	static const char *const bad[][2] = {
		{ "30s", NULL }, { "-1", NULL }, { " 5", NULL }, { "", "x" },
		{ "99999999999999999999999", NULL }, { "1000", "4x" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (bad[i][0][0] == '\0')
			continue;	/* unset WATCHDOG_USEC: WATCHDOG_PID is not read */
		assert_int_equal(notify_watchdog_usec(bad[i][0], bad[i][1], 42, &usec,
						      &error), -1);
		assert_non_null(strstr(error, "not a number"));
		free(error);
		error = NULL;
	}
	assert_int_equal(notify_watchdog_usec("", "x", 42, &usec, &error), 0);
	assert_int_equal(usec, 0);
}

static void test_reloading_message(void **state)
{
	(void)state;
	char buf[64];
	assert_int_equal(notify_format_reloading(buf, sizeof(buf), 1234567),
			 strlen("RELOADING=1\nMONOTONIC_USEC=1234567"));
	assert_string_equal(buf, "RELOADING=1\nMONOTONIC_USEC=1234567");
	/* cut to fit, still a string */
	char small[16];
	assert_int_equal(notify_format_reloading(small, sizeof(small), 1234567), 15);
	assert_string_equal(small, "RELOADING=1\nMON");
	/* the clock is CLOCK_MONOTONIC in µs: it moves forward */
	uint64_t a = notify_monotonic_usec(), b = notify_monotonic_usec();
	assert_true(a > 0 && b >= a);
}

static void test_status_line(void **state)
{
	(void)state;
	char buf[48];
	size_t len = (size_t)snprintf(buf, sizeof(buf), "READY=1\n");
	notify_append_status(buf, sizeof(buf), &len, "3 sessions\nREADY=0\x01");
	/* a newline in the text must not begin another assignment */
	assert_string_equal(buf, "READY=1\nSTATUS=3 sessions READY=0 ");
	assert_int_equal(len, strlen(buf));
	/* cut to fit */
	len = 0;
	notify_append_status(buf, sizeof(buf), &len,
			     "a very long status line that does not fit in the buffer");
	assert_int_equal(len, sizeof(buf) - 1);
	assert_string_equal(buf, "STATUS=a very long status line that does not fi");
	/* no room for even the prefix: nothing is appended */
	char tiny[8] = "X";
	len = 1;
	notify_append_status(tiny, sizeof(tiny), &len, "up");
	assert_int_equal(len, 1);
	assert_string_equal(tiny, "X");
}

/* A manager that does not read: sends fail (EAGAIN) instead of blocking
 * the event loop. */
static void test_full_queue_fails_not_blocks(void **state)
{
	(void)state;
	struct manager m;
	struct notify *n;
	char *error = NULL;
	manager_bind(&m, false);
	assert_int_equal(notify_open(m.address, &n, &error), 0);
	alarm(20);	/* a blocking send would hang here: fail instead */
	int ret = 0;
	for (int i = 0; i < 100000 && ret == 0; i++)
		ret = notify_send(n, "WATCHDOG=1", &error);
	alarm(0);
	assert_int_equal(ret, -1);
	assert_non_null(strstr(error, "sending to NOTIFY_SOCKET: "));
	assert_non_null(strstr(error, strerror(EAGAIN)));
	free(error);
	notify_free(&n);
	manager_close(&m);
}

/* A manager that is gone: the send fails with the reason. */
static void test_manager_gone(void **state)
{
	(void)state;
	struct manager m;
	struct notify *n;
	char *error = NULL;
	manager_bind(&m, false);
	assert_int_equal(notify_open(m.address, &n, &error), 0);
	manager_close(&m);
	assert_int_equal(notify_send(n, "READY=1", &error), -1);
	assert_non_null(strstr(error, strerror(ENOENT)));
	free(error);
	notify_free(&n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_and_abstract_addresses),
		cmocka_unit_test(test_no_manager),
		cmocka_unit_test(test_unusable_addresses),
		cmocka_unit_test(test_watchdog_usec),
		cmocka_unit_test(test_reloading_message),
		cmocka_unit_test(test_status_line),
		cmocka_unit_test(test_full_queue_fails_not_blocks),
		cmocka_unit_test(test_manager_gone),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
