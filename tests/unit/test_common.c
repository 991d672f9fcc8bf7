/* Unit tests for src/common: buffers, hash map, addresses, base64,
 * tab-escaping, wildcards, durations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/base64.h"
#include "common/hmap.h"
#include "common/list.h"
#include "common/net.h"
#include "common/sbuf.h"
#include "common/tabescape.h"
#include "common/units.h"
#include "common/wildcard.h"
#include "common/xmalloc.h"

static void test_sbuf_append_consume(void **state)
{
	(void)state;
	struct sbuf sb = SBUF_INIT;
	assert_true(sbuf_is_empty(&sb));
	assert_null(sb.data);
	sbuf_appends(&sb, "hello ");
	sbuf_appendf(&sb, "%s %d", "world", 42);
	assert_string_equal(sbuf_cstr(&sb), "hello world 42");
	sbuf_consume(&sb, 6);
	assert_string_equal(sbuf_cstr(&sb), "world 42");
	/* growth after a consumed prefix keeps the contents */
	for (int i = 0; i < 100; i++)
		sbuf_appendc(&sb, 'x');
	assert_int_equal(sbuf_len(&sb), 108);
	assert_memory_equal(sbuf_data(&sb), "world 42xx", 10);
	sbuf_consume(&sb, 1000);
	assert_true(sbuf_is_empty(&sb));
	sbuf_release_if_empty(&sb);
	assert_null(sb.data);
	/* long formatted output takes the slow path */
	char big[1000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	sbuf_appendf(&sb, "<%s>", big);
	assert_int_equal(sbuf_len(&sb), 1001);
	sbuf_free(&sb);
}

struct item {
	struct hmap_node node;
	int key;
};

/* A token that nothing else writes: found anywhere in a buffer's memory
 * outside its live bytes, a copy was left behind. */
#define SECRET_TOKEN "pw-7f3a9c1e-secret"

/* Whether the token is in sb's memory outside [start, start + len). */
static bool sbuf_leaves_token(const struct sbuf *sb)
{
	size_t tlen = strlen(SECRET_TOKEN);
	for (size_t off = 0; off + tlen <= sb->cap; off++) {
		bool live = off >= sb->start && off + tlen <= sb->start + sb->len;
		if (!live && memcmp(sb->data + off, SECRET_TOKEN, tlen) == 0)
			return true;
	}
	return false;
}

static void test_sbuf_secret(void **state)
{
	(void)state;
	size_t tlen = strlen(SECRET_TOKEN);

	/* the check finds what an ordinary buffer leaves behind */
	struct sbuf plain = SBUF_INIT;
	sbuf_appends(&plain, "a LOGIN u " SECRET_TOKEN "\r\n");
	sbuf_consume(&plain, sbuf_len(&plain) - 2);
	assert_true(sbuf_leaves_token(&plain));
	sbuf_free(&plain);

	struct sbuf sb = SBUF_INIT;
	assert_false(sb.secret);
	sbuf_set_secret(&sb);
	/* consume wipes the bytes behind, also when it empties the buffer */
	sbuf_appends(&sb, "a LOGIN u " SECRET_TOKEN "\r\n");
	sbuf_consume(&sb, 10 + tlen);
	assert_memory_equal(sbuf_data(&sb), "\r\n", 2);
	assert_false(sbuf_leaves_token(&sb));
	sbuf_appends(&sb, SECRET_TOKEN);
	sbuf_consume(&sb, sbuf_len(&sb));
	assert_false(sbuf_leaves_token(&sb));
	/* reset and truncate wipe what they drop */
	sbuf_appends(&sb, SECRET_TOKEN);
	sbuf_reset(&sb);
	assert_false(sbuf_leaves_token(&sb));
	sbuf_appends(&sb, "x" SECRET_TOKEN);
	sbuf_truncate(&sb, 1);
	assert_false(sbuf_leaves_token(&sb));
	sbuf_reset(&sb);
	/* moving the live bytes to the front leaves no copy behind */
	for (int i = 0; i < 3; i++)
		sbuf_appends(&sb, SECRET_TOKEN);
	size_t cap = sb.cap;
	sbuf_consume(&sb, tlen);
	sbuf_reserve(&sb, cap - sbuf_len(&sb) - 1);
	assert_int_equal(sb.cap, cap);
	assert_int_equal(sb.start, 0);
	assert_false(sbuf_leaves_token(&sb));
	/* the flag sticks across growth, release and free */
	char big[4096];
	memset(big, 'x', sizeof(big));
	sbuf_append(&sb, big, sizeof(big));
	assert_true(sb.cap > cap);
	assert_true(sb.secret);
	assert_memory_equal(sbuf_data(&sb), SECRET_TOKEN SECRET_TOKEN, 2 * tlen);
	sbuf_consume(&sb, sbuf_len(&sb));
	sbuf_release_if_empty(&sb);
	assert_null(sb.data);
	assert_true(sb.secret);
	sbuf_appends(&sb, SECRET_TOKEN);
	sbuf_free(&sb);
	assert_true(sb.secret);
	assert_null(sb.data);
}

