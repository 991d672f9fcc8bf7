/* Tab-escaping and splitting of TAB-separated lines. */
#include "common/tabescape.h"

#include <string.h>

#define TABESCAPE_CHAR '\001'

void tabescape_append(struct sbuf *dst, const char *s)
{
	const char *start = s;
	for (; *s != '\0'; s++) {
		char esc;
		switch (*s) {
		case '\001': esc = '1'; break;
		case '\t': esc = 't'; break;
		case '\r': esc = 'r'; break;
		case '\n': esc = 'n'; break;
		default: continue;
		}
		sbuf_append(dst, start, (size_t)(s - start));
		sbuf_appendc(dst, TABESCAPE_CHAR);
		sbuf_appendc(dst, esc);
		start = s + 1;
	}
	sbuf_append(dst, start, (size_t)(s - start));
}

size_t tabunescape_inplace(char *s, size_t len)
{
	char *p = memchr(s, TABESCAPE_CHAR, len);
	if (p == NULL)
		return len;
	size_t o = (size_t)(p - s);
	for (size_t i = o; i < len; i++) {
		if (s[i] != TABESCAPE_CHAR) {
			s[o++] = s[i];
			continue;
		}
		if (++i == len)
			break;
		switch (s[i]) {
		case '0': s[o++] = '\0'; break;
		case '1': s[o++] = TABESCAPE_CHAR; break;
		case 't': s[o++] = '\t'; break;
		case 'r': s[o++] = '\r'; break;
		case 'n': s[o++] = '\n'; break;
		default: s[o++] = s[i]; break;
		}
	}
	s[o] = '\0';
	return o;
}

int tabsplit_inplace(char *line, char **fields, int max_fields)
{
	int n = 0;
	if (*line == '\0')
		return 0;
	for (char *p = line;;) {
		char *tab = strchr(p, '\t');
		if (n == max_fields)
			return -1;
		if (tab != NULL)
			*tab = '\0';
		size_t len = strlen(p);
		tabunescape_inplace(p, len);
		fields[n++] = p;
		if (tab == NULL)
			break;
		p = tab + 1;
	}
	return n;
}
