/*
 * route.c - keeping the router replicas equal, and routing a publish.
 *
 * Subscription changes: the session's home worker applies the change to its
 * own replica and posts the same change to every other worker. Each replica
 * acks; when the last ack is in, the pending callback (which sends SUBACK or
 * UNSUBACK) runs. So once a client has its SUBACK, every worker routes to
 * the new subscription and nothing published afterwards is missed. A
 * session's changes come from one worker, and an inbox is FIFO per
 * producer, so every replica applies them in the same order.
 *
 * Publishing: match the topic in the local replica, merge overlapping
 * subscriptions of one session into one delivery with the highest QoS and
 * every subscription identifier [MQTT-3.3.4-2] [MQTT-3.3.4-3], then hand
 * local sessions their delivery at once and batch the others per worker.
 * A QoS 1/2 delivery for another worker is counted in the session's flow
 * cell before it leaves (and taken off when it arrives), so a session's
 * count includes what is on its way; the publisher learns whether a
 * receiver is now full (flow.h).
 */
#include "broker/route.h"

#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/delivery.h"
#include "broker/flow.h"
#include "broker/persist.h"
#include "broker/router.h"
#include "broker/session.h"
#include "broker/stats.h"
#include "broker/worker.h"
#include "cluster/cluster.h"
#include "tern/codec.h"
#include "util/log.h"
#include "util/map.h"
#include "util/msg.h"

struct pending_ack {
	unsigned outstanding;
	route_refused_fn refused;
	pending_done_fn done;
	void *arg;
	void (*free_arg)(void *);
};

/*
 * Overlapping subscriptions: a session whose filters match a topic more
 * than once gets one delivery, with the highest QoS and every subscription
 * identifier [MQTT-3.3.4-2] [MQTT-3.3.4-3]. The router reports a session
 * at most once per filter, so duplicates come only from different filters.
 * They are found in one pass, without sorting: a table keyed by session id
 * (open addressing, entries stamped with a generation so that it needs no
 * clearing between publishes) chains each session's matches from the first
 * one, which stands for the group; shared matches are each their own
 * delivery. The worker keeps the arrays, grown to the most matches seen.
 */
struct dedup_slot {
	uint64_t session;
	uint32_t gen;
	uint32_t tail; /* last match of the session so far */
};

struct route_dedup {
	struct dedup_slot *slots;
	uint32_t *next; /* per match: the session's next match, or NONE */
	bool *member;   /* per match: part of an earlier match's group */
	size_t cap;     /* matches the arrays hold; slots: 2 * cap */
	uint32_t gen;
};

#define NONE UINT32_MAX

/* A worker's routing state (w->route), private to this file: the changes
 * waiting for the other replicas' acks, the dedup table of a publish and
 * the delivery batches not in use. The matches of a publish stay inline in
 * struct worker (w->route_matches, touched here only): one pointer fewer
 * live through the loop of route_publish() is 9 instructions per delivered
 * message in fan-out (bench/instructions). The open batches of an
 * iteration are the outbox's (struct worker, deliver_open): the outbox
 * closes them when something else is queued behind (worker_outbox()), from
 * files that do not call this one. */
struct route_worker {
	struct map pending;       /* request id -> struct pending_ack */
	struct route_dedup dedup; /* scratch for merging matches */
	struct inbox_item *spare; /* batches to fill next */
	/* Batches the targets gave back (any thread pushes). */
	_Atomic(struct inbox_item *) back;
	struct buf cluster_out; /* a message encoded for other nodes */
};

enum tern_err route_worker_new(struct worker *w)
{
	w->route = calloc(1, sizeof(*w->route));
	if (!w->route)
		return TERN_E_NOMEM;
	atomic_init(&w->route->back, NULL);
	return TERN_OK;
}

static bool stopping(const struct worker *w)
{
	return atomic_load_explicit(&w->broker->stop, memory_order_relaxed);
}

void route_batch_begin(struct worker *w, struct route_batch *batch)
{
	batch->req = broker_new_id(w->broker);
	batch->outstanding = 0;
	batch->refused = NULL;
}

static void split_share(struct tern_bytes filter, struct tern_bytes *group,
                        struct tern_bytes *plain)
{
	if (!tern_topic_filter_share(filter, group, plain)) {
		*group = (struct tern_bytes){0};
		*plain = filter;
	}
}