static void test_hmap(void **state)
{
	(void)state;
	struct hmap map = HMAP_INIT;
	struct item items[1000];
	for (int i = 0; i < 1000; i++) {
		items[i].key = i;
		hmap_insert(&map, &items[i].node, hash_u64((uint64_t)i));
	}
	assert_int_equal(hmap_count(&map), 1000);
	for (int i = 0; i < 1000; i++) {
		struct hmap_node *n;
		int found = 0;
		HMAP_FOR_EACH_WITH_HASH(n, hash_u64((uint64_t)i), &map) {
			if (CONTAINER_OF(n, struct item, node)->key == i)
				found++;
		}
		assert_int_equal(found, 1);
	}
	/* remove the odd ones while iterating */
	struct hmap_node *n, *next;
	int seen = 0;
	HMAP_FOR_EACH_SAFE(n, next, &map) {
		seen++;
		if (CONTAINER_OF(n, struct item, node)->key % 2 == 1)
			hmap_remove(&map, n);
	}
	assert_int_equal(seen, 1000);
	assert_int_equal(hmap_count(&map), 500);
	seen = 0;
	HMAP_FOR_EACH(n, &map) {
		assert_int_equal(CONTAINER_OF(n, struct item, node)->key % 2, 0);
		seen++;
	}
	assert_int_equal(seen, 500);
	hmap_destroy(&map);
	assert_int_equal(hash_string_icase("UsEr@Example.COM"),
			 hash_string("user@example.com"));
	char longs[600], longl[600];
	for (int i = 0; i < 599; i++) {
		longs[i] = (char)('A' + i % 26);
		longl[i] = (char)('a' + i % 26);
	}
	longs[599] = longl[599] = '\0';
	assert_int_equal(hash_string_icase(longs), hash_string(longl));
}

struct listed {
	struct list_node node;
	int v;
};

static void test_list(void **state)
{
	(void)state;
	struct list l = LIST_INIT;
	struct listed it[4];
	for (int i = 0; i < 4; i++) {
		it[i].v = i;
		list_append(&l, &it[i].node);
	}
	assert_int_equal(l.count, 4);
	/* unlink from the middle, the head and the tail */
	list_unlink(&l, &it[1].node);
	list_unlink(&l, &it[0].node);
	list_unlink(&l, &it[3].node);
	assert_ptr_equal(l.head, &it[2].node);
	assert_ptr_equal(l.tail, &it[2].node);
	assert_int_equal(l.count, 1);
	list_append(&l, &it[0].node);
	assert_ptr_equal(list_pop_head(&l), &it[2].node);
	assert_ptr_equal(list_pop_head(&l), &it[0].node);
	assert_null(list_pop_head(&l));
	assert_true(list_is_empty(&l));
	list_append(&l, &it[1].node);
	list_append(&l, &it[3].node);
	struct list_node *n = list_take_all(&l);
	assert_true(list_is_empty(&l));
	assert_int_equal(CONTAINER_OF(n, struct listed, node)->v, 1);
	assert_int_equal(CONTAINER_OF(n->next, struct listed, node)->v, 3);
	assert_null(n->next->next);
}

static void test_ipaddr(void **state)
{
	(void)state;
	struct ipaddr a, b;
	char buf[IPADDR_STRLEN];
	assert_int_equal(ipaddr_parse("10.0.0.1", &a), 0);
	assert_string_equal(ipaddr_to_str(&a, buf), "10.0.0.1");
	assert_int_equal(ipaddr_parse("::ffff:10.0.0.1", &b), 0);
	assert_int_equal(b.family, AF_INET);
	assert_true(ipaddr_equal(&a, &b));
	assert_int_equal(ipaddr_parse("[2001:db8::1]", &b), 0);
	assert_string_equal(ipaddr_to_str(&b, buf), "2001:db8::1");
	assert_true(ipaddr_cmp(&a, &b) < 0);
	assert_true(ipaddr_cmp(&b, &a) > 0);
	assert_int_equal(ipaddr_parse("10.0.0.300", &a), -1);
	assert_int_equal(ipaddr_parse("host.example", &a), -1);
	assert_int_equal(ipaddr_parse("", &a), -1);
	struct ipaddr c, d;
	ipaddr_parse("10.0.0.2", &c);
	ipaddr_parse("10.0.0.10", &d);
	assert_true(ipaddr_cmp(&c, &d) < 0);

	struct sockaddr_storage ss;
	uint16_t port;
	socklen_t len = ipaddr_to_sockaddr(&c, 143, &ss);
	assert_int_equal(len, sizeof(struct sockaddr_in));
	ipaddr_from_sockaddr((struct sockaddr *)&ss, &d, &port);
	assert_true(ipaddr_equal(&c, &d));
	assert_int_equal(port, 143);
}

