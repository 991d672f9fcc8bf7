/* OpenSSL contexts: one for clients (TLS listeners and STARTTLS), one for
 * backends. Defaults: TLS 1.2 or newer, OpenSSL's default cipher list,
 * buffers released while a connection is idle. */
#ifndef LOFT_CORE_TLS_H
#define LOFT_CORE_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>

/* min_protocol: an index into conf_tls_protocol_names. */
SSL_CTX *tls_server_ctx_new(const char *cert, const char *key,
			    unsigned int min_protocol, char **error_r);
/* verify: check the backend's certificate against ca_file (or the system
 * store when ca_file is empty) and its address or name. */
SSL_CTX *tls_client_ctx_new(bool verify, const char *ca_file, char **error_r);

/* The most specific OpenSSL error text, for logs; "" if none queued. */
const char *tls_last_error(void);

#endif
