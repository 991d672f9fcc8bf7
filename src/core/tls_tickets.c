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
 * replaced (in TLS 1.3 every ticket that resumes is: clients use one
 * once); an older one, or one of an unknown key, gets a full
 * handshake. The keys of the two periods are derived when a period
 * begins and kept with the context, not derived again for every ticket
 * issued or read (that was 2-3 % of loftd's CPU per TLS login). */
#include "core/tls_tickets.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/xmalloc.h"

#define TLS_TICKET_SECRET_LEN 32
#define TLS_TICKET_MIN_FILE_LEN 32
#define TLS_TICKET_KEY_LEN 32

/* the keys of one period, derived from the secret */
struct tls_ticket_keys {
	uint64_t period;
	bool set;
	unsigned char name[16];
	unsigned char aes[TLS_TICKET_KEY_LEN];
	unsigned char mac[TLS_TICKET_KEY_LEN];
};

/* One per SSL_CTX. The key cache is written from the ticket callback
 * without a lock: loftd does the TLS of its clients on its event loop
 * thread only (its auth workers do no TLS, and the ring's contexts have
 * no tickets of this kind). */
struct tls_tickets {
	unsigned char secret[TLS_TICKET_SECRET_LEN];
	unsigned int lifetime_s;
	time_t (*now)(time_t *);
	/* fetched once: by name per ticket, OpenSSL 3 would look them up
	 * each time */
	EVP_MAC *hmac;
	EVP_CIPHER *aes;
	/* [0] the current period's keys, [1] the previous one's */
	struct tls_ticket_keys keys[2];
};

/* the random secret of a process without a key file: kept across
 * reloads, so their new contexts still accept its tickets */
static unsigned char tls_tickets_random[TLS_TICKET_SECRET_LEN];
static int tls_tickets_random_set;
static int tls_tickets_index = -1;

/* HMAC-SHA256(secret, label | period as 8 bytes big-endian) */
static int tls_tickets_derive(const struct tls_tickets *t, const char *label,
			      uint64_t period, unsigned char out[TLS_TICKET_KEY_LEN])
{
	unsigned char data[16];
	size_t label_len = strlen(label);
	memcpy(data, label, label_len);
	for (size_t i = 0; i < 8; i++)
		data[label_len + i] = (unsigned char)(period >> (56 - 8 * i));
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(t->hmac);
	size_t out_len = 0;
	int ok = ctx != NULL &&
		EVP_MAC_init(ctx, t->secret, sizeof(t->secret), params) == 1 &&
		EVP_MAC_update(ctx, data, label_len + 8) == 1 &&
		EVP_MAC_final(ctx, out, &out_len, TLS_TICKET_KEY_LEN) == 1 &&
		out_len == TLS_TICKET_KEY_LEN;
	EVP_MAC_CTX_free(ctx);
	return ok ? 0 : -1;
}

/* Derives period's keys into k; k is wiped when that fails. */
static int tls_tickets_derive_keys(const struct tls_tickets *t, uint64_t period,
				   struct tls_ticket_keys *k)
{
	unsigned char name[TLS_TICKET_KEY_LEN];
	int ok = tls_tickets_derive(t, "name", period, name) == 0 &&
		tls_tickets_derive(t, "aes", period, k->aes) == 0 &&
		tls_tickets_derive(t, "hmac", period, k->mac) == 0;
	if (ok)
		memcpy(k->name, name, sizeof(k->name));
	OPENSSL_cleanse(name, sizeof(name));
	if (!ok) {
		OPENSSL_cleanse(k, sizeof(*k));
		return -1;
	}
	k->period = period;
	k->set = true;
	return 0;
}

/* Makes t's cache hold period's keys and the previous period's, deriving
 * only those it does not hold yet (at a period's change: the new one).
 * Keys replaced are wiped. */
static int tls_tickets_refresh(struct tls_tickets *t, uint64_t period)
{
	if (t->keys[0].set && t->keys[0].period == period)
		return 0;
	struct tls_ticket_keys fresh[2];
	memset(fresh, 0, sizeof(fresh));
	int ret = 0;
	for (uint64_t back = 0; back < 2 && back <= period && ret == 0; back++) {
		const struct tls_ticket_keys *held = NULL;
		for (size_t i = 0; i < 2; i++) {
			if (t->keys[i].set && t->keys[i].period == period - back)
				held = &t->keys[i];
		}
		if (held != NULL)
			fresh[back] = *held;
		else
			ret = tls_tickets_derive_keys(t, period - back, &fresh[back]);
	}
	if (ret == 0)
		memcpy(t->keys, fresh, sizeof(t->keys));
	OPENSSL_cleanse(fresh, sizeof(fresh));
	return ret;
}

/* Sets the cipher and MAC contexts up with k's keys. */
static int tls_tickets_keys(const struct tls_tickets *t, struct tls_ticket_keys *k,
			    const unsigned char *iv, EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx,
			    int enc)
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k->mac,
						  sizeof(k->mac)),
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	return EVP_CipherInit_ex2(cctx, t->aes, k->aes, iv, enc, NULL) == 1 &&
		EVP_MAC_CTX_set_params(hctx, params) == 1 ? 0 : -1;
}

