/*
 * hashflood.c - hash flooding: lookups with crafted colliding names against
 * lookups with random names, under the old unkeyed hash and the keyed one.
 *
 * The attack (issue 10, item 4): tern's tables are open-addressing maps with
 * linear probing. Before, bytes keys were hashed with FNV-1a and a public
 * avalanche, so anyone could search offline for names whose hash shares the
 * low bits, i.e. the bucket; 20,000 such topic levels under one trie node
 * turn each lookup at that node into a walk over thousands of slots. Now the
 * keys are hashed with SipHash-1-3 under a random per-process key, and the
 * same names land in random buckets.
 *
 * What runs:
 *   1. Crafts N names (default 20,000) whose old hash is 0 in the low 15
 *      bits (one bucket of the 32,768-slot table N entries live in, and of
 *      every smaller table it grows through), and N random names of the
 *      same length.
 *   2. map: the very table code of src/util/map.c, fed the old hash (through
 *      map_*_hashed) and the keyed hash (map_put/get). Inserts the
 *      N names, then looks each up; prints ns per lookup for crafted and
 *      random names and their ratio, per hash.
 *   3. router: the broker's subscription trie (src/broker/router.c, keyed
 *      hash): N subscriptions "flood/<name>", then router_match() of every
 *      "flood/<name>" topic, crafted against random.
 * Figures are medians of 7 rounds of at least 20 ms, crafted and random
 * alternating; the whole run takes about 5 s (the crafting a third of it).
 *
 * Usage: hashflood [N]; hashflood --names N M prints crafted names for the
 * end-to-end run through ternd (e2e.py).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/router.h"
#include "util/clock.h"
#include "util/hash.h"
#include "util/map.h"

#define NAME_LEN 12 /* "f" + 11 characters */
#define ROUNDS   5

typedef char name_t[NAME_LEN];

/* The bytes hash of tern before issue 10. */
static uint64_t fnv_step(uint64_t h, unsigned char c)
{
	return (h ^ c) * UINT64_C(0x100000001b3);
}

static uint64_t old_hash(const void *p, size_t len)
{
	const unsigned char *s = p;
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	for (size_t i = 0; i < len; i++)
		h = fnv_step(h, s[i]);
	return hash_mix(h);
}

