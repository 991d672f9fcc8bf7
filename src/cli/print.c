/* Formatter table and the six formatters. Each formatter sees values one
 * at a time; a record is complete after the last header's value. */
#include "cli/print.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/macros.h"
#include "common/xmalloc.h"

#define PRINT_TABLE_BUFFER_ROWS 100
#define PRINT_DEFAULT_WIDTH 80
#define PRINT_MIN_WIDTH 30

struct print_col {
	char *key;
	char *title;
	unsigned int flags;
	size_t width;
};

struct printer {
	const struct print_formatter *fmt;
	FILE *out;
	bool hide_titles;
	struct print_col *cols;
	size_t ncols;
	/* rows buffered until the widths are known (table) */
	char **cells;
	size_t ncells, cells_cap;
	size_t cur;		/* column of the next value */
	bool widths_fixed;
	bool header_done;
	size_t records;		/* records written (pager, json) */
	char *format;		/* formatted */
};

struct print_formatter {
	const char *name;
	void (*value)(struct printer *p, const char *value);
	void (*flush)(struct printer *p);
};

size_t print_text_width(const char *s)
{
	size_t n = 0;
	for (; *s != '\0'; s++) {
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	}
	return n;
}

/* fwrite of a run of spaces, not fprintf("%*s"): a table of 200,000
 * rows pads two million cells (issue 14). */
static void print_spaces(FILE *out, size_t n)
{
	static const char spaces[] = "                                "
		"                                ";
	while (n > 0) {
		size_t k = MIN(n, sizeof(spaces) - 1);
		fwrite(spaces, 1, k, out);
		n -= k;
	}
}

static void print_padded(struct printer *p, const char *s, size_t width, bool right)
{
	size_t w = print_text_width(s);
	size_t pad = w < width ? width - w : 0;
	if (right)
		print_spaces(p->out, pad);
	fputs(s, p->out);
	if (!right)
		print_spaces(p->out, pad);
}

static bool print_title_hidden(const struct print_col *col)
{
	return (col->flags & PRINT_HIDE_TITLE) != 0;
}

/* ---- flow: title=value separated by spaces (§9.2) ------------------- */

static void flow_value(struct printer *p, const char *value)
{
	const struct print_col *col = &p->cols[p->cur];
	if (p->cur > 0)
		fputc(' ', p->out);
	if (!print_title_hidden(col))
		fprintf(p->out, "%s=", col->title);
	fputs(value, p->out);
	if (++p->cur == p->ncols) {
		fputc('\n', p->out);
		p->cur = 0;
	}
}

static void flow_flush(struct printer *p)
{
	(void)p;
}

/* ---- pager: "title: value" lines, FF LF between records (§9.3) ------ */

static void pager_value(struct printer *p, const char *value)
{
	const struct print_col *col = &p->cols[p->cur];
	if (p->cur == 0 && p->records > 0)
		fputs("\f\n", p->out);
	if (print_title_hidden(col))
		fprintf(p->out, "%s\n", value);
	else
		fprintf(p->out, "%s: %s\n", col->title, value);
	if (++p->cur == p->ncols) {
		p->cur = 0;
		p->records++;
	}
}

/* ---- json (§9.5) --------------------------------------------------- */

