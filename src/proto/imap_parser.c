/* IMAP command parser. Two loops: the outer one finds line ends (memchr)
 * and skips literal bodies by count; the inner one tokenises each
 * complete line segment once. */
#include "proto/imap_parser.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xmalloc.h"

void imap_parser_init(struct imap_parser *p, size_t max_line, size_t max_literal)
{
	memset(p, 0, sizeof(*p));
	p->max_line = max_line;
	p->max_literal = max_literal;
}

void imap_parser_init_tagless(struct imap_parser *p, size_t max_line,
			      size_t max_literal)
{
	imap_parser_init(p, max_line, max_literal);
	p->tagless = true;
}

bool imap_parser_at_start(const struct imap_parser *p)
{
	return p->pos == 0 && !p->skipping && p->literal_left == 0;
}

void imap_parser_skip_line(struct imap_parser *p)
{
	p->skipping = true;
}

void imap_parser_reset(struct imap_parser *p)
{
	size_t max_line = p->max_line, max_literal = p->max_literal;
	bool skipping = p->skipping, tagless = p->tagless, response = p->response;
	imap_parser_init(p, max_line, max_literal);
	p->skipping = skipping;
	p->tagless = tagless;
	p->response = response;
}

static enum parse_result imap_parser_fail(struct imap_parser *p, size_t consumed,
					  const char *error, bool fatal)
{
	p->consumed = consumed;
	p->error = error;
	p->fatal = fatal;
	return PARSE_ERROR;
}

bool imap_char_is_atom(unsigned char c)
{
	return c > 0x20 && c != 0x7f && c != '(' && c != ')' && c != '"' &&
		c != '{';
}

bool imap_tag_is_valid(const unsigned char *s, size_t len)
{
	if (len == 0 || len > IMAP_TAG_MAX_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!imap_char_is_atom(s[i]) || strchr("+%*\\", s[i]) != NULL)
			return false;
	}
	return true;
}

/* Records a token: the first is the tag (an atom without '+'), the second
 * the command name, the rest arguments. -1: misplaced, -2: too many. */
static int imap_parser_add_arg(struct imap_parser *p, const unsigned char *buf,
			       enum imap_arg_type type, size_t off, size_t len)
{
	struct imap_arg arg = { type, (uint32_t)off, (uint32_t)len };

	if (!p->have_tag && p->tagless)
		p->have_tag = true;	/* an empty tag: this token is the command */
	if (p->response) {
		if (p->nargs == IMAP_MAX_ARGS)
			return -2;
		p->args[p->nargs++] = arg;
		return 0;
	}
	if (!p->have_tag) {
		if (type != IMAP_ARG_ATOM || !imap_tag_is_valid(buf + off, len))
			return -1;
		p->tag = arg;
		p->have_tag = true;
		return 0;
	}
	if (p->cmd.len == 0) {
		if (type != IMAP_ARG_ATOM)
			return -1;
		p->cmd = arg;
		return 0;
	}
	if (p->nargs == IMAP_MAX_ARGS)
		return -2;
	p->args[p->nargs++] = arg;
	return 0;
}