static TERN_MUST_CHECK enum tern_err apply(struct worker *w, bool add, struct tern_bytes filter,
                                           const struct route *route)
{
	struct tern_bytes group, plain;
	split_share(filter, &group, &plain);
	enum tern_err err = add ? router_add(w->router, plain, group, route)
	                        : router_remove(w->router, plain, group, route->session);
	stat_set(&w->stats, STAT_SUBSCRIPTIONS, router_count(w->router));
	return err == TERN_E_NOT_FOUND ? TERN_OK : err;
}

/*
 * The cluster's count of local subscriptions per (filter, group) follows
 * the home replica, the one that knows a session's subscriptions exactly
 * (a session's changes come from its home worker only): a subscription
 * new there counts one more, one gone there one fewer. An add joins the
 * batch's acks until the NATS server has the interest, so SUBACK means
 * remote messages are on their way too. The token names the request and
 * the worker to ack (cluster_link.c).
 */
static void count_interest(struct worker *w, struct route_batch *batch, bool add,
                           struct tern_bytes filter, bool had)
{
	struct cluster *cl = w->broker->cluster;
	if (!cl || add == had)
		return;
	struct tern_bytes group, plain;
	split_share(filter, &group, &plain);
	uint64_t token = add && batch ? batch->req << 16 | w->id : 0;
	bool pending = false;
	if (cluster_interest(cl, add, plain, group, token, &pending)) {
		log_write(&w->broker->log, LOG_TYPE_ERR,
		          "Error: out of memory counting a subscription for the cluster");
		return;
	}
	if (pending)
		batch->outstanding++;
}

enum tern_err route_change(struct worker *w, struct route_batch *batch, bool add,
                           struct tern_bytes filter, const struct route *route)
{
	bool had = false;
	if (w->broker->cluster) {
		struct tern_bytes group, plain;
		split_share(filter, &group, &plain);
		had = router_contains(w->router, plain, group, route->session);
	}
	enum tern_err err = apply(w, add, filter, route);
	if (err)
		return err;
	count_interest(w, batch, add, filter, had);
	/* At shutdown the other replicas may already be gone. */
	if (stopping(w))
		return TERN_OK;
	for (unsigned i = 0; i < w->broker->n_workers; i++) {
		if (i == w->id)
			continue;
		struct inbox_item *it = calloc(1, sizeof(*it));
		uint8_t *text = malloc(filter.len ? filter.len : 1);
		if (!it || !text) {
			/* A replica that misses a change would misroute for
			 * good; there is no safe way on, so say it loudly. */
			free(it);
			free(text);
			log_write(&w->broker->log, LOG_TYPE_ERR,
			          "Error: out of memory updating subscriptions");
			return TERN_E_NOMEM;
		}
		memcpy(text, filter.data, filter.len);
		it->kind = add ? INBOX_ROUTE_ADD : INBOX_ROUTE_DEL;
		it->u.route.origin = (uint16_t)w->id;
		it->u.route.req = batch ? batch->req : 0;
		it->u.route.route = *route;
		/* An added route keeps the flow cell alive on its way; a
		 * removal does not need it. */
		if (add)
			flow_cell_ref(route->flow);
		else
			it->u.route.route.flow = NULL;
		it->u.route.filter_len = (uint16_t)filter.len;
		it->u.route.text = text;
		if (batch)
			batch->outstanding++;
		worker_post(w->broker->workers[i], it);
	}
	return TERN_OK;
}

enum tern_err route_batch_end(struct worker *w, struct route_batch *batch, pending_done_fn done,
                              void *arg, void (*free_arg)(void *))
{
	if (batch->outstanding == 0) {
		done(w, arg);
		return TERN_OK;
	}
	struct pending_ack *p = malloc(sizeof(*p));
	if (!p || map64_put(&w->route->pending, batch->req, p)) {
		free(p);
		/* The acks will find nothing pending; answer now rather than
		 * never: the replicas are at most a moment behind. */
		done(w, arg);
		return TERN_E_NOMEM;
	}
	p->outstanding = batch->outstanding;
	p->refused = batch->refused;
	p->done = done;
	p->arg = arg;
	p->free_arg = free_arg;
	return TERN_OK;
}

void route_pending_free(struct worker *w)
{
	size_t pos = 0;
	struct pending_ack *p;
	while ((p = map_next(&w->route->pending, &pos))) {
		if (p->free_arg)
			p->free_arg(p->arg);
		free(p);
	}
	map_free(&w->route->pending);
}

static void deliver_local(struct worker *w, struct deliver_target *t)
{
	struct session *s = session_by_id(w, t->session);
	if (!s) {
		/* Ended: its flow cell no longer counts. */
		delivery_clear(&t->d);
		return;
	}
	/* Counted by the publishing worker while on its way (hand_over). */
	session_arrive_take(s, &t->d);
}

