/* The auth cache (Dovecot's auth_cache_*): what the passdbs answered for
 * a user, so that the next login with the same password needs neither a
 * passdb round trip nor a password-scheme verification.
 *
 * A positive entry holds the passdb's verdict (OK or nologin) and result
 * fields, and a keyed BLAKE2b hash of the user and the password that
 * succeeded (never the password): a login whose password hashes the same
 * is answered from the entry, any other goes to the passdbs. A negative
 * entry says the user is unknown. Entries live `ttl` (negative ones
 * `negative_ttl`), but an expired one stays until it is replaced or
 * evicted: when the passdbs cannot answer (a database down or
 * overloaded), it is still served. Entries are keyed by the normalised
 * user name in a hash table (O(1)) and evicted least recently used first
 * once their bytes pass `size`.
 *
 * Time is passed in (milliseconds, monotonic), so that tests can drive
 * it. Loop thread only; owned by auth. Library-like: it never logs. */
#ifndef LOFT_AUTH_AUTH_CACHE_H
#define LOFT_AUTH_AUTH_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"

struct auth_cache;

struct auth_cache_settings {
	uint64_t size;		/* bytes of entries at most */
	uint64_t ttl_ms;	/* positive entries are fresh this long */
	uint64_t negative_ttl_ms;	/* negative ones this long */
};

/* Counters for the metrics endpoint. */
struct auth_cache_stats {
	uint64_t hits;		/* answered from a fresh entry, positive */
	uint64_t negative_hits;	/* ... from a fresh negative entry */
	uint64_t expired_hits;	/* from an expired entry, the passdbs failing */
	uint64_t misses;	/* logins that went to the passdbs */
	uint64_t entries;
	uint64_t bytes;
};

enum auth_cache_answer {
	AUTH_CACHE_MISS,	/* nothing usable: ask the passdbs */
	AUTH_CACHE_HIT,		/* result filled from a positive entry */
	AUTH_CACHE_NEGATIVE,	/* the user is unknown */
};

struct auth_cache *auth_cache_new(const struct auth_cache_settings *set);
void auth_cache_free(struct auth_cache **cache);
/* New limits (a reload): entries beyond the new size are evicted; the
 * entries' expiry times stay as they were set. */
void auth_cache_set_settings(struct auth_cache *cache,
			     const struct auth_cache_settings *set);

/* The entry of user, fresh at now_ms (or, with allow_expired, any):
 * a positive one answers a login whose password matches (password
 * NULL: a user lookup, which any positive entry answers) by filling
 * result (its previous fields are freed); a negative one answers that
 * the user is unknown. A lookup without allow_expired that answers
 * nothing counts as a miss. A hit makes the entry the most recently
 * used. */
enum auth_cache_answer auth_cache_lookup(struct auth_cache *cache, const char *user,
					 const char *password, uint64_t now_ms,
					 bool allow_expired, struct auth_result *result);
/* Remembers result (OK or NOLOGIN) for user and password, replacing
 * what was there. */
void auth_cache_add(struct auth_cache *cache, const char *user, const char *password,
		    const struct auth_result *result, uint64_t now_ms);
/* Remembers that user is unknown (unless negative_ttl is 0). */
void auth_cache_add_negative(struct auth_cache *cache, const char *user,
			     uint64_t now_ms);
/* Forgets user's entry; returns 1 if there was one, else 0. */
size_t auth_cache_flush_user(struct auth_cache *cache, const char *user);
/* Forgets every entry; returns how many there were. */
size_t auth_cache_flush_all(struct auth_cache *cache);

void auth_cache_get_stats(const struct auth_cache *cache,
			  struct auth_cache_stats *stats_r);

#endif
