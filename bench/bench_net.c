/* Socket helpers for the benchmark programs. */
#include "bench_net.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/tcp.h>
#include <sys/resource.h>

int bench_addr_parse(const char *s, struct bench_addr *addr_r)
{
	const char *colon = strrchr(s, ':');
	char ip[IPADDR_STRLEN + 2];
	if (colon == NULL || (size_t)(colon - s) >= sizeof(ip))
		return -1;
	memcpy(ip, s, (size_t)(colon - s));
	ip[colon - s] = '\0';
	if (ipaddr_parse(ip, &addr_r->ip) < 0 || port_parse(colon + 1, &addr_r->port) < 0)
		return -1;
	return 0;
}

static int bench_socket(sa_family_t family)
{
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		int one = 1;
		/* request/response traffic: no Nagle delay, as every proxy sets */
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	return fd;
}

int bench_listen(const struct bench_addr *addr)
{
	struct sockaddr_storage ss;
	socklen_t len = ipaddr_to_sockaddr(&addr->ip, addr->port, &ss);
	int fd = bench_socket(addr->ip.family), one = 1;
	char ip[IPADDR_STRLEN];
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 4096) < 0) {
		fprintf(stderr, "cannot listen on %s port %u: %s\n",
			ipaddr_to_str(&addr->ip, ip), addr->port, strerror(errno));
		exit(1);
	}
	return fd;
}

int bench_connect(const struct bench_addr *dest, const struct ipaddr *source)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd = bench_socket(dest->ip.family);
	if (fd < 0)
		return -1;
	if (source != NULL) {
		int one = 1;
		(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		len = ipaddr_to_sockaddr(source, 0, &ss);
		if (bind(fd, (struct sockaddr *)&ss, len) < 0)
			goto fail;
	}
	len = ipaddr_to_sockaddr(&dest->ip, dest->port, &ss);
	if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS)
		goto fail;
	return fd;
fail:;
	int saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

unsigned long bench_raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 0;
	/* root may go beyond the hard limit, up to fs.nr_open */
	struct rlimit want = { 1048576, 1048576 };
	if (setrlimit(RLIMIT_NOFILE, &want) == 0)
		return want.rlim_cur;
	rl.rlim_cur = rl.rlim_max;
	(void)setrlimit(RLIMIT_NOFILE, &rl);
	return rl.rlim_cur;
}

double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
