/* Relay pumping with splice() or buffers, and the pipe and buffer pools
 * (one set per event loop, so several loop threads need no lock). */
#include "core/relay.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/xmalloc.h"

#define RELAY_PIPE_SIZE 65536
/* Bulk transfers move RELAY_PIPE_BULK_SIZE per splice pair instead of
 * 64 KiB, which costs about a third less CPU per GB (docs/BENCHMARKS.md).
 * A pipe's pages are only pinned while data is in flight, but the kernel
 * counts its capacity against fs.pipe-user-pages-soft for unprivileged
 * users, so few pipes grow. */
#define RELAY_PIPE_BULK_MAX 32
#define RELAY_BUF_SIZE 16384
#define RELAY_POOL_MAX 64
/* a direction yields after this many transfers so one fast session
 * cannot hold the loop */
#define RELAY_ROUNDS 16

struct relay_pipe {
	int fds[2];
	size_t size;
};

/* One per event loop (thread): no locks. */
struct relay_pools {
	struct relay_pipe pipes[RELAY_POOL_MAX];
	size_t pipe_count;
	size_t bulk_count;		/* grown pipes, pooled or in use */
	bool bulk_refused;		/* the kernel said no: stop asking */
	char *bufs[RELAY_POOL_MAX];
	size_t buf_count;
	uint64_t to_backend, to_client;	/* bytes delivered */
};

struct relay_pools *relay_pools_new(void)
{
	return xcalloc(1, sizeof(struct relay_pools));
}

void relay_pools_bytes(const struct relay_pools *pools, uint64_t *to_backend_r,
		       uint64_t *to_client_r)
{
	*to_backend_r = pools->to_backend;
	*to_client_r = pools->to_client;
}

static int relay_pipe_get(struct relay_pools *pools, struct relay_dir *d)
{
	if (pools->pipe_count > 0) {
		const struct relay_pipe *p = &pools->pipes[--pools->pipe_count];
		d->pipe_r = p->fds[0];
		d->pipe_w = p->fds[1];
		d->pipe_size = p->size;
		return 0;
	}
	int fds[2];
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
		return -1;
	d->pipe_r = fds[0];
	d->pipe_w = fds[1];
	d->pipe_size = RELAY_PIPE_SIZE;
	return 0;
}

/* Called when a read filled the pipe: the source is streaming. */
static void relay_pipe_grow(struct relay_pools *pools, struct relay_dir *d)
{
	if (d->pipe_size >= RELAY_PIPE_BULK_SIZE || pools->bulk_refused ||
	    pools->bulk_count >= RELAY_PIPE_BULK_MAX)
		return;
	int size = fcntl(d->pipe_w, F_SETPIPE_SZ, RELAY_PIPE_BULK_SIZE);
	if (size < RELAY_PIPE_BULK_SIZE) {
		pools->bulk_refused = true;
		return;
	}
	d->pipe_size = (size_t)size;
	pools->bulk_count++;
}

static void relay_pipe_close(struct relay_pools *pools, int fds[2], size_t size)
{
	close(fds[0]);
	close(fds[1]);
	if (size > RELAY_PIPE_SIZE)
		pools->bulk_count--;
}

static void relay_pipe_put(struct relay_pools *pools, struct relay_dir *d)
{
	if (d->pipe_r < 0)
		return;
	int fds[2] = { d->pipe_r, d->pipe_w };
	if (d->pipe_len == 0 && pools->pipe_count < RELAY_POOL_MAX) {
		pools->pipes[pools->pipe_count++] =
			(struct relay_pipe){ { fds[0], fds[1] }, d->pipe_size };
	} else {
		/* a pipe with data in it cannot be reused */
		relay_pipe_close(pools, fds, d->pipe_size);
	}
	d->pipe_r = d->pipe_w = -1;
	d->pipe_len = 0;
}

static void relay_buf_put(struct relay_pools *pools, struct relay_dir *d)
{
	if (d->buf == NULL)
		return;
	if (pools->buf_count < RELAY_POOL_MAX)
		pools->bufs[pools->buf_count++] = d->buf;
	else
		free(d->buf);
	d->buf = NULL;
	d->buf_off = d->buf_len = 0;
}

static void relay_buf_get(struct relay_pools *pools, struct relay_dir *d)
{
	d->buf = pools->buf_count > 0 ? pools->bufs[--pools->buf_count] :
		xmalloc(RELAY_BUF_SIZE);
}

void relay_pools_free(struct relay_pools **poolsp)
{
	struct relay_pools *pools = *poolsp;
	if (pools == NULL)
		return;
	while (pools->pipe_count > 0) {
		struct relay_pipe *p = &pools->pipes[--pools->pipe_count];
		relay_pipe_close(pools, p->fds, p->size);
	}
	while (pools->buf_count > 0)
		free(pools->bufs[--pools->buf_count]);
	free(pools);
	*poolsp = NULL;
}

