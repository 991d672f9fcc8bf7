/* IP address and CIDR helpers, and TCP keepalive. */
#include "common/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/hmap.h"

int ipaddr_parse(const char *s, struct ipaddr *ip_r)
{
	char buf[IPADDR_STRLEN + 2];
	size_t len = strlen(s);

	memset(ip_r, 0, sizeof(*ip_r));
	if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
		if (len - 2 >= sizeof(buf))
			return -1;
		memcpy(buf, s + 1, len - 2);
		buf[len - 2] = '\0';
		s = buf;
	}
	if (inet_pton(AF_INET, s, &ip_r->u.v4) == 1) {
		ip_r->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, &ip_r->u.v6) == 1) {
		ip_r->family = AF_INET6;
		ipaddr_normalize(ip_r);
		return 0;
	}
	return -1;
}

const char *ipaddr_to_str(const struct ipaddr *ip, char buf[IPADDR_STRLEN])
{
	if (ip->family == AF_UNSPEC ||
	    inet_ntop(ip->family, &ip->u, buf, IPADDR_STRLEN) == NULL)
		buf[0] = '\0';
	return buf;
}

void ipaddr_normalize(struct ipaddr *ip)
{
	if (ip->family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&ip->u.v6)) {
		struct in_addr v4;
		memcpy(&v4, &ip->u.v6.s6_addr[12], 4);
		memset(&ip->u, 0, sizeof(ip->u));
		ip->u.v4 = v4;
		ip->family = AF_INET;
	}
}

bool ipaddr_is_set(const struct ipaddr *ip)
{
	return ip->family != AF_UNSPEC;
}

static size_t ipaddr_len(const struct ipaddr *ip)
{
	return ip->family == AF_INET ? 4 : ip->family == AF_INET6 ? 16 : 0;
}

uint64_t ipaddr_hash(const struct ipaddr *ip)
{
	return hash_bytes(&ip->u, ipaddr_len(ip)) ^ ip->family;
}

bool ipaddr_equal(const struct ipaddr *a, const struct ipaddr *b)
{
	return a->family == b->family &&
		memcmp(&a->u, &b->u, ipaddr_len(a)) == 0;
}

int ipaddr_cmp(const struct ipaddr *a, const struct ipaddr *b)
{
	if (a->family != b->family)
		return a->family == AF_INET ? -1 : b->family == AF_INET ? 1 :
			(a->family < b->family ? -1 : 1);
	return memcmp(&a->u, &b->u, ipaddr_len(a));
}

void ipaddr_from_sockaddr(const struct sockaddr *sa, struct ipaddr *ip_r,
			  uint16_t *port_r)
{
	memset(ip_r, 0, sizeof(*ip_r));
	*port_r = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;
		ip_r->family = AF_INET;
		ip_r->u.v4 = sin->sin_addr;
		*port_r = ntohs(sin->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;
		ip_r->family = AF_INET6;
		ip_r->u.v6 = sin6->sin6_addr;
		*port_r = ntohs(sin6->sin6_port);
		ipaddr_normalize(ip_r);
	}
}

socklen_t ipaddr_to_sockaddr(const struct ipaddr *ip, uint16_t port,
			     struct sockaddr_storage *ss_r)
{
	memset(ss_r, 0, sizeof(*ss_r));
	if (ip->family == AF_INET) {
		struct sockaddr_in *sin = (void *)ss_r;
		sin->sin_family = AF_INET;
		sin->sin_addr = ip->u.v4;
		sin->sin_port = htons(port);
		return sizeof(*sin);
	}
	struct sockaddr_in6 *sin6 = (void *)ss_r;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_addr = ip->u.v6;
	sin6->sin6_port = htons(port);
	return sizeof(*sin6);
}

static bool str_is_numeric(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return false;
	}
	return true;
}

int cidr_parse(const char *s, struct cidr *cidr_r)
{
	char buf[IPADDR_STRLEN + 8];
	const char *slash = strchr(s, '/');
	size_t iplen = slash == NULL ? strlen(s) : (size_t)(slash - s);

	memset(cidr_r, 0, sizeof(*cidr_r));
	if (iplen >= sizeof(buf) || str_is_numeric(s))
		return -1;
	memcpy(buf, s, iplen);
	buf[iplen] = '\0';
	if (ipaddr_parse(buf, &cidr_r->net) < 0)
		return -1;
	unsigned int maxbits = cidr_r->net.family == AF_INET ? 32 : 128;
	if (slash == NULL) {
		cidr_r->bits = maxbits;
		return 0;
	}
	if (!str_is_numeric(slash + 1) || strlen(slash + 1) > 3)
		return -1;
	unsigned long bits = strtoul(slash + 1, NULL, 10);
	/* an IPv4-mapped network given in IPv6 form: bits count the v6 form */
	if (cidr_r->net.family == AF_INET && strchr(buf, ':') != NULL) {
		if (bits < 96 || bits > 128)
			return -1;
		bits -= 96;
	}
	if (bits > maxbits)
		return -1;
	cidr_r->bits = (unsigned int)bits;
	return 0;
}

bool cidr_match(const struct cidr *cidr, const struct ipaddr *ip)
{
	if (ip->family != cidr->net.family)
		return false;
	const uint8_t *a = (const uint8_t *)&cidr->net.u;
	const uint8_t *b = (const uint8_t *)&ip->u;
	unsigned int bits = cidr->bits;
	size_t i = 0;
	for (; bits >= 8; bits -= 8, i++) {
		if (a[i] != b[i])
			return false;
	}
	if (bits == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - bits));
	return (a[i] & mask) == (b[i] & mask);
}

int port_parse(const char *s, uint16_t *port_r)
{
	if (!str_is_numeric(s) || strlen(s) > 5)
		return -1;
	unsigned long v = strtoul(s, NULL, 10);
	if (v == 0 || v > 65535)
		return -1;
	*port_r = (uint16_t)v;
	return 0;
}

int net_set_keepalive(int fd, const struct net_keepalive *ka)
{
	int on = 1, ret = 0;
	if (ka->idle_s > 0) {
		int idle = (int)ka->idle_s, intvl = (int)ka->interval_s,
			cnt = (int)ka->count;
		ret |= setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
		ret |= setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
		if (intvl > 0)
			ret |= setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
		if (cnt > 0)
			ret |= setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	}
	if (ka->user_timeout_ms > 0) {
		unsigned int ut = ka->user_timeout_ms;
		ret |= setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof(ut));
	}
	return ret == 0 ? 0 : -1;
}
