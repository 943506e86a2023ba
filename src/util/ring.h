/*
 * ring.h - a growable ring buffer (FIFO) of fixed-size elements.
 *
 * The queue every part of the broker keeps in one shape or another: a
 * session's queued deliveries, answers held for a store commit, payloads a
 * connection writes by reference. Elements live in one array whose
 * capacity is a power of two (so an index wraps with a mask), from head on,
 * n of them; pushing into a full ring doubles the array and lays the
 * elements out from index 0 again, in order. Elements are moved with
 * memcpy, so they must not point into themselves. The element size is
 * given on every call (RING_AT() and friends take the type instead); a
 * ring is used by one thread.
 */
#ifndef TERN_UTIL_RING_H
#define TERN_UTIL_RING_H

#include <stddef.h>
#include <stdint.h>

#include "tern/error.h"

struct ring {
	void *v;
	uint32_t head; /* index of the first element */
	uint32_t n;    /* elements held */
	uint32_t cap;  /* 0, or a power of two */
};

/* The i-th element from the front (i < r->n). */
static inline void *ring_at(const struct ring *r, size_t elem, uint32_t i)
{
	return (char *)r->v + (size_t)((r->head + i) & (r->cap - 1)) * elem;
}

/* Makes room for at least want more elements (doubling, first 8).
 * TERN_E_NOMEM when that fails or would pass 2^31 elements; the ring is
 * then unchanged. */
TERN_MUST_CHECK enum tern_err ring_reserve(struct ring *r, size_t elem, uint32_t want);

/* A slot at the back for one more element, to be filled by the caller;
 * NULL when the ring cannot grow (nothing is added then). */
void *ring_push(struct ring *r, size_t elem);

/* Drops the front element (r->n > 0); the caller has taken what it owns. */
static inline void ring_pop(struct ring *r)
{
	r->head = (r->head + 1) & (r->cap - 1);
	r->n--;
}

/* Frees the array; the ring is then empty and reusable. The caller has
 * released what the elements own. */
void ring_free(struct ring *r);

#define RING_AT(r, type, i) ((type *)ring_at((r), sizeof(type), (i)))
#define RING_FRONT(r, type) RING_AT(r, type, 0)
#define RING_PUSH(r, type)  ((type *)ring_push((r), sizeof(type)))

#endif