/* Length of a valid UTF-8 sequence at s (max 4), or 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s)
{
	size_t len = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 :
		(s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
	if (len < 2)
		return len;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	}
	/* no overlong forms, surrogates or code points past U+10FFFF */
	uint32_t cp = s[0] & (0x7f >> len);
	for (size_t i = 1; i < len; i++)
		cp = cp << 6 | (s[i] & 0x3f);
	static const uint32_t min_cp[] = { 0, 0, 0x80, 0x800, 0x10000 };
	if (cp < min_cp[len] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

static void json_string(FILE *out, const char *value)
{
	static const char esc[] = { ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n',
				    ['\r'] = 'r', ['\t'] = 't' };
	const unsigned char *s = (const unsigned char *)value;
	fputc('"', out);
	while (*s != '\0') {
		if (*s == '"' || *s == '\\') {
			fprintf(out, "\\%c", *s++);
		} else if (*s < 0x20) {
			if (*s < sizeof(esc) && esc[*s] != 0)
				fprintf(out, "\\%c", esc[*s]);
			else
				fprintf(out, "\\u%04x", *s);
			s++;
		} else {
			size_t n = utf8_seq_len(s);
			if (n == 0) {
				fputs("\xef\xbf\xbd", out); /* U+FFFD per invalid byte */
				s++;
			} else if (n == 3 && s[0] == 0xe2 && s[1] == 0x80 &&
				   (s[2] == 0xa8 || s[2] == 0xa9)) {
				fprintf(out, "\\u%s", s[2] == 0xa8 ? "2028" : "2029");
				s += 3;
			} else {
				fwrite(s, 1, n, out);
				s += n;
			}
		}
	}
	fputc('"', out);
}

static void json_value(struct printer *p, const char *value)
{
	const struct print_col *col = &p->cols[p->cur];
	if (p->cur == 0)
		fputs(p->records == 0 ? "[{" : ",{", p->out);
	else
		fputc(',', p->out);
	json_string(p->out, col->key);
	fputc(':', p->out);
	if ((col->flags & PRINT_NUMBER) != 0 && value[0] != '\0' &&
	    strspn(value, "0123456789") == strlen(value))
		fputs(value, p->out);
	else
		json_string(p->out, value);
	if (++p->cur == p->ncols) {
		fputc('}', p->out);
		p->cur = 0;
		p->records++;
	}
}

static void json_flush(struct printer *p)
{
	/* one array for the whole output: "[]" when there was nothing */
	fputs(p->records == 0 ? "[]" : "]", p->out);
}

/* ---- formatted: %{key} in the command's format (§9.6) --------------- */

static void formatted_value(struct printer *p, const char *value)
{
	p->cells = xgrow(p->cells, &p->cells_cap, p->ncells + 1, sizeof(*p->cells));
	p->cells[p->ncells++] = xstrdup(value);
	if (++p->cur < p->ncols)
		return;
	p->cur = 0;
	for (const char *f = p->format; f != NULL && *f != '\0'; f++) {
		const char *end;
		if (f[0] == '%' && f[1] == '{' && (end = strchr(f, '}')) != NULL) {
			size_t klen = (size_t)(end - f - 2);
			for (size_t c = 0; c < p->ncols; c++) {
				if (strlen(p->cols[c].key) == klen &&
				    strncmp(p->cols[c].key, f + 2, klen) == 0)
					fputs(p->cells[c], p->out);
			}
			f = end;
		} else {
			fputc(*f, p->out);
		}
	}
	for (size_t i = 0; i < p->ncells; i++)
		free(p->cells[i]);
	p->ncells = 0;
}

/* ---- tab ------------------------------------------------------------ */

static void tab_header(struct printer *p)
{
	if (p->header_done)
		return;
	p->header_done = true;
	if (p->hide_titles)
		return;
	/* a column's hidden title is printed all the same (capture [38]) */
	for (size_t i = 0; i < p->ncols; i++)
		fprintf(p->out, "%s%s", i == 0 ? "" : "\t", p->cols[i].title);
	fputc('\n', p->out);
}

static void tab_value(struct printer *p, const char *value)
{
	tab_header(p);
	fprintf(p->out, "%s%s", p->cur == 0 ? "" : "\t", value);
	if (++p->cur == p->ncols) {
		fputc('\n', p->out);
		p->cur = 0;
	}
}

static void tab_flush(struct printer *p)
{
	tab_header(p);
}

/* ---- table ---------------------------------------------------------- */

static size_t print_screen_width(struct printer *p)
{
	struct winsize ws;
	if (isatty(fileno(p->out)) && ioctl(fileno(p->out), TIOCGWINSZ, &ws) == 0 &&
	    ws.ws_col > 0)
		return ws.ws_col < PRINT_MIN_WIDTH ? PRINT_MIN_WIDTH : ws.ws_col;
	return PRINT_DEFAULT_WIDTH;
}

/* §9.4 steps 3-6. */
static void table_compute_widths(struct printer *p)
{
	size_t n = p->ncols, screen = print_screen_width(p);
	size_t *min = xcalloc(n, sizeof(*min));
	size_t total = n - 1;

	for (size_t c = 0; c < n; c++) {
		size_t w = print_text_width(p->cols[c].title);
		size_t lo = w, hi = w;
		for (size_t r = c; r < p->ncells; r += n) {
			w = print_text_width(p->cells[r]);
			lo = MIN(lo, w);
			hi = MAX(hi, w);
		}
		min[c] = lo;
		p->cols[c].width = hi;
		total += hi;
	}
	if (total > screen) {
		for (size_t c = n; c-- > 0; ) {
			size_t diff = p->cols[c].width - min[c];
			if (total - diff <= screen) {
				p->cols[c].width -= total - screen;
				break;
			}
			p->cols[c].width -= diff == 1 ? 1 : diff / 2;
		}
	} else if (total < screen) {
		size_t grow = n - 1;
		for (size_t c = 0; c < n; c++) {
			if ((p->cols[c].flags & PRINT_EXPAND) != 0) {
				grow = c;
				break;
			}
		}
		p->cols[grow].width += (screen - total) / 2;
	}
	free(min);
	p->widths_fixed = true;
}

static void table_print_row(struct printer *p, char *const *cells, bool titles)
{
	for (size_t c = 0; c < p->ncols; c++) {
		if (c > 0)
			fputc(' ', p->out);
		const char *s = cells[c];
		if (titles && (p->cols[c].flags & PRINT_HIDE_TITLE) != 0)
			s = "";
		print_padded(p, s, p->cols[c].width,
			     (p->cols[c].flags & PRINT_RIGHT) != 0);
	}
	fputc('\n', p->out);
}

static void table_flush(struct printer *p)
{
	if (!p->widths_fixed) {
		table_compute_widths(p);
		bool all_hidden = true;
		for (size_t c = 0; c < p->ncols; c++)
			all_hidden &= (p->cols[c].flags & PRINT_HIDE_TITLE) != 0;
		if (!p->hide_titles && !all_hidden) {
			char **titles = xcalloc(p->ncols, sizeof(*titles));
			for (size_t c = 0; c < p->ncols; c++)
				titles[c] = p->cols[c].title;
			table_print_row(p, titles, true);
			free(titles);
		}
	}
	size_t complete = p->ncells - p->ncells % p->ncols;
	for (size_t r = 0; r < complete; r += p->ncols)
		table_print_row(p, p->cells + r, false);
	for (size_t i = 0; i < complete; i++)
		free(p->cells[i]);
	if (p->ncells > complete)
		memmove(p->cells, p->cells + complete,
			(p->ncells - complete) * sizeof(*p->cells));
	p->ncells -= complete;
}

static void table_value(struct printer *p, const char *value)
{
	p->cells = xgrow(p->cells, &p->cells_cap, p->ncells + 1, sizeof(*p->cells));
	p->cells[p->ncells++] = xstrdup(value);
	if (++p->cur == p->ncols)
		p->cur = 0;
	if (p->cur == 0 &&
	    (p->widths_fixed || p->ncells >= PRINT_TABLE_BUFFER_ROWS * p->ncols))
		table_flush(p);
}

static const struct print_formatter print_formatters[] = {
	{ "flow", flow_value, flow_flush },
	{ "pager", pager_value, flow_flush },
	{ "tab", tab_value, tab_flush },
	{ "table", table_value, table_flush },
	{ "json", json_value, json_flush },
	{ "formatted", formatted_value, flow_flush },
};

bool print_formatter_exists(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(print_formatters); i++) {
		if (strcmp(print_formatters[i].name, name) == 0)
			return true;
	}
	return false;
}

