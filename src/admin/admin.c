/* Admin socket server: line protocol with a command table. */
#include "admin/admin.h"

#include <errno.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "admin/admin_wire.h"
#include "common/list.h"
#include "common/log.h"
#include "common/sbuf.h"
#include "common/tabescape.h"
#include "common/xmalloc.h"
#include "director/director.h"
#include "registry/registry.h"

#define ADMIN_MAX_ARGS 16

struct admin {
	int fd;
	struct event *ev;
	struct event_base *base;
	char *path;
	struct registry *registry;
	struct director *director;
	struct list clients;
};

struct admin_client {
	struct list_node node;
	struct admin *admin;
	int fd;
	struct event *ev;
	struct sbuf in;
	struct sbuf out;
	bool handshaked;
	bool closing;	/* close once the output is sent */
};

struct admin_cmd {
	const char *name;
	int min_args, max_args;
	void (*handler)(struct admin_client *c, char **args, int nargs);
};

static void admin_client_free(struct admin_client *c)
{
	list_unlink(&c->admin->clients, &c->node);
	event_free(c->ev);
	close(c->fd);
	sbuf_free(&c->in);
	sbuf_free(&c->out);
	free(c);
}

static void admin_append_field(struct sbuf *out, const char *value, bool first)
{
	if (!first)
		sbuf_appendc(out, '\t');
	tabescape_append(out, value);
}

/* ---- commands ------------------------------------------------------- */

static void cmd_session_list(struct admin_client *c, char **args, int nargs)
{
	struct registry_entry *e;
	char ip[IPADDR_STRLEN], num[32];
	(void)args;
	(void)nargs;

	REGISTRY_FOR_EACH(e, c->admin->registry) {
		struct sbuf *o = &c->out;
		sbuf_appendf(o, "%016llx", (unsigned long long)e->id);
		admin_append_field(o, e->service, false);
		admin_append_field(o, e->user != NULL ? e->user : "", false);
		admin_append_field(o, registry_state_name(e->state), false);
		admin_append_field(o, ipaddr_to_str(&e->client_ip, ip), false);
		sbuf_appendf(o, "\t%u", e->client_port);
		admin_append_field(o, ipaddr_to_str(&e->backend_ip, ip), false);
		if (e->backend_port != 0)
			snprintf(num, sizeof(num), "%u", e->backend_port);
		else
			num[0] = '\0';
		admin_append_field(o, num, false);
		sbuf_appendf(o, "\t%llu\t%ld", (unsigned long long)(e->start_ms / 1000),
			     (long)getpid());
		for (size_t i = 0; i < e->alt_count; i++) {
			sbuf_appendc(o, '\t');
			tabescape_append(o, e->alt[i].field);
			sbuf_appendc(o, '=');
			tabescape_append(o, e->alt[i].value);
		}
		sbuf_appendc(o, '\n');
	}
	sbuf_appendc(&c->out, '\n');
}

/* §4.2: ip vhost_count user_count tag U|D last_updown_change */
static void cmd_host_list(struct admin_client *c, char **args, int nargs)
{
	const struct director_host_list *hosts = director_hosts(c->admin->director);
	(void)args;
	(void)nargs;

	for (size_t i = 0; i < hosts->count; i++) {
		const struct director_host *h = hosts->hosts[i];
		sbuf_appendf(&c->out, "%s\t%u\t%u\t", h->ip_str, h->vhost_count,
			     h->user_count);
		tabescape_append(&c->out, h->tag);
		sbuf_appendf(&c->out, "\t%c\t%lld\n", h->down ? 'D' : 'U',
			     (long long)h->last_updown);
	}
	sbuf_appendc(&c->out, '\n');
}

static const struct admin_cmd admin_cmds[] = {
	{ "HOST-LIST", 0, 0, cmd_host_list },
	{ ADMIN_CMD_SESSION_LIST, 0, 0, cmd_session_list },
};

/* ---- connection handling --------------------------------------------- */

static void admin_client_error(struct admin_client *c, const char *fmt, ...)
	ATTR_FORMAT(2, 3);

static void admin_client_error(struct admin_client *c, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	sbuf_appends(&c->out, "ERROR\t");
	tabescape_append(&c->out, text);
	sbuf_appendc(&c->out, '\n');
}

