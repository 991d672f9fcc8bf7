/* Intrusive chained hash map with power-of-two bucket counts. The table
 * doubles when the load factor exceeds 1 and never shrinks (sessions come
 * back; shrinking would only churn). */
#include "common/hmap.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/xmalloc.h"

void hmap_init(struct hmap *map)
{
	map->buckets = NULL;
	map->mask = 0;
	map->count = 0;
}

void hmap_destroy(struct hmap *map)
{
	free(map->buckets);
	hmap_init(map);
}

static void hmap_resize(struct hmap *map, size_t nbuckets)
{
	struct hmap_node **nb = xcalloc(nbuckets, sizeof(*nb));
	size_t nmask = nbuckets - 1;
	if (map->buckets != NULL) {
		for (size_t i = 0; i <= map->mask; i++) {
			struct hmap_node *n = map->buckets[i];
			while (n != NULL) {
				struct hmap_node *next = n->next;
				size_t b = n->hash & nmask;
				n->next = nb[b];
				nb[b] = n;
				n = next;
			}
		}
	}
	free(map->buckets);
	map->buckets = nb;
	map->mask = nmask;
}

void hmap_insert(struct hmap *map, struct hmap_node *node, uint64_t hash)
{
	if (map->buckets == NULL)
		hmap_resize(map, 16);
	else if (map->count > map->mask)
		hmap_resize(map, (map->mask + 1) * 2);
	node->hash = hash;
	size_t b = hash & map->mask;
	node->next = map->buckets[b];
	map->buckets[b] = node;
	map->count++;
}

void hmap_remove(struct hmap *map, struct hmap_node *node)
{
	struct hmap_node **p = &map->buckets[node->hash & map->mask];
	while (*p != node)
		p = &(*p)->next;
	*p = node->next;
	node->next = NULL;
	map->count--;
}

struct hmap_node *hmap_first_with_hash(const struct hmap *map, uint64_t hash)
{
	if (map->buckets == NULL)
		return NULL;
	struct hmap_node *n = map->buckets[hash & map->mask];
	while (n != NULL && n->hash != hash)
		n = n->next;
	return n;
}

struct hmap_node *hmap_next_with_hash(const struct hmap_node *node)
{
	uint64_t hash = node->hash;
	struct hmap_node *n = node->next;
	while (n != NULL && n->hash != hash)
		n = n->next;
	return n;
}

static struct hmap_node *hmap_scan_from(const struct hmap *map, size_t b)
{
	if (map->buckets == NULL)
		return NULL;
	for (; b <= map->mask; b++) {
		if (map->buckets[b] != NULL)
			return map->buckets[b];
	}
	return NULL;
}

struct hmap_node *hmap_first(const struct hmap *map)
{
	return hmap_scan_from(map, 0);
}

struct hmap_node *hmap_next(const struct hmap *map, const struct hmap_node *node)
{
	if (node->next != NULL)
		return node->next;
	return hmap_scan_from(map, (node->hash & map->mask) + 1);
}

uint64_t hash_bytes(const void *data, size_t len)
{
	return XXH3_64bits(data, len);
}

uint64_t hash_string(const char *s)
{
	return XXH3_64bits(s, strlen(s));
}

uint64_t hash_string_icase(const char *s)
{
	char buf[256];
	size_t len = strlen(s);
	if (len > sizeof(buf)) {
		/* Long keys are rare: hash a lower-cased copy in chunks. */
		XXH3_state_t *st = XXH3_createState();
		XXH3_64bits_reset(st);
		for (size_t off = 0; off < len; off += sizeof(buf)) {
			size_t n = MIN(sizeof(buf), len - off);
			for (size_t i = 0; i < n; i++)
				buf[i] = (char)tolower((unsigned char)s[off + i]);
			XXH3_64bits_update(st, buf, n);
		}
		uint64_t h = XXH3_64bits_digest(st);
		XXH3_freeState(st);
		return h;
	}
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)tolower((unsigned char)s[i]);
	return XXH3_64bits(buf, len);
}

uint64_t hash_u64(uint64_t x)
{
	/* splitmix64 finaliser: cheap and well distributed */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}
