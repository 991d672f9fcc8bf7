/* Unit tests for src/auth/auth_cache.c with a fake clock: hits, misses,
 * a wrong password, negative entries, expiry, expired entries served
 * when asked (the passdb failing), LRU eviction under the byte limit,
 * flushes, and new limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "auth/auth.h"
#include "auth/auth_cache.h"
#include "common/xmalloc.h"

#define TTL 60000
#define NEG_TTL 5000

static struct auth_cache *new_cache(uint64_t size)
{
	const struct auth_cache_settings set = {
		.size = size, .ttl_ms = TTL, .negative_ttl_ms = NEG_TTL,
	};
	return auth_cache_new(&set);
}

/* A passdb's answer with every kind of field. */
static void make_result(struct auth_result *r, const char *user)
{
	memset(r, 0, sizeof(*r));
	r->status = AUTH_STATUS_OK;
	r->user = xstrdup(user);
	r->host = xstrdup("10.0.0.5");
	r->port = 1143;
	r->destuser = xstrdup("d@backend");
	r->director_tag = xstrdup("tag1");
	r->alt = xcalloc(2, sizeof(*r->alt));
	r->alt[0] = (struct auth_alt_user){ xstrdup("user_email"), xstrdup("a@b") };
	r->alt[1] = (struct auth_alt_user){ xstrdup("user_group"), xstrdup("staff") };
	r->alt_count = 2;
}

static enum auth_cache_answer lookup(struct auth_cache *c, const char *user,
				     const char *pw, uint64_t now, bool expired,
				     struct auth_result *out)
{
	auth_result_clear(out);
	out->user = xstrdup(user);
	return auth_cache_lookup(c, user, pw, now, expired, out);
}

static void test_hit_miss_wrong_password(void **state)
{
	(void)state;
	struct auth_cache *c = new_cache(1 << 20);
	struct auth_result r, out = { 0 };
	struct auth_cache_stats st;

	assert_int_equal(lookup(c, "jane", "secret", 1000, false, &out), AUTH_CACHE_MISS);
	make_result(&r, "Jane");
	auth_cache_add(c, "jane", "secret", &r, 1000);
	auth_result_clear(&r);

	assert_int_equal(lookup(c, "jane", "secret", 2000, false, &out), AUTH_CACHE_HIT);
	assert_int_equal(out.status, AUTH_STATUS_OK);
	assert_string_equal(out.user, "Jane");
	assert_string_equal(out.host, "10.0.0.5");
	assert_int_equal(out.port, 1143);
	assert_string_equal(out.destuser, "d@backend");
	assert_string_equal(out.director_tag, "tag1");
	assert_null(out.reason);
	assert_int_equal(out.alt_count, 2);
	assert_string_equal(out.alt[1].field, "user_group");
	assert_string_equal(out.alt[1].value, "staff");
	/* another password, a prefix of it, another user: the passdb's */
	assert_int_equal(lookup(c, "jane", "wrong", 2000, false, &out), AUTH_CACHE_MISS);
	assert_int_equal(lookup(c, "jane", "secre", 2000, false, &out), AUTH_CACHE_MISS);
	assert_int_equal(lookup(c, "jane", "", 2000, false, &out), AUTH_CACHE_MISS);
	assert_int_equal(lookup(c, "bob", "secret", 2000, false, &out), AUTH_CACHE_MISS);
	/* a user lookup (no password) takes any positive entry */
	assert_int_equal(lookup(c, "jane", NULL, 2000, false, &out), AUTH_CACHE_HIT);
	auth_cache_get_stats(c, &st);
	assert_int_equal(st.hits, 2);
	assert_int_equal(st.misses, 5);
	assert_int_equal(st.entries, 1);
	assert_true(st.bytes > 0);

	/* a new password replaces the old one */
	make_result(&r, "jane");
	auth_cache_add(c, "jane", "new", &r, 3000);
	auth_result_clear(&r);
	assert_int_equal(lookup(c, "jane", "new", 3000, false, &out), AUTH_CACHE_HIT);
	assert_int_equal(lookup(c, "jane", "secret", 3000, false, &out), AUTH_CACHE_MISS);
	auth_cache_get_stats(c, &st);
	assert_int_equal(st.entries, 1);

	/* nologin is cached as the passdb said it */
	make_result(&r, "gone");
	r.status = AUTH_STATUS_NOLOGIN;
	r.reason = xstrdup("Moved.");
	auth_cache_add(c, "gone", "pw", &r, 3000);
	auth_result_clear(&r);
	assert_int_equal(lookup(c, "gone", "pw", 3000, false, &out), AUTH_CACHE_HIT);
	assert_int_equal(out.status, AUTH_STATUS_NOLOGIN);
	assert_string_equal(out.reason, "Moved.");
	auth_result_clear(&out);
	auth_cache_free(&c);
	assert_null(c);
}

