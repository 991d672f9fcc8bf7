/* An LMTP session (RFC 2033, reference §10.4): each recipient is looked
 * up in the passdbs and routed by the director (or the passdb's host=),
 * and asked of its backend before the client hears the answer, so that a
 * recipient is only accepted once its backend accepted it. The message
 * is read whole (up to lmtp.max_message_size), sent to every backend that
 * has recipients, and the client gets one reply per accepted recipient,
 * in RCPT order, as the backends gave them. Internal to src/proxy. */
#ifndef LOFT_PROXY_LMTP_SESSION_H
#define LOFT_PROXY_LMTP_SESSION_H

#include "core/listener.h"
#include "proxy/proxy.h"

void lmtp_session_new(struct proxy_listener *pl, const struct listener_accept *acc);

#endif
