/* Unit tests for src/director: the hash and ring vectors of reference
 * §1.1–1.2, the placement a real Dovecot 2.3 director chose for user1..20
 * over 127.0.0.11–13 (doveadm-captures.md appendix A), tags, ranges, and
 * assignment lifetime (§2.1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/xmalloc.h"
#include "conf/config.h"
#include "director/chash.h"
#include "director/director.h"
#include "director/hosts.h"
#include "director/user_hash.h"
#include "director/users.h"
#include "director_fixture.h"

static void test_user_hash_vectors(void **state)
{
	(void)state;
	/* §1.1: MD5 of the expanded string */
	static const struct { const char *in; uint32_t hash; } vec[] = {
		{ "", 3558706393U }, { "testuser", 1570531526U },
		{ "@", 1368314517U }, { "testuser@domain", 3813799143U },
		{ "@domain", 3749630072U }, { "domain", 2908717800U },
	};
	struct user_hasher *h = user_hasher_new("%u");
	for (size_t i = 0; i < ARRAY_SIZE(vec); i++)
		assert_int_equal(user_hasher_hash(h, vec[i].in), vec[i].hash);
	user_hasher_free(&h);
	assert_null(h);

	/* %Lu lower-cases ASCII first */
	h = user_hasher_new("%Lu");
	assert_int_equal(user_hasher_hash(h, "TestUser"), 1570531526U);
	user_hasher_free(&h);
	h = user_hasher_new("%n");
	assert_int_equal(user_hasher_hash(h, "test@user@domain"), 160394189U);
	user_hasher_free(&h);
	h = user_hasher_new("%d");
	assert_int_equal(user_hasher_hash(h, "test@user@domain"), 1841230927U);
	assert_int_equal(user_hasher_hash(h, "nodomain"), 3558706393U);
	user_hasher_free(&h);
	h = user_hasher_new("%Ld");
	assert_int_equal(user_hasher_hash(h, "x@DOMAIN"), 2908717800U);
	user_hasher_free(&h);
	h = user_hasher_new("%{user}");
	assert_int_equal(user_hasher_hash(h, "testuser"), 1570531526U);
	user_hasher_free(&h);
}

static void test_vhost_points(void **state)
{
	(void)state;
	/* §1.2 */
	static const struct { const char *in; uint32_t point; } vec[] = {
		{ "10.0.0.1-0", 1014535201U }, { "10.0.0.1-1", 3096594127U },
		{ "10.0.0.1-2", 2719269830U }, { "10.0.0.2-0", 977724322U },
		{ "10.0.0.2-1", 144197141U }, { "10.0.0.2-2", 1089699160U },
	};
	for (size_t i = 0; i < ARRAY_SIZE(vec); i++)
		assert_int_equal(md5_u32(vec[i].in, strlen(vec[i].in)), vec[i].point);
}

static void test_ring_small(void **state)
{
	(void)state;
	struct director_host_list list = { 0 };
	char *error = NULL;
	assert_int_equal(director_hosts_parse(&list, "10.0.0.2", &error), 0);
	assert_int_equal(director_hosts_parse(&list, "10.0.0.1", &error), 0);
	list.hosts[0]->vhost_count = 3;
	list.hosts[1]->vhost_count = 3;
	struct chash ring = { 0 };
	chash_build(&ring, &list, "", NULL, NULL);
	assert_int_equal(ring.count, 6);
	/* sorted: .2-1 144197141, .2-0 977724322, .1-0 1014535201,
	 * .2-2 1089699160, .1-2 2719269830, .1-1 3096594127 */
	assert_string_equal(chash_lookup(&ring, 1)->ip_str, "10.0.0.2");
	assert_string_equal(chash_lookup(&ring, 144197141U)->ip_str, "10.0.0.2");
	assert_string_equal(chash_lookup(&ring, 144197142U)->ip_str, "10.0.0.2");
	assert_string_equal(chash_lookup(&ring, 1014535201U)->ip_str, "10.0.0.1");
	assert_string_equal(chash_lookup(&ring, 1089699160U)->ip_str, "10.0.0.2");
	assert_string_equal(chash_lookup(&ring, 3096594127U)->ip_str, "10.0.0.1");
	/* past the last point wraps to the lowest */
	assert_string_equal(chash_lookup(&ring, 3096594128U)->ip_str, "10.0.0.2");
	/* a down host has no points */
	list.hosts[1]->down = true;
	chash_build(&ring, &list, "", NULL, NULL);
	assert_int_equal(ring.count, 3);
	assert_string_equal(chash_lookup(&ring, 3096594128U)->ip_str, "10.0.0.1");
	list.hosts[0]->down = true;
	chash_build(&ring, &list, "", NULL, NULL);
	assert_null(chash_lookup(&ring, 5));
	chash_free(&ring);
	director_host_list_free(&list);
}

