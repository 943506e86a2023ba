/*
 * flow.c - flow control between publishers and slow subscribers: the
 * subscriber's side, its flow cell; the design is in flow.h, the
 * publisher's side (pausing connections) in flow_pause.c.
 *
 * The session's home worker owns the cell's state and takes deliveries off
 * its count (flow_sub, flow_set_state); any worker adds to the count when
 * it routes a QoS 1/2 delivery there (flow_add). A cell knows no
 * connection: when it drains it wakes the workers whose publishers wait
 * on it, and they resume them (flow_resume).
 *
 * A wake-up must not be lost between "the publisher decides to wait" and
 * "the subscriber drains": the publisher sets its bit in the waiters mask
 * and then reads the count; the home worker writes the count and then reads
 * the mask (all sequentially consistent), so at least one of them sees the
 * other. The timer tick rechecks every paused publisher anyway.
 */
#include "broker/flow.h"

#include <stdlib.h>

#include "broker/broker.h"
#include "broker/worker.h"

struct flow_cell *flow_cell_new(int64_t queued, uint32_t high)
{
	struct flow_cell *f = malloc(sizeof(*f));
	if (!f)
		return NULL;
	atomic_init(&f->refs, 1);
	atomic_init(&f->state, 0);
	atomic_init(&f->pending, queued);
	atomic_init(&f->waiters, 0);
	atomic_init(&f->stored, false);
	f->over_at = 0;
	f->drained_at = 0;
	/* No mark: a count never reaches it. */
	f->high = high ? (int64_t)high : INT64_MAX;
	f->low = high ? (int64_t)high / 2 : INT64_MAX;
	return f;
}

void flow_cell_ref(struct flow_cell *f)
{
	if (f)
		atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

void flow_cell_unref(struct flow_cell *f)
{
	if (f && atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
		free(f);
}

/* Wakes every worker in f's waiters mask: itself through a flag handled
 * before it sleeps (we may be deep inside a subscriber's packet handler),
 * the others through their inboxes. */
static void wake(struct worker *w, struct flow_cell *f)
{
	uint64_t mask = atomic_exchange(&f->waiters, 0);
	struct broker *b = w->broker;
	if (!mask || atomic_load_explicit(&b->stop, memory_order_relaxed))
		return;
	for (unsigned i = 0; i < b->n_workers; i++) {
		if (!(mask & (UINT64_C(1) << (i % 64))))
			continue;
		if (i == w->id) {
			w->flow_recheck = true;
			continue;
		}
		/* Without memory the other worker finds out on its tick. */
		struct inbox_item *it = calloc(1, sizeof(*it));
		if (!it)
			continue;
		it->kind = INBOX_FLOW_WAKE;
		worker_outbox(w, i, it);
	}
}

void flow_sub(struct worker *w, struct flow_cell *f, int64_t n)
{
	int64_t left = atomic_fetch_sub(&f->pending, n) - n;
	if (left > f->low)
		return;
	if (atomic_load_explicit(&f->state, memory_order_relaxed) & FLOW_STALLED) {
		/* The subscriber reads again: back to slowing its publishers
		 * (which needs no wake-up: they are not waiting). */
		atomic_fetch_and(&f->state, ~(uint32_t)FLOW_STALLED);
	}
	if (atomic_load(&f->waiters))
		wake(w, f);
}

void flow_set_state(struct worker *w, struct flow_cell *f, uint32_t set, uint32_t clear)
{
	uint32_t st = atomic_load_explicit(&f->state, memory_order_relaxed);
	atomic_store(&f->state, (st | set) & ~clear);
	/* A slow member releases publishers paused for its share group. */
	if (atomic_load(&f->waiters) && (flow_drained(f) || (set & FLOW_SLOW)))
		wake(w, f);
}
