/* The sd_notify datagram protocol on $NOTIFY_SOCKET (notify.h). One
 * unconnected socket for the process's life: each message is a sendto()
 * of the address, so a manager that re-executed itself and bound its
 * socket anew is still reached. */
#include "daemon/notify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/xmalloc.h"

struct notify {
	int fd;
	struct sockaddr_un addr;
	socklen_t addr_len;
};

static int notify_address(const char *address, struct sockaddr_un *addr,
			  socklen_t *len_r, char **error_r)
{
	size_t n = strlen(address);
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	if (address[0] != '/' && address[0] != '@') {
		*error_r = xasprintf("NOTIFY_SOCKET=%s: not an absolute path or "
				     "@abstract name (other kinds are not supported)",
				     address);
		return -1;
	}
	/* a path needs its NUL; an abstract name's "@" becomes the NUL
	 * in front and the name has no NUL of its own */
	size_t max = sizeof(addr->sun_path) - (address[0] == '/' ? 1 : 0);
	if (n > max) {
		*error_r = xasprintf("NOTIFY_SOCKET=%s: longer than a socket address "
				     "can be (%zu bytes)", address, max);
		return -1;
	}
	memcpy(addr->sun_path, address, n);
	if (address[0] == '@')
		addr->sun_path[0] = '\0';
	*len_r = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
			     (address[0] == '/' ? 1 : 0));
	return 0;
}

int notify_open(const char *address, struct notify **notify_r, char **error_r)
{
	struct sockaddr_un addr;
	socklen_t len;

	*notify_r = NULL;
	if (address == NULL || address[0] == '\0')
		return 0;
	if (notify_address(address, &addr, &len, error_r) < 0)
		return -1;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		*error_r = xasprintf("NOTIFY_SOCKET=%s: socket(): %s", address,
				     strerror(errno));
		return -1;
	}
	struct notify *n = xcalloc(1, sizeof(*n));
	n->fd = fd;
	n->addr = addr;
	n->addr_len = len;
	*notify_r = n;
	return 0;
}

void notify_free(struct notify **np)
{
	struct notify *n = *np;
	if (n == NULL)
		return;
	*np = NULL;
	close(n->fd);
	free(n);
}

int notify_send(struct notify *n, const char *text, char **error_r)
{
	if (n == NULL)
		return 0;
	size_t len = strlen(text);
	ssize_t ret;
	do {
		ret = sendto(n->fd, text, len, MSG_DONTWAIT | MSG_NOSIGNAL,
			     (const struct sockaddr *)&n->addr, n->addr_len);
	} while (ret < 0 && errno == EINTR);
	if (ret < 0) {
		*error_r = xasprintf("sending to NOTIFY_SOCKET: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int notify_number(const char *name, const char *value, uint64_t *n_r,
			 char **error_r)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(value, &end, 10);
	if (value[0] < '0' || value[0] > '9' || *end != '\0' || errno != 0) {
		*error_r = xasprintf("%s=%s: not a number", name, value);
		return -1;
	}
	*n_r = n;
	return 0;
}

int notify_watchdog_usec(const char *usec, const char *pid, pid_t self,
			 uint64_t *usec_r, char **error_r)
{
	uint64_t value, owner;
	*usec_r = 0;
	if (usec == NULL || usec[0] == '\0')
		return 0;
	if (notify_number("WATCHDOG_USEC", usec, &value, error_r) < 0)
		return -1;
	/* without WATCHDOG_PID the watchdog is the main process's */
	if (pid != NULL && pid[0] != '\0') {
		if (notify_number("WATCHDOG_PID", pid, &owner, error_r) < 0)
			return -1;
		if (owner != (uint64_t)self)
			return 0;
	}
	*usec_r = value;
	return 0;
}

uint64_t notify_monotonic_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

size_t notify_format_reloading(char *buf, size_t size, uint64_t usec)
{
	int n = snprintf(buf, size, "RELOADING=1\nMONOTONIC_USEC=%llu",
			 (unsigned long long)usec);
	if (n < 0)
		n = 0;
	return size == 0 ? 0 : ((size_t)n < size ? (size_t)n : size - 1);
}

void notify_append_status(char *buf, size_t size, size_t *len, const char *text)
{
	static const char prefix[] = "STATUS=";
	size_t n = *len;
	if (n + sizeof(prefix) > size)
		return;
	memcpy(buf + n, prefix, sizeof(prefix) - 1);
	n += sizeof(prefix) - 1;
	for (; *text != '\0' && n + 1 < size; text++)
		buf[n++] = (unsigned char)*text < 0x20 || *text == 0x7f ? ' ' : *text;
	buf[n] = '\0';
	*len = n;
}
