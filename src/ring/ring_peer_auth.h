/* How two nodes of a ring prove themselves to each other (doc/ring.md
 * §14): a challenge-response over a shared secret (ring.secret), TLS with
 * certificates checked both ways against the ring's CA (ring.tls_*), or
 * both. Pure except for the random nonces and OpenSSL. */
#ifndef LOFT_RING_PEER_AUTH_H
#define LOFT_RING_PEER_AUTH_H

#include <openssl/ssl.h>
#include <stdbool.h>

/* 32 random bytes as hex */
#define PEER_NONCE_HEX 64
/* HMAC-SHA256 as hex */
#define PEER_MAC_HEX 64

enum peer_role {
	PEER_ROLE_CLIENT,	/* the node that connects and asks */
	PEER_ROLE_SERVER,	/* the node that answers */
};

/* -1 when the system has no randomness to give. */
int peer_auth_nonce(char out[PEER_NONCE_HEX + 1]);

/* HMAC-SHA256(secret, "loft-ring-peer 1 <role>\n" server_nonce "\n"
 * client_nonce "\n" name): what `name` sends to prove it holds the
 * secret, bound to both nonces (no replay) and to its role (a reply
 * cannot be sent back as a request). */
void peer_auth_mac(const char *secret, enum peer_role role, const char *server_nonce,
		   const char *client_nonce, const char *name, char out[PEER_MAC_HEX + 1]);
/* Compares in constant time. */
bool peer_auth_mac_ok(const char *secret, enum peer_role role, const char *server_nonce,
		      const char *client_nonce, const char *name, const char *mac);

/* TLS 1.3 contexts that present cert/key and require the other side's
 * certificate signed by ca_file. NULL with the reason. */
SSL_CTX *peer_auth_tls_ctx_new(bool server, const char *cert, const char *key,
			       const char *ca_file, char **error_r);

#endif
