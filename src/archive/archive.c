/*
 * archive.c - an archive's queue and its thread (archive.h).
 *
 * Workers never wait for a database. A worker that routed a message an
 * archive wants makes an entry (a reference of the message, its key, who
 * sent it, when), gathers the entries of its loop iteration in a chain and
 * pushes the chain once, under a mutex held for a few pointer writes. The
 * archive's thread takes up to archive_batch N entries when N are there or
 * when the oldest has waited T ms, writes them in one transaction, and
 * frees them. Only that thread talks to the database, so a slow or dead
 * database slows nothing but the archive's own queue.
 *
 * The bound: an entry is admitted into the queue when it is made (counted
 * in `queued` and `queued_bytes` until the database has it, including
 * while it waits in a worker's chain), so archive_queue bounds everything
 * that waits. When it is full the new message is not archived (drop the
 * newest: what waits was accepted first and keeps its order), counted in
 * `dropped`, and logged once per episode: when the queue fills, and when it
 * has drained to half.
 *
 * Nothing acknowledged is lost: with durable storage, a QoS >= 1 entry is
 * written into the same store batch as its message (archive_entry_spill(),
 * from the broker's session module), so it is on disk before the PUBACK,
 * and the broker pushes it here only once that batch committed. After the
 * database committed an entry, this thread asks the store to forget it
 * (store_archive_del). A restart finds the entries the database may not
 * have and pushes them again with the same key: the database's unique key
 * makes the second write a no-op, so the archive is written at least once
 * and holds each message once. Without durable storage the queue lives in
 * memory only, and a crash loses what waits (docs/archive.md says so).
 *
 * A failed write or connection closes the database and retries the same
 * batch after a back-off that doubles from BACKOFF_MIN_MS to
 * BACKOFF_MAX_MS; the failure is logged once, and again when writing works.
 * At stop, the thread writes what is queued unless the database does not
 * answer within the grace period: spilled entries stay in the store for
 * the next start, the others are counted lost.
 */
#include "archive/archive.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "archive/record.h"
#include "archive/sink.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/msg.h"

#define BACKOFF_MIN_MS 200u
#define BACKOFF_MAX_MS 10000u

struct archive {
	char name[64];
	char url[1024];
	char where[320];
	char **filters;
	struct archive_filter *af; /* filters[i], prepared */
	size_t n_filters;
	uint8_t qos;
	uint32_t batch_n, batch_ms;
	uint64_t queue_n, queue_bytes;
	const struct archive_sink_ops *ops;
	const struct log *log;
	struct store *store;
	uint64_t boot;
	atomic_uint_fast64_t seq;

	/* The queue, and the thread's stop request. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct archive_chain q;
	bool stop;
	uint64_t stop_deadline; /* monotonic ms */
	bool started;
	pthread_t thread;

	/* The thread's (and archive_connect()'s, before it starts). */
	struct archive_db *db;
	struct archive_record *recs; /* batch_n of them */
	bool down;                   /* a failure was logged, no success since */

	/* Counters (archive_stats()). */
	atomic_uint_fast64_t queued, queued_bytes, archived, dropped, batches, batch_us_sum,
	        batch_us_last, failures;
	atomic_bool connected;
	atomic_bool full;                     /* in a queue-full episode */
	atomic_uint_fast64_t dropped_at_full; /* dropped when it began */
};

/* A boot id: random, so that keys of different runs never meet. */
static uint64_t new_boot(void)
{
	uint64_t v = 0;
	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		v = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 44);
	}
	return v;
}

