/*
 * auth_pool.c - password checks on threads of their own; see auth_pool.h.
 *
 * One mutex-protected ring of requests, a condition variable, a few
 * threads. The ring is touched once per CONNECT with a user name, next to
 * a hash that costs a hundred microseconds or more, so a lock is cheap
 * here and keeps the code plain. Each request carries the inbox item its
 * verdict will travel in, allocated when it is queued, so answering can
 * never fail for want of memory.
 */
#include "broker/auth_pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "auth/passwd.h"
#include "broker/auth.h"
#include "broker/worker.h"
#include "tern/codec.h"
#include "util/ring.h"

struct auth_req {
	struct worker *w;
	struct auth_state *state; /* one reference */
	const struct passwd_db *db;
	struct inbox_item *item; /* carries the verdict; owned until posted */
	uint64_t conn_id;
	size_t ulen, pwlen;
	bool has_pw;
	uint8_t data[]; /* user, then password */
};

struct auth_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct ring queue; /* of struct auth_req *, reserved up to max at the start */
	unsigned max;      /* requests that may wait */
	bool stop;
	unsigned n_threads;
	pthread_t threads[AUTH_POOL_THREADS_MAX];
};

static void req_free(struct auth_req *r)
{
	/* The password copy must not linger in freed memory. */
	OPENSSL_cleanse(r->data, r->ulen + r->pwlen);
	free(r->item);
	auth_unref(r->state);
	free(r);
}

static void check(struct auth_req *r)
{
	const uint8_t *pw = r->has_pw ? r->data + r->ulen : NULL;
	enum tern_err e = passwd_check(r->db, r->data, r->ulen, pw, r->pwlen);
	struct inbox_item *it = r->item;
	r->item = NULL;
	it->kind = INBOX_AUTH_DONE;
	it->u.verdict.conn = r->conn_id;
	it->u.verdict.rc = e ? TERN_RC_BAD_USERNAME_OR_PASSWORD : TERN_RC_SUCCESS;
	struct worker *w = r->w;
	/* Drop the state before answering: a reload waits for nobody. */
	req_free(r);
	worker_post(w, it);
}

static void *pool_main(void *arg)
{
	struct auth_pool *p = arg;
	/* Below the workers: where a worker and a hash share a core, the
	 * worker's clients come first and the hash takes what is left. On
	 * Linux a thread has a nice value of its own. Failing that it runs at
	 * the workers' priority, which is still off their loops. */
	pid_t tid = (pid_t)syscall(SYS_gettid);
	int nice = getpriority(PRIO_PROCESS, (id_t)tid);
	(void)setpriority(PRIO_PROCESS, (id_t)tid, nice + AUTH_POOL_NICE);
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->queue.n && !p->stop)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->stop)
			break;
		struct auth_req *r = *RING_FRONT(&p->queue, struct auth_req *);
		ring_pop(&p->queue);
		pthread_mutex_unlock(&p->mu);
		check(r);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void stop_threads(struct auth_pool *p)
{
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->n_threads; i++)
		pthread_join(p->threads[i], NULL);
	p->n_threads = 0;
}

enum tern_err auth_pool_new(unsigned threads, unsigned cap, struct auth_pool **out)
{
	*out = NULL;
	if (threads < 1)
		threads = 1;
	if (threads > AUTH_POOL_THREADS_MAX)
		threads = AUTH_POOL_THREADS_MAX;
	struct auth_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return TERN_E_NOMEM;
	p->max = cap ? cap : 1;
	/* All of it now, so that queueing a request never allocates. */
	if (ring_reserve(&p->queue, sizeof(struct auth_req *), p->max)) {
		free(p);
		return TERN_E_NOMEM;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&p->threads[i], NULL, pool_main, p)) {
			auth_pool_free(p);
			return TERN_E_SYS;
		}
		p->n_threads++;
	}
	*out = p;
	return TERN_OK;
}

void auth_pool_free(struct auth_pool *p)
{
	if (!p)
		return;
	stop_threads(p);
	for (uint32_t i = 0; i < p->queue.n; i++)
		req_free(*RING_AT(&p->queue, struct auth_req *, i));
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	ring_free(&p->queue);
	free(p);
}

enum tern_err auth_pool_submit(struct auth_pool *p, struct worker *w, uint64_t conn_id,
                               struct auth_state *state, const struct passwd_db *db,
                               const uint8_t *user, size_t ulen, const uint8_t *pw, size_t pwlen)
{
	if (!pw)
		pwlen = 0;
	struct auth_req *r = malloc(sizeof(*r) + ulen + pwlen);
	struct inbox_item *it = calloc(1, sizeof(*it));
	if (!r || !it) {
		free(r);
		free(it);
		return TERN_E_NOMEM;
	}
	*r = (struct auth_req){.w = w,
	                       .state = state,
	                       .db = db,
	                       .item = it,
	                       .conn_id = conn_id,
	                       .ulen = ulen,
	                       .pwlen = pwlen,
	                       .has_pw = pw != NULL};
	if (ulen)
		memcpy(r->data, user, ulen);
	if (pwlen)
		memcpy(r->data + ulen, pw, pwlen);
	pthread_mutex_lock(&p->mu);
	/* The ring has room for max: the push does not allocate. */
	struct auth_req **slot =
	        p->queue.n < p->max ? RING_PUSH(&p->queue, struct auth_req *) : NULL;
	bool full = !slot;
	if (slot) {
		*slot = r;
		pthread_cond_signal(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	if (full) {
		/* The caller keeps its reference: take none away. */
		r->state = NULL;
		req_free(r);
		return TERN_E_LIMIT;
	}
	return TERN_OK;
}
