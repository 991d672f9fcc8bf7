/* TLS session tickets (RFC 8446 §4.6.1, RFC 5077) with keys derived from
 * a secret and the time.
 *
 * OpenSSL's own ticket key is random per SSL_CTX: a reload (a new
 * context) or another node could not resume a session. Here the key of
 * period e = floor(now / lifetime) is HMAC-SHA256(secret, label | e) for
 * the key name, the AES-256 key and the HMAC key: every process with the
 * same secret uses the same keys at the same time, with no coordination
 * but the clock (a node whose clock is off by less than a period still
 * accepts the others' tickets, as the previous period's). A ticket of
 * the current period resumes; one of the previous period resumes and is
 * replaced; an older one, or one of an unknown key, gets a full
 * handshake. */
#include "core/tls_tickets.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/xmalloc.h"

#define TLS_TICKET_SECRET_LEN 32
#define TLS_TICKET_MIN_FILE_LEN 32

struct tls_tickets {
	unsigned char secret[TLS_TICKET_SECRET_LEN];
	unsigned int lifetime_s;
};

/* the random secret of a process without a key file: kept across
 * reloads, so their new contexts still accept its tickets */
static unsigned char tls_tickets_random[TLS_TICKET_SECRET_LEN];
static int tls_tickets_random_set;
static int tls_tickets_index = -1;

/* HMAC-SHA256(secret, label | period as 8 bytes big-endian) */
static int tls_tickets_derive(const struct tls_tickets *t, const char *label,
			      uint64_t period, unsigned char out[32])
{
	unsigned char data[16];
	size_t label_len = strlen(label);
	memcpy(data, label, label_len);
	for (size_t i = 0; i < 8; i++)
		data[label_len + i] = (unsigned char)(period >> (56 - 8 * i));
	size_t out_len = 0;
	return EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, t->secret, sizeof(t->secret),
			 data, label_len + 8, out, 32, &out_len) != NULL && out_len == 32 ?
		0 : -1;
}

/* Sets the cipher and MAC contexts up with period's keys. */
static int tls_tickets_keys(const struct tls_tickets *t, uint64_t period,
			    const unsigned char *iv, EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx,
			    int enc)
{
	unsigned char aes[32], mac[32];
	if (tls_tickets_derive(t, "aes", period, aes) < 0 ||
	    tls_tickets_derive(t, "hmac", period, mac) < 0)
		return -1;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, mac, sizeof(mac)),
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	int ok = EVP_CipherInit_ex(cctx, EVP_aes_256_cbc(), NULL, aes, iv, enc) == 1 &&
		EVP_MAC_CTX_set_params(hctx, params) == 1;
	OPENSSL_cleanse(aes, sizeof(aes));
	OPENSSL_cleanse(mac, sizeof(mac));
	return ok ? 0 : -1;
}

static int tls_tickets_cb(SSL *ssl, unsigned char key_name[16], unsigned char *iv,
			  EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	const struct tls_tickets *t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl),
							   tls_tickets_index);
	if (t == NULL)
		return -1;
	uint64_t period = (uint64_t)time(NULL) / t->lifetime_s;
	unsigned char name[32];
	if (enc) {
		if (tls_tickets_derive(t, "name", period, name) < 0 ||
		    RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1 ||
		    tls_tickets_keys(t, period, iv, cctx, hctx, 1) < 0)
			return -1;
		memcpy(key_name, name, 16);
		return 1;
	}
	/* this period's key, or the previous one's (then a new ticket) */
	for (uint64_t back = 0; back < 2 && back <= period; back++) {
		if (tls_tickets_derive(t, "name", period - back, name) < 0)
			return -1;
		if (memcmp(key_name, name, 16) != 0)
			continue;
		if (tls_tickets_keys(t, period - back, iv, cctx, hctx, 0) < 0)
			return -1;
		return back == 0 ? 1 : 2;
	}
	return 0;	/* unknown or too old: a full handshake */
}

static void tls_tickets_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
				long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (ptr != NULL) {
		OPENSSL_cleanse(ptr, sizeof(struct tls_tickets));
		free(ptr);
	}
}

static int tls_tickets_read_file(const char *path, unsigned char secret[32], char **error_r)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	unsigned char buf[4096];
	size_t len = fread(buf, 1, sizeof(buf), f);
	int failed = ferror(f);
	fclose(f);
	if (failed || len < TLS_TICKET_MIN_FILE_LEN) {
		*error_r = failed ? xasprintf("%s: cannot read it", path) :
			xasprintf("%s: %zu bytes, at least %d needed (e.g. head -c 48 "
				  "/dev/urandom)", path, len, TLS_TICKET_MIN_FILE_LEN);
		OPENSSL_cleanse(buf, sizeof(buf));
		return -1;
	}
	unsigned int out_len = 0;
	int ok = EVP_Digest(buf, len, secret, &out_len, EVP_sha256(), NULL) == 1;
	OPENSSL_cleanse(buf, sizeof(buf));
	if (!ok) {
		*error_r = xasprintf("%s: cannot hash it", path);
		return -1;
	}
	return 0;
}

int tls_tickets_attach(SSL_CTX *ctx, const char *key_file, unsigned int lifetime_s,
		       char **error_r)
{
	if (tls_tickets_index < 0)
		tls_tickets_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL,
							     tls_tickets_ex_free);
	struct tls_tickets *t = xcalloc(1, sizeof(*t));
	t->lifetime_s = lifetime_s > 0 ? lifetime_s : 1;
	if (key_file != NULL && key_file[0] != '\0') {
		if (tls_tickets_read_file(key_file, t->secret, error_r) < 0) {
			free(t);
			return -1;
		}
	} else {
		if (!tls_tickets_random_set) {
			if (RAND_bytes(tls_tickets_random, sizeof(tls_tickets_random)) != 1) {
				*error_r = xstrdup("no random bytes for the ticket secret");
				free(t);
				return -1;
			}
			tls_tickets_random_set = 1;
		}
		memcpy(t->secret, tls_tickets_random, sizeof(t->secret));
	}
	if (tls_tickets_index < 0 || SSL_CTX_set_ex_data(ctx, tls_tickets_index, t) != 1) {
		*error_r = xstrdup("cannot attach the ticket keys");
		tls_tickets_ex_free(NULL, t, NULL, 0, 0, NULL);
		return -1;
	}
	/* a ticket is good for two periods at most */
	SSL_CTX_set_timeout(ctx, (long)t->lifetime_s * 2);
	SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_tickets_cb);
	return 0;
}
