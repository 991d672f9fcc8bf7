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
	bool queued;			/* no thread took it yet (pool's lock) */
};

struct worker_pool *worker_pool_new(struct event_base *base, unsigned int threads);
/* Stops the threads; queued jobs that never ran get done() with their
 * work pointer set to NULL (cancelled), so their owners can free them. */
void worker_pool_free(struct worker_pool **pool);
void worker_pool_submit(struct worker_pool *pool, struct worker_job *job);
/* Takes back a job no thread has started: true if it was still waiting
 * (it is out of the pool, done() never runs, the owner frees it); false
 * if it is running or finished (done() runs as usual). Loop thread. */
bool worker_pool_cancel(struct worker_pool *pool, struct worker_job *job);
/* Jobs waiting or running (until their done()): for back-pressure. */
unsigned int worker_pool_pending(const struct worker_pool *pool);

#endif