static void route_remote(struct worker *w, struct inbox_item *it);

void route_inbox(struct worker *w, struct inbox_item *it)
{
	switch (it->kind) {
	case INBOX_DELIVER:
		for (size_t i = 0; i < it->u.deliver.n; i++) {
			if (stopping(w))
				delivery_clear(&it->u.deliver.t[i].d);
			else
				deliver_local(w, &it->u.deliver.t[i]);
		}
		atomic_fetch_sub_explicit(&w->backlog, it->u.deliver.n, memory_order_relaxed);
		/* Back to the worker that filled it, for its next batch. */
		deliver_batch_return(it);
		return;
	case INBOX_ROUTE_ADD:
	case INBOX_ROUTE_DEL: {
		struct tern_bytes f = {it->u.route.text, it->u.route.filter_len};
		if (apply(w, it->kind == INBOX_ROUTE_ADD, f, &it->u.route.route))
			log_write(&w->broker->log, LOG_TYPE_ERR,
			          "Error: out of memory updating subscriptions");
		/* The replica took its own reference. */
		flow_cell_unref(it->u.route.route.flow);
		free(it->u.route.text);
		if (it->u.route.req && !stopping(w)) {
			/* Reuse the item as the ack. */
			uint16_t origin = it->u.route.origin;
			uint64_t req = it->u.route.req;
			memset(it, 0, sizeof(*it));
			it->kind = INBOX_ROUTE_ACK;
			it->u.ack.req = req;
			/* Through the outbox, behind the deliveries this worker
			 * routed before the change: so no message for a filter
			 * arrives after its UNSUBACK. */
			worker_outbox(w, origin, it);
			return;
		}
		break;
	}
	case INBOX_REMOTE:
		atomic_fetch_sub_explicit(&w->backlog, 1, memory_order_relaxed);
		if (stopping(w)) {
			msg_unref(it->u.remote.msg);
			free(it->u.remote.share);
		} else {
			route_remote(w, it);
		}
		break;
	case INBOX_ROUTE_ACK: {
		struct pending_ack *p = map64_get(&w->route->pending, it->u.ack.req);
		if (p && it->u.ack.refused && !stopping(w)) {
			if (p->refused) {
				/* What undoes the change joins the batch. */
				struct route_batch undo = {.req = it->u.ack.req};
				p->refused(w, p->arg,
				           (struct tern_bytes){it->u.ack.refused, it->u.ack.rlen},
				           &undo);
				p->outstanding += undo.outstanding;
			} else {
				log_write(&w->broker->log, LOG_TYPE_ERR,
				          "Error: a refusal came for a change that expects none");
			}
		} else if (!p && it->u.ack.refused) {
			/* Answered already (out of memory when it ended). */
			log_write(&w->broker->log, LOG_TYPE_ERR,
			          "Error: a subscription was granted although its durable queue "
			          "could not be made");
		}
		free(it->u.ack.refused);
		if (p && --p->outstanding == 0) {
			map64_del(&w->route->pending, it->u.ack.req);
			if (!stopping(w))
				p->done(w, p->arg);
			else if (p->free_arg)
				p->free_arg(p->arg);
			free(p);
		}
		break;
	}
	default: /* not a route item: worker_inbox_item() */
		break;
	}
	free(it);
}

static TERN_MUST_CHECK enum tern_err dedup_reserve(struct route_dedup *dd, size_t n)
{
	if (n <= dd->cap)
		return TERN_OK;
	size_t cap = dd->cap ? dd->cap : 16;
	while (cap < n)
		cap *= 2;
	struct dedup_slot *slots = calloc(2 * cap, sizeof(*slots));
	uint32_t *next = malloc(cap * sizeof(*next));
	bool *member = malloc(cap * sizeof(*member));
	if (!slots || !next || !member) {
		free(slots);
		free(next);
		free(member);
		return TERN_E_NOMEM;
	}
	free(dd->slots);
	free(dd->next);
	free(dd->member);
	dd->slots = slots;
	dd->next = next;
	dd->member = member;
	dd->cap = cap;
	dd->gen = 0;
	return TERN_OK;
}

