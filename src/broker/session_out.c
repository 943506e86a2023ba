/*
 * session_out.c - the outbound side of a session: the QoS state machine of
 * what it is sent, the offline queue, flow control of its publishers.
 *
 * Outbound flow (section 4.3): a delivery of QoS > 0 gets a packet id and
 * an in-flight slot while the client's window has room (the smaller of
 * max_inflight_messages and the client's v5 Receive Maximum
 * [MQTT-4.9.0-2]); otherwise, and while the client is offline, it waits in
 * a FIFO queue bounded by max_queued_messages. In-flight entries keep send
 * order, so a resumed session resends them in the original order
 * [MQTT-4.6.0-1]. QoS 0 is sent at once when online (dropped, and counted,
 * when the socket is that far behind) and not queued offline.
 *
 * The bound on the queue depends on whether the client is there (flow.h).
 * Offline, max_queued_messages / max_queued_bytes drop what exceeds them,
 * as in mosquitto. Online, they are marks for flow control: the queue keeps
 * everything it is given and the session's flow cell tells its publishers
 * to wait; only a session that stalls (max_stall_time without progress)
 * drops beyond them. Every delivery in the queue is counted in the cell.
 *
 * The store transitions of this side (message queued, sent, acknowledged,
 * dropped) are recorded only for a stored session (session.c says which).
 * For such a session what the client is told of QoS 2 never runs ahead of
 * what the store has committed: a QoS 2 PUBLISH goes once the batch with
 * its packet id is committed, a PUBREL once "PUBREL sent" is (the entry is
 * held meanwhile). So whatever a kill -9 leaves, the restored session
 * resends what the client can take without delivering twice: PUBLISH with
 * DUP and the id the client may hold, or PUBREL for an id it may have
 * completed and forgotten, never a new PUBLISH of a message it has
 * [MQTT-4.3.3-1] [MQTT-4.4.0-1]. QoS 1 goes at once: its resend may be a
 * duplicate anyway.
 */
#include "broker/session.h"

#include <stdlib.h>
#include <string.h>

#include "auth/acl.h"
#include "broker/broker.h"
#include "broker/config.h"
#include "broker/delivery.h"
#include "broker/flow.h"
#include "broker/persist.h"
#include "broker/retain.h"
#include "broker/route.h"
#include "broker/router.h"
#include "broker/session_int.h"
#include "broker/sink.h"
#include "broker/stats.h"
#include "broker/worker.h"
#include "cluster/cluster.h"
#include "store/store.h"
#include "tern/codec.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/log_limit.h"
#include "util/map.h"
#include "util/msg.h"
#include "util/ring.h"

static void inflight_remove(struct session *s, struct inflight *f);
static void inflight_cut(struct session *s, struct inflight *f);

/* The number of QoS > 0 messages the client lets us have unacknowledged. */
static size_t window(const struct session *s)
{
	size_t max = s->w->broker->cfg.max_inflight_messages;
	if (s->conn && s->conn->send_quota_max && s->conn->send_quota_max < max)
		max = s->conn->send_quota_max;
	return max ? max : 1;
}

/* Whether one more QoS 1/2 message may go to the client now: fewer than
 * window() in flight on this connection (what the client's Receive Maximum
 * counts [MQTT-3.3.4-9]) and, with max_inflight_bytes, fewer
 * payload bytes in flight than that (one message always goes, however
 * large, as in mosquitto). The bytes are summed over the window, at most
 * max_inflight_messages entries, only when the limit is set. */
static bool window_open(const struct session *s)
{
	size_t sent = s->n_inflight - s->n_unsent;
	if (sent >= window(s))
		return false;
	uint64_t max = s->w->broker->cfg.max_inflight_bytes;
	if (!max || sent == 0)
		return true;
	uint64_t bytes = 0;
	for (size_t i = 0; i < s->n_inflight; i++)
		if (!s->inflight[i].unsent && s->inflight[i].d.msg) /* NULL past PUBREC */
			bytes += s->inflight[i].d.msg->payload.len;
	return bytes < max;
}

