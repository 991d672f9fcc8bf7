/* Worker pool: a mutex-protected job queue, N threads, and an eventfd
 * that wakes the loop to run done() for finished jobs in submit order
 * per thread. A job still in the queue can be taken back (its owner
 * went away), so no thread spends time on it. */
#include "auth/worker.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xmalloc.h"

struct worker_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct list todo;
	struct list done;
	bool stopping;
	unsigned int pending;	/* touched only by the loop thread */
	pthread_t *threads;
	unsigned int nthreads;
	int efd;
	struct event *ev;
};

static struct worker_job *worker_job_of(struct list_node *n)
{
	return n == NULL ? NULL : CONTAINER_OF(n, struct worker_job, node);
}

static void *worker_thread(void *arg)
{
	struct worker_pool *pool = arg;

	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (list_is_empty(&pool->todo) && !pool->stopping)
			pthread_cond_wait(&pool->cond, &pool->lock);
		if (pool->stopping)
			break;
		struct worker_job *job = worker_job_of(list_pop_head(&pool->todo));
		job->queued = false;
		pthread_mutex_unlock(&pool->lock);

		job->work(job);

		pthread_mutex_lock(&pool->lock);
		bool was_empty = list_is_empty(&pool->done);
		list_append(&pool->done, &job->node);
		if (was_empty) {
			uint64_t one = 1;
			if (write(pool->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
				abort(); /* the loop could never learn of results */
		}
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

static void worker_pool_drain(evutil_socket_t fd, short what, void *arg)
{
	struct worker_pool *pool = arg;
	uint64_t wakeups;
	(void)what;

	if (read(fd, &wakeups, sizeof(wakeups)) < 0 && errno != EAGAIN)
		log_error("worker pool: eventfd read failed: %m");
	pthread_mutex_lock(&pool->lock);
	struct list_node *n = list_take_all(&pool->done);
	pthread_mutex_unlock(&pool->lock);
	while (n != NULL) {
		struct list_node *next = n->next;
		pool->pending--;
		worker_job_of(n)->done(worker_job_of(n));
		n = next;
	}
}

struct worker_pool *worker_pool_new(struct event_base *base, unsigned int threads)
{
	struct worker_pool *pool = xcalloc(1, sizeof(*pool));

	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->cond, NULL);
	pool->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (pool->efd < 0)
		log_fatal("eventfd() failed: %m");
	pool->ev = event_new(base, pool->efd, EV_READ | EV_PERSIST,
			     worker_pool_drain, pool);
	event_add(pool->ev, NULL);
	pool->threads = xcalloc(threads, sizeof(*pool->threads));
	for (unsigned int i = 0; i < threads; i++) {
		int err = pthread_create(&pool->threads[i], NULL, worker_thread, pool);
		if (err != 0)
			log_fatal("pthread_create() failed: %s", strerror(err));
		pool->nthreads++;
	}
	return pool;
}

void worker_pool_free(struct worker_pool **poolp)
{
	struct worker_pool *pool = *poolp;
	if (pool == NULL)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stopping = true;
	pthread_cond_broadcast(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
	for (unsigned int i = 0; i < pool->nthreads; i++)
		pthread_join(pool->threads[i], NULL);
	/* finished jobs first, then the ones that never ran */
	worker_pool_drain(pool->efd, EV_READ, pool);
	struct worker_job *job;
	while ((job = worker_job_of(list_pop_head(&pool->todo))) != NULL) {
		job->queued = false;
		job->work = NULL; /* marks the job as cancelled */
		job->done(job);
	}
	event_free(pool->ev);
	close(pool->efd);
	pthread_cond_destroy(&pool->cond);
	pthread_mutex_destroy(&pool->lock);
	free(pool->threads);
	free(pool);
	*poolp = NULL;
}

void worker_pool_submit(struct worker_pool *pool, struct worker_job *job)
{
	pool->pending++;
	pthread_mutex_lock(&pool->lock);
	job->queued = true;
	list_append(&pool->todo, &job->node);
	pthread_cond_signal(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
}

bool worker_pool_cancel(struct worker_pool *pool, struct worker_job *job)
{
	pthread_mutex_lock(&pool->lock);
	bool queued = job->queued;
	if (queued) {
		list_unlink(&pool->todo, &job->node);
		job->queued = false;
	}
	pthread_mutex_unlock(&pool->lock);
	if (queued)
		pool->pending--;
	return queued;
}

unsigned int worker_pool_pending(const struct worker_pool *pool)
{
	return pool->pending;
}
