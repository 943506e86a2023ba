/*
 * map.c - open-addressing hash map; see map.h.
 *
 * The u64 variant shares the slot layout: the integer key is carried in the
 * `key` field (cast through uintptr_t, 64 bits on every platform we build
 * for) and compared exactly, so both variants use one probe loop.
 */
#include "util/map.h"

#include <stdlib.h>
#include <string.h>

#include "util/hash.h"

_Static_assert(sizeof(uintptr_t) >= sizeof(uint64_t), "u64 keys ride in a pointer");

static uint64_t fix_hash(uint64_t h)
{
	return h ? h : 1;
}

static TERN_MUST_CHECK enum tern_err grow(struct map *m)
{
	size_t cap = m->slots ? ((size_t)m->mask + 1) * 2 : 8;
	if (cap > ((size_t)1 << 31))
		return TERN_E_NOMEM;
	struct map_slot *s = calloc(cap, sizeof(*s));
	if (!s)
		return TERN_E_NOMEM;
	for (size_t i = 0; m->slots && i <= m->mask; i++) {
		struct map_slot *o = &m->slots[i];
		if (!o->hash)
			continue;
		size_t j = o->hash & (cap - 1);
		while (s[j].hash)
			j = (j + 1) & (cap - 1);
		s[j] = *o;
	}
	free(m->slots);
	m->slots = s;
	m->mask = cap - 1;
	return TERN_OK;
}

static struct map_slot *find(const struct map *m, uint64_t h, const void *key, size_t klen,
                             int is64)
{
	if (!m->slots)
		return NULL;
	for (size_t i = h & m->mask;; i = (i + 1) & m->mask) {
		struct map_slot *s = &m->slots[i];
		if (!s->hash)
			return NULL;
		if (s->hash != h)
			continue;
		if (is64 ? s->key == key : (s->klen == klen && memcmp(s->key, key, klen) == 0))
			return s;
	}
}

static TERN_MUST_CHECK enum tern_err put(struct map *m, uint64_t h, const void *key, size_t klen,
                                         void *val, int is64)
{
	struct map_slot *s = find(m, h, key, klen, is64);
	if (s) {
		s->val = val;
		return TERN_OK;
	}
	/* Up to 3/4 full: linear probing stays short there, and a map per
	 * connection-sized population costs memory. */
	if (!m->slots || ((size_t)m->count + 1) * 4 > ((size_t)m->mask + 1) * 3) {
		enum tern_err err = grow(m);
		if (err)
			return err;
	}
	size_t i = h & m->mask;
	while (m->slots[i].hash)
		i = (i + 1) & m->mask;
	m->slots[i] = (struct map_slot){h, key, (uint32_t)klen, val};
	m->count++;
	return TERN_OK;
}

/* Backward-shift deletion keeps probe chains intact without tombstones: each
 * later entry of the chain whose home is not cyclically in (i, j] moves back
 * into the hole. */
static void *del(struct map *m, struct map_slot *s)
{
	if (!s)
		return NULL;
	void *val = s->val;
	size_t i = (size_t)(s - m->slots);
	for (size_t j = i;;) {
		j = (j + 1) & m->mask;
		struct map_slot *n = &m->slots[j];
		if (!n->hash)
			break;
		size_t k = n->hash & m->mask;
		int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
		if (stays)
			continue;
		m->slots[i] = *n;
		i = j;
	}
	m->slots[i].hash = 0;
	m->count--;
	return val;
}

void *map_get_hashed(const struct map *m, uint64_t hash, const void *key, size_t klen)
{
	struct map_slot *s = find(m, fix_hash(hash), key, klen, 0);
	return s ? s->val : NULL;
}

enum tern_err map_put_hashed(struct map *m, uint64_t hash, const void *key, size_t klen, void *val)
{
	return put(m, fix_hash(hash), key, klen, val, 0);
}

void *map_del_hashed(struct map *m, uint64_t hash, const void *key, size_t klen)
{
	return del(m, find(m, fix_hash(hash), key, klen, 0));
}

void *map_get(const struct map *m, const struct hash_key *hk, const void *key, size_t klen)
{
	return map_get_hashed(m, hash_bytes(hk, key, klen), key, klen);
}

enum tern_err map_put(struct map *m, const struct hash_key *hk, const void *key, size_t klen,
                      void *val)
{
	return map_put_hashed(m, hash_bytes(hk, key, klen), key, klen, val);
}

void *map_del(struct map *m, const struct hash_key *hk, const void *key, size_t klen)
{
	return map_del_hashed(m, hash_bytes(hk, key, klen), key, klen);
}

void map_free(struct map *m)
{
	free(m->slots);
	m->slots = NULL;
	m->mask = 0;
	m->count = 0;
}

void *map_next(const struct map *m, size_t *pos)
{
	while (m->slots && *pos <= m->mask) {
		struct map_slot *s = &m->slots[(*pos)++];
		if (s->hash)
			return s->val;
	}
	return NULL;
}

static const void *key64(uint64_t k)
{
	return (const void *)(uintptr_t)k;
}

void *map64_get(const struct map *m, uint64_t key)
{
	struct map_slot *s = find(m, fix_hash(hash_mix(key + 1)), key64(key), 0, 1);
	return s ? s->val : NULL;
}

enum tern_err map64_put(struct map *m, uint64_t key, void *val)
{
	return put(m, fix_hash(hash_mix(key + 1)), key64(key), 0, val, 1);
}

void *map64_del(struct map *m, uint64_t key)
{
	return del(m, find(m, fix_hash(hash_mix(key + 1)), key64(key), 0, 1));
}