/* The in-flight entry with packet_id, or NULL. */
static struct inflight *inflight_find(struct session *s, uint16_t packet_id)
{
	for (size_t i = 0; i < s->n_inflight; i++)
		if (s->inflight[i].packet_id == packet_id)
			return &s->inflight[i];
	return NULL;
}

bool session_inflight_has(const struct session *s, uint16_t packet_id)
{
	for (size_t i = 0; i < s->n_inflight; i++)
		if (s->inflight[i].packet_id == packet_id)
			return true;
	return false;
}

/* Room for one more in-flight entry. TERN_E_NOMEM if it cannot grow. */
static TERN_MUST_CHECK enum tern_err inflight_reserve(struct session *s)
{
	if (s->n_inflight < s->cap_inflight)
		return TERN_OK;
	size_t cap = s->cap_inflight ? s->cap_inflight * 2 : 4;
	struct inflight *v = realloc(s->inflight, cap * sizeof(*v));
	if (!v)
		return TERN_E_NOMEM;
	s->inflight = v;
	s->cap_inflight = cap;
	return TERN_OK;
}

static uint16_t next_packet_id(struct session *s)
{
	/* The window is far below 65535, so a free id is always near. */
	for (;;) {
		uint16_t id = s->next_packet_id++;
		if (s->next_packet_id == 0)
			s->next_packet_id = 1;
		if (id && !inflight_find(s, id))
			return id;
	}
}

/*
 * The packet id of a durable queue's message is its stream sequence mod
 * 65535, plus 1: the same on every node, so that when the message comes
 * again after its node went away (no acknowledgement reached the queue),
 * the client sees the id it may still hold and answers without delivering
 * it twice -- QoS 2 exactly once across a node's loss [MQTT-4.3.3-9]. In
 * the rare case another message in flight holds that id, the next free one.
 */
static uint16_t next_packet_id_for(struct session *s, const struct delivery *d)
{
	if (d->ack) {
		uint16_t id = (uint16_t)(cluster_ack_seq(d->ack) % 65535u + 1u);
		if (!inflight_find(s, id))
			return id;
	}
	return next_packet_id(s);
}

static bool expired(struct session *s, const struct delivery *d)
{
	bool gone;
	msg_expiry_left(d->msg, s->w->now, &gone);
	return gone;
}

/* Records that a stored delivery is gone (acknowledged, dropped, expired). */
static void record_del(struct session *s, const struct delivery *d)
{
	struct store_batch *b = stored_batch(s);
	if (b && keeps(d))
		persist_note(s->w, store_delivery_del(b, s->id, d->msg->store_id));
}

/* A QoS 2 PUBLISH whose first transmission waits for the commit of its
 * packet id (send_inflight()): the entry is found again by session, packet
 * id and message, as the session may have ended, or the entry gone and its
 * id been reused, meanwhile. */
struct held_publish {
	uint64_t session_id;
	uint64_t store_id;
	uint16_t packet_id;
};

/* The first transmission of f, in flight on s's connection: DUP 0 unless a
 * durable queue's message was delivered before, by this node or one that
 * went away [MQTT-3.3.1-1]. Over the client's Maximum Packet Size it is
 * discarded as if delivered [MQTT-3.1.2-25]: false then, f removed, and
 * the queue not pumped (the caller's to do). */
static bool send_first(struct session *s, struct inflight *f)
{
	bool dup = f->d.ack && cluster_ack_delivered(f->d.ack) > 1;
	enum tern_err err = sink_send_publish(s->conn, &f->d, f->packet_id, dup);
	if (err == TERN_E_TOO_LARGE) {
		stat_add(&s->w->stats, STAT_DROP_TOO_LARGE, 1);
		record_del(s, &f->d);
		f->store_id = 0; /* its row goes with record_del() */
		inflight_cut(s, f);
		return false;
	}
	/* A connection that is closing took nothing: still never sent. */
	f->fresh = err == TERN_E_CLOSED;
	return true;
}

