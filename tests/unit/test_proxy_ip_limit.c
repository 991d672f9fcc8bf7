/* Unit tests for src/proxy/ip_limit: per-address slots up to the limit,
 * addresses independent, IPv4 and IPv6 apart, records reused after
 * release, and no limit at 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proxy/ip_limit.h"

static struct ipaddr ip(const char *s)
{
	struct ipaddr a;
	assert_int_equal(ipaddr_parse(s, &a), 0);
	return a;
}

static void test_limit_per_address(void **state)
{
	(void)state;
	struct ip_limit l;
	ip_limit_init(&l, 3);
	struct ipaddr a = ip("192.0.2.1"), b = ip("192.0.2.2"), v6 = ip("2001:db8::1");
	for (int i = 0; i < 3; i++)
		assert_true(ip_limit_take(&l, &a));
	assert_false(ip_limit_take(&l, &a));
	assert_int_equal(ip_limit_count(&l, &a), 3);
	/* another address, and another family, have their own slots */
	assert_true(ip_limit_take(&l, &b));
	assert_true(ip_limit_take(&l, &v6));
	assert_int_equal(ip_limit_count(&l, &b), 1);
	/* a released slot can be taken again */
	ip_limit_release(&l, &a);
	assert_int_equal(ip_limit_count(&l, &a), 2);
	assert_true(ip_limit_take(&l, &a));
	assert_false(ip_limit_take(&l, &a));
	/* an address with no connections is forgotten */
	ip_limit_release(&l, &b);
	assert_int_equal(ip_limit_count(&l, &b), 0);
	assert_int_equal(hmap_count(&l.counts), 2);
	ip_limit_deinit(&l);
}

static void test_many_addresses_reuse_records(void **state)
{
	(void)state;
	struct ip_limit l;
	ip_limit_init(&l, 1);
	struct ipaddr a[300];
	for (unsigned int round = 0; round < 3; round++) {
		for (unsigned int i = 0; i < 300; i++) {
			a[i].family = AF_INET;
			a[i].u.v4.s_addr = htonl(0x0a000000u + i);
			assert_true(ip_limit_take(&l, &a[i]));
			assert_false(ip_limit_take(&l, &a[i]));
		}
		assert_int_equal(hmap_count(&l.counts), 300);
		for (unsigned int i = 0; i < 300; i++)
			ip_limit_release(&l, &a[i]);
		assert_int_equal(hmap_count(&l.counts), 0);
		assert_true(l.spare_count > 0);
	}
	ip_limit_deinit(&l);
}

static void test_zero_is_no_limit(void **state)
{
	(void)state;
	struct ip_limit l;
	ip_limit_init(&l, 0);
	struct ipaddr a = ip("192.0.2.1");
	for (int i = 0; i < 1000; i++)
		assert_true(ip_limit_take(&l, &a));
	assert_int_equal(ip_limit_count(&l, &a), 0);
	ip_limit_release(&l, &a);
	ip_limit_deinit(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limit_per_address),
		cmocka_unit_test(test_many_addresses_reuse_records),
		cmocka_unit_test(test_zero_is_no_limit),
	};
	return cmocka_run_group_tests_name("proxy_ip_limit", tests, NULL, NULL);
}
