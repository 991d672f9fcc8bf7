/* Line-protocol server on a UNIX socket. */
#include "admin/line_server.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/list.h"
#include "common/log.h"
#include "common/xmalloc.h"

#define LINE_SERVER_READ_CHUNK 4096

struct line_server {
	int fd;
	struct event *ev;
	struct event_base *base;
	char *path;
	size_t max_line;
	uid_t *uids;
	size_t uids_count;
	unsigned int max_clients;
	unsigned int clients_count;
	const struct line_server_ops *ops;
	void *ctx;
	struct list clients;
};

struct line_client {
	struct list_node node;
	struct line_server *server;
	int fd;
	struct event *ev;
	struct sbuf in;
	struct sbuf out;
	bool closing;
	bool suspended;		/* waiting for an asynchronous reply */
	void *data;
};

static void line_client_event(evutil_socket_t fd, short what, void *arg);

static void line_client_free(struct line_client *c)
{
	struct line_server *s = c->server;
	if (s->ops->disconnected != NULL)
		s->ops->disconnected(c, s->ctx);
	list_unlink(&s->clients, &c->node);
	s->clients_count--;
	event_free(c->ev);
	close(c->fd);
	sbuf_free(&c->in);
	sbuf_free(&c->out);
	free(c);
}

/* Waits to write while output is pending, else to read (also while
 * suspended: a client that hangs up meanwhile is noticed). */
static void line_client_update(struct line_client *c)
{
	short flags = EV_PERSIST | (sbuf_len(&c->out) > 0 ? EV_WRITE : EV_READ);
	event_del(c->ev);
	event_assign(c->ev, c->server->base, c->fd, flags, line_client_event, c);
	event_add(c->ev, NULL);
}

/* Hands over complete lines while no reply is waiting to be sent. */
static void line_client_process(struct line_client *c)
{
	struct line_server *s = c->server;
	while (!c->closing && !c->suspended && sbuf_len(&c->out) == 0 &&
	       sbuf_len(&c->in) > 0) {
		char *data = sbuf_mdata(&c->in);
		char *lf = memchr(data, '\n', sbuf_len(&c->in));
		if (lf == NULL) {
			if (sbuf_len(&c->in) > s->max_line) {
				log_warning("%s: client line too long, disconnecting", s->path);
				c->closing = true;
			}
			return;
		}
		*lf = '\0';
		if (lf > data && lf[-1] == '\r')
			lf[-1] = '\0';
		s->ops->line(c, data, s->ctx);
		sbuf_consume(&c->in, (size_t)(lf - data) + 1);
	}
}

static void line_client_event(evutil_socket_t fd, short what, void *arg)
{
	struct line_client *c = arg;
	(void)fd;

	if ((what & EV_WRITE) != 0) {
		while (sbuf_len(&c->out) > 0) {
			ssize_t n = send(c->fd, sbuf_data(&c->out), sbuf_len(&c->out),
					 MSG_NOSIGNAL);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			if (n <= 0) {
				line_client_free(c);
				return;
			}
			sbuf_consume(&c->out, (size_t)n);
		}
		sbuf_release_if_empty(&c->out);
	}
	if ((what & EV_READ) != 0) {
		char *buf = sbuf_reserve(&c->in, LINE_SERVER_READ_CHUNK);
		ssize_t n = read(c->fd, buf, LINE_SERVER_READ_CHUNK);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			line_client_free(c);
			return;
		}
		if (n > 0)
			sbuf_commit(&c->in, (size_t)n);
	}
	line_client_process(c);
	if (c->closing && sbuf_len(&c->out) == 0) {
		line_client_free(c);
		return;
	}
	line_client_update(c);
}

static bool line_server_uid_allowed(const struct line_server *s, uid_t uid)
{
	if (uid == 0 || uid == geteuid())
		return true;
	for (size_t i = 0; i < s->uids_count; i++) {
		if (s->uids[i] == uid)
			return true;
	}
	return false;
}

