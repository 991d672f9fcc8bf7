/* The bench build's view of the event loop's turns (bench_trace.h):
 * loftd defines epoll_wait() itself, so libevent's calls come here (the
 * executable's symbol comes first in the dynamic linker's search), and
 * each turn is timed from the return of one call to the next one. Only
 * in a bench build (make BENCH_HOOKS=1); loftd's only epoll_wait() caller
 * is the loop's thread. */
#ifdef LOFT_BENCH_HOOKS

#include <unistd.h>
#include <sys/epoll.h>
#include <sys/syscall.h>

#include "common/bench_trace.h"

int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
	bench_trace_turn_end();
	int n = (int)syscall(SYS_epoll_pwait, epfd, events, maxevents, timeout, NULL, 8);
	bench_trace_turn_begin(n);
	return n;
}

#endif