static int tls_tickets_cb(SSL *ssl, unsigned char key_name[16], unsigned char *iv,
			  EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	struct tls_tickets *t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tls_tickets_index);
	if (t == NULL)
		return -1;
	uint64_t period = (uint64_t)t->now(NULL) / t->lifetime_s;
	if (tls_tickets_refresh(t, period) < 0)
		return -1;
	if (enc) {
		if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1 ||
		    tls_tickets_keys(t, &t->keys[0], iv, cctx, hctx, 1) < 0)
			return -1;
		memcpy(key_name, t->keys[0].name, 16);
		return 1;
	}
	/* this period's key, or the previous one's (then a new ticket) */
	for (size_t back = 0; back < 2; back++) {
		struct tls_ticket_keys *k = &t->keys[back];
		if (!k->set || CRYPTO_memcmp(key_name, k->name, 16) != 0)
			continue;
		if (tls_tickets_keys(t, k, iv, cctx, hctx, 0) < 0)
			return -1;
		/* 2 for a new ticket. A TLS 1.3 client may use a ticket
		 * once (RFC 8446 C.4 asks it to; BoringSSL's do), and after
		 * a 1 OpenSSL issues none: every other login of such a
		 * client would be a full handshake. */
		return back == 0 && SSL_version(ssl) < TLS1_3_VERSION ? 1 : 2;
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
	struct tls_tickets *t = ptr;
	if (t != NULL) {
		EVP_MAC_free(t->hmac);
		EVP_CIPHER_free(t->aes);
		OPENSSL_cleanse(t, sizeof(*t));
		free(t);
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

/* the tickets a full TLS 1.3 handshake issues (OpenSSL's default is 2,
 * for browsers that open connections in parallel; a mail client offers
 * one ticket when it reconnects, and each resumption brings it a new
 * one). A TLS 1.2 handshake issues one whatever this says. */
#define TLS_TICKETS_PER_HANDSHAKE 1

int tls_tickets_attach(SSL_CTX *ctx, const char *key_file, unsigned int lifetime_s,
		       char **error_r)
{
	if (tls_tickets_index < 0)
		tls_tickets_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL,
							     tls_tickets_ex_free);
	struct tls_tickets *t = xcalloc(1, sizeof(*t));
	t->lifetime_s = lifetime_s > 0 ? lifetime_s : 1;
	t->now = time;
	*error_r = NULL;
	if (key_file != NULL && key_file[0] != '\0') {
		(void)tls_tickets_read_file(key_file, t->secret, error_r);
	} else {
		if (!tls_tickets_random_set &&
		    RAND_bytes(tls_tickets_random, sizeof(tls_tickets_random)) == 1)
			tls_tickets_random_set = 1;
		if (!tls_tickets_random_set)
			*error_r = xstrdup("no random bytes for the ticket secret");
		memcpy(t->secret, tls_tickets_random, sizeof(t->secret));
	}
	if (*error_r == NULL) {
		t->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
		t->aes = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
		if (t->hmac == NULL || t->aes == NULL)
			*error_r = xstrdup("no HMAC or AES-256-CBC in OpenSSL");
	}
	if (*error_r == NULL &&
	    (tls_tickets_index < 0 || SSL_CTX_set_ex_data(ctx, tls_tickets_index, t) != 1))
		*error_r = xstrdup("cannot attach the ticket keys");
	if (*error_r != NULL) {
		tls_tickets_ex_free(NULL, t, NULL, 0, 0, NULL);
		return -1;
	}
	/* a ticket is good for two periods at most */
	SSL_CTX_set_timeout(ctx, (long)t->lifetime_s * 2);
	SSL_CTX_set_num_tickets(ctx, TLS_TICKETS_PER_HANDSHAKE);
	SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_tickets_cb);
	return 0;
}

void tls_tickets_set_clock(SSL_CTX *ctx, time_t (*now)(time_t *))
{
	struct tls_tickets *t = tls_tickets_index < 0 ? NULL :
		SSL_CTX_get_ex_data(ctx, tls_tickets_index);
	if (t != NULL)
		t->now = now;
}
