/* The auth cache (auth_cache.h): one allocation per entry, its strings
 * packed behind it, in a hash table by user and on an LRU list.
 *
 * The password hash is BLAKE2b (libsodium's crypto_generichash) keyed
 * with 32 random bytes drawn when the cache is made, over the user name
 * and the password. Keyed, so that the hashes mean nothing without this
 * process's key (another process, a copy of the cache, a user with the
 * same password all hash differently) and cannot be looked up in a
 * precomputed table; fast (well under a microsecond), because a cache
 * hit must cost less than the verification it saves. It is not a
 * password hash: whoever reads loftd's memory has the key too and can
 * try passwords quickly, but loftd's memory holds the passwords of the
 * logins under way anyway. Hashes are compared in constant time. */
#include "auth/auth_cache.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/hmap.h"
#include "common/list.h"
#include "common/xmalloc.h"

#define AUTH_CACHE_HASH_LEN 32

struct auth_cache_entry {
	struct hmap_node node;
	struct list_node lru;		/* head: least recently used */
	uint64_t expires_ms;
	size_t size;			/* what it counts against the limit */
	bool negative;
	bool password_unchecked;
	enum auth_status status;
	uint16_t port;
	unsigned char pw_hash[AUTH_CACHE_HASH_LEN];
	/* into data; NULL when the result had none */
	const char *user;		/* the key: the normalised login name */
	const char *result_user;
	const char *reason;
	const char *host;
	const char *destuser;
	const char *director_tag;
	const char *alt;		/* alt_count "field\0value\0" pairs */
	size_t alt_count;
	char data[];
};

struct auth_cache {
	struct auth_cache_settings set;
	struct hmap entries;
	struct list lru;
	unsigned char key[crypto_generichash_KEYBYTES];
	struct auth_cache_stats stats;
};

struct auth_cache *auth_cache_new(const struct auth_cache_settings *set)
{
	struct auth_cache *cache = xcalloc(1, sizeof(*cache));
	/* idempotent; auth_new() made it already, a test may not have */
	if (sodium_init() < 0)
		abort();
	cache->set = *set;
	hmap_init(&cache->entries);
	list_init(&cache->lru);
	randombytes_buf(cache->key, sizeof(cache->key));
	return cache;
}

static void auth_cache_remove(struct auth_cache *cache, struct auth_cache_entry *e)
{
	hmap_remove(&cache->entries, &e->node);
	list_unlink(&cache->lru, &e->lru);
	cache->stats.entries--;
	cache->stats.bytes -= e->size;
	/* the strings hold no secret, the hash is keyed: wiping it is cheap
	 * and keeps freed memory from telling anything */
	sodium_memzero(e->pw_hash, sizeof(e->pw_hash));
	free(e);
}

void auth_cache_free(struct auth_cache **cachep)
{
	struct auth_cache *cache = *cachep;
	if (cache == NULL)
		return;
	auth_cache_flush_all(cache);
	hmap_destroy(&cache->entries);
	sodium_memzero(cache->key, sizeof(cache->key));
	free(cache);
	*cachep = NULL;
}

static void auth_cache_evict(struct auth_cache *cache)
{
	while (cache->stats.bytes > cache->set.size && !list_is_empty(&cache->lru))
		auth_cache_remove(cache, CONTAINER_OF(cache->lru.head,
						      struct auth_cache_entry, lru));
}

void auth_cache_set_settings(struct auth_cache *cache,
			     const struct auth_cache_settings *set)
{
	cache->set = *set;
	auth_cache_evict(cache);
}

static struct auth_cache_entry *auth_cache_find(const struct auth_cache *cache,
						const char *user)
{
	struct hmap_node *n;
	HMAP_FOR_EACH_WITH_HASH(n, hash_string(user), &cache->entries) {
		struct auth_cache_entry *e = CONTAINER_OF(n, struct auth_cache_entry, node);
		if (strcmp(e->user, user) == 0)
			return e;
	}
	return NULL;
}

static void auth_cache_hash_password(const struct auth_cache *cache, const char *user,
				     const char *password,
				     unsigned char out[AUTH_CACHE_HASH_LEN])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, cache->key, sizeof(cache->key), AUTH_CACHE_HASH_LEN);
	/* the NUL keeps ("ab", "c") apart from ("a", "bc") */
	crypto_generichash_update(&st, (const unsigned char *)user, strlen(user) + 1);
	crypto_generichash_update(&st, (const unsigned char *)password, strlen(password));
	crypto_generichash_final(&st, out, AUTH_CACHE_HASH_LEN);
	sodium_memzero(&st, sizeof(st));
}

static char *auth_cache_strdup_or_null(const char *s)
{
	return s == NULL ? NULL : xstrdup(s);
}

/* The entry's verdict and fields into result: what the passdb gave. */
static void auth_cache_entry_fill(const struct auth_cache_entry *e,
				  struct auth_result *result)
{
	auth_result_clear(result);
	result->status = e->status;
	result->user = xstrdup(e->result_user);
	result->reason = auth_cache_strdup_or_null(e->reason);
	result->host = auth_cache_strdup_or_null(e->host);
	result->port = e->port;
	result->destuser = auth_cache_strdup_or_null(e->destuser);
	result->director_tag = auth_cache_strdup_or_null(e->director_tag);
	result->password_unchecked = e->password_unchecked;
	if (e->alt_count == 0)
		return;
	result->alt = xcalloc(e->alt_count, sizeof(*result->alt));
	const char *p = e->alt;
	for (size_t i = 0; i < e->alt_count; i++) {
		result->alt[i].field = xstrdup(p);
		p += strlen(p) + 1;
		result->alt[i].value = xstrdup(p);
		p += strlen(p) + 1;
	}
	result->alt_count = e->alt_count;
}

