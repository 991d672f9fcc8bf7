/* What a client's commands after login tell the proxy, seen in passing
 * while the relay copies them (core/relay.h, relay_watch()): whether the
 * last command the client sent was its logout, so that the session's log
 * line can say the user logged out rather than that the backend closed;
 * and whether the stream is about to be transformed (IMAP COMPRESS,
 * RFC 4978), after which loft must not write into it: a plain "* BYE"
 * inside a DEFLATE stream breaks the client's inflater.
 *
 * Only the last line of what one read returned is looked at: a client
 * that logs out or starts compression waits for the answer, so that
 * command ends what it sent. Pure: no sockets, no state. */
#ifndef LOFT_PROTO_COMMAND_WATCH_H
#define LOFT_PROTO_COMMAND_WATCH_H

#include <stdbool.h>
#include <stddef.h>

enum command_watch_flag {
	COMMAND_WATCH_LOGOUT = 1 << 0,
	COMMAND_WATCH_OPAQUE = 1 << 1,
};

/* One protocol's commands of interest (NULL: none). */
struct command_watch {
	bool tagged;		/* IMAP: a tag comes before the command */
	const char *logout;
	const char *opaque;
};

extern const struct command_watch command_watch_imap;
extern const struct command_watch command_watch_pop3;
extern const struct command_watch command_watch_managesieve;
extern const struct command_watch command_watch_submission;

/* The flags the last complete line of data raises (0 when data does not
 * end with a line). */
unsigned int command_watch_last_line(const struct command_watch *w, const char *data,
				     size_t len);

#endif
