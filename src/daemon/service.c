/* loftd and its service manager (service.h): when each sd_notify message
 * goes out, and what the STATUS= line says. The protocol itself is in
 * notify.c. The timer runs on the event loop on purpose: a loop that
 * stalls stops the watchdog pings, which is what the watchdog is for. */
#include "daemon/service.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macros.h"
#include "daemon/loftd.h"
#include "daemon/notify.h"
#include "daemon/upgrade.h"
#include "proxy/proxy.h"
#include "registry/registry.h"

/* The session counts by state: one walk over the registry, at most once
 * per SERVICE_STATUS_INTERVAL_USEC. */
static void service_status_text(const struct loftd *d, char *buf, size_t size)
{
	size_t count[3] = { 0, 0, 0 };
	const struct registry_entry *e;
	if (!d->service.ready) {
		snprintf(buf, size, "waiting for the ring's state from etcd");
		return;
	}
	REGISTRY_FOR_EACH(e, &d->proxy->registry) {
		if ((size_t)e->state < ARRAY_SIZE(count))
			count[e->state]++;
	}
	snprintf(buf, size, "%s%ssessions: %zu (%zu pre-login, %zu logging in, %zu proxying)",
		 d->service.stopping ? "stopping; " : "",
		 d->proxy->serving ? "" : "fenced, no logins served; ",
		 registry_count(&d->proxy->registry),
		 count[REGISTRY_STATE_PRELOGIN], count[REGISTRY_STATE_LOGIN],
		 count[REGISTRY_STATE_PROXYING]);
}

static void service_send(struct service *s, const char *text)
{
	char *error;
	if (notify_send(s->notify, text, &error) < 0) {
		/* a manager that went away would make every tick say it */
		if (!s->failing)
			log_warning("systemd notification not sent: %s", error);
		free(error);
		s->failing = true;
		return;
	}
	if (s->failing)
		log_info("systemd notifications are taken again");
	s->failing = false;
}

/* Sends `head` (may be "") with a STATUS= line appended when the status
 * changed or `force`. */
static void service_send_status(struct loftd *d, const char *head, bool force)
{
	struct service *s = &d->service;
	char msg[NOTIFY_MAX_MESSAGE], text[sizeof(s->status)];
	size_t len = (size_t)snprintf(msg, sizeof(msg), "%s", head);
	service_status_text(d, text, sizeof(text));
	if (force || strcmp(text, s->status) != 0) {
		if (len > 0 && len + 1 < sizeof(msg)) {
			msg[len++] = '\n';
			msg[len] = '\0';
		}
		notify_append_status(msg, sizeof(msg), &len, text);
		memcpy(s->status, text, sizeof(s->status));
	}
	s->ticks = 0;
	if (len > 0)
		service_send(s, msg);
}

static void service_tick(evutil_socket_t fd, short what, void *arg)
{
	struct loftd *d = arg;
	struct service *s = &d->service;
	(void)fd;
	(void)what;
	const char *ping = s->watchdog_usec > 0 ? "WATCHDOG=1" : "";
	if (++s->ticks >= s->status_every)
		service_send_status(d, ping, false);
	else if (ping[0] != '\0')
		service_send(s, ping);
}

int service_start(struct loftd *d)
{
	struct service *s = &d->service;
	char *error;
	/* a successor's watchdog was asked of the loftd it replaces */
	pid_t self = upgrade_is_successor(&d->upgrade) ? getppid() : getpid();
	if (notify_open(getenv("NOTIFY_SOCKET"), &s->notify, &error) < 0 ||
	    notify_watchdog_usec(getenv("WATCHDOG_USEC"), getenv("WATCHDOG_PID"),
				 self, &s->watchdog_usec, &error) < 0) {
		log_error("%s", error);
		free(error);
		return -1;
	}
	if (s->notify == NULL)
		return 0;
	uint64_t period = SERVICE_STATUS_INTERVAL_USEC;
	if (s->watchdog_usec > 0) {
		/* twice per interval, as sd_watchdog_enabled(3) advises */
		period = MIN(period, MAX(s->watchdog_usec / 2, 1));
		log_info("systemd watchdog: a ping every %llu ms",
			 (unsigned long long)(period / 1000));
	}
	s->status_every = (unsigned int)MAX(SERVICE_STATUS_INTERVAL_USEC / period, 1);
	struct timeval tv = { (time_t)(period / 1000000), (suseconds_t)(period % 1000000) };
	s->tick = event_new(d->base, -1, EV_PERSIST, service_tick, d);
	event_add(s->tick, &tv);
	return 0;
}

void service_ready(struct loftd *d)
{
	if (d->service.notify == NULL || d->service.ready)
		return;
	d->service.ready = true;
	/* a successor is not the main process yet: the loftd it replaces
	 * says MAINPID= and READY=1 for it (service_handover()) */
	if (!upgrade_is_successor(&d->upgrade))
		service_send_status(d, "READY=1", true);
}

void service_handover(struct loftd *d, pid_t pid)
{
	char msg[NOTIFY_MAX_MESSAGE];
	if (d->service.notify == NULL)
		return;
	snprintf(msg, sizeof(msg), "MAINPID=%d\nREADY=1", (int)pid);
	service_send(&d->service, msg);
	/* from now on the manager listens to the new main process only */
	service_free(&d->service);
}

void service_reloading(struct loftd *d)
{
	char msg[NOTIFY_MAX_MESSAGE];
	if (d->service.notify == NULL)
		return;
	notify_format_reloading(msg, sizeof(msg), notify_monotonic_usec());
	service_send(&d->service, msg);
}

/* Also after a reload that failed: loftd runs on as before. */
void service_reloaded(struct loftd *d)
{
	if (d->service.notify != NULL)
		service_send(&d->service, "READY=1");
}

void service_stopping(struct loftd *d, const char *why)
{
	struct service *s = &d->service;
	char msg[NOTIFY_MAX_MESSAGE];
	if (s->notify == NULL)
		return;
	s->stopping = true;
	if (why == NULL) {
		service_send_status(d, "STOPPING=1", true);
		return;
	}
	size_t len = (size_t)snprintf(msg, sizeof(msg), "STOPPING=1\n");
	notify_append_status(msg, sizeof(msg), &len, why);
	service_send(s, msg);
}

void service_free(struct service *s)
{
	if (s->tick != NULL)
		event_free(s->tick);
	s->tick = NULL;
	notify_free(&s->notify);
}
