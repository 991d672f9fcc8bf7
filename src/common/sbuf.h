/* Growable byte buffer. Empty buffers own no memory, so idle sessions that
 * embed one cost only the struct. */
#ifndef LOFT_COMMON_SBUF_H
#define LOFT_COMMON_SBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/macros.h"

struct sbuf {
	char *data;	/* NULL until something is appended */
	size_t len;
	size_t cap;
	size_t start;	/* consumed prefix, reclaimed lazily */
	bool secret;	/* sticky: see sbuf_set_secret() */
};

#define SBUF_INIT { NULL, 0, 0, 0, false }

void sbuf_free(struct sbuf *sb);
/* Frees the memory if the buffer is empty (returns to the idle state). */
void sbuf_release_if_empty(struct sbuf *sb);
void sbuf_reset(struct sbuf *sb);

void sbuf_append(struct sbuf *sb, const void *data, size_t len);
void sbuf_appends(struct sbuf *sb, const char *s);
void sbuf_appendc(struct sbuf *sb, char c);
void sbuf_appendf(struct sbuf *sb, const char *fmt, ...) ATTR_FORMAT(2, 3);
void sbuf_vappendf(struct sbuf *sb, const char *fmt, va_list ap)
	ATTR_FORMAT(2, 0);
/* Reserves room for `len` more bytes and returns where they go; the caller
 * then calls sbuf_commit() with how many it wrote. */
char *sbuf_reserve(struct sbuf *sb, size_t len);
void sbuf_commit(struct sbuf *sb, size_t len);

/* Drops `n` bytes from the front. */
void sbuf_consume(struct sbuf *sb, size_t n);
/* Drops bytes after the first `len`. */
void sbuf_truncate(struct sbuf *sb, size_t len);

static inline const char *sbuf_data(const struct sbuf *sb)
{
	return sb->data == NULL ? "" : sb->data + sb->start;
}
/* Mutable view; only valid on a non-empty buffer. */
static inline char *sbuf_mdata(struct sbuf *sb)
{
	return sb->data + sb->start;
}
static inline size_t sbuf_len(const struct sbuf *sb)
{
	return sb->len;
}
static inline bool sbuf_is_empty(const struct sbuf *sb)
{
	return sb->len == 0;
}
/* NUL-terminated view (the NUL is not counted in len). */
const char *sbuf_cstr(struct sbuf *sb);

/* Wipes the contents (they held a secret) and frees the memory. */
void sbuf_free_secret(struct sbuf *sb);
/* Marks the buffer as one that carries secrets (a login line with its
 * password). From then on every byte it lets go of is wiped first with
 * explicit_bzero(): bytes consumed, truncated or reset, the old block
 * when it grows or moves its bytes to the front, and the memory it
 * frees. The flag stays through sbuf_free() and sbuf_release_if_empty(),
 * so a buffer that empties and fills again stays secret. */
void sbuf_set_secret(struct sbuf *sb);

#endif
