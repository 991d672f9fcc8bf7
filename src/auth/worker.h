/* A small pool of threads for work that must not run on the event loop
 * (password hashing). A job runs work() on a worker thread, then done()
 * on the loop thread. Jobs carry no pointers into loop-owned objects
 * that may die meanwhile: results are matched back by id. */
#ifndef LOFT_AUTH_WORKER_H
#define LOFT_AUTH_WORKER_H

#include <stdbool.h>

#include "common/list.h"

struct event_base;
struct worker_pool;

struct worker_job {
	struct list_node node;		/* queue link, owned by the pool */
	void (*work)(struct worker_job *job);	/* on a worker thread */
	void (*done)(struct worker_job *job);	/* on the loop thread */
};

struct worker_pool *worker_pool_new(struct event_base *base, unsigned int threads);
/* Stops the threads; queued jobs that never ran get done() with their
 * work pointer set to NULL (cancelled), so their owners can free them. */
void worker_pool_free(struct worker_pool **pool);
void worker_pool_submit(struct worker_pool *pool, struct worker_job *job);
/* Jobs waiting or running: for back-pressure and tests. */
unsigned int worker_pool_pending(const struct worker_pool *pool);

#endif