/* The commit a held QoS 2 PUBLISH waited for is done (persist_hold_call()):
 * it goes now if its entry still waits and its session is online, whatever
 * connection it has by now (a resume leaves held entries to this); offline,
 * session_resume() sends it, DUP 0 if it never went. Takes arg. */
static void publish_committed(struct worker *w, void *arg)
{
	struct held_publish h = *(struct held_publish *)arg;
	free(arg);
	struct session *s = session_by_id(w, h.session_id);
	struct inflight *f = s ? inflight_find(s, h.packet_id) : NULL;
	if (!f || !f->held || f->store_id != h.store_id || f->state == INFLIGHT_WAIT_PUBCOMP)
		return;
	f->held = false;
	if (s->conn && !f->unsent && !send_first(s, f))
		session_pump(s); /* its window slot is free */
}

/* Sends d as a new in-flight message; takes ownership of *d. A QoS 2
 * message of a stored session is not sent yet: its packet id is recorded
 * (STORE_D_SENT) and the PUBLISH goes once that batch is committed
 * (publish_committed()). Sent before, a kill -9 ahead of the commit would
 * restore it as queued and send it under another packet id to a client
 * that may have delivered it already: twice [MQTT-4.3.3-1]
 * [MQTT-4.4.0-1]. Held entries keep their order: commits complete in
 * order, and their calls are released in the order they were held. QoS 1
 * goes at once (a resend of it may be a duplicate anyway) unless a held
 * one is ahead of it. */
static void send_inflight(struct session *s, struct delivery *d)
{
	if (inflight_reserve(s) != TERN_OK) {
		delivery_clear(d);
		return;
	}
	/* Held PUBLISHes are the newest of the session's (their commits come
	 * in order, and what follows one is held too), so the last entry says
	 * whether one waits: one past PUBREC was sent, and all before it. */
	const struct inflight *last = s->n_inflight ? &s->inflight[s->n_inflight - 1] : NULL;
	bool behind = last && last->held && last->state != INFLIGHT_WAIT_PUBCOMP;
	struct inflight *f = &s->inflight[s->n_inflight];
	f->d = *d;
	memset(d, 0, sizeof(*d));
	f->packet_id = next_packet_id_for(s, &f->d);
	f->state = f->d.qos == 1 ? INFLIGHT_WAIT_PUBACK : INFLIGHT_WAIT_PUBREC;
	f->unsent = false;
	f->held = false;
	f->fresh = true;
	f->store_id = f->d.msg->store_id;
	s->n_inflight++;
	struct store_batch *b = stored_batch(s);
	if (!b || !keeps(&f->d)) {
		(void)send_first(s, f);
		return;
	}
	persist_note(s->w, store_delivery_state(b, s->id, f->d.msg->store_id, f->packet_id,
	                                        STORE_D_SENT));
	/* A QoS 1 message behind a held one waits with it, so that the
	 * client gets them in the order they were routed, as from mosquitto
	 * (the spec orders each QoS alone [MQTT-4.6.0-6]). */
	struct held_publish *h = f->d.qos == 2 || behind ? malloc(sizeof(*h)) : NULL;
	if (!h) {
		/* QoS 1, or no memory to wait: at once (at least once). */
		(void)send_first(s, f);
		return;
	}
	*h = (struct held_publish){
	        .session_id = s->id, .store_id = f->store_id, .packet_id = f->packet_id};
	f->held = true;
	/* Last: without room to hold it this sends it at once. */
	persist_hold_call(s->w, publish_committed, h, free);
}

/* Appends d to the queue (taking it), growing the ring as needed.
 * TERN_E_NOMEM leaves *d to the caller. */
