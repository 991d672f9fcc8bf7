/* Allocation wrappers: abort on out-of-memory. */
#include "common/xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

ATTR_NORETURN static void xmalloc_die(size_t size)
{
	char msg[96];
	int n = snprintf(msg, sizeof(msg), "fatal: out of memory (%zu bytes)\n", size);
	if (n > 0 && write(STDERR_FILENO, msg, (size_t)n) < 0) {
		/* nothing left to report it with */
	}
	abort();
}

void *xmalloc(size_t size)
{
	void *p = malloc(size == 0 ? 1 : size);
	if (p == NULL)
		xmalloc_die(size);
	return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb == 0 ? 1 : nmemb, size == 0 ? 1 : size);
	if (p == NULL)
		xmalloc_die(nmemb * size);
	return p;
}

void *xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size == 0 ? 1 : size);
	if (p == NULL)
		xmalloc_die(size);
	return p;
}

void *xgrow(void *ptr, size_t *cap, size_t need, size_t elem_size)
{
	if (need <= *cap)
		return ptr;
	size_t ncap = *cap < 4 ? 4 : *cap;
	while (ncap < need) {
		if (ncap > ((size_t)-1) / 2 / elem_size)
			xmalloc_die(need * elem_size);
		ncap *= 2;
	}
	*cap = ncap;
	return xrealloc(ptr, ncap * elem_size);
}

char *xstrdup(const char *s)
{
	return xmemdup(s, strlen(s) + 1);
}

char *xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = xmalloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

void *xmemdup(const void *p, size_t n)
{
	void *r = xmalloc(n);
	memcpy(r, p, n);
	return r;
}

char *xvasprintf(const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		abort(); /* invalid format: a programming error */
	char *p = xmalloc((size_t)n + 1);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *p = xvasprintf(fmt, ap);
	va_end(ap);
	return p;
}

void xfree_secret(char **s)
{
	if (*s == NULL)
		return;
	explicit_bzero(*s, strlen(*s));
	free(*s);
	*s = NULL;
}
