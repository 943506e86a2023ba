/*
 * http_call.h - asking the workers (http_call.c): the HTTP thread's way to
 * the connections and sessions, which belong to their workers and are
 * touched by no other thread.
 *
 * A call carries a function, a copy of its arguments and one result slot
 * per worker. http_call_run() posts an INBOX_CALL item (worker.h) to each
 * worker asked, which runs the function on its own thread, between two
 * packets, with its state at hand, and writes into its own slot only; the
 * HTTP thread waits until every worker asked has answered, or gives up
 * after a timeout. A call is reference counted, so one whose waiter gave up
 * stays alive until the last worker ran it: nothing a worker touches is
 * ever freed under it.
 *
 *   struct http_call *c = http_call_new(b, fn, &args, sizeof(args));
 *   if (c && http_call_run(c, NULL, 0, 5000) == TERN_OK)
 *           ... read http_call_slot(c, i) for each worker i ...
 *   http_call_unref(c);
 */
#ifndef TERN_HTTP_HTTP_CALL_H
#define TERN_HTTP_HTTP_CALL_H

#include <stddef.h>
#include <stdint.h>

#include "tern/codec.h"
#include "tern/error.h"
#include "util/buf.h"

struct broker;
struct worker;
struct http_call;

/* One worker's answer: what its function wrote. */
struct http_slot {
	struct buf out;    /* bytes, as the function lays them out */
	uint64_t n;        /* a count of its own (items found, ...) */
	enum tern_err err; /* TERN_OK unless the function says otherwise */
};

/* Runs on worker w's thread: reads args (http_call_args()), writes *slot
 * (w's own). */
typedef void (*http_call_fn)(struct worker *w, const void *args, struct http_slot *slot);

/* A call of fn with a copy of args[0..len) for b's workers; NULL when out
 * of memory. The caller holds one reference. */
struct http_call *http_call_new(struct broker *b, http_call_fn fn, const void *args, size_t len);

/* Asks workers[0..n) (every worker when workers is NULL) and waits at most
 * timeout_ms for all of them. TERN_OK: every slot asked is filled;
 * TERN_E_TIMEOUT: a worker did not answer in time (the slots must not be
 * read); TERN_E_NOMEM: not all could be asked (the same). Once per call. */
TERN_MUST_CHECK enum tern_err http_call_run(struct http_call *c, const unsigned *workers, size_t n,
                                            unsigned timeout_ms);

/* Worker i's slot, after http_call_run() returned TERN_OK. */
struct http_slot *http_call_slot(struct http_call *c, unsigned i);

/* Drops the caller's reference (NULL is allowed). */
void http_call_unref(struct http_call *c);

/* The layout of one byte string (a client id, a prefix, a topic) in call
 * arguments and slots: [u16 big-endian length][bytes]. */

/* A fresh [u16][bytes] copy of v into *len bytes; NULL when v is longer
 * than 65535 bytes or out of memory. The caller frees it. */
uint8_t *http_pack_bytes(struct tern_bytes v, size_t *len);

/* Appends [u16][bytes] of v (at most 65535 bytes) to out. */
TERN_MUST_CHECK enum tern_err http_put_bytes(struct buf *out, struct tern_bytes v);

/* The byte string at p, pointing into it; its size is 2 + the length. */
struct tern_bytes http_get_bytes(const uint8_t *p);

#endif
