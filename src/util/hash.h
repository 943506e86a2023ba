/*
 * hash.h - the hash functions of tern's tables.
 *
 * Two kinds of keys, two functions:
 *   - bytes (client ids, topic levels, topic filters) come from clients, so
 *     they are hashed with SipHash-1-3 under a secret per-process key
 *     (util/siphash.h): a client cannot craft names that share a bucket.
 *   - integers (session, connection and request ids) are drawn by the broker
 *     itself, and the client library's packet ids by itself; no one else
 *     picks them, so an unkeyed avalanche (hash_mix) is enough.
 * Hashes are never stored nor sent: with a fresh key per process, they mean
 * nothing after a restart.
 */
#ifndef TERN_UTIL_HASH_H
#define TERN_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "util/siphash.h"

/* A bijective 64-bit finalizer (murmur3's fmix64): every output bit
 * depends on every input bit. For keys no client chooses. */
static inline uint64_t hash_mix(uint64_t h)
{
	h ^= h >> 33;
	h *= UINT64_C(0xff51afd7ed558ccd);
	h ^= h >> 33;
	h *= UINT64_C(0xc4ceb9fe1a85ec53);
	h ^= h >> 33;
	return h;
}

/* Keyed hash of len bytes at p: SipHash-1-3 under k. */
static inline uint64_t hash_bytes(const struct hash_key *k, const void *p, size_t len)
{
	return siphash13(k, p, len);
}

#endif
