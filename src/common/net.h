/* IP addresses and CIDR networks, independent of sockets. IPv4-mapped IPv6
 * addresses are normalised to IPv4 wherever an address enters loft, so that
 * matching and hashing see one form. */
#ifndef LOFT_COMMON_NET_H
#define LOFT_COMMON_NET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* Longest text form, including NUL (INET6_ADDRSTRLEN is 46). */
#define IPADDR_STRLEN 46

struct ipaddr {
	sa_family_t family;	/* AF_INET, AF_INET6, or AF_UNSPEC when unset */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} u;
};

struct cidr {
	struct ipaddr net;
	unsigned int bits;
};

/* Parses a textual IPv4 or IPv6 address ("[::1]" brackets allowed). */
int ipaddr_parse(const char *s, struct ipaddr *ip_r);
/* Writes the inet_ntop() form, which Dovecot also hashes (§1.2). */
const char *ipaddr_to_str(const struct ipaddr *ip, char buf[IPADDR_STRLEN]);
void ipaddr_normalize(struct ipaddr *ip);
bool ipaddr_is_set(const struct ipaddr *ip);
bool ipaddr_equal(const struct ipaddr *a, const struct ipaddr *b);
/* For hash tables keyed by address (the address bytes and the family). */
uint64_t ipaddr_hash(const struct ipaddr *ip);
/* Order: AF_INET before AF_INET6, then network-order bytes (as Dovecot
 * breaks ties between vhost points, §1.2). */
int ipaddr_cmp(const struct ipaddr *a, const struct ipaddr *b);

void ipaddr_from_sockaddr(const struct sockaddr *sa, struct ipaddr *ip_r,
			  uint16_t *port_r);
/* Fills a sockaddr_storage; returns its length. */
socklen_t ipaddr_to_sockaddr(const struct ipaddr *ip, uint16_t port,
			     struct sockaddr_storage *ss_r);

/* "ip" (a host network) or "ip/bits". A purely numeric string is rejected
 * even if inet_aton would take it (doveadm's rule, §7.1). */
int cidr_parse(const char *s, struct cidr *cidr_r);
bool cidr_match(const struct cidr *cidr, const struct ipaddr *ip);

/* Parses a port number 1..65535. */
int port_parse(const char *s, uint16_t *port_r);

/* TCP keepalive, so that a peer gone without a word (a client behind NAT,
 * a backend that lost power) is noticed; and TCP_USER_TIMEOUT, how long
 * sent data may stay unacknowledged before the connection fails. idle 0:
 * no keepalive; interval and count 0: the kernel's; user_timeout 0: the
 * kernel's. Accepted sockets inherit what their listening socket has. */
struct net_keepalive {
	unsigned int idle_s;
	unsigned int interval_s;
	unsigned int count;
	unsigned int user_timeout_ms;
};
/* -1 with errno when the kernel refused an option. */
int net_set_keepalive(int fd, const struct net_keepalive *ka);

#endif
