/*
 * test_hash.c - unit tests of SipHash (src/util/siphash.c) and of the hash
 * map under keys crafted to collide (src/util/map.c).
 *
 * SipHash-2-4 is checked against the 64 vectors of the reference
 * implementation (key 00 01 .. 0f, messages 00 01 .. of length 0 to 63),
 * which pins the round function, the word loading and the length byte;
 * SipHash-1-3, the variant the tables use, against vectors of the same key
 * and messages published with other independent implementations.
 *
 * The map tests build the attack of issue 10: keys chosen so that the
 * unkeyed hash tern used before (FNV-1a and an avalanche) puts them all in
 * one bucket. Under that hash they form one long probe chain; under the
 * keyed hash they spread like random keys. The chain length is read from
 * the slots (the displacement of each entry from its home bucket), not
 * timed, so the test measures the property itself.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/hash.h"
#include "util/map.h"
#include "util/siphash.h"

/* The reference key 00 01 .. 0f. */
static const struct hash_key REF_KEY = {UINT64_C(0x0706050403020100), UINT64_C(0x0f0e0d0c0b0a0908)};

/* SipHash-2-4 of 00 01 .. (i - 1) under REF_KEY: the reference vectors. */
static const uint64_t SIP24[64] = {
        0x726fdb47dd0e0e31, 0x74f839c593dc67fd, 0x0d6c8009d9a94f5a, 0x85676696d7fb7e2d,
        0xcf2794e0277187b7, 0x18765564cd99a68d, 0xcbc9466e58fee3ce, 0xab0200f58b01d137,
        0x93f5f5799a932462, 0x9e0082df0ba9e4b0, 0x7a5dbbc594ddb9f3, 0xf4b32f46226bada7,
        0x751e8fbc860ee5fb, 0x14ea5627c0843d90, 0xf723ca908e7af2ee, 0xa129ca6149be45e5,
        0x3f2acc7f57c29bdb, 0x699ae9f52cbe4794, 0x4bc1b3f0968dd39c, 0xbb6dc91da77961bd,
        0xbed65cf21aa2ee98, 0xd0f2cbb02e3b67c7, 0x93536795e3a33e88, 0xa80c038ccd5ccec8,
        0xb8ad50c6f649af94, 0xbce192de8a85b8ea, 0x17d835b85bbb15f3, 0x2f2e6163076bcfad,
        0xde4daaaca71dc9a5, 0xa6a2506687956571, 0xad87a3535c49ef28, 0x32d892fad841c342,
        0x7127512f72f27cce, 0xa7f32346f95978e3, 0x12e0b01abb051238, 0x15e034d40fa197ae,
        0x314dffbe0815a3b4, 0x027990f029623981, 0xcadcd4e59ef40c4d, 0x9abfd8766a33735c,
        0x0e3ea96b5304a7d0, 0xad0c42d6fc585992, 0x187306c89bc215a9, 0xd4a60abcf3792b95,
        0xf935451de4f21df2, 0xa9538f0419755787, 0xdb9acddff56ca510, 0xd06c98cd5c0975eb,
        0xe612a3cb9ecba951, 0xc766e62cfcadaf96, 0xee64435a9752fe72, 0xa192d576b245165a,
        0x0a8787bf8ecb74b2, 0x81b3e73d20b49b6f, 0x7fa8220ba3b2ecea, 0x245731c13ca42499,
        0xb78dbfaf3a8d83bd, 0xea1ad565322a1a0b, 0x60e61c23a3795013, 0x6606d7e446282b93,
        0x6ca4ecb15c5f91e1, 0x9f626da15c9625f3, 0xe51b38608ef25f57, 0x958a324ceb064572,
};

/* SipHash-1-3 under REF_KEY, by message length: every length of the first
 * two words, and the word boundaries after. */
