/* Unit tests of the director's changes while others are in flight: the
 * use-after-free of the December review (B1), tickets of a forgotten
 * assignment (B7), the request layer (answers on a later turn, never
 * inside the request) and the host change in phases. Run under the
 * sanitizer build too (make BUILD=build-san SAN=1 check-unit), which is
 * what turns a dangling pointer here into a failure. */
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
#include "director/director.h"
#include "director_fixture.h"

/* B1, the first review's repro: one host; u0 keeps a session; the host
 * goes down and is flushed, so u0 has nowhere to go (orphaned) and its
 * move waits for the session; then flush -F of the same host. The flush
 * job's completion used to run inside the forget walk and start a second
 * walk that freed what the first held. */
static void test_b1_flush_during_orphan_reset(void **state)
{
	(void)state;
	static const char *const servers[] = { "10.0.0.1" };
	struct config *cfg;
	struct recorder rec;
	struct director *d = make_director(servers, 1, &cfg, &rec);
	struct ipaddr a = ip_of("10.0.0.1");
	struct director_ticket t;
	const char *err;
	assert_non_null(route(d, "u0", "", 10, &t, &err));
	assert_int_equal(director_host_set_down(d, &a, true, 11), DIRECTOR_OK);
	assert_int_equal(director_reset_users(d, &a, 0, 12, rec_done, &rec), DIRECTOR_OK);
	director_dispatch(d);
	assert_int_equal(rec.nkilled, 1);	/* killed where it is */
	assert_int_equal(director_host_flush(d, &a), DIRECTOR_OK);
	assert_int_equal(rec.done, 0);
	director_dispatch(d);
	assert_int_equal(rec.done, 1);
	director_release(d, &t, 13);	/* its record is gone: harmless */
	director_dispatch(d);
	assert_int_equal(rec.done, 1);
	director_free(&d);
	config_free(&cfg);
}

/* B1, the second review's route: remove instead of flush, with a tag. */
static void test_b1_remove_during_orphan_reset(void **state)
{
	(void)state;
	static const char *const servers[] = { "10.0.0.1", "10.0.0.2@x" };
	struct config *cfg;
	struct recorder rec;
	struct director *d = make_director(servers, 2, &cfg, &rec);
	struct ipaddr two = ip_of("10.0.0.2");
	struct director_ticket t;
	const char *err;
	assert_non_null(route(d, "alice", "x", 10, &t, &err));
	assert_int_equal(director_host_set_down(d, &two, true, 11), DIRECTOR_OK);
	assert_int_equal(director_reset_users(d, &two, 0, 12, rec_done, &rec), DIRECTOR_OK);
	director_dispatch(d);
	assert_int_equal(rec.nkilled, 1);
	assert_int_equal(rec.killed_tag[0], director_tag_index(d, "x"));
	assert_int_equal(director_host_remove(d, &two), DIRECTOR_OK);
	director_dispatch(d);
	assert_int_equal(rec.done, 1);
	director_release(d, &t, 13);
	assert_int_equal(director_host_list_find(director_hosts(d), &two), NULL);
	director_free(&d);
	config_free(&cfg);
}

/* ---- the interleaving matrix ----------------------------------------- */

/* A director with users u (untagged, session held) and o (tag "x", whose
 * only host is C, session held), and one change in flight. */
struct scene {
	struct config *cfg;
	struct recorder rec;
	struct director *d;
	struct director_ticket tu, to;
	struct ipaddr host_u;		/* u's host */
	struct ipaddr other;		/* an untagged host u is not on */
	struct ipaddr c;		/* the tag's only host */
	struct ipaddr target;		/* the host the in-flight op is about */
	uint32_t hash_u;
	int answers;			/* change requests answered */
	int requests;
};

static void scene_answered(void *ctx, const struct director_change_result *r)
{
	struct scene *sc = ctx;
	(void)r;
	sc->answers++;
}

static void scene_request(struct scene *sc, const struct director_change *c)
{
	sc->requests++;
	director_change(sc->d, c, scene_answered, sc);
}

static void scene_init(struct scene *sc)
{
	static const char *const servers[] = { "10.0.0.1", "10.0.0.2", "10.0.0.3@x" };
	const char *err;
	memset(sc, 0, sizeof(*sc));
	sc->d = make_director(servers, 3, &sc->cfg, &sc->rec);
	const struct director_host *h = route(sc->d, "u", "", 10, &sc->tu, &err);
	assert_non_null(h);
	sc->host_u = h->ip;
	sc->other = ip_of(strcmp(h->ip_str, "10.0.0.1") == 0 ? "10.0.0.2" : "10.0.0.1");
	sc->hash_u = sc->tu.hash;
	sc->c = ip_of("10.0.0.3");
	assert_non_null(route(sc->d, "o", "x", 10, &sc->to, &err));
}

