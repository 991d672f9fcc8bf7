/* Shell-like masks as doveadm matches usernames (reference §7.1): `*` any
 * run (also empty), `?` one character, ASCII case-insensitive, no escape. */
#ifndef LOFT_COMMON_WILDCARD_H
#define LOFT_COMMON_WILDCARD_H

#include <stdbool.h>

bool wildcard_match_icase(const char *str, const char *mask);
bool wildcard_has_wildcards(const char *mask);

#endif
