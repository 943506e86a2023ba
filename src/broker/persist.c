/*
 * persist.c - the broker's side of durable storage (src/store): the store
 * adapter of the session module.
 *
 * Recording: only the transitions of session.c record store operations
 * (persist_batch() gives them this iteration's batch; with the memory
 * back-end it returns NULL and nothing is recorded). Each loop iteration's
 * operations form one batch, submitted just before the worker sleeps and
 * before its outbox goes to other workers, so a delivery's row is queued
 * for the disk before any other worker can record the delivery's
 * acknowledgement.
 *
 * Holding answers: an acknowledgement that promises durability (PUBACK,
 * PUBREC, PUBCOMP, SUBACK), and an outbound PUBREL or QoS 2 PUBLISH whose
 * state the store must have before the client does, is held with the
 * ticket of the batch being built and handed back when the storage thread
 * reports that batch committed:
 * acknowledgements to session_ack_committed(), which sends them (or, when
 * the commit failed, refuses or closes), calls to their function. This file
 * sends nothing and closes nothing itself. Batches of one worker complete
 * in order, so a ticket's completion releases everything held up to it.
 * When the current batch is empty, its held answers depend only on earlier
 * batches: they go out at once if those are done, or ride an empty batch
 * through the storage thread to keep the order.
 *
 * Loading: at start, before the workers run, everything stored is put back:
 * sessions on their home worker (for the current number of workers),
 * subscriptions into every router replica, retained messages, queued and
 * in-flight deliveries, inbound QoS 2 packet ids.
 */
#include "broker/persist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/archive_link.h"
#include "broker/broker.h"
#include "broker/config.h"
#include "broker/delivery.h"
#include "broker/retain.h"
#include "broker/router.h"
#include "broker/session.h"
#include "broker/worker.h"
#include "cluster/cluster.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/map.h"
#include "util/msg.h"
#include "util/ring.h"

struct held {
	uint64_t ticket;
	struct held_ack ack; /* ack.type 0: a call */
	pending_done_fn fn;
	void *arg;
	void (*free_arg)(void *);
};

/* The cluster's stores of one ticket (persist_cluster_hold()): the answers
 * held with that ticket wait for them too. */
struct cluster_wait {
	uint64_t ticket;
	uint32_t outstanding;
	enum tern_err err; /* the first failure among them */
};

/* A worker's side of the store (w->persist): the batch being built, its
 * ticket, the answers held until their batch is committed, and the
 * cluster's stores they also wait for. */
struct persist_worker {
	struct store_batch *batch; /* store operations of this iteration */
	uint64_t ticket;           /* ticket of that batch */
	uint64_t done_ticket;      /* all batches up to it are committed */
	struct ring held;          /* of struct held: answers waiting for a commit, by ticket */
	struct ring cluster;       /* of struct cluster_wait, by ticket */
};

enum tern_err persist_worker_new(struct worker *w)
{
	w->persist = calloc(1, sizeof(*w->persist));
	if (!w->persist)
		return TERN_E_NOMEM;
	w->persist->ticket = 1;
	return TERN_OK;
}

struct store_batch *persist_batch(struct worker *w)
{
	struct persist_worker *p = w->persist;
	if (!w->broker->store)
		return NULL;
	if (!p->batch) {
		p->batch = store_batch_new();
		if (!p->batch)
			log_write(&w->broker->log, LOG_TYPE_ERR,
			          "Error: out of memory recording to the store");
	}
	return p->batch;
}

void persist_note(struct worker *w, enum tern_err err)
{
	if (err)
		log_write(&w->broker->log, LOG_TYPE_ERR,
		          "Error: out of memory recording to the store; a restart may lose "
		          "recent changes");
}

size_t persist_ops(struct worker *w)
{
	return store_batch_count(w->persist->batch);
}

void persist_assign_id(struct worker *w, struct msg *m)
{
	if (w->broker->store && !m->store_id && (m->qos > 0 || m->retain))
		m->store_id = broker_new_id(w->broker);
}

static TERN_MUST_CHECK enum tern_err push_held(struct worker *w, const struct held *h)
{
	struct held *slot = RING_PUSH(&w->persist->held, struct held);
	if (!slot)
		return TERN_E_NOMEM;
	*slot = *h;
	return TERN_OK;
}

