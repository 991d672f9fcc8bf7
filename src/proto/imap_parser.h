/* Incremental parser for IMAP commands as they arrive before login:
 *
 *   tag SP command [SP arg]* CRLF      (or without the tag: ManageSieve)
 *   arg = atom | "quoted" | {n}CRLF<n bytes> | {n+}CRLF<n bytes> | ( args )
 *
 * The caller owns one input buffer that holds the command from its first
 * byte; it calls imap_parser_parse() with the whole buffer after each
 * read. Each byte is scanned once: complete line segments are tokenised
 * as they arrive, literal bodies are skipped by count. Arguments are
 * offsets into the buffer, so the buffer must not move until the command
 * has been handled (quoted strings are unescaped in place).
 *
 * Limits: each line segment (between literals) is at most max_line bytes,
 * each literal at most max_literal bytes, at most IMAP_MAX_ARGS args. */
#ifndef LOFT_PROTO_IMAP_PARSER_H
#define LOFT_PROTO_IMAP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/parse.h"
#include "common/sbuf.h"

#define IMAP_MAX_ARGS 64
/* A longer tag is no tag (Dovecot's imap-login: 126, measured) */
#define IMAP_TAG_MAX_LEN 126

enum imap_arg_type {
	IMAP_ARG_ATOM,
	IMAP_ARG_QUOTED,
	IMAP_ARG_LITERAL,
	IMAP_ARG_LIST_START,
	IMAP_ARG_LIST_END,
};

struct imap_arg {
	enum imap_arg_type type;
	uint32_t off;
	uint32_t len;
};

struct imap_parser {
	size_t max_line;
	size_t max_literal;
	bool tagless;		/* ManageSieve: no tag, {n+} literals only */
	bool response;		/* tagless: a line of arguments, no command
				 * (a ManageSieve SASL response string) */

	/* progress through the current command */
	size_t pos;		/* bytes scanned */
	size_t seg_start;	/* start of the current line segment */
	size_t literal_left;	/* literal bytes still to arrive */
	bool skipping;		/* discarding the rest of a rejected line */
	int depth;		/* open parentheses */

	/* the command, once tokenised */
	bool have_tag;
	struct imap_arg tag;
	struct imap_arg cmd;
	struct imap_arg args[IMAP_MAX_ARGS];
	unsigned int nargs;

	/* outputs of the last call */
	size_t consumed;	/* bytes the caller may drop (after handling) */
	unsigned int continuations; /* "+ OK"s owed for synchronising literals */
	const char *error;	/* PARSE_ERROR: text for the BAD/BYE reply */
	bool fatal;		/* PARSE_ERROR: the connection cannot go on */
};

void imap_parser_init(struct imap_parser *p, size_t max_line, size_t max_literal);
/* The same grammar without tags, as ManageSieve (RFC 5804) uses it: the
 * first token is the command; a synchronising literal is an error, since
 * a ManageSieve server never invites one. */
void imap_parser_init_tagless(struct imap_parser *p, size_t max_line,
			      size_t max_literal);
/* Forgets the current command; call after dropping p->consumed bytes. */
void imap_parser_reset(struct imap_parser *p);
/* Nothing of a command has been seen yet (the caller may look at the
 * command's first bytes itself, as the IMAP front does for ID). */
bool imap_parser_at_start(const struct imap_parser *p);
/* Drops everything up to the next LF before the next command, for a
 * command the caller refused in the middle of its line. */
void imap_parser_skip_line(struct imap_parser *p);

/* PARSE_OK: a whole command is in tag/cmd/args, p->consumed bytes long.
 * PARSE_MORE: need more input (p->consumed > 0 when skipping discarded
 *   bytes).
 * After any result, p->continuations "+ OK" lines are owed to the client.
 * PARSE_ERROR: p->error says why; p->consumed bytes belong to the bad
 *   command (the caller drops them); the parser skips to the line's end
 *   by itself when the line is not complete yet. A line too long is
 *   refused before it is tokenised, but its tag is read if it starts
 *   with one (have_tag), so that the refusal can answer it. */
enum parse_result imap_parser_parse(struct imap_parser *p, unsigned char *buf,
				    size_t len);

/* Reads one raw line (an AUTHENTICATE response). PARSE_OK: *line_r /
 * *len_r (without CRLF) and p->consumed. Same limits and skipping. */
enum parse_result imap_parser_read_line(struct imap_parser *p, unsigned char *buf,
					size_t len, const unsigned char **line_r,
					size_t *len_r);

/* The grammar's pieces, for imap_id. */
bool imap_char_is_atom(unsigned char c);
/* A tag is an atom without "+" (RFC 3501), the list wildcards or a
 * backslash, of at most IMAP_TAG_MAX_LEN bytes, as Dovecot's imap-login
 * takes it; anything else is answered untagged. */
bool imap_tag_is_valid(const unsigned char *s, size_t len);
/* "{123}" or "{123+}", all of s: the size and whether it synchronises;
 * -1 when s is not a literal marker. */
int imap_literal_marker_parse(const unsigned char *s, size_t len, uint64_t *size_r,
			      bool *sync_r);

/* Helpers for handlers. */
bool imap_arg_is_string(const struct imap_arg *arg);	/* atom, quoted, literal */
bool imap_arg_is_nil(const unsigned char *buf, const struct imap_arg *arg);
bool imap_arg_equals_icase(const unsigned char *buf, const struct imap_arg *arg,
			   const char *s);
/* Copies an argument as a C string; NULL if it contains NUL. */
char *imap_arg_dup(const unsigned char *buf, const struct imap_arg *arg);

/* Writing IMAP strings. A quoted string carries 7-bit bytes but CR and
 * LF (RFC 3501 quoted); \ and " are escaped. */
bool imap_is_quotable(const char *s);
size_t imap_quoted_len(const char *s);
void imap_append_quoted(struct sbuf *out, const char *s);

#endif