static const struct {
	size_t len;
	uint64_t h;
} SIP13[] = {
        {0, 0xabac0158050fc4dc},  {1, 0xc9f49bf37d57ca93},  {2, 0x82cb9b024dc7d44d},
        {3, 0x8bf80ab8e7ddf7fb},  {4, 0xcf75576088d38328},  {5, 0xdef9d52f49533b67},
        {6, 0xc50d2b50c59f22a7},  {7, 0xd3927d989bb11140},  {8, 0x369095118d299a8e},
        {9, 0x25a48eb36c063de4},  {10, 0x79de85ee92ff097f}, {11, 0x70c118c1f94dc352},
        {12, 0x78a384b157b4d9a2}, {13, 0x306f760c1229ffa7}, {14, 0x605aa111c0f95d34},
        {15, 0xd320d86d2a519956}, {16, 0xcc4fdd1a7d908b66}, {31, 0x2370dd1f8c21d1bc},
        {32, 0x81157b6c16a7b60d}, {63, 0x9d199062b7bbb3a8},
};

static void counting_bytes(uint8_t *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		m[i] = (uint8_t)i;
}

static void test_siphash24_matches_the_reference_vectors(void **state)
{
	(void)state;
	uint8_t m[64];
	counting_bytes(m, sizeof(m));
	for (size_t len = 0; len < 64; len++) {
		if (siphash24(&REF_KEY, m, len) != SIP24[len])
			fail_msg("SipHash-2-4 of %zu bytes: %016llx, want %016llx", len,
			         (unsigned long long)siphash24(&REF_KEY, m, len),
			         (unsigned long long)SIP24[len]);
	}
}

static void test_siphash13_matches_the_published_vectors(void **state)
{
	(void)state;
	uint8_t m[64];
	counting_bytes(m, sizeof(m));
	for (size_t i = 0; i < sizeof(SIP13) / sizeof(SIP13[0]); i++) {
		uint64_t h = siphash13(&REF_KEY, m, SIP13[i].len);
		if (h != SIP13[i].h)
			fail_msg("SipHash-1-3 of %zu bytes: %016llx, want %016llx", SIP13[i].len,
			         (unsigned long long)h, (unsigned long long)SIP13[i].h);
	}
	/* The all-zero key too: it is k0 and k1, not bytes, that are XORed
	 * into the state. */
	const struct hash_key zero = {0, 0};
	assert_true(siphash13(&zero, m, 0) == UINT64_C(0xd1fba762150c532c));
	assert_true(siphash13(&zero, m, 7) == UINT64_C(0x2f098ab0c751325a));
}

static void test_hash_depends_on_the_key(void **state)
{
	(void)state;
	struct hash_key a, b;
	assert_int_equal(hash_key_random(&a), TERN_OK);
	assert_int_equal(hash_key_random(&b), TERN_OK);
	/* 128 random bits twice the same: the kernel's source is broken. */
	assert_false(a.k0 == b.k0 && a.k1 == b.k1);
	assert_true(hash_bytes(&a, "dev/1", 5) != hash_bytes(&b, "dev/1", 5));
	assert_true(hash_bytes(&a, "dev/1", 5) == hash_bytes(&a, "dev/1", 5));
}

/* ---- maps under crafted keys ---- */

/* The bytes hash of tern before issue 10: FNV-1a, then the avalanche. */
static uint64_t old_hash(const void *p, size_t len)
{
	const unsigned char *s = p;
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	for (size_t i = 0; i < len; i++) {
		h ^= s[i];
		h *= UINT64_C(0x100000001b3);
	}
	return hash_mix(h);
}

#define N_KEYS  2000
#define KEY_LEN 12
/* A map of N_KEYS entries has 4096 slots (load at most 3/4). */
#define CRAFT_MASK 4095u

/* Fills keys with N_KEYS distinct names whose old hash is 0 in the low 12
 * bits: one bucket of the final table, and of every smaller one the table
 * grows through. This is what a client can do offline against a public
 * hash; a brute-force search costs 4096 tries per name. */
static char (*craft_colliding(void))[KEY_LEN + 1]
{
	char(*keys)[KEY_LEN + 1] = calloc(N_KEYS, sizeof(*keys));
	assert_non_null(keys);
	size_t n = 0;
	for (uint32_t i = 0; n < N_KEYS; i++) {
		char k[KEY_LEN + 1];
		snprintf(k, sizeof(k), "lvl%09u", i);
		if ((old_hash(k, KEY_LEN) & CRAFT_MASK) == 0)
			memcpy(keys[n++], k, sizeof(k));
	}
	return keys;
}

