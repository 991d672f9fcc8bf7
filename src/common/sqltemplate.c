/* SQL template rewriting: a small lexer that knows just enough SQL to
 * tell where a variable stands (code, string, identifier, comment). */
#include "common/sqltemplate.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sbuf.h"
#include "common/xmalloc.h"

struct sql_parser {
	const char *tmpl;
	const char *p;
	enum sql_param_style style;
	struct sbuf out;
	struct varexpand_token *params;
	size_t params_count;
	char *error;
};

static bool sql_is_ident(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '$';
}

static int sql_fail(struct sql_parser *sp, const char *at, const char *what)
{
	sp->error = xasprintf("%s at offset %zu (\"%.20s\")", what,
			      (size_t)(at - sp->tmpl), at);
	return -1;
}

/* The number of the parameter for the token, added if new. */
static size_t sql_param_number(struct sql_parser *sp, const struct varexpand_token *t)
{
	for (size_t i = 0; i < sp->params_count; i++) {
		if (sp->params[i].var == t->var && sp->params[i].modifier == t->modifier)
			return i + 1;
	}
	sp->params = xrealloc(sp->params, (sp->params_count + 1) * sizeof(*sp->params));
	sp->params[sp->params_count++] = *t;
	return sp->params_count;
}

static void sql_append_param(struct sbuf *dst, enum sql_param_style style, size_t n)
{
	sbuf_appendf(dst, "%c%zu", style == SQL_PARAMS_DOLLAR ? '$' : '?', n);
}

/* At a '%' (sp->p), moved past it: a literal '%' for "%%" (1), a
 * variable (0, in *t_r), or an error (-1). */
static int sql_percent(struct sql_parser *sp, struct varexpand_token *t_r)
{
	const char *at = sp->p;
	const char *error;
	if (at[1] == '%') {
		sp->p += 2;
		return 1;
	}
	if (varexpand_token_parse(at + 1, t_r, &error) < 0)
		return sql_fail(sp, at, error);
	sp->p += 1 + t_r->len;
	return 0;
}

/* Copies text up to (and with) the closing delimiter: a "what" where no
 * variable may stand; "%%" becomes '%'. doubled: a doubled delimiter is
 * part of the text ("" in an identifier, '' in a string). eof_ok: the
 * end of the template closes it too (a -- comment). */
static int sql_copy_until(struct sql_parser *sp, const char *close, bool doubled,
			  bool eof_ok, const char *what)
{
	const char *start = sp->p;
	size_t close_len = strlen(close);
	char msg[80];
	for (;;) {
		if (*sp->p == '\0') {
			if (eof_ok)
				return 0;
			snprintf(msg, sizeof(msg), "unterminated %s", what);
			return sql_fail(sp, start, msg);
		}
		if (strncmp(sp->p, close, close_len) == 0) {
			size_t n = close_len;
			if (doubled && strncmp(sp->p + close_len, close, close_len) == 0)
				n *= 2;
			sbuf_append(&sp->out, sp->p, n);
			sp->p += n;
			if (n == close_len)
				return 0;
			continue;
		}
		if (*sp->p == '%') {
			const char *at = sp->p;
			struct varexpand_token t;
			int ret = sql_percent(sp, &t);
			if (ret < 0)
				return -1;
			if (ret == 0) {
				snprintf(msg, sizeof(msg), "a variable inside a %s", what);
				return sql_fail(sp, at, msg);
			}
			sbuf_appendc(&sp->out, '%');
			continue;
		}
		sbuf_appendc(&sp->out, *sp->p++);
	}
}

/* A plain '...' string (sp->p after the opening quote): verbatim when it
 * holds no variable, a parameter when it is one variable, else the
 * concatenation of its pieces. */
static int sql_string(struct sql_parser *sp)
{
	const char *start = sp->p - 1;
	struct sbuf lit = SBUF_INIT, expr = SBUF_INIT;
	size_t pieces = 0, vars = 0, last_param = 0;

	for (;;) {
		char c = *sp->p;
		if (c == '\0') {
			sbuf_free(&lit);
			sbuf_free(&expr);
			return sql_fail(sp, start, "unterminated string");
		}
		if (c == '\'' && sp->p[1] == '\'') {
			sbuf_append(&lit, "''", 2);
			sp->p += 2;
			continue;
		}
		struct varexpand_token t;
		int ret = 1;
		if (c == '%' && (ret = sql_percent(sp, &t)) < 0) {
			sbuf_free(&lit);
			sbuf_free(&expr);
			return -1;
		}
		if (c == '%' && ret == 1) {
			sbuf_appendc(&lit, '%');
			continue;
		}
		if (c != '\'' && c != '%') {
			sbuf_appendc(&lit, c);
			sp->p++;
			continue;
		}
		/* the end of a literal piece: a variable or the closing quote */
		if (!sbuf_is_empty(&lit) || (c == '\'' && pieces == 0)) {
			sbuf_appends(&expr, pieces++ == 0 ? "('" : " || '");
			sbuf_append(&expr, sbuf_data(&lit), sbuf_len(&lit));
			sbuf_appendc(&expr, '\'');
			sbuf_reset(&lit);
		}
		if (c == '\'')
			break;
		size_t n = sql_param_number(sp, &t);
		sbuf_appends(&expr, pieces++ == 0 ? "(CAST(" : " || CAST(");
		sql_append_param(&expr, sp->style, n);
		sbuf_appends(&expr, " AS TEXT)");
		vars++;
		last_param = n;
	}
	sp->p++;	/* the closing quote */
	if (vars == 0) {
		/* one literal piece, "('text'": the string as it was, %% as % */
		sbuf_append(&sp->out, sbuf_data(&expr) + 1, sbuf_len(&expr) - 1);
	} else if (pieces == 1) {
		sql_append_param(&sp->out, sp->style, last_param);
	} else {
		sbuf_append(&sp->out, sbuf_data(&expr), sbuf_len(&expr));
		sbuf_appendc(&sp->out, ')');
	}
	sbuf_free(&lit);
	sbuf_free(&expr);
	return 0;
}

