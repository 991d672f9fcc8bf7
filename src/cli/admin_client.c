/* Admin socket client. */
#include "cli/admin_client.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "admin/admin_wire.h"
#include "common/clock.h"
#include "common/sbuf.h"
#include "common/tabescape.h"
#include "common/xmalloc.h"

#define ADMIN_HANDSHAKE_TIMEOUT_MS 5000
#define ADMIN_REPLY_TIMEOUT_MS 120000

struct admin_client {
	int fd;
	char *path;
	struct sbuf in;		/* the last line returned stays at its start */
	int timeout_ms;
};

static int admin_client_connect_tcp(const char *path, char **error_r)
{
	char *host = xstrdup(path);
	char *colon = strrchr(host, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	if (colon == NULL) {
		*error_r = xasprintf("%s: not a socket path or host:port", path);
		free(host);
		return -1;
	}
	*colon = '\0';
	int ret = getaddrinfo(host, colon + 1, &hints, &res);
	free(host);
	if (ret != 0) {
		*error_r = xasprintf("%s: %s", path, gai_strerror(ret));
		return -1;
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
		*error_r = xasprintf("connect(%s) failed: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

static int admin_client_connect_unix(const char *path, char **error_r)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sun.sun_path)) {
		*error_r = xasprintf("%s: socket path too long", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		*error_r = xasprintf("connect(%s) failed: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int admin_client_write(struct admin_client *c, const char *data, size_t len,
			      char **error_r)
{
	while (len > 0) {
		ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = xasprintf("write(%s) failed: %s", c->path, strerror(errno));
			return -1;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

struct admin_client *admin_client_connect(const char *path, char **error_r)
{
	int fd = strchr(path, '/') != NULL ? admin_client_connect_unix(path, error_r) :
		admin_client_connect_tcp(path, error_r);
	if (fd < 0)
		return NULL;
	struct admin_client *c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	c->path = xstrdup(path);
	c->timeout_ms = ADMIN_HANDSHAKE_TIMEOUT_MS;
	if (admin_client_write(c, ADMIN_VERSION_LINE, strlen(ADMIN_VERSION_LINE),
			       error_r) < 0) {
		admin_client_close(&c);
		return NULL;
	}
	char *line = admin_client_read_line(c, error_r);
	if (line == NULL || strncmp(line, ADMIN_VERSION_PREFIX,
				    strlen(ADMIN_VERSION_PREFIX)) != 0) {
		if (line != NULL)
			*error_r = xasprintf("%s: not a loftd or director admin socket "
					     "(got '%s')", path, line);
		admin_client_close(&c);
		return NULL;
	}
	c->timeout_ms = ADMIN_REPLY_TIMEOUT_MS;
	return c;
}

void admin_client_close(struct admin_client **cp)
{
	struct admin_client *c = *cp;
	if (c == NULL)
		return;
	close(c->fd);
	sbuf_free(&c->in);
	free(c->path);
	free(c);
	*cp = NULL;
}

void admin_client_set_timeout(struct admin_client *c, int timeout_ms)
{
	c->timeout_ms = timeout_ms;
}

int admin_client_send(struct admin_client *c, const char *const *fields,
		      size_t count, char **error_r)
{
	struct sbuf line = SBUF_INIT;
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			sbuf_appendc(&line, '\t');
		tabescape_append(&line, fields[i]);
	}
	sbuf_appendc(&line, '\n');
	int ret = admin_client_write(c, sbuf_data(&line), sbuf_len(&line), error_r);
	sbuf_free(&line);
	return ret;
}

char *admin_client_read_line(struct admin_client *c, char **error_r)
{
	uint64_t deadline = c->timeout_ms == 0 ? UINT64_MAX :
		clock_monotonic_ms() + (uint64_t)c->timeout_ms;

	for (;;) {
		char *lf = memchr(sbuf_data(&c->in), '\n', sbuf_len(&c->in));
		if (lf != NULL) {
			/* returned in place, not copied (a ring's who reads
			 * 200,000 lines): consumed, it stays put until the
			 * next call reads more */
			char *line = sbuf_mdata(&c->in);
			*lf = '\0';
			sbuf_consume(&c->in, (size_t)(lf - line) + 1);
			return line;
		}
		uint64_t now = clock_monotonic_ms();
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		int r = now >= deadline ? 0 :
			poll(&pfd, 1, deadline == UINT64_MAX ? -1 : (int)(deadline - now));
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) {
			*error_r = xasprintf("read(%s) timed out", c->path);
			return NULL;
		}
		char *buf = sbuf_reserve(&c->in, 65536);
		ssize_t n = read(c->fd, buf, 65536);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*error_r = n == 0 ? xasprintf("%s unexpectedly disconnected", c->path) :
				xasprintf("read(%s) failed: %s", c->path, strerror(errno));
			return NULL;
		}
		sbuf_commit(&c->in, (size_t)n);
	}
}
