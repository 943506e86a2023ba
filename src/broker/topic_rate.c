/*
 * topic_rate.c - the heaviest published topics of one worker (topic_rate.h).
 *
 * An open-addressed table of TOPIC_SLOTS entries, each a topic's hash,
 * its first TOPIC_RATE_KEEP bytes and a count of its sampled publishes.
 * A sampled topic is looked for in the TOPIC_PROBE slots from its hash;
 * found, its count grows; else it takes a free slot there, or the slot
 * of least count there, starting from that count + 1 (Space-Saving, within
 * the probe window: a heavy topic cannot be kept out for long by light
 * ones).
 *
 * Rates: every TOPIC_HALF_MS the counts are halved (those at 0 are free),
 * so a count weighs recent publishes most. The time they stand for decays
 * the same way (window_ms: at each halving, (window + period) / 2), so for
 * a topic published at a steady rate r, count = r * (window + time since
 * the halving) from the first sample on, and the estimate is their
 * quotient, scaled by TOPIC_RATE_SAMPLE for the publishes not sampled.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/topic_rate.h"
#include "util/hash.h"

#define TOPIC_SLOTS   128u /* a power of two */
#define TOPIC_PROBE   8u
#define TOPIC_HALF_MS 10000u

struct topic_slot {
	uint64_t hash;
	uint32_t count; /* 0: free */
	uint16_t len;   /* bytes kept */
	bool cut;
	uint8_t topic[TOPIC_RATE_KEEP];
};

struct topic_rates {
	struct hash_key key;
	uint64_t rng;       /* xorshift64 state, for the sampling */
	uint64_t started;   /* mono ms of the first sample; 0: none yet */
	uint64_t halved_at; /* mono ms of the last halving */
	/* The time the counts stand for, decayed as they are: at a halving,
	 * (what it was + the period) / 2. */
	double window_ms;
	struct topic_slot slot[TOPIC_SLOTS];
};

struct topic_rates *topic_rates_new(const struct hash_key *hk)
{
	struct topic_rates *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->key = *hk;
	/* Any non-zero seed; a different one per table. */
	t->rng = hash_bytes(hk, &t, sizeof(t)) | 1;
	return t;
}

void topic_rates_free(struct topic_rates *t)
{
	free(t);
}

static void halve(struct topic_rates *t, uint64_t now)
{
	/* Periods missed (no publish for a while) are halvings too. */
	while (now - t->halved_at >= TOPIC_HALF_MS) {
		for (size_t i = 0; i < TOPIC_SLOTS; i++)
			t->slot[i].count /= 2;
		t->halved_at += TOPIC_HALF_MS;
		t->window_ms = (t->window_ms + TOPIC_HALF_MS) / 2;
		if (now - t->halved_at >= 32u * TOPIC_HALF_MS) {
			/* Long idle: everything has faded to 0 anyway. */
			memset(t->slot, 0, sizeof(t->slot));
			t->halved_at = now;
			t->window_ms = 0;
		}
	}
}

void topic_rate_note(struct topic_rates *t, struct tern_bytes topic, uint64_t now)
{
	uint64_t x = t->rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	t->rng = x;
	if (x & (TOPIC_RATE_SAMPLE - 1))
		return;
	if (!t->started)
		t->started = t->halved_at = now;
	halve(t, now);
	uint64_t h = hash_bytes(&t->key, topic.data, topic.len);
	size_t keep = topic.len < TOPIC_RATE_KEEP ? topic.len : TOPIC_RATE_KEEP;
	struct topic_slot *lightest = NULL;
	for (size_t k = 0; k < TOPIC_PROBE; k++) {
		struct topic_slot *s = &t->slot[(h + k) & (TOPIC_SLOTS - 1)];
		if (s->count && s->hash == h && s->len == keep &&
		    memcmp(s->topic, topic.data, keep) == 0) {
			if (s->count < UINT32_MAX)
				s->count++;
			return;
		}
		if (!lightest || s->count < lightest->count)
			lightest = s;
	}
	uint32_t from = lightest->count;
	lightest->hash = h;
	lightest->len = (uint16_t)keep;
	lightest->cut = keep < topic.len;
	memcpy(lightest->topic, topic.data, keep);
	lightest->count = from + 1;
}

static int heavier(const void *a, const void *b)
{
	const struct topic_rate_view *x = a, *y = b;
	return (x->per_second < y->per_second) - (x->per_second > y->per_second);
}

size_t topic_rates_read(struct topic_rates *t, uint64_t now, struct topic_rate_view *out,
                        size_t max)
{
	if (!t->started || max == 0)
		return 0;
	halve(t, now);
	double span = t->window_ms + (double)(now - t->halved_at);
	if (span < 1000)
		span = 1000; /* no rate from under a second of samples */
	struct topic_rate_view all[TOPIC_SLOTS];
	size_t n = 0;
	for (size_t i = 0; i < TOPIC_SLOTS; i++) {
		const struct topic_slot *s = &t->slot[i];
		if (!s->count)
			continue;
		all[n].topic = (struct tern_bytes){(uint8_t *)s->topic, s->len};
		all[n].cut = s->cut;
		all[n].per_second = (double)s->count * TOPIC_RATE_SAMPLE * 1000.0 / span;
		n++;
	}
	qsort(all, n, sizeof(all[0]), heavier);
	if (n > max)
		n = max;
	memcpy(out, all, n * sizeof(*out));
	return n;
}