/* Links the matches of each session into a chain from its first one. */
static TERN_MUST_CHECK enum tern_err dedup_group(struct worker *w, const struct route_matches *m)
{
	struct route_dedup *dd = &w->route->dedup;
	if (dedup_reserve(dd, m->n))
		return TERN_E_NOMEM;
	if (++dd->gen == 0) {
		/* Stamps from 2^32 publishes ago would pass for current. */
		memset(dd->slots, 0, 2 * dd->cap * sizeof(*dd->slots));
		dd->gen = 1;
	}
	size_t mask = 2 * dd->cap - 1;
	for (size_t i = 0; i < m->n; i++) {
		dd->next[i] = NONE;
		dd->member[i] = false;
		const struct route *r = &m->v[i];
		if (r->flags & ROUTE_SHARED)
			continue;
		/* Session ids are sequential: a multiplicative hash spreads
		 * them (no client chooses them). */
		size_t h = (size_t)((r->session * 0x9E3779B97F4A7C15ull) >> 32) & mask;
		for (;; h = (h + 1) & mask) {
			struct dedup_slot *sl = &dd->slots[h];
			if (sl->gen != dd->gen) {
				*sl = (struct dedup_slot){r->session, dd->gen, (uint32_t)i};
				break;
			}
			if (sl->session == r->session) {
				dd->next[sl->tail] = (uint32_t)i;
				dd->member[i] = true;
				sl->tail = (uint32_t)i;
				break;
			}
		}
	}
	return TERN_OK;
}

static void dedup_free(struct route_dedup *dd)
{
	free(dd->slots);
	free(dd->next);
	free(dd->member);
}

/*
 * Deliveries for other workers travel in batches, one per target worker
 * and loop iteration (not one per publish): the open batch of a target
 * collects what every publish of the iteration routes there, and is
 * pushed with the outbox before the loop sleeps. Its item and array come
 * back from the target worker once handled, onto a lock-free stack that
 * its owner takes whole when it has no spare batch left (so no ABA: only
 * pushes race), and in steady state a batch costs no allocation. There are
 * never more batches than were under way at once.
 */
#define DELIVER_KEEP_MAX 4096u /* targets a returned batch's array keeps */

static struct inbox_item *deliver_batch_new(struct worker *w)
{
	struct route_worker *rw = w->route;
	struct inbox_item *it = rw->spare;
	if (!it) {
		/* Batches handled by their targets since the last time. */
		it = atomic_exchange_explicit(&rw->back, NULL, memory_order_acquire);
	}
	if (it) {
		rw->spare = it->next;
		it->next = NULL;
		it->u.deliver.n = 0;
		return it;
	}
	it = calloc(1, sizeof(*it));
	if (!it)
		return NULL;
	it->kind = INBOX_DELIVER;
	it->u.deliver.origin = w;
	return it;
}

void deliver_batch_return(struct inbox_item *it)
{
	struct worker *o = it->u.deliver.origin;
	if (it->u.deliver.cap > DELIVER_KEEP_MAX) {
		free(it->u.deliver.t);
		it->u.deliver.t = NULL;
		it->u.deliver.cap = 0;
	}
	_Atomic(struct inbox_item *) *back = &o->route->back;
	struct inbox_item *head = atomic_load_explicit(back, memory_order_relaxed);
	do
		it->next = head;
	while (!atomic_compare_exchange_weak_explicit(back, &head, it, memory_order_release,
	                                              memory_order_relaxed));
}

struct buf *route_cluster_scratch(struct worker *w)
{
	return &w->route->cluster_out;
}

void route_worker_free(struct worker *w)
{
	struct route_worker *rw = w->route;
	if (!rw)
		return;
	/* What came back to w, and its spare batches. */
	struct inbox_item *it = atomic_exchange_explicit(&rw->back, NULL, memory_order_acquire);
	for (int round = 0; round < 2; round++) {
		while (it) {
			struct inbox_item *next = it->next;
			free(it->u.deliver.t);
			free(it);
			it = next;
		}
		it = rw->spare;
		rw->spare = NULL;
	}
	dedup_free(&rw->dedup);
	buf_free(&rw->cluster_out);
	free(w->route_matches.v);
	w->route_matches = (struct route_matches){0};
	map_free(&rw->pending);
	free(rw);
	w->route = NULL;
}

static TERN_MUST_CHECK enum tern_err add_sub_id(struct delivery *d, uint32_t id)
{
	if (!id)
		return TERN_OK;
	if (d->n_sub_ids == 0) {
		d->sub_id = id;
		d->n_sub_ids = 1;
		return TERN_OK;
	}
	if (d->n_sub_ids == UINT16_MAX)
		return TERN_OK;
	uint32_t *v;
	if (d->n_sub_ids == 1) {
		v = malloc(4 * sizeof(*v));
		if (!v)
			return TERN_E_NOMEM;
		v[0] = d->sub_id;
	} else {
		v = realloc(d->sub_ids, ((size_t)d->n_sub_ids + 1) * sizeof(*v));
		if (!v)
			return TERN_E_NOMEM;
	}
	v[d->n_sub_ids++] = id;
	d->sub_ids = v;
	return TERN_OK;
}

