/* Username hashing. The MD5 context is created once and reused, so a
 * login's routing costs one digest and no allocation. */
#include "director/user_hash.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/sbuf.h"
#include "common/varexpand.h"
#include "common/xmalloc.h"

struct user_hasher {
	char *tmpl;
	bool plain;		/* %u or %Lu: no expansion needed */
	bool lowercase;
	struct sbuf scratch;
};

static EVP_MD_CTX *md5_ctx;
static EVP_MD *md5_md;

uint32_t md5_u32(const void *data, size_t len)
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int dlen;

	if (md5_ctx == NULL) {
		md5_ctx = EVP_MD_CTX_new();
		md5_md = EVP_MD_fetch(NULL, "MD5", NULL);
		if (md5_ctx == NULL || md5_md == NULL)
			abort(); /* no MD5 provider: nothing can be routed */
	}
	if (EVP_DigestInit_ex2(md5_ctx, md5_md, NULL) != 1 ||
	    EVP_DigestUpdate(md5_ctx, data, len) != 1 ||
	    EVP_DigestFinal_ex(md5_ctx, digest, &dlen) != 1)
		abort();
	return (uint32_t)digest[0] << 24 | (uint32_t)digest[1] << 16 |
		(uint32_t)digest[2] << 8 | digest[3];
}

struct user_hasher *user_hasher_new(const char *tmpl)
{
	struct user_hasher *h = xcalloc(1, sizeof(*h));
	h->tmpl = xstrdup(tmpl);
	h->plain = varexpand_user_is_plain(tmpl, &h->lowercase);
	return h;
}

void user_hasher_free(struct user_hasher **hp)
{
	struct user_hasher *h = *hp;
	if (h == NULL)
		return;
	free(h->tmpl);
	sbuf_free(&h->scratch);
	free(h);
	*hp = NULL;
}

uint32_t user_hasher_hash(struct user_hasher *h, const char *username)
{
	uint32_t hash;

	sbuf_reset(&h->scratch);
	if (h->plain && !h->lowercase) {
		hash = md5_u32(username, strlen(username));
	} else {
		if (h->plain) {
			size_t len = strlen(username);
			char *p = sbuf_reserve(&h->scratch, len);
			for (size_t i = 0; i < len; i++)
				p[i] = (char)tolower((unsigned char)username[i]);
			sbuf_commit(&h->scratch, len);
		} else {
			varexpand_user(&h->scratch, h->tmpl, username);
		}
		hash = md5_u32(sbuf_data(&h->scratch), sbuf_len(&h->scratch));
	}
	return hash == 0 ? 1 : hash;
}