static void relay_dir_init(struct relay_dir *d, struct conn *src, struct conn *dst,
			   struct sbuf *head)
{
	memset(d, 0, sizeof(*d));
	d->src = src;
	d->dst = dst;
	d->head = *head;
	memset(head, 0, sizeof(*head));
	d->pipe_r = d->pipe_w = -1;
	d->splice = !conn_is_tls(src) && !conn_is_tls(dst);
	/* what the login phase left in the socket raises an event */
	d->drained = true;
}

void relay_start(struct relay *r, struct relay_pools *pools, struct conn *client,
		 struct conn *backend, struct sbuf *to_client, struct sbuf *to_backend)
{
	r->pools = pools;
	relay_dir_init(&r->up, client, backend, to_backend);
	relay_dir_init(&r->down, backend, client, to_client);
	client->fired = backend->fired = 0; /* reported to the login phase */
}

void relay_stop(struct relay *r)
{
	struct relay_dir *dirs[] = { &r->up, &r->down };
	for (size_t i = 0; i < 2; i++) {
		relay_pipe_put(r->pools, dirs[i]);
		relay_buf_put(r->pools, dirs[i]);
		sbuf_free(&dirs[i]->head);
	}
}

bool relay_client_pending(const struct relay *r)
{
	const struct relay_dir *d = &r->down;
	return sbuf_len(&d->head) > 0 || d->pipe_len > 0 || d->buf_len > 0;
}

enum relay_step {
	RELAY_STEP_MORE,	/* progress: go round again */
	RELAY_STEP_WAIT,	/* blocked: wait for an event */
	RELAY_STEP_YIELD,	/* not blocked, but others must run too */
	RELAY_STEP_DONE,	/* the source ended and everything is sent */
	RELAY_STEP_ERROR,
};

static enum relay_step relay_write_result(struct relay_dir *d, ssize_t n)
{
	if (n > 0)
		return RELAY_STEP_MORE;
	if (n == CONN_AGAIN) {
		d->want_dst_write = true;
		return RELAY_STEP_WAIT;
	}
	return RELAY_STEP_ERROR;
}

