/* Line splitting. */
#include "proto/line.h"

#include <string.h>

#include "common/macros.h"

long line_next(const unsigned char *buf, size_t len, size_t max, size_t *consumed_r)
{
	/* a line of max bytes has its LF at max + 1 at the latest (CRLF) */
	const unsigned char *lf = memchr(buf, '\n', MIN(len, max + 2));
	*consumed_r = 0;
	if (lf == NULL)
		return len > max + 1 ? -2 : -1;
	size_t end = (size_t)(lf - buf);
	if (end > 0 && buf[end - 1] == '\r')
		end--;
	/* an LF at max + 1 without its CR ends a line one byte too long */
	if (end > max)
		return -2;
	*consumed_r = (size_t)(lf - buf) + 1;
	return (long)end;
}
