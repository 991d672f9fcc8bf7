/* Intrusive chained hash map: the node lives inside the owner's struct, so
 * inserting allocates nothing but the occasional bucket array growth.
 * The map does not own its nodes. */
#ifndef LOFT_COMMON_HMAP_H
#define LOFT_COMMON_HMAP_H

#include <stddef.h>
#include <stdint.h>

#include "common/macros.h"

struct hmap_node {
	struct hmap_node *next;
	uint64_t hash;
};

struct hmap {
	struct hmap_node **buckets;
	size_t mask;	/* bucket count - 1; 0 with no buckets */
	size_t count;
};

#define HMAP_INIT { NULL, 0, 0 }

void hmap_init(struct hmap *map);
/* Frees the bucket array; the nodes belong to their owners. */
void hmap_destroy(struct hmap *map);

void hmap_insert(struct hmap *map, struct hmap_node *node, uint64_t hash);
void hmap_remove(struct hmap *map, struct hmap_node *node);

static inline size_t hmap_count(const struct hmap *map)
{
	return map->count;
}

/* Candidates with the given hash; the caller compares keys. */
struct hmap_node *hmap_first_with_hash(const struct hmap *map, uint64_t hash);
struct hmap_node *hmap_next_with_hash(const struct hmap_node *node);

/* Iteration in bucket order. Removing the current node is allowed if the
 * caller fetched the next one first (see HMAP_FOR_EACH_SAFE). */
struct hmap_node *hmap_first(const struct hmap *map);
struct hmap_node *hmap_next(const struct hmap *map, const struct hmap_node *node);

#define HMAP_FOR_EACH(node, map) \
	for ((node) = hmap_first(map); (node) != NULL; \
	     (node) = hmap_next((map), (node)))
#define HMAP_FOR_EACH_SAFE(node, next, map) \
	for ((node) = hmap_first(map); \
	     (node) != NULL && ((next) = hmap_next((map), (node)), 1); \
	     (node) = (next))
#define HMAP_FOR_EACH_WITH_HASH(node, hash, map) \
	for ((node) = hmap_first_with_hash((map), (hash)); (node) != NULL; \
	     (node) = hmap_next_with_hash(node))

/* Hash functions for keys (XXH3). */
uint64_t hash_bytes(const void *data, size_t len);
uint64_t hash_string(const char *s);
/* ASCII-case-insensitive string hash, for keys compared with strcasecmp. */
uint64_t hash_string_icase(const char *s);
uint64_t hash_u64(uint64_t x);

#endif
