/* SIGUSR2: a new loftd binary takes over the listening sockets while the
 * old one relays its sessions to their end (upgrade.h). Inherited
 * descriptors named in the environment, as systemd's LISTEN_FDS, rather
 * than SCM_RIGHTS: the kernel hands them over atomically at exec, so there
 * is no message to frame or lose, and a new process that dies closes its
 * end of the socketpair, which is how the old one learns it failed. */
#include "daemon/upgrade.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "admin/admin.h"
#include "admin/ipc.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/macros.h"
#include "common/net.h"
#include "common/sbuf.h"
#include "common/xmalloc.h"
#include "core/listener.h"
#include "daemon/loftd.h"
#include "daemon/service.h"
#include "daemon/upgrade_private.h"
#include "director/director.h"
#include "metrics/server.h"
#include "proxy/proxy.h"
#include "registry/registry.h"
#include "ring/ring.h"

#define UPGRADE_ENV_FD "LOFTD_UPGRADE_FD"
#define UPGRADE_ENV_LISTEN "LOFTD_LISTEN_FDS"
#define UPGRADE_ENV_LOCK "LOFTD_STATE_LOCK_FD"
/* a ring's node: "<lease id>:<join time>" */
#define UPGRADE_ENV_RING "LOFTD_RING"
#define UPGRADE_READY "READY\n"
#define UPGRADE_DRAIN_TICK_MS 100
#define UPGRADE_MAX_FDS 256

extern char **environ;

/* -1 for anything but a whole non-negative number. */
static int upgrade_parse_fd(const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < 0 || v > INT_MAX)
		return -1;
	return (int)v;
}

/* Takes an environment variable's value out of the environment. */
static char *upgrade_take_env(const char *name)
{
	const char *v = getenv(name);
	char *copy = v == NULL ? NULL : xstrdup(v);
	unsetenv(name);
	return copy;
}

void upgrade_init(struct upgrade *u, int argc, char **argv)
{
	char path[PATH_MAX];
	memset(u, 0, sizeof(*u));
	u->parent_fd = u->lock_fd = -1;
	hmap_init(&u->holds);
	ssize_t len = readlink("/proc/self/exe", path, sizeof(path) - 1);
	if (len > 0) {
		path[len] = '\0';
		u->exe = xstrdup(path);
	}
	u->argv = xcalloc((size_t)argc + 1, sizeof(*u->argv));
	for (int i = 0; i < argc; i++)
		u->argv[i] = xstrdup(argv[i]);

	char *fd = upgrade_take_env(UPGRADE_ENV_FD);
	char *listen = upgrade_take_env(UPGRADE_ENV_LISTEN);
	char *lock = upgrade_take_env(UPGRADE_ENV_LOCK);
	char *ring = upgrade_take_env(UPGRADE_ENV_RING);
	if (fd != NULL)
		u->parent_fd = upgrade_parse_fd(fd);
	if (u->parent_fd >= 0 && lock != NULL)
		u->lock_fd = upgrade_parse_fd(lock);
	if (u->parent_fd >= 0 && listen != NULL) {
		u->fds = xcalloc(UPGRADE_MAX_FDS, sizeof(*u->fds));
		for (char *save, *tok = strtok_r(listen, ",", &save);
		     tok != NULL && u->fds_count < UPGRADE_MAX_FDS;
		     tok = strtok_r(NULL, ",", &save))
			u->fds[u->fds_count++] = upgrade_parse_fd(tok);
	}
	if (u->parent_fd >= 0)
		fcntl(u->parent_fd, F_SETFD, FD_CLOEXEC);
	long long lease, started;
	if (u->parent_fd >= 0 && ring != NULL &&
	    sscanf(ring, "%lld:%lld", &lease, &started) == 2 && lease > 0) {
		u->ring_lease = lease;
		u->ring_started = (time_t)started;
	}
	free(fd);
	free(listen);
	free(lock);
	free(ring);
}

bool upgrade_is_successor(const struct upgrade *u)
{
	return u->parent_fd >= 0;
}

void upgrade_close_unused(struct upgrade *u)
{
	for (size_t i = 0; i < u->fds_count; i++) {
		if (u->fds[i] >= 0)
			close(u->fds[i]);
		u->fds[i] = -1;
	}
	if (u->lock_fd >= 0)
		close(u->lock_fd);
	u->lock_fd = -1;
}

