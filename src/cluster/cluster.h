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
 * - cluster_claim(): a client id is unique in the cluster [MQTT-3.1.4-3]:
 *   the node that accepts a CONNECT claims the id in a key-value bucket,
 *   every node hears of every claim, and the newest claim keeps the id
 *   (clients.c);
 * - cluster_session_*(): the record of each session (session_record.h) in
 *   a key-value bucket, so that it resumes on any node (sessions.c);
 * - what arrives goes to the broker through the deliver callback.
 *
 * The module knows no broker: the broker gives it callbacks (src/broker/
 * cluster_link.c). Its threads: libnats' own (connection reader, flusher,
 * one message-delivery thread for every subscription, so that messages
 * arrive in the order of the socket), one control thread of ours that
 * subscribes, flushes and answers the interest callbacks, and one queue
 * thread for the durable queues' JetStream requests (durable.c), so no
 * worker ever waits on the network and no SUBACK waits behind JetStream
 * unless it waits for its own queue. Every function is safe to call from any thread.
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
/* The ack handle of one durable message (durable.c): opaque. */
struct cluster_ack;

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

/* A PUBREL entry of a session (cluster_durable_bind() with load): the
 * packet id whose PUBREC the client gave, on whichever node, and a handle
 * for it (cluster_ack_seq(): the queue message it was; cluster_ack_done()
 * deletes the entry, cluster_ack_drop() keeps it for the next binder). */
struct cluster_pubrel {
	uint16_t packet_id;
	struct cluster_ack *ack;
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
	 * subscription is never held back for good; what it misses meanwhile
	 * is QoS 0 or at most once anyway). */
	void (*interest_done)(void *arg, uint64_t token);
	/* The answer to a cluster_durable_add() with a token: TERN_OK once
	 * JetStream has the durable queue; TERN_E_SYS when it could not be
	 * made (JetStream not reachable, a refusal, no answer within
	 * CLUSTER_QUEUE_WAIT_MS): what is published meanwhile is not kept
	 * for the subscription, which must then be refused. filter is the
	 * add's (valid during the call). */
	void (*queue_made)(void *arg, uint64_t token, struct tern_bytes filter, enum tern_err err);
	/* A retained message of the cluster, or (empty payload) the end of
	 * one, in the order of the cluster's retained stream: every node's
	 * retained store follows it. Takes the caller's reference of m. */
	void (*retained)(void *arg, struct msg *m);
	/* The result of cluster_store() for token: TERN_OK once JetStream
	 * holds the message with its replicas, else the error (TERN_E_SYS:
	 * JetStream refused it or did not answer within CLUSTER_STORE_WAIT_MS;
	 * the message must then not be acknowledged as stored). */
	void (*stored)(void *arg, uint64_t token, enum tern_err err);
	/* A message of a durable queue bound with cluster_durable_bind(): the
	 * session and home given there, filter the subscription (valid during
	 * the call). Takes the caller's reference of m and the ack
	 * handle, which the broker ends with cluster_ack_done() or
	 * cluster_ack_drop(). May still come briefly after
	 * cluster_durable_unbind(session): the broker drops it then (it is
	 * redelivered to whoever binds next). */
	void (*durable)(void *arg, uint64_t session, uint16_t home, struct tern_bytes filter,
	                struct msg *m, struct cluster_ack *ack);
	/* The PUBREL entries of a session bound with cluster_durable_bind()
	 * and load != NULL, in the order they were stored, before any
	 * message of its queues: exactly once per such bind, with err
	 * TERN_E_SYS and no entry when JetStream did not answer (or at
	 * cluster_close()). load is the bind's; takes v (malloc'd; NULL when
	 * n is 0) and its handles. */
	void (*pubrels)(void *arg, void *load, struct cluster_pubrel *v, size_t n,
	                enum tern_err err);
	/* Another node claimed client_id (valid during the call) with this
	 * stamp (cluster_claim()): the local connection and session of
	 * client_id end when their claim is older: a smaller stamp, or the
	 * same one and tie_wins (the other node's name sorts after ours).
	 * Every node compares the same pairs, so of concurrent claims one
	 * wins everywhere. clean: the claim's CONNECT asked for a clean
	 * start, so the session ends for good, its record in the sessions
	 * bucket with it (cluster_session_del()). NULL: not told. */
	void (*taken)(void *arg, struct tern_bytes client_id, uint64_t stamp, bool tie_wins,
	              bool clean);
	/* The answer of cluster_session_get(token) for client_id (valid
	 * during the call): rec[0..len) the record (session_record.h;
	 * valid during the call, not yet decoded), or rec NULL with err
	 * TERN_OK when the bucket has none, or rec NULL with err TERN_E_SYS
	 * (JetStream not reachable) / TERN_E_TIMEOUT (no answer within the
	 * bound) when it could not be looked up. On the sessions thread. */
	void (*session_found)(void *arg, uint64_t token, struct tern_bytes client_id,
	                      const uint8_t *rec, size_t len, enum tern_err err);
	/* This node adopted a session of a dead node (adopt.c): rec[0..len)
	 * is its record (session_record.h) as now in the sessions bucket,
	 * with this node as the holder, offline since the node died (or
	 * since it went offline before); client_id its client id. Both valid
	 * during the call, on the nodes thread. Exactly one node of the
	 * cluster is told of a given adoption. The broker keeps the session
	 * offline: its will goes after its delay and the session expires
	 * after its interval, both counted from that offline time. NULL:
	 * not told. */
	void (*adopt)(void *arg, struct tern_bytes client_id, const uint8_t *rec, size_t len);
	/* At start, client_id's record names another node as its holder:
	 * the session went there while this node was down (adopted after
	 * this node left or died), so a copy this node restored from its
	 * own store is stale. On the nodes thread. NULL: not told. */
	void (*held_elsewhere)(void *arg, struct tern_bytes client_id);
	/* After this node was cut off from NATS long enough to be counted
	 * dead, client_id's record names another node as its holder, with
	 * claim stamp claim: the holder adopted it (an adopted record keeps
	 * the stamp of the claim it was adopted from) or the client claimed
	 * it there since. A session this node still has with that claim is
	 * its own again (a new claim takes it back: its connection never
	 * left); any other copy here is stale. On the nodes thread. NULL:
	 * not told. */
	void (*rejoined)(void *arg, struct tern_bytes client_id, uint64_t claim);
};

