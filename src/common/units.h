/* Durations and sizes as operators write them in the config: "60s",
 * "15 min", "1h", "500ms" or a bare number of seconds (Dovecot's units);
 * "64k", "10M" or a bare number of bytes. */
#ifndef LOFT_COMMON_UNITS_H
#define LOFT_COMMON_UNITS_H

#include <stdint.h>

/* Returns 0 and the duration in milliseconds, or -1. */
int duration_parse_ms(const char *s, uint64_t *ms_r);
/* Formats the shortest exact form ("15m", "1500ms"). */
const char *duration_format(uint64_t ms, char buf[32]);

/* Returns 0 and the size in bytes, or -1. Units k, M, G (powers of 1024),
 * optionally followed by "B". */
int size_parse(const char *s, uint64_t *bytes_r);
const char *size_format(uint64_t bytes, char buf[32]);

#endif
