/* LDAP filter and DN escaping: one check per byte, plain runs copied whole. */
#include "auth/ldap_escape.h"

#include <stdbool.h>
#include <string.h>

#include "common/varexpand.h"

static void ldap_escape_bytes(struct sbuf *dst, const char *src, size_t len,
			      bool (*special)(unsigned char c))
{
	static const char hex[] = "0123456789abcdef";
	size_t plain = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];
		if (!special(c))
			continue;
		sbuf_append(dst, src + plain, i - plain);
		char esc[3] = { '\\', hex[c >> 4], hex[c & 15] };
		sbuf_append(dst, esc, sizeof(esc));
		plain = i + 1;
	}
	sbuf_append(dst, src + plain, len - plain);
}

static bool ldap_filter_special(unsigned char c)
{
	return c == '*' || c == '(' || c == ')' || c == '\\' || c == '\0';
}

static bool ldap_dn_special(unsigned char c)
{
	return c < 0x20 || c == 0x7f || strchr("\"+,;<=>\\# ", c) != NULL;
}

void ldap_escape_filter(struct sbuf *dst, const char *src, size_t len)
{
	ldap_escape_bytes(dst, src, len, ldap_filter_special);
}

void ldap_escape_dn(struct sbuf *dst, const char *src, size_t len)
{
	ldap_escape_bytes(dst, src, len, ldap_dn_special);
}

void ldap_escape_template(struct sbuf *dst, const char *tmpl, const char *user,
			  void (*escape)(struct sbuf *dst, const char *src, size_t len))
{
	struct sbuf escaped = SBUF_INIT;
	escape(&escaped, user, strlen(user));
	varexpand_user(dst, tmpl, sbuf_cstr(&escaped));
	sbuf_free(&escaped);
}
