/*
 * ring.c - growable ring buffer; see ring.h.
 */
#include "util/ring.h"

#include <stdlib.h>
#include <string.h>

enum tern_err ring_reserve(struct ring *r, size_t elem, uint32_t want)
{
	if (r->cap - r->n >= want)
		return TERN_OK;
	uint32_t cap = r->cap ? r->cap : 8;
	while (cap - r->n < want) {
		if (cap >= (1u << 31))
			return TERN_E_NOMEM;
		cap *= 2;
	}
	if ((size_t)cap > SIZE_MAX / elem)
		return TERN_E_NOMEM;
	char *v = malloc((size_t)cap * elem);
	if (!v)
		return TERN_E_NOMEM;
	/* In order from index 0: the part from head to the end of the old
	 * array, then the part that wrapped to its start. */
	uint32_t first = r->n;
	if (r->cap && r->head + r->n > r->cap)
		first = r->cap - r->head;
	if (r->n) {
		memcpy(v, (char *)r->v + (size_t)r->head * elem, (size_t)first * elem);
		memcpy(v + (size_t)first * elem, r->v, (size_t)(r->n - first) * elem);
	}
	free(r->v);
	r->v = v;
	r->head = 0;
	r->cap = cap;
	return TERN_OK;
}

void *ring_push(struct ring *r, size_t elem)
{
	if (ring_reserve(r, elem, 1))
		return NULL;
	void *slot = ring_at(r, elem, r->n);
	r->n++;
	return slot;
}

void ring_free(struct ring *r)
{
	free(r->v);
	r->v = NULL;
	r->head = r->n = r->cap = 0;
}