/* The placement the real Dovecot 2.3.19.1 director chose, captured in
 * doveadm-captures.md appendix A (be1=.11, be2=.12, be3=.13). */
static const char *const dovecot_placement[20] = {
	"127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.13", "127.0.0.11",
	"127.0.0.11", "127.0.0.13", "127.0.0.11", "127.0.0.13", "127.0.0.12",
	"127.0.0.12", "127.0.0.11", "127.0.0.13", "127.0.0.12", "127.0.0.12",
	"127.0.0.13", "127.0.0.12", "127.0.0.13", "127.0.0.11", "127.0.0.13",
};

/* director_route() for tests: the host, or NULL (ticket_r->held false). */
static void test_dovecot_placement(void **state)
{
	(void)state;
	static const char *const servers[] = {
		"127.0.0.11", "127.0.0.12", "127.0.0.13"
	};
	struct config *cfg = make_config(servers, 3);
	char *error = NULL;
	struct director *d = director_new(cfg, NULL, &error);
	assert_non_null(d);
	for (int i = 0; i < 20; i++) {
		char user[16];
		struct director_ticket t;
		const char *err;
		snprintf(user, sizeof(user), "user%d", i + 1);
		const struct director_host *h = route(d, user, "", 1000, &t, &err);
		assert_non_null(h);
		if (strcmp(h->ip_str, dovecot_placement[i]) != 0)
			fail_msg("%s went to %s, Dovecot chose %s", user, h->ip_str,
				 dovecot_placement[i]);
		assert_true(t.held);
		director_release(d, &t, 1000);
		assert_false(t.held);
	}
	director_free(&d);
	config_free(&cfg);
}

static void test_ranges_and_tags(void **state)
{
	(void)state;
	static const char *const servers[] = {
		"10.0.0.1-10.0.0.3", "10.0.1.1@gold",
	};
	struct config *cfg = make_config(servers, 2);
	char *error = NULL;
	struct director *d = director_new(cfg, NULL, &error);
	assert_non_null(d);
	const struct director_host_list *hl = director_hosts(d);
	assert_int_equal(hl->count, 4);
	assert_string_equal(hl->hosts[0]->ip_str, "10.0.0.1");
	assert_string_equal(hl->hosts[2]->ip_str, "10.0.0.3");
	assert_string_equal(hl->hosts[3]->tag, "gold");
	struct director_ticket t;
	const char *err;
	/* tagged users only reach hosts with their tag */
	for (int i = 0; i < 50; i++) {
		char user[16];
		snprintf(user, sizeof(user), "u%d", i);
		const struct director_host *h = route(d, user, "gold", 1, &t, &err);
		assert_string_equal(h->ip_str, "10.0.1.1");
		director_release(d, &t, 1);
		h = route(d, user, "", 1, &t, &err);
		assert_string_equal(h->tag, "");
		director_release(d, &t, 1);
	}
	assert_null(route(d, "x", "silver", 1, &t, &err));
	assert_string_equal(err, "unknown tag");
	assert_false(t.held);
	director_free(&d);
	config_free(&cfg);

	/* IPv6 range (brackets allowed): only the last 16 bits may differ */
	struct director_host_list list = { 0 };
	assert_int_equal(director_hosts_parse(&list, "[2001:db8::1]-[2001:db8::3]@v6", &error), 0);
	assert_int_equal(list.count, 3);
	assert_string_equal(list.hosts[2]->ip_str, "2001:db8::3");
	assert_string_equal(list.hosts[2]->tag, "v6");
	assert_int_equal(director_hosts_parse(&list, "10.0.0.1-10.0.1.1", &error), -1);
	assert_non_null(strstr(error, "invalid address range"));
	free(error);
	assert_int_equal(director_hosts_parse(&list, "10.0.0.5-10.0.0.1", &error), -1);
	free(error);
	assert_int_equal(director_hosts_parse(&list, "@tag", &error), -1);
	free(error);
	assert_int_equal(director_hosts_parse(&list, "no-such-host.invalid", &error), -1);
	assert_non_null(strstr(error, "cannot resolve host 'no-such-host.invalid'"));
	free(error);
	/* duplicates are kept once */
	assert_int_equal(director_hosts_parse(&list, "2001:db8::2", &error), 0);
	assert_int_equal(list.count, 3);
	director_host_list_free(&list);

	static const char *const bad[] = { "10.0.0.1", "10.0.0.9-10.0.0.2" };
	cfg = make_config(bad, 2);
	assert_null(director_new(cfg, NULL, &error));
	assert_non_null(strstr(error, "test.conf: director.mail_servers: invalid address range"));
	free(error);
	config_free(&cfg);
}

