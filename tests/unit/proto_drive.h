/* Driving a protocol's front and back machines in unit tests, whole or
 * one byte at a time (include after cmocka.h). */
#ifndef LOFT_TEST_PROTO_DRIVE_H
#define LOFT_TEST_PROTO_DRIVE_H

#include <stdbool.h>
#include <string.h>

#include "common/sbuf.h"
#include "common/xmalloc.h"
#include "proto/back.h"
#include "proto/front.h"

struct drive {
	struct front *f;
	struct sbuf in;
	struct sbuf out;
};

static inline void drive_init(struct drive *d, const struct front_ops *ops,
			      const struct front_params *params)
{
	memset(d, 0, sizeof(*d));
	d->f = ops->create(params);
	d->f->starttls_available = true;
	ops->greet(d->f, &d->out);
}

static inline void drive_deinit(struct drive *d)
{
	d->f->ops->destroy(d->f);
	sbuf_free(&d->in);
	sbuf_free(&d->out);
}

/* Feeds what is buffered until an event or no progress. */
static inline enum front_event drive_run(struct drive *d)
{
	for (;;) {
		size_t consumed;
		if (sbuf_len(&d->in) == 0)
			return FRONT_EV_NONE;
		enum front_event ev = d->f->ops->feed(d->f,
			(unsigned char *)sbuf_mdata(&d->in), sbuf_len(&d->in),
			&consumed, &d->out);
		sbuf_consume(&d->in, consumed);
		if (ev != FRONT_EV_NONE)
			return ev;
		if (consumed == 0)
			return FRONT_EV_NONE;
	}
}

/* Sends input whole or byte by byte; stops at the first event. */
static inline enum front_event drive_send(struct drive *d, const char *s, bool bytewise)
{
	size_t len = strlen(s);
	if (!bytewise) {
		sbuf_append(&d->in, s, len);
		return drive_run(d);
	}
	for (size_t i = 0; i < len; i++) {
		sbuf_append(&d->in, s + i, 1);
		enum front_event ev = drive_run(d);
		if (ev != FRONT_EV_NONE) {
			sbuf_append(&d->in, s + i + 1, len - i - 1);
			return ev;
		}
	}
	return FRONT_EV_NONE;
}

static inline char *drive_take_out(struct drive *d)
{
	char *s = xstrdup(sbuf_cstr(&d->out));
	sbuf_reset(&d->out);
	return s;
}

static inline void expect_out(struct drive *d, const char *expected)
{
	char *got = drive_take_out(d);
	if (strcmp(got, expected) != 0)
		fail_msg("got:\n%s\nwant:\n%s", got, expected);
	free(got);
}

/* Feeds backend lines (whole or bytewise) until an event. */
static inline enum back_event back_send(struct back *b, const char *s, bool bytewise,
					struct sbuf *out)
{
	struct sbuf in = SBUF_INIT;
	size_t len = strlen(s);
	enum back_event ev = BACK_EV_NONE;
	for (size_t i = 0; i < len && ev == BACK_EV_NONE; ) {
		size_t n = bytewise ? 1 : len;
		sbuf_append(&in, s + i, n);
		i += n;
		size_t consumed;
		ev = b->ops->feed(b, (const unsigned char *)sbuf_data(&in),
				  sbuf_len(&in), &consumed, out);
		sbuf_consume(&in, consumed);
	}
	sbuf_free(&in);
	return ev;
}

static inline void expect_sbuf(struct sbuf *sb, const char *expected)
{
	if (strcmp(sbuf_cstr(sb), expected) != 0)
		fail_msg("got:\n%s\nwant:\n%s", sbuf_cstr(sb), expected);
	sbuf_reset(sb);
}

/* A backend script (what comes after `prefix`) and how it must fail. */
struct back_failure {
	const char *script;
	enum back_fail fail;
	const char *reply;	/* BACK_FAIL_REPLY: the text passed on */
};

/* Runs each script, whole and byte by byte, on a fresh machine. */
static inline void expect_back_failures(const struct back_ops *ops,
					const struct back_params *params,
					const char *prefix,
					const struct back_failure *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (int bytewise = 0; bytewise < 2; bytewise++) {
			struct sbuf out = SBUF_INIT;
			struct back *b = ops->create(params);
			if (prefix != NULL)
				assert_int_equal(back_send(b, prefix, bytewise, &out),
						 BACK_EV_NONE);
			assert_int_equal(back_send(b, cases[i].script, bytewise, &out),
					 BACK_EV_FAIL);
			if (b->fail != cases[i].fail)
				fail_msg("case %zu: fail %d, want %d", i, b->fail,
					 cases[i].fail);
			if (cases[i].reply != NULL)
				assert_string_equal(b->reply, cases[i].reply);
			ops->destroy(b);
			sbuf_free(&out);
		}
	}
}

#endif
