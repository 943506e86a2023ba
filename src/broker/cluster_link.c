/*
 * cluster_link.c - the broker's side of the cluster module (cluster.h):
 * opens it from the configuration, and turns its callbacks into inbox
 * items for the workers.
 *
 * A message from another node goes to worker hash(topic) mod N, so the
 * messages of one topic keep their order (they come off one NATS
 * delivery thread in order, and one worker handles them in order). It
 * counts in that worker's backlog like a batch of deliveries, and QoS 0
 * is dropped, as for a slow consumer, while the worker is that far behind:
 * NATS cannot be told to slow down, so the bound has to be here.
 *
 * Retained messages of the cluster come from its stream on a cluster
 * thread and go straight into the broker's retained store, which has its
 * own lock: no worker needs to see them.
 *
 * Another node's claim of a client id (clients.c) goes to the client id's
 * home worker, which holds its session (connect_cluster_taken()).
 *
 * An interest the NATS server has confirmed is an ack of the route
 * batch that waited for it (route.c's count_interest() put the request id
 * and the worker in the token); a durable queue made for a SUBSCRIBE
 * answers the same way, and one that could not be made is an ack that
 * carries the filter to refuse (the batch's refused call).
 *
 * A QoS 1/2 message a client publishes goes into the cluster's durable
 * queues (and a retained one into the retained stream) with a token of the
 * worker's persist ticket: its acknowledgement is held until JetStream's
 * answer comes back as INBOX_CLUSTER_STORED (persist_cluster_done()). A
 * durable queue's message goes to the home worker of its session as
 * INBOX_DURABLE, and back to the queue (unacknowledged) when the session
 * is gone.
 */
#include "broker/cluster_link.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/persist.h"
#include "broker/retain.h"
#include "broker/route.h"
#include "broker/session.h"
#include "broker/worker.h"
#include "cluster/cluster.h"
#include "util/log.h"
#include "util/siphash.h"

static void on_deliver(void *arg, struct msg *m, const struct cluster_share *share)
{
	struct broker *b = arg;
	if (atomic_load_explicit(&b->stop, memory_order_relaxed)) {
		msg_unref(m);
		return;
	}
	uint64_t h = siphash24(&b->hash_key, m->topic.data, m->topic.len);
	struct worker *w = b->workers[h % b->n_workers];
	if (m->qos == 0 &&
	    atomic_load_explicit(&w->backlog, memory_order_relaxed) > WORKER_BACKLOG_MAX) {
		cluster_count_drop(b->cluster);
		msg_unref(m);
		return;
	}
	struct inbox_item *it = calloc(1, sizeof(*it));
	uint8_t *copy = NULL;
	if (it && share) {
		copy = malloc(share->group.len + share->filter.len);
		if (copy) {
			memcpy(copy, share->group.data, share->group.len);
			memcpy(copy + share->group.len, share->filter.data, share->filter.len);
		}
	}
	if (!it || (share && !copy)) {
		free(it);
		msg_unref(m);
		log_write(&b->log, LOG_TYPE_ERR,
		          "Error: out of memory taking a message from the cluster");
		return;
	}
	it->kind = INBOX_REMOTE;
	it->u.remote.msg = m;
	it->u.remote.share = copy;
	if (share) {
		it->u.remote.glen = (uint16_t)share->group.len;
		it->u.remote.flen = (uint32_t)share->filter.len;
	}
	atomic_fetch_add_explicit(&w->backlog, 1, memory_order_relaxed);
	worker_post(w, it);
}

static void on_interest_done(void *arg, uint64_t token)
{
	struct broker *b = arg;
	unsigned id = (unsigned)(token & 0xffffu);
	if (id >= b->n_workers || atomic_load_explicit(&b->stop, memory_order_relaxed))
		return;
	struct inbox_item *it = calloc(1, sizeof(*it));
	if (!it) {
		/* The SUBACK then never goes: say why. */
		log_write(&b->log, LOG_TYPE_ERR, "Error: out of memory acking a subscription");
		return;
	}
	it->kind = INBOX_ROUTE_ACK;
	it->u.ack.req = token >> 16;
	worker_post(b->workers[id], it);
}

/* A durable queue a SUBSCRIBE waited for (cluster_link_durable()): made,
 * or not, when the subscription is to be refused (handle_subscribe.c
 * undoes it through the batch's refused call). */