/* Whether the publisher must wait when r's session is full: not for a
 * share group member while another member could take the next message
 * (the router passes full members over). */
static bool holds_back(const struct route *r)
{
	return !(r->flags & ROUTE_SHARED) || (r->flags & ROUTE_ALL_FULL);
}

/* Hands d to session r->session: at once when it lives here, else into
 * the open batch for its worker. Sets *full to r's flow cell when that session
 * is now over its mark for QoS 1/2. */
static void hand_over(struct worker *w, const struct route *r, struct delivery *d,
                      struct flow_hit *full)
{
	unsigned home = r->home;
	uint64_t session = r->session;
	if (home == w->id) {
		struct session *s = session_by_id(w, session);
		if (!s) {
			delivery_clear(d);
			return;
		}
		bool flow = d->qos > 0 && r->flow && holds_back(r);
		session_deliver_take(s, d);
		if (flow && !full->cell && flow_full(r->flow))
			*full = (struct flow_hit){r->flow, (r->flags & ROUTE_SHARED) != 0};
		return;
	}
	if (d->qos == 0 && atomic_load_explicit(&w->broker->workers[home]->backlog,
	                                        memory_order_relaxed) > WORKER_BACKLOG_MAX) {
		/* That worker is behind: QoS 0 is dropped here, as for a slow
		 * consumer, rather than piling up in its inbox. */
		stat_add(&w->stats, STAT_DROP_SLOW_QOS0, 1);
		delivery_clear(d);
		return;
	}
	struct inbox_item *it = w->deliver_open[home];
	if (!it) {
		it = deliver_batch_new(w);
		if (!it) {
			delivery_clear(d);
			return;
		}
		w->deliver_open[home] = it;
	}
	size_t n = it->u.deliver.n;
	if (n == it->u.deliver.cap) {
		size_t cap = n ? n * 2 : 16;
		struct deliver_target *t = realloc(it->u.deliver.t, cap * sizeof(*t));
		if (!t) {
			delivery_clear(d);
			return;
		}
		it->u.deliver.t = t;
		it->u.deliver.cap = cap;
	}
	it->u.deliver.t[n].session = session;
	it->u.deliver.t[n].d = *d;
	it->u.deliver.n = n + 1;
	if (d->qos > 0 && r->flow) {
		/* Counted before it can arrive; the home worker takes it off. */
		flow_add(r->flow, 1);
		if (!full->cell && holds_back(r) && flow_full(r->flow))
			*full = (struct flow_hit){r->flow, (r->flags & ROUTE_SHARED) != 0};
	}
	memset(d, 0, sizeof(*d));
}

/* Hands msg to the matches in w->route_matches: one delivery per session
 * (overlapping filters merged), one per shared match. Sets *delivered and
 * *over (the flow cell of a receiver now over its mark, if any). */
