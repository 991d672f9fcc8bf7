/* What the passdb drivers' unit tests (test_auth_ldap.c, test_auth_sql.c)
 * share: an event loop and a temporary directory (setup, teardown; the
 * includer defines PASSDB_FIXTURE_TMPDIR, a mkdtemp() template), the
 * callback that records the last result, a silent server, and the check
 * that auth.max_queue bounds a driver's lookups. Include after cmocka.h. */
#ifndef LOFT_TEST_PASSDB_FIXTURE_H
#define LOFT_TEST_PASSDB_FIXTURE_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/event.h>

#include "auth/auth.h"

static char tmpdir[] = PASSDB_FIXTURE_TMPDIR;
static struct event_base *base;
static int results_seen;
static struct {
	uint64_t cookie;
	enum auth_status status;
	bool busy;
	bool unchecked;
	char error[256];
	char fields[512];	/* the result's fields, as "k=v " */
} last;

static inline void on_result(void *ctx, uint64_t cookie, const struct auth_result *r)
{
	assert_ptr_equal(ctx, &results_seen);
	results_seen++;
	last.cookie = cookie;
	last.status = r->status;
	last.busy = r->busy;
	last.unchecked = r->password_unchecked;
	snprintf(last.error, sizeof(last.error), "%s", r->error ? r->error : "");
	int n = snprintf(last.fields, sizeof(last.fields), "user=%s host=%s port=%u "
			 "destuser=%s director_tag=%s reason=%s",
			 r->user ? r->user : "-", r->host ? r->host : "-", r->port,
			 r->destuser ? r->destuser : "-",
			 r->director_tag ? r->director_tag : "-", r->reason ? r->reason : "-");
	for (size_t i = 0; i < r->alt_count; i++)
		n += snprintf(last.fields + n, sizeof(last.fields) - (size_t)n, " %s=%s",
			      r->alt[i].field, r->alt[i].value);
}

static inline void wait_results(int n)
{
	while (results_seen < n)
		event_base_loop(base, EVLOOP_ONCE);
}

static inline double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A TCP port on 127.0.0.1 that takes connections (the kernel completes
 * them into the backlog) and never reads a byte: a stopped server. */
static inline int listen_silent(unsigned int *port_r)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port_r = ntohs(sin.sin_port);
	return fd;
}

/* With auth.max_queue = 1 and a silent server: a second lookup is busy
 * at once, the first one answers later, and not busy. Frees a. */
static inline void passdb_queue_check(struct auth *a, const char *user1, const char *user2)
{
	results_seen = 0;
	auth_lookup(a, user1, "pw", on_result, &results_seen, 1);
	auth_lookup(a, user2, "pw", on_result, &results_seen, 2);
	wait_results(1);
	assert_int_equal(last.cookie, 2);
	assert_int_equal(last.status, AUTH_STATUS_TEMPFAIL);
	assert_true(last.busy);
	wait_results(2);
	assert_int_equal(last.cookie, 1);
	assert_false(last.busy);
	auth_free(&a);
}

static int setup(void **state)
{
	(void)state;
	base = event_base_new();
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	event_base_free(base);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

#endif