static TERN_MUST_CHECK enum tern_err queue_push(struct session *s, struct delivery *d)
{
	struct delivery *slot = RING_PUSH(&s->queue, struct delivery);
	if (!slot)
		return TERN_E_NOMEM;
	*slot = *d;
	s->q_bytes += d->msg->payload.len;
	memset(d, 0, sizeof(*d));
	struct flow_cell *f = s->flow;
	if (f) {
		uint64_t max_bytes = s->w->broker->cfg.max_queued_bytes;
		flow_add(f, 1);
		if (max_bytes && s->q_bytes > max_bytes &&
		    !(atomic_load_explicit(&f->state, memory_order_relaxed) & FLOW_BYTES))
			flow_set_state(s->w, f, FLOW_BYTES, 0);
	}
	return TERN_OK;
}

/* Takes the oldest queued delivery into *d; the queue is not empty. */
static void queue_pop(struct session *s, struct delivery *d)
{
	*d = *RING_FRONT(&s->queue, struct delivery);
	ring_pop(&s->queue);
	s->q_bytes -= d->msg->payload.len;
	struct flow_cell *f = s->flow;
	if (!f)
		return;
	f->drained_at = s->w->now;
	uint64_t max_bytes = s->w->broker->cfg.max_queued_bytes;
	uint32_t st = atomic_load_explicit(&f->state, memory_order_relaxed);
	uint32_t clear = st & FLOW_SLOW;
	if ((st & FLOW_BYTES) && s->q_bytes <= max_bytes / 2)
		clear |= FLOW_BYTES;
	if (clear)
		flow_set_state(s->w, f, 0, clear);
	flow_sub(s->w, f, 1);
}

/* True when the session keeps whatever it is given because its publishers
 * are slowed instead (flow.h): online, flow control on, not stalled. */
static bool flow_holds(const struct session *s)
{
	return s->conn && s->flow &&
	       (atomic_load_explicit(&s->flow->state, memory_order_relaxed) &
	        (FLOW_ONLINE | FLOW_STALLED)) == FLOW_ONLINE;
}

/* Queues d (taking it) within max_queued_messages / max_queued_bytes
 * unless flow control holds the session. TERN_E_LIMIT over those bounds,
 * TERN_E_NOMEM; d stays the caller's then. */
static TERN_MUST_CHECK enum tern_err enqueue(struct session *s, struct delivery *d)
{
	const struct config *cfg = &s->w->broker->cfg;
	if (!flow_holds(s)) {
		if (cfg->max_queued_messages && s->queue.n >= cfg->max_queued_messages)
			return TERN_E_LIMIT;
		if (cfg->max_queued_bytes &&
		    s->q_bytes + d->msg->payload.len > cfg->max_queued_bytes)
			return TERN_E_LIMIT;
	}
	return queue_push(s, d);
}

static void drop(struct session *s, struct delivery *d, const char *why)
{
	record_del(s, d);
	if (s->conn && s->flow && d->qos > 0 &&
	    (atomic_load_explicit(&s->flow->state, memory_order_relaxed) & FLOW_STALLED)) {
		/* A stalled session: said once, when it stalled
		 * (session_flow_tick). */
		stat_add(&s->w->stats, STAT_DROP_STALLED, 1);
		delivery_clear(d);
		return;
	}
	stat_add(&s->w->stats, STAT_DROP_QUEUE_FULL, 1);
	static const struct log_kind dropped = {LOG_TYPE_WARNING, "dropped"};
	if (d->qos > 0 &&
	    log_limit_pass(&s->w->log_limit, &dropped, s->client_id, s->client_id_len, s->w->now))
		log_write(&s->w->broker->log, LOG_TYPE_WARNING,
		          "Warning: dropped QoS %u message on %.*s for client %.*s: %s", d->qos,
		          (int)d->msg->topic.len, (const char *)d->msg->topic.data,
		          (int)s->client_id_len, (const char *)s->client_id, why);
	delivery_clear(d);
}

/* The ACL decides what a client may read: live, queued and retained
 * messages alike. */
static bool may_read(const struct session *s, const struct delivery *d)
{
	return session_acl(s, d->msg->topic, ACL_READ);
}