enum inflight { IN_MOVE, IN_RESET, IN_RESET_ORPHAN, IN_COUNT };
static const char *const inflight_names[] = { "move", "reset", "reset-orphan" };

/* Starts the change and leaves it waiting for a session. */
static void scene_start(struct scene *sc, enum inflight op)
{
	struct director_change c = { .now = 20 };
	switch (op) {
	case IN_MOVE:
		c.type = DIRECTOR_CHANGE_USER_MOVE;
		c.user_hash = sc->hash_u;
		c.ip = sc->other;
		sc->target = sc->host_u;
		break;
	case IN_RESET:
		/* the documented procedure: vhosts 0, then flush (§2.7) */
		assert_int_equal(director_host_update(sc->d, &sc->host_u, 0, &(const char *){ 0 }),
				 DIRECTOR_OK);
		c.type = DIRECTOR_CHANGE_HOST_RESET;
		c.ip = sc->host_u;
		sc->target = sc->host_u;
		break;
	case IN_RESET_ORPHAN:
		assert_int_equal(director_host_set_down(sc->d, &sc->c, true, 19), DIRECTOR_OK);
		c.type = DIRECTOR_CHANGE_HOST_RESET;
		c.ip = sc->c;
		sc->target = sc->c;
		break;
	case IN_COUNT:
		break;
	}
	scene_request(sc, &c);
	director_dispatch(sc->d);
	director_dispatch(sc->d);
	/* the move waits: its user's session was asked to close */
	assert_int_equal(sc->rec.nkilled, 1);
}

enum second { SEC_REMOVE, SEC_FLUSH_F, SEC_DOWN, SEC_UPDATE_0, SEC_MOVE, SEC_RELEASE,
	      SEC_STALE_RELEASE, SEC_FREE, SEC_COUNT };
static const char *const second_names[] = {
	"remove", "flush -F", "down", "update 0", "move", "release", "stale release", "free",
};

static void scene_second(struct scene *sc, enum second op)
{
	struct director_change c = { .now = 30, .ip = sc->target };
	const char *err;
	switch (op) {
	case SEC_REMOVE:
		c.type = DIRECTOR_CHANGE_HOST_REMOVE;
		break;
	case SEC_FLUSH_F:
		c.type = DIRECTOR_CHANGE_HOST_FLUSH;
		break;
	case SEC_DOWN:
		c.type = DIRECTOR_CHANGE_HOST_DOWN;
		break;
	case SEC_UPDATE_0:
		c.type = DIRECTOR_CHANGE_HOST_UPDATE;
		c.vhosts = 0;
		break;
	case SEC_MOVE:
		c.type = DIRECTOR_CHANGE_USER_MOVE;
		c.user_hash = sc->hash_u;
		c.ip = sc->other;
		break;
	case SEC_RELEASE:
		director_release(sc->d, &sc->tu, 30);
		director_release(sc->d, &sc->to, 30);
		return;
	case SEC_STALE_RELEASE: {
		/* flush -F everything, log u in again, end the old session */
		c.type = DIRECTOR_CHANGE_HOST_FLUSH;
		c.all_hosts = true;
		scene_request(sc, &c);
		struct director_ticket fresh;
		const struct director_host *h = route(sc->d, "u", "", 31, &fresh, &err);
		director_release(sc->d, &sc->tu, 32);
		if (h != NULL) {
			/* the fresh session still counts: u cannot expire */
			assert_int_equal(director_expire(sc->d, 32 + 100000), 0);
			director_release(sc->d, &fresh, 33);
		}
		return;
	}
	case SEC_FREE:
		director_free(&sc->d);
		return;
	case SEC_COUNT:
		return;
	}
	scene_request(sc, &c);
}

static void test_interleavings(void **state)
{
	(void)state;
	for (int a = 0; a < IN_COUNT; a++) {
		for (int b = 0; b < SEC_COUNT; b++) {
			struct scene sc;
			print_message("in flight: %s, then: %s\n", inflight_names[a],
				      second_names[b]);
			scene_init(&sc);
			scene_start(&sc, (enum inflight)a);
			scene_second(&sc, (enum second)b);
			if (sc.d != NULL) {
				/* let everything finish: the sessions go */
				director_dispatch(sc.d);
				director_release(sc.d, &sc.tu, 40);
				director_release(sc.d, &sc.to, 40);
				for (int i = 0; i < 4; i++)
					director_dispatch(sc.d);
				/* u can log in again, and is routed somewhere */
				struct director_ticket t;
				const char *err;
				const struct director_host *h = route(sc.d, "u", "", 50, &t, &err);
				assert_non_null(h);
				director_release(sc.d, &t, 50);
				director_free(&sc.d);
			}
			/* every request was answered exactly once */
			assert_int_equal(sc.answers, sc.requests);
			config_free(&sc.cfg);
		}
	}
}

