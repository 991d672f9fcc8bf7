/* Iterative wildcard matching with single-star backtracking: linear in
 * practice and never recursive, so hostile masks cannot blow the stack. */
#include "common/wildcard.h"

#include <ctype.h>
#include <string.h>

bool wildcard_match_icase(const char *str, const char *mask)
{
	const char *star = NULL, *retry = NULL;

	while (*str != '\0') {
		if (*mask == '*') {
			star = mask++;
			retry = str;
		} else if (*mask == '?' ||
			   (*mask != '\0' &&
			    tolower((unsigned char)*mask) ==
			    tolower((unsigned char)*str))) {
			mask++;
			str++;
		} else if (star != NULL) {
			mask = star + 1;
			str = ++retry;
		} else {
			return false;
		}
	}
	while (*mask == '*')
		mask++;
	return *mask == '\0';
}

bool wildcard_has_wildcards(const char *mask)
{
	return strpbrk(mask, "*?") != NULL;
}
