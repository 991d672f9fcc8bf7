/* A login's timeline and the event loop's turns, recorded only in a bench
 * build (make BENCH_HOOKS=1, -DLOFT_BENCH_HOOKS): a normal loftd has
 * neither the code nor the fields, and BENCH_MARK() is nothing.
 *
 * Each session marks when (monotonic ns) each step of its login happened
 * and when the loop turn it happened in began (epoll_wait() returned):
 * the difference is how long the ready descriptor waited behind the
 * turn's other callbacks. src/daemon/bench_loop.c times the turns. At
 * exit, loftd writes everything to the file $LOFT_BENCH_TRACE names, for
 * bench/tail.py: "turn <ns> <events>" per turn, then "login <at...>
 * <turn...>" per login that got its OK, each relative to its accept. */
#ifndef LOFT_COMMON_BENCH_TRACE_H
#define LOFT_COMMON_BENCH_TRACE_H

#ifdef LOFT_BENCH_HOOKS

#include <stdint.h>

enum bench_step {
	BENCH_ACCEPT,		/* accepted, greeting written */
	BENCH_LOGIN_READ,	/* the client's LOGIN parsed, auth asked */
	BENCH_AUTH_DONE,	/* the passdb's answer back on the loop */
	BENCH_BACKEND_CONNECTED,/* the backend's connect() finished */
	BENCH_BACKEND_GREETING,	/* the backend's greeting read, LOGIN sent */
	BENCH_BACKEND_OK,	/* the backend's OK read, the client's OK written */
	BENCH_LOGOUT_READ,	/* the client's LOGOUT read and sent on */
	BENCH_CLOSE,		/* the session closed */
	BENCH_STEPS
};

struct bench_trace {
	uint64_t at[BENCH_STEPS];	/* monotonic ns; 0: not (yet) */
	uint64_t turn[BENCH_STEPS];	/* the start of that loop turn */
};

/* The first time of step (later ones are the same step again). */
void bench_trace_mark(struct bench_trace *t, enum bench_step step);
/* Keeps the timeline of a login that got its OK. */
void bench_trace_keep(const struct bench_trace *t);
/* The loop: epoll_wait() returned n events / is called again. */
void bench_trace_turn_begin(int events);
void bench_trace_turn_end(void);

#define BENCH_MARK(t, step) bench_trace_mark((t), (step))
#define BENCH_KEEP(t) bench_trace_keep(t)

#else

#define BENCH_MARK(t, step) ((void)0)
#define BENCH_KEEP(t) ((void)0)

#endif
#endif
