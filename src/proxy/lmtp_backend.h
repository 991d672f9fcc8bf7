/* One LMTP connection to a backend, driven by an LMTP session: connect,
 * then proto/lmtp_client's dialogue. The session issues MAIL, RCPT and
 * DATA (MAIL and RCPT pipelined when offered) and hears back through
 * callbacks; an idle connection may serve the session's next
 * transaction. Callbacks never free the backend; the session frees it
 * later from its own event.
 * Internal to src/proxy. */
#ifndef LOFT_PROXY_LMTP_BACKEND_H
#define LOFT_PROXY_LMTP_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/net.h"
#include "proto/lmtp_client.h"

struct proxy;
struct lmtp_backend;

struct lmtp_backend_callbacks {
	/* greeted (and told who the client is): MAIL may follow */
	void (*ready)(void *ctx, struct lmtp_backend *b);
	/* the reply to MAIL or RCPT */
	void (*reply)(void *ctx, struct lmtp_backend *b, int code, const char *line);
	/* one accepted recipient's verdict after the body; `all` when the
	 * backend refused DATA itself and this stands for every recipient */
	void (*data_reply)(void *ctx, struct lmtp_backend *b, int code, const char *line,
			   bool all);
	/* the connection is unusable: error says why */
	void (*failed)(void *ctx, struct lmtp_backend *b, const char *error);
};

struct lmtp_backend *lmtp_backend_new(struct proxy *proxy, const struct ipaddr *ip,
				      uint16_t port, const struct lmtp_client_params *params,
				      const struct lmtp_backend_callbacks *cb, void *ctx);
/* QUIT, best effort, and close. */
void lmtp_backend_free(struct lmtp_backend **b);

bool lmtp_backend_is(const struct lmtp_backend *b, const struct ipaddr *ip, uint16_t port);
/* Greeted, connected, every reply in and none refused DATA: the
 * connection can serve another transaction (MAIL again). */
bool lmtp_backend_is_idle(const struct lmtp_backend *b);
/* The backend offered PIPELINING: RCPT may follow MAIL unanswered. */
bool lmtp_backend_can_pipeline(const struct lmtp_backend *b);
/* Writes the commands queued since, now rather than on a later turn's
 * writability (waits for the connection while it is being made). The
 * owner calls it once it has queued what its event had to say. */
void lmtp_backend_flush(struct lmtp_backend *b);
void lmtp_backend_mail(struct lmtp_backend *b, const char *from, const char *body);
void lmtp_backend_rcpt(struct lmtp_backend *b, const char *to);
/* DATA for `accepted` recipients, then the dot-stuffed body with its
 * terminating ".\r\n" (borrowed: it must live until the replies are in). */
void lmtp_backend_data(struct lmtp_backend *b, unsigned int accepted, const char *body,
		       size_t len);

#endif