/* ---- B7 ----------------------------------------------------------------- */

static time_t test_now;
static time_t test_clock(void *ctx)
{
	(void)ctx;
	return test_now;
}

/* The second review's repro: a ticket of a forgotten assignment must not
 * count down the newer one, or it expires under a live session. */
static void test_b7_stale_ticket_leaves_new_assignment(void **state)
{
	(void)state;
	static const char *const servers[] = { "10.0.0.1", "10.0.0.2" };
	struct config *cfg;
	struct recorder rec;
	struct director *d = make_director(servers, 2, &cfg, &rec);
	director_set_clock(d, test_clock, NULL);
	struct director_ticket a, b;
	const char *err;
	assert_non_null(route(d, "bob", "", 100, &a, &err));
	assert_int_equal(director_host_flush(d, NULL), DIRECTOR_OK);
	const struct director_host *h = route(d, "bob", "", 101, &b, &err);
	assert_non_null(h);
	assert_int_not_equal(a.gen, b.gen);
	director_release(d, &a, 102);
	/* bob still has B's session: nothing expires */
	assert_int_equal(director_expire(d, 102 + 900 + 1), 0);
	struct director_lookup lk;
	director_user_lookup(d, b.hash, "", 1100, &lk);
	assert_true(lk.assigned);
	/* a move waits for B's session, not only for A's */
	struct ipaddr other = ip_of(strcmp(h->ip_str, "10.0.0.1") == 0 ?
				    "10.0.0.2" : "10.0.0.1");
	assert_int_equal(director_user_move(d, b.hash, &other, 1101), DIRECTOR_OK);
	const struct director_host *w;
	struct director_ticket c;
	assert_int_equal(director_route(d, "bob", "", 1102, 7, &w, &c, &err),
			 DIRECTOR_ROUTE_WAIT);
	director_dispatch(d);
	assert_int_equal(rec.nresumed, 0);
	test_now = 1103;	/* the move ends now: the user expires from then */
	director_release(d, &b, 1103);
	director_dispatch(d);
	assert_int_equal(rec.nresumed, 1);
	assert_int_equal(director_expire(d, 1103 + 900), 1);
	director_free(&d);
	config_free(&cfg);
}

/* ---- the request layer ------------------------------------------------ */

struct answer {
	int count;
	enum director_result result;
	const char *error;
	size_t kicked;
};

static void answer_cb(void *ctx, const struct director_change_result *r)
{
	struct answer *a = ctx;
	a->count++;
	a->result = r->result;
	a->error = r->error;
	a->kicked = r->kicked;
}

static void request(struct director *d, const struct director_change *c,
		    struct answer *a)
{
	memset(a, 0, sizeof(*a));
	director_change(d, c, answer_cb, a);
	assert_int_equal(a->count, 0);		/* never inside the request */
	director_dispatch(d);
}

static void test_change_requests(void **state)
{
	(void)state;
	static const char *const servers[] = { "10.0.0.1", "10.0.0.2" };
	struct config *cfg;
	struct recorder rec;
	struct director *d = make_director(servers, 2, &cfg, &rec);
	struct answer a;
	struct director_change c = { .type = DIRECTOR_CHANGE_HOST_SET, .ip = ip_of("10.0.0.3"),
				     .tag = "gold", .vhosts = 7, .now = 5 };
	request(d, &c, &a);
	assert_int_equal(a.count, 1);
	assert_int_equal(a.result, DIRECTOR_OK);
	assert_int_equal(rec.changes, 1);	/* saved through the store */
	c.tag = "silver";
	request(d, &c, &a);
	assert_int_equal(a.result, DIRECTOR_INVALID);
	assert_string_equal(a.error, "host tag can't be changed");
	c = (struct director_change){ .type = DIRECTOR_CHANGE_HOST_DOWN,
				      .ip = ip_of("10.9.9.9") };
	request(d, &c, &a);
	assert_int_equal(a.result, DIRECTOR_NOTFOUND);
	/* director kick goes to the kick callback, with its count */
	c = (struct director_change){ .type = DIRECTOR_CHANGE_USER_KICK,
				      .kick_field = "user_alt", .kick_value = "J" };
	request(d, &c, &a);
	assert_int_equal(a.kicked, 3);
	assert_string_equal(rec.kicked, "user_alt=J");
	/* a flush with nothing to move still answers on a later turn */
	c = (struct director_change){ .type = DIRECTOR_CHANGE_HOST_RESET, .all_hosts = true };
	request(d, &c, &a);
	director_dispatch(d);
	assert_int_equal(a.count, 1);
	assert_int_equal(a.result, DIRECTOR_OK);
	/* a flush answers only when its moves are over */
	struct director_ticket t;
	const char *err;
	const struct director_host *h = route(d, "mover", "", 10, &t, &err);
	assert_int_equal(director_host_update(d, &h->ip, 0, &err), DIRECTOR_OK);
	c = (struct director_change){ .type = DIRECTOR_CHANGE_HOST_RESET, .ip = h->ip };
	request(d, &c, &a);
	director_dispatch(d);
	assert_int_equal(a.count, 0);
	director_release(d, &t, 11);
	director_dispatch(d);
	director_dispatch(d);
	assert_int_equal(a.count, 1);
	/* an answer still pending at free is given then */
	h = route(d, "mover", "", 12, &t, &err);
	c = (struct director_change){ .type = DIRECTOR_CHANGE_HOST_DOWN, .ip = h->ip };
	director_change(d, &c, answer_cb, &a);
	director_free(&d);
	assert_int_equal(a.count, 2);
	config_free(&cfg);
}