/* How often a node puts its heartbeat in the nodes bucket. */
#define CLUSTER_NODE_BEAT_MS 1000u
/* How long a node's heartbeat may be missing before it is dead: three
 * missed beats and a second of slack (a loaded machine, a JetStream
 * write that took a while), short enough that the wills of its clients go
 * within a few seconds of its death. A node declares nobody dead while
 * its own beats do not come back (JetStream stalled). */
#define CLUSTER_NODE_DEAD_MS 4000u
/* How soon acting for a dead node is tried again after a failure. */
#define CLUSTER_NODE_RETRY_MS 2000u

/* How long JetStream waits for the ack of a durable message before it
 * delivers it again (to the session's binder then, on any node): the
 * broker calls cluster_ack_progress() for a message it holds longer. */
#define CLUSTER_ACK_WAIT_MS 3000
/* How often a message held unacknowledged (queued or in flight in its
 * session) is reported in progress, so that JetStream does not deliver it
 * again while this node still has it: well within CLUSTER_ACK_WAIT_MS. */
#define CLUSTER_ACK_KEEP_MS 1000
/* How long cluster_store() waits for JetStream's answer before it reports
 * a failure. */
#define CLUSTER_STORE_WAIT_MS 10000
/* How long a cluster_durable_add() with a token may wait, from the call,
 * for its turn on the queue thread before it is answered as failed
 * (plus at most one JetStream request under way then). */
#define CLUSTER_QUEUE_WAIT_MS 10000

