/* The line channel between a loftd and its upgrade's successor
 * (upgrade_link.h). */
#include "daemon/upgrade_link.h"

#include <errno.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/sbuf.h"
#include "common/xmalloc.h"
#include "proto/line.h"

/* a USER or HOLD line: a hash, an address, a tag and a user name */
#define UPGRADE_LINK_MAX_LINE 65536
#define UPGRADE_LINK_READ_SIZE 65536

struct upgrade_link {
	int fd;
	struct event *rd, *wr, *pending_ev;
	struct sbuf in, out;
	const struct upgrade_link_ops *ops;
	void *ctx;
	/* inside a callback: upgrade_link_free() only marks it dead, and
	 * the reader frees it once the callback returned */
	bool in_callback, dead;
};

static void upgrade_link_destroy(struct upgrade_link *link)
{
	event_free(link->rd);
	event_free(link->wr);
	event_free(link->pending_ev);
	close(link->fd);
	sbuf_free(&link->in);
	sbuf_free(&link->out);
	free(link);
}

/* true: the link is gone (the callback freed it) */
static bool upgrade_link_closed(struct upgrade_link *link, const char *why)
{
	event_del(link->rd);
	event_del(link->wr);
	link->in_callback = true;
	link->ops->closed(link->ctx, why);
	link->in_callback = false;
	if (link->dead) {
		upgrade_link_destroy(link);
		return true;
	}
	return false;
}

/* Every complete line in the input. true: the link is gone. */
static bool upgrade_link_lines(struct upgrade_link *link)
{
	for (;;) {
		size_t consumed;
		long len = line_next((const unsigned char *)sbuf_data(&link->in),
				     sbuf_len(&link->in), UPGRADE_LINK_MAX_LINE, &consumed);
		if (len == -1)
			return false;
		if (len == -2)
			return upgrade_link_closed(link, "a line over 64 KiB");
		char *line = sbuf_mdata(&link->in);
		line[len] = '\0';
		link->in_callback = true;
		link->ops->line(link->ctx, line);
		link->in_callback = false;
		if (link->dead) {
			upgrade_link_destroy(link);
			return true;
		}
		sbuf_consume(&link->in, consumed);
	}
}

static void upgrade_link_read(evutil_socket_t fd, short what, void *arg)
{
	struct upgrade_link *link = arg;
	(void)what;
	char *p = sbuf_reserve(&link->in, UPGRADE_LINK_READ_SIZE);
	ssize_t n = read(fd, p, UPGRADE_LINK_READ_SIZE);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		(void)upgrade_link_closed(link, n == 0 ? "closed" : strerror(errno));
		return;
	}
	sbuf_commit(&link->in, (size_t)n);
	(void)upgrade_link_lines(link);
}

static void upgrade_link_pending(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)upgrade_link_lines(arg);
}

static void upgrade_link_write(evutil_socket_t fd, short what, void *arg)
{
	struct upgrade_link *link = arg;
	(void)what;
	ssize_t n = write(fd, sbuf_data(&link->out), sbuf_len(&link->out));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		(void)upgrade_link_closed(link, strerror(errno));
		return;
	}
	sbuf_consume(&link->out, (size_t)n);
	if (sbuf_is_empty(&link->out))
		event_del(link->wr);
}

struct upgrade_link *upgrade_link_new(struct event_base *base, int fd,
				      const struct upgrade_link_ops *ops, void *ctx,
				      const char *pending, size_t pending_len)
{
	struct upgrade_link *link = xcalloc(1, sizeof(*link));
	link->fd = fd;
	link->ops = ops;
	link->ctx = ctx;
	evutil_make_socket_nonblocking(fd);
	link->rd = event_new(base, fd, EV_READ | EV_PERSIST, upgrade_link_read, link);
	link->wr = event_new(base, fd, EV_WRITE | EV_PERSIST, upgrade_link_write, link);
	link->pending_ev = event_new(base, -1, 0, upgrade_link_pending, link);
	event_add(link->rd, NULL);
	if (pending_len > 0) {
		sbuf_append(&link->in, pending, pending_len);
		event_active(link->pending_ev, 0, 0);
	}
	return link;
}

struct sbuf *upgrade_link_output(struct upgrade_link *link)
{
	return &link->out;
}

void upgrade_link_send(struct upgrade_link *link)
{
	if (!sbuf_is_empty(&link->out))
		event_add(link->wr, NULL);
}

void upgrade_link_free(struct upgrade_link **_link)
{
	struct upgrade_link *link = *_link;
	*_link = NULL;
	if (link == NULL)
		return;
	if (link->in_callback)
		link->dead = true;
	else
		upgrade_link_destroy(link);
}
