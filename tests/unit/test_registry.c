/* Unit tests for src/registry: the registry and its indexes, and the
 * session filter of who/kick (reference §7.1, §8.2), including that the
 * index walks select exactly what checking every session selects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/xmalloc.h"
#include "registry/filter.h"
#include "registry/registry.h"

static int kicks;
static void count_kick(struct registry_entry *e, const char *text)
{
	(void)e;
	(void)text;
	kicks++;
}

static void test_registry(void **state)
{
	(void)state;
	struct registry reg;
	struct registry_entry e[3];
	registry_init(&reg);
	memset(e, 0, sizeof(e));
	for (int i = 0; i < 3; i++) {
		e[i].id = 100 + (uint64_t)i;
		e[i].service = "imap";
		e[i].kick = count_kick;
		registry_add(&reg, &e[i]);
	}
	assert_int_equal(registry_count(&reg), 3);
	assert_ptr_equal(registry_find(&reg, 101), &e[1]);
	assert_null(registry_find(&reg, 99));
	registry_set_user(&reg, &e[1], "jane", 7);
	registry_add_alt(&e[1], "user_group", "sales");
	assert_string_equal(registry_alt_value(&e[1], "user_group"), "sales");
	assert_null(registry_alt_value(&e[1], "user_x"));
	assert_int_equal(registry_user_count(&reg, "JANE"), 1);
	struct ipaddr ip;
	ipaddr_parse("10.0.0.1", &ip);
	registry_set_backend(&reg, &e[1], &ip, 143, "be1.example");
	assert_non_null(registry_backend_find(&reg, &ip));
	/* moving to another user and backend leaves no stale buckets */
	registry_set_user(&reg, &e[1], "john", 8);
	assert_int_equal(registry_user_count(&reg, "jane"), 0);
	assert_null(registry_user_find(&reg, "jane"));
	registry_clear_login(&reg, &e[1]);
	assert_null(e[1].user);
	assert_null(e[1].alt);
	assert_null(registry_backend_find(&reg, &ip));
	assert_false(ipaddr_is_set(&e[1].backend_ip));
	registry_remove(&reg, &e[1]);
	assert_null(registry_find(&reg, 101));
	/* listings come in registration order */
	struct registry_entry *it;
	uint64_t ids[3];
	int n = 0;
	REGISTRY_FOR_EACH(it, &reg)
		ids[n++] = it->id;
	assert_int_equal(n, 2);
	assert_int_equal(ids[0], 100);
	assert_int_equal(ids[1], 102);
	assert_true(registry_kick(&e[0], "test"));
	assert_false(registry_kick(&e[0], "test"));	/* one kick per session */
	assert_int_equal(kicks, 1);
	assert_string_equal(registry_state_name(REGISTRY_STATE_PROXYING), "proxying");
	registry_remove(&reg, &e[0]);
	registry_remove(&reg, &e[2]);
	assert_null(registry_first(&reg));
	registry_deinit(&reg);
}

/* A population: name, client ip, backend ip or NULL, host name, alt group */
static const struct {
	const char *user, *client, *backend, *host, *group;
	uint32_t hash;
} people[] = {
	{ "jane", "192.0.2.1", "10.0.0.1", NULL, "sales", 11 },
	{ "jane", "192.0.2.2", "10.0.0.1", NULL, "sales", 11 },
	{ "Jane", "2001:db8::1", "10.0.0.2", "be2.example", NULL, 11 },
	{ "jan", "192.0.2.1", "10.0.0.2", "be2.example", "ops", 12 },
	{ "janet", "198.51.100.7", NULL, NULL, NULL, 13 },
	{ "john", "192.0.2.200", "10.0.0.3", NULL, "sales", 14 },
	{ NULL, "192.0.2.9", NULL, NULL, NULL, 0 },	/* not logged in */
};
#define NPEOPLE ARRAY_SIZE(people)

struct population {
	struct registry reg;
	struct registry_entry e[NPEOPLE];
};

static void population_init(struct population *p)
{
	registry_init(&p->reg);
	memset(p->e, 0, sizeof(p->e));
	for (size_t i = 0; i < NPEOPLE; i++) {
		struct registry_entry *e = &p->e[i];
		e->id = i + 1;
		e->service = "imap";
		e->kick = count_kick;
		ipaddr_parse(people[i].client, &e->client_ip);
		registry_add(&p->reg, e);
		if (people[i].user != NULL)
			registry_set_user(&p->reg, e, people[i].user, people[i].hash);
		if (people[i].group != NULL)
			registry_add_alt(e, "user_group", people[i].group);
		if (people[i].backend != NULL) {
			struct ipaddr ip;
			ipaddr_parse(people[i].backend, &ip);
			registry_set_backend(&p->reg, e, &ip, 143, people[i].host);
		}
	}
}

static void population_deinit(struct population *p)
{
	for (size_t i = 0; i < NPEOPLE; i++)
		registry_remove(&p->reg, &p->e[i]);
	registry_deinit(&p->reg);
}

struct collect {
	char ids[64];
};

static void collect_cb(struct registry_entry *e, void *ctx)
{
	struct collect *c = ctx;
	size_t len = strlen(c->ids);
	snprintf(c->ids + len, sizeof(c->ids) - len, "%llu", (unsigned long long)e->id);
}

/* The ids registry_match() selects, and checks that checking every
 * session one by one selects the same ones (in id order). */