void session_deliver_take(struct session *s, struct delivery *d)
{
	if (!d->stored && s->stored && keeps(d)) {
		/* Routed while the session was not stored yet (a CONNECT gave
		 * it an expiry meanwhile): what it holds is stored, so this
		 * must be too. */
		struct store_batch *b = persist_batch(s->w);
		if (b)
			record_delivery(s->w, b, s->id, d, 0, STORE_D_QUEUED);
	}
	d->stored = s->stored;
	if (!may_read(s, d)) {
		record_del(s, d);
		delivery_clear(d);
		return;
	}
	/* Onward delivery starts now for an online subscriber with room, so
	 * expiry is checked only for what has to wait [MQTT-3.3.2-5]. */
	struct sink *c = s->conn;
	if (d->qos == 0) {
		if (!c) {
			/* queue_qos0_messages keeps them for the offline
			 * session, within the same bounds as QoS 1 and 2. */
			if (s->w->broker->cfg.queue_qos0_messages && s->expiry != 0 &&
			    !expired(s, d)) {
				if (enqueue(s, d) != TERN_OK)
					drop(s, d,
					     "queue full (max_queued_messages / max_queued_bytes)");
				return;
			}
			delivery_clear(d);
			return;
		}
		if (sink_pending_out(c) > s->w->broker->cfg.max_output_bytes) {
			stat_add(&s->w->stats, STAT_DROP_SLOW_QOS0, 1);
			delivery_clear(d);
			return;
		}
		if (sink_send_publish(c, d, 0, false) == TERN_E_TOO_LARGE)
			/* Discarded as if delivered [MQTT-3.1.2-25]; a closed
			 * connection (TERN_E_CLOSED) drops QoS 0 anyway. */
			stat_add(&s->w->stats, STAT_DROP_TOO_LARGE, 1);
		delivery_clear(d);
		return;
	}
	if (c && s->queue.n == 0 && s->n_unsent == 0 && !s->pubrel_wait && window_open(s)) {
		send_inflight(s, d);
		return;
	}
	if (expired(s, d)) {
		record_del(s, d);
		stat_add(&s->w->stats, STAT_DROP_EXPIRED, 1);
		delivery_clear(d);
		return;
	}
	if (enqueue(s, d) != TERN_OK)
		drop(s, d, "queue full (max_queued_messages / max_queued_bytes)");
}

void session_arrive_take(struct session *s, struct delivery *d)
{
	bool counted = d->qos > 0;
	session_deliver_take(s, d);
	/* Every route of s carries s->flow. */
	if (counted && s->flow)
		flow_sub(s->w, s->flow, 1);
}

void session_pump(struct session *s)
{
	/* First what a resumed session still has to resend, in order
	 * [MQTT-4.6.0-1], then the queue. */
	for (size_t i = 0; s->conn && s->n_unsent && i < s->n_inflight; i++) {
		struct inflight *f = &s->inflight[i];
		if (!f->unsent)
			continue;
		if (!window_open(s))
			return;
		f->unsent = false;
		s->n_unsent--;
		/* DUP 0 for one whose first transmission never went (its
		 * commit came while the client was away) [MQTT-3.3.1-1]. */
		bool dup = !f->fresh || (f->d.ack && cluster_ack_delivered(f->d.ack) > 1);
		enum tern_err err = sink_send_publish(s->conn, &f->d, f->packet_id, dup);
		if (err == TERN_E_TOO_LARGE) {
			inflight_remove(s, f);
			return; /* removal pumps again */
		}
		if (err != TERN_E_CLOSED)
			f->fresh = false;
	}
	/* No new packet id while the session's PUBREL entries are on their
	 * way from the cluster: one of them may hold it (session_durable.c). */
	while (s->conn && s->queue.n && s->n_unsent == 0 && !s->pubrel_wait && window_open(s)) {
		struct delivery d;
		queue_pop(s, &d);
		if (expired(s, &d)) {
			record_del(s, &d);
			stat_add(&s->w->stats, STAT_DROP_EXPIRED, 1);
			delivery_clear(&d);
			continue;
		}
		if (!may_read(s, &d)) {
			/* Checked again as it leaves the queue: an acl_file
			 * reloaded (SIGHUP) while it waited may deny it now,
			 * as mosquitto re-checks queued messages. */
			record_del(s, &d);
			delivery_clear(&d);
			continue;
		}
		if (d.qos == 0) {
			/* Queued by queue_qos0_messages: no window, no id. */
			if (sink_send_publish(s->conn, &d, 0, false) == TERN_E_TOO_LARGE)
				stat_add(&s->w->stats, STAT_DROP_TOO_LARGE, 1);
			delivery_clear(&d);
			continue;
		}
		send_inflight(s, &d);
	}
}

