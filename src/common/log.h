/* Process logging to stderr, one line per call, written with a single
 * write() so lines from worker threads never interleave; or to syslog
 * (log_open_syslog()), one message per line. Only the daemon and the CLI
 * log; library-like modules return errors instead. */
#ifndef LOFT_COMMON_LOG_H
#define LOFT_COMMON_LOG_H

#include <stdarg.h>
#include <stdbool.h>

#include "common/macros.h"

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARNING,
	LOG_LEVEL_ERROR,
	LOG_LEVEL_FATAL,
};

void log_init(const char *ident);
void log_set_level(enum log_level level);
/* From now on lines go to syslog (facility mail, the ident of
 * log_init()) instead of stderr. -1 with the reason (caller frees) when
 * no syslog daemon listens on /dev/log: its lines would be lost. */
int log_open_syslog(char **error_r);
int log_level_parse(const char *name, enum log_level *level_r);
const char *log_level_name(enum log_level level);


void log_msg(enum log_level level, const char *fmt, ...) ATTR_FORMAT(2, 3);
void log_vmsg(enum log_level level, const char *fmt, va_list ap)
	ATTR_FORMAT(2, 0);
void log_fatal(const char *fmt, ...) ATTR_FORMAT(1, 2) ATTR_NORETURN;

#define log_debug(...) do { \
	if (log_level_enabled(LOG_LEVEL_DEBUG)) \
		log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__); \
	} while (0)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

extern enum log_level log_min_level;
static inline bool log_level_enabled(enum log_level level)
{
	return level >= log_min_level;
}

#endif
