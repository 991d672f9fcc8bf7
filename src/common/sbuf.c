/* Growable byte buffer with a lazily reclaimed consumed prefix, so that
 * consuming from the front is O(1) amortised. */
#include "common/sbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"

/* Wipes n bytes at p in a secret buffer. */
static void sbuf_wipe(const struct sbuf *sb, char *p, size_t n)
{
	if (sb->secret && n > 0)
		explicit_bzero(p, n);
}

void sbuf_free(struct sbuf *sb)
{
	if (sb->data != NULL)
		sbuf_wipe(sb, sb->data, sb->cap);
	free(sb->data);
	sb->data = NULL;
	sb->len = sb->cap = sb->start = 0;
}

void sbuf_free_secret(struct sbuf *sb)
{
	if (sb->data != NULL)
		explicit_bzero(sb->data, sb->cap);
	sbuf_free(sb);
}

void sbuf_set_secret(struct sbuf *sb)
{
	sb->secret = true;
}

void sbuf_release_if_empty(struct sbuf *sb)
{
	if (sb->len == 0)
		sbuf_free(sb);
}

void sbuf_reset(struct sbuf *sb)
{
	if (sb->data != NULL)
		sbuf_wipe(sb, sb->data + sb->start, sb->len);
	sb->len = 0;
	sb->start = 0;
}

/* Makes room for `extra` bytes after the data (plus one for a NUL). */
static void sbuf_make_room(struct sbuf *sb, size_t extra)
{
	size_t need = sb->len + extra + 1;
	if (sb->start + need <= sb->cap)
		return;
	if (sb->start > 0) {
		memmove(sb->data, sb->data + sb->start, sb->len);
		/* what lay behind the new end is a stale copy */
		sbuf_wipe(sb, sb->data + sb->len, sb->start);
		sb->start = 0;
		if (need <= sb->cap)
			return;
	}
	size_t ncap = sb->cap < 64 ? 64 : sb->cap;
	while (ncap < need)
		ncap *= 2;
	if (sb->secret && sb->data != NULL) {
		/* realloc() would free the old block unwiped */
		size_t len = sb->len;
		char *data = xmalloc(ncap);
		memcpy(data, sb->data, len);
		sbuf_free(sb);
		sb->data = data;
		sb->len = len;
	} else {
		sb->data = xrealloc(sb->data, ncap);
	}
	sb->cap = ncap;
}

char *sbuf_reserve(struct sbuf *sb, size_t len)
{
	sbuf_make_room(sb, len);
	return sb->data + sb->start + sb->len;
}

void sbuf_commit(struct sbuf *sb, size_t len)
{
	sb->len += len;
}

void sbuf_append(struct sbuf *sb, const void *data, size_t len)
{
	if (len == 0)
		return;
	memcpy(sbuf_reserve(sb, len), data, len);
	sb->len += len;
}

void sbuf_appends(struct sbuf *sb, const char *s)
{
	sbuf_append(sb, s, strlen(s));
}

void sbuf_appendc(struct sbuf *sb, char c)
{
	*sbuf_reserve(sb, 1) = c;
	sb->len++;
}

void sbuf_vappendf(struct sbuf *sb, const char *fmt, va_list ap)
{
	char small[256];
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(small, sizeof(small), fmt, ap2);
	va_end(ap2);
	if (n < 0)
		abort();
	if ((size_t)n < sizeof(small)) {
		sbuf_append(sb, small, (size_t)n);
		return;
	}
	char *dst = sbuf_reserve(sb, (size_t)n);
	vsnprintf(dst, (size_t)n + 1, fmt, ap);
	sb->len += (size_t)n;
}

void sbuf_appendf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sbuf_vappendf(sb, fmt, ap);
	va_end(ap);
}

void sbuf_consume(struct sbuf *sb, size_t n)
{
	if (sb->data != NULL)
		sbuf_wipe(sb, sb->data + sb->start, MIN(n, sb->len));
	if (n >= sb->len) {
		sb->len = 0;
		sb->start = 0;
		return;
	}
	sb->start += n;
	sb->len -= n;
}

void sbuf_truncate(struct sbuf *sb, size_t len)
{
	if (len < sb->len) {
		sbuf_wipe(sb, sb->data + sb->start + len, sb->len - len);
		sb->len = len;
	}
}

const char *sbuf_cstr(struct sbuf *sb)
{
	if (sb->data == NULL)
		return "";
	sbuf_make_room(sb, 0);
	sb->data[sb->start + sb->len] = '\0';
	return sb->data + sb->start;
}
