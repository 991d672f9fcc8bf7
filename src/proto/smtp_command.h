/* SMTP/LMTP command lines (RFC 5321 §4.1): the verb and its arguments,
 * "MAIL FROM:<path> params" and "RCPT TO:<path> params". */
#ifndef LOFT_PROTO_SMTP_COMMAND_H
#define LOFT_PROTO_SMTP_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Splits a command line in place at its first space: the line becomes
 * the verb; returns the arguments ("" when there are none). */
char *smtp_command_split(char *line);

/* Parses the arguments after the verb ("FROM:<a@b> SIZE=10"), in place:
 * *path_r is the path without brackets ("" for the null path),
 * *params_r what follows (maybe ""). prefix is "FROM:" or "TO:". -1 when
 * malformed. */
int smtp_command_path(char *args, const char *prefix, char **path_r, char **params_r);

/* The MAIL parameters loft's LMTP takes (RFC 1870 SIZE, RFC 6152 BODY). */
struct smtp_mail_params {
	bool has_size;
	uint64_t size;
	const char *body;		/* "7BIT", "8BITMIME" or NULL: not given */
};

enum smtp_params_result {
	SMTP_PARAMS_OK,
	SMTP_PARAMS_INVALID,		/* a known parameter with a bad value */
	SMTP_PARAMS_UNSUPPORTED,	/* a parameter loft does not offer */
};

/* Parses MAIL's parameters ("SIZE=100 BODY=8BITMIME"), keywords in any
 * case; a repeated one counts as invalid. */
enum smtp_params_result smtp_command_mail_params(const char *params,
						 struct smtp_mail_params *r);

#endif