static const char ALNUM[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/* n names whose old hash has its low `bits` bits zero. The prefix's FNV
 * state is kept, so each candidate costs the hashing of its last 4 bytes
 * and the avalanche: ~2^bits candidates per name. */
static name_t *craft(size_t n, unsigned bits)
{
	name_t *v = malloc(n * sizeof(*v));
	if (!v)
		return NULL;
	uint64_t mask = (UINT64_C(1) << bits) - 1;
	size_t got = 0;
	char k[NAME_LEN];
	memset(k, 'a', sizeof(k));
	k[0] = 'f';
	for (uint64_t prefix = 0; got < n; prefix++) {
		/* Characters 1..7 count the prefix in base 62. */
		uint64_t p = prefix;
		for (int i = 7; i >= 1; i--, p /= 62)
			k[i] = ALNUM[p % 62];
		uint64_t hp = UINT64_C(0xcbf29ce484222325);
		for (int i = 0; i < 8; i++)
			hp = fnv_step(hp, (unsigned char)k[i]);
		for (unsigned a = 0; a < 62 && got < n; a++) {
			uint64_t ha = fnv_step(hp, (unsigned char)ALNUM[a]);
			for (unsigned b = 0; b < 62 && got < n; b++) {
				uint64_t hb = fnv_step(ha, (unsigned char)ALNUM[b]);
				for (unsigned c = 0; c < 62 && got < n; c++) {
					uint64_t hc = fnv_step(hb, (unsigned char)ALNUM[c]);
					for (unsigned d = 0; d < 62; d++) {
						uint64_t h = fnv_step(hc, (unsigned char)ALNUM[d]);
						if (hash_mix(h) & mask)
							continue;
						k[8] = ALNUM[a];
						k[9] = ALNUM[b];
						k[10] = ALNUM[c];
						k[11] = ALNUM[d];
						memcpy(v[got++], k, NAME_LEN);
						if (got == n)
							break;
					}
				}
			}
		}
	}
	return v;
}

static uint64_t rng_state = UINT64_C(0x9e3779b97f4a7c15);

static uint64_t rng(void)
{
	rng_state += UINT64_C(0x9e3779b97f4a7c15);
	return hash_mix(rng_state);
}

static name_t *random_names(size_t n)
{
	name_t *v = malloc(n * sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		v[i][0] = 'r';
		for (size_t j = 1; j < NAME_LEN; j++)
			v[i][j] = ALNUM[rng() % 62];
	}
	return v;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[n / 2];
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One table filled with one set of names, under one hash. */
struct table {
	name_t *names;
	size_t n;
	const struct hash_key *hk; /* NULL: the old hash (map only) */
	struct map map;
	struct router *router; /* set: measure router_match() instead */
	struct route_matches out;
	double insert_ms;
};

static void fill(struct table *t, name_t *names, size_t n, const struct hash_key *hk, bool router)
{
	*t = (struct table){.names = names, .n = n, .hk = hk};
	double t0 = now_s();
	if (router) {
		t->router = router_new(hk);
		if (!t->router)
			exit(1);
	}
	char topic[6 + NAME_LEN];
	memcpy(topic, "flood/", 6);
	for (size_t i = 0; i < n; i++) {
		enum tern_err e;
		if (router) {
			memcpy(topic + 6, names[i], NAME_LEN);
			struct route rt = {.session = i + 1, .qos = 0};
			struct tern_bytes f = {(const uint8_t *)topic, sizeof(topic)};
			e = router_add(t->router, f, (struct tern_bytes){NULL, 0}, &rt);
		} else if (hk) {
			e = map_put(&t->map, hk, names[i], NAME_LEN, names[i]);
		} else {
			e = map_put_hashed(&t->map, old_hash(names[i], NAME_LEN), names[i],
			                   NAME_LEN, names[i]);
		}
		if (e) {
			fprintf(stderr, "hashflood: out of memory\n");
			exit(1);
		}
	}
	t->insert_ms = (now_s() - t0) * 1e3;
}

/* Looks up (or matches) every name once; exits if one is not found. */
static void pass(struct table *t)
{
	char topic[6 + NAME_LEN];
	memcpy(topic, "flood/", 6);
	for (size_t i = 0; i < t->n; i++) {
		bool ok;
		if (t->router) {
			memcpy(topic + 6, t->names[i], NAME_LEN);
			ok = router_match(t->router, (const uint8_t *)topic, sizeof(topic),
			                  &t->out) == TERN_OK &&
			     t->out.n == 1;
		} else if (t->hk) {
			ok = map_get(&t->map, t->hk, t->names[i], NAME_LEN) == t->names[i];
		} else {
			ok = map_get_hashed(&t->map, old_hash(t->names[i], NAME_LEN), t->names[i],
			                    NAME_LEN) == t->names[i];
		}
		if (!ok) {
			fprintf(stderr, "hashflood: a lookup failed\n");
			exit(1);
		}
	}
}

/* ns per lookup over one round of at least 20 ms. */
static double round_ns(struct table *t)
{
	size_t passes = 0;
	double start = now_s(), el;
	do {
		pass(t);
		passes++;
		el = now_s() - start;
	} while (el < 0.02);
	return el * 1e9 / (double)(passes * t->n);
}

static void drop(struct table *t)
{
	map_free(&t->map);
	router_free(t->router);
	free(t->out.v);
}

/* Fills a crafted and a random table and measures them in alternating
 * rounds (so a load change on the machine hits both alike); prints one row. */
static void compare(const char *label, name_t *bad, name_t *good, size_t n,
                    const struct hash_key *hk, bool router)
{
	struct table tb, tg;
	fill(&tb, bad, n, hk, router);
	fill(&tg, good, n, hk, router);
	double sb[ROUNDS], sg[ROUNDS];
	for (int r = 0; r < ROUNDS; r++) {
		sb[r] = round_ns(&tb);
		sg[r] = round_ns(&tg);
	}
	double mb = median(sb, ROUNDS), mg = median(sg, ROUNDS);
	printf("%-34s %12.1f %12.1f %7.2fx %7.1f/%-6.1f\n", label, mb, mg, mb / mg, tb.insert_ms,
	       tg.insert_ms);
	drop(&tb);
	drop(&tg);
}

/* The low bits a table of n entries indexes by: capacity doubles from 8
 * while more than 3/4 full (util/map.c). */
static unsigned table_bits(size_t n)
{
	unsigned bits = 3;
	while (((size_t)1 << bits) * 3 < n * 4)
		bits++;
	return bits;
}

/* --names N M: prints N + M crafted names, one a line, that collide in a
 * table of N entries (for bench/hashflood/e2e.py: N to subscribe, M to
 * publish to). */
static int print_names(size_t n, size_t m)
{
	name_t *v = craft(n + m, table_bits(n));
	if (!v)
		return 1;
	for (size_t i = 0; i < n + m; i++)
		printf("%.*s\n", NAME_LEN, v[i]);
	free(v);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--names") == 0)
		return print_names(strtoul(argv[2], NULL, 10), strtoul(argv[3], NULL, 10));
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 20000;
	if (n < 16 || n > 1000000) {
		fprintf(stderr, "usage: hashflood [N]   (16 <= N <= 1000000, default 20000)\n"
		                "       hashflood --names N M\n");
		return 2;
	}
	unsigned bits = table_bits(n);
	double t0 = now_s();
	name_t *bad = craft(n, bits);
	name_t *good = random_names(n);
	if (!bad || !good)
		return 1;
	printf("hashflood: %zu crafted names (old hash 0 in the low %u bits, crafted in %.1f s)"
	       " vs %zu random names, %d-byte level names\n",
	       n, bits, now_s() - t0, n, NAME_LEN);

	struct hash_key hk;
	if (hash_key_random(&hk)) {
		fprintf(stderr, "hashflood: getrandom failed\n");
		return 1;
	}
	printf("%-34s %12s %12s %8s %14s\n", "table, hash", "crafted ns", "random ns", "ratio",
	       "insert ms c/r");
	compare("map, old FNV-1a (unkeyed)", bad, good, n, NULL, false);
	compare("map, SipHash-1-3 (keyed)", bad, good, n, &hk, false);
	compare("router_match, SipHash-1-3 (keyed)", bad, good, n, &hk, true);
	free(bad);
	free(good);
	return 0;
}
