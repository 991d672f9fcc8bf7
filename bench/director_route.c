/* Routing at scale (issue: director on one node, "Performance"): fills a
 * director with assignments the way logins make them, then times routing
 * logins of users that already have one - what almost every login does -
 * and its parts, and reports the memory an assignment costs.
 *
 *   make bench-director        (build/bench/director_route [users] [hosts])
 *
 * Memory is the heap growth (mallinfo2) over the filling phase divided by
 * the users; it includes the hash table, the idle list and the names. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/xmalloc.h"
#include "conf/config.h"
#include "director/director.h"

static double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct config *bench_config(unsigned int hosts)
{
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	cfg->path = xstrdup("bench.conf");
	cfg->director.username_hash = xstrdup("%Lu");
	cfg->director.user_expire_ms = 900000;
	cfg->director.max_parallel_moves = 100;
	cfg->director.mail_servers.items = xcalloc(hosts, sizeof(char *));
	for (unsigned int i = 0; i < hosts; i++)
		cfg->director.mail_servers.items[i] = xasprintf("10.0.%u.%u", i / 250,
								 i % 250 + 1);
	cfg->director.mail_servers.count = hosts;
	return cfg;
}

/* A login's routing: route, then the session ends and releases. */
static void bench_login(struct director *d, const char *user, time_t now)
{
	const struct director_host *h;
	struct director_ticket t;
	const char *error;
	if (director_route(d, user, "", now, 1, &h, &t, &error) != DIRECTOR_ROUTE_OK) {
		fprintf(stderr, "routing %s failed: %s\n", user, error);
		exit(1);
	}
	director_release(d, &t, now);
}

static uint64_t bench_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

int main(int argc, char **argv)
{
	size_t users = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
	unsigned int hosts = argc > 2 ? (unsigned int)strtoul(argv[2], NULL, 10) : 10;
	size_t lookups = 2 * users;
	char *error = NULL, name[48];
	struct config *cfg = bench_config(hosts);
	struct director *d = director_new(cfg, NULL, &error);
	if (d == NULL) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	time_t now = time(NULL);

	size_t heap0 = mallinfo2().uordblks;
	double t0 = bench_now();
	for (size_t i = 0; i < users; i++) {
		snprintf(name, sizeof(name), "user%zu@example.com", i);
		bench_login(d, name, now);
	}
	double t1 = bench_now();
	size_t heap1 = mallinfo2().uordblks;

	uint64_t seed = 0x9e3779b97f4a7c15u;
	double t2 = bench_now();
	for (size_t i = 0; i < lookups; i++) {
		snprintf(name, sizeof(name), "user%zu@example.com",
			 (size_t)(bench_rand(&seed) % users));
		bench_login(d, name, now);
	}
	double t3 = bench_now();

	/* the parts: the username hash, and the ring's binary search */
	uint32_t sink = 0;
	double t4 = bench_now();
	for (size_t i = 0; i < lookups; i++) {
		snprintf(name, sizeof(name), "user%zu@example.com",
			 (size_t)(bench_rand(&seed) % users));
		sink ^= director_user_hash(d, name);
	}
	double t5 = bench_now();
	for (size_t i = 0; i < lookups; i++)
		sink ^= (uint32_t)(uintptr_t)director_hashed_host(d, (uint32_t)bench_rand(&seed), "");
	double t6 = bench_now();

	printf("hosts %u (100 vhosts each), assignments %zu\n", hosts, users);
	printf("new users routed:        %8.0f /s\n", (double)users / (t1 - t0));
	printf("existing users routed:   %8.0f /s (route + release)\n",
	       (double)lookups / (t3 - t2));
	printf("  username hash alone:   %8.0f /s\n", (double)lookups / (t5 - t4));
	printf("  ring lookup alone:     %8.0f /s\n", (double)lookups / (t6 - t5));
	printf("heap per assignment:     %8.1f bytes (%.1f MB for %zu)\n",
	       (double)(heap1 - heap0) / (double)users, (double)(heap1 - heap0) / 1e6,
	       users);
	printf("(checksum %u)\n", sink);
	director_free(&d);
	config_free(&cfg);
	return 0;
}