static void on_queue_made(void *arg, uint64_t token, struct tern_bytes filter, enum tern_err err)
{
	struct broker *b = arg;
	unsigned id = (unsigned)(token & 0xffffu);
	if (id >= b->n_workers || atomic_load_explicit(&b->stop, memory_order_relaxed))
		return;
	struct inbox_item *it = calloc(1, sizeof(*it));
	uint8_t *copy = it && err ? malloc(filter.len ? filter.len : 1) : NULL;
	if (!it || (err && !copy)) {
		/* The SUBACK then never goes (or would grant what the
		 * cluster does not keep): say why. */
		free(it);
		log_write(&b->log, LOG_TYPE_ERR, "Error: out of memory answering a subscription");
		return;
	}
	if (copy) {
		memcpy(copy, filter.data, filter.len);
		it->u.ack.refused = copy;
		it->u.ack.rlen = (uint32_t)filter.len;
	}
	it->kind = INBOX_ROUTE_ACK;
	it->u.ack.req = token >> 16;
	worker_post(b->workers[id], it);
}

static void on_taken(void *arg, struct tern_bytes cid, uint64_t stamp, bool tie_wins, bool clean)
{
	struct broker *b = arg;
	if (atomic_load_explicit(&b->stop, memory_order_relaxed))
		return;
	struct inbox_item *it = calloc(1, sizeof(*it));
	uint8_t *copy = it ? malloc(cid.len) : NULL;
	if (!copy) {
		free(it);
		log_write(&b->log, LOG_TYPE_ERR,
		          "Error: out of memory taking a client id claim from the cluster");
		return;
	}
	memcpy(copy, cid.data, cid.len);
	it->kind = INBOX_CLAIM;
	it->u.claim.cid = copy;
	it->u.claim.len = (uint16_t)cid.len;
	it->u.claim.stamp = stamp;
	it->u.claim.tie_wins = tie_wins;
	it->u.claim.clean = clean;
	/* The session of the client id lives on its home worker. */
	worker_post(b->workers[broker_home_of(b, cid.data, cid.len)], it);
}

/* The token of a cluster store: the worker's persist ticket and its id. */
static void on_stored(void *arg, uint64_t token, enum tern_err err)
{
	struct broker *b = arg;
	unsigned id = (unsigned)(token & 0xffffu);
	/* Token 0: a will, which nobody waits for. */
	if (!token || id >= b->n_workers || atomic_load_explicit(&b->stop, memory_order_relaxed))
		return;
	struct inbox_item *it = calloc(1, sizeof(*it));
	if (!it) {
		/* The answers of that ticket then never go: say why. */
		log_write(&b->log, LOG_TYPE_ERR,
		          "Error: out of memory taking the cluster's store result");
		return;
	}
	if (err)
		log_write(&b->log, LOG_TYPE_WARNING,
		          "Cluster: JetStream did not store a QoS 1/2 message (%s); its PUBACK / "
		          "PUBREC says so",
		          tern_strerror(err));
	it->kind = INBOX_CLUSTER_STORED;
	it->u.done.b = b;
	it->u.done.w = b->workers[id];
	it->u.done.ticket = token >> 16;
	it->u.done.err = err;
	worker_post(b->workers[id], it);
}

/* What one durable queue may hand a session at most, unacknowledged,
 * when its queue has no bound. */
#define DURABLE_HOLD_MAX 100000u

static void on_durable(void *arg, uint64_t session, uint16_t home, struct tern_bytes filter,
                       struct msg *m, struct cluster_ack *ack)
{
	struct broker *b = arg;
	struct inbox_item *it = NULL;
	uint8_t *copy = NULL;
	if (home < b->n_workers && !atomic_load_explicit(&b->stop, memory_order_relaxed)) {
		it = calloc(1, sizeof(*it));
		copy = malloc(filter.len ? filter.len : 1);
	}
	if (!it || !copy) {
		/* Not taken: the queue delivers it again. */
		free(it);
		free(copy);
		cluster_ack_drop(ack);
		msg_unref(m);
		return;
	}
	memcpy(copy, filter.data, filter.len);
	it->kind = INBOX_DURABLE;
	it->u.durable.session = session;
	it->u.durable.msg = m;
	it->u.durable.ack = ack;
	it->u.durable.filter = copy;
	it->u.durable.flen = (uint32_t)filter.len;
	worker_post(b->workers[home], it);
}

