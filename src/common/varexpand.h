/* The subset of Dovecot's %-variable expansion that usernames need
 * (reference §1.1): %u / %{user} the username, %n / %{username} the part
 * before the first '@', %d / %{domain} the part after it (empty without
 * '@'), %% a literal '%'. Modifiers between '%' and the variable: L
 * (ASCII lower-case) and U (ASCII upper-case). */
#ifndef LOFT_COMMON_VAREXPAND_H
#define LOFT_COMMON_VAREXPAND_H

#include <stdbool.h>

#include "common/sbuf.h"

/* Checks a template once (at config time); returns 0 or -1 and a reason. */
int varexpand_user_validate(const char *tmpl, const char **error_r);
/* Appends the expansion of a validated template. */
void varexpand_user(struct sbuf *dst, const char *tmpl, const char *user);
/* True when the template is exactly "%u" or "%Lu" (Dovecot's fast paths). */
bool varexpand_user_is_plain(const char *tmpl, bool *lowercase_r);

/* One %-sequence, for callers that place each value themselves (SQL
 * query parameters) rather than paste it into the text. */
struct varexpand_token {
	char modifier;		/* 0, 'L' or 'U' */
	unsigned int var;	/* which variable (opaque) */
	size_t len;		/* bytes of template consumed after '%' */
};
/* Parses the sequence that starts after a '%' (not "%%"). */
int varexpand_token_parse(const char *p, struct varexpand_token *t_r,
			  const char **error_r);
/* Appends the token's value for user. */
void varexpand_token_append(struct sbuf *dst, const struct varexpand_token *t,
			    const char *user);

#endif