static void test_assignment_lifetime(void **state)
{
	(void)state;
	struct director_host_list list = { 0 };
	char *error;
	director_hosts_parse(&list, "10.0.0.1", &error);
	director_hosts_parse(&list, "10.0.0.2", &error);
	struct user_directory dir;
	user_directory_init(&dir, 900);
	struct director_user *u = user_directory_add(&dir, 42, list.hosts[1], "jane", 100, 0);
	assert_int_equal(list.hosts[1]->user_count, 1);
	assert_ptr_equal(user_directory_lookup(&dir, 42), u);
	assert_int_equal(user_directory_next_expiry(&dir), 1000);
	/* a session keeps the assignment past its expiry */
	user_directory_session_ref(&dir, u);
	assert_int_equal(user_directory_next_expiry(&dir), 0);
	assert_int_equal(user_directory_expire(&dir, 5000), 0);
	/* reported as if refreshed every expire/2 (§2.2): steady between
	 * refreshes, always ahead */
	assert_int_equal(user_directory_expires(&dir, u, 5000), 5500);
	assert_int_equal(user_directory_expires(&dir, u, 5049), 5500);
	assert_int_equal(user_directory_expires(&dir, u, 5050), 5950);
	/* after the last session ends it lives expire seconds more */
	user_directory_session_unref(&dir, u, 6000);
	assert_int_equal(user_directory_expire(&dir, 6899), 0);
	assert_int_equal(user_directory_expires(&dir, u, 6899), 6900);
	/* a refresh under another spelling keeps the host */
	u = user_directory_refresh(&dir, u, "Jane", 6899);
	assert_string_equal(u->username, "Jane");
	assert_ptr_equal(u->host, list.hosts[1]);
	assert_int_equal(user_directory_expire(&dir, 7798), 0);
	assert_int_equal(user_directory_expire(&dir, 7799), 1);
	assert_null(user_directory_lookup(&dir, 42));
	assert_int_equal(list.hosts[1]->user_count, 0);
	/* idle users expire oldest first */
	user_directory_add(&dir, 1, list.hosts[0], "a", 10, 1);
	user_directory_add(&dir, 2, list.hosts[0], "b", 20, 2);
	user_directory_add(&dir, 3, list.hosts[0], "c", 30, 3);
	assert_int_equal(user_directory_expire(&dir, 920), 2);
	assert_non_null(user_directory_lookup(&dir, 3));
	user_directory_deinit(&dir);
	director_host_list_free(&list);
}

