/* The protocol table. */
#include "proxy/protocols.h"

#include "proto/imap_back.h"
#include "proto/imap_front.h"
#include "proto/managesieve_back.h"
#include "proto/managesieve_front.h"
#include "proto/pop3_back.h"
#include "proto/pop3_front.h"
#include "proto/submission_back.h"
#include "proto/submission_front.h"
#include "proxy/lmtp_session.h"
#include "proxy/session.h"

static const struct proxy_protocol proxy_protocols[] = {
	[CONF_PROTOCOL_IMAP] = {
		.name = "imap",
		.start = session_new,
		.front = &imap_front_ops,
		.back = &imap_back_ops,
		.watch = &command_watch_imap,
		.backend_port_offset = offsetof(struct config, backend.imap_port),
		.idle_offset = offsetof(struct config, limits.idle.imap_ms),
		.refuse_prefix = "* BYE [UNAVAILABLE] ",
		.refuse_suffix = "\r\n",
	},
	[CONF_PROTOCOL_POP3] = {
		.name = "pop3",
		.start = session_new,
		.front = &pop3_front_ops,
		.back = &pop3_back_ops,
		.watch = &command_watch_pop3,
		.backend_port_offset = offsetof(struct config, backend.pop3_port),
		.idle_offset = offsetof(struct config, limits.idle.pop3_ms),
		.refuse_prefix = "-ERR [SYS/TEMP] ",
		.refuse_suffix = "\r\n",
	},
	[CONF_PROTOCOL_MANAGESIEVE] = {
		.name = "managesieve",
		.start = session_new,
		.front = &managesieve_front_ops,
		.back = &managesieve_back_ops,
		.watch = &command_watch_managesieve,
		.backend_port_offset = offsetof(struct config, backend.managesieve_port),
		.idle_offset = offsetof(struct config, limits.idle.managesieve_ms),
		.refuse_prefix = "BYE (TRYLATER) \"",
		.refuse_suffix = "\"\r\n",
	},
	[CONF_PROTOCOL_SUBMISSION] = {
		.name = "submission",
		.start = session_new,
		.front = &submission_front_ops,
		.back = &submission_back_ops,
		.watch = &command_watch_submission,
		.backend_port_offset = offsetof(struct config, backend.submission_port),
		.idle_offset = offsetof(struct config, limits.idle.submission_ms),
		.refuse_prefix = "421 4.7.0 ",
		.refuse_suffix = "\r\n",
	},
	/* LMTP routes each recipient: no front or back of a login */
	[CONF_PROTOCOL_LMTP] = {
		.name = "lmtp",
		.start = lmtp_session_new,
		.backend_port_offset = offsetof(struct config, backend.lmtp_port),
		.refuse_prefix = "421 4.3.2 ",
		.refuse_suffix = "\r\n",
	},
};

const struct proxy_protocol *proxy_protocol_get(unsigned int conf_protocol)
{
	return conf_protocol < ARRAY_SIZE(proxy_protocols) ?
		&proxy_protocols[conf_protocol] : NULL;
}

uint64_t proxy_protocol_idle_ms(const struct proxy_protocol *p, const struct config *cfg)
{
	return p->idle_offset == 0 ? 0 : *(const uint64_t *)(const void *)
		((const char *)cfg + p->idle_offset);
}

unsigned int proxy_protocol_backend_port(const struct proxy_protocol *p,
					 const struct config *cfg)
{
	return *(const unsigned int *)(const void *)
		((const char *)cfg + p->backend_port_offset);
}