void upgrade_serving(struct loftd *d)
{
	struct upgrade *u = &d->upgrade;
	if (u->parent_fd < 0)
		return;
	/* a few bytes into an empty socket buffer: does not block */
	if (write(u->parent_fd, UPGRADE_READY, strlen(UPGRADE_READY)) < 0)
		log_error("upgrade: cannot tell the old loftd that this one serves: %m");
	upgrade_overlap_start_pred(d);
	log_info("upgrade: serving; the old loftd (pid %d) stops accepting",
		 (int)getppid());
}

/* ---- the old loftd ------------------------------------------------------ */

/* base_dir/<name> <-> base_dir/<name>.old-<pid>: the new loftd makes the
 * plain names anew, the old one keeps answering under the other. */
static void upgrade_socket_names(const struct loftd *d, const char *name, bool old,
				 char *buf, size_t size)
{
	if (old)
		snprintf(buf, size, "%s/%s.old-%d", d->cfg->base_dir, name, (int)getpid());
	else
		snprintf(buf, size, "%s/%s", d->cfg->base_dir, name);
}

static int upgrade_move_sockets(struct loftd *d, bool old, char **error_r)
{
	char path[4096];
	upgrade_socket_names(d, "admin", old, path, sizeof(path));
	if (line_server_move(admin_server(d->admin), path, error_r) < 0)
		return -1;
	upgrade_socket_names(d, "ipc", old, path, sizeof(path));
	return line_server_move(ipc_server(d->ipc), path, error_r);
}

/* Only async-signal-safe calls between fork() and exec(): the daemon has
 * worker threads. */
static void upgrade_write_num(int fd, const char *head, int n)
{
	char buf[32], digits[12];
	size_t len = strlen(head), i = 0;
	memcpy(buf, head, len);
	do {
		digits[i++] = (char)('0' + n % 10);
		n /= 10;
	} while (n > 0 && i < sizeof(digits));
	while (i > 0)
		buf[len++] = digits[--i];
	buf[len++] = '\n';
	if (write(fd, buf, len) < 0)
		_exit(126);
}

static void upgrade_exec_child(const struct upgrade *u, const int *keep, size_t keep_count,
			       int fd, char **envp)
{
	for (size_t i = 0; i < keep_count; i++)
		fcntl(keep[i], F_SETFD, 0);
	execve(u->exe, u->argv, envp);
	upgrade_write_num(fd, "EXEC ", errno);
	_exit(127);
}

/* The environment of the new loftd: this one's, with the handover's
 * descriptors named. */
static char **upgrade_child_env(const int *fds, size_t fds_count, int child_fd,
				int lock_fd, const struct ring *ring)
{
	size_t n = 0;
	while (environ[n] != NULL)
		n++;
	char **envp = xcalloc(n + 5, sizeof(*envp));
	size_t out = 0;
	for (size_t i = 0; i < n; i++) {
		if (strncmp(environ[i], UPGRADE_ENV_FD "=", strlen(UPGRADE_ENV_FD) + 1) != 0 &&
		    strncmp(environ[i], UPGRADE_ENV_LISTEN "=", strlen(UPGRADE_ENV_LISTEN) + 1) != 0 &&
		    strncmp(environ[i], UPGRADE_ENV_LOCK "=", strlen(UPGRADE_ENV_LOCK) + 1) != 0 &&
		    strncmp(environ[i], UPGRADE_ENV_RING "=", strlen(UPGRADE_ENV_RING) + 1) != 0)
			envp[out++] = xstrdup(environ[i]);
	}
	struct sbuf b = SBUF_INIT;
	sbuf_appends(&b, UPGRADE_ENV_LISTEN "=");
	for (size_t i = 0; i < fds_count; i++)
		sbuf_appendf(&b, "%s%d", i > 0 ? "," : "", fds[i]);
	envp[out++] = xstrdup(sbuf_cstr(&b));
	sbuf_free(&b);
	envp[out++] = xasprintf(UPGRADE_ENV_FD "=%d", child_fd);
	if (lock_fd >= 0)
		envp[out++] = xasprintf(UPGRADE_ENV_LOCK "=%d", lock_fd);
	if (ring != NULL) {
		struct ring_handover h;
		ring_handover_info(ring, &h);
		envp[out++] = xasprintf(UPGRADE_ENV_RING "=%lld:%lld", (long long)h.lease,
					(long long)h.started);
	}
	envp[out] = NULL;
	return envp;
}

static void upgrade_env_free(char **envp)
{
	for (size_t i = 0; envp[i] != NULL; i++)
		free(envp[i]);
	free(envp);
}