static void test_route_sticks(void **state)
{
	(void)state;
	static const char *const servers[] = { "10.0.0.1", "10.0.0.2", "10.0.0.3" };
	struct config *cfg = make_config(servers, 3);
	char *error = NULL;
	struct director *d = director_new(cfg, NULL, &error);
	struct director_ticket t1, t2;
	const char *err;
	const struct director_host *h1 = route(d, "Sticky", "", 100, &t1, &err);
	/* the same user (any case under %Lu) gets the same host */
	const struct director_host *h2 = route(d, "sticky", "", 200, &t2, &err);
	assert_ptr_equal(h1, h2);
	assert_int_equal(t1.hash, director_user_hash(d, "STICKY"));
	assert_ptr_equal(director_hashed_host(d, t1.hash, ""), h1);
	director_release(d, &t1, 300);
	director_release(d, &t2, 300);
	/* still assigned until expiry */
	assert_int_equal(director_expire(d, 300 + 899), 0);
	assert_int_equal(director_expire(d, 300 + 900), 1);
	director_release(d, &t2, 300); /* a second release is harmless */
	director_free(&d);
	config_free(&cfg);
}

/* An upgrade's successor keeps its predecessor's assignments: a user
 * off its hash's host is routed where the predecessor had it. */
static void test_hold_user(void **state)
{
	(void)state;
	static const char *const servers[] = { "10.0.0.1", "10.0.0.2", "10.0.0.3" };
	struct config *cfg = make_config(servers, 3);
	char *error = NULL;
	struct director *d = director_new(cfg, NULL, &error);
	uint32_t hash = director_user_hash(d, "moved");
	const struct director_host *hashed = director_hashed_host(d, hash, "");
	struct ipaddr other = ip_of(strcmp(hashed->ip_str, "10.0.0.1") == 0 ?
				    "10.0.0.2" : "10.0.0.1");
	struct ipaddr unknown = ip_of("10.9.9.9");
	assert_int_equal(director_user_hold(d, "", hash, &unknown, "moved", 100, NULL),
			 DIRECTOR_HOLD_UNKNOWN);
	assert_int_equal(director_user_hold(d, "no-such-tag", hash, &other, "moved", 100, NULL),
			 DIRECTOR_HOLD_UNKNOWN);
	assert_int_equal(director_user_hold(d, "", hash, &other, "moved", 100, NULL),
			 DIRECTOR_HOLD_OK);
	/* known now on `other`: the hashed host is elsewhere */
	assert_int_equal(director_user_hold(d, "", hash, &hashed->ip, "moved", 100, NULL),
			 DIRECTOR_HOLD_ELSEWHERE);
	struct director_ticket t;
	const char *err;
	const struct director_host *h = route(d, "moved", "", 200, &t, &err);
	assert_true(ipaddr_equal(&h->ip, &other));
	director_release(d, &t, 300);
	/* it lives as an assignment made at hold time */
	assert_int_equal(director_expire(d, 300 + 899), 0);
	assert_int_equal(director_expire(d, 300 + 900), 1);
	director_free(&d);
	config_free(&cfg);
}

struct watched {
	unsigned int taken, released;
	uint32_t hash;
	char username[16];
};

static void watch_sessions(void *ctx, const char *tag, uint32_t hash,
			   const struct director_host *host, const char *username, bool taken)
{
	struct watched *w = ctx;
	assert_string_equal(tag, "");
	w->hash = hash;
	if (taken) {
		assert_non_null(host);
		snprintf(w->username, sizeof(w->username), "%s", username);
		w->taken++;
	} else {
		assert_null(username);
		w->released++;
	}
}

/* The other process's session holds the user: a move waits until it
 * is given back (as for a session of this process), and the record does
 * not expire under it. The replaced process's watch sees every session
 * reference come and go. */