static void release(struct worker *w, const struct held *h, enum tern_err err)
{
	if (!h->ack.type) {
		/* The subscription is in effect either way; a failed commit
		 * only means it might not survive a restart. */
		h->fn(w, h->arg);
		return;
	}
	session_ack_committed(w, &h->ack, err);
}

/* Releases what is held up to ticket, the store having committed that
 * far with err, but not past a ticket whose cluster stores are still out:
 * an answer there waits for both. A ticket's own cluster failure is its
 * answers' error. */
static void release_upto(struct worker *w, uint64_t ticket, enum tern_err err)
{
	struct persist_worker *p = w->persist;
	while (p->held.n && RING_FRONT(&p->held, struct held)->ticket <= ticket) {
		struct held h = *RING_FRONT(&p->held, struct held);
		enum tern_err e = err;
		/* Tickets in the ring are increasing; the first with work
		 * left stops the release. */
		for (uint32_t i = 0; i < p->cluster.n; i++) {
			struct cluster_wait *cw = RING_AT(&p->cluster, struct cluster_wait, i);
			if (cw->ticket > h.ticket)
				break;
			if (cw->outstanding)
				return;
			if (cw->ticket == h.ticket && cw->err && !e)
				e = cw->err;
		}
		ring_pop(&p->held);
		release(w, &h, e);
	}
	/* A finished ticket's entry goes once no answer of its is held. */
	while (p->cluster.n) {
		struct cluster_wait *cw = RING_FRONT(&p->cluster, struct cluster_wait);
		if (cw->outstanding ||
		    (p->held.n && RING_FRONT(&p->held, struct held)->ticket <= cw->ticket))
			break;
		ring_pop(&p->cluster);
	}
}

uint64_t persist_cluster_hold(struct worker *w)
{
	struct persist_worker *p = w->persist;
	struct cluster_wait *last =
	        p->cluster.n ? RING_AT(&p->cluster, struct cluster_wait, p->cluster.n - 1) : NULL;
	if (!last || last->ticket != p->ticket) {
		last = RING_PUSH(&p->cluster, struct cluster_wait);
		if (!last)
			return 0;
		*last = (struct cluster_wait){.ticket = p->ticket};
	}
	last->outstanding++;
	return p->ticket;
}

void persist_cluster_done(struct worker *w, uint64_t ticket, enum tern_err err)
{
	struct persist_worker *p = w->persist;
	for (uint32_t i = 0; i < p->cluster.n; i++) {
		struct cluster_wait *cw = RING_AT(&p->cluster, struct cluster_wait, i);
		if (cw->ticket != ticket)
			continue;
		if (cw->outstanding)
			cw->outstanding--;
		if (err && !cw->err)
			cw->err = err;
		break;
	}
	release_upto(w, p->done_ticket, TERN_OK);
}

enum tern_err persist_hold_ack(struct worker *w, const struct held_ack *a)
{
	struct held h = {.ticket = w->persist->ticket, .ack = *a};
	return push_held(w, &h);
}

void persist_hold_call(struct worker *w, pending_done_fn fn, void *arg, void (*free_arg)(void *))
{
	struct held h = {.ticket = w->persist->ticket, .fn = fn, .arg = arg, .free_arg = free_arg};
	if ((!w->broker->store && !w->broker->cluster) || push_held(w, &h))
		fn(w, arg);
}

/* Runs on the storage thread: tell the worker. */
static void on_done(void *arg, uint64_t ticket, enum tern_err err)
{
	struct inbox_item *it = arg;
	if (atomic_load(&it->u.done.b->stop)) {
		/* At shutdown nobody waits for the answer. */
		free(it);
		return;
	}
	it->u.done.ticket = ticket;
	it->u.done.err = err;
	worker_post(it->u.done.w, it);
}

void persist_submit(struct worker *w)
{
	struct persist_worker *p = w->persist;
	struct broker *b = w->broker;
	bool waiting =
	        p->held.n && RING_AT(&p->held, struct held, p->held.n - 1)->ticket == p->ticket;
	if (!b->store) {
		/* Only the cluster's stores hold answers: the ticket is
		 * "committed" locally at once. */
		if (waiting) {
			p->done_ticket = p->ticket++;
			release_upto(w, p->done_ticket, TERN_OK);
		}
		return;
	}
	struct store_batch *batch = p->batch;
	if (!batch && !waiting)
		return;
	uint64_t ticket = p->ticket++;
	p->batch = NULL;
	if ((!batch || store_batch_empty(batch)) && p->done_ticket + 1 == ticket) {
		/* Nothing new to write and nothing in flight. */
		store_batch_free(batch);
		p->done_ticket = ticket;
		release_upto(w, ticket, TERN_OK);
		return;
	}
	if (!batch)
		batch = store_batch_new();
	struct inbox_item *it = calloc(1, sizeof(*it));
	if (!batch || !it) {
		free(it);
		store_batch_free(batch);
		log_write(&b->log, LOG_TYPE_ERR, "Error: out of memory submitting to the store");
		p->done_ticket = ticket;
		release_upto(w, ticket, TERN_E_NOMEM);
		return;
	}
	it->kind = INBOX_STORE_DONE;
	it->u.done.b = b;
	it->u.done.w = w;
	store_batch_on_done(batch, on_done, it, ticket);
	store_submit_take(b->store, batch);
}

