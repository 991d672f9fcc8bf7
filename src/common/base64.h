/* Base64 (RFC 4648, standard alphabet, padded) as SASL uses it. */
#ifndef LOFT_COMMON_BASE64_H
#define LOFT_COMMON_BASE64_H

#include <stddef.h>

#include "common/sbuf.h"

#define BASE64_ENCODED_LEN(n) ((((n) + 2) / 3) * 4)
#define BASE64_DECODED_MAX(n) (((n) / 4) * 3 + 3)

void base64_encode(struct sbuf *dst, const void *src, size_t len);
/* Strict decoding: padding required, no whitespace. Writes at most
 * BASE64_DECODED_MAX(len) bytes to dst. Returns the decoded length or -1. */
long base64_decode(const char *src, size_t len, unsigned char *dst);

#endif
