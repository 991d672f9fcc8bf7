/* The protocols loftd proxies: for each, its front and back state
 * machines and where its backend port is configured. Adding a protocol
 * is a row here plus its two machines in src/proto. */
#ifndef LOFT_PROXY_PROTOCOLS_H
#define LOFT_PROXY_PROTOCOLS_H

#include <stddef.h>

#include "conf/config.h"
#include "proto/back.h"
#include "proto/command_watch.h"
#include "proto/front.h"

struct proxy_listener;
struct listener_accept;

struct proxy_protocol {
	const char *name;
	/* a new connection: session_new() for the protocols that log in */
	void (*start)(struct proxy_listener *pl, const struct listener_accept *acc);
	const struct front_ops *front;
	const struct back_ops *back;
	const struct command_watch *watch;	/* the client's commands while relayed */
	size_t backend_port_offset;	/* an unsigned int in struct config */
	size_t idle_offset;		/* a uint64_t in struct config; 0: none */
	/* a connection refused before it starts: prefix, text, suffix */
	const char *refuse_prefix, *refuse_suffix;
};

const struct proxy_protocol *proxy_protocol_get(unsigned int conf_protocol);
unsigned int proxy_protocol_backend_port(const struct proxy_protocol *p,
					 const struct config *cfg);
/* limits.idle.<protocol> in ms; 0: sessions may idle for ever. */
uint64_t proxy_protocol_idle_ms(const struct proxy_protocol *p, const struct config *cfg);

#endif