static void test_hold_session(void **state)
{
	(void)state;
	static const char *const servers[] = { "10.0.0.1", "10.0.0.2" };
	struct config *cfg;
	struct recorder rec;
	struct director *d = make_director(servers, 2, &cfg, &rec);
	uint32_t hash = director_user_hash(d, "held");
	const struct director_host *from = director_hashed_host(d, hash, "");
	struct ipaddr to = ip_of(strcmp(from->ip_str, "10.0.0.1") == 0 ?
				 "10.0.0.2" : "10.0.0.1");
	struct director_ticket held, copy, t;
	assert_int_equal(director_user_hold(d, "", hash, &from->ip, "held", 100, &held),
			 DIRECTOR_HOLD_OK);
	assert_true(held.held);
	/* a second session of it: a copy of the ticket counts once more */
	assert_int_equal(director_user_hold(d, "", hash, &from->ip, "held", 100, &copy),
			 DIRECTOR_HOLD_OK);
	assert_int_equal(director_expire(d, 100 + 10000), 0);
	assert_int_equal(director_user_move(d, hash, &to, 110), DIRECTOR_OK);
	/* moving: a session of the other process must close, and the move
	 * waits for it as for the others */
	struct director_ticket late;
	assert_int_equal(director_user_hold(d, "", hash, &from->ip, "held", 111, &late),
			 DIRECTOR_HOLD_ELSEWHERE);
	assert_true(late.held);
	const struct director_host *h;
	const char *err;
	assert_int_equal(director_route(d, "held", "", 111, 7, &h, &t, &err),
			 DIRECTOR_ROUTE_WAIT);
	director_release(d, &held, 112);
	director_release(d, &copy, 112);
	director_dispatch(d);
	assert_int_equal(rec.nresumed, 0);	/* one session left */
	director_release(d, &late, 113);
	director_dispatch(d);
	assert_int_equal(rec.nresumed, 1);

	/* the watch: a route takes, a release gives back */
	struct watched w = { 0 };
	director_set_session_watch(d, watch_sessions, &w);
	h = route(d, "held", "", 120, &t, &err);
	assert_true(ipaddr_equal(&h->ip, &to));
	assert_int_equal(w.taken, 1);
	assert_int_equal(w.hash, hash);
	assert_string_equal(w.username, "held");
	director_release(d, &t, 121);
	director_release(d, &t, 121);	/* not held any more: not seen */
	assert_int_equal(w.released, 1);
	director_free(&d);
	config_free(&cfg);
}

/* The first user%d from `from` on whom the ring puts on `ip`. */
static const char *user_on(struct director *d, const char *ip, int from, char buf[16])
{
	for (int i = from; i < 1000; i++) {
		snprintf(buf, 16, "user%d", i);
		const struct director_host *h =
			director_hashed_host(d, director_user_hash(d, buf), "");
		if (strcmp(h->ip_str, ip) == 0)
			return buf;
	}
	fail_msg("no user hashes to %s", ip);
	return NULL;
}

static void test_health_routing(void **state)
{
	(void)state;
	static const char *const servers[] = { "10.0.0.1", "10.0.0.2", "10.0.0.3" };
	struct config *cfg = make_config(servers, 3);
	char *error = NULL, ubuf[16], vbuf[16];
	struct director *d = director_new(cfg, NULL, &error);
	struct ipaddr two = ip_of("10.0.0.2"), nine = ip_of("10.0.0.9");
	const char *u = user_on(d, "10.0.0.2", 1, ubuf);
	const char *v = user_on(d, "10.0.0.2", atoi(u + 4) + 1, vbuf);
	struct director_ticket tu, tv;
	const char *err;
	/* both are assigned to .2; u keeps its session, v's ends */
	assert_string_equal(route(d, u, "", 100, &tu, &err)->ip_str, "10.0.0.2");
	assert_string_equal(route(d, v, "", 100, &tv, &err)->ip_str, "10.0.0.2");
	director_release(d, &tv, 100);

	assert_int_equal(director_host_set_health(d, &nine, DIRECTOR_HEALTH_FAILING,
						  "x", 110), DIRECTOR_NOTFOUND);
	assert_int_equal(director_host_set_health(d, &two, DIRECTOR_HEALTH_FAILING,
						  "connect failed", 110), DIRECTOR_OK);
	const struct director_host *h2 = director_host_list_find(director_hosts(d), &two);
	assert_true(h2->unhealthy);
	assert_int_equal(h2->health_changed, 110);
	assert_string_equal(h2->health_error, "connect failed");
	/* off the ring: the hash goes to the next host */
	uint32_t hv = director_user_hash(d, v);
	assert_string_not_equal(director_hashed_host(d, hv, "")->ip_str, "10.0.0.2");
	/* v has no session there: routed afresh, never to the failing host */
	struct director_ticket t;
	const struct director_host *h = route(d, v, "", 120, &t, &err);
	assert_non_null(h);
	assert_string_not_equal(h->ip_str, "10.0.0.2");
	director_release(d, &t, 120);
	/* u still has a session there: its login fails rather than risk two
	 * backends */
	assert_null(route(d, u, "", 120, &t, &err));
	assert_string_equal(err, "the user's backend is failing its health checks");
	director_release(d, &tu, 130);

	/* healthy again: back on the ring, unless an admin set it down */
	assert_int_equal(director_host_set_down(d, &two, true, 140), DIRECTOR_OK);
	assert_int_equal(director_host_set_health(d, &two, DIRECTOR_HEALTH_OK, NULL, 150),
			 DIRECTOR_OK);
	assert_false(h2->unhealthy);
	assert_null(h2->health_error);
	assert_string_not_equal(director_hashed_host(d, hv, "")->ip_str, "10.0.0.2");
	assert_int_equal(director_host_set_down(d, &two, false, 160), DIRECTOR_OK);
	assert_string_equal(director_hashed_host(d, hv, "")->ip_str, "10.0.0.2");
	director_free(&d);
	config_free(&cfg);
}