static void test_expiry_and_expired_served(void **state)
{
	(void)state;
	struct auth_cache *c = new_cache(1 << 20);
	struct auth_result r, out = { 0 };
	struct auth_cache_stats st;

	make_result(&r, "jane");
	auth_cache_add(c, "jane", "secret", &r, 1000);
	auth_result_clear(&r);
	auth_cache_add_negative(c, "nobody", 1000);

	assert_int_equal(lookup(c, "jane", "secret", 1000 + TTL - 1, false, &out),
			 AUTH_CACHE_HIT);
	assert_int_equal(lookup(c, "nobody", "x", 1000 + NEG_TTL - 1, false, &out),
			 AUTH_CACHE_NEGATIVE);
	/* expired: the passdb is asked */
	assert_int_equal(lookup(c, "jane", "secret", 1000 + TTL, false, &out),
			 AUTH_CACHE_MISS);
	assert_int_equal(lookup(c, "nobody", "x", 1000 + NEG_TTL, false, &out),
			 AUTH_CACHE_MISS);
	/* ... and when it fails, the expired entries answer, but only a
	 * matching password */
	assert_int_equal(lookup(c, "jane", "secret", 1000 + 10 * TTL, true, &out),
			 AUTH_CACHE_HIT);
	assert_string_equal(out.host, "10.0.0.5");
	assert_int_equal(lookup(c, "jane", "wrong", 1000 + 10 * TTL, true, &out),
			 AUTH_CACHE_MISS);
	assert_int_equal(lookup(c, "nobody", "x", 1000 + 10 * TTL, true, &out),
			 AUTH_CACHE_NEGATIVE);
	assert_int_equal(lookup(c, "unknown", "x", 1000 + 10 * TTL, true, &out),
			 AUTH_CACHE_MISS);
	auth_cache_get_stats(c, &st);
	assert_int_equal(st.hits, 1);
	assert_int_equal(st.negative_hits, 1);
	assert_int_equal(st.expired_hits, 2);
	/* the fallback lookups are not counted again as misses */
	assert_int_equal(st.misses, 2);
	/* a new answer makes it fresh again */
	make_result(&r, "jane");
	auth_cache_add(c, "jane", "secret", &r, 1000 + 10 * TTL);
	auth_result_clear(&r);
	assert_int_equal(lookup(c, "jane", "secret", 1000 + 10 * TTL + 1, false, &out),
			 AUTH_CACHE_HIT);
	/* a negative entry goes when the user appears */
	make_result(&r, "nobody");
	auth_cache_add(c, "nobody", "x", &r, 1000);
	auth_result_clear(&r);
	assert_int_equal(lookup(c, "nobody", "x", 1001, false, &out), AUTH_CACHE_HIT);
	auth_result_clear(&out);
	auth_cache_free(&c);
}

static void test_lru_eviction(void **state)
{
	(void)state;
	struct auth_result r, out = { 0 };
	struct auth_cache_stats st;
	char user[32];

	/* the size of one entry, measured */
	struct auth_cache *c = new_cache(1 << 20);
	make_result(&r, "user00");
	auth_cache_add(c, "user00", "pw", &r, 0);
	auth_cache_get_stats(c, &st);
	size_t one = st.bytes;
	auth_cache_free(&c);

	/* room for four entries */
	c = new_cache(4 * one + one / 2);
	for (int i = 0; i < 4; i++) {
		snprintf(user, sizeof(user), "user%02d", i);
		auth_cache_add(c, user, "pw", &r, 0);
	}
	auth_cache_get_stats(c, &st);
	assert_int_equal(st.entries, 4);
	assert_int_equal(st.bytes, 4 * one);
	/* user00 is used: user01 is the least recently used now */
	assert_int_equal(lookup(c, "user00", "pw", 1, false, &out), AUTH_CACHE_HIT);
	auth_cache_add(c, "user04", "pw", &r, 0);
	auth_cache_get_stats(c, &st);
	assert_int_equal(st.entries, 4);
	assert_true(st.bytes <= 4 * one + one / 2);
	assert_int_equal(lookup(c, "user01", "pw", 1, false, &out), AUTH_CACHE_MISS);
	assert_int_equal(lookup(c, "user00", "pw", 1, false, &out), AUTH_CACHE_HIT);
	assert_int_equal(lookup(c, "user02", "pw", 1, false, &out), AUTH_CACHE_HIT);
	assert_int_equal(lookup(c, "user04", "pw", 1, false, &out), AUTH_CACHE_HIT);
	/* a smaller limit evicts at once, the least recently used first */
	const struct auth_cache_settings set = {
		.size = 2 * one, .ttl_ms = TTL, .negative_ttl_ms = NEG_TTL,
	};
	auth_cache_set_settings(c, &set);
	auth_cache_get_stats(c, &st);
	assert_int_equal(st.entries, 2);
	assert_int_equal(lookup(c, "user03", "pw", 1, false, &out), AUTH_CACHE_MISS);
	assert_int_equal(lookup(c, "user00", "pw", 1, false, &out), AUTH_CACHE_MISS);
	assert_int_equal(lookup(c, "user04", "pw", 1, false, &out), AUTH_CACHE_HIT);
	/* an entry larger than the whole cache is not kept */
	const struct auth_cache_settings tiny = {
		.size = one / 2, .ttl_ms = TTL, .negative_ttl_ms = NEG_TTL,
	};
	auth_cache_set_settings(c, &tiny);
	auth_cache_add(c, "user05", "pw", &r, 0);
	auth_cache_get_stats(c, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.bytes, 0);
	auth_result_clear(&r);
	auth_result_clear(&out);
	auth_cache_free(&c);
}

