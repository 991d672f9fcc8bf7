/* Formatter table and the table and tab formatters. */
#include "cli/print.h"

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

static void print_padded(struct printer *p, const char *s, size_t width, bool right)
{
	size_t w = print_text_width(s);
	size_t pad = w < width ? width - w : 0;
	if (right)
		fprintf(p->out, "%*s", (int)pad, "");
	fputs(s, p->out);
	if (!right)
		fprintf(p->out, "%*s", (int)pad, "");
}

/* ---- tab ------------------------------------------------------------ */

static void tab_header(struct printer *p)
{
	if (p->header_done)
		return;
	p->header_done = true;
	if (p->hide_titles)
		return;
	for (size_t i = 0; i < p->ncols; i++)
		fprintf(p->out, "%s%s", i == 0 ? "" : "\t",
			(p->cols[i].flags & PRINT_HIDE_TITLE) != 0 ? "" : p->cols[i].title);
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
	{ "table", table_value, table_flush },
	{ "tab", tab_value, tab_flush },
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
	free(p);
	*pp = NULL;
}
