/*
 * http_call.c - asking the workers from the HTTP thread (http_call.h).
 *
 * The waiter and the workers meet under the call's mutex: each worker
 * runs the function into its own slot (no lock: nobody else writes it,
 * and the waiter reads slots only once `pending` is 0), then takes the
 * mutex to count itself done and signal, and drops its reference. The
 * call is freed by whoever drops the last reference: the waiter after a
 * complete answer, a late worker after a waiter that gave up.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/broker.h"
#include "broker/worker.h"
#include "http/http_call.h"

struct http_call {
	struct broker *b;
	http_call_fn fn;
	atomic_uint refs;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	unsigned pending; /* workers asked and not done, under mu */
	void *args;       /* the copy; owned */
	unsigned n_slots;
	struct http_slot slots[]; /* one per worker */
};

struct http_call *http_call_new(struct broker *b, http_call_fn fn, const void *args, size_t len)
{
	struct http_call *c =
	        calloc(1, sizeof(*c) + (size_t)b->n_workers * sizeof(struct http_slot));
	if (!c)
		return NULL;
	c->args = malloc(len ? len : 1);
	if (!c->args) {
		free(c);
		return NULL;
	}
	if (len)
		memcpy(c->args, args, len);
	c->b = b;
	c->fn = fn;
	c->n_slots = b->n_workers;
	atomic_init(&c->refs, 1);
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	return c;
}

void http_call_unref(struct http_call *c)
{
	if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	for (unsigned i = 0; i < c->n_slots; i++)
		buf_free(&c->slots[i].out);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->mu);
	free(c->args);
	free(c);
}

/* On the worker: the INBOX_CALL item's function. */
static void on_worker(struct worker *w, void *arg)
{
	struct http_call *c = arg;
	c->fn(w, c->args, &c->slots[w->id]);
	pthread_mutex_lock(&c->mu);
	if (--c->pending == 0)
		pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->mu);
	http_call_unref(c);
}

enum tern_err http_call_run(struct http_call *c, const unsigned *workers, size_t n,
                            unsigned timeout_ms)
{
	struct broker *b = c->b;
	size_t count = workers ? n : b->n_workers;
	enum tern_err err = TERN_OK;
	pthread_mutex_lock(&c->mu);
	c->pending = 0;
	for (size_t k = 0; k < count; k++) {
		unsigned i = workers ? workers[k] : (unsigned)k;
		struct inbox_item *it = calloc(1, sizeof(*it));
		if (!it) {
			err = TERN_E_NOMEM;
			break;
		}
		it->kind = INBOX_CALL;
		it->u.call.fn = on_worker;
		it->u.call.arg = c;
		atomic_fetch_add(&c->refs, 1);
		c->pending++;
		worker_post(b->workers[i], it);
	}
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (c->pending && pthread_cond_timedwait(&c->cond, &c->mu, &until) == 0)
		;
	if (!err && c->pending)
		err = TERN_E_TIMEOUT;
	pthread_mutex_unlock(&c->mu);
	return err;
}

struct http_slot *http_call_slot(struct http_call *c, unsigned i)
{
	return &c->slots[i];
}

uint8_t *http_pack_bytes(struct tern_bytes v, size_t *len)
{
	if (v.len > UINT16_MAX)
		return NULL;
	uint8_t *p = malloc(2 + v.len);
	if (!p)
		return NULL;
	p[0] = (uint8_t)(v.len >> 8);
	p[1] = (uint8_t)v.len;
	if (v.len)
		memcpy(p + 2, v.data, v.len);
	*len = 2 + v.len;
	return p;
}

enum tern_err http_put_bytes(struct buf *out, struct tern_bytes v)
{
	if (v.len > UINT16_MAX)
		return TERN_E_TOO_LARGE;
	uint8_t h[2] = {(uint8_t)(v.len >> 8), (uint8_t)v.len};
	enum tern_err err = buf_append(out, h, 2, 0);
	return err ? err : buf_append(out, v.data, v.len, 0);
}

struct tern_bytes http_get_bytes(const uint8_t *p)
{
	return (struct tern_bytes){(uint8_t *)p + 2, (size_t)p[0] << 8 | p[1]};
}