/* A replacement handler sees the change; the apply functions stay usable. */
static int handled;
static void handler(void *ctx, const struct director_change *c,
		    director_change_done_cb *done, void *done_ctx)
{
	handled++;
	assert_int_equal(c->type, DIRECTOR_CHANGE_HOST_UP);
	director_change_apply_local(ctx, c, done, done_ctx);
}

static void test_change_handler(void **state)
{
	(void)state;
	static const char *const servers[] = { "10.0.0.1" };
	struct config *cfg;
	struct recorder rec;
	struct director *d = make_director(servers, 1, &cfg, &rec);
	director_set_change_handler(d, handler, d);
	struct answer a;
	struct director_change c = { .type = DIRECTOR_CHANGE_HOST_UP, .ip = ip_of("10.0.0.1") };
	request(d, &c, &a);
	assert_int_equal(handled, 1);
	assert_int_equal(a.count, 1);
	director_free(&d);
	config_free(&cfg);
}

/* ---- host changes in phases -------------------------------------------- */

struct moving {
	size_t count;
	size_t with_sessions;
	bool saw_u;
};

static void moving_cb(const struct director_moving_user *u, void *ctx)
{
	struct moving *m = ctx;
	m->count++;
	if (u->sessions > 0)
		m->with_sessions++;
	assert_ptr_not_equal(u->current, u->next);
	if (strcmp(u->username, "u0") == 0)
		m->saw_u = true;
}

static void test_rings_in_phases(void **state)
{
	(void)state;
	static const char *const servers[] = { "10.0.0.1", "10.0.0.2", "10.0.0.3" };
	struct config *cfg;
	struct recorder rec;
	struct director *d = make_director(servers, 3, &cfg, &rec);
	struct director_ticket t[40];
	const struct director_host *on[40];
	char name[16];
	const char *err;
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "u%d", i);
		on[i] = route(d, name, "", 10, &t[i], &err);
	}
	/* half of them end their session; all stay assigned */
	for (int i = 0; i < 40; i += 2)
		director_release(d, &t[i], 11);
	director_set_deferred_rings(d, true);
	struct ipaddr down = on[0]->ip;
	assert_int_equal(director_host_set_down(d, &down, true, 12), DIRECTOR_OK);
	/* routing still uses the old rings until the commit */
	uint32_t h0 = director_user_hash(d, "u0");
	assert_true(ipaddr_equal(&director_hashed_host(d, h0, "")->ip, &down));
	director_rings_prepare(d);
	struct moving m = { 0 };
	director_rings_foreach_moving(d, moving_cb, &m);
	size_t expect = 0, expect_sessions = 0;
	for (int i = 0; i < 40; i++) {
		if (ipaddr_equal(&on[i]->ip, &down)) {
			expect++;
			expect_sessions += i % 2;
		}
	}
	assert_true(expect > 0);
	assert_int_equal(m.count, expect);
	assert_int_equal(m.with_sessions, expect_sessions);
	assert_true(m.saw_u);
	director_rings_commit(d);
	assert_false(ipaddr_equal(&director_hashed_host(d, h0, "")->ip, &down));
	/* an assigned user keeps its host after the change */
	struct director_ticket again;
	assert_true(ipaddr_equal(&route(d, "u1", "", 13, &again, &err)->ip, &on[1]->ip));
	director_release(d, &again, 13);
	/* a removed host stays valid for the old rings until the commit */
	assert_int_equal(director_host_remove(d, &down), DIRECTOR_OK);
	assert_non_null(director_hashed_host(d, h0, ""));
	director_rings_commit(d);
	director_set_deferred_rings(d, false);
	for (int i = 1; i < 40; i += 2)
		director_release(d, &t[i], 14);
	director_free(&d);
	config_free(&cfg);
}


/* ---- a ring's pins and host changes (doc/ring.md §3-4) ----------------- */

