/* Password verification, one table row per scheme. Comparisons of
 * secrets are constant-time. */
#include "auth/password.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/base64.h"
#include "common/macros.h"
#include "common/xmalloc.h"

enum password_encoding {
	PW_ENC_DEFAULT,	/* the scheme's own (base64 for digests) */
	PW_ENC_BASE64,
	PW_ENC_HEX,
};

typedef int password_verify_fn(const char *plain, const char *data,
			       enum password_encoding enc, const void *ctx,
			       const char **error_r);

struct password_scheme {
	const char *name;
	password_verify_fn *verify;
	const void *ctx;	/* the digest name for digest schemes */
};

static bool secrets_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	return alen == blen && CRYPTO_memcmp(a, b, alen) == 0;
}

static int verify_plain(const char *plain, const char *data,
			enum password_encoding enc, const void *ctx,
			const char **error_r)
{
	(void)enc;
	(void)ctx;
	(void)error_r;
	return secrets_equal(plain, strlen(plain), data, strlen(data)) ? 1 : 0;
}

/* crypt(3) in any format libxcrypt knows: $y$ $6$ $5$ $2b$ $2y$ $1$ ... */
static int verify_crypt(const char *plain, const char *data,
			enum password_encoding enc, const void *ctx,
			const char **error_r)
{
	(void)enc;
	(void)ctx;
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));
	const char *hash = crypt_rn(plain, data, cd, sizeof(*cd));
	int ret;
	if (hash == NULL || hash[0] == '*') {
		*error_r = "invalid crypt() hash";
		ret = -1;
	} else {
		ret = secrets_equal(hash, strlen(hash), data, strlen(data)) ? 1 : 0;
	}
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ret;
}

