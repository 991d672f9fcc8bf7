/* stderr logger: "2026-11-22 10:00:00.123 loftd[123]: info: text". */
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum log_level log_min_level = LOG_LEVEL_INFO;
static char log_ident[32] = "loft";

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
	n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ld %s[%ld]: %s: ",
			      (long)(tv.tv_usec / 1000), log_ident,
			      (long)getpid(), log_level_names[level]);
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
