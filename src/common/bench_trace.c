/* The bench build's login timelines and loop turns (bench_trace.h), kept
 * in memory and written once, at exit. */
#ifdef LOFT_BENCH_HOOKS

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/bench_trace.h"
#include "common/xmalloc.h"

struct bench_turn {
	uint64_t ns;
	int events;
};

static struct {
	uint64_t turn_start;	/* when the current turn's epoll_wait returned */
	int turn_events;
	struct bench_turn *turns;
	size_t nturns, turns_cap;
	struct bench_trace *logins;
	size_t nlogins, logins_cap;
} bench;

static uint64_t bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_trace_mark(struct bench_trace *t, enum bench_step step)
{
	if (t == NULL || t->at[step] != 0)
		return;
	t->at[step] = bench_now();
	t->turn[step] = bench.turn_start;
}

void bench_trace_keep(const struct bench_trace *t)
{
	if (t->at[BENCH_BACKEND_OK] == 0)
		return;
	bench.logins = xgrow(bench.logins, &bench.logins_cap, bench.nlogins + 1,
			     sizeof(*bench.logins));
	bench.logins[bench.nlogins++] = *t;
}

void bench_trace_turn_begin(int events)
{
	bench.turn_start = bench_now();
	bench.turn_events = events;
}

/* A turn in which nothing happened (epoll_wait() timed out) is kept
 * too: its duration is the loop's own overhead. */
void bench_trace_turn_end(void)
{
	if (bench.turn_start == 0)
		return;
	bench.turns = xgrow(bench.turns, &bench.turns_cap, bench.nturns + 1,
			    sizeof(*bench.turns));
	bench.turns[bench.nturns++] = (struct bench_turn){
		bench_now() - bench.turn_start, bench.turn_events };
	bench.turn_start = 0;
}

__attribute__((destructor)) static void bench_trace_write(void)
{
	const char *path = getenv("LOFT_BENCH_TRACE");
	FILE *f = path != NULL ? fopen(path, "w") : NULL;
	if (f == NULL)
		return;
	for (size_t i = 0; i < bench.nturns; i++)
		fprintf(f, "turn %llu %d\n", (unsigned long long)bench.turns[i].ns,
			bench.turns[i].events);
	for (size_t i = 0; i < bench.nlogins; i++) {
		const struct bench_trace *t = &bench.logins[i];
		uint64_t t0 = t->at[BENCH_ACCEPT];
		fputs("login", f);
		for (int s = 0; s < BENCH_STEPS; s++)
			fprintf(f, " %lld", t->at[s] ? (long long)(t->at[s] - t0) : -1LL);
		for (int s = 0; s < BENCH_STEPS; s++)
			fprintf(f, " %lld", t->turn[s] ? (long long)(t->turn[s] - t0) : -1LL);
		fputc('\n', f);
	}
	fclose(f);
}

#endif
