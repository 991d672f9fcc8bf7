/* Unit tests for proxy_id_seed(): two processes started in the same
 * second (the nodes of a ring, an upgrade's successor) must not hand out
 * the same session ids, which the backends log as their session= (a
 * ring's chaos test once matched two nodes' sessions by one id). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proxy/proxy.h"

static void test_seeds_differ(void **state)
{
	(void)state;
	uint64_t a = proxy_id_seed(), b = proxy_id_seed(), c = proxy_id_seed();
	assert_true(a != b && b != c && a != c);
	/* ids counted from them stay far apart: 2^40 sessions of each do not
	 * meet (three random 62-bit starts are that close with probability
	 * about 2^-20) */
	uint64_t d1 = a > b ? a - b : b - a, d2 = b > c ? b - c : c - b;
	assert_true(d1 > (UINT64_C(1) << 40) && d2 > (UINT64_C(1) << 40));
}

static void test_seeds_below_bench_ids(void **state)
{
	(void)state;
	for (int i = 0; i < 1000; i++)
		assert_true(proxy_id_seed() <= PROXY_ID_SEED_MASK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seeds_differ),
		cmocka_unit_test(test_seeds_below_bench_ids),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