void session_resume(struct session *s)
{
	struct sink *c = s->conn;
	/* Every unacknowledged PUBLISH is sent again with DUP, and every
	 * PUBREL again [MQTT-4.4.0-1]; PUBLISHes only as the new connection's
	 * Receive Maximum allows, which session_pump() enforces. Onward
	 * delivery of these has started, so expiry no longer removes them
	 * [MQTT-3.3.2-5]. */
	s->n_unsent = 0;
	for (size_t i = 0; i < s->n_inflight; i++) {
		struct inflight *f = &s->inflight[i];
		/* What waits for its commit goes once it is done, on this
		 * connection (publish_committed(), session_pubrel_committed()). */
		if (f->held)
			continue;
		f->unsent = f->state != INFLIGHT_WAIT_PUBCOMP;
		if (f->unsent) {
			s->n_unsent++;
			continue;
		}
		struct tern_packet p = {.type = TERN_PUBREL};
		p.u.ack.packet_id = f->packet_id;
		sink_answer(c, &p);
	}
	session_pump(s);
}

/* Removes f and pumps the queue into the slot it leaves. */
static void inflight_remove(struct session *s, struct inflight *f)
{
	inflight_cut(s, f);
	session_pump(s);
}

/* Removes f (its store row too) without pumping, for a caller that sends
 * on by itself. */
static void inflight_cut(struct session *s, struct inflight *f)
{
	size_t i = (size_t)(f - s->inflight);
	if (f->unsent)
		s->n_unsent--;
	/* A PUBCOMP-waiting entry no longer holds its message; its store id
	 * was kept for this. */
	struct store_batch *b = stored_batch(s);
	if (b && f->store_id)
		persist_note(s->w, store_delivery_del(b, s->id, f->store_id));
	delivery_clear(&f->d);
	memmove(&s->inflight[i], &s->inflight[i + 1], (s->n_inflight - i - 1) * sizeof(*f));
	s->n_inflight--;
}