int imap_literal_marker_parse(const unsigned char *s, size_t len,
			      uint64_t *size_r, bool *sync_r)
{
	if (len < 3 || s[0] != '{' || s[len - 1] != '}')
		return -1;
	size_t end = len - 1;
	*sync_r = true;
	if (s[end - 1] == '+') {
		*sync_r = false;
		end--;
	}
	if (end == 1 || end - 1 > 10)
		return -1;
	uint64_t v = 0;
	for (size_t i = 1; i < end; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*size_r = v;
	return 0;
}

enum segment_result { SEG_DONE, SEG_LITERAL, SEG_ERROR };

/* Tokenises buf[start, end) (the CRLF excluded). On SEG_LITERAL, the
 * literal's size and kind are returned. */
static enum segment_result imap_parse_segment(struct imap_parser *p,
					      unsigned char *buf, size_t start,
					      size_t end, uint64_t *lit_size_r,
					      bool *lit_sync_r)
{
	size_t i = start;

	while (i < end) {
		unsigned char c = buf[i];
		if (c == ' ') {
			i++;
			continue;
		}
		if (c == '(' || c == ')') {
			if (!p->have_tag || p->cmd.len == 0) {
				p->error = "Error in IMAP command received by server.";
				return SEG_ERROR;
			}
			if (c == ')' && --p->depth < 0) {
				p->error = "Unexpected ')'.";
				return SEG_ERROR;
			}
			if (c == '(')
				p->depth++;
			if (imap_parser_add_arg(p, buf, c == '(' ? IMAP_ARG_LIST_START :
						IMAP_ARG_LIST_END, i, 0) < 0) {
				p->error = "Too many arguments.";
				return SEG_ERROR;
			}
			i++;
			continue;
		}
		if (c == '"') {
			/* unescape in place: out never overtakes in */
			size_t out = i + 1, in = i + 1;
			for (; in < end && buf[in] != '"'; in++) {
				if (buf[in] == '\\') {
					if (in + 1 >= end ||
					    (buf[in + 1] != '\\' && buf[in + 1] != '"')) {
						p->error = "Invalid escape in quoted string.";
						return SEG_ERROR;
					}
					in++;
				}
				buf[out++] = buf[in];
			}
			if (in >= end) {
				p->error = "Missing '\"'.";
				return SEG_ERROR;
			}
			int r = imap_parser_add_arg(p, buf, IMAP_ARG_QUOTED, i + 1,
						    out - (i + 1));
			if (r < 0) {
				p->error = r == -2 ? "Too many arguments." :
					"Error in IMAP command received by server.";
				return SEG_ERROR;
			}
			i = in + 1;
			if (i < end && buf[i] != ' ' && buf[i] != ')') {
				p->error = "Missing space after quoted string.";
				return SEG_ERROR;
			}
			continue;
		}
		if (c == '{') {
			if (imap_literal_marker_parse(buf + i, end - i, lit_size_r,
						      lit_sync_r) < 0) {
				p->error = "Invalid literal.";
				return SEG_ERROR;
			}
			/* a literal is an argument: not a tag or a command */
			if (!p->response && (!p->have_tag || p->cmd.len == 0)) {
				p->error = "Error in IMAP command received by server.";
				return SEG_ERROR;
			}
			p->have_tag = true;
			return SEG_LITERAL;
		}
		if (c < 0x20 || c == 0x7f) {
			p->error = "Control character in command.";
			return SEG_ERROR;
		}
		size_t s = i;
		while (i < end && imap_char_is_atom(buf[i]))
			i++;
		int r = imap_parser_add_arg(p, buf, IMAP_ARG_ATOM, s, i - s);
		if (r < 0) {
			p->error = r == -2 ? "Too many arguments." :
				"Error in IMAP command received by server.";
			return SEG_ERROR;
		}
		if (i < end && buf[i] != ' ' && buf[i] != ')' && buf[i] != '(') {
			p->error = "Invalid characters in atom.";
			return SEG_ERROR;
		}
	}
	return SEG_DONE;
}

/* A line too long is refused untokenised; its tag is what runs from the
 * segment's start to the first space, if that is a tag. */
static void imap_parser_read_tag(struct imap_parser *p, const unsigned char *buf,
				 size_t len)
{
	if (p->have_tag || p->tagless)
		return;
	size_t end = p->seg_start;
	while (end < len && end - p->seg_start <= IMAP_TAG_MAX_LEN &&
	       imap_char_is_atom(buf[end]))
		end++;
	if (end < len && buf[end] == ' ' &&
	    imap_tag_is_valid(buf + p->seg_start, end - p->seg_start)) {
		p->tag = (struct imap_arg){ IMAP_ARG_ATOM, (uint32_t)p->seg_start,
					    (uint32_t)(end - p->seg_start) };
		p->have_tag = true;
	}
}

/* Finds the next LF at or after p->pos; handles skipping and the line
 * length limit. Returns the LF offset and in *end_r where the line ends
 * without its CR, or -1 with *res_r set. */
static long imap_parser_next_lf(struct imap_parser *p, unsigned char *buf,
				size_t len, size_t *end_r, enum parse_result *res_r)
{
	unsigned char *lf = memchr(buf + p->pos, '\n', len - p->pos);

	if (p->skipping) {
		*res_r = PARSE_MORE;
		if (lf == NULL) {
			p->pos = p->consumed = len;
			return -1;
		}
		/* the caller drops the skipped bytes, then resumes */
		p->skipping = false;
		p->pos = p->consumed = (size_t)(lf - buf) + 1;
		return -1;
	}
	if (lf == NULL) {
		*res_r = PARSE_MORE;
		p->pos = len;
		/* +1: the line's CR may already be here without its LF */
		if (len - p->seg_start > p->max_line + 1) {
			p->skipping = true;
			*res_r = imap_parser_fail(p, len, "Command line too long.", false);
		}
		return -1;
	}
	size_t lfpos = (size_t)(lf - buf);
	size_t end = lfpos > p->seg_start && buf[lfpos - 1] == '\r' ? lfpos - 1 : lfpos;
	/* max_line counts the line without its CRLF */
	if (end - p->seg_start > p->max_line) {
		*res_r = imap_parser_fail(p, lfpos + 1, "Command line too long.", false);
		return -1;
	}
	*end_r = end;
	return (long)lfpos;
}

enum parse_result imap_parser_parse(struct imap_parser *p, unsigned char *buf,
				    size_t len)
{
	enum parse_result res;

	p->consumed = 0;
	p->continuations = 0;
	p->error = NULL;
	p->fatal = false;
	for (;;) {
		if (p->literal_left > 0) {
			size_t take = MIN(len - p->pos, p->literal_left);
			p->pos += take;
			p->literal_left -= take;
			if (p->literal_left > 0)
				return PARSE_MORE;
			p->seg_start = p->pos;
		}
		size_t end;
		long lf = imap_parser_next_lf(p, buf, len, &end, &res);
		if (lf < 0) {
			if (res == PARSE_ERROR)
				imap_parser_read_tag(p, buf, len);
			return res;
		}
		uint64_t lit_size;
		bool lit_sync;
		enum segment_result sr = imap_parse_segment(p, buf, p->seg_start, end,
							    &lit_size, &lit_sync);
		if (sr == SEG_ERROR)
			return imap_parser_fail(p, (size_t)lf + 1, p->error, false);
		if (sr == SEG_LITERAL) {
			if (lit_sync && p->tagless) {
				return imap_parser_fail(p, (size_t)lf + 1,
							"Synchronizing literals are not "
							"supported.", false);
			}
			if (lit_size > p->max_literal) {
				/* a synchronising literal is never sent if we
				 * refuse it; a non-synchronising one is already
				 * on its way and cannot be told apart from
				 * commands, so the connection must end */
				return imap_parser_fail(p, (size_t)lf + 1,
							"Literal too large.", !lit_sync);
			}
			if (imap_parser_add_arg(p, buf, IMAP_ARG_LITERAL, (size_t)lf + 1,
						(size_t)lit_size) < 0) {
				return imap_parser_fail(p, (size_t)lf + 1,
							"Too many arguments.", !lit_sync);
			}
			p->pos = (size_t)lf + 1;
			p->literal_left = (size_t)lit_size;
			p->seg_start = p->pos;
			if (lit_sync) {
				p->continuations++;
				if (p->pos == len)
					return PARSE_MORE;
			}
			if (lit_size == 0)
				continue;
			if (p->pos == len)
				return PARSE_MORE;
			continue;
		}
		/* the command is complete */
		p->pos = (size_t)lf + 1;
		p->consumed = p->pos;
		if (!p->have_tag) {
			/* an empty line: ignored, as clients send stray CRLFs */
			p->error = NULL;
			return PARSE_MORE;
		}
		if (p->cmd.len == 0 && !p->response)
			return imap_parser_fail(p, p->pos, "Missing command.", false);
		if (p->depth != 0)
			return imap_parser_fail(p, p->pos, "Missing ')'.", false);
		return PARSE_OK;
	}
}

enum parse_result imap_parser_read_line(struct imap_parser *p, unsigned char *buf,
					size_t len, const unsigned char **line_r,
					size_t *len_r)
{
	enum parse_result res;

	p->consumed = 0;
	p->error = NULL;
	p->fatal = false;
	size_t end;
	long lf = imap_parser_next_lf(p, buf, len, &end, &res);
	if (lf < 0)
		return res;
	*line_r = buf + p->seg_start;
	*len_r = end - p->seg_start;
	p->consumed = p->pos = (size_t)lf + 1;
	return PARSE_OK;
}

bool imap_arg_is_string(const struct imap_arg *arg)
{
	return arg->type == IMAP_ARG_ATOM || arg->type == IMAP_ARG_QUOTED ||
		arg->type == IMAP_ARG_LITERAL;
}

bool imap_arg_equals_icase(const unsigned char *buf, const struct imap_arg *arg,
			   const char *s)
{
	return strlen(s) == arg->len &&
		strncasecmp((const char *)buf + arg->off, s, arg->len) == 0;
}

bool imap_arg_is_nil(const unsigned char *buf, const struct imap_arg *arg)
{
	return arg->type == IMAP_ARG_ATOM && imap_arg_equals_icase(buf, arg, "NIL");
}

char *imap_arg_dup(const unsigned char *buf, const struct imap_arg *arg)
{
	if (memchr(buf + arg->off, '\0', arg->len) != NULL)
		return NULL;
	return xstrndup((const char *)buf + arg->off, arg->len);
}

bool imap_is_quotable(const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '\r' || c == '\n' || c >= 0x80)
			return false;
	}
	return true;
}

size_t imap_quoted_len(const char *s)
{
	size_t len = 2;
	for (; *s != '\0'; s++)
		len += *s == '"' || *s == '\\' ? 2 : 1;
	return len;
}

void imap_append_quoted(struct sbuf *out, const char *s)
{
	sbuf_appendc(out, '"');
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			sbuf_appendc(out, '\\');
		sbuf_appendc(out, *s);
	}
	sbuf_appendc(out, '"');
}