void cluster_link_durable_take(struct worker *w, struct inbox_item *it)
{
	struct session *s = atomic_load_explicit(&w->broker->stop, memory_order_relaxed)
	                            ? NULL
	                            : session_by_id(w, it->u.durable.session);
	if (s) {
		session_durable_take(s,
		                     (struct tern_bytes){it->u.durable.filter, it->u.durable.flen},
		                     it->u.durable.msg, it->u.durable.ack);
	} else {
		/* The session left (or the broker stops): delivered again to
		 * whoever binds its queue next. */
		cluster_ack_drop(it->u.durable.ack);
		msg_unref(it->u.durable.msg);
	}
	free(it->u.durable.filter);
}

struct inbox_item *cluster_link_pubrel_item(struct worker *w, uint64_t session)
{
	struct inbox_item *it = calloc(1, sizeof(*it));
	if (!it)
		return NULL;
	it->kind = INBOX_PUBREL;
	it->u.pubrel.session = session;
	it->u.pubrel.home = (uint16_t)w->id;
	return it;
}

/* The cluster read the entries a bind asked for (load: the item of
 * cluster_link_pubrel_item()). Always posted, even at stop: the worker
 * drains it and the session stops waiting for it. */
static void on_pubrels(void *arg, void *load, struct cluster_pubrel *v, size_t n, enum tern_err err)
{
	struct broker *b = arg;
	struct inbox_item *it = load;
	it->u.pubrel.v = v;
	it->u.pubrel.n = n;
	it->u.pubrel.err = err;
	worker_post(b->workers[it->u.pubrel.home], it);
}

void cluster_link_pubrels_take(struct worker *w, struct inbox_item *it)
{
	struct session *s = atomic_load_explicit(&w->broker->stop, memory_order_relaxed)
	                            ? NULL
	                            : session_by_id(w, it->u.pubrel.session);
	if (s) {
		session_durable_pubrels(s, it->u.pubrel.v, it->u.pubrel.n, it->u.pubrel.err);
		return;
	}
	/* The session left: its entries stay for whoever binds next. */
	for (size_t i = 0; i < it->u.pubrel.n; i++)
		cluster_ack_drop(it->u.pubrel.v[i].ack);
	free(it->u.pubrel.v);
}

void cluster_link_durable(struct worker *w, struct route_batch *batch, struct session *s,
                          struct tern_bytes filter, bool durable, bool *rebind)
{
	struct cluster *cl = w->broker->cluster;
	/* A session without an expiry never has queues. */
	if (!cl || session_expiry(s) == 0)
		return;
	struct tern_bytes cid = session_client_id(s);
	enum tern_err err;
	if (durable) {
		bool pending = false;
		uint64_t token = batch ? batch->req << 16 | w->id : 0;
		/* JetStream hands the session at most what it may hold here:
		 * its window and its queue, whose bounds then apply as on one
		 * node (what a full queue drops is acknowledged as dropped). */
		const struct config *cfg = &w->broker->cfg;
		uint64_t hold = cfg->max_queued_messages ? (uint64_t)cfg->max_inflight_messages +
		                                                   cfg->max_queued_messages
		                                         : DURABLE_HOLD_MAX;
		err = cluster_durable_add(
		        cl, cid, filter,
		        (uint32_t)(hold < DURABLE_HOLD_MAX ? hold : DURABLE_HOLD_MAX), token,
		        &pending);
		if (!err && pending && batch)
			batch->outstanding++;
	} else {
		/* The queue it may have had (QoS 0 now, or unsubscribed). */
		err = cluster_durable_del(cl, cid, filter);
	}
	if (err)
		log_write(&w->broker->log, LOG_TYPE_ERR,
		          "Error: the durable queue of %.*s for '%.*s' could not be %s (%s)",
		          (int)cid.len, (const char *)cid.data, (int)filter.len,
		          (const char *)filter.data, durable ? "made" : "deleted",
		          tern_strerror(err));
	*rebind = true;
}

/* The record a parked CONNECT waits for (cluster.h, session_found): to
 * the worker in the token, the client id's home, which took the CONNECT.
 * Out of memory the connection is told the lookup failed, so that it is
 * refused rather than left waiting. */
static void on_session_found(void *arg, uint64_t token, struct tern_bytes cid, const uint8_t *rec,
                             size_t len, enum tern_err err)
{
	(void)cid;
	struct broker *b = arg;
	unsigned id = (unsigned)(token & 0xffffu);
	if (id >= b->n_workers || atomic_load_explicit(&b->stop, memory_order_relaxed))
		return;
	struct inbox_item *it = calloc(1, sizeof(*it));
	if (!it) {
		log_write(&b->log, LOG_TYPE_ERR,
		          "Error: out of memory answering a session lookup; the CONNECT waits "
		          "until its deadline");
		return;
	}
	it->kind = INBOX_SESSION_FOUND;
	it->u.found.conn = token >> 16;
	it->u.found.err = err;
	if (rec) {
		it->u.found.rec = malloc(len ? len : 1);
		if (it->u.found.rec) {
			memcpy(it->u.found.rec, rec, len);
			it->u.found.len = (uint32_t)len;
		} else {
			it->u.found.err = TERN_E_NOMEM;
		}
	}
	worker_post(b->workers[id], it);
}