static int verify_argon2(const char *plain, const char *data,
			 enum password_encoding enc, const void *ctx,
			 const char **error_r)
{
	(void)enc;
	(void)ctx;
	if (strncmp(data, "$argon2i$", 9) != 0 && strncmp(data, "$argon2id$", 10) != 0) {
		*error_r = "invalid Argon2 hash";
		return -1;
	}
	return crypto_pwhash_str_verify(data, plain, strlen(plain)) == 0 ? 1 : 0;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static long hex_decode(const char *s, unsigned char *out, size_t max)
{
	size_t len = strlen(s);
	if (len % 2 != 0 || len / 2 > max)
		return -1;
	for (size_t i = 0; i < len; i += 2) {
		int hi = hex_value(s[i]), lo = hex_value(s[i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i / 2] = (unsigned char)(hi << 4 | lo);
	}
	return (long)(len / 2);
}

/* Decodes a digest (+ salt); base64 by default, hex when asked or when
 * the text is exactly a hex digest (Dovecot accepts both). */
static long digest_decode(const char *data, enum password_encoding enc,
			  size_t digest_len, unsigned char *out, size_t max)
{
	size_t len = strlen(data);
	if (enc == PW_ENC_HEX)
		return hex_decode(data, out, max);
	if (enc == PW_ENC_DEFAULT && len == digest_len * 2) {
		long n = hex_decode(data, out, max);
		if (n == (long)digest_len)
			return n;
	}
	if (BASE64_DECODED_MAX(len) > max)
		return -1;
	return base64_decode(data, len, out);
}

/* {SHA256} {SHA512} {SHA}: digest(plain); {SSHA256} ...: digest(plain +
 * salt) followed by the salt. ctx is "name" or "name+salt". */
static int verify_digest(const char *plain, const char *data,
			 enum password_encoding enc, const void *ctx,
			 const char **error_r)
{
	const char *spec = ctx;
	char mdname[16];
	bool salted = strchr(spec, '+') != NULL;
	size_t nlen = strcspn(spec, "+");
	memcpy(mdname, spec, nlen);
	mdname[nlen] = '\0';

	EVP_MD *md = EVP_MD_fetch(NULL, mdname, NULL);
	if (md == NULL) {
		*error_r = "digest not available";
		return -1;
	}
	size_t dlen = (size_t)EVP_MD_get_size(md);
	unsigned char stored[512], digest[EVP_MAX_MD_SIZE];
	long n = digest_decode(data, enc, dlen, stored, sizeof(stored));
	int ret = -1;
	if (n < 0 || (size_t)n < dlen || (!salted && (size_t)n != dlen)) {
		*error_r = "invalid digest encoding or length";
	} else {
		EVP_MD_CTX *c = EVP_MD_CTX_new();
		unsigned int outlen;
		if (c != NULL && EVP_DigestInit_ex2(c, md, NULL) == 1 &&
		    EVP_DigestUpdate(c, plain, strlen(plain)) == 1 &&
		    (!salted || EVP_DigestUpdate(c, stored + dlen, (size_t)n - dlen) == 1) &&
		    EVP_DigestFinal_ex(c, digest, &outlen) == 1)
			ret = secrets_equal(digest, outlen, stored, dlen) ? 1 : 0;
		else
			*error_r = "digest failed";
		EVP_MD_CTX_free(c);
	}
	EVP_MD_free(md);
	return ret;
}

static const struct password_scheme password_schemes[] = {
	{ "PLAIN", verify_plain, NULL },
	{ "CLEAR", verify_plain, NULL },
	{ "CLEARTEXT", verify_plain, NULL },
	{ "CRYPT", verify_crypt, NULL },
	{ "MD5-CRYPT", verify_crypt, NULL },
	{ "SHA256-CRYPT", verify_crypt, NULL },
	{ "SHA512-CRYPT", verify_crypt, NULL },
	{ "BLF-CRYPT", verify_crypt, NULL },
	{ "ARGON2I", verify_argon2, NULL },
	{ "ARGON2ID", verify_argon2, NULL },
	{ "SHA", verify_digest, "SHA1" },
	{ "SHA1", verify_digest, "SHA1" },
	{ "SSHA", verify_digest, "SHA1+salt" },
	{ "SHA256", verify_digest, "SHA256" },
	{ "SSHA256", verify_digest, "SHA256+salt" },
	{ "SHA512", verify_digest, "SHA512" },
	{ "SSHA512", verify_digest, "SHA512+salt" },
};

/* "NAME" or "NAME.HEX" / "NAME.B64" / "NAME.BASE64" */
static const struct password_scheme *password_scheme_find(const char *name,
							  size_t len,
							  enum password_encoding *enc_r)
{
	const char *dot = memchr(name, '.', len);
	size_t base = dot == NULL ? len : (size_t)(dot - name);
	*enc_r = PW_ENC_DEFAULT;
	if (dot != NULL) {
		size_t elen = len - base - 1;
		if (elen == 3 && strncasecmp(dot + 1, "HEX", 3) == 0)
			*enc_r = PW_ENC_HEX;
		else if ((elen == 3 && strncasecmp(dot + 1, "B64", 3) == 0) ||
			 (elen == 6 && strncasecmp(dot + 1, "BASE64", 6) == 0))
			*enc_r = PW_ENC_BASE64;
		else
			return NULL;
	}
	for (size_t i = 0; i < ARRAY_SIZE(password_schemes); i++) {
		if (strlen(password_schemes[i].name) == base &&
		    strncasecmp(password_schemes[i].name, name, base) == 0)
			return &password_schemes[i];
	}
	return NULL;
}

bool password_scheme_is_known(const char *name)
{
	enum password_encoding enc;
	return password_scheme_find(name, strlen(name), &enc) != NULL;
}

int password_init(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

int password_verify(const char *plain, const char *stored,
		    const char *default_scheme, const char **error_r)
{
	const char *name = default_scheme, *data = stored;
	size_t name_len = strlen(default_scheme);
	enum password_encoding enc;

	if (stored[0] == '{') {
		const char *end = strchr(stored, '}');
		if (end != NULL) {
			name = stored + 1;
			name_len = (size_t)(end - name);
			data = end + 1;
		}
	}
	const struct password_scheme *s = password_scheme_find(name, name_len, &enc);
	if (s == NULL) {
		*error_r = "unknown password scheme";
		return -1;
	}
	return s->verify(plain, data, enc, s->ctx, error_r);
}
