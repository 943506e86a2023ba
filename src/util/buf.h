/*
 * buf.h - a growable byte buffer.
 *
 * Used for connection input and output. A buffer owns its memory; an empty
 * buffer can be shrunk to nothing (tern_buf_release) so that idle connections
 * hold no buffers, as Redis does for idle clients.
 */
#ifndef TERN_UTIL_BUF_H
#define TERN_UTIL_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "tern/error.h"

struct tern_buf {
	uint8_t *data;
	size_t off; /* first unconsumed byte */
	size_t len; /* end of valid bytes; data[off..len) is the content */
	size_t cap;
};

/* Bytes held. */
static inline size_t tern_buf_used(const struct tern_buf *b)
{
	return b->len - b->off;
}

/* Makes room for at least n more bytes at data + len. TERN_E_NOMEM on
 * failure (the buffer is unchanged), TERN_E_LIMIT if the result would
 * exceed max bytes (0: no bound). */
enum tern_err tern_buf_reserve(struct tern_buf *b, size_t n, size_t max);

/* Appends n bytes. Errors as tern_buf_reserve(). */
enum tern_err tern_buf_append(struct tern_buf *b, const void *p, size_t n, size_t max);

/* Drops n bytes from the front; resets offsets when it becomes empty. */
void tern_buf_consume(struct tern_buf *b, size_t n);

/* Frees the memory when the buffer is empty, or moves the content to the
 * front when it is not. */
void tern_buf_compact(struct tern_buf *b);

/* Frees the memory; the buffer is then empty and reusable. */
void tern_buf_free(struct tern_buf *b);

#endif
