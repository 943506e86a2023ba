/*
 * cluster_link.h - the broker's side of the cluster (cluster_link.c): opens
 * src/cluster from the cluster_* directives and hands what it receives to
 * the workers.
 */
#ifndef TERN_BROKER_CLUSTER_LINK_H
#define TERN_BROKER_CLUSTER_LINK_H

#include <stdbool.h>
#include <stdint.h>

#include "tern/codec.h"
#include "tern/error.h"

struct broker;
struct inbox_item;
struct msg;
struct route_batch;
struct session;
struct worker;

/* Opens b->cluster when cluster_nats is set (nothing otherwise), after the
 * workers exist (it posts to their inboxes) and before the store is loaded
 * (restored subscriptions count as interest). TERN_E_CONFIG, logged, when
 * the cluster directives are not usable. */
TERN_MUST_CHECK enum tern_err cluster_link_open(struct broker *b);

/* Starts the cluster's control thread once the store is loaded and before
 * the listeners open (broker_init()), and waits for JetStream (at most
 * CLUSTER_START_WAIT_MS); nothing without a cluster. TERN_E_SYS, logged,
 * when it cannot. */
TERN_MUST_CHECK enum tern_err cluster_link_start(struct broker *b);

/* Stores m, a retained message (or its removal) a client of worker w
 * published, in the cluster's retained stream; logs when it stays local.
 * With hold (a QoS 1/2 PUBLISH), the answers held with w's current ticket
 * wait until the stream has it, and fail when it cannot go: a PUBACK must
 * not promise what the cluster does not keep. Nothing without a cluster. */
void cluster_link_retain(struct worker *w, const struct msg *m, bool hold);

/* Claims client id cid, whose CONNECT worker w accepted, for this node in
 * the cluster (cluster_claim()): returns the claim's stamp, 0 when none
 * went out (no cluster, JetStream not reachable). clean: the CONNECT has
 * clean start, which ends the session on the node that held it. */
uint64_t cluster_link_claim(struct worker *w, struct tern_bytes cid, bool clean);
/* Puts m, a QoS 1/2 message a client of w published, in the cluster's
 * durable queues; the answers held with w's current ticket wait until
 * JetStream has it (persist_cluster_hold()). Marks m durable. false when it
 * cannot be stored now (JetStream not reachable): refuse the message. */
bool cluster_link_store(struct worker *w, struct msg *m);

/* What a SUBSCRIBE / UNSUBSCRIBE of s on plain filter changes in the
 * cluster's durable queues: the queue made (durable; with batch not NULL
 * the batch's answer waits for JetStream, and when the queue cannot be
 * made the ack carries the filter to refuse: route.h's refused call;
 * NULL for a queue that exists already, updated when JetStream answers)
 * or deleted (not durable).
 * Sets *rebind: s's queues are to be bound again once the packet is done
 * (session_durable_bind()). Nothing for a session without an expiry. */
void cluster_link_durable(struct worker *w, struct route_batch *batch, struct session *s,
                          struct tern_bytes filter, bool durable, bool *rebind);

/* Handles INBOX_DURABLE: the message goes to its session, or back to its
 * queue when the session is gone. Frees what the item owns, not the item. */
void cluster_link_durable_take(struct worker *w, struct inbox_item *it);

/* A new item for the PUBREL entries of session s (its first bind here,
 * cluster_durable_bind()'s load): the cluster fills it in and posts it to
 * s's worker as INBOX_PUBREL. NULL when out of memory. */
struct inbox_item *cluster_link_pubrel_item(struct worker *w, uint64_t session);

/* Handles INBOX_PUBREL: the entries go to their session, or, when it is
 * gone, stay in the cluster for whoever binds next. Frees what the item
 * owns, not the item. */
void cluster_link_pubrels_take(struct worker *w, struct inbox_item *it);

/* A clean start of client id cid: deletes its durable queues in the
 * cluster, whichever node made them (nothing without a cluster). */
void cluster_link_forget(struct worker *w, struct tern_bytes cid);

/* cluster_link_store() for a will, which no acknowledgement waits for. */
void cluster_link_store_will(struct worker *w, struct msg *will);

/* Closes b->cluster (none: nothing); no cluster callback runs after it.
 * Called once the broker stops, before the workers' inboxes are drained
 * for the last time. */
void cluster_link_close(struct broker *b);

#endif
