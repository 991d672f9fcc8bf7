/* PROXY protocol v1 and v2 header parsing. */
#include "proto/proxy_protocol.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#define V1_PREFIX "PROXY "
#define V2_SIG "\r\n\r\n\0\r\nQUIT\n"
#define V2_SIG_LEN 12
#define V2_HEADER_LEN 16

/* v2 family/transport byte: TCP over IPv4 or IPv6 */
#define V2_TCP4 0x11
#define V2_TCP6 0x21
#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1

/* buf holds fewer bytes than prefix: do they agree so far? */
static bool proxy_prefix_matches(const unsigned char *buf, size_t len,
				 const char *prefix, size_t plen)
{
	return memcmp(buf, prefix, len < plen ? len : plen) == 0;
}

static enum parse_result proxy_error(const char **error_r, const char *error)
{
	*error_r = error;
	return PARSE_ERROR;
}

/* "<ip> <ip> <port> <port>" of the given family */
static int proxy_v1_addresses(char *fields, sa_family_t family,
			      struct proxy_protocol_header *hdr)
{
	char *save, *f[4];
	int n = 0;
	for (char *t = strtok_r(fields, " ", &save); t != NULL;
	     t = strtok_r(NULL, " ", &save)) {
		if (n == 4)
			return -1;
		f[n++] = t;
	}
	if (n != 4 || ipaddr_parse(f[0], &hdr->src_ip) < 0 ||
	    ipaddr_parse(f[1], &hdr->dst_ip) < 0 ||
	    port_parse(f[2], &hdr->src_port) < 0 || port_parse(f[3], &hdr->dst_port) < 0)
		return -1;
	/* "TCP4" must carry IPv4 addresses, "TCP6" IPv6 ones (an IPv4-mapped
	 * IPv6 address has been normalised to IPv4 by now) */
	if (family == AF_INET && (hdr->src_ip.family != AF_INET ||
				  hdr->dst_ip.family != AF_INET))
		return -1;
	if (family == AF_INET6 && (strchr(f[0], ':') == NULL || strchr(f[1], ':') == NULL))
		return -1;
	hdr->have_addresses = true;
	return 0;
}

static enum parse_result proxy_parse_v1(const unsigned char *buf, size_t len,
					struct proxy_protocol_header *hdr, size_t *len_r,
					const char **error_r)
{
	const unsigned char *lf = memchr(buf, '\n', len < PROXY_PROTOCOL_V1_MAX ?
					 len : PROXY_PROTOCOL_V1_MAX);
	if (lf == NULL)
		return len >= PROXY_PROTOCOL_V1_MAX ?
			proxy_error(error_r, "PROXY v1 line too long") : PARSE_MORE;
	size_t line_len = (size_t)(lf - buf);
	if (line_len == 0 || buf[line_len - 1] != '\r')
		return proxy_error(error_r, "PROXY v1 line does not end in CRLF");
	char line[PROXY_PROTOCOL_V1_MAX + 1];
	memcpy(line, buf, line_len - 1);
	line[line_len - 1] = '\0';
	if (memchr(buf, '\0', line_len) != NULL)
		return proxy_error(error_r, "NUL in PROXY v1 line");
	char *proto = line + strlen(V1_PREFIX);
	hdr->version = 1;
	if (strncmp(proto, "UNKNOWN", 7) == 0 && (proto[7] == '\0' || proto[7] == ' ')) {
		/* the balancer's own connection: keep the real addresses */
		hdr->have_addresses = false;
	} else if ((strncmp(proto, "TCP4 ", 5) == 0 &&
		    proxy_v1_addresses(proto + 5, AF_INET, hdr) == 0) ||
		   (strncmp(proto, "TCP6 ", 5) == 0 &&
		    proxy_v1_addresses(proto + 5, AF_INET6, hdr) == 0)) {
		/* addresses set */
	} else {
		return proxy_error(error_r, "invalid PROXY v1 line");
	}
	*len_r = line_len + 1;
	return PARSE_OK;
}

static void proxy_v2_address(struct ipaddr *ip, sa_family_t family, const unsigned char *p)
{
	memset(ip, 0, sizeof(*ip));
	ip->family = family;
	if (family == AF_INET)
		memcpy(&ip->u.v4, p, 4);
	else
		memcpy(&ip->u.v6, p, 16);
	ipaddr_normalize(ip);
}

static enum parse_result proxy_parse_v2(const unsigned char *buf, size_t len,
					struct proxy_protocol_header *hdr, size_t *len_r,
					const char **error_r)
{
	if (len < V2_HEADER_LEN)
		return PARSE_MORE;
	unsigned int version = buf[12] >> 4, command = buf[12] & 0xf;
	size_t body = (size_t)buf[14] << 8 | buf[15];
	if (version != 2)
		return proxy_error(error_r, "unsupported PROXY protocol version");
	if (command != V2_CMD_LOCAL && command != V2_CMD_PROXY)
		return proxy_error(error_r, "invalid PROXY v2 command");
	if (V2_HEADER_LEN + body > PROXY_PROTOCOL_MAX)
		return proxy_error(error_r, "PROXY v2 header too long");
	if (len < V2_HEADER_LEN + body)
		return PARSE_MORE;
	const unsigned char *a = buf + V2_HEADER_LEN;
	hdr->version = 2;
	hdr->have_addresses = false;
	if (command == V2_CMD_PROXY && buf[13] == V2_TCP4) {
		if (body < 12)
			return proxy_error(error_r, "PROXY v2 addresses cut short");
		proxy_v2_address(&hdr->src_ip, AF_INET, a);
		proxy_v2_address(&hdr->dst_ip, AF_INET, a + 4);
		hdr->src_port = (uint16_t)(a[8] << 8 | a[9]);
		hdr->dst_port = (uint16_t)(a[10] << 8 | a[11]);
		hdr->have_addresses = true;
	} else if (command == V2_CMD_PROXY && buf[13] == V2_TCP6) {
		if (body < 36)
			return proxy_error(error_r, "PROXY v2 addresses cut short");
		proxy_v2_address(&hdr->src_ip, AF_INET6, a);
		proxy_v2_address(&hdr->dst_ip, AF_INET6, a + 16);
		hdr->src_port = (uint16_t)(a[32] << 8 | a[33]);
		hdr->dst_port = (uint16_t)(a[34] << 8 | a[35]);
		hdr->have_addresses = true;
	}
	/* LOCAL (the balancer's health checks), UDP, UNIX, UNSPEC: the
	 * connection's own addresses stand */
	*len_r = V2_HEADER_LEN + body;
	return PARSE_OK;
}

enum parse_result proxy_protocol_parse(const unsigned char *buf, size_t len,
				       struct proxy_protocol_header *hdr,
				       size_t *len_r, const char **error_r)
{
	memset(hdr, 0, sizeof(*hdr));
	*len_r = 0;
	if (len == 0)
		return PARSE_MORE;
	if (buf[0] == V1_PREFIX[0]) {
		size_t plen = strlen(V1_PREFIX);
		if (!proxy_prefix_matches(buf, len, V1_PREFIX, plen))
			return proxy_error(error_r, "not a PROXY protocol header");
		return len < plen ? PARSE_MORE : proxy_parse_v1(buf, len, hdr, len_r, error_r);
	}
	if (!proxy_prefix_matches(buf, len, V2_SIG, V2_SIG_LEN))
		return proxy_error(error_r, "not a PROXY protocol header");
	return proxy_parse_v2(buf, len, hdr, len_r, error_r);
}
