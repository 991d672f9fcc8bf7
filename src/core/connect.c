/* Non-blocking outgoing TCP connections (connect.h). */
#include "core/connect.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum connect_result connect_start(const struct ipaddr *ip, uint16_t port,
				  const struct net_keepalive *ka, int *fd_r,
				  const char **error_r)
{
	struct sockaddr_storage ss;
	socklen_t len = ipaddr_to_sockaddr(ip, port, &ss);
	int one = 1;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*error_r = strerror(errno);
		return CONNECT_FAILED;
	}
	/* logins are small request/reply exchanges */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (ka != NULL)
		(void)net_set_keepalive(fd, ka);
	*fd_r = fd;
	if (connect(fd, (struct sockaddr *)&ss, len) == 0)
		return CONNECT_DONE;
	if (errno == EINPROGRESS)
		return CONNECT_PENDING;
	*error_r = strerror(errno);
	close(fd);
	*fd_r = -1;
	return CONNECT_FAILED;
}

int connect_finish(int fd, const char **error_r)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == 0)
		return 0;
	*error_r = strerror(err);
	return -1;
}

bool connect_established(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	return getpeername(fd, (struct sockaddr *)&ss, &len) == 0;
}