static void test_flush(void **state)
{
	(void)state;
	struct auth_cache *c = new_cache(1 << 20);
	struct auth_result r, out = { 0 };
	struct auth_cache_stats st;

	make_result(&r, "x");
	auth_cache_add(c, "jane", "pw", &r, 0);
	auth_cache_add(c, "bob", "pw", &r, 0);
	auth_cache_add_negative(c, "nobody", 0);
	assert_int_equal(auth_cache_flush_user(c, "jane"), 1);
	assert_int_equal(auth_cache_flush_user(c, "jane"), 0);
	assert_int_equal(lookup(c, "jane", "pw", 1, true, &out), AUTH_CACHE_MISS);
	assert_int_equal(lookup(c, "bob", "pw", 1, false, &out), AUTH_CACHE_HIT);
	assert_int_equal(auth_cache_flush_user(c, "nobody"), 1);
	assert_int_equal(lookup(c, "nobody", "pw", 1, false, &out), AUTH_CACHE_MISS);
	auth_cache_add(c, "jane", "pw", &r, 0);
	assert_int_equal(auth_cache_flush_all(c), 2);
	assert_int_equal(auth_cache_flush_all(c), 0);
	auth_cache_get_stats(c, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(lookup(c, "bob", "pw", 1, true, &out), AUTH_CACHE_MISS);
	/* usable after a flush */
	auth_cache_add(c, "bob", "pw", &r, 0);
	assert_int_equal(lookup(c, "bob", "pw", 1, false, &out), AUTH_CACHE_HIT);
	/* negative_ttl 0: unknown users are not remembered */
	const struct auth_cache_settings no_neg = {
		.size = 1 << 20, .ttl_ms = TTL, .negative_ttl_ms = 0,
	};
	auth_cache_set_settings(c, &no_neg);
	auth_cache_add_negative(c, "nobody", 0);
	assert_int_equal(lookup(c, "nobody", "pw", 1, true, &out), AUTH_CACHE_MISS);
	auth_result_clear(&r);
	auth_result_clear(&out);
	auth_cache_free(&c);
}

/* Many users: every one found again (the hash table grows). */
static void test_many_users(void **state)
{
	(void)state;
	struct auth_cache *c = new_cache(64 << 20);
	struct auth_result r, out = { 0 };
	char user[32], pw[32];

	make_result(&r, "x");
	for (int i = 0; i < 20000; i++) {
		snprintf(user, sizeof(user), "u%d", i);
		snprintf(pw, sizeof(pw), "p%d", i);
		auth_cache_add(c, user, pw, &r, 0);
	}
	for (int i = 0; i < 20000; i += 7) {
		snprintf(user, sizeof(user), "u%d", i);
		snprintf(pw, sizeof(pw), "p%d", i);
		assert_int_equal(lookup(c, user, pw, 1, false, &out), AUTH_CACHE_HIT);
		snprintf(pw, sizeof(pw), "p%d", i + 1);
		assert_int_equal(lookup(c, user, pw, 1, false, &out), AUTH_CACHE_MISS);
	}
	auth_result_clear(&r);
	auth_result_clear(&out);
	auth_cache_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit_miss_wrong_password),
		cmocka_unit_test(test_expiry_and_expired_served),
		cmocka_unit_test(test_lru_eviction),
		cmocka_unit_test(test_flush),
		cmocka_unit_test(test_many_users),
	};
	return cmocka_run_group_tests_name("auth_cache", tests, NULL, NULL);
}