void persist_done(struct worker *w, uint64_t ticket, enum tern_err err)
{
	struct persist_worker *p = w->persist;
	if (err)
		log_write(&w->broker->log, LOG_TYPE_ERR,
		          "Error: the store failed to commit (%s); acknowledgements are "
		          "withheld",
		          tern_strerror(err));
	if (ticket > p->done_ticket)
		p->done_ticket = ticket;
	release_upto(w, ticket, err);
}

void persist_worker_free(struct worker *w)
{
	struct persist_worker *p = w->persist;
	if (!p)
		return;
	for (uint32_t i = 0; i < p->held.n; i++) {
		struct held *h = RING_AT(&p->held, struct held, i);
		if (!h->ack.type && h->free_arg)
			h->free_arg(h->arg);
	}
	ring_free(&p->held);
	ring_free(&p->cluster);
	/* What the last iteration and the shutdown recorded still goes to
	 * the store, which drains it in store_close(). */
	if (p->batch && w->broker->store)
		store_submit_take(w->broker->store, p->batch);
	else
		store_batch_free(p->batch);
	free(p);
	w->persist = NULL;
}

/* ---- loading ---- */

static struct session *find_session(struct broker *b, uint64_t id)
{
	for (unsigned i = 0; i < b->n_workers; i++) {
		struct session *s = session_by_id(b->workers[i], id);
		if (s)
			return s;
	}
	return NULL;
}

static TERN_MUST_CHECK enum tern_err load_session(void *arg, const struct store_loaded_session *ls)
{
	struct broker *b = arg;
	unsigned home = broker_home_of(b, ls->client_id, ls->client_id_len);
	return session_restore(b->workers[home], ls) ? TERN_OK : TERN_E_NOMEM;
}

static TERN_MUST_CHECK enum tern_err load_sub(void *arg, uint64_t session, const uint8_t *filter,
                                              size_t len, uint8_t qos, uint8_t flags, uint8_t rh,
                                              uint32_t sub_id)
{
	struct broker *b = arg;
	struct session *s = find_session(b, session);
	if (!s)
		return TERN_OK;
	struct tern_bytes f = {filter, (uint32_t)len};
	struct tern_bytes g, p;
	/* The store keeps a subscription's options, not whether the cluster
	 * feeds it from a durable queue: that follows from them, as at its
	 * SUBSCRIBE (session_durable.c). */
	if (session_durable_sub(s, tern_topic_filter_share(f, &g, &p), qos, flags))
		flags |= ROUTE_DURABLE;
	if (session_restore_sub(s, f, qos, flags, rh, sub_id))
		return TERN_E_NOMEM;
	struct route r = {.session = session_id(s),
	                  .flow = session_flow(s),
	                  .sub_id = sub_id,
	                  .home = (uint16_t)session_worker(s)->id,
	                  .qos = qos,
	                  .flags = flags};
	if (!r.flow)
		return TERN_E_NOMEM;
	struct tern_bytes group = {0}, plain = f;
	if (!tern_topic_filter_share(f, &group, &plain)) {
		group.len = 0;
		plain = f;
	}
	for (unsigned i = 0; i < b->n_workers; i++)
		if (router_add(b->workers[i]->router, plain, group, &r))
			return TERN_E_NOMEM;
	/* Nobody can connect yet: nothing waits for NATS to confirm. */
	if (b->cluster && cluster_interest(b->cluster, true, plain, group, 0, NULL))
		return TERN_E_NOMEM;
	return TERN_OK;
}

