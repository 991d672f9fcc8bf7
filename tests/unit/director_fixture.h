/* Helpers shared by the director unit tests (include after cmocka.h). */
#ifndef LOFT_TEST_DIRECTOR_FIXTURE_H
#define LOFT_TEST_DIRECTOR_FIXTURE_H

#include "common/net.h"
#include "common/xmalloc.h"
#include "conf/config.h"
#include <stdio.h>
#include <string.h>

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
	cfg->director.user_move_timeout_ms = 30000;
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

/* ---- a director whose callbacks and store record what they were told -- */

#include "director/director.h"

static inline const struct director_host *route(struct director *d, const char *user,
					 const char *tag, time_t now,
					 struct director_ticket *t, const char **err)
{
	const struct director_host *h = NULL;
	if (director_route(d, user, tag, now, 1, &h, t, err) != DIRECTOR_ROUTE_OK)
		return NULL;
	return h;
}

struct recorder {
	uint32_t killed[64];
	uint16_t killed_tag[64];
	size_t nkilled;
	uint64_t resumed[16];
	size_t nresumed;
	int changes;		/* saves of the host list */
	int done;
	char kicked[64];
	size_t kicks;
};

static inline size_t rec_kill(void *ctx, uint16_t tag, uint32_t hash)
{
	struct recorder *r = ctx;
	r->killed_tag[r->nkilled] = tag;
	r->killed[r->nkilled++] = hash;
	return 1;
}

static inline size_t rec_kick(void *ctx, const char *field, const char *value)
{
	struct recorder *r = ctx;
	snprintf(r->kicked, sizeof(r->kicked), "%s=%s", field != NULL ? field : "user",
		 value);
	r->kicks++;
	return 3;
}

static inline void rec_resume(void *ctx, uint64_t waiter)
{
	struct recorder *r = ctx;
	r->resumed[r->nresumed++] = waiter;
}

static inline void rec_done(void *ctx)
{
	((struct recorder *)ctx)->done++;
}

/* A store that keeps nothing and counts the saves. */
struct rec_store {
	struct director_store store;
	struct recorder *rec;
};

static inline int rec_store_load(struct director_store *store, struct director_host_list *hosts,
			  struct director_host_list *removed, bool *found_r,
			  char **error_r)
{
	(void)store;
	(void)hosts;
	(void)removed;
	(void)error_r;
	*found_r = false;
	return 0;
}

static inline int rec_store_save(struct director_store *store,
			  const struct director_host_list *hosts,
			  const struct director_host_list *initial, char **error_r)
{
	(void)hosts;
	(void)initial;
	(void)error_r;
	((struct rec_store *)store)->rec->changes++;
	return 0;
}

static inline void rec_store_free(struct director_store *store)
{
	free(store);
}

static inline struct director *make_director(const char *const *servers, size_t n,
				      struct config **cfg_r, struct recorder *rec)
{
	char *error = NULL;
	*cfg_r = make_config(servers, n);
	struct director *d = director_new(*cfg_r, NULL, &error);
	assert_non_null(d);
	static const struct director_callbacks cb = {
		.kill = rec_kill, .kick = rec_kick, .resume = rec_resume,
	};
	memset(rec, 0, sizeof(*rec));
	director_set_callbacks(d, &cb, rec);
	struct rec_store *st = xcalloc(1, sizeof(*st));
	st->store = (struct director_store){
		.load = rec_store_load, .save_hosts = rec_store_save,
		.free = rec_store_free, .name = "test",
	};
	st->rec = rec;
	assert_int_equal(director_set_store(d, &st->store, &error), 0);
	rec->changes = 0;	/* the save at start */
	return d;
}

#endif
