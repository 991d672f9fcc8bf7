/* SMTP reply lines. */
#include "proto/smtp_reply.h"

#include <string.h>
#include <strings.h>

int smtp_reply_parse(const char *line, size_t len, struct smtp_reply_line *r)
{
	if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
	    line[2] < '0' || line[2] > '9')
		return -1;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return -1;
	r->code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	r->last = len == 3 || line[3] == ' ';
	r->text = len > 4 ? line + 4 : line + len;
	r->len = len > 4 ? len - 4 : 0;
	return 0;
}

bool smtp_ehlo_has(const char *text, size_t len, const char *keyword,
		   const char **params_r, size_t *params_len_r)
{
	size_t klen = strlen(keyword);
	if (len < klen || strncasecmp(text, keyword, klen) != 0 ||
	    (len > klen && text[klen] != ' '))
		return false;
	if (params_r != NULL) {
		*params_r = len > klen ? text + klen + 1 : text + len;
		*params_len_r = len > klen ? len - klen - 1 : 0;
	}
	return true;
}

bool smtp_words_have(const char *list, size_t len, const char *word)
{
	size_t wlen = strlen(word);
	while (len > 0) {
		const char *sp = memchr(list, ' ', len);
		size_t tlen = sp == NULL ? len : (size_t)(sp - list);
		if (tlen == wlen && strncasecmp(list, word, wlen) == 0)
			return true;
		if (sp == NULL)
			break;
		len -= tlen + 1;
		list = sp + 1;
	}
	return false;
}
