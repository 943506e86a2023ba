/*
 * session.h - the MQTT session of one client id (session.c, session_out.c):
 * its subscriptions, its queue, its in-flight window, its inbound QoS 2 ids
 * and its will, and what the store keeps of them. A session lives on its
 * home worker and is touched by that worker only; its state
 * (session_int.h) is private to the module, read and changed only through
 * the functions below.
 */
#ifndef TERN_BROKER_SESSION_H
#define TERN_BROKER_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/delivery.h"
#include "broker/flow.h"
#include "broker/persist.h"
#include "tern/codec.h"
#include "tern/error.h"
#include "util/map.h"
#include "util/ring.h"

struct flow_cell;
struct route;
struct sink;
struct store_loaded_session;
struct msg;
struct worker;

enum inflight_state {
	INFLIGHT_WAIT_PUBACK,  /* QoS 1 PUBLISH sent */
	INFLIGHT_WAIT_PUBREC,  /* QoS 2 PUBLISH sent */
	INFLIGHT_WAIT_PUBCOMP, /* PUBREL sent */
};

struct session; /* private to the session module (session_int.h) */

/* Its id (unique for the broker's life; routes and waiting answers name
 * the session by it). */
uint64_t session_id(const struct session *s);

/* Its home worker, the only one that touches it. */
struct worker *session_worker(const struct session *s);

/* Its client id (not NUL-terminated). */
struct tern_bytes session_client_id(const struct session *s);

/* Its connection (sink.h); NULL while offline. */
struct sink *session_sink(const struct session *s);

/* Its Session Expiry Interval in seconds (UINT32_MAX: never). */
uint32_t session_expiry(const struct session *s);

/* Whether the ACL lets s's client (client id and username of its last
 * connection) use topic (or filter) for access (ACL_READ, ACL_WRITE,
 * ACL_SUBSCRIBE: auth/acl.h). */
bool session_allowed(const struct session *s, struct tern_bytes topic, int access);

/* Whether s has a subscription of exactly this filter; how many it has. */
bool session_has_sub(const struct session *s, struct tern_bytes filter);
size_t session_sub_count(const struct session *s);

/* Messages s holds for its client: queued and in flight. */
uint64_t session_held(const struct session *s);

/* Whether packet_id belongs to a message s has in flight to its client
 * (sent, or to be resent on resume), so a bridge sending packets of its own
 * on the same remote session keeps clear of it. */
bool session_inflight_has(const struct session *s, uint16_t packet_id);

/* What the admin API shows of s (src/http, on s's worker): the username
 * of its last connection (data NULL: none), its protocol version, its
 * messages in flight and queued. */
struct tern_bytes session_username(const struct session *s);
uint8_t session_version(const struct session *s);
uint32_t session_inflight_count(const struct session *s);
uint32_t session_queued_count(const struct session *s);

/* One subscription of a session, as session_sub_next() shows it. */
struct session_sub_view {
	struct tern_bytes filter; /* as subscribed, "$share/group/" kept */
	uint8_t qos;
	uint8_t flags; /* ROUTE_NO_LOCAL, ROUTE_RAP (route.h) */
	uint8_t retain_handling;
	uint32_t sub_id; /* 0: none */
};

/* Iterates s's subscriptions: fills *out with the next after *pos (start
 * at 0) and returns true, false at the end. s must not change in
 * between. */
bool session_sub_next(const struct session *s, size_t *pos, struct session_sub_view *out);

/* Whether an offline s has work due at now (its will or its expiry), for
 * which the tick calls session_tick(). */
bool session_due(const struct session *s, uint64_t now);

/* A cluster claimed s's client id for its new connection with this stamp
 * (cluster.h: cluster_claim(); 0: no claim went out). */
void session_claim_set(struct session *s, uint64_t stamp);

/* Whether another node's claim of s's client id with this stamp is newer
 * than s's (cluster.h, the taken callback): it then takes s over. */
bool session_claim_older(const struct session *s, uint64_t stamp, bool tie_wins);

/* Creates w's registry of sessions (w->sessions, private to session.c):
 * by client id and by session id. TERN_E_NOMEM when out of memory. */
TERN_MUST_CHECK enum tern_err session_worker_new(struct worker *w);

/* At shutdown: destroys every session of w, dropping their wills (nobody
 * is left to receive them). */
