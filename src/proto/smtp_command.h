/* SMTP/LMTP command arguments (RFC 5321 §4.1): "MAIL FROM:<path> params"
 * and "RCPT TO:<path> params". */
#ifndef LOFT_PROTO_SMTP_COMMAND_H
#define LOFT_PROTO_SMTP_COMMAND_H

#include <stdbool.h>
#include <stdint.h>

/* Parses the arguments after the verb ("FROM:<a@b> SIZE=10"), in place:
 * *path_r is the path without brackets ("" for the null path),
 * *params_r what follows (maybe ""). prefix is "FROM:" or "TO:". -1 when
 * malformed. */
int smtp_command_path(char *args, const char *prefix, char **path_r, char **params_r);

/* The SIZE=n parameter of MAIL, or 0 when absent; -1 when invalid. */
int64_t smtp_command_size(const char *params);

#endif
