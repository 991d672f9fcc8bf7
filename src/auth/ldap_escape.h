/* Escaping of a user name before it goes into an LDAP search filter
 * (RFC 4515) or a DN (RFC 4514), so that no byte of the name can change
 * the structure of the query: every byte with a meaning becomes a \XX
 * hex pair. Byte by byte: escaping a name in pieces gives the same text
 * as escaping it whole. Pure; thread-safe. */
#ifndef LOFT_AUTH_LDAP_ESCAPE_H
#define LOFT_AUTH_LDAP_ESCAPE_H

#include <stddef.h>

#include "common/sbuf.h"

/* RFC 4515 assertion value: '*' '(' ')' '\' and NUL as \2a \28 \29 \5c \00. */
void ldap_escape_filter(struct sbuf *dst, const char *src, size_t len);
/* RFC 4514 attribute value: its specials '"' '+' ',' ';' '<' '=' '>' '\',
 * and '#', space, NUL and other control bytes, as \XX wherever they are
 * (hex pairs are valid anywhere, so leading or trailing ones need no
 * special case). */
void ldap_escape_dn(struct sbuf *dst, const char *src, size_t len);

/* Appends a template (a filter or base; %u %n %d %% and the L/U
 * modifiers, see common/varexpand.h) with user escaped by escape: the
 * escapes never produce '@', so %n and %d split the escaped name where
 * they would split the raw one. */
void ldap_escape_template(struct sbuf *dst, const char *tmpl, const char *user,
			  void (*escape)(struct sbuf *dst, const char *src, size_t len));

#endif
