/* Finding the next line in a buffer, for the line-based protocols. */
#ifndef LOFT_PROTO_LINE_H
#define LOFT_PROTO_LINE_H

#include <stddef.h>

/* Finds the next complete line in buf (LF or CRLF ended). Returns its
 * length without the line end and sets *consumed_r past the LF; -1 when
 * no LF yet (*consumed_r 0); -2 when more than max bytes come without
 * one. */
long line_next(const unsigned char *buf, size_t len, size_t max, size_t *consumed_r);

#endif
