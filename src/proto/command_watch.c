/* The commands a relayed session's client ends with (command_watch.h). */
#include "proto/command_watch.h"

#include <string.h>
#include <strings.h>

const struct command_watch command_watch_imap = {
	.tagged = true, .logout = "LOGOUT", .opaque = "COMPRESS",
};
const struct command_watch command_watch_pop3 = { .logout = "QUIT" };
const struct command_watch command_watch_managesieve = { .logout = "LOGOUT" };
const struct command_watch command_watch_submission = { .logout = "QUIT" };

/* Whether the word [p, end) is `name`, ignoring case. */
static bool command_watch_is(const char *p, const char *end, const char *name)
{
	size_t n = strlen(name);
	return (size_t)(end - p) == n && strncasecmp(p, name, n) == 0;
}

unsigned int command_watch_last_line(const struct command_watch *w, const char *data,
				     size_t len)
{
	if (len == 0 || data[len - 1] != '\n')
		return 0;
	const char *end = data + len - 1;
	if (end > data && end[-1] == '\r')
		end--;
	const char *nl = memrchr(data, '\n', (size_t)(end - data));
	const char *p = nl != NULL ? nl + 1 : data;
	if (w->tagged) {
		const char *sp = memchr(p, ' ', (size_t)(end - p));
		if (sp == NULL || sp == p)
			return 0;
		p = sp + 1;
	}
	const char *word_end = memchr(p, ' ', (size_t)(end - p));
	if (word_end == NULL)
		word_end = end;
	unsigned int flags = 0;
	/* a logout takes no arguments */
	if (w->logout != NULL && word_end == end && command_watch_is(p, word_end, w->logout))
		flags |= COMMAND_WATCH_LOGOUT;
	if (w->opaque != NULL && command_watch_is(p, word_end, w->opaque))
		flags |= COMMAND_WATCH_OPAQUE;
	return flags;
}
