/*
 * session_durable.c - a persistent session's durable queues in a cluster
 * (docs/cluster.md, "Persistent sessions").
 *
 * In a cluster, a persistent session's QoS 1/2 subscriptions are each a
 * durable queue of JetStream (src/cluster/durable.c): every node puts
 * every QoS 1/2 message there before acknowledging it, so what the session
 * is owed survives the loss of any node, its own included, and follows
 * the client to whichever node it reconnects to. Routing leaves those
 * subscriptions to the queues (ROUTE_DURABLE, route.c), so each message
 * reaches the session once.
 *
 * The node that holds the session binds its queues while the session
 * lives here, online or offline, and a queue's message becomes an ordinary
 * delivery of the session carrying its acknowledgement handle: acked in
 * the queue when the client's PUBACK / PUBCOMP ends its flow, or when the
 * session drops it for good (expired, over the client's packet size);
 * released unacknowledged when the session leaves the node without ending
 * (shutdown), so that the queue delivers it again. The packet id and DUP
 * of such a delivery come from the queue (session_out.c).
 *
 * PUBREL state: the client's PUBREC of a queue's QoS 2 message is recorded
 * in the cluster (cluster_ack_pubrec(), src/cluster/pubrel.c), which then
 * acks the message in its queue. The first bind of a session on a node
 * (after a restart, or on another node) reads the session's entries before
 * its queues deliver anything, and while they come the session gives out
 * no new packet id (one of them may hold it); each becomes an in-flight
 * entry waiting for PUBCOMP, so the client gets PUBREL, not the message
 * again [MQTT-4.3.3-4] [MQTT-4.4.0-1]. A queue message whose entry came
 * back (its ack was lost with the node that stored the entry) is known by
 * its sequence and acked, not delivered.
 *
 * Which subscriptions have a queue: those of a session with an expiry,
 * not shared (shared subscriptions are served by routing: one member
 * cluster-wide per message, at most once across a node's loss), with a
 * QoS above 0, and without No Local (the queue's message does not say who
 * published it; routing knows [MQTT-3.8.3-3]).
 */
#include "broker/session.h"

#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/cluster_link.h"
#include "broker/delivery.h"
#include "broker/router.h"
#include "broker/session_int.h"
#include "broker/worker.h"
#include "cluster/cluster.h"
#include "util/log.h"
#include "util/map.h"
#include "util/msg.h"

bool session_durable_sub(const struct session *s, bool shared, uint8_t qos, uint8_t flags)
{
	return s->w->broker->cluster && s->expiry > 0 && !shared && qos > 0 &&
	       !(flags & ROUTE_NO_LOCAL);
}

bool session_has_queue(const struct session *s, struct tern_bytes filter)
{
	const struct sub *sub = map_get(&s->subs, &s->w->broker->hash_key, filter.data, filter.len);
	return sub && (sub->flags & ROUTE_DURABLE);
}

void session_durable_take(struct session *s, struct tern_bytes filter, struct msg *m,
                          struct cluster_ack *ack)
{
	const struct hash_key *key = &s->w->broker->hash_key;
	struct sub *sub = map_get(&s->subs, key, filter.data, filter.len);
	if (m->qos == 2 && session_pubrel_held(s, cluster_ack_seq(ack))) {
		/* The client gave its PUBREC on the node that stored the PUBREL
		 * entry, which died before the queue had the ack: the entry,
		 * in flight here, stands for it. */
		cluster_ack_done(ack);
		msg_unref(m);
		return;
	}
	if (!sub || !(sub->flags & ROUTE_DURABLE)) {
		/* Unsubscribed meanwhile, now without a queue (QoS 0), or
		 * refused as its queue could not be made (the queue then
		 * may still be an earlier session's, with what it is owed):
		 * left in the queue, which the first two delete anyway, and
		 * which the session no longer binds. */
		cluster_ack_drop(ack);
		msg_unref(m);
		return;
	}
	struct delivery d = {.msg = m,
	                     .qos = m->qos < sub->qos && !s->w->broker->cfg.upgrade_outgoing_qos
	                                    ? m->qos
	                                    : sub->qos,
	                     /* [MQTT-3.3.1-12] [MQTT-3.3.1-13] */
	                     .retain = (sub->flags & ROUTE_RAP) && m->retain,
	                     .ack = ack};
	if (sub->sub_id) {
		d.sub_id = sub->sub_id;
		d.n_sub_ids = 1;
	}
	session_deliver_take(s, &d);
}

void session_durable_bind(struct session *s)
{
	struct cluster *cl = s->w->broker->cluster;
	if (!cl)
		return;
	size_t n = 0, pos = 0;
	struct sub *sub;
	while ((sub = map_next(&s->subs, &pos)))
		n += (sub->flags & ROUTE_DURABLE) != 0;
	if (n == 0) {
		cluster_durable_unbind(cl, s->id);
		return;
	}
	struct tern_bytes *filters = malloc(n * sizeof(*filters));
	if (!filters) {
		log_write(&s->w->broker->log, LOG_TYPE_ERR,
		          "Error: out of memory binding the durable queues of %.*s",
		          (int)s->client_id_len, (const char *)s->client_id);
		return;
	}
	size_t i = 0;
	pos = 0;
	while ((sub = map_next(&s->subs, &pos)))
		if (sub->flags & ROUTE_DURABLE)
			filters[i++] = (struct tern_bytes){sub->filter, sub->len};
	/* The first bind here reads the PUBREL entries the session left on
	 * whichever node held it before; later ones have them already. Out
	 * of memory, the next bind asks again. */
	struct inbox_item *load = s->pubrel_loaded ? NULL : cluster_link_pubrel_item(s->w, s->id);
	if (cluster_durable_bind(cl, s->id, (uint16_t)s->w->id,
	                         (struct tern_bytes){s->client_id, s->client_id_len}, filters, n,
	                         load)) {
		free(load);
		load = NULL;
		log_write(&s->w->broker->log, LOG_TYPE_ERR,
		          "Error: out of memory binding the durable queues of %.*s",
		          (int)s->client_id_len, (const char *)s->client_id);
	}
	if (load)
		s->pubrel_loaded = s->pubrel_wait = true;
	free(filters);
}

void session_durable_pubrels(struct session *s, struct cluster_pubrel *v, size_t n,
                             enum tern_err err)
{
	s->pubrel_wait = false;
	if (err)
		s->pubrel_loaded = false;
	for (size_t i = 0; i < n; i++)
		session_pubrel_restore(s, v[i].packet_id, v[i].ack);
	free(v);
	/* What waited for them goes now. */
	session_pump(s);
}

void session_durable_end(struct session *s, bool ended)
{
	struct cluster *cl = s->w->broker->cluster;
	if (!cl)
		return;
	cluster_durable_unbind(cl, s->id);
	if (!ended)
		return;
	size_t pos = 0;
	struct sub *sub;
	while ((sub = map_next(&s->subs, &pos)))
		if ((sub->flags & ROUTE_DURABLE) &&
		    cluster_durable_del(cl, (struct tern_bytes){s->client_id, s->client_id_len},
		                        (struct tern_bytes){sub->filter, sub->len}))
			log_write(&s->w->broker->log, LOG_TYPE_ERR,
			          "Error: out of memory deleting a durable queue of %.*s",
			          (int)s->client_id_len, (const char *)s->client_id);
}
