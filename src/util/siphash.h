/*
 * siphash.h - SipHash, the keyed hash of every table fed by client data.
 *
 * A hash table whose keys a client chooses (topic levels, client ids,
 * topic filters) must not let that client pick keys that share a bucket:
 * with a public hash function, 20,000 level names that collide in the low
 * bits turn each lookup of a linear-probing table into a scan of all of
 * them. SipHash (Aumasson and Bernstein, "SipHash: a fast short-input PRF",
 * 2012) is a pseudo-random function of a 128-bit secret key: without the
 * key, a client cannot tell which of its names collide.
 *
 * SipHash-c-d runs c compression rounds per 8-byte word and d finalization
 * rounds. SipHash-2-4 is the paper's recommended variant and the one with
 * published test vectors, which check this implementation's core;
 * SipHash-1-3 is what the tables use, the choice Redis, Python and Rust made
 * for hash tables (keys are short, outputs are never revealed, and half the
 * rounds halve the cost of a lookup).
 *
 * The key: a struct hash_key value drawn at random per process by its
 * owner (the broker, before any thread starts) and passed to every table
 * call, never a global.
 */
#ifndef TERN_UTIL_SIPHASH_H
#define TERN_UTIL_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#include "tern/error.h"

/* A SipHash key: k0 and k1 are the key's bytes 0-7 and 8-15, read as
 * little-endian integers (so the paper's key 00 01 .. 0f is k0 =
 * 0x0706050403020100, k1 = 0x0f0e0d0c0b0a0908). */
struct hash_key {
	uint64_t k0;
	uint64_t k1;
};

/* SipHash-2-4 of len bytes at p under key k. */
uint64_t siphash24(const struct hash_key *k, const void *p, size_t len);

/* SipHash-1-3 of len bytes at p under key k. */
uint64_t siphash13(const struct hash_key *k, const void *p, size_t len);

/* Fills *k with 16 bytes from the kernel's random source (getrandom(2)).
 * Returns TERN_OK, or TERN_E_SYS when no random bytes could be had (then
 * *k is unchanged and must not be used). */
TERN_MUST_CHECK enum tern_err hash_key_random(struct hash_key *k);

#endif