/* ---- changes (§2.5-2.7) --------------------------------------------- */

static void test_host_changes(void **state)
{
	(void)state;
	static const char *const servers[] = { "10.0.0.1", "10.0.0.2" };
	struct config *cfg;
	struct recorder rec;
	struct director *d = make_director(servers, 2, &cfg, &rec);
	const char *err = NULL;
	struct ipaddr a = ip_of("10.0.0.1"), c = ip_of("10.0.0.3"), x = ip_of("10.9.9.9");

	/* add with a vhost count, then change it; a tag cannot change */
	assert_int_equal(director_host_set(d, &c, "gold", 50, 10, &err), DIRECTOR_OK);
	const struct director_host_list *hl = director_hosts(d);
	assert_int_equal(hl->count, 3);
	assert_int_equal(hl->hosts[2]->vhost_count, 50);
	assert_string_equal(hl->hosts[2]->tag, "gold");
	assert_int_equal(director_host_set(d, &c, NULL, -1, 10, &err), DIRECTOR_OK);
	assert_int_equal(hl->hosts[2]->vhost_count, 50);	/* unchanged */
	assert_int_equal(director_host_set(d, &c, "silver", 5, 10, &err), DIRECTOR_INVALID);
	assert_string_equal(err, "host tag can't be changed");
	assert_int_equal(director_host_set(d, &x, NULL, 1001, 10, &err), DIRECTOR_INVALID);
	assert_string_equal(err, "vhost count too large");
	assert_int_equal(director_host_update(d, &x, 5, &err), DIRECTOR_NOTFOUND);
	assert_int_equal(director_host_update(d, &c, 0, &err), DIRECTOR_OK);
	assert_int_equal(hl->hosts[2]->vhost_count, 0);
	/* a gold user has nowhere to go with 0 vhosts */
	struct director_ticket t;
	assert_null(route(d, "goldie", "gold", 20, &t, &err));
	assert_string_equal(err, "no hosts");
	assert_int_equal(director_host_update(d, &c, 10, &err), DIRECTOR_OK);
	assert_non_null(route(d, "goldie", "gold", 20, &t, &err));
	director_release(d, &t, 20);

	/* down: no points, but existing assignments stay (§2.5) */
	const struct director_host *h = route(d, "jane", "", 30, &t, &err);
	director_release(d, &t, 30);
	assert_int_equal(director_host_set_down(d, &h->ip, true, 31), DIRECTOR_OK);
	assert_true(h->down);
	assert_int_equal(h->last_updown, 31);
	assert_int_equal(director_host_set_down(d, &h->ip, true, 40), DIRECTOR_OK);
	assert_int_equal(h->last_updown, 31);	/* no change, no new time */
	assert_ptr_equal(route(d, "jane", "", 41, &t, &err), h);
	director_release(d, &t, 41);
	uint32_t hash = director_user_hash(d, "jane");
	assert_ptr_not_equal(director_hashed_host(d, hash, ""), h);
	assert_int_equal(director_host_set_down(d, &x, false, 42), DIRECTOR_NOTFOUND);
	assert_int_equal(director_host_set_down(d, &h->ip, false, 43), DIRECTOR_OK);

	/* lookups: current, hashed, initial config (§1.5) */
	struct director_lookup lk;
	director_user_lookup(d, hash, "", 50, &lk);
	assert_true(lk.assigned);
	assert_true(ipaddr_equal(&lk.current, &h->ip));
	assert_int_equal(lk.expires, 41 + 900);
	assert_true(lk.have_hashed && lk.have_initial);
	director_user_lookup(d, hash, "nosuchtag", 50, &lk);
	assert_false(lk.assigned || lk.have_hashed || lk.have_initial);
	director_user_lookup(d, director_user_hash(d, "nobody"), "", 50, &lk);
	assert_false(lk.assigned);
	assert_true(lk.have_hashed);

	/* flush -F forgets without kicking; remove too, and the host goes */
	assert_int_equal(director_host_flush(d, &a), DIRECTOR_OK);
	assert_int_equal(director_host_flush(d, &x), DIRECTOR_NOTFOUND);
	struct ipaddr gone = h->ip;	/* h is freed with the host */
	assert_int_equal(director_host_remove(d, &gone), DIRECTOR_OK);
	assert_int_equal(hl->count, 2);
	assert_int_equal(director_host_remove(d, &gone), DIRECTOR_NOTFOUND);
	director_user_lookup(d, hash, "", 60, &lk);
	assert_false(lk.assigned);
	assert_int_equal(rec.nkilled, 0);
	assert_true(rec.changes >= 5);
	assert_int_equal(director_host_flush(d, NULL), DIRECTOR_OK);
	director_free(&d);
	config_free(&cfg);
}

