/* Duration and size parsing with tables of unit names. */
#include "common/units.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macros.h"

struct unit {
	const char *name;
	uint64_t mult;
};

static const struct unit duration_units[] = {
	{ "ms", 1 }, { "msec", 1 }, { "msecs", 1 },
	{ "s", 1000 }, { "sec", 1000 }, { "secs", 1000 }, { "second", 1000 },
	{ "seconds", 1000 },
	{ "m", 60000 }, { "min", 60000 }, { "mins", 60000 },
	{ "minute", 60000 }, { "minutes", 60000 },
	{ "h", 3600000 }, { "hour", 3600000 }, { "hours", 3600000 },
	{ "d", 86400000 }, { "day", 86400000 }, { "days", 86400000 },
	{ "w", 604800000 }, { "week", 604800000 }, { "weeks", 604800000 },
};

static const struct unit size_units[] = {
	{ "b", 1 }, { "k", 1024 }, { "kb", 1024 }, { "m", 1024 * 1024 },
	{ "mb", 1024 * 1024 }, { "g", 1024 * 1024 * 1024 },
	{ "gb", 1024 * 1024 * 1024 },
};

/* "<number>[ ]<unit>" with a unit from the table, or a bare number that
 * is multiplied by bare_mult. */
static int units_parse(const char *s, const struct unit *units, size_t count,
		       uint64_t bare_mult, uint64_t *value_r)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	while (isspace((unsigned char)*end))
		end++;
	size_t ulen = strlen(end);
	while (ulen > 0 && isspace((unsigned char)end[ulen - 1]))
		ulen--;
	uint64_t mult = bare_mult;
	if (ulen > 0) {
		mult = 0;
		for (size_t i = 0; i < count; i++) {
			if (strlen(units[i].name) == ulen &&
			    strncasecmp(end, units[i].name, ulen) == 0) {
				mult = units[i].mult;
				break;
			}
		}
		if (mult == 0)
			return -1;
	}
	if (v > UINT64_MAX / mult)
		return -1;
	*value_r = v * mult;
	return 0;
}

int duration_parse_ms(const char *s, uint64_t *ms_r)
{
	/* bare numbers are seconds, as in Dovecot */
	return units_parse(s, duration_units, ARRAY_SIZE(duration_units), 1000,
			   ms_r);
}

int size_parse(const char *s, uint64_t *bytes_r)
{
	return units_parse(s, size_units, ARRAY_SIZE(size_units), 1, bytes_r);
}

const char *size_format(uint64_t bytes, char buf[32])
{
	static const struct { const char *unit; uint64_t mult; } units[] = {
		{ "G", 1024ULL * 1024 * 1024 }, { "M", 1024 * 1024 }, { "k", 1024 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (bytes != 0 && bytes % units[i].mult == 0) {
			snprintf(buf, 32, "%llu%s",
				 (unsigned long long)(bytes / units[i].mult),
				 units[i].unit);
			return buf;
		}
	}
	snprintf(buf, 32, "%llu", (unsigned long long)bytes);
	return buf;
}

const char *duration_format(uint64_t ms, char buf[32])
{
	static const struct { const char *unit; uint64_t ms; } units[] = {
		{ "d", 86400000 }, { "h", 3600000 }, { "m", 60000 },
		{ "s", 1000 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (ms != 0 && ms % units[i].ms == 0) {
			snprintf(buf, 32, "%llu%s",
				 (unsigned long long)(ms / units[i].ms), units[i].unit);
			return buf;
		}
	}
	snprintf(buf, 32, "%llums", (unsigned long long)ms);
	return buf;
}
