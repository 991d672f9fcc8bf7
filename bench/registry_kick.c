/* Kicking at scale (issue: session administration, "Scale"): registers
 * synthetic sessions in the registry, as loftd's sessions register, and
 * times selecting and kicking half of them the ways loftadm can: by a
 * wildcard mask (a walk over every session), by backend (the backend
 * index) and by exact names (the user index). The kick callback only
 * counts, as loftd's only marks the session and activates its timer.
 *
 *   make bench-registry            (build/bench/registry_kick [sessions])
 *
 * Prints one line per case: sessions selected, milliseconds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>

#include "common/clock.h"
#include "common/xmalloc.h"
#include "registry/filter.h"
#include "registry/registry.h"

static size_t kicked;

static void bench_kick(struct registry_entry *e, const char *text)
{
	(void)e;
	(void)text;
	kicked++;
}

static void bench_match_kick(struct registry_entry *e, void *ctx)
{
	(void)ctx;
	registry_kick(e, "Kicked by admin.");
}

static double bench_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* Registers n sessions: users "a-<i>" and "b-<i>", two sessions each,
 * on backends 10.0.0.1 ("a") and 10.0.0.2 ("b"). */
static struct registry_entry *bench_populate(struct registry *reg, size_t n)
{
	struct registry_entry *e = xcalloc(n, sizeof(*e));
	struct ipaddr be[2];
	ipaddr_parse("10.0.0.1", &be[0]);
	ipaddr_parse("10.0.0.2", &be[1]);
	for (size_t i = 0; i < n; i++) {
		char user[32];
		size_t half = (i / 2) % 2;
		snprintf(user, sizeof(user), "%c-%zu", half == 0 ? 'a' : 'b', i / 4);
		e[i].id = i + 1;
		e[i].service = "imap";
		e[i].kick = bench_kick;
		e[i].client_ip.family = AF_INET;
		e[i].client_ip.u.v4.s_addr = htonl(0xc0000000u | (uint32_t)(i % 65536));
		registry_add(reg, &e[i]);
		registry_set_user(reg, &e[i], user, (uint32_t)i);
		registry_set_backend(reg, &e[i], &be[half], 143, NULL);
	}
	return e;
}

static void bench_case(const char *name, size_t n, const struct registry_filter *f)
{
	struct registry reg;
	registry_init(&reg);
	struct registry_entry *e = bench_populate(&reg, n);
	kicked = 0;
	double t0 = bench_now_ms();
	registry_match(&reg, f, bench_match_kick, NULL);
	double ms = bench_now_ms() - t0;
	printf("%-28s %zu of %zu sessions kicked in %.1f ms\n", name, kicked, n, ms);
	for (size_t i = 0; i < n; i++)
		registry_remove(&reg, &e[i]);
	registry_deinit(&reg);
	free(e);
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 200000;
	static const char *const wildcard[] = { "a-*" };
	struct registry_filter by_mask = {
		.user_masks = wildcard, .user_masks_count = 1, .logged_in = true,
	};
	bench_case("wildcard mask (full walk)", n, &by_mask);

	struct ipaddr be;
	ipaddr_parse("10.0.0.1", &be);
	struct registry_filter by_backend = { .dests = &be, .dests_count = 1 };
	bench_case("backend (backend index)", n, &by_backend);

	/* every "a-" user by exact name: n/4 names */
	size_t nnames = n / 4;
	char **names = xcalloc(nnames, sizeof(*names));
	for (size_t i = 0; i < nnames; i++)
		names[i] = xasprintf("a-%zu", i);
	struct registry_filter by_names = {
		.user_masks = (const char *const *)names, .user_masks_count = nnames,
	};
	bench_case("exact names (user index)", n, &by_names);
	/* the user index's point: one user among all, without a walk */
	static const char *const one[] = { "b-1234" };
	struct registry_filter by_one = { .user_masks = one, .user_masks_count = 1 };
	bench_case("one user (user index)", n, &by_one);
	for (size_t i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	return 0;
}