static enum relay_step relay_step_splice(struct relay_pools *pools, struct relay_dir *d)
{
	if (d->pipe_len > 0) {
		ssize_t n = splice(d->pipe_r, NULL, d->dst->fd, NULL, d->pipe_len,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0) {
			d->pipe_len -= (size_t)n;
			d->dst->bytes_out += (uint64_t)n;
			return RELAY_STEP_MORE;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			d->want_dst_write = true;
			return RELAY_STEP_WAIT;
		}
		d->dst->error = n == 0 ? "splice wrote nothing" : strerror(errno);
		return RELAY_STEP_ERROR;
	}
	if (d->eof)
		return RELAY_STEP_DONE;
	/* Level-triggered events: a socket a short read drained announces
	 * more data, so reading it again now would only see EAGAIN (one
	 * syscall saved per message, three per login). */
	if (d->drained && (d->src->fired & EV_READ) == 0) {
		relay_pipe_put(pools, d); /* idle: hold no pipe */
		d->want_src_read = true;
		return RELAY_STEP_WAIT;
	}
	d->src->fired &= (short)~EV_READ;
	if (d->pipe_r < 0 && relay_pipe_get(pools, d) < 0) {
		/* out of descriptors: this direction copies instead */
		d->splice = false;
		return RELAY_STEP_MORE;
	}
	ssize_t n = splice(d->src->fd, NULL, d->pipe_w, NULL, d->pipe_size,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	if (n > 0) {
		d->pipe_len = (size_t)n;
		d->src->bytes_in += (uint64_t)n;
		d->drained = (size_t)n < d->pipe_size;
		if (!d->drained)
			relay_pipe_grow(pools, d);
		return RELAY_STEP_MORE;
	}
	if (n == 0) {
		d->eof = true;
		relay_pipe_put(pools, d);
		return RELAY_STEP_DONE;
	}
	if (errno == EAGAIN || errno == EINTR) {
		relay_pipe_put(pools, d); /* idle: hold no pipe */
		d->drained = true;
		d->want_src_read = true;
		return RELAY_STEP_WAIT;
	}
	d->src->error = strerror(errno);
	return RELAY_STEP_ERROR;
}

static enum relay_step relay_step_copy(struct relay_pools *pools, struct relay_dir *d)
{
	if (d->buf_len > 0) {
		ssize_t n = conn_write(d->dst, d->buf + d->buf_off, d->buf_len);
		if (n > 0) {
			d->buf_off += (size_t)n;
			d->buf_len -= (size_t)n;
		}
		return relay_write_result(d, n);
	}
	if (d->eof)
		return RELAY_STEP_DONE;
	/* as with splice: a plain socket that a short read drained
	 * announces more (TLS may hold records no event announces) */
	if (d->drained && !conn_is_tls(d->src) && (d->src->fired & EV_READ) == 0) {
		/* idle: hold no buffer, nor the pipe a watched direction
		 * spliced with while its source streamed */
		relay_buf_put(pools, d);
		relay_pipe_put(pools, d);
		d->want_src_read = true;
		return RELAY_STEP_WAIT;
	}
	d->src->fired &= (short)~EV_READ;
	if (d->buf == NULL)
		relay_buf_get(pools, d);
	ssize_t n = conn_read(d->src, d->buf, RELAY_BUF_SIZE);
	if (n > 0) {
		d->buf_off = 0;
		d->buf_len = (size_t)n;
		d->drained = (size_t)n < RELAY_BUF_SIZE;
		if (d->watch != NULL)
			d->watch(d->watch_ctx, d->buf, (size_t)n);
		return RELAY_STEP_MORE;
	}
	relay_buf_put(pools, d); /* idle or done: hold no buffer */
	relay_pipe_put(pools, d);
	if (n == 0) {
		d->eof = true;
		return RELAY_STEP_DONE;
	}
	if (n == CONN_AGAIN) {
		d->drained = true;
		d->want_src_read = true;
		return RELAY_STEP_WAIT;
	}
	return RELAY_STEP_ERROR;
}

/* A direction splices when both ends are plain, except that a watched
 * one copies while its source is not streaming; a pipe or a buffer that
 * still holds bytes is emptied first, in order. */
static bool relay_dir_copies(const struct relay_dir *d)
{
	if (d->pipe_len > 0)
		return false;
	if (d->buf_len > 0)
		return true;
	return !d->splice || (d->watch != NULL && d->drained);
}

static enum relay_step relay_dir_pump(struct relay_pools *pools, struct relay_dir *d)
{
	d->want_src_read = d->want_dst_write = false;
	while (sbuf_len(&d->head) > 0) {
		ssize_t n = conn_write(d->dst, sbuf_data(&d->head), sbuf_len(&d->head));
		if (n > 0)
			sbuf_consume(&d->head, (size_t)n);
		enum relay_step st = relay_write_result(d, n);
		if (st != RELAY_STEP_MORE)
			return st;
	}
	sbuf_free(&d->head);
	for (int round = 0; round < RELAY_ROUNDS; round++) {
		enum relay_step st = relay_dir_copies(d) ? relay_step_copy(pools, d) :
			relay_step_splice(pools, d);
		if (st != RELAY_STEP_MORE)
			return st;
	}
	return RELAY_STEP_YIELD;
}

static const char *relay_error_text(const struct relay_dir *d, bool up)
{
	static char buf[160];
	const struct conn *failed = d->dst->error != NULL ? d->dst : d->src;
	bool failed_is_client = (failed == d->src) == up;
	snprintf(buf, sizeof(buf), "%s connection failed: %s",
		 failed_is_client ? "client" : "backend",
		 failed->error != NULL ? failed->error : "unknown error");
	return buf;
}

void relay_watch(struct relay *r, relay_watch_cb *watch, void *ctx)
{
	r->up.watch = watch;
	r->up.watch_ctx = ctx;
}

int relay_pump(struct relay *r, enum relay_end *end_r, const char **reason_r)
{
	uint64_t to_backend = r->up.dst->bytes_out, to_client = r->down.dst->bytes_out;
	enum relay_step up = relay_dir_pump(r->pools, &r->up);
	enum relay_step down = relay_dir_pump(r->pools, &r->down);
	r->pools->to_backend += r->up.dst->bytes_out - to_backend;
	r->pools->to_client += r->down.dst->bytes_out - to_client;

	*end_r = RELAY_END_ERROR;
	if (up == RELAY_STEP_ERROR) {
		*reason_r = relay_error_text(&r->up, true);
		return -1;
	}
	if (down == RELAY_STEP_ERROR) {
		*reason_r = relay_error_text(&r->down, false);
		return -1;
	}
	if (down == RELAY_STEP_DONE) {
		/* everything the backend sent is out: nothing more can come */
		*end_r = r->up.shut ? RELAY_END_CLIENT : RELAY_END_BACKEND;
		*reason_r = r->up.shut ? "disconnected by client" : "disconnected by backend";
		return -1;
	}
	if (up == RELAY_STEP_DONE && !r->up.shut) {
		/* the client said all it will (maybe a half-close after its
		 * last command): tell the backend, and let its answer through
		 * (HAProxy and nginx do the same) */
		conn_shutdown_write(r->up.dst);
		r->up.shut = true;
	}
	*end_r = RELAY_END_NONE;
	conn_set_interest(r->up.src, r->up.want_src_read, r->down.want_dst_write);
	conn_set_interest(r->down.src, r->down.want_src_read, r->up.want_dst_write);
	return up == RELAY_STEP_YIELD || down == RELAY_STEP_YIELD ? 1 : 0;
}
