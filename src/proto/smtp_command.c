/* SMTP command arguments. */
#include "proto/smtp_command.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

int smtp_command_path(char *args, const char *prefix, char **path_r, char **params_r)
{
	size_t plen = strlen(prefix);
	if (strncasecmp(args, prefix, plen) != 0)
		return -1;
	char *p = args + plen;
	while (*p == ' ')
		p++;	/* "FROM: <a@b>" is common enough to accept */
	if (*p != '<')
		return -1;
	char *end = strchr(p, '>');
	if (end == NULL || (end[1] != '\0' && end[1] != ' '))
		return -1;
	*end = '\0';
	if (strpbrk(p + 1, "<\r\n ") != NULL)
		return -1;
	*path_r = p + 1;
	char *params = end + 1;
	while (*params == ' ')
		params++;
	*params_r = params;
	return 0;
}

int64_t smtp_command_size(const char *params)
{
	const char *p = params;
	while (*p != '\0') {
		if (strncasecmp(p, "SIZE=", 5) == 0) {
			char *end;
			if (p[5] < '0' || p[5] > '9')
				return -1;
			unsigned long long v = strtoull(p + 5, &end, 10);
			if ((*end != '\0' && *end != ' ') || v > INT64_MAX)
				return -1;
			return (int64_t)v;
		}
		p = strchr(p, ' ');
		if (p == NULL)
			break;
		p++;
	}
	return 0;
}