/* The successor is no longer starting: it serves, or it failed. */
static void upgrade_child_done(struct upgrade *u)
{
	if (u->timeout_ev != NULL)
		event_free(u->timeout_ev);
	u->timeout_ev = NULL;
	u->child = 0;
}

/* Tells who asked how the upgrade ended (logged already). */
static void upgrade_report(struct upgrade *u, pid_t pid, const char *error)
{
	upgrade_done_fn *done = u->done;
	u->done = NULL;
	if (done != NULL)
		done(u->done_ctx, pid, error);
}

/* Back to serving as before the upgrade began. */
static void upgrade_undo(struct loftd *d)
{
	char *error;
	if (upgrade_move_sockets(d, false, &error) < 0) {
		log_error("upgrade: %s", error);
		free(error);
	}
	if (loftd_setup_metrics(d) < 0)
		log_error("upgrade: metrics are not served any more");
	service_reloaded(d);
}

/* The new loftd failed: it is gone for sure (killed if need be) before
 * the admin sockets get their names back, so it cannot unlink them. A
 * process that is exiting already (its socketpair end closed) keeps its
 * own exit status: SIGKILL does not replace it. */
void upgrade_failed(struct loftd *d, const char *why)
{
	struct upgrade *u = &d->upgrade;
	int status = 0;
	char detail[96] = "";
	pid_t pid = u->child;
	kill(pid, SIGKILL);
	if (waitpid(pid, &status, 0) == pid) {
		if (WIFEXITED(status))
			snprintf(detail, sizeof(detail), ", exit status %d", WEXITSTATUS(status));
		else if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL)
			snprintf(detail, sizeof(detail), ", killed by signal %d",
				 WTERMSIG(status));
	}
	upgrade_child_done(u);
	upgrade_overlap_end_succ(d);
	char text[512];
	snprintf(text, sizeof(text), "upgrade failed: the new loftd %s (pid %d) %s%s; "
		 "this one serves on", u->exe, (int)pid, why, detail);
	log_error("%s", text);
	upgrade_undo(d);
	upgrade_report(u, 0, text);
}

static void upgrade_drain_tick(evutil_socket_t fd, short what, void *arg)
{
	struct loftd *d = arg;
	struct upgrade *u = &d->upgrade;
	(void)fd;
	(void)what;
	if (d->stop_tick != NULL)
		return;	/* SIGTERM took over */
	size_t left = registry_count(&d->proxy->registry);
	if (left == 0) {
		log_info("upgrade: the last session of this old loftd ended");
		event_del(u->drain_ev);
		loftd_exit(d);
	} else if (clock_monotonic_ms() - u->drain_start >= d->cfg->shutdown.max_drain_ms) {
		log_info("upgrade: shutdown.max_drain passed with %zu sessions left", left);
		event_del(u->drain_ev);
		loftd_stop(d);
	}
}

void upgrade_handover(struct loftd *d)
{
	struct upgrade *u = &d->upgrade;
	pid_t pid = u->child;
	upgrade_child_done(u);
	for (size_t i = 0; i < d->listeners_count; i++)
		listener_stop(d->listeners[i]);
	if (d->ring != NULL) {
		/* the new loftd renews the node's lease and answers its peers
		 * from now on; this one follows its fence (upgrade_overlap.c) */
		loftd_ring_detach(d);
		u->ring_detached = true;
	}
	service_handover(d, pid);
	log_info("upgrade: pid %d serves now; this loftd (pid %d) relays its %zu "
		 "sessions until they end or shutdown.max_drain passes",
		 (int)pid, (int)getpid(), registry_count(&d->proxy->registry));
	upgrade_report(u, pid, NULL);
	u->drain_start = clock_monotonic_ms();
	struct timeval tv = { 0, UPGRADE_DRAIN_TICK_MS * 1000 };
	u->drain_ev = event_new(d->base, -1, EV_PERSIST, upgrade_drain_tick, d);
	event_add(u->drain_ev, &tv);
	upgrade_drain_tick(-1, 0, d);
}

static void upgrade_child_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	upgrade_failed(arg, "did not serve within shutdown.upgrade_timeout (killed)");
}

