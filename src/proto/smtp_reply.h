/* SMTP and LMTP reply lines (RFC 5321 §4.2): "250-more" continues a reply,
 * "250 last" ends it. Shared by the Submission and LMTP machines. */
#ifndef LOFT_PROTO_SMTP_REPLY_H
#define LOFT_PROTO_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

struct smtp_reply_line {
	int code;		/* 200..599 */
	bool last;		/* "250 " rather than "250-" */
	const char *text;	/* after the separator */
	size_t len;
};

/* Parses one line (without CRLF). -1 when it is not a reply line. */
int smtp_reply_parse(const char *line, size_t len, struct smtp_reply_line *r);

/* In an EHLO reply line's text ("AUTH PLAIN LOGIN"), whether the keyword
 * is there and, if wanted, where its parameters start. */
bool smtp_ehlo_has(const char *text, size_t len, const char *keyword,
		   const char **params_r, size_t *params_len_r);
/* Whether a space-separated parameter list holds word (case-insensitive). */
bool smtp_words_have(const char *list, size_t len, const char *word);

#endif