/* A dead node's session this node adopted (cluster.h, adopt): built on
 * the client id's home worker. */
static void on_adopt(void *arg, struct tern_bytes cid, const uint8_t *rec, size_t len)
{
	struct broker *b = arg;
	if (atomic_load_explicit(&b->stop, memory_order_relaxed))
		return;
	struct inbox_item *it = calloc(1, sizeof(*it));
	uint8_t *id = it ? malloc(cid.len ? cid.len : 1) : NULL;
	uint8_t *copy = id ? malloc(len ? len : 1) : NULL;
	if (!copy) {
		free(id);
		free(it);
		log_write(&b->log, LOG_TYPE_ERR,
		          "Error: out of memory adopting the session of %.*s from a dead node",
		          (int)cid.len, (const char *)cid.data);
		return;
	}
	memcpy(id, cid.data, cid.len);
	memcpy(copy, rec, len);
	it->kind = INBOX_ADOPT;
	it->u.adopt.cid = id;
	it->u.adopt.len = (uint16_t)cid.len;
	it->u.adopt.rec = copy;
	it->u.adopt.rec_len = (uint32_t)len;
	worker_post(b->workers[broker_home_of(b, cid.data, cid.len)], it);
}

/* A cid's client id and stamp, to its home worker as kind. */
static void post_claimed(struct broker *b, enum inbox_kind kind, struct tern_bytes cid,
                         uint64_t stamp)
{
	struct inbox_item *it = calloc(1, sizeof(*it));
	uint8_t *copy = it ? malloc(cid.len ? cid.len : 1) : NULL;
	if (!copy) {
		free(it);
		log_write(&b->log, LOG_TYPE_ERR,
		          "Error: out of memory: the session of %.*s may be held by two nodes",
		          (int)cid.len, (const char *)cid.data);
		return;
	}
	memcpy(copy, cid.data, cid.len);
	it->kind = kind;
	it->u.claim.cid = copy;
	it->u.claim.len = (uint16_t)cid.len;
	it->u.claim.stamp = stamp;
	worker_post(b->workers[broker_home_of(b, cid.data, cid.len)], it);
}

/* This node was counted dead while cut off, and another node holds cid's
 * session, with claim stamp claim (cluster.h, rejoined): on the home
 * worker, the session is taken back or its stale copy goes. */
static void on_rejoined(void *arg, struct tern_bytes cid, uint64_t claim)
{
	struct broker *b = arg;
	if (!atomic_load_explicit(&b->stop, memory_order_relaxed))
		post_claimed(b, INBOX_REJOINED, cid, claim);
}

/* At start, another node holds client id cid's session (cluster.h,
 * held_elsewhere): a copy restored from the store goes, on the home
 * worker. */
static void on_held_elsewhere(void *arg, struct tern_bytes cid)
{
	struct broker *b = arg;
	if (!atomic_load_explicit(&b->stop, memory_order_relaxed))
		post_claimed(b, INBOX_HELD_ELSEWHERE, cid, 0);
}

static void on_retained(void *arg, struct msg *m)
{
	struct broker *b = arg;
	if (retain_set(b->retain, m))
		log_write(&b->log, LOG_TYPE_ERR, "Error: out of memory keeping a retained message");
	msg_unref(m);
}