enum tern_err archive_new(struct archive **out, const struct archive_spec *spec,
                          const struct log *log, char *err, size_t errlen)
{
	*out = NULL;
	char why[512];
	const struct archive_sink_ops *ops = archive_sink_find(spec->url, why, sizeof(why));
	if (!ops || ops->check(spec->url, why, sizeof(why))) {
		snprintf(err, errlen, "%s: archive_sink %s", spec->where, why);
		return TERN_E_CONFIG;
	}
	if (!archive_name_ok(spec->name)) {
		snprintf(err, errlen,
		         "%s: archive %s: a name is letters, digits and _ (not first), at most "
		         "63, as it names the table",
		         spec->where, spec->name);
		return TERN_E_CONFIG;
	}
	struct archive *a = calloc(1, sizeof(*a));
	if (!a)
		return TERN_E_NOMEM;
	snprintf(a->name, sizeof(a->name), "%s", spec->name);
	snprintf(a->url, sizeof(a->url), "%s", spec->url);
	snprintf(a->where, sizeof(a->where), "%s", spec->where);
	a->qos = spec->qos;
	a->batch_n = spec->batch_n ? spec->batch_n : 1;
	a->batch_ms = spec->batch_ms;
	a->queue_n = spec->queue_n;
	a->queue_bytes = spec->queue_bytes;
	a->ops = ops;
	a->log = log;
	a->boot = new_boot();
	atomic_init(&a->seq, 0);
	a->filters = calloc(spec->n_filters ? spec->n_filters : 1, sizeof(*a->filters));
	a->af = calloc(spec->n_filters ? spec->n_filters : 1, sizeof(*a->af));
	a->recs = calloc(a->batch_n, sizeof(*a->recs));
	pthread_condattr_t ca;
	bool sync_ok = pthread_condattr_init(&ca) == 0;
	if (sync_ok) {
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		sync_ok = pthread_cond_init(&a->cv, &ca) == 0;
		pthread_condattr_destroy(&ca);
	}
	if (sync_ok && pthread_mutex_init(&a->mu, NULL) != 0) {
		pthread_cond_destroy(&a->cv);
		sync_ok = false;
	}
	if (!sync_ok || !a->filters || !a->af || !a->recs) {
		if (sync_ok) {
			pthread_cond_destroy(&a->cv);
			pthread_mutex_destroy(&a->mu);
		}
		free(a->filters);
		free(a->af);
		free(a->recs);
		free(a);
		return TERN_E_NOMEM;
	}
	for (size_t i = 0; i < spec->n_filters; i++) {
		a->filters[i] = strdup(spec->filters[i]);
		a->n_filters = i + 1;
		if (!a->filters[i]) {
			archive_free(a);
			return TERN_E_NOMEM;
		}
		archive_filter_init(&a->af[i],
		                    (struct tern_bytes){(const uint8_t *)a->filters[i],
		                                        (uint32_t)strlen(a->filters[i])});
	}
	*out = a;
	return TERN_OK;
}

const char *archive_name(const struct archive *a)
{
	return a->name;
}

/* Opens the database: the thread's, or archive_connect()'s before it. */
static enum tern_err db_open(struct archive *a, char *why, size_t len)
{
	enum tern_err e = a->ops->open(&a->db, a->url, a->name, true, why, len);
	atomic_store(&a->connected, e == TERN_OK);
	return e;
}

enum tern_err archive_connect(struct archive *a, char *err, size_t errlen)
{
	char why[512];
	enum tern_err e = db_open(a, why, sizeof(why));
	if (e == TERN_E_CONFIG || e == TERN_E_NOMEM) {
		snprintf(err, errlen, "%s: archive %s: %s", a->where, a->name, why);
		return e;
	}
	if (e) {
		atomic_fetch_add(&a->failures, 1);
		a->down = true;
		log_write(a->log, LOG_TYPE_WARNING,
		          "Warning: archive %s: cannot connect (%s); messages wait in its queue "
		          "while ternd retries",
		          a->name, why);
	}
	return TERN_OK;
}

bool archive_wants(const struct archive *a, const struct msg *m)
{
	if (m->qos < a->qos)
		return false;
	for (size_t i = 0; i < a->n_filters; i++)
		if (archive_filter_matches(&a->af[i], m->topic))
			return true;
	return false;
}