void session_destroy_all(struct worker *w);

/* Frees w's registry, once its sessions are gone (nothing when there is
 * none). */
void session_worker_free(struct worker *w);

/* The session of client id cid on w (its home worker); NULL: none. */
struct session *session_find(struct worker *w, const uint8_t *cid, size_t len);

/* The session with id `id` on w; NULL: none (ended, or on another
 * worker). */
struct session *session_by_id(struct worker *w, uint64_t id);

/* How many sessions w holds. */
size_t session_count(const struct worker *w);

/* Iterates w's sessions: the next after *pos (start at 0), NULL at the
 * end. The registry must not change in between. */
struct session *session_next(struct worker *w, size_t *pos);

/* Creates a session for client id cid on worker w (not yet in its maps:
 * see session_register). NULL when out of memory. */
struct session *session_new(struct worker *w, const uint8_t *cid, size_t len, uint8_t version);

/* Adds s to w's maps. TERN_E_NOMEM on failure (s is then not registered). */
TERN_MUST_CHECK enum tern_err session_register(struct worker *w, struct session *s);

/* Ends a session: removes its subscriptions from every replica, publishes a
 * pending will, deletes what the store keeps of it (unless the broker is
 * stopping: then the store keeps it for the restart), drops what it holds
 * and frees it. s must be offline. */
void session_destroy(struct session *s);

/* session_destroy() for a session that another node of the cluster took
 * over: its durable queues stay, with what it had not finished, for the
 * node the client is on now, and so does its record in the cluster, unless
 * clean (the other node's CONNECT had clean start: the session ended). */
void session_destroy_moved(struct session *s, bool clean);

/*
 * Store transitions. Whether a session is stored follows from its expiry
 * interval, and only these functions change it:
 *
 *  - session_set_expiry(): at CONNECT and at a v5 DISCONNECT. Non-zero: the
 *    session outlives its connection, so it is stored (its row written or
 *    updated), from before anything is routed to it: a session that is not
 *    stored holds state only with expiry 0, and such a session ends with
 *    its connection (a takeover too), so it never becomes stored later.
 *    Zero: what the store has of it is deleted, so it cannot come back after
 *    a restart [MQTT-3.1.2-23].
 *  - session_offline_take(): the connection went; the row gets its
 *    disconnect time and the pending will.
 *  - session_destroy() deletes it (clean start, takeover, expiry).
 *
 * The other transitions (subscribe, message queued, sent, acknowledged,
 * inbound QoS 2 received and released, will set and cleared) record their
 * store operations only for a stored session: a session that ends with its
 * connection writes nothing, and its acknowledgements wait for nothing.
 */
void session_set_expiry(struct session *s, uint32_t expiry);

/*
 * The CONNECT that came through k starts or resumes s (handle_connect()):
 * the connection's username (for ACL checks) and protocol version are
 * taken, a pending will is cancelled [MQTT-3.1.3-9], k is attached
 * (s->conn, k->session) and the flow cell goes online, and the expiry of
 * the CONNECT is set (session_set_expiry(): stored or not from now on).
 * TERN_E_NOMEM changes nothing.
 */
TERN_MUST_CHECK enum tern_err session_attach(struct session *s, struct sink *k, uint8_t version,
                                             struct tern_bytes user, uint32_t expiry);

/*
 * The session's connection went (handle_detach(), when it is reaped or
 * taken over): s and its sink are detached. Takes will (a
 * reference, or NULL: none, or a normal DISCONNECT), which goes out after
 * delay seconds or when the session ends, whichever is first
 * [MQTT-3.1.3-9]; has_expiry / will_expiry are its Message Expiry
 * Interval, counted from when it is published. A session with expiry 0 ends
 * now (returns true: s is freed); otherwise its expiry starts counting and
 * the store records it offline, with its will.
 */
bool session_offline_take(struct session *s, struct msg *will, uint32_t delay, bool has_expiry,
                          uint32_t will_expiry);

/* A new connection came before the Will Delay Interval passed: the pending
 * will is dropped [MQTT-3.1.3-9], in the store too. */
void session_will_cancel(struct session *s);

/* Publishes s->will now (if any) and drops it. */
void session_fire_will(struct session *s);

/*
 * SUBSCRIBE of one filter: adds it to s (or replaces the options of the
 * same filter [MQTT-3.8.4-3]) and records it when s is stored; *is_new
 * says whether it was added. TERN_E_NOMEM leaves s unchanged.
 */
