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

#endif
