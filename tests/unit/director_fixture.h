/* Helpers shared by the director unit tests (include after cmocka.h). */
#ifndef LOFT_TEST_DIRECTOR_FIXTURE_H
#define LOFT_TEST_DIRECTOR_FIXTURE_H

#include "common/net.h"
#include "common/xmalloc.h"
#include "conf/config.h"

/* A config with these mail_servers and the defaults that matter here;
 * no kick delay, so that moves finish without an event loop. */
static inline struct config *make_config(const char *const *servers, size_t n)
{
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	cfg->path = xstrdup("test.conf");
	cfg->director.username_hash = xstrdup("%Lu");
	cfg->director.user_expire_ms = 900000;
	cfg->director.user_kick_delay_ms = 0;
	cfg->director.max_parallel_moves = 100;
	cfg->director.mail_servers.items = xcalloc(n, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		cfg->director.mail_servers.items[i] = xstrdup(servers[i]);
	cfg->director.mail_servers.count = n;
	return cfg;
}

static inline struct ipaddr ip_of(const char *s)
{
	struct ipaddr ip;
	assert_int_equal(ipaddr_parse(s, &ip), 0);
	return ip;
}

#endif
