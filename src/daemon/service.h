/* What loftd tells the service manager that started it, and when
 * (loftd(8) SYSTEMD): READY=1 once its listeners accept (a ring's node:
 * once it has read the ring's state), RELOADING=1 and READY=1 around a
 * SIGHUP reload, STOPPING=1 when it begins to stop, a STATUS= line with
 * the session counts at most every SERVICE_STATUS_INTERVAL, and WATCHDOG=1
 * at half the interval the manager asks for. Without $NOTIFY_SOCKET
 * nothing is sent and nothing runs. */
#ifndef LOFT_DAEMON_SERVICE_H
#define LOFT_DAEMON_SERVICE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct loftd;
struct notify;
struct event;

#define SERVICE_STATUS_INTERVAL_USEC (5 * 1000000ULL)

struct service {
	struct notify *notify;		/* NULL: no manager listens */
	struct event *tick;		/* the watchdog and status timer */
	uint64_t watchdog_usec;		/* 0: no watchdog */
	unsigned int ticks;		/* since the last STATUS= */
	unsigned int status_every;	/* ticks between STATUS= lines */
	bool ready;			/* READY=1 was sent */
	bool stopping;			/* STOPPING=1 was sent */
	bool failing;			/* the last send failed (said once) */
	char status[256];		/* the last STATUS= text sent */
};

/* Reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID and starts the
 * timer; -1 (logged) when they name something that cannot be used. */
int service_start(struct loftd *d);
void service_ready(struct loftd *d);
void service_reloading(struct loftd *d);
void service_reloaded(struct loftd *d);
/* why: shown as the STATUS= line, or NULL for the session counts. */
void service_stopping(struct loftd *d, const char *why);
/* An upgrade's new loftd (pid) serves: it becomes the main process
 * ("MAINPID=<pid>", "READY=1") and this one sends nothing more. */
void service_handover(struct loftd *d, pid_t pid);
void service_free(struct service *s);

#endif