static void removed_cb(const struct director_host *h, void *ctx)
{
	snprintf(ctx, IPADDR_STRLEN, "%s", h->ip_str);
}

static void test_removed_hosts(void **state)
{
	(void)state;
	static const char *const servers[] = { "10.0.0.1", "10.0.0.2" };
	struct config *cfg;
	struct recorder rec;
	struct director *d = make_director(servers, 2, &cfg, &rec);
	struct ipaddr b = ip_of("10.0.0.2");
	char removed[IPADDR_STRLEN] = "";
	director_removed_hosts(d, removed_cb, removed);
	assert_string_equal(removed, "");
	assert_int_equal(director_host_remove(d, &b), DIRECTOR_OK);
	director_removed_hosts(d, removed_cb, removed);
	assert_string_equal(removed, "10.0.0.2");
	director_free(&d);
	config_free(&cfg);
}

static void test_move_kills_and_holds_logins(void **state)
{
	(void)state;
	static const char *const servers[] = { "10.0.0.1", "10.0.0.2" };
	struct config *cfg;
	struct recorder rec;
	struct director *d = make_director(servers, 2, &cfg, &rec);
	const char *err;
	struct director_ticket t1, t2;
	const struct director_host *from = route(d, "mover", "", 100, &t1, &err);
	uint32_t hash = t1.hash;
	struct ipaddr to = ip_of(strcmp(from->ip_str, "10.0.0.1") == 0 ?
				 "10.0.0.2" : "10.0.0.1");

	/* a move to another host kills the user's sessions and holds logins */
	assert_int_equal(director_user_move(d, hash, &to, 110), DIRECTOR_OK);
	assert_int_equal(rec.nkilled, 1);
	assert_int_equal(rec.killed[0], hash);
	const struct director_host *h;
	assert_int_equal(director_route(d, "mover", "", 111, 42, &h, &t2, &err),
			 DIRECTOR_ROUTE_WAIT);
	assert_false(t2.held);
	/* while it lasts, another move is refused */
	assert_int_equal(director_user_move(d, hash, &from->ip, 112), DIRECTOR_TRYAGAIN);
	/* the held session goes: the waiting login resumes (no kick delay here) */
	director_release(d, &t1, 113);
	assert_int_equal(rec.nresumed, 0);	/* never inside the release */
	director_dispatch(d);
	assert_int_equal(rec.nresumed, 1);
	assert_int_equal(rec.resumed[0], 42);
	h = route(d, "mover", "", 114, &t2, &err);
	assert_true(ipaddr_equal(&h->ip, &to));
	director_release(d, &t2, 114);

	/* moving to the host it has only refreshes: no kill */
	assert_int_equal(director_user_move(d, hash, &to, 120), DIRECTOR_OK);
	assert_int_equal(rec.nkilled, 1);
	/* unknown hosts; unknown users are created on the host */
	struct ipaddr x = ip_of("10.9.9.9");
	assert_int_equal(director_user_move(d, hash, &x, 121), DIRECTOR_NOTFOUND);
	assert_int_equal(director_user_move(d, 12345, &to, 122), DIRECTOR_OK);
	struct director_lookup lk;
	director_user_lookup(d, 12345, "", 123, &lk);
	assert_true(lk.assigned && ipaddr_equal(&lk.current, &to));
	assert_int_equal(rec.nkilled, 1);
	director_free(&d);
	config_free(&cfg);
}

