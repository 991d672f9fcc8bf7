/* stderr logger: "2026-11-22 10:00:00.123 loftd[123]: info: text"; or
 * syslog's "loftd[123]: info: text" (syslog adds its own time). */
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "common/xmalloc.h"

enum log_level log_min_level = LOG_LEVEL_INFO;
static char log_ident[32] = "loft";
/* set once at start-up, before any worker thread exists */
static bool log_to_syslog;

static const int log_syslog_priorities[] = {
	[LOG_LEVEL_DEBUG] = LOG_DEBUG,
	[LOG_LEVEL_INFO] = LOG_INFO,
	[LOG_LEVEL_WARNING] = LOG_WARNING,
	[LOG_LEVEL_ERROR] = LOG_ERR,
	[LOG_LEVEL_FATAL] = LOG_CRIT,
};

static const char *const log_level_names[] = {
	[LOG_LEVEL_DEBUG] = "debug",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_WARNING] = "warning",
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_FATAL] = "fatal",
};

void log_init(const char *ident)
{
	snprintf(log_ident, sizeof(log_ident), "%s", ident);
}

void log_set_level(enum log_level level)
{
	log_min_level = level;
}

/* syslog(3) drops lines without a word when nobody listens: ask first,
 * as it connects (a datagram socket, else a stream one). */
static int log_syslog_reachable(char **error_r)
{
	static const int types[] = { SOCK_DGRAM, SOCK_STREAM };
	struct sockaddr_un addr = { .sun_family = AF_UNIX, .sun_path = _PATH_LOG };
	int err = 0;
	for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
		int fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			err = errno;
			continue;
		}
		int ret = connect(fd, (struct sockaddr *)&addr, sizeof(addr));
		err = errno;
		close(fd);
		if (ret == 0)
			return 0;
		if (err != EPROTOTYPE)
			break;
	}
	*error_r = xasprintf("cannot reach syslog at %s: %s", _PATH_LOG, strerror(err));
	return -1;
}

int log_open_syslog(char **error_r)
{
	if (log_syslog_reachable(error_r) < 0)
		return -1;
	/* LOG_NDELAY: connected now, before loftd leaves root */
	openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	log_to_syslog = true;
	return 0;
}

int log_level_parse(const char *name, enum log_level *level_r)
{
	for (size_t i = 0; i < ARRAY_SIZE(log_level_names); i++) {
		if (strcasecmp(name, log_level_names[i]) == 0) {
			*level_r = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

const char *log_level_name(enum log_level level)
{
	return log_level_names[level];
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char line[4096];
	struct timeval tv;
	struct tm tm;
	size_t n;

	if (!log_level_enabled(level))
		return;
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ld %s[%ld]: ",
			      (long)(tv.tv_usec / 1000), log_ident, (long)getpid());
	/* syslog puts its own time, ident and pid in front of the level */
	size_t body = n;
	n += (size_t)snprintf(line + n, sizeof(line) - n, "%s: ", log_level_names[level]);
	int m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (m < 0)
		m = 0;
	n += (size_t)m;
	if (n > sizeof(line) - 2) {
		n = sizeof(line) - 5;
		memcpy(line + n, "...", 3);
		n += 3;
	}
	/* never let control characters from the network forge log lines */
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
			line[i] = '?';
	}
	if (log_to_syslog) {
		syslog(log_syslog_priorities[level], "%.*s", (int)(n - body), line + body);
		return;
	}
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0) {
		/* stderr is gone: nowhere to report it */
	}
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void log_fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_FATAL, fmt, ap);
	va_end(ap);
	exit(EXIT_FAILURE);
}