static void test_cidr(void **state)
{
	(void)state;
	struct cidr net;
	struct ipaddr ip;
	assert_int_equal(cidr_parse("127.0.0.0/8", &net), 0);
	ipaddr_parse("127.1.2.3", &ip);
	assert_true(cidr_match(&net, &ip));
	ipaddr_parse("128.0.0.1", &ip);
	assert_false(cidr_match(&net, &ip));
	ipaddr_parse("::1", &ip);
	assert_false(cidr_match(&net, &ip));
	assert_int_equal(cidr_parse("10.1.2.3", &net), 0);
	assert_int_equal(net.bits, 32);
	assert_int_equal(cidr_parse("2001:db8::/32", &net), 0);
	ipaddr_parse("2001:db8:ffff::1", &ip);
	assert_true(cidr_match(&net, &ip));
	ipaddr_parse("2001:db9::1", &ip);
	assert_false(cidr_match(&net, &ip));
	assert_int_equal(cidr_parse("10.0.0.0/12", &net), 0);
	ipaddr_parse("10.15.255.255", &ip);
	assert_true(cidr_match(&net, &ip));
	ipaddr_parse("10.16.0.0", &ip);
	assert_false(cidr_match(&net, &ip));
	/* IPv4-mapped network in IPv6 form matches plain IPv4 clients */
	assert_int_equal(cidr_parse("::ffff:10.0.0.0/104", &net), 0);
	assert_int_equal(net.bits, 8);
	ipaddr_parse("10.9.9.9", &ip);
	assert_true(cidr_match(&net, &ip));
	assert_int_equal(cidr_parse("0.0.0.0/0", &net), 0);
	assert_true(cidr_match(&net, &ip));
	/* not networks */
	assert_int_equal(cidr_parse("12345", &net), -1);
	assert_int_equal(cidr_parse("127.0.0.1/99", &net), -1);
	assert_int_equal(cidr_parse("127.0.0.1/", &net), -1);
	assert_int_equal(cidr_parse("user*", &net), -1);
}

static void test_port(void **state)
{
	(void)state;
	uint16_t p;
	assert_int_equal(port_parse("143", &p), 0);
	assert_int_equal(p, 143);
	assert_int_equal(port_parse("65535", &p), 0);
	assert_int_equal(port_parse("0", &p), -1);
	assert_int_equal(port_parse("65536", &p), -1);
	assert_int_equal(port_parse("14x", &p), -1);
	assert_int_equal(port_parse("", &p), -1);
}

static void test_base64(void **state)
{
	(void)state;
	static const struct { const char *plain, *enc; } vec[] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
		{ "foobar", "Zm9vYmFy" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(vec); i++) {
		struct sbuf sb = SBUF_INIT;
		base64_encode(&sb, vec[i].plain, strlen(vec[i].plain));
		assert_string_equal(sbuf_cstr(&sb), vec[i].enc);
		sbuf_free(&sb);
		unsigned char out[16];
		long n = base64_decode(vec[i].enc, strlen(vec[i].enc), out);
		assert_int_equal(n, (long)strlen(vec[i].plain));
		assert_memory_equal(out, vec[i].plain, (size_t)n);
	}
	unsigned char out[32];
	/* PLAIN with NULs */
	long n = base64_decode("AHVzZXIAc2VjcmV0", 16, out);
	assert_int_equal(n, 12);
	assert_memory_equal(out, "\0user\0secret", 12);
	assert_int_equal(base64_decode("Zg=", 3, out), -1);
	assert_int_equal(base64_decode("Z===", 4, out), -1);
	assert_int_equal(base64_decode("Zg==Zg==", 8, out), -1);
	assert_int_equal(base64_decode("Zm9v YmFy", 9, out), -1);
	assert_int_equal(base64_decode("Zm9*", 4, out), -1);
}