static uint32_t entry_size(const struct msg *m, size_t cid_len, size_t user_len)
{
	size_t n = sizeof(struct archive_entry) + cid_len + user_len + m->topic.len +
	           m->payload.len + m->content_type.len + m->response_topic.len +
	           m->correlation_data.len + m->user_raw.len;
	return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

/* A drop: counted, and logged when it starts an episode. */
static void count_drop(struct archive *a, const char *why)
{
	uint64_t before = atomic_fetch_add(&a->dropped, 1);
	if (!atomic_exchange(&a->full, true)) {
		atomic_store(&a->dropped_at_full, before);
		log_write(a->log, LOG_TYPE_WARNING,
		          "Warning: archive %s: %s (%llu messages, %llu bytes waiting); new "
		          "messages are not archived until it drains",
		          a->name, why, (unsigned long long)atomic_load(&a->queued),
		          (unsigned long long)atomic_load(&a->queued_bytes));
	}
}

/* ---- entry blocks ---- */

struct archive_pool {
	struct archive_entry *spare; /* the owner's */
	size_t n_spare;
	_Atomic(struct archive_entry *) back; /* freed blocks, any thread pushes */
};

struct archive_pool *archive_pool_new(void)
{
	struct archive_pool *p = calloc(1, sizeof(*p));
	if (p)
		atomic_init(&p->back, NULL);
	return p;
}

void archive_pool_free(struct archive_pool *p)
{
	if (!p)
		return;
	struct archive_entry *e = atomic_exchange(&p->back, NULL);
	while (e) {
		struct archive_entry *next = e->next;
		free(e);
		e = next;
	}
	for (e = p->spare; e;) {
		struct archive_entry *next = e->next;
		free(e);
		e = next;
	}
	free(p);
}

/* A block of ARCHIVE_POOL_BLOCK bytes from p (the owner's thread). */
static struct archive_entry *pool_take(struct archive_pool *p)
{
	if (!p->spare) {
		/* What came back, whole; beyond the cap it goes to malloc. */
		struct archive_entry *e = atomic_exchange(&p->back, NULL);
		while (e) {
			struct archive_entry *next = e->next;
			if (p->n_spare < ARCHIVE_POOL_SPARE) {
				e->next = p->spare;
				p->spare = e;
				p->n_spare++;
			} else {
				free(e);
			}
			e = next;
		}
	}
	struct archive_entry *e = p->spare;
	if (e) {
		p->spare = e->next;
		p->n_spare--;
		return e;
	}
	return malloc(ARCHIVE_POOL_BLOCK);
}

/* Gives e's memory back: to its pool (any thread), or to malloc. */
static void block_free(struct archive_entry *e)
{
	struct archive_pool *p = e->pool;
	if (!p) {
		free(e);
		return;
	}
	struct archive_entry *head = atomic_load_explicit(&p->back, memory_order_relaxed);
	do
		e->next = head;
	while (!atomic_compare_exchange_weak_explicit(&p->back, &head, e, memory_order_release,
	                                              memory_order_relaxed));
}

static struct archive_entry *entry_make(struct archive *a, struct archive_pool *pool, struct msg *m,
                                        int64_t received_at, const uint8_t *cid, size_t cid_len,
                                        const uint8_t *user, size_t user_len, bool has_user)
{
	(void)a;
	if (cid_len > UINT16_MAX || user_len > UINT16_MAX)
		return NULL;
	size_t need = sizeof(struct archive_entry) + cid_len + (has_user ? user_len : 0);
	bool pooled = pool && need <= ARCHIVE_POOL_BLOCK;
	struct archive_entry *e = pooled ? pool_take(pool) : malloc(need);
	if (!e)
		return NULL;
	memset(e, 0, sizeof(*e));
	e->pool = pooled ? pool : NULL;
	e->msg = msg_ref(m);
	e->received_at = received_at;
	e->cid_len = (uint16_t)cid_len;
	e->user_len = has_user ? (uint16_t)user_len : 0;
	e->has_user = has_user;
	if (cid_len)
		memcpy(e->data, cid, cid_len);
	if (has_user && user_len)
		memcpy(e->data + cid_len, user, user_len);
	e->size = entry_size(m, cid_len, e->user_len);
	return e;
}

/* Credit blocks: what a worker takes of the bound, and of the keys, at a
 * time. Small against any sensible archive_queue, so that the bound holds
 * within a block per worker. */
#define CREDIT_N     64u
#define CREDIT_BYTES (64u * 1024u)

/* Takes n entries of bytes from a's bound into cr; false (nothing taken)
 * when that would pass the bound. */
static bool reserve(struct archive *a, struct archive_credit *cr, uint64_t n, uint64_t bytes)
{
	uint64_t qn = atomic_fetch_add(&a->queued, n) + n;
	uint64_t qb = atomic_fetch_add(&a->queued_bytes, bytes) + bytes;
	if (qn > a->queue_n || qb > a->queue_bytes) {
		atomic_fetch_sub(&a->queued, n);
		atomic_fetch_sub(&a->queued_bytes, bytes);
		return false;
	}
	cr->n += n;
	cr->bytes += bytes;
	return true;
}

struct archive_entry *archive_entry_new(struct archive *a, struct archive_pool *pool,
                                        struct archive_credit *cr, struct msg *m,
                                        int64_t received_at, const uint8_t *cid, size_t cid_len,
                                        const uint8_t *user, size_t user_len, bool has_user)
{
	uint32_t size = entry_size(m, cid_len, has_user ? user_len : 0);
	/* A block when the credit runs short, else (near the bound) exactly
	 * this entry, as if there were no credit. */
	if ((cr->n < 1 || cr->bytes < size) &&
	    !reserve(a, cr, CREDIT_N, size > CREDIT_BYTES ? size : CREDIT_BYTES) &&
	    !reserve(a, cr, 1, size)) {
		count_drop(a, "queue full");
		return NULL;
	}
	struct archive_entry *e =
	        entry_make(a, pool, m, received_at, cid, cid_len, user, user_len, has_user);
	if (!e) {
		count_drop(a, "out of memory");
		return NULL;
	}
	cr->n--;
	cr->bytes -= size;
	if (cr->seq_next == cr->seq_end) {
		cr->seq_next = atomic_fetch_add(&a->seq, CREDIT_N) + 1;
		cr->seq_end = cr->seq_next + CREDIT_N;
	}
	e->boot = a->boot;
	e->seq = cr->seq_next++;
	return e;
}

enum tern_err archive_entry_spill(struct archive *a, struct archive_entry *e, struct store_batch *b)
{
	enum tern_err err = store_msg_put(b, e->msg);
	if (!err)
		err = store_archive_put(b, a->name, e->boot, e->seq, e->msg->store_id,
		                        e->received_at, e->data, e->cid_len, e->data + e->cid_len,
		                        e->user_len, e->has_user);
	if (!err)
		e->spilled_id = e->msg->store_id;
	return err;
}

/* Gives back the room of n entries of bytes in all (the archive's thread
 * does it once per batch: the counters are the workers' cache line too);
 * ends a queue-full episode once the queue has drained to half. */
static void release(struct archive *a, uint64_t n, uint64_t bytes)
{
	atomic_fetch_sub(&a->queued, n);
	atomic_fetch_sub(&a->queued_bytes, bytes);
	if (atomic_load_explicit(&a->full, memory_order_relaxed) &&
	    atomic_load(&a->queued) <= a->queue_n / 2 &&
	    atomic_load(&a->queued_bytes) <= a->queue_bytes / 2 && atomic_exchange(&a->full, false))
		log_write(a->log, LOG_TYPE_NOTICE,
		          "archive %s: the queue has room again; %llu messages were not archived "
		          "while it was full",
		          a->name,
		          (unsigned long long)(atomic_load(&a->dropped) -
		                               atomic_load(&a->dropped_at_full)));
}

/* Frees e, whose room the caller gives back with release(). */
static void entry_free_only(struct archive_entry *e)
{
	msg_unref(e->msg);
	block_free(e);
}

/* Frees e and gives back its room. */
static void entry_free(struct archive *a, struct archive_entry *e)
{
	uint32_t size = e->size;
	entry_free_only(e);
	release(a, 1, size);
}

void archive_entry_drop(struct archive *a, struct archive_entry *e)
{
	entry_free(a, e);
}

static void chain_append(struct archive_chain *to, struct archive_chain *from)
{
	if (!from->n)
		return;
	if (to->tail)
		to->tail->next = from->head;
	else
		to->head = from->head;
	to->tail = from->tail;
	to->n += from->n;
	*from = (struct archive_chain){0};
}

void archive_push(struct archive *a, struct archive_chain *c, struct archive_credit *cr)
{
	if (cr && (cr->n || cr->bytes)) {
		atomic_fetch_sub(&a->queued, cr->n);
		atomic_fetch_sub(&a->queued_bytes, cr->bytes);
		cr->n = cr->bytes = 0;
	}
	if (!c->n)
		return;
	uint64_t now = mono_ms();
	for (struct archive_entry *e = c->head; e; e = e->next)
		e->queued_at = now;
	pthread_mutex_lock(&a->mu);
	bool was_empty = a->q.n == 0;
	chain_append(&a->q, c);
	/* The thread waits for the first entry, or for the batch to fill;
	 * between those it sleeps on the oldest entry's deadline. */
	if (was_empty || a->q.n >= a->batch_n)
		pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

enum tern_err archive_restore(struct archive *a, struct msg *m, uint64_t boot, uint64_t seq,
                              int64_t received_at, const uint8_t *cid, size_t cid_len,
                              const uint8_t *user, size_t user_len, bool has_user)
{
	struct archive_entry *e =
	        entry_make(a, NULL, m, received_at, cid, cid_len, user, user_len, has_user);
	msg_unref(m);
	if (!e)
		return TERN_E_NOMEM;
	e->boot = boot;
	e->seq = seq;
	e->spilled_id = e->msg->store_id;
	atomic_fetch_add(&a->queued, 1);
	atomic_fetch_add(&a->queued_bytes, e->size);
	struct archive_chain c = {e, e, 1};
	archive_push(a, &c, NULL);
	return TERN_OK;
}

/* ---- the thread ---- */

static void record_of(struct archive_record *r, const struct archive_entry *e)
{
	const struct msg *m = e->msg;
	memset(r, 0, sizeof(*r));
	archive_key_format(r->key, e->boot, e->seq);
	r->received_at = e->received_at;
	r->topic = m->topic;
	r->payload = m->payload;
	r->qos = m->qos;
	r->retain = m->retain;
	r->client_id = (struct tern_bytes){e->data, e->cid_len};
	r->has_username = e->has_user;
	r->username = (struct tern_bytes){e->data + e->cid_len, e->user_len};
	r->has_payload_format = m->has_payload_format;
	r->payload_format = m->payload_format;
	r->has_content_type = m->has_content_type;
	r->content_type = m->content_type;
	r->has_response_topic = m->response_topic.len != 0;
	r->response_topic = m->response_topic;
	r->has_correlation_data = m->correlation_data.data != NULL;
	r->correlation_data = m->correlation_data;
	r->user_raw = m->user_raw;
}

/* The database has the first n entries of c: the store forgets the
 * spilled ones, the entries go. */
static void written(struct archive *a, struct archive_chain *c, size_t n)
{
	struct store_batch *b = NULL;
	bool store_ok = true;
	uint64_t bytes = 0;
	struct archive_entry *e = c->head;
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *next = e->next;
		if (e->spilled_id && a->store && store_ok) {
			if (!b)
				b = store_batch_new();
			/* Out of memory: the entry stays in the store and is
			 * written again (a no-op) at the next start. */
			store_ok = b && store_archive_del(b, a->name, e->boot, e->seq,
			                                  e->spilled_id) == TERN_OK;
		}
		bytes += e->size;
		entry_free_only(e);
		e = next;
	}
	c->head = e;
	c->n -= n;
	if (!c->head)
		c->tail = NULL;
	if (b)
		store_submit_take(a->store, b);
	atomic_fetch_add(&a->archived, n);
	release(a, n, bytes);
}

static void failed(struct archive *a, const char *what, const char *why)
{
	atomic_fetch_add(&a->failures, 1);
	if (a->down)
		return;
	a->down = true;
	log_write(a->log, LOG_TYPE_WARNING,
	          "Warning: archive %s: %s (%s); messages wait in its queue while ternd "
	          "retries",
	          a->name, what, why);
}

/* The database cannot take the head entry of c (a message over its
 * document size limit, which a retry cannot change): it goes, counted as
 * dropped and logged, so that it does not hold up the queue. */
static void drop_head(struct archive *a, struct archive_chain *c, const char *why)
{
	struct archive_entry *e = c->head;
	log_write(a->log, LOG_TYPE_WARNING,
	          "Warning: archive %s: a message to '%.*s' (%u bytes) is not archived: %s",
	          a->name, (int)e->msg->topic.len, (const char *)e->msg->topic.data,
	          e->msg->payload.len, why);
	atomic_fetch_add(&a->dropped, 1);
	struct store_batch *b = e->spilled_id && a->store ? store_batch_new() : NULL;
	if (b && store_archive_del(b, a->name, e->boot, e->seq, e->spilled_id) == TERN_OK)
		store_submit_take(a->store, b);
	else
		store_batch_free(b);
	c->head = e->next;
	if (!c->head)
		c->tail = NULL;
	c->n--;
	entry_free(a, e);
}

/* Writes the first n entries of c in one batch (n <= batch_n); on success
 * they are gone from c. Returns the sink's error; the database is closed
 * after one (but TERN_E_TOO_LARGE, which is about a record). */
static enum tern_err write_n(struct archive *a, struct archive_chain *c, size_t n, char *why,
                             size_t len)
{
	size_t i = 0;
	for (struct archive_entry *e = c->head; e && i < n; e = e->next)
		record_of(&a->recs[i++], e);
	uint64_t t0 = mono_us();
	enum tern_err err = a->ops->write(a->db, a->recs, i, why, len);
	if (err)
		return err;
	uint64_t us = mono_us() - t0;
	atomic_fetch_add(&a->batches, 1);
	atomic_fetch_add(&a->batch_us_sum, us);
	atomic_store(&a->batch_us_last, us);
	written(a, c, i);
	return TERN_OK;
}

/* Writes the first batch_n entries of c; false on failure (the database
 * is closed then). */
static bool write_batch(struct archive *a, struct archive_chain *c)
{
	char why[512];
	if (!a->db && db_open(a, why, sizeof(why)) != TERN_OK) {
		failed(a, "cannot connect", why);
		return false;
	}
	size_t n = c->n < a->batch_n ? c->n : a->batch_n;
	enum tern_err err = write_n(a, c, n, why, sizeof(why));
	/* A record too large for the database: the batch again one by one,
	 * dropping what alone is too large. */
	if (err == TERN_E_TOO_LARGE) {
		err = TERN_OK;
		for (size_t i = 0; i < n && !err; i++) {
			err = write_n(a, c, 1, why, sizeof(why));
			if (err == TERN_E_TOO_LARGE) {
				drop_head(a, c, why);
				err = TERN_OK;
			}
		}
	}
	if (err) {
		a->ops->close(a->db);
		a->db = NULL;
		atomic_store(&a->connected, false);
		failed(a, "cannot write", why);
		return false;
	}
	if (a->down) {
		a->down = false;
		log_write(a->log, LOG_TYPE_NOTICE, "archive %s: writing to the database again",
		          a->name);
	}
	return true;
}

static void wait_until(struct archive *a, uint64_t at_ms)
{
	struct timespec ts = {.tv_sec = (time_t)(at_ms / 1000),
	                      .tv_nsec = (long)(at_ms % 1000) * 1000000L};
	pthread_cond_timedwait(&a->cv, &a->mu, &ts);
}

/* Frees what could not be written at stop; returns how many were not
 * spilled (lost). */
static uint64_t give_up(struct archive *a, struct archive_chain *c)
{
	uint64_t lost = 0;
	for (struct archive_entry *e = c->head, *next; e; e = next) {
		next = e->next;
		lost += e->spilled_id == 0;
		entry_free(a, e);
	}
	*c = (struct archive_chain){0};
	return lost;
}

static void *archive_main(void *arg)
{
	struct archive *a = arg;
	struct archive_chain batch = {0}; /* taken from the queue, not written */
	uint32_t backoff = 0;
	uint64_t retry_at = 0;
	uint64_t lost = 0;
	pthread_mutex_lock(&a->mu);
	for (;;) {
		uint64_t now = mono_ms();
		size_t have = batch.n + a->q.n;
		if (have == 0) {
			if (a->stop)
				break;
			pthread_cond_wait(&a->cv, &a->mu);
			continue;
		}
		if (a->stop && now >= a->stop_deadline) {
			/* The database did not take it in time. */
			chain_append(&batch, &a->q);
			lost += give_up(a, &batch);
			break;
		}
		if (retry_at > now) {
			wait_until(a, a->stop && a->stop_deadline < retry_at ? a->stop_deadline
			                                                     : retry_at);
			continue;
		}
		uint64_t oldest = batch.n ? batch.head->queued_at : a->q.head->queued_at;
		if (have < a->batch_n && !a->stop && now < oldest + a->batch_ms) {
			wait_until(a, oldest + a->batch_ms);
			continue;
		}
		chain_append(&batch, &a->q);
		bool stopping = a->stop;
		uint64_t deadline = a->stop_deadline;
		pthread_mutex_unlock(&a->mu);
		/* Several batches at once when the queue is long; a stop's
		 * grace bounds them too. */
		while (batch.n && !(stopping && mono_ms() >= deadline)) {
			if (!write_batch(a, &batch)) {
				backoff = backoff ? backoff * 2 : BACKOFF_MIN_MS;
				if (backoff > BACKOFF_MAX_MS)
					backoff = BACKOFF_MAX_MS;
				retry_at = mono_ms() + backoff;
				break;
			}
			backoff = 0;
			retry_at = 0;
			if (batch.n && batch.n < a->batch_n &&
			    mono_ms() < batch.head->queued_at + a->batch_ms)
				break;
		}
		pthread_mutex_lock(&a->mu);
	}
	pthread_mutex_unlock(&a->mu);
	if (lost)
		log_write(a->log, LOG_TYPE_ERR,
		          "Error: archive %s: %llu messages were not archived: the database did "
		          "not take them before shutdown (without persistence they are not kept)",
		          a->name, (unsigned long long)lost);
	return NULL;
}

enum tern_err archive_start(struct archive *a, struct store *store)
{
	a->store = store;
	int rc = pthread_create(&a->thread, NULL, archive_main, a);
	if (rc) {
		log_write(a->log, LOG_TYPE_ERR, "Error: archive %s: cannot start its thread: %s",
		          a->name, strerror(rc));
		return TERN_E_SYS;
	}
	a->started = true;
	/* "arch-NAME" in top -H and /proc/PID/task (bench/archive pins it
	 * by that name); the kernel keeps 15 bytes. */
	char comm[16];
	snprintf(comm, sizeof(comm), "arch-%.10s", a->name);
	pthread_setname_np(a->thread, comm);
	return TERN_OK;
}

void archive_stop(struct archive *a, uint32_t grace_ms)
{
	if (!a || !a->started)
		return;
	pthread_mutex_lock(&a->mu);
	a->stop = true;
	a->stop_deadline = mono_ms() + grace_ms;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
	pthread_join(a->thread, NULL);
	a->started = false;
}

void archive_free(struct archive *a)
{
	if (!a)
		return;
	archive_stop(a, 0);
	(void)give_up(a, &a->q);
	if (a->db)
		a->ops->close(a->db);
	for (size_t i = 0; i < a->n_filters; i++)
		free(a->filters[i]);
	free(a->filters);
	free(a->af);
	free(a->recs);
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

void archive_stats(const struct archive *a, struct archive_stats *st)
{
	struct archive *m = (struct archive *)a;
	st->archived = atomic_load(&m->archived);
	st->queued = atomic_load(&m->queued);
	st->queued_bytes = atomic_load(&m->queued_bytes);
	st->dropped = atomic_load(&m->dropped);
	st->batches = atomic_load(&m->batches);
	st->batch_us_sum = atomic_load(&m->batch_us_sum);
	st->batch_us_last = atomic_load(&m->batch_us_last);
	st->failures = atomic_load(&m->failures);
	st->connected = atomic_load(&m->connected);
}