struct pins_rec {
	int needed;
	char needed_tag[16];
	uint32_t needed_hash;
	int forgotten;
	uint32_t forgotten_hash;
	int released;
	uint32_t released_hash;
};

static void pins_needed(void *ctx, const char *tag, uint32_t hash,
			const struct director_host *host, const char *username)
{
	struct pins_rec *p = ctx;
	(void)host;
	(void)username;
	p->needed++;
	snprintf(p->needed_tag, sizeof(p->needed_tag), "%s", tag);
	p->needed_hash = hash;
}

static void pins_forgotten(void *ctx, const char *tag, uint32_t hash)
{
	struct pins_rec *p = ctx;
	(void)tag;
	p->forgotten++;
	p->forgotten_hash = hash;
}

static void pins_release(void *ctx, const char *tag, uint32_t hash)
{
	struct pins_rec *p = ctx;
	(void)tag;
	p->released++;
	p->released_hash = hash;
}

static void test_pins(void **state)
{
	(void)state;
	static const char *const servers[] = { "10.0.0.1", "10.0.0.2" };
	struct config *cfg;
	struct recorder rec;
	struct director *d = make_director(servers, 2, &cfg, &rec);
	struct pins_rec p = { 0 };
	static const struct director_pin_callbacks cb = {
		.needed = pins_needed, .forgotten = pins_forgotten, .release = pins_release,
	};
	director_set_pin_callbacks(d, &cb, &p);
	uint32_t h = director_user_hash(d, "u");
	const struct director_host *hashed = director_hashed_host(d, h, "");
	struct ipaddr other = ip_of(strcmp(hashed->ip_str, "10.0.0.1") == 0 ?
				    "10.0.0.2" : "10.0.0.1");
	/* another node pins u elsewhere: this node must pin it too first */
	assert_int_equal(director_user_remote_pin(d, "", h, &other, true, 10), DIRECTOR_OK);
	const struct director_host *to;
	struct director_ticket t;
	const char *err;
	assert_int_equal(director_route(d, "u", "", 11, 5, &to, &t, &err),
			 DIRECTOR_ROUTE_WAIT);
	assert_int_equal(director_route(d, "u", "", 11, 6, &to, &t, &err),
			 DIRECTOR_ROUTE_WAIT);
	assert_int_equal(p.needed, 1);		/* asked once for both */
	assert_int_equal(p.needed_hash, h);
	director_user_own_pin(d, "", h, true, NULL, 12);
	director_dispatch(d);
	assert_int_equal(rec.nresumed, 2);
	assert_int_equal(director_route(d, "u", "", 13, 5, &to, &t, &err), DIRECTOR_ROUTE_OK);
	assert_true(ipaddr_equal(&to->ip, &other));
	/* the other node lets go: this node's pin and session keep u there */
	assert_int_equal(director_user_remote_pin(d, "", h, &other, false, 14), DIRECTOR_OK);
	struct director_lookup lk;
	director_user_lookup(d, h, "", 15, &lk);
	assert_true(lk.assigned && ipaddr_equal(&lk.current, &other));
	/* when the record expires, the ring is asked to let its pin go; the
	 * record stays and logins wait until the ring says the pin is gone
	 * from its view too (doc/ring.md §11, P1) */
	director_release(d, &t, 16);
	assert_int_equal(director_expire(d, 16 + 900), 1);
	assert_int_equal(p.released, 1);
	assert_int_equal(p.released_hash, h);
	assert_int_equal(p.forgotten, 0);
	assert_int_equal(director_route(d, "u", "", 917, 7, &to, &t, &err),
			 DIRECTOR_ROUTE_WAIT);
	assert_int_equal(p.needed, 1);		/* waits, asks nothing */
	director_user_lookup(d, h, "", 917, &lk);
	assert_true(lk.assigned && ipaddr_equal(&lk.current, &other));
	assert_int_equal(director_expire(d, 16 + 5000), 0);
	/* a newer pin of its own is there after all: it holds u again */
	director_user_released(d, "", h, true, 918);
	director_dispatch(d);
	assert_int_equal(rec.nresumed, 3);
	assert_int_equal(director_route(d, "u", "", 919, 7, &to, &t, &err), DIRECTOR_ROUTE_OK);
	assert_true(ipaddr_equal(&to->ip, &other));
	director_release(d, &t, 919);
	assert_int_equal(director_expire(d, 919 + 900), 1);
	assert_int_equal(p.released, 2);
	/* gone from etcd and from the view: the record goes, u follows the
	 * hash */
	director_user_released(d, "", h, false, 1820);
	director_user_lookup(d, h, "", 1820, &lk);
	assert_false(lk.assigned);
	assert_int_equal(p.forgotten, 0);
	/* a user only others pin, and this node has no session: when their
	 * pin goes it follows the hash again at once */
	uint32_t h2 = director_user_hash(d, "w");
	const struct director_host *hashed2 = director_hashed_host(d, h2, "");
	struct ipaddr other2 = ip_of(strcmp(hashed2->ip_str, "10.0.0.1") == 0 ?
				     "10.0.0.2" : "10.0.0.1");
	assert_int_equal(director_user_remote_pin(d, "", h2, &other2, true, 20), DIRECTOR_OK);
	director_user_lookup(d, h2, "", 21, &lk);
	assert_true(lk.assigned && ipaddr_equal(&lk.current, &other2));
	assert_int_equal(director_user_remote_pin(d, "", h2, &other2, false, 22), DIRECTOR_OK);
	director_user_lookup(d, h2, "", 23, &lk);
	assert_false(lk.assigned);
	assert_int_equal(p.forgotten + p.released, 2);	/* it held no pin of its own */
	/* a pin to a host this node does not know is ignored */
	struct ipaddr nowhere = ip_of("10.9.9.9");
	assert_int_equal(director_user_remote_pin(d, "", 7, &nowhere, true, 24),
			 DIRECTOR_NOTFOUND);
	/* a pin of its own for a user it has no record of (a write that ran
	 * late): the record is made on its host (P4) */
	director_user_own_pin(d, "", h2, true, &other2, 25);
	director_user_lookup(d, h2, "", 25, &lk);
	assert_true(lk.assigned && ipaddr_equal(&lk.current, &other2));
	/* back with a new lease: every record goes (R1) */
	director_forget_ring_users(d);
	director_user_lookup(d, h2, "", 26, &lk);
	assert_false(lk.assigned);
	assert_int_equal(p.forgotten + p.released, 2);
	director_free(&d);
	config_free(&cfg);
}

