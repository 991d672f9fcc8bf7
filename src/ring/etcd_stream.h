/* Framing of the gateway's streamed bodies (watch, keepalive): one JSON
 * object per line, except the final error object, which has no newline
 * and is whatever is left when the body ends. HTTP chunks are not
 * messages: bytes arrive split anywhere, and a history replay sends lines
 * of 100 KB and more, so the buffer grows up to a limit. Pure: no I/O. */
#ifndef LOFT_RING_ETCD_STREAM_H
#define LOFT_RING_ETCD_STREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "common/parse.h"
#include "common/sbuf.h"

struct etcd_stream {
	struct sbuf buf;
	size_t scanned;		/* bytes of buf known to hold no newline */
	size_t taken;		/* the last line handed out, consumed next */
	size_t max_line;
};

void etcd_stream_init(struct etcd_stream *s, size_t max_line);
void etcd_stream_reset(struct etcd_stream *s);
void etcd_stream_free(struct etcd_stream *s);

/* Appends what arrived. -1 when the line being read exceeds max_line. */
int etcd_stream_feed(struct etcd_stream *s, const void *data, size_t len);

/* PARSE_OK with the next non-empty line (without its newline) in
 * *line_r / *len_r, valid until the next call; PARSE_MORE when no whole
 * line is buffered. With at_end (the body ended), what is left counts as
 * a last line. */
enum parse_result etcd_stream_next(struct etcd_stream *s, bool at_end,
				   const char **line_r, size_t *len_r);

#endif
