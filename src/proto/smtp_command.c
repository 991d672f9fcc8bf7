/* SMTP command lines: the verb, paths and MAIL parameters. */
#include "proto/smtp_command.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/macros.h"

char *smtp_command_split(char *line)
{
	char *args = strchr(line, ' ');
	if (args == NULL)
		return line + strlen(line);
	*args++ = '\0';
	return args;
}

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

/* SIZE=<digits> */
static bool smtp_param_size(const char *v, size_t len, struct smtp_mail_params *r)
{
	uint64_t n = 0;
	if (len == 0 || len > 19 || r->has_size)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	r->size = n;
	r->has_size = true;
	return true;
}

/* BODY=7BIT | 8BITMIME */
static bool smtp_param_body(const char *v, size_t len, struct smtp_mail_params *r)
{
	static const char *const types[] = { "7BIT", "8BITMIME" };
	if (r->body != NULL)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
		if (strlen(types[i]) == len && strncasecmp(v, types[i], len) == 0) {
			r->body = types[i];
			return true;
		}
	}
	return false;
}

static const struct {
	const char *keyword;
	bool (*parse)(const char *value, size_t len, struct smtp_mail_params *r);
} smtp_mail_params_table[] = {
	{ "SIZE", smtp_param_size },
	{ "BODY", smtp_param_body },
};

enum smtp_params_result smtp_command_mail_params(const char *params,
						 struct smtp_mail_params *r)
{
	memset(r, 0, sizeof(*r));
	for (const char *p = params; *p != '\0'; ) {
		size_t wlen = strcspn(p, " ");
		const char *eq = memchr(p, '=', wlen);
		size_t klen = eq != NULL ? (size_t)(eq - p) : wlen;
		size_t i = 0;
		while (i < ARRAY_SIZE(smtp_mail_params_table) &&
		       (strlen(smtp_mail_params_table[i].keyword) != klen ||
			strncasecmp(p, smtp_mail_params_table[i].keyword, klen) != 0))
			i++;
		if (i == ARRAY_SIZE(smtp_mail_params_table))
			return SMTP_PARAMS_UNSUPPORTED;
		if (eq == NULL ||
		    !smtp_mail_params_table[i].parse(eq + 1, wlen - klen - 1, r))
			return SMTP_PARAMS_INVALID;
		p += wlen;
		while (*p == ' ')
			p++;
	}
	return SMTP_PARAMS_OK;
}