enum inflight_ack session_inflight_ack(struct session *s, enum tern_packet_type type,
                                       uint16_t packet_id, uint8_t reason)
{
	struct inflight *f = inflight_find(s, packet_id);
	if (!f)
		return INFLIGHT_ACK_UNKNOWN;
	/* Its packet is not out yet: nothing the client has can answer it
	 * (a PUBREC repeated while its PUBREL waits is answered by that
	 * PUBREL). */
	if (f->held)
		return INFLIGHT_ACK_HELD;
	/* An acknowledgement of the other QoS's flow can only come from a
	 * client that lost track of its ids (section 4.13). */
	if ((f->state == INFLIGHT_WAIT_PUBACK) != (type == TERN_PUBACK))
		return INFLIGHT_ACK_WRONG_FLOW;
	if (type == TERN_PUBCOMP && f->state == INFLIGHT_WAIT_PUBREC)
		return INFLIGHT_ACK_EARLY; /* it answers a PUBREL not sent yet */
	if (type != TERN_PUBREC || reason >= 0x80) {
		/* PUBACK [MQTT-4.3.2-1], PUBCOMP, or a failing PUBREC, which
		 * ends the flow for this message. */
		inflight_remove(s, f);
		return INFLIGHT_ACK_DONE;
	}
	if (f->unsent) {
		/* The client got it before the reconnect: no resend needed. */
		f->unsent = false;
		s->n_unsent--;
	}
	/* The message itself is no longer needed: only the id is
	 * [MQTT-4.3.3-5]. In a cluster, a queue's message is recorded as
	 * this PUBREL entry where any node finds it, and leaves its queue
	 * (session_durable.c); the first PUBREC only. */
	if (f->d.ack && f->state == INFLIGHT_WAIT_PUBREC)
		(void)cluster_ack_pubrec(
		        f->d.ack, (struct tern_bytes){s->client_id, s->client_id_len}, packet_id);
	msg_unref(f->d.msg);
	f->d.msg = NULL;
	f->state = INFLIGHT_WAIT_PUBCOMP;
	struct store_batch *b = stored_batch(s);
	if (!b || !f->store_id)
		return INFLIGHT_ACK_DONE;
	persist_note(s->w, store_delivery_state(b, s->id, f->store_id, packet_id, STORE_D_PUBREL));
	struct held_ack a = {.session_id = s->id,
	                     .conn_id = s->conn ? s->conn->id : 0,
	                     .packet_id = packet_id,
	                     .type = TERN_PUBREL};
	if (persist_hold_ack(s->w, &a))
		return INFLIGHT_ACK_DONE; /* no memory to wait: at once */
	f->held = true;
	return INFLIGHT_ACK_HELD;
}

void session_pubrel_committed(struct session *s, uint16_t packet_id)
{
	struct inflight *f = inflight_find(s, packet_id);
	if (!f || !f->held || f->state != INFLIGHT_WAIT_PUBCOMP)
		return;
	f->held = false;
	if (s->conn)
		sink_answer_ack(s->conn, TERN_PUBREL, packet_id, TERN_RC_SUCCESS);
}

void session_pubrel_restore(struct session *s, uint16_t packet_id, struct cluster_ack *ack)
{
	struct inflight *f = inflight_find(s, packet_id);
	if (f || inflight_reserve(s) != TERN_OK) {
		/* Held by this very entry (a PUBREC of this session here), or
		 * taken by a message sent before the entries could be read
		 * (after a failed read): the entry stays in the cluster. */
		if (f && f->state != INFLIGHT_WAIT_PUBCOMP)
			log_write(&s->w->broker->log, LOG_TYPE_WARNING,
			          "Warning: client %.*s: packet id %u of a PUBREL kept in the "
			          "cluster is taken by another message",
			          (int)s->client_id_len, (const char *)s->client_id, packet_id);
		else if (!f)
			log_write(&s->w->broker->log, LOG_TYPE_ERR,
			          "Error: out of memory restoring a PUBREL of %.*s",
			          (int)s->client_id_len, (const char *)s->client_id);
		cluster_ack_drop(ack);
		return;
	}
	f = &s->inflight[s->n_inflight++];
	memset(f, 0, sizeof(*f));
	f->d.qos = 2;
	f->d.ack = ack;
	f->packet_id = packet_id;
	f->state = INFLIGHT_WAIT_PUBCOMP;
	if (!s->conn)
		return; /* session_resume() sends it */
	/* PUBREL has no DUP: the same packet again [MQTT-4.4.0-1]. */
	struct tern_packet p = {.type = TERN_PUBREL};
	p.u.ack.packet_id = packet_id;
	sink_answer(s->conn, &p);
}

bool session_pubrel_held(const struct session *s, uint64_t seq)
{
	/* By sequence, not packet id: an entry may hold another id than its
	 * sequence gives (next_packet_id_for()). */
	for (size_t i = 0; i < s->n_inflight; i++) {
		const struct inflight *f = &s->inflight[i];
		if (f->state == INFLIGHT_WAIT_PUBCOMP && f->d.ack &&
		    cluster_ack_seq(f->d.ack) == seq)
			return true;
	}
	return false;
}

