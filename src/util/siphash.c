/*
 * siphash.c - SipHash-c-d, written from the definition in the SipHash paper
 * (section 2); see siphash.h for why tables use it.
 *
 * State: four 64-bit words initialised from the key and four constants (the
 * ASCII of "somepseudorandomlygeneratedbytes"). The message is cut into
 * 8-byte little-endian words m; each is XORed into v3, followed by c SipRounds,
 * then XORed into v0. The last word holds the 0-7 trailing bytes and, in its
 * top byte, the message length mod 256. Finalization XORs 0xff into v2, runs
 * d SipRounds and returns v0 ^ v1 ^ v2 ^ v3.
 *
 * One static inline core takes c and d as arguments; each public variant
 * calls it with constants, so the compiler unrolls the rounds.
 */
#include "util/siphash.h"

#include <errno.h>
#include <sys/random.h>

static inline uint64_t rotl(uint64_t x, unsigned b)
{
	return (x << b) | (x >> (64 - b));
}

/* Little-endian load of 8 bytes, whatever the host's byte order. */
static inline uint64_t load64(const unsigned char *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
	       (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
	       (uint64_t)p[7] << 56;
}

struct sip {
	uint64_t v0, v1, v2, v3;
};

static inline void sipround(struct sip *s)
{
	s->v0 += s->v1;
	s->v1 = rotl(s->v1, 13);
	s->v1 ^= s->v0;
	s->v0 = rotl(s->v0, 32);
	s->v2 += s->v3;
	s->v3 = rotl(s->v3, 16);
	s->v3 ^= s->v2;
	s->v0 += s->v3;
	s->v3 = rotl(s->v3, 21);
	s->v3 ^= s->v0;
	s->v2 += s->v1;
	s->v1 = rotl(s->v1, 17);
	s->v1 ^= s->v2;
	s->v2 = rotl(s->v2, 32);
}

static inline void compress(struct sip *s, uint64_t m, unsigned c)
{
	s->v3 ^= m;
	for (unsigned i = 0; i < c; i++)
		sipround(s);
	s->v0 ^= m;
}

static inline uint64_t siphash(const struct hash_key *k, const void *p, size_t len, unsigned c,
                               unsigned d)
{
	struct sip s = {
	        k->k0 ^ UINT64_C(0x736f6d6570736575),
	        k->k1 ^ UINT64_C(0x646f72616e646f6d),
	        k->k0 ^ UINT64_C(0x6c7967656e657261),
	        k->k1 ^ UINT64_C(0x7465646279746573),
	};
	const unsigned char *in = p;
	size_t whole = len & ~(size_t)7;
	for (size_t i = 0; i < whole; i += 8)
		compress(&s, load64(in + i), c);
	uint64_t last = (uint64_t)(len & 0xff) << 56;
	for (size_t i = 0; i < (len & 7); i++)
		last |= (uint64_t)in[whole + i] << (8 * i);
	compress(&s, last, c);
	s.v2 ^= 0xff;
	for (unsigned i = 0; i < d; i++)
		sipround(&s);
	return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

uint64_t siphash24(const struct hash_key *k, const void *p, size_t len)
{
	return siphash(k, p, len, 2, 4);
}

uint64_t siphash13(const struct hash_key *k, const void *p, size_t len)
{
	return siphash(k, p, len, 1, 3);
}

enum tern_err hash_key_random(struct hash_key *k)
{
	unsigned char b[16];
	size_t got = 0;
	/* getrandom() blocks only until the kernel's pool is first seeded
	 * (early boot); a signal may cut a read short, so loop. */
	while (got < sizeof(b)) {
		ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return TERN_E_SYS;
		}
		got += (size_t)n;
	}
	k->k0 = load64(b);
	k->k1 = load64(b + 8);
	return TERN_OK;
}
