/* State shared by every protocol's backend side. */
#include "proto/back.h"

#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/xmalloc.h"
#include "proto/line.h"

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
	return line_next(buf, len, BACK_MAX_LINE, consumed_r);
}

enum back_event back_feed_lines(struct back *b, const unsigned char *buf, size_t len,
				size_t *consumed_r, struct sbuf *out)
{
	enum back_event ev = BACK_EV_NONE;
	size_t off = 0;

	while (ev == BACK_EV_NONE && !b->done) {
		size_t consumed;
		long n = back_next_line(buf + off, len - off, &consumed);
		if (n == -1)
			break;
		if (n == -2) {
			b->fail = BACK_FAIL_TEMP;
			b->error = "backend line too long";
			ev = BACK_EV_FAIL;
			break;
		}
		ev = b->ops->line(b, (const char *)buf + off, (size_t)n, out);
		off += consumed;
	}
	if (ev == BACK_EV_OK || ev == BACK_EV_FAIL)
		b->done = true;
	*consumed_r = off;
	return ev;
}

void back_append_plain(const struct back_params *p, struct sbuf *out)
{
	/* authzid NUL authcid NUL password: a master logs in as the user */
	const char *authzid = p->master_user != NULL ? p->user : "";
	const char *authcid = p->master_user != NULL ? p->master_user : p->user;
	size_t zlen = strlen(authzid), ulen = strlen(authcid), plen = strlen(p->password);
	size_t len = zlen + 1 + ulen + 1 + plen;
	char *msg = xmalloc(len);
	memcpy(msg, authzid, zlen);
	msg[zlen] = '\0';
	memcpy(msg + zlen + 1, authcid, ulen);
	msg[zlen + 1 + ulen] = '\0';
	memcpy(msg + zlen + 2 + ulen, p->password, plen);
	base64_encode(out, msg, len);
	explicit_bzero(msg, len);
	free(msg);
}