TERN_MUST_CHECK enum tern_err session_subscribe(struct session *s, struct tern_bytes filter,
                                                uint8_t qos, uint8_t flags, uint8_t retain_handling,
                                                uint32_t sub_id, bool *is_new);

/* UNSUBSCRIBE of one filter (or the undoing of a subscription that could
 * not be routed): removes it from s and from the store. Returns whether s
 * had it. */
bool session_unsubscribe(struct session *s, struct tern_bytes filter);

/* ---- in a cluster: durable queues (session_durable.c) ---- */

struct cluster_ack;

/* Whether a subscription of s with these options gets a durable queue in
 * the cluster (ROUTE_DURABLE): s has an expiry, the filter is not shared,
 * QoS > 0, no No Local; never without a cluster. */
bool session_durable_sub(const struct session *s, bool shared, uint8_t qos, uint8_t flags);

/* Whether s has a subscription of exactly filter that has a durable queue
 * (ROUTE_DURABLE): the queue was made when it was granted. */
bool session_has_queue(const struct session *s, struct tern_bytes filter);

/* A message m of the durable queue of s's subscription filter, with its
 * acknowledgement handle: becomes a delivery of s (both taken). */
void session_durable_take(struct session *s, struct tern_bytes filter, struct msg *m,
                          struct cluster_ack *ack);

/* Binds the durable queues of s's subscriptions to this node (again, after
 * its subscriptions changed): their messages come to s. */
void session_durable_bind(struct session *s);

/* s goes: its queues are unbound, and deleted when it ended (not when it
 * is only freed at shutdown). */
void session_durable_end(struct session *s, bool ended);

struct cluster_pubrel;

/* The PUBREL entries of s in the cluster, read at its first bind on this
 * node (v[0..n), taken with their handles; err: they could not be read,
 * and are asked for again at the next bind): each packet id is in flight
 * waiting for PUBCOMP, its PUBREL sent now when the client is online, at
 * the resume otherwise [MQTT-4.4.0-1]. */
void session_durable_pubrels(struct session *s, struct cluster_pubrel *v, size_t n,
                             enum tern_err err);

/* ---- in a cluster: a dead node's session (session_adopt.c) ---- */

/* Builds the session of client id cid on w (its home worker) from
 * rec[0..len), its record (cluster/session_record.h) as this node adopted
 * it from a dead node: offline, its subscriptions routed, its durable
 * queues bound, its will due after its delay and its expiry counted from
 * the record's offline time. Nothing when cid has a session here already
 * (the client came back to this node). Failures are logged. */
void session_adopt(struct worker *w, struct tern_bytes cid, const uint8_t *rec, size_t len);

/* At start, another node holds client id cid's session (it went there
 * while this node was down): an offline copy restored from the store is
 * dropped, as after a takeover, with its durable queues left to the
 * holder. A session whose client connected here since stays. */
void session_held_elsewhere(struct worker *w, struct tern_bytes cid);

/* This node was cut off long enough for another node to count it dead,
 * and that node holds cid's record now, with claim stamp claim (adopt.c,
 * adopt_rejoin()). The session here with that claim was adopted from
 * this node: while its client is still connected here, the session is
 * claimed again and its record written, so the adopter lets its copy go
 * (a takeover); an offline one is the adopter's now, and goes here as in
 * session_held_elsewhere(). A session with another claim is left to the
 * claims. */
void session_rejoined(struct worker *w, struct tern_bytes cid, uint64_t claim);

/* ---- in a cluster: the session's record (session_cluster.c) ---- */

struct route_batch;
struct session_record_sub;

/* Writes s's whole record to the cluster's sessions bucket (or deletes
 * the one this node wrote, when s no longer needs one: no expiry, no
 * will). With batch, the batch's answer (a SUBACK) waits until JetStream
 * has it. Nothing without a cluster; failures are logged. */
void session_cluster_write(struct session *s, struct route_batch *batch);

/* s ends here (session.c's destroy()): ended for good, its record goes;
 * moved to another node, the record stays for it unless clean. */
void session_cluster_gone(struct session *s, bool ended, bool clean);

/* Adds subscription e of a record to s and routes it on every replica
 * (with its durable queue's flag where it has one). TERN_E_NOMEM. */