static void admin_client_line(struct admin_client *c, char *line)
{
	if (!c->handshaked) {
		if (strncmp(line, ADMIN_VERSION_PREFIX, strlen(ADMIN_VERSION_PREFIX)) != 0) {
			log_warning("admin: client is not a director-doveadm v1 client");
			c->closing = true;
			return;
		}
		c->handshaked = true;
		return;
	}
	char *args[ADMIN_MAX_ARGS + 1];
	int n = tabsplit_inplace(line, args, ADMIN_MAX_ARGS + 1);
	if (n <= 0) {
		admin_client_error(c, n == 0 ? "empty command" : "too many parameters");
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(admin_cmds); i++) {
		const struct admin_cmd *cmd = &admin_cmds[i];
		if (strcmp(cmd->name, args[0]) != 0)
			continue;
		if (n - 1 < cmd->min_args || n - 1 > cmd->max_args) {
			admin_client_error(c, "%s: wrong number of parameters", cmd->name);
			return;
		}
		cmd->handler(c, args + 1, n - 1);
		return;
	}
	admin_client_error(c, "unknown command: %s", args[0]);
}

static void admin_client_event(evutil_socket_t fd, short what, void *arg);

/* Waits to write while output is pending, else to read. */
static void admin_client_update(struct admin_client *c)
{
	short flags = EV_PERSIST | (sbuf_len(&c->out) > 0 ? EV_WRITE : EV_READ);
	event_del(c->ev);
	event_assign(c->ev, c->admin->base, c->fd, flags, admin_client_event, c);
	event_add(c->ev, NULL);
}

static void admin_client_event(evutil_socket_t fd, short what, void *arg)
{
	struct admin_client *c = arg;
	(void)fd;

	if ((what & EV_WRITE) != 0) {
		while (sbuf_len(&c->out) > 0) {
			ssize_t n = send(c->fd, sbuf_data(&c->out), sbuf_len(&c->out),
					 MSG_NOSIGNAL);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			if (n <= 0) {
				admin_client_free(c);
				return;
			}
			sbuf_consume(&c->out, (size_t)n);
		}
	}
	if ((what & EV_READ) != 0) {
		char *buf = sbuf_reserve(&c->in, 4096);
		ssize_t n = read(c->fd, buf, 4096);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			admin_client_free(c);
			return;
		}
		if (n > 0)
			sbuf_commit(&c->in, (size_t)n);
	}
	/* every complete line is answered, in order: none is dropped */
	while (!c->closing && sbuf_len(&c->out) == 0 && sbuf_len(&c->in) > 0) {
		char *data = sbuf_mdata(&c->in);
		char *lf = memchr(data, '\n', sbuf_len(&c->in));
		if (lf == NULL) {
			if (sbuf_len(&c->in) > ADMIN_MAX_LINE) {
				admin_client_error(c, "line too long");
				c->closing = true;
			}
			break;
		}
		*lf = '\0';
		size_t len = (size_t)(lf - data) + 1;
		admin_client_line(c, data);
		sbuf_consume(&c->in, len);
	}
	if (c->closing && sbuf_len(&c->out) == 0) {
		admin_client_free(c);
		return;
	}
	admin_client_update(c);
}

static void admin_accept(evutil_socket_t fd, short what, void *arg)
{
	struct admin *a = arg;
	(void)what;

	int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0) {
		if (errno != EAGAIN && errno != EINTR)
			log_error("admin: accept() failed: %m");
		return;
	}
	struct admin_client *c = xcalloc(1, sizeof(*c));
	c->admin = a;
	c->fd = cfd;
	list_append(&a->clients, &c->node);
	c->ev = event_new(a->base, cfd, EV_READ | EV_PERSIST, admin_client_event, c);
	sbuf_appends(&c->out, ADMIN_VERSION_LINE);
	admin_client_update(c);
}

/* A socket file that accepts connections belongs to a running loftd. */
static bool admin_socket_in_use(const struct sockaddr_un *sun)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	bool in_use = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0;
	close(fd);
	return in_use;
}

struct admin *admin_new(struct event_base *base, const char *path,
			struct registry *registry, struct director *director,
			char **error_r)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(sun.sun_path)) {
		*error_r = xasprintf("admin socket path too long: %s", path);
		return NULL;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (admin_socket_in_use(&sun)) {
		*error_r = xasprintf("%s is in use: is another loftd running?", path);
		return NULL;
	}
	unlink(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	mode_t old = umask(0177);
	int ret = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (ret < 0 || listen(fd, 64) < 0) {
		*error_r = xasprintf("cannot listen on %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	struct admin *a = xcalloc(1, sizeof(*a));
	a->fd = fd;
	a->base = base;
	a->path = xstrdup(path);
	a->registry = registry;
	a->director = director;
	a->ev = event_new(base, fd, EV_READ | EV_PERSIST, admin_accept, a);
	event_add(a->ev, NULL);
	return a;
}

void admin_free(struct admin **ap)
{
	struct admin *a = *ap;
	if (a == NULL)
		return;
	while (!list_is_empty(&a->clients))
		admin_client_free(CONTAINER_OF(a->clients.head, struct admin_client, node));
	event_free(a->ev);
	close(a->fd);
	unlink(a->path);
	free(a->path);
	free(a);
	*ap = NULL;
}