static void test_reset_users(void **state)
{
	(void)state;
	static const char *const servers[] = { "10.0.0.1", "10.0.0.2", "10.0.0.3" };
	struct config *cfg;
	struct recorder rec;
	struct director *d = make_director(servers, 3, &cfg, &rec);
	const char *err;
	struct director_ticket t[30];
	const struct director_host *on[30];
	char user[16];
	for (int i = 0; i < 30; i++) {
		snprintf(user, sizeof(user), "u%d", i);
		on[i] = route(d, user, "", 10, &t[i], &err);
	}
	struct ipaddr b = ip_of("10.0.0.2");
	/* flushing a host that is up with its vhosts moves nobody ([130]) */
	assert_int_equal(director_reset_users(d, &b, 0, 20, rec_done, &rec), DIRECTOR_OK);
	assert_int_equal(rec.done, 0);		/* never inside the request */
	director_dispatch(d);
	assert_int_equal(rec.done, 1);
	assert_int_equal(rec.nkilled, 0);
	/* the documented procedure: vhosts 0, then flush ([131]-[132]) */
	size_t on_b = 0;
	for (int i = 0; i < 30; i++)
		on_b += ipaddr_equal(&on[i]->ip, &b);
	assert_true(on_b > 0 && on_b < 16);
	assert_int_equal(director_host_update(d, &b, 0, &err), DIRECTOR_OK);
	assert_int_equal(director_reset_users(d, &b, 2, 30, rec_done, &rec), DIRECTOR_OK);
	director_dispatch(d);
	/* at most 2 moves at a time: each waits for its sessions */
	assert_int_equal(rec.nkilled, on_b < 2 ? on_b : 2);
	assert_int_equal(rec.done, 1);
	for (int i = 0; i < 30; i++) {
		if (ipaddr_equal(&on[i]->ip, &b)) {
			director_release(d, &t[i], 40);
			director_dispatch(d);
		}
	}
	director_dispatch(d);
	assert_int_equal(rec.nkilled, on_b);
	assert_int_equal(rec.done, 2);
	for (int i = 0; i < 30; i++) {
		struct director_lookup lk;
		director_user_lookup(d, t[i].hash, "", 50, &lk);
		assert_false(ipaddr_equal(&lk.current, &b));
		if (t[i].held)
			director_release(d, &t[i], 50);
	}
	struct ipaddr x = ip_of("10.9.9.9");
	assert_int_equal(director_reset_users(d, &x, 0, 60, rec_done, &rec),
			 DIRECTOR_NOTFOUND);
	director_free(&d);
	config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_user_hash_vectors),
		cmocka_unit_test(test_vhost_points),
		cmocka_unit_test(test_ring_small),
		cmocka_unit_test(test_dovecot_placement),
		cmocka_unit_test(test_ranges_and_tags),
		cmocka_unit_test(test_assignment_lifetime),
		cmocka_unit_test(test_route_sticks),
		cmocka_unit_test(test_hold_user),
		cmocka_unit_test(test_hold_session),
		cmocka_unit_test(test_health_routing),
		cmocka_unit_test(test_host_changes),
		cmocka_unit_test(test_removed_hosts),
		cmocka_unit_test(test_move_kills_and_holds_logins),
		cmocka_unit_test(test_reset_users),
	};
	return cmocka_run_group_tests_name("director", tests, NULL, NULL);
}