static void test_tabescape(void **state)
{
	(void)state;
	struct sbuf sb = SBUF_INIT;
	tabescape_append(&sb, "a\tb\001c\rd\ne");
	assert_string_equal(sbuf_cstr(&sb), "a\001tb\0011c\001rd\001ne");
	char *s = xstrdup(sbuf_cstr(&sb));
	size_t n = tabunescape_inplace(s, strlen(s));
	assert_int_equal(n, 9);
	assert_memory_equal(s, "a\tb\001c\rd\ne", 9);
	free(s);
	sbuf_free(&sb);

	char line[] = "HOST-SET\t10.0.0.1@t\001tag\t100";
	char *f[8];
	assert_int_equal(tabsplit_inplace(line, f, 8), 3);
	assert_string_equal(f[0], "HOST-SET");
	assert_string_equal(f[1], "10.0.0.1@t\tag");
	assert_string_equal(f[2], "100");
	char empty[] = "";
	assert_int_equal(tabsplit_inplace(empty, f, 8), 0);
	char trailing[] = "A\t";
	assert_int_equal(tabsplit_inplace(trailing, f, 8), 2);
	assert_string_equal(f[1], "");
	char many[] = "a\tb\tc";
	assert_int_equal(tabsplit_inplace(many, f, 2), -1);
	/* 0x01 + other char yields that char; a trailing 0x01 is dropped */
	char odd[] = "x\001qy\001";
	n = tabunescape_inplace(odd, strlen(odd));
	assert_int_equal(n, 3);
	assert_string_equal(odd, "xqy");
}

static void test_wildcard(void **state)
{
	(void)state;
	assert_true(wildcard_match_icase("user1", "user1"));
	assert_true(wildcard_match_icase("USER1", "user?"));
	assert_true(wildcard_match_icase("user10", "user*"));
	assert_true(wildcard_match_icase("user", "user*"));
	assert_false(wildcard_match_icase("user", "user?"));
	assert_true(wildcard_match_icase("jane@example.org", "*@EXAMPLE.org"));
	assert_true(wildcard_match_icase("aXbXc", "a*b*c"));
	assert_false(wildcard_match_icase("aXbXd", "a*b*c"));
	assert_true(wildcard_match_icase("abcabcabd", "*abd"));
	assert_true(wildcard_match_icase("", "*"));
	assert_true(wildcard_match_icase("", "**"));
	assert_false(wildcard_match_icase("", "?"));
	assert_false(wildcard_match_icase("", "a"));
	assert_false(wildcard_match_icase("a", ""));
	assert_true(wildcard_has_wildcards("a*"));
	assert_true(wildcard_has_wildcards("a?"));
	assert_false(wildcard_has_wildcards("abc"));
}

static void test_duration(void **state)
{
	(void)state;
	static const struct { const char *s; uint64_t ms; } ok[] = {
		{ "60", 60000 }, { "60s", 60000 }, { "15m", 900000 },
		{ "15 min", 900000 }, { "1h", 3600000 }, { "500ms", 500 },
		{ "2 days", 172800000 }, { " 3 secs ", 3000 }, { "0", 0 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		uint64_t ms;
		assert_int_equal(duration_parse_ms(ok[i].s, &ms), 0);
		assert_int_equal(ms, ok[i].ms);
	}
	uint64_t ms;
	assert_int_equal(duration_parse_ms("", &ms), -1);
	assert_int_equal(duration_parse_ms("abc", &ms), -1);
	assert_int_equal(duration_parse_ms("10 parsecs", &ms), -1);
	assert_int_equal(duration_parse_ms("-5s", &ms), -1);
	assert_int_equal(duration_parse_ms("99999999999999999999", &ms), -1);
	char buf[32];
	assert_string_equal(duration_format(900000, buf), "15m");
	assert_string_equal(duration_format(60000, buf), "1m");
	assert_string_equal(duration_format(1500, buf), "1500ms");
	assert_string_equal(duration_format(30000, buf), "30s");
	assert_string_equal(duration_format(0, buf), "0ms");
}

static void test_size(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(size_parse("8192", &v), 0);
	assert_int_equal(v, 8192);
	assert_int_equal(size_parse("64k", &v), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(size_parse("10 MB", &v), 0);
	assert_int_equal(v, 10485760);
	assert_int_equal(size_parse("1G", &v), 0);
	assert_int_equal(v, 1073741824);
	assert_int_equal(size_parse("1T", &v), -1);
	assert_int_equal(size_parse("k", &v), -1);
	char buf[32];
	assert_string_equal(size_format(65536, buf), "64k");
	assert_string_equal(size_format(10485760, buf), "10M");
	assert_string_equal(size_format(1000, buf), "1000");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sbuf_append_consume),
		cmocka_unit_test(test_sbuf_secret),
		cmocka_unit_test(test_hmap),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_ipaddr),
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_port),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_tabescape),
		cmocka_unit_test(test_wildcard),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_size),
	};
	return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
