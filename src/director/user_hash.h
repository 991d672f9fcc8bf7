/* Dovecot's mail_user_hash (reference §1.1): MD5 of the expanded
 * director_username_hash template, first 4 bytes big-endian, 0 -> 1. */
#ifndef LOFT_DIRECTOR_USER_HASH_H
#define LOFT_DIRECTOR_USER_HASH_H

#include <stddef.h>
#include <stdint.h>

struct user_hasher;

/* The template must have passed varexpand_user_validate(). */
struct user_hasher *user_hasher_new(const char *tmpl);
void user_hasher_free(struct user_hasher **h);
uint32_t user_hasher_hash(struct user_hasher *h, const char *username);

/* First 4 bytes of MD5(data) as a big-endian integer, no 0 remapping:
 * the vhost point function of §1.2. */
uint32_t md5_u32(const void *data, size_t len);

#endif
