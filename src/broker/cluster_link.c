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
 * and the worker in the token).
 */
#include "broker/cluster_link.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/retain.h"
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

static void on_taken(void *arg, struct tern_bytes cid, uint64_t stamp, bool tie_wins)
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
	/* The session of the client id lives on its home worker. */
	worker_post(b->workers[broker_home_of(b, cid.data, cid.len)], it);
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
	                        .retained = on_retained,
	                        .taken = on_taken};
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
	if (!b->cluster || cluster_start(b->cluster) == TERN_OK)
		return TERN_OK;
	log_write(&b->log, LOG_TYPE_ERR, "Error: cannot start the cluster's thread");
	return TERN_E_SYS;
}

void cluster_link_retain(struct worker *w, const struct msg *m)
{
	struct cluster *cl = w->broker->cluster;
	if (!cl)
		return;
	/* Rare next to publishes: a buffer of its own each time. */
	struct buf out = {0};
	if (!cluster_retain(cl, m, w->now, &out))
		log_write(&w->broker->log, LOG_TYPE_WARNING,
		          "Cluster: retained message on %.*s kept on this node only (JetStream not "
		          "reachable or message over NATS' limits).",
		          (int)m->topic.len, (const char *)m->topic.data);
	buf_free(&out);
}

uint64_t cluster_link_claim(struct worker *w, struct tern_bytes cid)
{
	struct cluster *cl = w->broker->cluster;
	return cl ? cluster_claim(cl, cid) : 0;
}

void cluster_link_close(struct broker *b)
{
	cluster_close(b->cluster);
	b->cluster = NULL;
}