/* The peer's uid and the client count; logs a refusal. */
static bool line_server_admit(const struct line_server *s, int cfd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		log_error("%s: getsockopt(SO_PEERCRED) failed: %m", s->path);
		return false;
	}
	if (!line_server_uid_allowed(s, cred.uid)) {
		log_warning("%s: refused a connection from uid %u (pid %d): not root, "
			    "loftd's user or one of admin.allow_users", s->path,
			    (unsigned int)cred.uid, (int)cred.pid);
		return false;
	}
	if (s->clients_count >= s->max_clients) {
		log_warning("%s: refused a connection from pid %d: %u clients are "
			    "connected (admin.max_clients)", s->path, (int)cred.pid,
			    s->clients_count);
		return false;
	}
	return true;
}

static void line_server_accept(evutil_socket_t fd, short what, void *arg)
{
	struct line_server *s = arg;
	(void)what;

	int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0) {
		if (errno != EAGAIN && errno != EINTR)
			log_error("%s: accept() failed: %m", s->path);
		return;
	}
	if (!line_server_admit(s, cfd)) {
		close(cfd);
		return;
	}
	struct line_client *c = xcalloc(1, sizeof(*c));
	c->server = s;
	c->fd = cfd;
	list_append(&s->clients, &c->node);
	s->clients_count++;
	c->ev = event_new(s->base, cfd, EV_READ | EV_PERSIST, line_client_event, c);
	if (s->ops->connected != NULL)
		s->ops->connected(c, s->ctx);
	line_client_update(c);
}

/* A socket file that accepts connections belongs to a running daemon. */
static bool line_server_socket_in_use(const struct sockaddr_un *sun)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	bool in_use = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0;
	close(fd);
	return in_use;
}

struct line_server *line_server_new(struct event_base *base, const char *path,
				    size_t max_line, const struct line_server_access *access,
				    const struct line_server_ops *ops, void *ctx,
				    char **error_r)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(sun.sun_path)) {
		*error_r = xasprintf("socket path too long: %s", path);
		return NULL;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (line_server_socket_in_use(&sun)) {
		*error_r = xasprintf("%s is in use: is another loftd running?", path);
		return NULL;
	}
	unlink(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* with allowed uids, the peer check is the gate */
	mode_t old = umask(access->uids_count > 0 ? 0111 : 0177);
	int ret = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (ret < 0 || listen(fd, 64) < 0) {
		*error_r = xasprintf("cannot listen on %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	struct line_server *s = xcalloc(1, sizeof(*s));
	s->fd = fd;
	s->base = base;
	s->path = xstrdup(path);
	s->max_line = max_line;
	if (access->uids_count > 0)
		s->uids = xmemdup(access->uids, access->uids_count * sizeof(uid_t));
	s->uids_count = access->uids_count;
	s->max_clients = access->max_clients;
	s->ops = ops;
	s->ctx = ctx;
	list_init(&s->clients);
	s->ev = event_new(base, fd, EV_READ | EV_PERSIST, line_server_accept, s);
	event_add(s->ev, NULL);
	return s;
}

int line_server_move(struct line_server *s, const char *path, char **error_r)
{
	if (rename(s->path, path) < 0) {
		*error_r = xasprintf("cannot rename %s to %s: %s", s->path, path,
				     strerror(errno));
		return -1;
	}
	free(s->path);
	s->path = xstrdup(path);
	return 0;
}

void line_server_free(struct line_server **sp)
{
	struct line_server *s = *sp;
	if (s == NULL)
		return;
	while (!list_is_empty(&s->clients))
		line_client_free(CONTAINER_OF(s->clients.head, struct line_client, node));
	event_free(s->ev);
	close(s->fd);
	unlink(s->path);
	free(s->path);
	free(s->uids);
	free(s);
	*sp = NULL;
}

struct sbuf *line_client_output(struct line_client *c)
{
	return &c->out;
}

void line_client_suspend(struct line_client *c)
{
	c->suspended = true;
}

void line_client_resume(struct line_client *c)
{
	c->suspended = false;
	/* as if the socket were writable: send, then take the next lines */
	event_active(c->ev, EV_WRITE, 1);
}

void line_client_close_after_output(struct line_client *c)
{
	c->closing = true;
}

void line_client_set_data(struct line_client *c, void *data)
{
	c->data = data;
}

void *line_client_get_data(struct line_client *c)
{
	return c->data;
}
