/*
 * cluster.h - one ternd node's part of a cluster over NATS (node.c).
 *
 * The node keeps its own subscriptions and delivers its own publishes
 * itself; the cluster adds what crosses nodes (docs/cluster.md):
 * - cluster_forward(): a PUBLISH of a local client goes to NATS on the
 *   subject of its topic (subject.h), as our cross-node message (wire.h);
 * - cluster_interest(): the distinct filters of the local sessions are
 *   NATS subscriptions in the node's queue group, so that a remote message
 *   reaches the node once however many of its filters match; each shared
 *   subscription ($share/G/F) is a subscription in a queue group of (G, F)
 *   common to all nodes, so NATS picks one node per message for the group;
 * - what arrives goes to the broker through the deliver callback.
 *
 * The module knows no broker: the broker gives it callbacks (src/broker/
 * cluster_link.c). Its threads: libnats' own (connection reader, flusher,
 * one message-delivery thread for every subscription, so that messages
 * arrive in the order of the socket) and one control thread of ours that
 * subscribes, flushes and answers the interest callbacks, so no worker ever
 * waits on the network. Every function is safe to call from any thread.
 */
#ifndef TERN_CLUSTER_CLUSTER_H
#define TERN_CLUSTER_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tern/codec.h"
#include "tern/error.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/msg.h"
#include "util/siphash.h"

struct cluster;

/* What the configuration says (the cluster_* directives). */
struct cluster_cfg {
	const char *urls;        /* "nats://h:p[,nats://h:p...]" */
	const char *name;        /* cluster name: prefix of subjects, queues, streams */
	const char *node;        /* this node's name, unique in the cluster */
	unsigned replicas;       /* JetStream replicas of what the cluster stores */
	const char *cafile;      /* TLS to NATS: trusted CAs ("" or NULL: no TLS) */
	const char *certfile;    /* client certificate ("": none) */
	const char *keyfile;     /* its key */
	const char *username;    /* NATS user ("": none) */
	const char *password;    /* its password */
	const char *credentials; /* NATS .creds file ("": none) */
};

/* A message of a shared subscription: the group and the plain filter the
 * NATS subscription stands for (valid during the callback only). */
struct cluster_share {
	struct tern_bytes group;
	struct tern_bytes filter;
};

/* The broker's side. Every callback runs on a thread of the cluster's. */
struct cluster_cb {
	void *arg;
	/* A message from another node (share NULL: for the node's ordinary
	 * subscriptions, shared groups excluded; otherwise for one member of
	 * that group). Takes the caller's reference of m. */
	void (*deliver)(void *arg, struct msg *m, const struct cluster_share *share);
	/* The NATS server now has the interest an add of cluster_interest()
	 * asked for with this token (also when NATS could not be reached: a
	 * subscription is never held back for good). */
	void (*interest_done)(void *arg, uint64_t token);
	/* A retained message of the cluster, or (empty payload) the end of
	 * one, in the order of the cluster's retained stream: every node's
	 * retained store follows it. Takes the caller's reference of m. */
	void (*retained)(void *arg, struct msg *m);
};

/* Counters, read with cluster_stats(). */
struct cluster_stats {
	bool connected;
	uint64_t reconnects;
	uint64_t forwarded;    /* messages sent to NATS */
	uint64_t received;     /* messages taken from NATS */
	uint64_t local_only;   /* not forwarded: NATS down, subject or payload too long */
	uint64_t malformed;    /* received messages that did not decode */
	uint64_t dropped;      /* dropped by libnats as a slow consumer */
	uint64_t interests;    /* NATS subscriptions held */
	uint64_t pending;      /* received by libnats, not yet handed on: the lag */
	bool jetstream;        /* the cluster's streams are set up */
	bool retained_synced;  /* the retained stream was replayed to its end */
	uint64_t retained_in;  /* retained changes taken from the stream */
	uint64_t retained_out; /* retained changes this node stored there */
};

/*
 * Starts the node: checks cfg, connects to NATS (in the background: a node
 * that cannot reach NATS starts anyway and keeps trying), starts the control
 * thread. hk is the per-process hash key (copied), log the broker's log.
 * TERN_E_CONFIG with a message in err when cfg is not usable (a name with
 * characters NATS does not allow, a TLS file that does not load), else
 * TERN_E_NOMEM / TERN_E_SYS.
 */
TERN_MUST_CHECK enum tern_err cluster_open(const struct cluster_cfg *cfg,
                                           const struct cluster_cb *cb, const struct hash_key *hk,
                                           struct log *log, struct cluster **out, char *err,
                                           size_t errlen);

/* Starts the control thread: subscriptions counted so far go to NATS, and
 * the retained stream is set up and replayed (into the retained callback)
 * as soon as JetStream answers. Called once the local store is loaded, so
 * that the stream's word on retained messages comes after the store's.
 * TERN_E_SYS when the thread cannot start. */
TERN_MUST_CHECK enum tern_err cluster_start(struct cluster *c);

/* Stops the threads, closes the connections and frees c (NULL allowed).
 * No callback runs once it returns. */
void cluster_close(struct cluster *c);

/*
 * One more (add) or one fewer local subscription on (filter, group): filter
 * is plain (no "$share/G/" prefix), group.len 0 for an ordinary one. The
 * first add subscribes, the last remove unsubscribes. When an add has a
 * token != 0 and the NATS server may not have the interest yet, sets
 * *pending: interest_done(token) follows. TERN_E_NOMEM when it cannot
 * count (nothing changed).
 */
TERN_MUST_CHECK enum tern_err cluster_interest(struct cluster *c, bool add,
                                               struct tern_bytes filter, struct tern_bytes group,
                                               uint64_t token, bool *pending);

/*
 * Sends a local client's message to the other nodes. scratch is the
 * caller's (one per thread), reused. Returns true when it went to NATS:
 * NATS then picks the member of each shared group (the caller must not
 * deliver to shared groups itself); false when it did not (NATS down, topic
 * or message over NATS' limits): the caller delivers as a single node.
 */
bool cluster_forward(struct cluster *c, const struct msg *m, uint64_t now, struct buf *scratch);

/*
 * Stores m, a retained message a local client published (an empty payload:
 * its removal), in the cluster's retained stream, asynchronously: every
 * node, this one too, then applies it through the retained callback.
 * Returns false when it could not be sent (JetStream not set up yet, NATS
 * down, over NATS' limits): the message is then retained on this node only.
 */
bool cluster_retain(struct cluster *c, const struct msg *m, uint64_t now, struct buf *scratch);

/* This node's name (cluster_node_name, or the host name). */
const char *cluster_node(const struct cluster *c);

/* Reads the counters. */
void cluster_stats(struct cluster *c, struct cluster_stats *out);

#endif
