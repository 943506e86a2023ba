/*
 * buf.h - a growable byte buffer.
 *
 * Used for connection input and output. A buffer owns its memory; an empty
 * buffer can be shrunk to nothing (buf_compact) so that idle connections
 * hold no buffers, as Redis does for idle clients.
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

/* Bytes held. */
static inline size_t buf_used(const struct buf *b)
{
	return b->len - b->off;
}

/* Makes room for at least n more bytes at data + len. TERN_E_NOMEM on
 * failure (the buffer is unchanged), TERN_E_LIMIT if the result would
 * exceed max bytes (0: no bound). */
TERN_MUST_CHECK enum tern_err buf_reserve(struct buf *b, size_t n, size_t max);

/* Appends n bytes. Errors as buf_reserve(). */
TERN_MUST_CHECK enum tern_err buf_append(struct buf *b, const void *p, size_t n, size_t max);

/* Drops n bytes from the front; resets offsets when it becomes empty. */
void buf_consume(struct buf *b, size_t n);

/* Frees the memory when the buffer is empty, or moves the content to the
 * front when it is not. */
void buf_compact(struct buf *b);

/* Frees the memory; the buffer is then empty and reusable. */
void buf_free(struct buf *b);

#endif
