/*
 * map.h - open-addressing hash maps: bytes -> pointer and u64 -> pointer.
 *
 * Used for sessions by client id, sessions and connections by id, and the
 * children of topic-trie nodes. Linear probing with backward-shift deletion
 * (no tombstones), load factor at most 3/4. The map does not own keys or
 * values: a bytes key must stay valid while it is in the map (callers point
 * it into the value they store, e.g. the session's own client id).
 *
 * Bytes keys come from clients, and linear probing is only as good as its
 * hash: with a public hash, a client that picks keys sharing low bits turns
 * every lookup into a scan. So every bytes call takes the owner's secret
 * hash key (util/hash.h, drawn at random per process) and the same key must
 * be passed to every call on one map. The map stores no key of its own: a
 * trie has a map per node, and the key is the same for all of them.
 */
#ifndef TERN_UTIL_MAP_H
#define TERN_UTIL_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "tern/error.h"
#include "util/siphash.h"

struct map_slot {
	uint64_t hash; /* 0: empty slot (hashes are forced non-zero) */
	const void *key;
	uint32_t klen;
	void *val;
};

struct map {
	struct map_slot *slots;
	uint32_t mask; /* capacity - 1; capacity is 0 or a power of two */
	uint32_t count;
};

/* Looks up key, hashed under hk; returns the value or NULL. */
void *map_get(const struct map *m, const struct hash_key *hk, const void *key, size_t klen);

/* Inserts or replaces key -> val. TERN_E_NOMEM on allocation failure; only
 * an insert allocates, so replacing the value of a present key always
 * returns TERN_OK. */
TERN_MUST_CHECK enum tern_err map_put(struct map *m, const struct hash_key *hk, const void *key,
                                      size_t klen, void *val);

/* Removes key; returns its value or NULL when absent. */
void *map_del(struct map *m, const struct hash_key *hk, const void *key, size_t klen);

/*
 * The same three with the hash computed by the caller: `hash` must be what
 * one function of the key gives for every call on this map. For a caller
 * that hashes a key once for several lookups, and for bench/hashflood, which
 * measures this very table under the unkeyed hash it used to have. Maps fed
 * by client data use the keyed calls above.
 */
void *map_get_hashed(const struct map *m, uint64_t hash, const void *key, size_t klen);
TERN_MUST_CHECK enum tern_err map_put_hashed(struct map *m, uint64_t hash, const void *key,
                                             size_t klen, void *val);
void *map_del_hashed(struct map *m, uint64_t hash, const void *key, size_t klen);

/* Frees the table (not keys or values). */
void map_free(struct map *m);

/* Iterates: start with *pos = 0; returns the next value or NULL at the end.
 * The map must not change during the walk. */
void *map_next(const struct map *m, size_t *pos);

/* u64-keyed variant: key 0 is allowed. */
void *map64_get(const struct map *m, uint64_t key);
TERN_MUST_CHECK enum tern_err map64_put(struct map *m, uint64_t key, void *val);
void *map64_del(struct map *m, uint64_t key);

#endif
