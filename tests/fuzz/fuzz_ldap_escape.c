/* LDAP filter (RFC 4515) and DN (RFC 4514) escaping of any user name:
 * what comes out unescapes to the input, holds no byte with a meaning
 * except a backslash starting a hex pair, is the same escaped whole or
 * byte by byte, and a filter built from it has the template's shape. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/ldap_escape.h"
#include "common/sbuf.h"
#include "common/xmalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	abort();	/* escapes are lower-case hex pairs */
}

static void fuzz_check(void (*escape)(struct sbuf *, const char *, size_t),
		       const char *specials, const char *in, size_t len)
{
	struct sbuf whole = SBUF_INIT, bytes = SBUF_INIT, back = SBUF_INIT;
	escape(&whole, in, len);
	for (size_t i = 0; i < len; i++)
		escape(&bytes, in + i, 1);
	if (sbuf_len(&whole) != sbuf_len(&bytes) ||
	    memcmp(sbuf_data(&whole), sbuf_data(&bytes), sbuf_len(&whole)) != 0)
		abort();
	const char *s = sbuf_data(&whole);
	for (size_t i = 0; i < sbuf_len(&whole); i++) {
		if (s[i] == '\\') {
			if (i + 2 >= sbuf_len(&whole))
				abort();	/* a backslash without its pair */
			sbuf_appendc(&back, (char)(fuzz_hex(s[i + 1]) * 16 + fuzz_hex(s[i + 2])));
			i += 2;
		} else if (s[i] == '\0' || strchr(specials, s[i]) != NULL) {
			abort();
		} else {
			sbuf_appendc(&back, s[i]);
		}
	}
	if (sbuf_len(&back) != len || memcmp(sbuf_data(&back), in, len) != 0)
		abort();
	sbuf_free(&whole);
	sbuf_free(&bytes);
	sbuf_free(&back);
}

static size_t fuzz_count(const char *s, char c)
{
	size_t n = 0;
	for (; *s != '\0'; s++)
		n += *s == c;
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	fuzz_check(ldap_escape_filter, "*()", in, size);
	fuzz_check(ldap_escape_dn, "\"+,;<=># ", in, size);

	/* as a user name (a C string up to its first NUL) in a filter */
	char *user = xstrndup(in, size);
	static const char tmpl[] = "(&(objectClass=posixAccount)(|(uid=%u)(uid=%n)(mail=%d)))";
	struct sbuf filter = SBUF_INIT;
	ldap_escape_template(&filter, tmpl, user, ldap_escape_filter);
	const char *f = sbuf_cstr(&filter);
	if (fuzz_count(f, '(') != fuzz_count(tmpl, '(') ||
	    fuzz_count(f, ')') != fuzz_count(tmpl, ')') ||
	    fuzz_count(f, '*') != 0)
		abort();
	sbuf_free(&filter);
	free(user);
	return 0;
}