TERN_MUST_CHECK enum tern_err session_record_sub_add(struct session *s,
                                                     const struct session_record_sub *e);

/* Builds the session of client id cid on w (its home worker, which has
 * none) from rec[0..len), its record as another node wrote it, for a
 * CONNECT that resumes it: offline, with its subscriptions routed; the
 * caller attaches it. NULL with *err TERN_OK when the record's session
 * has expired (nothing to resume), with *err set when the record does not
 * decode (logged) or out of memory. */
struct session *session_from_record(struct worker *w, struct tern_bytes cid, const uint8_t *rec,
                                    size_t len, enum tern_err *err);

/* What session_publish() did with a message. */
struct publish_result {
	size_t matched;       /* sessions it went to */
	struct flow_hit full; /* a receiver now over its mark (flow.h) */
	bool refused;         /* could not be routed (out of memory): refuse it */
	bool durable;         /* rows were recorded: the ack waits for the commit */
	bool unavailable;     /* the cluster cannot store QoS 1/2 now: refuse it */
};

/*
 * An accepted PUBLISH of s's client: m (the caller keeps its reference) is
 * given a store id, kept as the retained message of its topic when it is
 * retained, and routed to every matching session; the deliveries for
 * stored sessions are recorded. For QoS 2 packet_id is remembered until
 * PUBREL (method B, section 4.3.3), in the store too when s is stored.
 * r->durable says whether the acknowledgement promises something the store
 * must have first: false when the message reached only sessions that end
 * with their connection (then nothing is written). TERN_E_NOMEM when the
 * retained store or the QoS 2 set could not take it (the caller closes).
 */
TERN_MUST_CHECK enum tern_err session_publish(struct session *s, struct msg *m, uint16_t packet_id,
                                              struct publish_result *r);

/* Whether the inbound QoS 2 packet_id awaits its PUBREL (a PUBLISH with it
 * is a retransmission [MQTT-4.3.3-9]); how many do. */
bool session_qos2_pending(const struct session *s, uint16_t packet_id);
uint32_t session_qos2_count(const struct session *s);

/* PUBREL: forgets the inbound QoS 2 packet_id; returns whether it was
 * known. *durable: the deletion was recorded, so the PUBCOMP, which lets the
 * client reuse the id, must wait until the store forgot it too. */
bool session_qos2_release(struct session *s, uint16_t packet_id, bool *durable);

/*
 * Sends an acknowledgement (PUBACK, PUBREC, PUBCOMP) on s's connection: at
 * once, or once the store committed what it acknowledges (durable), and in
 * any case after the acks of s still held for earlier commits, so that they
 * keep the order of their PUBLISHes [MQTT-4.6.0-2] [MQTT-4.6.0-3]. Closes
 * the connection when it cannot hold one (better unacknowledged than
 * falsely so).
 */
void session_ack(struct session *s, enum tern_packet_type type, uint16_t packet_id, uint8_t reason,
                 bool durable);

/* persist.c: the commit a held ack waited for is done (err: it failed, and
 * the ack becomes a refusal or a close). Sends it if its connection is
 * still there. */
void session_ack_committed(struct worker *w, const struct held_ack *a, enum tern_err err);

/* session_out.c: the commit of "PUBREL sent" for packet_id of s, which the
 * PUBREL waited for (session_inflight_ack()), is done: the PUBREL goes on
 * s's connection, whichever it is now; offline, session_resume() sends it.
 * A failed commit was logged and the PUBREL goes all the same, or the
 * client would wait for it forever (the store then keeps "PUBLISH sent":
 * at least once, as before the store). */
void session_pubrel_committed(struct session *s, uint16_t packet_id);

/* Calls fn(w, arg) once the subscription changes of session session_id are
 * durable: after the current batch's commit for a stored session, at once
 * for any other. free_arg frees arg if the broker stops first. */
void session_after_commit(struct worker *w, uint64_t session_id, pending_done_fn fn, void *arg,
                          void (*free_arg)(void *));

/*
 * The routing worker (any worker) gives a QoS 1/2 delivery d to the session
 * of route r: when that session is stored (r->flow->stored), the message
 * and d's row are recorded now, in the routing worker's batch, before d can
 * reach another worker, and d is marked stored. A delivery that arrives
 * unmarked at a session that is stored by then is recorded on arrival
 * (session_deliver_take).
 */
