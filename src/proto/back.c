/* State shared by every protocol's backend side. */
#include "proto/back.h"

#include <stdlib.h>
#include <string.h>

void back_init(struct back *b, const struct back_ops *ops,
	       const struct back_params *params)
{
	memset(b, 0, sizeof(*b));
	b->ops = ops;
	b->params = *params;
}

void back_deinit(struct back *b)
{
	free(b->reply);
	b->reply = NULL;
}

long back_next_line(const unsigned char *buf, size_t len, size_t *consumed_r)
{
	const unsigned char *lf = memchr(buf, '\n', MIN(len, BACK_MAX_LINE + 2));
	*consumed_r = 0;
	if (lf == NULL)
		return len > BACK_MAX_LINE + 1 ? -2 : -1;
	size_t end = (size_t)(lf - buf);
	*consumed_r = end + 1;
	if (end > 0 && buf[end - 1] == '\r')
		end--;
	return (long)end;
}
