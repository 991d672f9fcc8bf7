/* TLS context construction. */
#include "core/tls.h"

#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

#include "common/xmalloc.h"

static const int tls_versions[] = { TLS1_2_VERSION, TLS1_3_VERSION };

const char *tls_last_error(void)
{
	static __thread char buf[256];
	unsigned long e, last = 0;
	while ((e = ERR_get_error()) != 0)
		last = e;
	if (last == 0)
		return "";
	ERR_error_string_n(last, buf, sizeof(buf));
	return buf;
}

/* SSL_CTX_new() with the settings both directions share; NULL and an
 * error text when the cipher list names nothing usable. */
static SSL_CTX *tls_ctx_new(const SSL_METHOD *method, const char *ciphers_key,
			    const char *ciphers, char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(method);
	if (ctx == NULL) {
		*error_r = xasprintf("SSL_CTX_new failed: %s", tls_last_error());
		return NULL;
	}
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
			 SSL_MODE_ENABLE_PARTIAL_WRITE |
			 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
			    SSL_OP_ENABLE_KTLS);
	if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
		*error_r = xasprintf("%s \"%s\": no usable cipher: %s", ciphers_key,
				     ciphers, tls_last_error());
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

SSL_CTX *tls_server_ctx_new(const char *cert, const char *key,
			    unsigned int min_protocol, const char *ciphers,
			    char **error_r)
{
	SSL_CTX *ctx = tls_ctx_new(TLS_server_method(), "tls.ciphers", ciphers, error_r);
	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, tls_versions[min_protocol]);
	/* A client's EOF without close_notify is its end, as conn_read()
	 * treats it: OpenSSL 3 otherwise makes it a fatal error and drops
	 * the session from the cache, and the many clients that just close
	 * (after LOGOUT, or quitting) would never resume by session id.
	 * IMAP, POP3 and LMTP delimit their own data: no truncation to fear. */
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		*error_r = xasprintf("tls.cert %s: %s", cert, tls_last_error());
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		*error_r = xasprintf("tls.key %s: %s", key, tls_last_error());
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		*error_r = xasprintf("tls.key %s does not match tls.cert %s", key, cert);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* A copy: a session is linked into one cache's expiry list, and adding
 * it to another's would unlink it from there. */
static void tls_session_copy(void *session, void *to)
{
	SSL_SESSION *copy = SSL_SESSION_dup(session);
	if (copy == NULL)
		return;
	(void)SSL_CTX_add_session(to, copy);
	SSL_SESSION_free(copy);	/* the cache holds its own reference */
}

void tls_server_ctx_copy_sessions(SSL_CTX *to, SSL_CTX *from)
{
	if (to != NULL && from != NULL)
		OPENSSL_LH_doall_arg((OPENSSL_LHASH *)SSL_CTX_sessions(from), tls_session_copy, to);
}

SSL_CTX *tls_client_ctx_new(bool verify, const char *ca_file,
			    const char *ciphers, char **error_r)
{
	SSL_CTX *ctx = tls_ctx_new(TLS_client_method(), "backend.ssl_ciphers",
				   ciphers, error_r);
	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (verify) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		int ok = ca_file != NULL && ca_file[0] != '\0' ?
			SSL_CTX_load_verify_locations(ctx, ca_file, NULL) :
			SSL_CTX_set_default_verify_paths(ctx);
		if (ok != 1) {
			*error_r = xasprintf("backend.ssl_ca_file %s: %s",
					     ca_file != NULL && *ca_file ? ca_file : "(system)",
					     tls_last_error());
			SSL_CTX_free(ctx);
			return NULL;
		}
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	return ctx;
}
