/* Line framing for the gateway's streamed bodies. Each byte is looked at
 * once by memchr however the line is split, so a 100 KB line arriving in
 * small chunks costs no rescans. */
#include "ring/etcd_stream.h"

#include <string.h>

void etcd_stream_init(struct etcd_stream *s, size_t max_line)
{
	memset(s, 0, sizeof(*s));
	s->max_line = max_line;
}

void etcd_stream_reset(struct etcd_stream *s)
{
	sbuf_free(&s->buf);
	s->scanned = 0;
	s->taken = 0;
}

void etcd_stream_free(struct etcd_stream *s)
{
	etcd_stream_reset(s);
}

/* drops the line handed out last time */
static void etcd_stream_consume_taken(struct etcd_stream *s)
{
	if (s->taken == 0)
		return;
	sbuf_consume(&s->buf, s->taken);
	s->taken = 0;
	s->scanned = 0;
	sbuf_release_if_empty(&s->buf);
}

int etcd_stream_feed(struct etcd_stream *s, const void *data, size_t len)
{
	etcd_stream_consume_taken(s);
	sbuf_append(&s->buf, data, len);
	/* only an unfinished line can be too long: whole lines leave as
	 * soon as the owner asks for them */
	if (sbuf_len(&s->buf) > s->max_line &&
	    memchr(sbuf_data(&s->buf) + s->scanned, '\n',
		   sbuf_len(&s->buf) - s->scanned) == NULL)
		return -1;
	return 0;
}

enum parse_result etcd_stream_next(struct etcd_stream *s, bool at_end,
				   const char **line_r, size_t *len_r)
{
	etcd_stream_consume_taken(s);
	for (;;) {
		const char *data = sbuf_data(&s->buf);
		size_t len = sbuf_len(&s->buf);
		const char *nl = memchr(data + s->scanned, '\n', len - s->scanned);
		size_t line_len;
		if (nl != NULL) {
			line_len = (size_t)(nl - data);
			s->taken = line_len + 1;
		} else if (at_end && len > 0) {
			line_len = len;
			s->taken = len;
		} else {
			s->scanned = len;
			return PARSE_MORE;
		}
		/* blank lines (and a CR before the LF) carry nothing */
		while (line_len > 0 && (data[line_len - 1] == '\r' ||
					data[line_len - 1] == ' '))
			line_len--;
		if (line_len == 0) {
			etcd_stream_consume_taken(s);
			continue;
		}
		*line_r = data;
		*len_r = line_len;
		return PARSE_OK;
	}
}