void session_record_delivery(struct worker *w, const struct route *r, struct delivery *d);

/*
 * Gives the session a message: delivers it now, or queues it (bounded by
 * max_queued_messages) when offline or when the in-flight window is full.
 * Takes ownership of *d in every case (dropping it when it cannot be kept).
 */
void session_deliver_take(struct session *s, struct delivery *d);

/* A delivery routed by another worker (or counted as on its way by this
 * one) reaches its session on the home worker: session_deliver_take(),
 * then the flow cell no longer counts it as on its way (the session counts
 * it again if it queued it). */
void session_arrive_take(struct session *s, struct delivery *d);

/* Sends queued messages while the in-flight window has room. */
void session_pump(struct session *s);

/* The session's flow cell, created on first use (every route of the
 * session carries it); NULL when out of memory. */
struct flow_cell *session_flow(struct session *s);

/* The session's connection came (online true) or went: online sessions
 * slow their publishers, offline ones drop beyond max_queued_messages. */
void session_flow_online(struct session *s, bool online);

/* Tick of an online session: falls back to dropping after max_stall_time
 * over its mark without progress (flow.h). */
void session_flow_tick(struct session *s, uint64_t now);

/* Resends every in-flight message (PUBLISH with DUP, or PUBREL) on a resumed
 * session [MQTT-4.4.0-1], then pumps the queue. */
void session_resume(struct session *s);

/* What an acknowledgement from the client did to the in-flight entry of
 * its packet id. */
enum inflight_ack {
	INFLIGHT_ACK_DONE,       /* applied (for a PUBREC < 0x80: send PUBREL) */
	INFLIGHT_ACK_UNKNOWN,    /* no such packet id in flight */
	INFLIGHT_ACK_WRONG_FLOW, /* PUBACK for QoS 2, PUBREC / PUBCOMP for QoS 1 */
	INFLIGHT_ACK_EARLY,      /* PUBCOMP before PUBREC */
	/* Nothing to send now: the PUBREL goes once its state is committed
	 * (session_out.c sends it), or the ack answers a packet still waiting
	 * for its commit, which the client cannot have seen (ignored). */
	INFLIGHT_ACK_HELD,
};

/* PUBACK, PUBREC (with its reason) or PUBCOMP from the client: moves the
 * in-flight entry of packet_id along the QoS 1 / QoS 2 state machine
 * (section 4.3), recording the step when s is stored; an entry that is done
 * is removed and the queue pumped. Changes nothing unless DONE or HELD. For
 * a stored session a PUBREC's PUBREL waits for the commit of "PUBREL sent"
 * (HELD): had it gone before, a kill -9 would restore the message as
 * unacknowledged and send its PUBLISH again to a client that has completed
 * it [MQTT-4.3.3-1]. */
enum inflight_ack session_inflight_ack(struct session *s, enum tern_packet_type type,
                                       uint16_t packet_id, uint8_t reason);

/* Loading from the store (persist.c, before the workers run): a stored
 * session as ls has it, registered on w, offline since its disconnect
 * (expiry and will delay counted from then; persistent_client_expiration
 * bounds one that would never expire), marked stored. Takes ls->will in
 * every case. NULL when out of memory. */
struct session *session_restore(struct worker *w, const struct store_loaded_session *ls);

/* Loading: one of s's subscriptions (the caller adds its routes). */
TERN_MUST_CHECK enum tern_err session_restore_sub(struct session *s, struct tern_bytes filter,
                                                  uint8_t qos, uint8_t flags,
                                                  uint8_t retain_handling, uint32_t sub_id);

/* Loading: a queued delivery, an in-flight one with its packet id and
 * state, an inbound QoS 2 id. The _take ones take *d in every case (it is
 * dropped on failure). TERN_E_NOMEM, which ends the load. */
TERN_MUST_CHECK enum tern_err session_restore_queued_take(struct session *s, struct delivery *d);
TERN_MUST_CHECK enum tern_err session_restore_inflight_take(struct session *s, struct delivery *d,
                                                            uint16_t packet_id, uint8_t state);
TERN_MUST_CHECK enum tern_err session_restore_qos2(struct session *s, uint16_t packet_id);

/* Periodic work for an offline session: will delay and expiry. Returns
 * true if the session was destroyed. */
bool session_tick(struct session *s, uint64_t now);

#endif
