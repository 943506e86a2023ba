/*
 * hash.h - the hash function of every table in tern.
 *
 * FNV-1a over bytes, then a final avalanche so that the low bits (which pick
 * the bucket and the home worker) depend on every input byte.
 */
#ifndef TERN_UTIL_HASH_H
#define TERN_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t tern_hash_mix(uint64_t h)
{
	h ^= h >> 33;
	h *= UINT64_C(0xff51afd7ed558ccd);
	h ^= h >> 33;
	h *= UINT64_C(0xc4ceb9fe1a85ec53);
	h ^= h >> 33;
	return h;
}

/* Hash of len bytes at p. */
static inline uint64_t tern_hash_bytes(const void *p, size_t len)
{
	const unsigned char *s = p;
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	for (size_t i = 0; i < len; i++) {
		h ^= s[i];
		h *= UINT64_C(0x100000001b3);
	}
	return tern_hash_mix(h);
}

#endif
