/* The PROXY protocol header a load balancer puts before a connection's
 * own bytes (HAProxy's proxy-protocol.txt), versions 1 and 2:
 *
 *   v1: "PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\r\n" or
 *       "PROXY UNKNOWN ...\r\n", at most 107 bytes
 *   v2: the 12-byte signature, version/command, family, a 16-bit length,
 *       the addresses, then TLVs (ignored)
 *
 * A pure parser: it reports how long the header is, so that the caller
 * consumes exactly that and leaves the client's own bytes (a TLS
 * ClientHello, a command) where they are. */
#ifndef LOFT_PROTO_PROXY_PROTOCOL_H
#define LOFT_PROTO_PROXY_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/net.h"
#include "common/parse.h"

#define PROXY_PROTOCOL_V1_MAX 107
/* a v2 header longer than this (addresses and TLVs) is refused */
#define PROXY_PROTOCOL_MAX 536

struct proxy_protocol_header {
	unsigned int version;		/* 1 or 2 */
	bool have_addresses;		/* false: LOCAL, UNKNOWN, non-TCP */
	struct ipaddr src_ip, dst_ip;
	uint16_t src_port, dst_port;
};

/* PARSE_MORE while the header may still be incomplete; PARSE_OK with its
 * length in *len_r; PARSE_ERROR with a reason. */
enum parse_result proxy_protocol_parse(const unsigned char *buf, size_t len,
				       struct proxy_protocol_header *hdr,
				       size_t *len_r, const char **error_r);

#endif