/* Why no upgrade can start now; NULL when one can. */
static const char *upgrade_refusal(const struct loftd *d)
{
	const struct upgrade *u = &d->upgrade;
	if (u->exe == NULL)
		return "the path of loftd's binary is unknown (/proc/self/exe was unreadable at start)";
	if (d->ring != NULL && !ring_is_serving(d->ring))
		return "this ring's node is not serving (joining, fenced or removed): its "
		       "lease cannot be handed over; restart it instead";
	if (u->child != 0)
		return "an upgrade is under way already";
	if (u->drain_ev != NULL)
		return "this loftd was replaced already and only relays its sessions";
	if (d->stop_tick != NULL)
		return "loftd is shutting down";
	if (u->parent_fd >= 0)
		return "this loftd is not serving yet";
	return NULL;
}

/* A failure before the new loftd was started: logged and reported. */
static void upgrade_not_started(struct upgrade *u, const char *fmt, const char *detail)
{
	char why[512];
	snprintf(why, sizeof(why), fmt, detail);
	log_error("%s", why);
	upgrade_report(u, 0, why);
}

void upgrade_start(struct loftd *d, const char *why, upgrade_done_fn *done, void *ctx)
{
	struct upgrade *u = &d->upgrade;
	const char *refused = upgrade_refusal(d);
	char *error;
	int sp[2];
	if (refused != NULL) {
		char text[512];
		snprintf(text, sizeof(text), "%s: upgrade refused: %s", why, refused);
		log_error("%s", text);
		if (done != NULL)
			done(ctx, 0, text);
		return;
	}
	u->done = done;
	u->done_ctx = ctx;
	log_info("%s: upgrading: starting %s", why, u->exe);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
		upgrade_not_started(u, "upgrade failed: socketpair(): %s", strerror(errno));
		return;
	}
	service_reloading(d);
	/* the new loftd binds the metrics port and makes the admin sockets */
	metrics_server_free(&d->metrics);
	if (upgrade_move_sockets(d, true, &error) < 0) {
		upgrade_not_started(u, "upgrade failed: %s", error);
		free(error);
		close(sp[0]);
		close(sp[1]);
		upgrade_undo(d);
		return;
	}
	size_t keep_count = 0;
	int *keep = xcalloc(d->listeners_count + 3, sizeof(*keep));
	for (size_t i = 0; i < d->listeners_count; i++) {
		if (listener_fd(d->listeners[i]) >= 0)
			keep[keep_count++] = listener_fd(d->listeners[i]);
	}
	if (d->ring != NULL) {
		/* the links from the other nodes come to the new loftd */
		struct ring_handover h;
		ring_handover_info(d->ring, &h);
		if (h.peer_fd >= 0)
			keep[keep_count++] = h.peer_fd;
	}
	size_t listen_count = keep_count;
	keep[keep_count++] = sp[1];
	if (d->state_lock_fd >= 0)
		keep[keep_count++] = d->state_lock_fd;
	char **envp = upgrade_child_env(keep, listen_count, sp[1], d->state_lock_fd, d->ring);
	pid_t pid = fork();
	if (pid == 0)
		upgrade_exec_child(u, keep, keep_count, sp[1], envp);
	upgrade_env_free(envp);
	free(keep);
	close(sp[1]);
	if (pid < 0) {
		upgrade_not_started(u, "upgrade failed: fork(): %s", strerror(errno));
		close(sp[0]);
		upgrade_undo(d);
		return;
	}
	u->child = pid;
	upgrade_overlap_start_succ(d, sp[0]);
	uint64_t ms = d->cfg->shutdown.upgrade_timeout_ms;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	u->timeout_ev = evtimer_new(d->base, upgrade_child_timeout, d);
	evtimer_add(u->timeout_ev, &tv);
	log_info("upgrade: new loftd started as pid %d, waiting for it to serve", (int)pid);
}

void upgrade_cancel(struct loftd *d)
{
	if (d->upgrade.child != 0)
		upgrade_failed(d, "was stopped: this loftd is shutting down (killed)");
}

void upgrade_free(struct loftd *d)
{
	struct upgrade *u = &d->upgrade;
	upgrade_overlap_free(d);
	upgrade_child_done(u);
	if (u->drain_ev != NULL)
		event_free(u->drain_ev);
	u->drain_ev = NULL;
	upgrade_close_unused(u);
	free(u->fds);
	if (u->parent_fd >= 0)
		close(u->parent_fd);
	if (u->argv != NULL) {
		for (size_t i = 0; u->argv[i] != NULL; i++)
			free(u->argv[i]);
		free(u->argv);
	}
	free(u->exe);
	memset(u, 0, sizeof(*u));
	u->parent_fd = u->lock_fd = -1;
	hmap_init(&u->holds);
}
