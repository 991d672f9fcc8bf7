/* The parameters of IMAP's ID command (RFC 2971) read in pieces, as
 * Dovecot's imap-login reads them, so that an ID is bounded by its longest
 * string and not by login.max_line_length: clients send IDs of tens of
 * kilobytes, and imap-login takes any number of pairs.
 *
 *   C: tag ID NIL                         (the front consumes "tag ID ")
 *   C: tag ID ("key" "value" "key" NIL ...)
 *   string = atom | "quoted" | {n}CRLF<n bytes> | {n+}CRLF<n bytes>
 *
 * Each key and value pair is handed out as soon as its value is complete;
 * a key without a value before ")" is ignored, as imap-login does. Like
 * imap_parser, the reader works on one buffer that holds its input from
 * where it last let go (consumed): the caller calls it with the whole
 * buffer after each read and drops the consumed bytes after handling a
 * result. Quoted strings are unescaped in place. */
#ifndef LOFT_PROTO_IMAP_ID_H
#define LOFT_PROTO_IMAP_ID_H

#include <stdbool.h>
#include <stddef.h>

#include "common/parse.h"
#include "proto/imap_parser.h"

/* RFC 2971: a field name is at most 30 bytes (imap-login refuses longer) */
#define IMAP_ID_KEY_MAX 30

enum imap_id_state {
	IMAP_ID_OPEN,		/* "NIL" or "(" */
	IMAP_ID_KEY,		/* a key, or ")" */
	IMAP_ID_VALUE,		/* a value (NIL too), or ")" */
	IMAP_ID_END,		/* the line's end */
};

enum imap_id_token {
	IMAP_ID_TOKEN_NONE,
	IMAP_ID_TOKEN_ATOM,
	IMAP_ID_TOKEN_QUOTED,
	IMAP_ID_TOKEN_MARKER,	/* "{n}" or "{n+}" and its line end */
	IMAP_ID_TOKEN_LITERAL,	/* the literal's bytes */
};

struct imap_id_reader {
	size_t max_string;	/* longest atom or quoted string */
	size_t max_literal;

	enum imap_id_state state;
	enum imap_id_token token;	/* being read, from token_start */
	size_t pos;			/* bytes of the buffer scanned */
	size_t token_start;
	size_t literal_left;
	bool need_space;		/* a string ended: SP or ")" next */

	/* PARSE_OK: a pair (have_pair; value_nil for NIL) or the command's
	 * end (done); offsets into the buffer */
	bool have_pair;
	bool done;
	struct imap_arg key;
	struct imap_arg value;
	bool value_nil;

	/* outputs of every call */
	size_t consumed;	/* bytes the caller drops after handling */
	unsigned int continuations; /* "+ OK"s owed for {n} literals */
	const char *error;	/* PARSE_ERROR: for the BAD reply */
	bool fatal;		/* PARSE_ERROR: a LITERAL+ too large is on its way */
	bool line_ended;	/* PARSE_ERROR: consumed ends with the line's LF */
};

void imap_id_reader_init(struct imap_id_reader *r, size_t max_string,
			 size_t max_literal);

/* PARSE_OK: a pair or the end (see above); PARSE_MORE: more input, nothing
 * consumed; PARSE_ERROR: the ID is refused, consumed bytes belong to it and
 * the rest of the line is the caller's to skip unless line_ended. After a
 * pair the caller drops consumed bytes and calls again. */
enum parse_result imap_id_read(struct imap_id_reader *r, unsigned char *buf,
			       size_t len);

/* "tag ID " at the start of buf: its length (the tag's in *tag_len_r), 0
 * when buf starts with anything else, -1 while it cannot tell yet. */
long imap_id_command_prefix(const unsigned char *buf, size_t len, size_t *tag_len_r);

#endif
