/*
 * map.h - open-addressing hash maps: bytes -> pointer and u64 -> pointer.
 *
 * Used for sessions by client id, sessions and connections by id, and the
 * children of topic-trie nodes. Linear probing with backward-shift deletion
 * (no tombstones), load factor at most 3/4. The map does not own keys or
 * values: a bytes key must stay valid while it is in the map (callers point
 * it into the value they store, e.g. the session's own client id).
 */
#ifndef TERN_UTIL_MAP_H
#define TERN_UTIL_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "tern/error.h"

struct tern_map_slot {
	uint64_t hash; /* 0: empty slot (hashes are forced non-zero) */
	const void *key;
	uint32_t klen;
	void *val;
};

struct tern_map {
	struct tern_map_slot *slots;
	uint32_t mask; /* capacity - 1; capacity is 0 or a power of two */
	uint32_t count;
};

/* Looks up key; returns the value or NULL. */
void *tern_map_get(const struct tern_map *m, const void *key, size_t klen);

/* Inserts or replaces key -> val. TERN_E_NOMEM on allocation failure. */
enum tern_err tern_map_put(struct tern_map *m, const void *key, size_t klen, void *val);

/* Removes key; returns its value or NULL when absent. */
void *tern_map_del(struct tern_map *m, const void *key, size_t klen);

/* Frees the table (not keys or values). */
void tern_map_free(struct tern_map *m);

/* Iterates: start with *pos = 0; returns the next value or NULL at the end.
 * The map must not change during the walk. */
void *tern_map_next(const struct tern_map *m, size_t *pos);

/* u64-keyed variant: key 0 is allowed. */
void *tern_map64_get(const struct tern_map *m, uint64_t key);
enum tern_err tern_map64_put(struct tern_map *m, uint64_t key, void *val);
void *tern_map64_del(struct tern_map *m, uint64_t key);

#endif
