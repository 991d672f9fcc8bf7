/* Username template expansion, validated once and then run per login. */
#include "common/varexpand.h"

#include <ctype.h>
#include <string.h>

#include "common/macros.h"

enum varexpand_var { VAR_USER, VAR_USERNAME, VAR_DOMAIN };

static const struct varexpand_name {
	char short_name;
	const char *long_name;
	enum varexpand_var var;
} varexpand_names[] = {
	{ 'u', "user", VAR_USER },
	{ 'n', "username", VAR_USERNAME },
	{ 'd', "domain", VAR_DOMAIN },
};

int varexpand_token_parse(const char *p, struct varexpand_token *t_r,
			  const char **error_r)
{
	const char *start = p;
	t_r->modifier = 0;
	if (*p == 'L' || *p == 'U')
		t_r->modifier = *p++;
	if (*p == '{') {
		const char *end = strchr(p, '}');
		if (end == NULL) {
			*error_r = "unterminated %{";
			return -1;
		}
		size_t len = (size_t)(end - p - 1);
		for (size_t i = 0; i < ARRAY_SIZE(varexpand_names); i++) {
			if (strlen(varexpand_names[i].long_name) == len &&
			    memcmp(p + 1, varexpand_names[i].long_name, len) == 0) {
				t_r->var = varexpand_names[i].var;
				t_r->len = (size_t)(end + 1 - start);
				return 0;
			}
		}
		*error_r = "unknown variable (known: %u %n %d)";
		return -1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(varexpand_names); i++) {
		if (*p == varexpand_names[i].short_name) {
			t_r->var = varexpand_names[i].var;
			t_r->len = (size_t)(p + 1 - start);
			return 0;
		}
	}
	*error_r = "unknown variable (known: %u %n %d)";
	return -1;
}

int varexpand_user_validate(const char *tmpl, const char **error_r)
{
	for (const char *p = tmpl; *p != '\0'; p++) {
		if (*p != '%')
			continue;
		if (p[1] == '%') {
			p++;
			continue;
		}
		struct varexpand_token t;
		if (varexpand_token_parse(p + 1, &t, error_r) < 0)
			return -1;
		p += t.len;
	}
	return 0;
}

static void varexpand_append(struct sbuf *dst, const char *s, size_t len,
			     char modifier)
{
	char *out = sbuf_reserve(dst, len);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		out[i] = (char)(modifier == 'L' ? tolower(c) :
				modifier == 'U' ? toupper(c) : c);
	}
	sbuf_commit(dst, len);
}

void varexpand_token_append(struct sbuf *dst, const struct varexpand_token *t,
			    const char *user)
{
	const char *at = strchr(user, '@');

	switch ((enum varexpand_var)t->var) {
	case VAR_USER:
		varexpand_append(dst, user, strlen(user), t->modifier);
		break;
	case VAR_USERNAME:
		varexpand_append(dst, user, at == NULL ? strlen(user) :
				 (size_t)(at - user), t->modifier);
		break;
	case VAR_DOMAIN:
		if (at != NULL)
			varexpand_append(dst, at + 1, strlen(at + 1), t->modifier);
		break;
	}
}

void varexpand_user(struct sbuf *dst, const char *tmpl, const char *user)
{
	const char *p = tmpl;

	while (*p != '\0') {
		const char *pct = strchr(p, '%');
		if (pct == NULL) {
			sbuf_appends(dst, p);
			return;
		}
		sbuf_append(dst, p, (size_t)(pct - p));
		if (pct[1] == '%') {
			sbuf_appendc(dst, '%');
			p = pct + 2;
			continue;
		}
		struct varexpand_token t;
		const char *error;
		if (varexpand_token_parse(pct + 1, &t, &error) < 0) {
			/* not validated: keep the text as it is */
			sbuf_appendc(dst, '%');
			p = pct + 1;
			continue;
		}
		varexpand_token_append(dst, &t, user);
		p = pct + 1 + t.len;
	}
}

bool varexpand_user_is_plain(const char *tmpl, bool *lowercase_r)
{
	if (strcmp(tmpl, "%u") == 0 || strcmp(tmpl, "%{user}") == 0) {
		*lowercase_r = false;
		return true;
	}
	if (strcmp(tmpl, "%Lu") == 0 || strcmp(tmpl, "%L{user}") == 0) {
		*lowercase_r = true;
		return true;
	}
	return false;
}
