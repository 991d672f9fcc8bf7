/* Dovecot's tab-escaping for TAB-separated protocol lines (reference §0):
 * 0x01 escapes NUL, 0x01, TAB, CR and LF. */
#ifndef LOFT_COMMON_TABESCAPE_H
#define LOFT_COMMON_TABESCAPE_H

#include <stddef.h>

#include "common/sbuf.h"

void tabescape_append(struct sbuf *dst, const char *s);
/* Unescapes in place; returns the new length. 0x01 followed by any other
 * byte yields that byte; a trailing lone 0x01 is dropped. */
size_t tabunescape_inplace(char *s, size_t len);

/* Splits a line (no LF) on TAB in place and unescapes each field.
 * An empty line gives zero fields. Returns the field count, or -1 when the
 * line has more than max_fields fields. */
int tabsplit_inplace(char *line, char **fields, int max_fields);

#endif
