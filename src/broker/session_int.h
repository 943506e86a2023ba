/*
 * session_int.h - what session.c and session_out.c share and nobody else
 * uses: the session's state (struct session, its subscriptions and its
 * in-flight entries; the rest of the broker reaches it through the
 * functions of session.h) and how its transitions reach the store. The
 * handler tests (tests/unit/handler_fake.h) include it to check that
 * state, as the module's own tests.
 */
#ifndef TERN_BROKER_SESSION_INT_H
#define TERN_BROKER_SESSION_INT_H

#include "broker/auth.h"
#include "broker/delivery.h"
#include "broker/persist.h"
#include "broker/session.h"
#include "store/store.h"
#include "util/msg.h"

struct sub {
	uint8_t *filter; /* the whole filter as subscribed ($share/.. kept) */
	uint16_t len;
	uint8_t qos;
	uint8_t flags; /* ROUTE_NO_LOCAL, ROUTE_RAP */
	uint8_t retain_handling;
	uint32_t sub_id;
};

struct inflight {
	struct delivery d;
	uint16_t packet_id;
	uint8_t state;
	bool unsent; /* of a resumed session, not yet sent again */
	/* The packet of its state (a QoS 2 PUBLISH, or PUBREL) waits for the
	 * commit of the batch that records that state (STORE_D_SENT with its
	 * packet id, STORE_D_PUBREL): what the client holds must never be
	 * ahead of what a restart restores (session_out.c). */
	bool held;
	bool fresh;        /* never transmitted: its first PUBLISH has DUP 0 */
	uint64_t store_id; /* the message's store id, kept past PUBREC */
};

struct session {
	/* Ordered by size to keep an idle session small. */
	uint64_t id;
	struct worker *w;
	struct sink *conn;         /* its connection (sink.h); NULL while offline */
	uint8_t *username;         /* of the last connection, for ACL checks; owned; NULL: none */
	uint64_t expire_at;        /* monotonic ms while offline; 0: not counting */
	struct map subs;           /* filter -> struct sub (owned) */
	struct ring queue;         /* of struct delivery, waiting for the window */
	uint64_t q_bytes;          /* payload bytes in the queue */
	struct inflight *inflight; /* in send order */
	uint16_t *qos2_in;         /* inbound QoS 2 packet ids awaiting PUBREL */
	struct msg *will;          /* pending will after an abnormal disconnect */
	uint64_t will_at;
	uint64_t claim; /* stamp of its connection's claim of the client id in the cluster */
	struct flow_cell *flow; /* from the first subscription on (flow.h); a reference */
	uint32_t expiry;        /* seconds after disconnect; UINT32_MAX: never */
	uint32_t n_inflight, cap_inflight;
	uint32_t n_unsent; /* in-flight entries waiting to be resent */
	uint32_t n_qos2_in, cap_qos2_in;
	uint32_t will_expiry;
	uint32_t n_held; /* its acks waiting for a commit (session_ack) */
	uint16_t client_id_len;
	uint16_t username_len;
	uint16_t next_packet_id;
	/* Bit-fields share a byte, so that with the queue's struct ring
	 * (20 bytes and 4 of padding) the session keeps its size; the first
	 * two are read only when the session or its will is stored or
	 * published, the last two only in a cluster. */
	uint8_t version : 4; /* TERN_V31 .. TERN_V5 */
	bool will_has_expiry : 1;
	/* Its PUBREL entries in the cluster (session_durable.c) were asked
	 * for at its first bind here, or came. */
	bool pubrel_loaded : 1;
	/* They were asked for and have not come yet: no new packet id goes
	 * out, as one of them may hold it (session_out.c). */
	bool pubrel_wait : 1;
	/* Its record is in the cluster's sessions bucket, written by this
	 * node (session_cluster.c). */
	bool cluster_rec : 1;
	/* Adopted here from a node counted dead (session_adopt()): its claim
	 * is that node's, until a CONNECT here claims the client id. */
	bool adopted : 1;
	/* Its row is in the store (or in a batch on its way there), and with
	 * it everything the session holds: set and cleared only by the
	 * transitions of session.c, mirrored in flow->stored for the workers
	 * that route to it. */
	bool stored;
	/* The listener of its last connection (sink.listener), whose
	 * security settings apply with per_listener_settings, as in
	 * mosquitto; AUTH_LISTENER_NONE when restored from the store and not
	 * connected since. */
	uint8_t listener;
	uint8_t client_id[]; /* not NUL-terminated; allocated with the session */
};

/* The batch a stored session's operations go into: NULL when s is not
 * stored (then nothing of it is kept) or without a store. */
static inline struct store_batch *stored_batch(struct session *s)
{
	return s->stored ? persist_batch(s->w) : NULL;
}

/* Records a QoS 1/2 delivery d of s (queued, or in flight with packet_id
 * and state when packet_id != 0): the message, then d's row. */
static inline void record_delivery(struct worker *w, struct store_batch *b, uint64_t session,
                                   const struct delivery *d, uint16_t packet_id,
                                   enum store_dstate state)
{
	persist_note(w, store_msg_put(b, d->msg));
	persist_note(w,
	             store_delivery_put(b, session, d->msg->store_id, d->qos, d->retain,
	                                d->n_sub_ids > 1 ? d->sub_ids : &d->sub_id, d->n_sub_ids));
	if (packet_id)
		persist_note(w,
		             store_delivery_state(b, session, d->msg->store_id, packet_id, state));
}

/* session_allowed(), inline for the per-delivery check of session_out.c
 * (the ACL decides what a client may read, live, queued and retained
 * messages alike): the identity the ACL sees is written down once. */
static inline bool session_acl(const struct session *s, struct tern_bytes topic, int access)
{
	return auth_allowed(s->w, s->listener, s->client_id, s->client_id_len, s->username,
	                    s->username_len, s->username != NULL, topic, access);
}

/* A wall-clock instant (ms; stored, or from another node) on our monotonic
 * clock, now being the monotonic ms at wall_now: not before now, never 0
 * (0 means "not counting" in expire_at). */
static inline uint64_t session_mono_of_wall(int64_t wall, uint64_t now, int64_t wall_now)
{
	int64_t left = wall - wall_now;
	uint64_t t = left > 0 ? now + (uint64_t)left : now;
	return t ? t : 1;
}

/* Whether the store keeps this delivery: QoS 1/2 of a message with an id. */
static inline bool keeps(const struct delivery *d)
{
	return d->qos > 0 && d->msg && d->msg->store_id;
}

/* session_out.c: packet_id is in flight waiting for PUBCOMP, for the
 * PUBREL entry of handle ack (taken; session_durable_pubrels()); the
 * PUBREL goes at once when s is online. An id already in flight keeps
 * what holds it (ack is dropped: the entry stays). */
void session_pubrel_restore(struct session *s, uint16_t packet_id, struct cluster_ack *ack);

/* session_out.c: whether s has the durable queue message of sequence seq
 * in flight past its PUBREC (a PUBREL entry stands for it). */
bool session_pubrel_held(const struct session *s, uint64_t seq);

#endif
