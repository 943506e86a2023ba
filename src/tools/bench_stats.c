/*
 * bench_stats.c - the measuring instruments of `tern bench`: latency
 * histograms and per-(subscriber, publisher) sequence tracking.
 *
 * The histogram is log-linear (the idea of HdrHistogram, cut down): a value
 * v >= 64 falls into bucket (e, s) where e is the position of its top bit
 * and s the next 6 bits below it, so every bucket is at most 1/64 of its
 * value wide. That covers nanoseconds to centuries in 3,776 counters with a
 * relative error under 1.6 %, costs a count-leading-zeros and an increment
 * per sample, and merges across threads by adding counters. Quantiles are
 * read back as the middle of their bucket (clamped to the exact min and
 * max, which are kept apart).
 *
 * Sequence tracking: MQTT keeps the messages of one publisher on one topic
 * in order, so a subscriber expects each publisher's sequence numbers to
 * rise by one. A jump forward leaves a gap (messages not seen, perhaps
 * lost); a number below the expected one is either a late arrival that
 * fills such a gap (reordered) or a duplicate. A 64-bit window of the last
 * numbers seen tells the two apart, as IPsec's anti-replay window does;
 * what falls below the window is counted as a duplicate. Loss itself is
 * decided at the end, from how many messages each publisher sent and how
 * many distinct ones each matching subscriber got.
 */
#include <string.h>

#include "bench.h"

static unsigned hist_index(uint64_t v)
{
	if (v < (1u << BENCH_HIST_SUB_BITS))
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= SUB_BITS */
	unsigned sub =
	        (unsigned)(v >> (e - BENCH_HIST_SUB_BITS)) & ((1u << BENCH_HIST_SUB_BITS) - 1);
	return ((e - BENCH_HIST_SUB_BITS + 1) << BENCH_HIST_SUB_BITS) + sub;
}

/* The middle of bucket i. */
static uint64_t hist_value(unsigned i)
{
	if (i < (1u << BENCH_HIST_SUB_BITS))
		return i;
	unsigned e = (i >> BENCH_HIST_SUB_BITS) + BENCH_HIST_SUB_BITS - 1;
	uint64_t sub = i & ((1u << BENCH_HIST_SUB_BITS) - 1);
	unsigned shift = e - BENCH_HIST_SUB_BITS;
	uint64_t lower = (((uint64_t)1 << BENCH_HIST_SUB_BITS) + sub) << shift;
	return lower + (((uint64_t)1 << shift) >> 1);
}

void bench_hist_add(struct bench_hist *h, uint64_t v)
{
	if (h->count == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->count++;
	h->sum += v;
	h->b[hist_index(v)]++;
}

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
	if (src->count == 0)
		return;
	if (dst->count == 0 || src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	dst->count += src->count;
	dst->sum += src->sum;
	for (size_t i = 0; i < BENCH_HIST_BUCKETS; i++)
		dst->b[i] += src->b[i];
}

uint64_t bench_hist_quantile(const struct bench_hist *h, double q)
{
	if (h->count == 0)
		return 0;
	if (q <= 0)
		return h->min;
	if (q >= 1)
		return h->max;
	/* The smallest value with at least ceil(q * count) samples at or
	 * below it. */
	uint64_t rank = (uint64_t)(q * (double)h->count);
	if ((double)rank < q * (double)h->count)
		rank++;
	if (rank == 0)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			uint64_t v = hist_value(i);
			if (v < h->min)
				v = h->min;
			if (v > h->max)
				v = h->max;
			return v;
		}
	}
	return h->max;
}

void bench_pair_add(struct bench_pair *p, uint32_t seq)
{
	if (!p->seen) {
		/* Count from 0: what came before the first one seen was
		 * missed (a subscriber that joined late sees a gap). */
		p->seen = true;
		p->next = 0;
		p->window = 0;
	}
	if (seq >= p->next) {
		uint32_t shift = seq - p->next + 1;
		p->window = shift >= 64 ? 0 : p->window << shift;
		p->window |= 1; /* bit 0 is seq, the newest */
		p->next = seq + 1;
		p->unique++;
		return;
	}
	uint32_t back = p->next - 1 - seq; /* bit of seq in the window */
	if (back >= 64) {
		p->dup++;
		return;
	}
	uint64_t bit = (uint64_t)1 << back;
	if (p->window & bit) {
		p->dup++;
	} else {
		p->window |= bit;
		p->reordered++;
		p->unique++;
	}
}
