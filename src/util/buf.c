/*
 * buf.c - growable byte buffer; see buf.h.
 *
 * Growth doubles the capacity, starting at 256 bytes, so appends cost
 * amortised O(1); content is moved to the front only when that frees enough
 * room to avoid a reallocation.
 */
#include "util/buf.h"

#include <stdlib.h>
#include <string.h>

enum tern_err buf_reserve(struct buf *b, size_t n, size_t max)
{
	if (b->cap - b->len >= n)
		return TERN_OK;
	size_t used = b->len - b->off;
	if (max && used + n > max)
		return TERN_E_LIMIT;
	if (b->off && b->cap - used >= n && b->off >= used) {
		memmove(b->data, b->data + b->off, used);
		b->off = 0;
		b->len = used;
		return TERN_OK;
	}
	size_t cap = b->cap ? b->cap : 256;
	while (cap - used < n) {
		if (cap > SIZE_MAX / 2)
			return TERN_E_NOMEM;
		cap *= 2;
	}
	uint8_t *d = malloc(cap);
	if (!d)
		return TERN_E_NOMEM;
	if (used)
		memcpy(d, b->data + b->off, used);
	free(b->data);
	b->data = d;
	b->off = 0;
	b->len = used;
	b->cap = cap;
	return TERN_OK;
}

enum tern_err buf_append(struct buf *b, const void *p, size_t n, size_t max)
{
	enum tern_err err = buf_reserve(b, n, max);
	if (err)
		return err;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return TERN_OK;
}

void buf_consume(struct buf *b, size_t n)
{
	b->off += n;
	if (b->off >= b->len)
		b->off = b->len = 0;
}

void buf_compact(struct buf *b)
{
	size_t used = b->len - b->off;
	if (used == 0) {
		buf_free(b);
		return;
	}
	if (b->off) {
		memmove(b->data, b->data + b->off, used);
		b->off = 0;
		b->len = used;
	}
}

void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->off = b->len = b->cap = 0;
}