struct printer *print_new(const char *formatter, bool hide_titles, FILE *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(print_formatters); i++) {
		if (strcmp(print_formatters[i].name, formatter) != 0)
			continue;
		struct printer *p = xcalloc(1, sizeof(*p));
		p->fmt = &print_formatters[i];
		p->out = out;
		p->hide_titles = hide_titles;
		return p;
	}
	return NULL;
}

void print_header(struct printer *p, const char *key, const char *title,
		  unsigned int flags)
{
	p->cols = xrealloc(p->cols, (p->ncols + 1) * sizeof(*p->cols));
	p->cols[p->ncols].key = xstrdup(key);
	p->cols[p->ncols].title = xstrdup(title);
	p->cols[p->ncols].flags = flags;
	p->cols[p->ncols].width = 0;
	p->ncols++;
}

void print_value(struct printer *p, const char *value)
{
	p->fmt->value(p, value);
}

void print_flush(struct printer *p)
{
	if (p->ncols > 0)
		p->fmt->flush(p);
	fflush(p->out);
}

void print_set_format(struct printer *p, const char *format)
{
	free(p->format);
	p->format = xstrdup(format);
}

const char *print_formatter_name(const struct printer *p)
{
	return p->fmt->name;
}

void print_free(struct printer **pp)
{
	struct printer *p = *pp;
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->ncols; i++) {
		free(p->cols[i].key);
		free(p->cols[i].title);
	}
	for (size_t i = 0; i < p->ncells; i++)
		free(p->cells[i]);
	free(p->cells);
	free(p->cols);
	free(p->format);
	free(p);
	*pp = NULL;
}