/* Releases end while other users wait in the idle list: it must stay
 * whole (a released record was once unlinked twice, which emptied the
 * list: nobody after it ever expired). */
static void test_releases_keep_the_idle_list(void **state)
{
	(void)state;
	static const char *const servers[] = { "10.0.0.1", "10.0.0.2" };
	struct config *cfg;
	struct recorder rec;
	struct director *d = make_director(servers, 2, &cfg, &rec);
	struct pins_rec p = { 0 };
	static const struct director_pin_callbacks cb = {
		.needed = pins_needed, .forgotten = pins_forgotten, .release = pins_release,
	};
	director_set_pin_callbacks(d, &cb, &p);
	static const char *const names[] = { "a", "b", "c", "d" };
	uint32_t h[4];
	for (int i = 0; i < 4; i++) {
		const struct director_host *to;
		struct director_ticket t;
		const char *err;
		h[i] = director_user_hash(d, names[i]);
		assert_int_equal(director_route(d, names[i], "", 10 + i, 1, &to, &t, &err),
				 DIRECTOR_ROUTE_OK);
		director_release(d, &t, 10 + i);
		/* a, b and c hold pins of this node's own; d does not */
		if (i < 3)
			director_user_own_pin(d, "", h[i], true, NULL, 10 + i);
	}
	assert_int_equal(director_expire(d, 11 + 900), 2);	/* a, b */
	assert_int_equal(p.released, 2);
	director_user_released(d, "", h[0], false, 912);
	director_user_released(d, "", h[1], true, 912);		/* held again */
	struct director_lookup lk;
	director_user_lookup(d, h[0], "", 912, &lk);
	assert_false(lk.assigned);
	/* c and d expire in their turn, then b again */
	assert_int_equal(director_expire(d, 13 + 900), 2);
	assert_int_equal(p.released, 3);
	director_user_lookup(d, h[3], "", 913, &lk);
	assert_false(lk.assigned);
	director_user_released(d, "", h[2], false, 913);
	assert_int_equal(director_expire(d, 912 + 900), 1);
	assert_int_equal(p.released, 4);
	director_user_released(d, "", h[1], false, 1812);
	for (int i = 0; i < 4; i++) {
		director_user_lookup(d, h[i], "", 1812, &lk);
		assert_false(lk.assigned);
	}
	/* back with a new lease while one is released: forgotten cleanly */
	const struct director_host *to;
	struct director_ticket t;
	const char *err;
	assert_int_equal(director_route(d, "a", "", 2000, 1, &to, &t, &err), DIRECTOR_ROUTE_OK);
	director_release(d, &t, 2000);
	assert_int_equal(director_route(d, "b", "", 2001, 1, &to, &t, &err), DIRECTOR_ROUTE_OK);
	director_release(d, &t, 2001);
	director_user_own_pin(d, "", h[0], true, NULL, 2000);
	assert_int_equal(director_expire(d, 2000 + 900), 1);
	director_forget_ring_users(d);
	director_user_lookup(d, h[1], "", 2900, &lk);
	assert_false(lk.assigned);
	assert_int_equal(director_route(d, "c", "", 3000, 1, &to, &t, &err), DIRECTOR_ROUTE_OK);
	director_release(d, &t, 3000);
	assert_int_equal(director_expire(d, 3000 + 900), 1);
	director_free(&d);
	config_free(&cfg);
}