static TERN_MUST_CHECK enum tern_err load_retained(void *arg, struct msg *m,
                                                   const struct store_retain_src *src)
{
	struct broker *b = arg;
	enum tern_err e;
	if (src && b->cfg.check_retain_source) {
		/* Its publisher must still be allowed to write it before it
		 * goes to a new subscriber, after a restart as before. */
		struct retain_source rs = {
		        .client_id = {src->client_id, (uint32_t)src->client_id_len},
		        .username = {src->has_user ? src->username : NULL,
		                     (uint32_t)src->username_len},
		        .listener = src->listener,
		};
		if (src->has_user && !rs.username.data)
			rs.username.data = (const uint8_t *)""; /* an empty one */
		e = retain_set_source(b->retain, m, &rs);
	} else {
		e = retain_set(b->retain, m);
	}
	msg_unref(m);
	return e;
}

static TERN_MUST_CHECK enum tern_err load_delivery(void *arg,
                                                   const struct store_loaded_delivery *ld)
{
	struct broker *b = arg;
	struct session *s = find_session(b, ld->session);
	struct delivery d = {.msg = ld->msg, .qos = ld->qos, .retain = ld->retain};
	if (!s) {
		delivery_clear(&d);
		return TERN_OK;
	}
	if (ld->n_sub_ids == 1) {
		d.n_sub_ids = 1;
		d.sub_id = ld->sub_ids[0];
	} else if (ld->n_sub_ids > 1) {
		d.sub_ids = malloc(ld->n_sub_ids * sizeof(uint32_t));
		if (!d.sub_ids) {
			delivery_clear(&d);
			return TERN_E_NOMEM;
		}
		memcpy(d.sub_ids, ld->sub_ids, ld->n_sub_ids * sizeof(uint32_t));
		d.n_sub_ids = ld->n_sub_ids;
	}
	if (ld->state == STORE_D_QUEUED)
		return session_restore_queued_take(s, &d);
	uint8_t state = ld->state == STORE_D_PUBREL ? INFLIGHT_WAIT_PUBCOMP
	                : d.qos == 1                ? INFLIGHT_WAIT_PUBACK
	                                            : INFLIGHT_WAIT_PUBREC;
	return session_restore_inflight_take(s, &d, ld->packet_id, state);
}

static TERN_MUST_CHECK enum tern_err load_qos2(void *arg, uint64_t session, uint16_t packet_id)
{
	struct broker *b = arg;
	struct session *s = find_session(b, session);
	return s ? session_restore_qos2(s, packet_id) : TERN_OK;
}

static TERN_MUST_CHECK enum tern_err load_archive(void *arg, const struct store_loaded_archive *a)
{
	return archive_link_restore(arg, a);
}

enum tern_err persist_open(struct broker *b)
{
	const struct config *cfg = &b->cfg;
	if (cfg->storage != STORAGE_SQLITE)
		return TERN_OK;
	char path[512];
	const char *dir = cfg->persistence_location;
	size_t dl = strlen(dir);
	snprintf(path, sizeof(path), "%s%s%s", dir, dl && dir[dl - 1] != '/' ? "/" : "",
	         cfg->persistence_file);
	struct store_config sc = {.path = path, .sync = (enum store_sync)cfg->storage_sync};
	char err[768] = "";
	if (store_open(&b->store, &sc, err, sizeof(err))) {
		log_write(&b->log, LOG_TYPE_ERR, "Error: cannot use the store: %s", err);
		return TERN_E_CONFIG;
	}
	struct store_loader ld = {.arg = b,
	                          .session = load_session,
	                          .sub = load_sub,
	                          .retained = load_retained,
	                          .delivery = load_delivery,
	                          .qos2 = load_qos2,
	                          .archive = load_archive};
	uint64_t max_id = 0;
	if (store_load(b->store, &ld, &max_id, err, sizeof(err))) {
		log_write(&b->log, LOG_TYPE_ERR, "Error: cannot load the store: %s", err);
		return TERN_E_CONFIG;
	}
	atomic_store(&b->next_id, max_id);
	size_t sessions = 0;
	for (unsigned i = 0; i < b->n_workers; i++)
		sessions += session_count(b->workers[i]);
	log_write(&b->log, LOG_TYPE_NOTICE,
	          "Opened store %s: %zu sessions, %zu retained messages restored.", path, sessions,
	          retain_count(b->retain));
	if (store_start(b->store)) {
		log_write(&b->log, LOG_TYPE_ERR, "Error: cannot start the storage thread");
		return TERN_E_SYS;
	}
	return TERN_OK;
}