/* Counters, read with cluster_stats(). */
struct cluster_stats {
	bool connected;
	uint64_t reconnects;
	uint64_t forwarded;         /* messages sent to NATS */
	uint64_t received;          /* messages taken from NATS */
	uint64_t local_only;        /* not forwarded: NATS down, subject or payload too long */
	uint64_t malformed;         /* received messages that did not decode */
	uint64_t dropped;           /* dropped as a slow consumer: by libnats, or by
	                             * the broker for a worker that far behind */
	uint64_t interests;         /* NATS subscriptions held */
	uint64_t pending;           /* received by libnats, not yet handed on: the lag */
	bool jetstream;             /* the cluster's streams are set up */
	bool retained_synced;       /* the retained stream was replayed to its end */
	uint64_t retained_in;       /* retained changes taken from the stream */
	uint64_t retained_out;      /* retained changes this node stored there */
	uint64_t stored_ok;         /* cluster_store() messages JetStream confirmed */
	uint64_t stored_failed;     /* refused, or not answered in time */
	uint64_t durable_delivered; /* durable messages handed to the broker */
	uint64_t durable_acked;     /* of them, acked with cluster_ack_done() */
	uint64_t durables;          /* durable queue bindings (subscriptions) held */
	uint64_t pubrel_stored;     /* PUBREL entries JetStream confirmed */
	uint64_t pubrel_failed;     /* entries refused or not answered, deletes refused */
	uint64_t pubrel_loaded;     /* entries handed to sessions at a bind */
	uint64_t pubrel_deleted;    /* entries deleted (confirmed) */
	uint64_t acks_confirmed;    /* queue acks JetStream confirmed (QoS 2, entries) */
	uint64_t redeliveries_held; /* deliveries again of messages this node held or
	                             * had completed: not delivered twice */
	uint64_t settle_given_up;   /* completed QoS 2 messages whose ack JetStream
	                             * never confirmed (let go after 60 s) */
	uint64_t claims;            /* client ids this node claimed in the bucket */
	uint64_t claims_seen;       /* claims of other nodes heard of */
	uint64_t taken_over;        /* local sessions ended by another node's claim */
	uint64_t live_nodes;        /* nodes alive, this one included (nodes.c) */
	uint64_t nodes_handled;     /* dead nodes this node acted for */
	uint64_t session_writes;    /* session records written or deleted */
	uint64_t session_reads;     /* session records looked up */
	uint64_t session_conflicts; /* writes that found another node's write first */
	uint64_t session_stale;     /* of ours, dropped: another node's claim is newer */
	uint64_t adopted;           /* sessions of dead nodes this node adopted */
	uint64_t adopt_lost;        /* ... that another node wrote first */
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
 * the streams are set up and the retained one replayed (into the retained
 * callback) as soon as JetStream answers; waits for that, at most
 * CLUSTER_START_WAIT_MS, before the broker serves clients. Called once the
 * local store is loaded, so that the stream's word on retained messages
 * comes after the store's. TERN_E_SYS when the thread cannot start. */
#define CLUSTER_START_WAIT_MS 10000u
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

/* Whether topic t is the node's own and never crosses nodes: $SYS and
 * $SYS/..., mosquitto's meaning of them. */
bool cluster_topic_local(struct tern_bytes t);

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
 * node, this one too, then applies it through the retained callback, and
 * stored(token) says when the stream has it (token 0: nobody waits).
 * Returns false when it could not be sent (JetStream not set up yet, NATS
 * down, over NATS' limits): the message is then retained on this node only.
 */
bool cluster_retain(struct cluster *c, const struct msg *m, uint64_t now, struct buf *scratch,
                    uint64_t token);

/*
 * Durable queues (durable.c; docs/cluster.md). A QoS 1/2 message of a
 * local client goes to the stream "<cluster>_msgs" (subjects
 * "<cluster>.q.>", interest retention: a message stays while a durable
 * consumer it matches has not acked it); each subscription with QoS >= 1
 * of a persistent session has a durable consumer there, found by any node
 * by its name, a hash of (cluster, client id, filter); the node where the
 * client is online binds the session's consumers and hands their messages
 * to the broker with an ack handle.
 */

/*
 * Stores m, a QoS 1/2 message of a local client, in the messages stream,
 * asynchronously: stored(token, err) follows on a cluster thread. scratch
 * as for cluster_forward(). Returns false at once, with no callback, when
 * it cannot go (JetStream not set up, NATS down, a topic or message over
 * NATS' limits, too many stores waiting for JetStream).
 */
bool cluster_store(struct cluster *c, const struct msg *m, uint64_t now, struct buf *scratch,
                   uint64_t token);

/*
 * Creates (or updates) the durable queue of the subscription filter (plain:
 * no "$share/") of client client_id's persistent session: one durable
 * consumer per subject of the filter (two for one ending in "/#"), ack
 * explicit, new messages only, ack wait CLUSTER_ACK_WAIT_MS, at most
 * max_inflight unacked messages. Done on the queue thread, in order with
 * the other queue operations.
 * - token != 0 (a SUBSCRIBE waits for it): sets *pending, and
 *   queue_made(token, filter, err) follows, once: TERN_OK when JetStream
 *   has the queue, TERN_E_SYS when it could not be made (JetStream not
 *   reachable now, it refused, no answer in time). A failed add is not
 *   tried again: the broker refuses the subscription. A queue JetStream
 *   made although its answer did not come stays, as an earlier session's
 *   queue must (the next add of the filter finds it by name; a clean start
 *   deletes it).
 * - token 0 (a queue that exists already, being updated): tried again
 *   while JetStream does not answer.
 * TERN_E_INVALID for a filter NATS cannot carry, TERN_E_NOMEM (no callback
 * then).
 */
TERN_MUST_CHECK enum tern_err cluster_durable_add(struct cluster *c, struct tern_bytes client_id,
                                                  struct tern_bytes filter, uint32_t max_inflight,
                                                  uint64_t token, bool *pending);

/* Deletes that durable queue (asynchronously; what it held is gone).
 * TERN_E_INVALID, TERN_E_NOMEM as for the add. */
TERN_MUST_CHECK enum tern_err cluster_durable_del(struct cluster *c, struct tern_bytes client_id,
                                                  struct tern_bytes filter);

/* Deletes every durable queue of client_id, whatever its filters (a clean
 * start: nothing of an earlier session is owed any more [MQTT-3.1.2-4]).
 * Asynchronous, in order with the other queue operations. */
TERN_MUST_CHECK enum tern_err cluster_durable_forget(struct cluster *c,
                                                     struct tern_bytes client_id);

/*
 * Starts delivery of the durable queues of (client_id, filters[0..n)) to
 * this node for session (the client is online here): each message comes
 * through the durable callback with session, home and the filter's index.
 * Asynchronous (queue thread); a bind of a session already bound
 * replaces it. With load != NULL (the first bind of the session on this
 * node), the client's PUBREL entries are read first and handed to the
 * pubrels callback with load, which follows exactly once once this
 * returns TERN_OK. TERN_E_INVALID for a filter NATS cannot carry,
 * TERN_E_NOMEM (no callback then).
 */
TERN_MUST_CHECK enum tern_err cluster_durable_bind(struct cluster *c, uint64_t session,
                                                   uint16_t home, struct tern_bytes client_id,
                                                   const struct tern_bytes *filters, size_t n,
                                                   void *load);

/* Stops that delivery (asynchronously). What was delivered and not acked
 * JetStream delivers again, after CLUSTER_ACK_WAIT_MS, to whoever binds
 * next. */
void cluster_durable_unbind(struct cluster *c, uint64_t session);

/* The message's sequence in the messages stream (the same on every node). */
uint64_t cluster_ack_seq(const struct cluster_ack *a);

/* How many times JetStream delivered it (1: the first time). */
uint64_t cluster_ack_delivered(const struct cluster_ack *a);

/* Tells JetStream the message is still being worked on: its ack wait
 * starts again. Before cluster_close() only. */
void cluster_ack_progress(struct cluster_ack *a);

/* The message's flow is done (PUBACK, PUBCOMP, or dropped for good):
 * acks it (it leaves the queue) unless its PUBREL entry did, deletes that
 * entry, and frees a. Safe after cluster_close() too (it then only frees). */
void cluster_ack_done(struct cluster_ack *a);

/* Frees a without acking: JetStream delivers the message again after its
 * ack wait, and its PUBREL entry stays, for whoever binds the session's
 * queues next. Safe after cluster_close() too (NULL allowed). */
void cluster_ack_drop(struct cluster_ack *a);

/*
 * The client answered the durable QoS 2 message of a with PUBREC for
 * packet_id [MQTT-4.3.3-4]: records (client_id, packet_id) as a PUBREL
 * entry in the stream "<cluster>_pubrel", asynchronously, and once
 * JetStream has it acks the queue message, which then leaves the queue:
 * the entry stands for it, and whoever binds the session's queues next
 * sends PUBREL for it rather than the message again. a stays the
 * caller's. false when it cannot go (JetStream not set up, NATS down, a
 * client id over CLIENT_ID_KEY_MAX bytes, a asked before): the message
 * then stays unacked until cluster_ack_done(), as without an entry.
 */
bool cluster_ack_pubrec(struct cluster_ack *a, struct tern_bytes client_id, uint16_t packet_id);

/*
 * Claims client_id for this node in the cluster's clients bucket, as a
 * CONNECT of it was accepted here, asynchronously (the put goes out on the
 * caller's thread, which never waits for its answer). Returns the claim's
 * stamp: a hybrid clock, the wall clock in microseconds but above every
 * stamp this node gave or heard of, so a claim made after this node heard
 * of another one is newer than it whatever the clocks' skew; 0 when none
 * could be sent (JetStream not set up yet, NATS down, a client id over
 * 2048 bytes, which does not fit a key): the client id is then unique on
 * this node only, and any other node's claim is newer. clean: the CONNECT
 * asked for a clean start, which the other nodes are told (taken()).
 */
uint64_t cluster_claim(struct cluster *c, struct tern_bytes client_id, bool clean);

/*
 * Session records (sessions.c, session_record.h): the bucket
 * "<cluster>_sessions" keeps the record of each session under the key
 * clients_key() of its client id. Every operation is asynchronous, done on
 * the sessions thread in call order; a record written by a node whose
 * claim of the client id is older than the holder's of the record there
 * (another node took the session over) is dropped, never written over the
 * newer one.
 */

/* Writes rec[0..len) (copied), the whole record of client_id's session as
 * this node holds it under claim (its connection's cluster_claim() stamp,
 * 0: none). With token != 0 sets *pending and interest_done(token) follows
 * once JetStream stored it, or could not (the write is then tried again
 * until it goes or a newer operation of the key replaces it).
 * TERN_E_INVALID for a client id without a key (clients_key()),
 * TERN_E_NOMEM. */
TERN_MUST_CHECK enum tern_err cluster_session_put(struct cluster *c, struct tern_bytes client_id,
                                                  uint64_t claim, const uint8_t *rec, size_t len,
                                                  uint64_t token, bool *pending);

/* Deletes client_id's record: its session ended for good (not when it
 * moved to another node). Errors as for the put. */
TERN_MUST_CHECK enum tern_err cluster_session_del(struct cluster *c, struct tern_bytes client_id,
                                                  uint64_t claim);

/* Looks client_id's record up: session_found(token, ...) follows, within
 * about 2 x 2 s whatever JetStream does. The revision read is what this
 * node's next write of the key expects. Errors as for the put. */
TERN_MUST_CHECK enum tern_err cluster_session_get(struct cluster *c, struct tern_bytes client_id,
                                                  uint64_t token);

/* Forgets what this node knew of client_id's record (its session moved to
 * another node): writes nothing. */
void cluster_session_forget(struct cluster *c, struct tern_bytes client_id);

/* Counts a local session ended because another node claimed its client
 * id (the broker ends it on its own thread). */
void cluster_taken(struct cluster *c);

/* Counts a message from NATS that the broker dropped (QoS 0 for a worker
 * too far behind): part of cluster_stats()' dropped. Any thread. */
void cluster_count_drop(struct cluster *c);

/* This node's name (cluster_node_name, or the host name). */
const char *cluster_node(const struct cluster *c);

/* Reads the counters. */
void cluster_stats(struct cluster *c, struct cluster_stats *out);

#endif