static const char *select_ids(struct population *p, const struct registry_filter *f)
{
	static struct collect c;
	memset(&c, 0, sizeof(c));
	registry_match(&p->reg, f, collect_cb, &c);
	char sorted[64] = "", brute[64] = "";
	size_t ns = 0, nb = 0;
	for (char d = '1'; d <= '9'; d++) {
		if (strchr(c.ids, d) != NULL)
			sorted[ns++] = d;
	}
	for (size_t i = 0; i < NPEOPLE; i++) {
		if (registry_filter_match(f, &p->e[i]))
			brute[nb++] = (char)('1' + i);
	}
	assert_string_equal(sorted, brute);
	assert_int_equal(strlen(sorted), strlen(c.ids)); /* each once */
	snprintf(c.ids, sizeof(c.ids), "%s", sorted);
	return c.ids;
}

static void test_filter(void **state)
{
	(void)state;
	struct population p;
	population_init(&p);
	struct registry_filter f;

#define MASKS(...) (const char *const[]){ __VA_ARGS__ }, \
	ARRAY_SIZE(((const char *const[]){ __VA_ARGS__ }))

	/* exact names use the user index, case-insensitively, each once */
	f = (struct registry_filter){ .user_masks = MASKS("jane") };
	assert_string_equal(select_ids(&p, &f), "123");
	f = (struct registry_filter){ .user_masks = MASKS("JANE", "jane", "jan") };
	assert_string_equal(select_ids(&p, &f), "1234");
	/* wildcards (doveadm's man page examples) */
	f = (struct registry_filter){ .user_masks = MASKS("jan?") };
	assert_string_equal(select_ids(&p, &f), "123");
	f = (struct registry_filter){ .user_masks = MASKS("j*n") };
	assert_string_equal(select_ids(&p, &f), "46");
	f = (struct registry_filter){ .user_masks = MASKS("*") };
	assert_string_equal(select_ids(&p, &f), "123456");
	/* mask and network: "foo 192.0.2.0/24" */
	f = (struct registry_filter){ .user_masks = MASKS("jan*") };
	f.have_net = cidr_parse("192.0.2.0/24", &f.net) == 0;
	assert_string_equal(select_ids(&p, &f), "124");
	/* network alone includes sessions not logged in yet */
	f = (struct registry_filter){ .have_net = true };
	assert_int_equal(cidr_parse("192.0.2.0/24", &f.net), 0);
	assert_string_equal(select_ids(&p, &f), "12467");
	f = (struct registry_filter){ .logged_in = true };
	f.have_net = cidr_parse("::ffff:192.0.2.0/120", &f.net) == 0;
	assert_string_equal(select_ids(&p, &f), "1246");
	f = (struct registry_filter){ .have_net = true };
	assert_int_equal(cidr_parse("2001:db8::/32", &f.net), 0);
	assert_string_equal(select_ids(&p, &f), "3");
	/* exact names (director kick, §2.9): a wildcard is only a character */
	f = (struct registry_filter){ .user_masks = MASKS("jan*"), .exact = true };
	assert_string_equal(select_ids(&p, &f), "");
	f = (struct registry_filter){ .user_masks = MASKS("Jane"), .exact = true };
	assert_string_equal(select_ids(&p, &f), "123");
	f = (struct registry_filter){ .user_masks = MASKS("sale*"), .alt_field = "user_group",
				      .exact = true };
	assert_string_equal(select_ids(&p, &f), "");
	/* -f user_group: the masks match the alternative name */
	f = (struct registry_filter){ .user_masks = MASKS("SALES"), .alt_field = "user_group" };
	assert_string_equal(select_ids(&p, &f), "126");
	f = (struct registry_filter){ .user_masks = MASKS("o*"), .alt_field = "user_group" };
	assert_string_equal(select_ids(&p, &f), "4");
	/* backends by address use the backend index; by name or address mask */
	struct ipaddr dests[2];
	ipaddr_parse("10.0.0.2", &dests[0]);
	ipaddr_parse("10.0.0.3", &dests[1]);
	f = (struct registry_filter){ .dests = dests, .dests_count = 2 };
	assert_string_equal(select_ids(&p, &f), "346");
	f = (struct registry_filter){ .dests = dests, .dests_count = 1,
				      .user_masks = MASKS("jane") };
	assert_string_equal(select_ids(&p, &f), "3");
	f = (struct registry_filter){ .dest_hosts = MASKS("BE2.example") };
	assert_string_equal(select_ids(&p, &f), "34");
	f = (struct registry_filter){ .dest_hosts = MASKS("10.0.0.1") };
	assert_string_equal(select_ids(&p, &f), "12");
	f = (struct registry_filter){ .dest_hosts = MASKS("10.0.0.*") };
	assert_string_equal(select_ids(&p, &f), "12346");
	f = (struct registry_filter){ .proxied = true };
	assert_string_equal(select_ids(&p, &f), "12346");
	/* the director's user hash, except one backend */
	f = (struct registry_filter){ .have_hash = true, .hash = 11 };
	assert_string_equal(select_ids(&p, &f), "123");
	f = (struct registry_filter){ .have_hash = true, .hash = 11, .have_except = true };
	ipaddr_parse("10.0.0.1", &f.except);
	assert_string_equal(select_ids(&p, &f), "3");
	/* nothing matches */
	f = (struct registry_filter){ .user_masks = MASKS("nobody") };
	assert_string_equal(select_ids(&p, &f), "");
	f = (struct registry_filter){ .user_masks = MASKS("nob*") };
	assert_string_equal(select_ids(&p, &f), "");
	/* a session being kicked is no longer selected */
	assert_true(registry_kick(&p.e[0], "bye"));
	f = (struct registry_filter){ .user_masks = MASKS("jane") };
	assert_string_equal(select_ids(&p, &f), "23");
	population_deinit(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_filter),
	};
	return cmocka_run_group_tests_name("registry", tests, NULL, NULL);
}