enum tern_err session_restore_queued_take(struct session *s, struct delivery *d)
{
	/* The bound was applied when the message was queued: keep them all. */
	enum tern_err err = queue_push(s, d);
	if (err)
		delivery_clear(d);
	return err;
}

enum tern_err session_restore_inflight_take(struct session *s, struct delivery *d,
                                            uint16_t packet_id, uint8_t state)
{
	if (!packet_id || inflight_find(s, packet_id)) {
		/* Cannot be: treat it as not yet sent. */
		return session_restore_queued_take(s, d);
	}
	if (inflight_reserve(s) != TERN_OK) {
		delivery_clear(d);
		return TERN_E_NOMEM;
	}
	struct inflight *f = &s->inflight[s->n_inflight++];
	memset(f, 0, sizeof(*f));
	f->d = *d;
	memset(d, 0, sizeof(*d));
	f->packet_id = packet_id;
	f->state = state;
	f->store_id = f->d.msg ? f->d.msg->store_id : 0;
	if (packet_id >= s->next_packet_id)
		s->next_packet_id = packet_id == UINT16_MAX ? 1 : (uint16_t)(packet_id + 1);
	return TERN_OK;
}

struct flow_cell *session_flow(struct session *s)
{
	if (s->flow)
		return s->flow;
	/* Everything already queued counts from the start. */
	s->flow = flow_cell_new(s->queue.n, s->w->broker->cfg.max_queued_messages);
	if (s->flow)
		atomic_store_explicit(&s->flow->stored, s->stored, memory_order_relaxed);
	if (s->flow && s->conn)
		session_flow_online(s, true);
	return s->flow;
}

void session_flow_online(struct session *s, bool online)
{
	struct flow_cell *f = s->flow;
	if (!f)
		return;
	f->over_at = 0;
	f->drained_at = s->w->now;
	/* max_stall_time 0 turns flow control off: online sessions then drop
	 * by policy as offline ones do (mosquitto's behaviour). */
	if (online && s->w->broker->cfg.max_stall_time)
		flow_set_state(s->w, f, FLOW_ONLINE, FLOW_STALLED | FLOW_SLOW);
	else
		flow_set_state(s->w, f, 0, FLOW_ONLINE | FLOW_STALLED | FLOW_SLOW);
}

void session_flow_tick(struct session *s, uint64_t now)
{
	struct flow_cell *f = s->flow;
	/* Not "full": a publisher waits until the session is drained to its
	 * low mark, and the high one counts what was on its way, so a paused
	 * publisher can be waiting for a queue that has settled below it. */
	if (!f || !s->conn || flow_drained(f)) {
		if (f)
			f->over_at = 0;
		return;
	}
	if (!f->over_at) {
		f->over_at = now;
		return;
	}
	/* Over its mark, with nothing taken off the queue since: the client
	 * has stopped reading, or reads too little to matter. */
	uint64_t since = f->over_at > f->drained_at ? f->over_at : f->drained_at;
	uint32_t stall = s->w->broker->cfg.max_stall_time;
	if (now - since >= FLOW_SLOW_MS &&
	    !(atomic_load_explicit(&f->state, memory_order_relaxed) & FLOW_SLOW))
		flow_set_state(s->w, f, FLOW_SLOW, 0); /* its share groups pick others */
	/* A stall is for publishers held back: with nobody waiting there is
	 * nothing to release (and nothing to drop yet). */
	if (now - since < (uint64_t)stall * 1000u || !atomic_load(&f->waiters))
		return;
	f->over_at = 0;
	flow_set_state(s->w, f, FLOW_STALLED, 0);
	stat_add(&s->w->stats, STAT_FLOW_STALLS, 1);
	log_write(&s->w->broker->log, LOG_TYPE_WARNING,
	          "Warning: client %.*s has taken no message for %u s with %u queued: its "
	          "publishers are no longer slowed, and QoS 1/2 messages beyond "
	          "max_queued_messages are dropped until it catches up (max_stall_time).",
	          (int)s->client_id_len, (const char *)s->client_id, stall, s->queue.n);
}
