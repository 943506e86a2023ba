/*
 * session.h - the MQTT session of one client id (session.c): its
 * subscriptions, its queue, its in-flight window, its inbound QoS 2 ids and
 * its will. A session lives on its home worker and is touched by that
 * worker only.
 */
#ifndef TERN_BROKER_SESSION_H
#define TERN_BROKER_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/delivery.h"
#include "tern/error.h"
#include "util/map.h"

struct conn;
struct flow_cell;
struct msg;
struct worker;

struct sub {
	uint8_t *filter; /* the whole filter as subscribed ($share/.. kept) */
	uint16_t len;
	uint8_t qos;
	uint8_t flags; /* ROUTE_NO_LOCAL, ROUTE_RAP */
	uint8_t retain_handling;
	uint32_t sub_id;
};

enum inflight_state {
	INFLIGHT_WAIT_PUBACK,  /* QoS 1 PUBLISH sent */
	INFLIGHT_WAIT_PUBREC,  /* QoS 2 PUBLISH sent */
	INFLIGHT_WAIT_PUBCOMP, /* PUBREL sent */
};

struct inflight {
	struct delivery d;
	uint16_t packet_id;
	uint8_t state;
	bool unsent;       /* of a resumed session, not yet sent again */
	uint64_t store_id; /* the message's store id, kept past PUBREC */
};

struct session {
	/* Ordered by size to keep an idle session small. */
	uint64_t id;
	struct worker *w;
	struct sink *conn;         /* its connection (sink.h); NULL while offline */
	uint8_t *username;         /* of the last connection, for ACL checks; owned */
	uint64_t expire_at;        /* monotonic ms while offline; 0: not counting */
	struct map subs;           /* filter -> struct sub (owned) */
	struct delivery *queue;    /* ring of deliveries waiting for the window */
	uint64_t q_bytes;          /* payload bytes in the queue */
	struct inflight *inflight; /* in send order */
	uint16_t *qos2_in;         /* inbound QoS 2 packet ids awaiting PUBREL */
	struct msg *will;          /* pending will after an abnormal disconnect */
	uint64_t will_at;
	struct flow_cell *flow; /* from the first subscription on (flow.h); a reference */
	uint32_t expiry;        /* seconds after disconnect; UINT32_MAX: never */
	uint32_t q_head, q_len, q_cap;
	uint32_t n_inflight, cap_inflight;
	uint32_t n_unsent; /* in-flight entries waiting to be resent */
	uint32_t n_qos2_in, cap_qos2_in;
	uint32_t will_expiry;
	uint16_t client_id_len;
	uint16_t username_len;
	uint16_t next_packet_id;
	uint8_t version;
	bool has_username;
	bool will_has_expiry;
	bool stored;         /* its row is in the store (see session_record) */
	uint8_t client_id[]; /* not NUL-terminated; allocated with the session */
};

/* Creates a session for client id cid on worker w (not yet in its maps:
 * see session_register). NULL when out of memory. */
struct session *session_new(struct worker *w, const uint8_t *cid, size_t len, uint8_t version);

/* Adds s to w's maps. TERN_E_NOMEM on failure (s is then not registered). */
enum tern_err session_register(struct worker *w, struct session *s);

/* Ends a session: removes its subscriptions from every replica, publishes a
 * pending will, drops what it holds and frees it. s must be offline. */
void session_destroy(struct session *s);

/*
 * Gives the session a message: delivers it now, or queues it (bounded by
 * max_queued_messages) when offline or when the in-flight window is full.
 * Takes ownership of *d in every case (dropping it when it cannot be kept).
 */
void session_deliver(struct session *s, struct delivery *d);

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

/* Finds the in-flight entry for packet_id; NULL if none. */
struct inflight *session_inflight_find(struct session *s, uint16_t packet_id);

/* Removes an in-flight entry (releasing its message) and pumps the queue. */
void session_inflight_remove(struct session *s, struct inflight *f);

/* Publishes s->will now (if any) and drops it. */
void session_fire_will(struct session *s);

/* Loading from the store: a queued delivery, an in-flight one with its
 * packet id and state, an inbound QoS 2 id. Take ownership of *d. */
enum tern_err session_restore_queued(struct session *s, struct delivery *d);
enum tern_err session_restore_inflight(struct session *s, struct delivery *d, uint16_t packet_id,
                                       uint8_t state);
enum tern_err session_restore_qos2(struct session *s, uint16_t packet_id);

/* Forgets an inbound QoS 2 packet id (PUBREL received, or the message was
 * refused after all); returns whether it was known. */
bool session_qos2_forget(struct session *s, uint16_t packet_id);

/* True when the session outlives its connection, so the store keeps it.
 * Whether the store has it is s->stored: the expiry can change after the row
 * was written (a v5 DISCONNECT can set it to 0), and what was written must
 * still be deleted. */
static inline bool session_persistent(const struct session *s)
{
	return s->expiry != 0;
}

/* Records s in the store (its row, created or updated: expiry, and
 * disconnected_at, wall-clock ms or 0 while online) and marks it stored. */
void session_record(struct session *s, int64_t disconnected_at);

/* Deletes what the store keeps of s (its row and with it subscriptions,
 * queued and in-flight deliveries, inbound QoS 2 ids and its will) when s
 * is stored, and marks it not stored. For a session that ends, or that
 * goes on with expiry 0 and so must not come back after a restart. */
void session_unrecord(struct session *s);

/* Periodic work for an offline session: will delay and expiry. Returns
 * true if the session was destroyed. */
bool session_tick(struct session *s, uint64_t now);

#endif