static TERN_MUST_CHECK enum tern_err deliver_matches(struct worker *w, struct msg *msg,
                                                     size_t *delivered, struct flow_hit *over)
{
	struct route_matches *m = &w->route_matches;
	enum tern_err err = TERN_OK;
	*delivered = 0;
	if (m->n == 0)
		return TERN_OK;
	/* With one match there is nothing to merge. */
	bool grouped = m->n > 1;
	if (grouped && dedup_group(w, m)) {
		/* Without the table, no session may get two deliveries: each
		 * gets its first match only (the others' options are lost,
		 * not the message). */
		err = TERN_E_NOMEM;
		grouped = false;
	}
	const struct route_dedup *dd = grouped ? &w->route->dedup : NULL;
	for (size_t i = 0; i < m->n; i++) {
		if (dd && dd->member[i])
			continue;
		const struct route *r = &m->v[i];
		if (!dd && m->n > 1 && !(r->flags & ROUTE_SHARED)) {
			bool seen = false;
			for (size_t k = 0; k < i && !seen; k++)
				seen = !(m->v[k].flags & ROUTE_SHARED) &&
				       m->v[k].session == r->session;
			if (seen)
				continue;
		}
		struct delivery d = {0};
		bool any = false, rap = false;
		for (size_t k = i; k != NONE; k = dd ? dd->next[k] : NONE) {
			const struct route *x = &m->v[k];
			/* No Local: not to the publisher's own session
			 * [MQTT-3.8.3-3]. */
			if ((x->flags & ROUTE_NO_LOCAL) && x->session == msg->origin)
				continue;
			/* A persistent session in a cluster gets QoS 1/2 from its
			 * durable queue, which has this message. */
			if ((x->flags & ROUTE_DURABLE) && msg->durable && x->qos > 0)
				continue;
			if (!any || x->qos > d.qos)
				d.qos = x->qos;
			any = true;
			rap |= (x->flags & ROUTE_RAP) != 0;
			if (add_sub_id(&d, x->sub_id))
				err = TERN_E_NOMEM;
		}
		if (!any) {
			delivery_clear(&d);
			continue;
		}
		/* The lower of the two [MQTT-3.8.4-8], unless
		 * upgrade_outgoing_qos. */
		if (d.qos > msg->qos && !w->broker->cfg.upgrade_outgoing_qos)
			d.qos = msg->qos;
		/* Forwarded messages carry RETAIN 0 unless Retain As Published
		 * [MQTT-3.3.1-12] [MQTT-3.3.1-13]. */
		d.retain = rap && msg->retain;
		d.msg = msg_ref(msg);
		/* Recorded (for a stored session only) by the publishing
		 * worker, before the delivery can reach another worker. */
		session_record_delivery(w, r, &d);
		hand_over(w, r, &d, over);
		(*delivered)++;
	}
	return err;
}

enum tern_err route_publish(struct worker *w, struct msg *msg, size_t *matched,
                            struct flow_hit *hit)
{
	struct route_matches *m = &w->route_matches;
	struct flow_hit over = {0};
	if (hit)
		*hit = over;
	if (matched)
		*matched = 0;
	/* In a cluster, NATS picks the member of each share group among all
	 * nodes, this one included: once the message went to NATS, this node
	 * serves its ordinary subscriptions only. */
	struct cluster *cl = w->broker->cluster;
	bool forwarded = cl && cluster_forward(cl, msg, w->now, &w->route->cluster_out);
	enum tern_err err =
	        forwarded ? router_match_plain(w->router, msg->topic.data, msg->topic.len, m)
	                  : router_match(w->router, msg->topic.data, msg->topic.len, m);
	size_t delivered = 0;
	enum tern_err derr = deliver_matches(w, msg, &delivered, &over);
	if (matched)
		*matched = delivered;
	if (hit)
		*hit = over;
	return err ? err : derr;
}

/* A message from another node (INBOX_REMOTE): for this node's ordinary
 * subscriptions, or for one member of the share group NATS chose this
 * node for. It is stored for the stored sessions it reaches as a local
 * publish would be. */
static void route_remote(struct worker *w, struct inbox_item *it)
{
	struct msg *msg = it->u.remote.msg;
	struct route_matches *m = &w->route_matches;
	enum tern_err err;
	persist_assign_id(w, msg);
	/* A node publishes QoS 1/2 to other nodes only once it has put the
	 * message in the durable queues (or it refuses it), wills aside. */
	msg->durable = msg->qos > 0;
	if (it->u.remote.share) {
		struct tern_bytes group = {it->u.remote.share, it->u.remote.glen};
		struct tern_bytes filter = {it->u.remote.share + it->u.remote.glen,
		                            it->u.remote.flen};
		m->n = 0;
		struct route pick;
		err = router_pick(w->router, filter, group, &pick);
		if (err == TERN_OK) {
			if (m->cap == 0) {
				m->v = malloc(16 * sizeof(*m->v));
				m->cap = m->v ? 16 : 0;
			}
			if (m->cap)
				m->v[m->n++] = pick;
			else
				err = TERN_E_NOMEM;
		} else if (err == TERN_E_NOT_FOUND) {
			/* The group's last member here left meanwhile. */
			stat_add(&w->stats, STAT_DROP_NO_MEMBER, 1);
			err = TERN_OK;
		}
	} else {
		err = router_match_plain(w->router, msg->topic.data, msg->topic.len, m);
	}
	size_t delivered = 0;
	struct flow_hit over = {0};
	enum tern_err derr = deliver_matches(w, msg, &delivered, &over);
	if (err || derr)
		log_write(&w->broker->log, LOG_TYPE_ERR,
		          "Error: out of memory routing a message from the cluster");
	msg_unref(msg);
	free(it->u.remote.share);
}
