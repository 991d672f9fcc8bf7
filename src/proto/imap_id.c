/* IMAP ID's parameters read in pieces: a small machine over the bytes of
 * one line that hands out each key and value pair as soon as it is
 * complete. Every byte is looked at once: a token that is not complete
 * yet is resumed where the scan stopped. */
#include "proto/imap_id.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "common/macros.h"

/* "{" + 10 digits + "+}" */
#define IMAP_ID_MARKER_MAX 13

void imap_id_reader_init(struct imap_id_reader *r, size_t max_string,
			 size_t max_literal)
{
	memset(r, 0, sizeof(*r));
	r->max_string = max_string;
	r->max_literal = max_literal;
	r->state = IMAP_ID_OPEN;
}

/* The ID is refused at byte `at`; if that is where the line ends, the
 * line end is the ID's too. */
static enum parse_result imap_id_fail(struct imap_id_reader *r, const unsigned char *buf,
				      size_t len, size_t at, const char *error)
{
	r->error = error;
	r->consumed = at;
	if (at < len && buf[at] == '\n') {
		r->consumed = at + 1;
		r->line_ended = true;
	} else if (at + 1 < len && buf[at] == '\r' && buf[at + 1] == '\n') {
		r->consumed = at + 2;
		r->line_ended = true;
	}
	return PARSE_ERROR;
}

static bool imap_id_arg_is_nil(const unsigned char *buf, const struct imap_arg *a)
{
	return a->type == IMAP_ARG_ATOM && a->len == 3 &&
		strncasecmp((const char *)buf + a->off, "NIL", 3) == 0;
}

/* A string is complete: what it means where it stands. PARSE_OK for a
 * pair, PARSE_MORE to read on. */
static enum parse_result imap_id_string(struct imap_id_reader *r, const unsigned char *buf,
					size_t len, const struct imap_arg *arg)
{
	r->need_space = true;
	switch (r->state) {
	case IMAP_ID_OPEN:
		if (!imap_id_arg_is_nil(buf, arg))
			return imap_id_fail(r, buf, len, r->pos, "Invalid ID parameters.");
		r->state = IMAP_ID_END;
		return PARSE_MORE;
	case IMAP_ID_KEY:
		r->key = *arg;
		r->state = IMAP_ID_VALUE;
		return PARSE_MORE;
	case IMAP_ID_VALUE:
		r->value = *arg;
		r->value_nil = imap_id_arg_is_nil(buf, arg);
		r->have_pair = true;
		r->consumed = r->pos;
		/* the caller drops the pair: the next one starts the buffer */
		r->pos = 0;
		r->state = IMAP_ID_KEY;
		return PARSE_OK;
	case IMAP_ID_END:
		break;
	}
	return imap_id_fail(r, buf, len, r->pos, "Invalid ID parameters.");
}

/* Reads on in the current token. PARSE_OK: complete, in *arg_r. */
static enum parse_result imap_id_token(struct imap_id_reader *r, unsigned char *buf,
				       size_t len, struct imap_arg *arg_r)
{
	size_t start = r->token_start;

	switch (r->token) {
	case IMAP_ID_TOKEN_ATOM:
		while (r->pos < len && imap_char_is_atom(buf[r->pos]))
			r->pos++;
		if (r->pos - start > r->max_string)
			return imap_id_fail(r, buf, len, r->pos, "ID parameter too long.");
		if (r->pos == len)
			return PARSE_MORE;	/* the atom may go on */
		*arg_r = (struct imap_arg){ IMAP_ARG_ATOM, (uint32_t)start,
					    (uint32_t)(r->pos - start) };
		break;
	case IMAP_ID_TOKEN_QUOTED:
		for (; r->pos < len; r->pos++) {
			unsigned char c = buf[r->pos];
			if (c == '"')
				break;
			if (c == '\r' || c == '\n')
				return imap_id_fail(r, buf, len, r->pos, "Missing '\"'.");
			if (c != '\\')
				continue;
			if (r->pos + 1 == len)
				break;		/* the escaped byte is still to come */
			if (buf[r->pos + 1] != '\\' && buf[r->pos + 1] != '"')
				return imap_id_fail(r, buf, len, r->pos,
						    "Invalid escape in quoted string.");
			r->pos++;
		}
		if (r->pos - start - 1 > r->max_string)
			return imap_id_fail(r, buf, len, r->pos, "ID parameter too long.");
		if (r->pos == len || buf[r->pos] != '"')
			return PARSE_MORE;
		/* unescape in place: out never overtakes in */
		size_t out = start + 1;
		for (size_t in = start + 1; in < r->pos; in++) {
			if (buf[in] == '\\')
				in++;
			buf[out++] = buf[in];
		}
		*arg_r = (struct imap_arg){ IMAP_ARG_QUOTED, (uint32_t)(start + 1),
					    (uint32_t)(out - start - 1) };
		r->pos++;
		break;
	case IMAP_ID_TOKEN_MARKER: {
		while (r->pos < len && buf[r->pos] != '}' && r->pos - start < IMAP_ID_MARKER_MAX)
			r->pos++;
		if (r->pos - start >= IMAP_ID_MARKER_MAX)
			return imap_id_fail(r, buf, len, r->pos, "Invalid literal.");
		if (r->pos + 1 >= len)
			return PARSE_MORE;	/* the "}" or what follows it */
		size_t lf = r->pos + 1;
		if (buf[lf] == '\r') {
			if (lf + 1 == len)
				return PARSE_MORE;
			lf++;
		}
		if (buf[lf] != '\n')
			return imap_id_fail(r, buf, len, lf, "Invalid literal.");
		uint64_t size;
		bool sync;
		if (imap_literal_marker_parse(buf + start, r->pos + 1 - start, &size, &sync) < 0)
			return imap_id_fail(r, buf, len, lf, "Invalid literal.");
		if (size > r->max_literal) {
			/* as imap_parser: a LITERAL+ is on its way regardless */
			r->fatal = !sync;
			return imap_id_fail(r, buf, len, lf, "Literal too large.");
		}
		if (sync)
			r->continuations++;
		r->pos = lf + 1;
		r->token = IMAP_ID_TOKEN_LITERAL;
		r->token_start = r->pos;
		r->literal_left = (size_t)size;
		/* its bytes may be here already */
	}
		/* fall through */
	case IMAP_ID_TOKEN_LITERAL: {
		size_t take = MIN(len - r->pos, r->literal_left);
		r->pos += take;
		r->literal_left -= take;
		if (r->literal_left > 0)
			return PARSE_MORE;
		*arg_r = (struct imap_arg){ IMAP_ARG_LITERAL, (uint32_t)r->token_start,
					    (uint32_t)(r->pos - r->token_start) };
		break;
	}
	case IMAP_ID_TOKEN_NONE:
		break;
	}
	r->token = IMAP_ID_TOKEN_NONE;
	return PARSE_OK;
}

