/*
 * buf.h - a growable byte buffer, and bins of spare buffer memory.
 *
 * Used for connection input and output. A buffer owns its memory; an empty
 * buffer gives it back (buf_release) so that idle connections hold no
 * buffers, as Redis does for idle clients.
 *
 * Giving memory back to malloc on every empty buffer would cost an
 * allocation per message on a busy connection, whose output buffer empties
 * on every flush. So a thread keeps bins of spare blocks (h2o's recycle
 * bins): a few size classes, each a bounded stack of blocks of exactly that
 * size. buf_reserve_in() takes a block of the smallest class that fits from
 * the bins, buf_release() puts an empty buffer's block back in its bin; only
 * a bin that is empty (or full, when giving back) reaches malloc / free. A
 * bin is used by one thread at a time; the memory of its blocks is plain
 * malloc memory, so a buffer may be released into another thread's bins.
 */
#ifndef TERN_UTIL_BUF_H
#define TERN_UTIL_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "tern/error.h"

struct buf {
	uint8_t *data;
	size_t off; /* first unconsumed byte */
	size_t len; /* end of valid bytes; data[off..len) is the content */
	size_t cap;
};

/* The size classes of the bins: BUF_BIN_MIN << (2 * i) bytes, i.e. 1, 4,
 * 16 and 64 KiB. Larger buffers come from malloc and go back to it. */
#define BUF_BINS    4
#define BUF_BIN_MIN 1024u

struct buf_bins {
	uint8_t **v[BUF_BINS]; /* stacks of spare blocks */
	uint32_t n[BUF_BINS];  /* blocks in each */
	uint32_t max[BUF_BINS];
};

/* Bytes held. */
static inline size_t buf_used(const struct buf *b)
{
	return b->len - b->off;
}

/* Makes room for at least n more bytes at data + len. TERN_E_NOMEM on
 * failure (the buffer is unchanged), TERN_E_LIMIT if the result would
 * exceed max bytes (0: no bound). */
TERN_MUST_CHECK enum tern_err buf_reserve(struct buf *b, size_t n, size_t max);

/* buf_reserve(), with the memory of a new or grown buffer taken from bins
 * (NULL: from malloc) when a size class fits, and the block it outgrew put
 * back there. */
TERN_MUST_CHECK enum tern_err buf_reserve_in(struct buf *b, size_t n, size_t max,
                                             struct buf_bins *bins);

/* Appends n bytes. Errors as buf_reserve(). */
TERN_MUST_CHECK enum tern_err buf_append(struct buf *b, const void *p, size_t n, size_t max);

/* Drops n bytes from the front; resets offsets when it becomes empty. */
void buf_consume(struct buf *b, size_t n);

/* Gives the memory back (to bins when not NULL and its block fits a class,
 * else to free()) when the buffer is empty, or moves the content to the
 * front when it is not. */
void buf_compact(struct buf *b, struct buf_bins *bins);

/* Gives the memory back when the buffer is empty, as buf_compact(); leaves
 * a buffer with content alone. */
void buf_release(struct buf *b, struct buf_bins *bins);

/* Frees the memory whatever it holds (to bins as buf_release()); the
 * buffer is then empty and reusable. */
void buf_free_in(struct buf *b, struct buf_bins *bins);

/* Frees the memory; the buffer is then empty and reusable. */
void buf_free(struct buf *b);

/* Sets up empty bins that keep at most max_bytes of spare memory per size
 * class (at least one block each). TERN_E_NOMEM on failure (bins are then
 * empty and still safe to use and to free). */
TERN_MUST_CHECK enum tern_err buf_bins_init(struct buf_bins *bins, size_t max_bytes);

/* Frees every spare block; the bins then keep nothing until refilled. */
void buf_bins_drain(struct buf_bins *bins);

/* buf_bins_drain(), and frees the bins' own arrays. */
void buf_bins_free(struct buf_bins *bins);

#endif