enum tern_err cluster_link_open(struct broker *b)
{
	const struct config *cfg = &b->cfg;
	if (!cfg->cluster_nats[0])
		return TERN_OK;
	char host[128] = "";
	const char *node = cfg->cluster_node_name;
	if (!node[0]) {
		if (gethostname(host, sizeof(host) - 1) != 0) {
			log_write(&b->log, LOG_TYPE_ERR,
			          "Error: cluster_node_name is not set and the host name is "
			          "unknown: %s",
			          strerror(errno));
			return TERN_E_CONFIG;
		}
		node = host;
	}
	struct cluster_cfg cc = {.urls = cfg->cluster_nats,
	                         .name = cfg->cluster_name,
	                         .node = node,
	                         .replicas = cfg->cluster_replicas,
	                         .cafile = cfg->cluster_cafile,
	                         .certfile = cfg->cluster_certfile,
	                         .keyfile = cfg->cluster_keyfile,
	                         .username = cfg->cluster_username,
	                         .password = cfg->cluster_password,
	                         .credentials = cfg->cluster_credentials};
	struct cluster_cb cb = {.arg = b,
	                        .deliver = on_deliver,
	                        .interest_done = on_interest_done,
	                        .queue_made = on_queue_made,
	                        .retained = on_retained,
	                        .taken = on_taken,
	                        .session_found = on_session_found,
	                        .held_elsewhere = on_held_elsewhere,
	                        .rejoined = on_rejoined,
	                        .stored = on_stored,
	                        .durable = on_durable,
	                        .pubrels = on_pubrels,
	                        .adopt = on_adopt};
	char why[512] = "";
	enum tern_err err =
	        cluster_open(&cc, &cb, &b->hash_key, &b->log, &b->cluster, why, sizeof(why));
	if (err) {
		log_write(&b->log, LOG_TYPE_ERR, "Error: %s", why[0] ? why : tern_strerror(err));
		return err;
	}
	log_write(&b->log, LOG_TYPE_NOTICE, "Cluster %s: node %s, NATS at %s.", cfg->cluster_name,
	          node, cfg->cluster_nats);
	return TERN_OK;
}

enum tern_err cluster_link_start(struct broker *b)
{
	if (!b->cluster)
		return TERN_OK;
	/* Sessions restored from the store take their queues' messages
	 * here (the workers do not run yet). */
	for (unsigned i = 0; i < b->n_workers; i++) {
		size_t pos = 0;
		struct session *s;
		while ((s = session_next(b->workers[i], &pos)))
			session_durable_bind(s);
	}
	if (cluster_start(b->cluster) == TERN_OK)
		return TERN_OK;
	log_write(&b->log, LOG_TYPE_ERR, "Error: cannot start the cluster's thread");
	return TERN_E_SYS;
}

void cluster_link_retain(struct worker *w, const struct msg *m, bool hold)
{
	struct cluster *cl = w->broker->cluster;
	if (!cl)
		return;
	uint64_t ticket = hold ? persist_cluster_hold(w) : 0;
	if (cluster_retain(cl, m, w->now, route_cluster_scratch(w),
	                   ticket ? ticket << 16 | w->id : 0))
		return;
	/* Not kept cluster-wide: an acknowledgement waiting for it says so
	 * (v5 0x80, a 3.1.1 close), rather than promise it. */
	if (ticket)
		persist_cluster_done(w, ticket, TERN_E_SYS);
	log_write(&w->broker->log, LOG_TYPE_WARNING,
	          "Cluster: retained message on %.*s kept on this node only (JetStream not "
	          "reachable or message over NATS' limits).",
	          (int)m->topic.len, (const char *)m->topic.data);
}

uint64_t cluster_link_claim(struct worker *w, struct tern_bytes cid, bool clean)
{
	struct cluster *cl = w->broker->cluster;
	return cl ? cluster_claim(cl, cid, clean) : 0;
}

void cluster_link_forget(struct worker *w, struct tern_bytes cid)
{
	struct cluster *cl = w->broker->cluster;
	if (cl && cluster_durable_forget(cl, cid))
		log_write(&w->broker->log, LOG_TYPE_ERR,
		          "Error: the durable queues of %.*s could not be deleted", (int)cid.len,
		          (const char *)cid.data);
}

bool cluster_link_store(struct worker *w, struct msg *m)
{
	struct cluster *cl = w->broker->cluster;
	uint64_t ticket = persist_cluster_hold(w);
	if (!ticket)
		return false;
	if (!cluster_store(cl, m, w->now, route_cluster_scratch(w), ticket << 16 | w->id)) {
		persist_cluster_done(w, ticket, TERN_OK);
		return false;
	}
	m->durable = true;
	return true;
}

void cluster_link_store_will(struct worker *w, struct msg *will)
{
	if (cluster_store(w->broker->cluster, will, w->now, route_cluster_scratch(w), 0))
		will->durable = true;
	else
		log_write(
		        &w->broker->log, LOG_TYPE_WARNING,
		        "Cluster: a will on %.*s could not go into the durable queues; persistent "
		        "sessions on other nodes may miss it.",
		        (int)will->topic.len, (const char *)will->topic.data);
}

void cluster_link_close(struct broker *b)
{
	cluster_close(b->cluster);
	b->cluster = NULL;
}
