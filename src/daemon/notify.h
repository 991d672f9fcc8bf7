/* systemd's service notification protocol (sd_notify(3)), spoken without
 * libsystemd: each message is one datagram of newline-separated
 * VARIABLE=value assignments ("READY=1", "STATUS=...") sent to the
 * AF_UNIX datagram socket named by $NOTIFY_SOCKET: a path, or "@name" in
 * the abstract namespace. The manager learns the sender's pid from the
 * kernel (SCM_CREDENTIALS), so messages must come from the main process.
 *
 * A send never blocks: a datagram the manager cannot take at once fails
 * with the reason and is dropped. Nothing here logs; the caller decides. */
#ifndef LOFT_DAEMON_NOTIFY_H
#define LOFT_DAEMON_NOTIFY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct notify;

/* The longest message the daemon composes, STATUS= line included. */
#define NOTIFY_MAX_MESSAGE 512

/* A socket towards `address` ($NOTIFY_SOCKET's value). NULL or "": no
 * service manager listens, *notify_r is NULL and every call below does
 * nothing for it. -1 with the reason (caller frees) for an address that
 * cannot be used (relative, too long, vsock:) or a socket() failure. */
int notify_open(const char *address, struct notify **notify_r, char **error_r);
void notify_free(struct notify **n);

/* Sends `text` as one datagram; -1 with the reason (caller frees), e.g.
 * when the manager's queue is full. */
int notify_send(struct notify *n, const char *text, char **error_r);

/* The interval in microseconds within which the manager wants a
 * "WATCHDOG=1", from $WATCHDOG_USEC and $WATCHDOG_PID: 0 when none is
 * asked of this process (unset, "0", or meant for another pid than
 * `self`). -1 with the reason (caller frees) for a value that is not a
 * number. */
int notify_watchdog_usec(const char *usec, const char *pid, pid_t self,
			 uint64_t *usec_r, char **error_r);

/* CLOCK_MONOTONIC in microseconds, the clock of MONOTONIC_USEC. */
uint64_t notify_monotonic_usec(void);

/* "RELOADING=1\nMONOTONIC_USEC=<usec>": a reload begins (systemd 253+
 * wants the timestamp to tell this reload from an earlier one). Returns
 * the length written into buf (truncated to size - 1, NUL-terminated). */
size_t notify_format_reloading(char *buf, size_t size, uint64_t usec);

/* "STATUS=<text>", appended at buf + *len: a control character in text
 * becomes a space (a newline would begin another assignment), and text is
 * cut to fit. *len is updated; buf stays NUL-terminated. */
void notify_append_status(char *buf, size_t size, size_t *len, const char *text);

#endif
