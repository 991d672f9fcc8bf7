/* The proofs of ring_peer_auth.h. */
#include "ring/ring_peer_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "common/xmalloc.h"
#include "core/tls.h"

static const char peer_hex[] = "0123456789abcdef";

static void peer_auth_hex(const unsigned char *in, size_t len, char *out)
{
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = peer_hex[in[i] >> 4];
		out[2 * i + 1] = peer_hex[in[i] & 15];
	}
	out[2 * len] = '\0';
}

int peer_auth_nonce(char out[PEER_NONCE_HEX + 1])
{
	unsigned char raw[PEER_NONCE_HEX / 2];
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -1;
	peer_auth_hex(raw, sizeof(raw), out);
	return 0;
}

void peer_auth_mac(const char *secret, enum peer_role role, const char *server_nonce,
		   const char *client_nonce, const char *name, char out[PEER_MAC_HEX + 1])
{
	char *msg = xasprintf("loft-ring-peer 1 %s\n%s\n%s\n%s",
			      role == PEER_ROLE_CLIENT ? "client" : "server",
			      server_nonce, client_nonce, name);
	unsigned char mac[PEER_MAC_HEX / 2];
	size_t len = 0;
	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret, strlen(secret),
		      (const unsigned char *)msg, strlen(msg), mac, sizeof(mac), &len) == NULL ||
	    len != sizeof(mac))
		memset(mac, 0, sizeof(mac));	/* matches no MAC the peer sends */
	free(msg);
	peer_auth_hex(mac, sizeof(mac), out);
}

bool peer_auth_mac_ok(const char *secret, enum peer_role role, const char *server_nonce,
		      const char *client_nonce, const char *name, const char *mac)
{
	char want[PEER_MAC_HEX + 1];
	peer_auth_mac(secret, role, server_nonce, client_nonce, name, want);
	bool ok = strlen(mac) == PEER_MAC_HEX &&
		CRYPTO_memcmp(want, mac, PEER_MAC_HEX) == 0;
	OPENSSL_cleanse(want, sizeof(want));
	return ok;
}

SSL_CTX *peer_auth_tls_ctx_new(bool server, const char *cert, const char *key,
			       const char *ca_file, char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (ctx == NULL) {
		*error_r = xasprintf("SSL_CTX_new failed: %s", tls_last_error());
		return NULL;
	}
	/* both ends are loft: nothing older is needed */
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	const char *what = NULL, *file = NULL;
	if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1)
		what = "cannot read the CA file", file = ca_file;
	else if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		what = "cannot read the certificate", file = cert;
	else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
		 SSL_CTX_check_private_key(ctx) != 1)
		what = "cannot read the key, or it does not match the certificate", file = key;
	if (what != NULL) {
		*error_r = xasprintf("%s %s: %s", what, file, tls_last_error());
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}
