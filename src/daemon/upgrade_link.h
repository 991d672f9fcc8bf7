/* The socketpair between a loftd and the successor an upgrade started
 * (loftd(8) SIGUSR2), as a line channel on the loop: both ends read what
 * comes whenever it comes and write without waiting for the other to
 * read. upgrade.c speaks its protocol over it; this file only moves
 * lines. */
#ifndef LOFT_DAEMON_UPGRADE_LINK_H
#define LOFT_DAEMON_UPGRADE_LINK_H

#include <stddef.h>

struct event_base;
struct sbuf;
struct upgrade_link;

struct upgrade_link_ops {
	/* one line without its LF (modifiable); may free the link */
	void (*line)(void *ctx, char *line);
	/* the other end closed, or the link broke (a read or write error,
	 * a line over the limit): nothing more comes; may free the link */
	void (*closed)(void *ctx, const char *why);
};

/* Takes fd (made non-blocking; closed by upgrade_link_free()); pending
 * is what was read from it already and is handed over first, on a
 * later loop turn. */
struct upgrade_link *upgrade_link_new(struct event_base *base, int fd,
				      const struct upgrade_link_ops *ops, void *ctx,
				      const char *pending, size_t pending_len);
/* Where to append lines; upgrade_link_send() sends them. */
struct sbuf *upgrade_link_output(struct upgrade_link *link);
void upgrade_link_send(struct upgrade_link *link);
void upgrade_link_free(struct upgrade_link **link);

#endif