/* At a '$' that starts no identifier: $N (refused), a $tag$ quote, or
 * just a '$'. */
static int sql_dollar(struct sql_parser *sp)
{
	const char *start = sp->p, *q = sp->p + 1;
	if (isdigit((unsigned char)*q))
		return sql_fail(sp, start, "a parameter of the query's own "
				"(use %u, %n or %d)");
	while (isalnum((unsigned char)*q) || *q == '_')
		q++;
	if (*q != '$' || isdigit((unsigned char)start[1])) {
		sbuf_appendc(&sp->out, *sp->p++);
		return 0;
	}
	char *tag = xstrndup(start, (size_t)(q + 1 - start));
	sbuf_appends(&sp->out, tag);
	sp->p = q + 1;
	int ret = sql_copy_until(sp, tag, false, false, "dollar-quoted string");
	free(tag);
	return ret;
}

static int sql_parse(struct sql_parser *sp)
{
	while (*sp->p != '\0') {
		const char *p = sp->p;
		bool after_ident = p > sp->tmpl && sql_is_ident(p[-1]);
		int ret = 0;
		if (*p == '\'' && after_ident) {
			/* E'', B'', X'', N'': their own rules */
			sbuf_appendc(&sp->out, *sp->p++);
			ret = sql_copy_until(sp, "'", true, false,
					     "prefixed string (E'', X'', ...)");
		} else if (*p == '\'') {
			sp->p++;
			ret = sql_string(sp);
		} else if (*p == '"') {
			sbuf_appendc(&sp->out, *sp->p++);
			ret = sql_copy_until(sp, "\"", true, false, "quoted identifier");
		} else if (p[0] == '-' && p[1] == '-') {
			ret = sql_copy_until(sp, "\n", false, true, "comment");
		} else if (p[0] == '/' && p[1] == '*') {
			sbuf_append(&sp->out, p, 2);
			sp->p += 2;
			ret = sql_copy_until(sp, "*/", false, false, "comment");
		} else if (*p == '$' && !after_ident) {
			ret = sql_dollar(sp);
		} else if (*p == '%') {
			struct varexpand_token t;
			ret = sql_percent(sp, &t);
			if (ret == 1)
				sbuf_appendc(&sp->out, '%');
			else if (ret == 0)
				sql_append_param(&sp->out, sp->style, sql_param_number(sp, &t));
			ret = ret < 0 ? -1 : 0;
		} else {
			sbuf_appendc(&sp->out, *sp->p++);
		}
		if (ret < 0)
			return -1;
	}
	return 0;
}

int sql_template_parse(struct sql_template *t, const char *tmpl,
		       enum sql_param_style style, char **error_r)
{
	struct sql_parser sp = { .tmpl = tmpl, .p = tmpl, .style = style };

	memset(t, 0, sizeof(*t));
	const char *q = tmpl;
	while (isspace((unsigned char)*q))
		q++;
	if (*q == '\0') {
		*error_r = xstrdup("an empty query");
		return -1;
	}
	if (sql_parse(&sp) < 0) {
		*error_r = sp.error;
		sbuf_free(&sp.out);
		free(sp.params);
		return -1;
	}
	if (sp.params_count == 0) {
		*error_r = xstrdup("the query uses no variable (%u, %n or %d): "
				   "it would find the same row for every user");
		sbuf_free(&sp.out);
		return -1;
	}
	t->query = xstrdup(sbuf_cstr(&sp.out));
	t->params = sp.params;
	t->params_count = sp.params_count;
	sbuf_free(&sp.out);
	return 0;
}

void sql_template_free(struct sql_template *t)
{
	free(t->query);
	free(t->params);
	memset(t, 0, sizeof(*t));
}

char **sql_template_values(const struct sql_template *t, const char *user)
{
	char **values = xcalloc(t->params_count, sizeof(*values));
	struct sbuf sb = SBUF_INIT;
	for (size_t i = 0; i < t->params_count; i++) {
		sbuf_reset(&sb);
		varexpand_token_append(&sb, &t->params[i], user);
		values[i] = xstrdup(sbuf_cstr(&sb));
	}
	sbuf_free(&sb);
	return values;
}

void sql_template_values_free(const struct sql_template *t, char ***valuesp)
{
	char **values = *valuesp;
	if (values == NULL)
		return;
	for (size_t i = 0; i < t->params_count; i++)
		free(values[i]);
	free(values);
	*valuesp = NULL;
}
