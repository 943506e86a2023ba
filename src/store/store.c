/*
 * store.c - the storage thread and its group commit; see store.h.
 *
 * Workers push batches onto a lock-free MPSC queue. The storage thread
 * sleeps on a condition variable while the queue is empty; when woken it
 * takes every batch that has arrived, applies them in one transaction and
 * then runs their completions in submission order. While it commits, new
 * batches pile up and form the next group, so the group grows with load
 * and a lone batch is committed at once.
 */
#include "store/store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "store/batch.h"
#include "util/clock.h"

struct store {
	const struct store_ops *ops;
	struct store_backend *be;
	struct mpsc queue;
	pthread_mutex_t lock; /* only for sleeping and waking */
	pthread_cond_t cond;
	atomic_bool sleeping;
	atomic_bool stop;
	bool started;
	pthread_t thread;
	/* Statistics, written by the storage thread, read racily. */
	atomic_uint_fast64_t commits;
	atomic_uint_fast64_t batches;
	atomic_uint_fast64_t commit_us;
};

enum tern_err store_open(struct store **out, const struct store_config *cfg, char *err,
                         size_t errlen)
{
	struct store *s = calloc(1, sizeof(*s));
	if (!s)
		return TERN_E_NOMEM;
	s->ops = &store_sqlite_ops;
	mpsc_init(&s->queue);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	enum tern_err e = s->ops->open(&s->be, cfg, err, errlen);
	if (e) {
		pthread_cond_destroy(&s->cond);
		pthread_mutex_destroy(&s->lock);
		free(s);
		return e;
	}
	*out = s;
	return TERN_OK;
}

enum tern_err store_load(struct store *s, const struct store_loader *loader, uint64_t *max_id,
                         char *err, size_t errlen)
{
	return s->ops->load(s->be, loader, max_id, err, errlen);
}

/* Takes every queued batch, in order; returns how many (at most cap). */
static size_t take(struct store *s, struct store_batch **v, size_t cap)
{
	size_t n = 0;
	struct mpsc_node *node;
	while (n < cap && (node = mpsc_pop(&s->queue)))
		v[n++] = (struct store_batch *)node;
	return n;
}

static void commit(struct store *s, struct store_batch **v, size_t n)
{
	uint64_t t0 = mono_us();
	enum tern_err e = s->ops->apply(s->be, v, n);
	atomic_fetch_add(&s->commit_us, mono_us() - t0);
	atomic_fetch_add(&s->commits, 1);
	atomic_fetch_add(&s->batches, n);
	for (size_t i = 0; i < n; i++) {
		if (v[i]->done)
			v[i]->done(v[i]->done_arg, v[i]->ticket, e);
		store_batch_free(v[i]);
	}
}

#define GROUP_MAX 1024

static void *store_main(void *arg)
{
	struct store *s = arg;
	struct store_batch *v[GROUP_MAX];
	for (;;) {
		size_t n = take(s, v, GROUP_MAX);
		if (n) {
			commit(s, v, n);
			continue;
		}
		if (atomic_load(&s->stop))
			break;
		pthread_mutex_lock(&s->lock);
		atomic_store(&s->sleeping, true);
		atomic_thread_fence(memory_order_seq_cst);
		/* Re-check after announcing sleep: a submit that missed the
		 * flag has already pushed, and one that saw it will signal. */
		n = take(s, v, GROUP_MAX);
		if (n == 0 && !atomic_load(&s->stop))
			pthread_cond_wait(&s->cond, &s->lock);
		atomic_store(&s->sleeping, false);
		pthread_mutex_unlock(&s->lock);
		if (n)
			commit(s, v, n);
	}
	return NULL;
}

enum tern_err store_start(struct store *s)
{
	if (pthread_create(&s->thread, NULL, store_main, s))
		return TERN_E_SYS;
	s->started = true;
	return TERN_OK;
}

void store_submit_take(struct store *s, struct store_batch *b)
{
	mpsc_push(&s->queue, &b->node);
	/* Pairs with the fence in store_main: either it sees our push, or we
	 * see it sleeping. */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load(&s->sleeping)) {
		pthread_mutex_lock(&s->lock);
		pthread_cond_signal(&s->cond);
		pthread_mutex_unlock(&s->lock);
	}
}

void store_close(struct store *s)
{
	if (!s)
		return;
	if (s->started) {
		atomic_store(&s->stop, true);
		pthread_mutex_lock(&s->lock);
		pthread_cond_signal(&s->cond);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->thread, NULL);
	}
	/* Whatever arrived after the thread stopped is still applied. */
	struct store_batch *v[GROUP_MAX];
	size_t n;
	while ((n = take(s, v, GROUP_MAX)))
		commit(s, v, n);
	s->ops->close(s->be);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

void store_stats(struct store *s, uint64_t *commits, uint64_t *batches, double *mean_ms)
{
	uint64_t c = atomic_load(&s->commits);
	*commits = c;
	*batches = atomic_load(&s->batches);
	*mean_ms = c ? (double)atomic_load(&s->commit_us) / 1000.0 / (double)c : 0.0;
}
