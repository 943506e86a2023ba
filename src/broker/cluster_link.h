/*
 * cluster_link.h - the broker's side of the cluster (cluster_link.c): opens
 * src/cluster from the cluster_* directives and hands what it receives to
 * the workers.
 */
#ifndef TERN_BROKER_CLUSTER_LINK_H
#define TERN_BROKER_CLUSTER_LINK_H

#include <stdint.h>

#include "tern/codec.h"
#include "tern/error.h"

struct broker;
struct msg;
struct worker;

/* Opens b->cluster when cluster_nats is set (nothing otherwise), after the
 * workers exist (it posts to their inboxes) and before the store is loaded
 * (restored subscriptions count as interest). TERN_E_CONFIG, logged, when
 * the cluster directives are not usable. */
TERN_MUST_CHECK enum tern_err cluster_link_open(struct broker *b);

/* Starts the cluster's control thread once the store is loaded (nothing
 * without a cluster). TERN_E_SYS, logged, when it cannot. */
TERN_MUST_CHECK enum tern_err cluster_link_start(struct broker *b);

/* Stores m, a retained message (or its removal) a client of worker w
 * published, in the cluster's retained stream; logs when it stays local.
 * Nothing without a cluster. */
void cluster_link_retain(struct worker *w, const struct msg *m);

/* Claims client id cid, whose CONNECT worker w accepted, for this node in
 * the cluster (cluster_claim()): returns the claim's stamp, 0 when none
 * went out (no cluster, JetStream not reachable). */
uint64_t cluster_link_claim(struct worker *w, struct tern_bytes cid);

/* Closes b->cluster (none: nothing); no cluster callback runs after it.
 * Called once the broker stops, before the workers' inboxes are drained
 * for the last time. */
void cluster_link_close(struct broker *b);

#endif