enum auth_cache_answer auth_cache_lookup(struct auth_cache *cache, const char *user,
					 const char *password, uint64_t now_ms,
					 bool allow_expired, struct auth_result *result)
{
	struct auth_cache_entry *e = auth_cache_find(cache, user);
	bool fresh = e != NULL && now_ms < e->expires_ms;
	enum auth_cache_answer answer = AUTH_CACHE_MISS;

	if (e != NULL && (fresh || allow_expired)) {
		if (e->negative) {
			answer = AUTH_CACHE_NEGATIVE;
		} else if (password == NULL) {
			answer = AUTH_CACHE_HIT;
		} else {
			unsigned char hash[AUTH_CACHE_HASH_LEN];
			auth_cache_hash_password(cache, user, password, hash);
			if (sodium_memcmp(hash, e->pw_hash, sizeof(hash)) == 0)
				answer = AUTH_CACHE_HIT;
		}
	}
	if (answer == AUTH_CACHE_MISS) {
		if (!allow_expired)
			cache->stats.misses++;
		return answer;
	}
	if (!fresh)
		cache->stats.expired_hits++;
	else if (answer == AUTH_CACHE_NEGATIVE)
		cache->stats.negative_hits++;
	else
		cache->stats.hits++;
	list_unlink(&cache->lru, &e->lru);
	list_append(&cache->lru, &e->lru);
	if (answer == AUTH_CACHE_HIT)
		auth_cache_entry_fill(e, result);
	return answer;
}

/* Copies s behind the entry's other strings. */
static const char *auth_cache_pack(char **p, const char *s)
{
	if (s == NULL)
		return NULL;
	size_t n = strlen(s) + 1;
	char *dst = *p;
	memcpy(dst, s, n);
	*p += n;
	return dst;
}

static size_t auth_cache_strsize(const char *s)
{
	return s == NULL ? 0 : strlen(s) + 1;
}

/* Puts e in place of user's old entry, then makes room. */
static void auth_cache_insert(struct auth_cache *cache, struct auth_cache_entry *e)
{
	struct auth_cache_entry *old = auth_cache_find(cache, e->user);
	if (old != NULL)
		auth_cache_remove(cache, old);
	hmap_insert(&cache->entries, &e->node, hash_string(e->user));
	list_append(&cache->lru, &e->lru);
	cache->stats.entries++;
	cache->stats.bytes += e->size;
	/* an entry larger than the whole cache goes at once, itself */
	auth_cache_evict(cache);
}

void auth_cache_add(struct auth_cache *cache, const char *user, const char *password,
		    const struct auth_result *r, uint64_t now_ms)
{
	size_t len = auth_cache_strsize(user) + auth_cache_strsize(r->user) +
		auth_cache_strsize(r->reason) + auth_cache_strsize(r->host) +
		auth_cache_strsize(r->destuser) + auth_cache_strsize(r->director_tag);
	for (size_t i = 0; i < r->alt_count; i++)
		len += auth_cache_strsize(r->alt[i].field) + auth_cache_strsize(r->alt[i].value);

	struct auth_cache_entry *e = xcalloc(1, sizeof(*e) + len);
	char *p = e->data;
	e->size = sizeof(*e) + len;
	e->expires_ms = now_ms + cache->set.ttl_ms;
	e->status = r->status;
	e->port = r->port;
	e->password_unchecked = r->password_unchecked;
	auth_cache_hash_password(cache, user, password, e->pw_hash);
	e->user = auth_cache_pack(&p, user);
	e->result_user = auth_cache_pack(&p, r->user != NULL ? r->user : user);
	e->reason = auth_cache_pack(&p, r->reason);
	e->host = auth_cache_pack(&p, r->host);
	e->destuser = auth_cache_pack(&p, r->destuser);
	e->director_tag = auth_cache_pack(&p, r->director_tag);
	e->alt = p;
	for (size_t i = 0; i < r->alt_count; i++) {
		auth_cache_pack(&p, r->alt[i].field);
		auth_cache_pack(&p, r->alt[i].value);
	}
	e->alt_count = r->alt_count;
	auth_cache_insert(cache, e);
}

void auth_cache_add_negative(struct auth_cache *cache, const char *user,
			     uint64_t now_ms)
{
	if (cache->set.negative_ttl_ms == 0)
		return;	/* negative_ttl = 0: unknown users are not remembered */
	size_t len = strlen(user) + 1;
	struct auth_cache_entry *e = xcalloc(1, sizeof(*e) + len);
	char *p = e->data;
	e->size = sizeof(*e) + len;
	e->expires_ms = now_ms + cache->set.negative_ttl_ms;
	e->negative = true;
	e->user = auth_cache_pack(&p, user);
	auth_cache_insert(cache, e);
}

size_t auth_cache_flush_user(struct auth_cache *cache, const char *user)
{
	struct auth_cache_entry *e = auth_cache_find(cache, user);
	if (e == NULL)
		return 0;
	auth_cache_remove(cache, e);
	return 1;
}

size_t auth_cache_flush_all(struct auth_cache *cache)
{
	size_t count = cache->stats.entries;
	while (!list_is_empty(&cache->lru))
		auth_cache_remove(cache, CONTAINER_OF(cache->lru.head,
						      struct auth_cache_entry, lru));
	return count;
}

void auth_cache_get_stats(const struct auth_cache *cache,
			  struct auth_cache_stats *stats_r)
{
	*stats_r = cache->stats;
}
