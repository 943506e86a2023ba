/*
 * buf.c - growable byte buffer and its bins; see buf.h.
 *
 * Growth doubles the capacity, starting at 256 bytes (or at the smallest
 * bin class, with bins), so appends cost amortised O(1); content is moved
 * to the front only when that frees enough room to avoid a reallocation.
 */
#include "util/buf.h"

#include <stdlib.h>
#include <string.h>

static size_t class_size(unsigned i)
{
	return (size_t)BUF_BIN_MIN << (2 * i);
}

/* The class whose blocks are exactly cap bytes, or -1. */
static int class_of(size_t cap)
{
	for (unsigned i = 0; i < BUF_BINS; i++)
		if (cap == class_size(i))
			return (int)i;
	return -1;
}

/* A block of at least want bytes: from the smallest class that fits (a
 * spare one, or a fresh one of that class's size), else from malloc with
 * doubling from `from`. Sets *cap. */
static uint8_t *block_get(struct buf_bins *bins, size_t want, size_t from, size_t *cap)
{
	if (bins) {
		for (unsigned i = 0; i < BUF_BINS; i++) {
			if (class_size(i) < want)
				continue;
			*cap = class_size(i);
			if (bins->n[i])
				return bins->v[i][--bins->n[i]];
			return malloc(*cap);
		}
		from = class_size(BUF_BINS - 1);
	}
	size_t c = from;
	while (c < want) {
		if (c > SIZE_MAX / 2)
			return NULL;
		c *= 2;
	}
	*cap = c;
	return malloc(c);
}

static void block_put(struct buf_bins *bins, uint8_t *data, size_t cap)
{
	if (!data)
		return;
	int i = bins ? class_of(cap) : -1;
	if (i >= 0 && bins->n[i] < bins->max[i]) {
		bins->v[i][bins->n[i]++] = data;
		return;
	}
	free(data);
}

enum tern_err buf_reserve_in(struct buf *b, size_t n, size_t max, struct buf_bins *bins)
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
	if (n > SIZE_MAX - used)
		return TERN_E_NOMEM;
	size_t cap = 0;
	uint8_t *d = block_get(bins, used + n, b->cap ? b->cap * 2 : 256, &cap);
	if (!d)
		return TERN_E_NOMEM;
	if (used)
		memcpy(d, b->data + b->off, used);
	block_put(bins, b->data, b->cap);
	b->data = d;
	b->off = 0;
	b->len = used;
	b->cap = cap;
	return TERN_OK;
}

enum tern_err buf_reserve(struct buf *b, size_t n, size_t max)
{
	return buf_reserve_in(b, n, max, NULL);
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

void buf_compact(struct buf *b, struct buf_bins *bins)
{
	size_t used = b->len - b->off;
	if (used == 0) {
		buf_free_in(b, bins);
		return;
	}
	if (b->off) {
		memmove(b->data, b->data + b->off, used);
		b->off = 0;
		b->len = used;
	}
}

void buf_release(struct buf *b, struct buf_bins *bins)
{
	if (b->len == b->off)
		buf_free_in(b, bins);
}

void buf_free_in(struct buf *b, struct buf_bins *bins)
{
	block_put(bins, b->data, b->cap);
	b->data = NULL;
	b->off = b->len = b->cap = 0;
}

void buf_free(struct buf *b)
{
	buf_free_in(b, NULL);
}

enum tern_err buf_bins_init(struct buf_bins *bins, size_t max_bytes)
{
	memset(bins, 0, sizeof(*bins));
	for (unsigned i = 0; i < BUF_BINS; i++) {
		size_t max = max_bytes / class_size(i);
		if (max == 0)
			max = 1;
		bins->v[i] = malloc(max * sizeof(*bins->v[i]));
		if (!bins->v[i]) {
			buf_bins_free(bins);
			return TERN_E_NOMEM;
		}
		bins->max[i] = (uint32_t)max;
	}
	return TERN_OK;
}

void buf_bins_drain(struct buf_bins *bins)
{
	for (unsigned i = 0; i < BUF_BINS; i++) {
		while (bins->n[i])
			free(bins->v[i][--bins->n[i]]);
	}
}

void buf_bins_free(struct buf_bins *bins)
{
	buf_bins_drain(bins);
	for (unsigned i = 0; i < BUF_BINS; i++) {
		free(bins->v[i]);
		bins->v[i] = NULL;
		bins->max[i] = 0;
	}
}
