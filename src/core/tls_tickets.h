/* TLS session tickets whose keys come from one secret and the clock, so
 * that resumption survives a reload and, with a shared secret, works
 * across every node of a site. */
#ifndef LOFT_CORE_TLS_TICKETS_H
#define LOFT_CORE_TLS_TICKETS_H

#include <openssl/ssl.h>
#include <time.h>

/* Makes ctx issue and accept tickets: keys derived from the secret in
 * key_file (its SHA-256; at least 32 bytes of it), or from a random
 * secret this process keeps for its whole life when key_file is NULL or
 * "". A key is used for lifetime_s seconds and accepted for as long
 * again (a ticket of the previous period is renewed, in TLS 1.3 any
 * ticket that resumes). A full TLS 1.3 handshake issues one ticket.
 * The keys are derived once a period and kept with ctx, which must be
 * used from one thread (loftd's event loop). -1 and *error_r when the
 * file cannot be read or is too short. */
int tls_tickets_attach(SSL_CTX *ctx, const char *key_file, unsigned int lifetime_s,
		       char **error_r);

/* Replaces the clock ctx's tickets read (time() by default): tests move
 * it across periods. */
void tls_tickets_set_clock(SSL_CTX *ctx, time_t (*now)(time_t *));

#endif