static void test_logins_wait_for_a_prepared_host_change(void **state)
{
	(void)state;
	static const char *const servers[] = { "10.0.0.1", "10.0.0.2", "10.0.0.3" };
	struct config *cfg;
	struct recorder rec;
	struct director *d = make_director(servers, 3, &cfg, &rec);
	struct pins_rec p = { 0 };
	static const struct director_pin_callbacks cb = {
		.needed = pins_needed, .forgotten = pins_forgotten,
	};
	director_set_pin_callbacks(d, &cb, &p);
	director_set_deferred_rings(d, true);
	uint32_t h = director_user_hash(d, "v");
	struct ipaddr down = director_hashed_host(d, h, "")->ip;
	assert_int_equal(director_host_set_down(d, &down, true, 10), DIRECTOR_OK);
	director_rings_prepare(d);
	const struct director_host *to;
	struct director_ticket t;
	const char *err;
	/* v hashes elsewhere in the next rings: it waits for the commit */
	assert_int_equal(director_route(d, "v", "", 11, 9, &to, &t, &err),
			 DIRECTOR_ROUTE_WAIT);
	/* a user whose host is the same in both goes on */
	char name[16];
	for (int i = 0;; i++) {
		snprintf(name, sizeof(name), "x%d", i);
		uint32_t hx = director_user_hash(d, name);
		if (!ipaddr_equal(&director_hashed_host(d, hx, "")->ip, &down))
			break;
	}
	assert_int_equal(director_route(d, name, "", 11, 10, &to, &t, &err),
			 DIRECTOR_ROUTE_OK);
	director_release(d, &t, 11);
	director_rings_commit(d);
	director_dispatch(d);
	assert_int_equal(rec.nresumed, 1);
	assert_int_equal(rec.resumed[0], 9);
	assert_int_equal(director_route(d, "v", "", 12, 9, &to, &t, &err), DIRECTOR_ROUTE_OK);
	assert_false(ipaddr_equal(&to->ip, &down));
	director_release(d, &t, 12);
	director_set_deferred_rings(d, false);
	director_free(&d);
	config_free(&cfg);
}

struct move_rec {
	int ready;
	uint32_t hash;
};

static void moves_ready(void *ctx, const char *tag, uint32_t hash)
{
	struct move_rec *m = ctx;
	(void)tag;
	m->ready++;
	m->hash = hash;
}

/* A ring's move (doc/ring.md §5): held and killed like a move, but the
 * logins go on only when the ring ends it, not when the sessions are
 * gone; a user without a record is held too. */
