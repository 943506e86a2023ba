/*
 * mpsc.h - an intrusive, lock-free multi-producer single-consumer queue.
 *
 * This is each worker's inbox: any thread pushes, only the owning worker
 * pops. It is Dmitry Vyukov's non-intrusive-stub MPSC algorithm: push is
 * one atomic exchange and never waits; pop may briefly see an item whose
 * producer has not yet linked it and then reports "empty for now" (the
 * producer's eventfd write wakes the consumer again, so nothing is lost).
 *
 * Items embed a struct mpsc_node; the queue never allocates.
 */
#ifndef TERN_UTIL_MPSC_H
#define TERN_UTIL_MPSC_H

#include <stdatomic.h>
#include <stddef.h>

struct mpsc_node {
	_Atomic(struct mpsc_node *) next;
};

struct mpsc {
	_Atomic(struct mpsc_node *) head; /* producers push here */
	struct mpsc_node *tail;           /* consumer pops here */
	struct mpsc_node stub;
};

/* Makes q empty (its stub is the only node). Not thread-safe: call it
 * before any producer can see q. */
static inline void mpsc_init(struct mpsc *q)
{
	atomic_init(&q->stub.next, NULL);
	atomic_init(&q->head, &q->stub);
	q->tail = &q->stub;
}

/* Any thread: appends n. */
static inline void mpsc_push(struct mpsc *q, struct mpsc_node *n)
{
	atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
	struct mpsc_node *prev = atomic_exchange_explicit(&q->head, n, memory_order_acq_rel);
	atomic_store_explicit(&prev->next, n, memory_order_release);
}

/* Consumer only: removes and returns the oldest node, or NULL when the queue
 * is empty (or a push is half done; it becomes visible shortly). */
static inline struct mpsc_node *mpsc_pop(struct mpsc *q)
{
	struct mpsc_node *tail = q->tail;
	struct mpsc_node *next = atomic_load_explicit(&tail->next, memory_order_acquire);
	if (tail == &q->stub) {
		if (!next)
			return NULL;
		q->tail = next;
		tail = next;
		next = atomic_load_explicit(&next->next, memory_order_acquire);
	}
	if (next) {
		q->tail = next;
		return tail;
	}
	if (tail != atomic_load_explicit(&q->head, memory_order_acquire))
		return NULL;
	mpsc_push(q, &q->stub);
	next = atomic_load_explicit(&tail->next, memory_order_acquire);
	if (next) {
		q->tail = next;
		return tail;
	}
	return NULL;
}

#endif