/* Between tokens: where the next one starts, the list's end, the line's. */
static enum parse_result imap_id_between(struct imap_id_reader *r, const unsigned char *buf,
					 size_t len)
{
	unsigned char c = buf[r->pos];

	if (r->state == IMAP_ID_END) {
		if (c == ' ') {
			r->pos++;
			return PARSE_MORE;
		}
		if (c == '\r' && r->pos + 1 == len)
			return PARSE_MORE;
		if (c == '\n' || (c == '\r' && buf[r->pos + 1] == '\n')) {
			r->consumed = r->pos + (c == '\r' ? 2 : 1);
			r->done = true;
			return PARSE_OK;
		}
		return imap_id_fail(r, buf, len, r->pos, "Invalid ID parameters.");
	}
	if (c == ' ') {
		r->pos++;
		r->need_space = false;
		return PARSE_MORE;
	}
	if (c == '\r' || c == '\n')
		return imap_id_fail(r, buf, len, r->pos, r->state == IMAP_ID_OPEN ?
				    "Invalid ID parameters." : "Missing ')'.");
	if (r->state == IMAP_ID_OPEN && c == '(') {
		r->pos++;
		r->state = IMAP_ID_KEY;
		r->need_space = false;
		return PARSE_MORE;
	}
	if (r->state != IMAP_ID_OPEN && c == ')') {
		/* a key without its value is ignored, as in imap-login */
		r->pos++;
		r->state = IMAP_ID_END;
		return PARSE_MORE;
	}
	if (r->need_space)
		return imap_id_fail(r, buf, len, r->pos, "Invalid ID parameters.");
	r->token_start = r->pos;
	if (c == '"') {
		r->token = IMAP_ID_TOKEN_QUOTED;
		r->pos++;
	} else if (c == '{' && r->state != IMAP_ID_OPEN) {
		r->token = IMAP_ID_TOKEN_MARKER;
		r->pos++;
	} else if (imap_char_is_atom(c)) {
		r->token = IMAP_ID_TOKEN_ATOM;
	} else {
		/* "(" in the list: ID's values are no lists */
		return imap_id_fail(r, buf, len, r->pos, "Invalid ID parameters.");
	}
	return PARSE_MORE;
}

enum parse_result imap_id_read(struct imap_id_reader *r, unsigned char *buf, size_t len)
{
	r->consumed = 0;
	r->continuations = 0;
	r->error = NULL;
	r->fatal = false;
	r->line_ended = false;
	r->have_pair = false;
	r->done = false;
	while (r->pos < len) {
		size_t pos = r->pos;
		enum imap_id_token token = r->token;
		enum parse_result res;
		if (r->token != IMAP_ID_TOKEN_NONE) {
			struct imap_arg arg;
			res = imap_id_token(r, buf, len, &arg);
			if (res == PARSE_OK)
				res = imap_id_string(r, buf, len, &arg);
		} else {
			res = imap_id_between(r, buf, len);
		}
		if (res != PARSE_MORE)
			return res;
		if (r->pos == pos && r->token == token)
			break;	/* what comes next decides */
	}
	return PARSE_MORE;
}

long imap_id_command_prefix(const unsigned char *buf, size_t len, size_t *tag_len_r)
{
	static const char id[] = "ID ";
	size_t i = 0;

	while (i < len && i <= IMAP_TAG_MAX_LEN && imap_char_is_atom(buf[i]))
		i++;
	if (i == len && i <= IMAP_TAG_MAX_LEN)
		return -1;
	if (i == len || buf[i] != ' ' || !imap_tag_is_valid(buf, i))
		return 0;
	*tag_len_r = i;
	for (size_t k = 0; k < sizeof(id) - 1; k++) {
		if (i + 1 + k == len)
			return -1;
		if (toupper(buf[i + 1 + k]) != id[k])
			return 0;
	}
	return (long)(i + sizeof(id));
}
