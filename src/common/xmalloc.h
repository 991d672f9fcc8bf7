/* Allocation that never returns NULL: out of memory aborts the process,
 * because a proxy that half-handles OOM corrupts sessions instead. */
#ifndef LOFT_COMMON_XMALLOC_H
#define LOFT_COMMON_XMALLOC_H

#include <stdarg.h>
#include <stddef.h>

#include "common/macros.h"

void *xmalloc(size_t size) ATTR_MALLOC;
void *xcalloc(size_t nmemb, size_t size) ATTR_MALLOC;
void *xrealloc(void *ptr, size_t size);
/* Grows an array to hold at least `need` elements; doubles capacity. */
void *xgrow(void *ptr, size_t *cap, size_t need, size_t elem_size);
char *xstrdup(const char *s) ATTR_MALLOC;
char *xstrndup(const char *s, size_t n) ATTR_MALLOC;
void *xmemdup(const void *p, size_t n) ATTR_MALLOC;
char *xasprintf(const char *fmt, ...) ATTR_FORMAT(1, 2) ATTR_MALLOC;
char *xvasprintf(const char *fmt, va_list ap) ATTR_FORMAT(1, 0) ATTR_MALLOC;

/* Frees a string that may hold a secret, wiping it first. */
void xfree_secret(char **s);

#endif
