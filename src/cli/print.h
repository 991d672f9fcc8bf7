/* doveadm's output formatters (reference §9): a command declares headers,
 * then emits values row by row; the formatter decides the bytes.
 *
 *   flow       title=value ..., one line per record (§9.2)
 *   pager      "title: value" lines, FF LF between records (§9.3)
 *   tab        TAB-separated, titles first (§9.4)
 *   table      padded columns: widths from up to 100 buffered rows, 80
 *              columns when stdout is not a terminal (§9.4)
 *   json       [{"key":"value",...},...] without a newline (§9.5)
 *   formatted  the command's format string with %{key} (§9.6) */
#ifndef LOFT_CLI_PRINT_H
#define LOFT_CLI_PRINT_H

#include <stdbool.h>
#include <stdio.h>

enum print_flags {
	PRINT_RIGHT = 1 << 0,		/* right-justify in table */
	PRINT_HIDE_TITLE = 1 << 1,
	PRINT_EXPAND = 1 << 2,		/* takes the spare width in table */
	PRINT_NUMBER = 1 << 3,		/* a bare number in json */
};

struct printer;

/* NULL when the name is unknown. */
struct printer *print_new(const char *formatter, bool hide_titles, FILE *out);
void print_free(struct printer **p);
bool print_formatter_exists(const char *name);

void print_header(struct printer *p, const char *key, const char *title,
		  unsigned int flags);
/* Values in header order; a row ends after the last header's value. */
void print_value(struct printer *p, const char *value);
/* Writes everything buffered (the table computes its widths now). */
void print_flush(struct printer *p);
/* The format of the formatted formatter ("%{count} connections kicked\n"). */
void print_set_format(struct printer *p, const char *format);
/* The formatter's name. */
const char *print_formatter_name(const struct printer *p);

/* Display width: UTF-8 characters, as doveadm counts them. */
size_t print_text_width(const char *s);

#endif