static void test_ring_move_hold(void **state)
{
	(void)state;
	static const char *const servers[] = { "10.0.0.1", "10.0.0.2" };
	struct config *cfg;
	struct recorder rec;
	struct director *d = make_director(servers, 2, &cfg, &rec);
	struct move_rec mr = { 0 };
	static const struct director_pin_callbacks cb = { .move_ready = moves_ready };
	director_set_pin_callbacks(d, &cb, &mr);
	const struct director_host *to;
	struct director_ticket t;
	const char *err;
	assert_int_equal(director_route(d, "u", "", 10, 1, &to, &t, &err), DIRECTOR_ROUTE_OK);
	struct ipaddr other = ip_of(strcmp(to->ip_str, "10.0.0.1") == 0 ?
				    "10.0.0.2" : "10.0.0.1");
	uint32_t h = director_user_hash(d, "u");
	assert_int_equal(director_user_move_hold(d, "", h, &other, 11), DIRECTOR_OK);
	assert_int_equal(rec.nkilled, 1);
	assert_int_equal(rec.killed[0], h);
	assert_int_equal(mr.ready, 0);		/* a session is still there */
	/* held twice over is still one move */
	assert_int_equal(director_user_move_hold(d, "", h, &other, 11), DIRECTOR_OK);
	assert_int_equal(rec.nkilled, 1);
	struct director_ticket held;
	assert_int_equal(director_route(d, "u", "", 12, 2, &to, &held, &err),
			 DIRECTOR_ROUTE_WAIT);
	director_release(d, &t, 13);
	assert_int_equal(mr.ready, 1);
	assert_int_equal(mr.hash, h);
	/* ready is not the end: the login still waits for the ring */
	director_dispatch(d);
	assert_int_equal(rec.nresumed, 0);
	director_user_move_end(d, "", h);
	director_dispatch(d);
	assert_int_equal(rec.nresumed, 1);
	assert_int_equal(rec.resumed[0], 2);
	assert_int_equal(director_route(d, "u", "", 14, 2, &to, &t, &err), DIRECTOR_ROUTE_OK);
	assert_true(ipaddr_equal(&to->ip, &other));
	director_release(d, &t, 14);

	/* no record here: held all the same, ready at once */
	uint32_t h2 = director_user_hash(d, "w");
	assert_int_equal(director_user_move_hold(d, "", h2, &other, 20), DIRECTOR_OK);
	assert_int_equal(mr.ready, 2);
	assert_int_equal(director_route(d, "w", "", 21, 3, &to, &t, &err),
			 DIRECTOR_ROUTE_WAIT);
	director_user_move_end(d, "", h2);
	director_dispatch(d);
	assert_int_equal(director_route(d, "w", "", 22, 3, &to, &t, &err), DIRECTOR_ROUTE_OK);
	assert_true(ipaddr_equal(&to->ip, &other));
	director_release(d, &t, 22);
	/* an unknown host, an unknown tag, an end without a move */
	struct ipaddr nowhere = ip_of("10.9.9.9");
	assert_int_equal(director_user_move_hold(d, "", h2, &nowhere, 23), DIRECTOR_NOTFOUND);
	director_user_move_end(d, "nosuchtag", h2);
	director_user_move_end(d, "", 12345);

	/* the move's target host removed meanwhile: the logins still wait
	 * for the ring (another node may still have a session of the user
	 * on its old backend), and go by the hash once the move ends */
	uint32_t h3 = director_user_hash(d, "x");
	assert_int_equal(director_user_move_hold(d, "", h3, &other, 30), DIRECTOR_OK);
	assert_int_equal(director_host_remove(d, &other), DIRECTOR_OK);
	assert_int_equal(director_route(d, "x", "", 31, 4, &to, &t, &err), DIRECTOR_ROUTE_WAIT);
	director_dispatch(d);
	assert_int_equal(director_route(d, "x", "", 32, 5, &to, &t, &err), DIRECTOR_ROUTE_WAIT);
	director_user_move_end(d, "", h3);
	director_dispatch(d);
	assert_int_equal(director_route(d, "x", "", 33, 4, &to, &t, &err), DIRECTOR_ROUTE_OK);
	assert_false(ipaddr_equal(&to->ip, &other));
	director_release(d, &t, 33);
	director_free(&d);
	config_free(&cfg);
}

static void test_hosts_replace(void **state)
{
	(void)state;
	static const char *const servers[] = { "10.0.0.1", "10.0.0.2" };
	struct config *cfg;
	struct recorder rec;
	struct director *d = make_director(servers, 2, &cfg, &rec);
	struct director_ticket t;
	const char *err;
	const struct director_host *h = route(d, "r", "", 10, &t, &err);
	struct ipaddr was = h->ip;
	director_release(d, &t, 10);
	/* .2 goes, .3 comes with a tag, .1 is down with 5 vhosts */
	struct director_host_spec specs[] = {
		{ .ip = ip_of("10.0.0.1"), .tag = "", .vhosts = 5, .down = true,
		  .last_updown = 77 },
		{ .ip = ip_of("10.0.0.3"), .tag = "gold", .vhosts = 100 },
	};
	director_hosts_replace(d, specs, 2);
	const struct director_host_list *hl = director_hosts(d);
	assert_int_equal(hl->count, 2);
	assert_string_equal(hl->hosts[0]->ip_str, "10.0.0.1");
	assert_true(hl->hosts[0]->down);
	assert_int_equal(hl->hosts[0]->vhost_count, 5);
	assert_int_equal(hl->hosts[0]->last_updown, 77);
	assert_string_equal(hl->hosts[1]->tag, "gold");
	assert_non_null(director_hashed_host(d, 1, "gold"));
	/* the removed host's users are forgotten */
	struct director_lookup lk;
	director_user_lookup(d, director_user_hash(d, "r"), "", 11, &lk);
	assert_int_equal(lk.assigned, ipaddr_equal(&was, &hl->hosts[0]->ip));
	assert_int_equal(rec.changes, 1);
	director_free(&d);
	config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b1_flush_during_orphan_reset),
		cmocka_unit_test(test_b1_remove_during_orphan_reset),
		cmocka_unit_test(test_interleavings),
		cmocka_unit_test(test_b7_stale_ticket_leaves_new_assignment),
		cmocka_unit_test(test_change_requests),
		cmocka_unit_test(test_change_handler),
		cmocka_unit_test(test_rings_in_phases),
		cmocka_unit_test(test_pins),
		cmocka_unit_test(test_releases_keep_the_idle_list),
		cmocka_unit_test(test_ring_move_hold),
		cmocka_unit_test(test_logins_wait_for_a_prepared_host_change),
		cmocka_unit_test(test_hosts_replace),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