/* The longest distance of an entry from its home bucket: the number of
 * slots a lookup of it probes, minus one. */
static size_t longest_probe(const struct map *m)
{
	size_t worst = 0;
	for (size_t i = 0; i <= m->mask; i++) {
		const struct map_slot *s = &m->slots[i];
		if (!s->hash)
			continue;
		size_t d = (i - (size_t)(s->hash & m->mask)) & m->mask;
		if (d > worst)
			worst = d;
	}
	return worst;
}

/* Inserts, finds, deletes every other key and finds the rest, through the
 * keyed calls when hk is set, else through the old hash. Returns the
 * longest probe after the inserts. */
static size_t exercise(char (*keys)[KEY_LEN + 1], const struct hash_key *hk)
{
	struct map m = {0};
	for (size_t i = 0; i < N_KEYS; i++) {
		void *v = (void *)(uintptr_t)(i + 1);
		enum tern_err err =
		        hk ? map_put(&m, hk, keys[i], KEY_LEN, v)
		           : map_put_hashed(&m, old_hash(keys[i], KEY_LEN), keys[i], KEY_LEN, v);
		assert_int_equal(err, TERN_OK);
	}
	assert_int_equal(m.count, N_KEYS);
	size_t worst = longest_probe(&m);
	for (size_t i = 0; i < N_KEYS; i++) {
		void *v = hk ? map_get(&m, hk, keys[i], KEY_LEN)
		             : map_get_hashed(&m, old_hash(keys[i], KEY_LEN), keys[i], KEY_LEN);
		assert_ptr_equal(v, (void *)(uintptr_t)(i + 1));
	}
	/* Deleting from the middle of a chain shifts its tail back; every
	 * survivor must still be found. */
	for (size_t i = 0; i < N_KEYS; i += 2) {
		void *v = hk ? map_del(&m, hk, keys[i], KEY_LEN)
		             : map_del_hashed(&m, old_hash(keys[i], KEY_LEN), keys[i], KEY_LEN);
		assert_ptr_equal(v, (void *)(uintptr_t)(i + 1));
	}
	for (size_t i = 0; i < N_KEYS; i++) {
		void *v = hk ? map_get(&m, hk, keys[i], KEY_LEN)
		             : map_get_hashed(&m, old_hash(keys[i], KEY_LEN), keys[i], KEY_LEN);
		assert_ptr_equal(v, i % 2 ? (void *)(uintptr_t)(i + 1) : NULL);
	}
	assert_int_equal(m.count, N_KEYS / 2);
	map_free(&m);
	return worst;
}

static void test_crafted_keys_pile_up_under_the_unkeyed_hash(void **state)
{
	(void)state;
	/* The premise of the next test: these keys do attack the old hash.
	 * All share one home bucket, so the last one inserted sits
	 * N_KEYS - 1 slots away from it. */
	char(*keys)[KEY_LEN + 1] = craft_colliding();
	assert_int_equal(exercise(keys, NULL), N_KEYS - 1);
	free(keys);
}

static void test_crafted_keys_spread_under_the_keyed_hash(void **state)
{
	(void)state;
	char(*keys)[KEY_LEN + 1] = craft_colliding();
	struct hash_key hk;
	assert_int_equal(hash_key_random(&hk), TERN_OK);
	/* 2000 random keys in 4096 slots (load 0.49): linear probing's
	 * longest chain is a dozen or two slots; 100 is far out in the tail,
	 * and 1999 is what the attack gets. */
	size_t worst = exercise(keys, &hk);
	if (worst >= 100)
		fail_msg("longest probe %zu slots under the keyed hash", worst);
	free(keys);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_siphash24_matches_the_reference_vectors),
	        cmocka_unit_test(test_siphash13_matches_the_published_vectors),
	        cmocka_unit_test(test_hash_depends_on_the_key),
	        cmocka_unit_test(test_crafted_keys_pile_up_under_the_unkeyed_hash),
	        cmocka_unit_test(test_crafted_keys_spread_under_the_keyed_hash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
