/* OpenSSL contexts: one for clients (TLS listeners and STARTTLS), one for
 * backends. Both: TLS 1.2 or newer, the given TLS 1.2 cipher list (TLS 1.3
 * suites are OpenSSL's: all AEAD), no compression or renegotiation,
 * kernel TLS where the kernel has it, buffers released while a connection
 * is idle. */
#ifndef LOFT_CORE_TLS_H
#define LOFT_CORE_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>

/* min_protocol: an index into conf_tls_protocol_names. */
SSL_CTX *tls_server_ctx_new(const char *cert, const char *key,
			    unsigned int min_protocol, const char *ciphers,
			    char **error_r);
/* Copies the TLS 1.2 session-id cache of from into to (a context made
 * again by a reload), so that clients resume across it as they do with
 * tickets. For contexts of the same protocol and cipher settings only:
 * a session is not checked against them again. */
void tls_server_ctx_copy_sessions(SSL_CTX *to, SSL_CTX *from);
/* verify: check the backend's certificate against ca_file (or the system
 * store when ca_file is empty) and its address or name. */
SSL_CTX *tls_client_ctx_new(bool verify, const char *ca_file,
			    const char *ciphers, char **error_r);

/* The most specific OpenSSL error text, for logs; "" if none queued. */
const char *tls_last_error(void);

#endif
