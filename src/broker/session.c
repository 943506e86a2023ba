/*
 * session.c - MQTT sessions: their lifecycle (create, resume, go offline,
 * expire, end), subscriptions, wills, inbound QoS 2, and what the store
 * keeps of them. The outbound QoS state machine and the offline queue are
 * session_out.c.
 *
 * Inbound QoS 2 uses method B of the spec (4.3.3): the message is routed on
 * the first PUBLISH and its packet id remembered until PUBREL, so a
 * retransmitted PUBLISH is not routed twice.
 *
 * Durability: the session module alone decides what the store keeps
 * (persist.c is its adapter to src/store). A session is stored (s->stored)
 * from the transition that gives it a non-zero expiry until the one that
 * ends it; each transition of a stored session records its store
 * operations (here and in session_out.c), and every path that ends a
 * stored session deletes its row, which takes everything under it along.
 * Nothing is recorded for a session that ends with its connection, so a
 * message that reaches only such sessions is not written and its
 * acknowledgement waits for no commit. Acknowledgements that promise
 * durability go through session_ack(), which holds them until the commit
 * and keeps them in order.
 */
#include "broker/session.h"
#include "broker/topic_rate.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "auth/acl.h"
#include "broker/auth.h"
#include "broker/archive_link.h"
#include "broker/broker.h"
#include "broker/cluster_link.h"
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

/* struct session keeps the version in 4 bits. */
_Static_assert(TERN_V5 < 16, "a protocol version does not fit session.version");

/* A worker's sessions (w->sessions), private to this file. */
struct session_registry {
	struct map by_cid; /* client id -> session */
	struct map by_id;  /* id -> session */
	/* QoS 2 packet ids whose store row waits for their PUBREC's first
	 * commit (qos2_key()); see session_publish(). */
	struct map qos2_later;
};

/* The key of a session's inbound QoS 2 packet id in qos2_later: session
 * ids come from one counter of the broker (broker_new_id()), far below
 * 2^48 in any run. */
static uint64_t qos2_key(uint64_t session_id, uint16_t packet_id)
{
	return session_id << 16 | packet_id;
}

/* Whether packet_id of session_id was waiting for its row (and no longer
 * is). */
static bool qos2_later_take(struct worker *w, uint64_t session_id, uint16_t packet_id)
{
	return map64_del(&w->sessions->qos2_later, qos2_key(session_id, packet_id)) != NULL;
}

enum tern_err session_worker_new(struct worker *w)
{
	w->sessions = calloc(1, sizeof(*w->sessions));
	return w->sessions ? TERN_OK : TERN_E_NOMEM;
}

void session_destroy_all(struct worker *w)
{
	if (!w->sessions)
		return;
	/* Collected first: destroying changes the maps. */
	size_t pos = 0, n = 0;
	struct session *s;
	struct session **all = calloc(w->sessions->by_cid.count + 1, sizeof(*all));
	while (all && (s = map_next(&w->sessions->by_cid, &pos)))
		all[n++] = s;
	for (size_t i = 0; i < n; i++) {
		/* At shutdown nobody is left to receive wills or replica
		 * updates: drop them. */
		msg_unref(all[i]->will);
		all[i]->will = NULL;
		session_destroy(all[i]);
	}
	free(all);
}

void session_worker_free(struct worker *w)
{
	if (!w->sessions)
		return;
	map_free(&w->sessions->by_cid);
	map_free(&w->sessions->by_id);
	map_free(&w->sessions->qos2_later);
	free(w->sessions);
	w->sessions = NULL;
}

struct session *session_find(struct worker *w, const uint8_t *cid, size_t len)
{
	return map_get(&w->sessions->by_cid, &w->broker->hash_key, cid, len);
}

struct session *session_by_id(struct worker *w, uint64_t id)
{
	return map64_get(&w->sessions->by_id, id);
}

size_t session_count(const struct worker *w)
{
	return w->sessions->by_id.count;
}

struct session *session_next(struct worker *w, size_t *pos)
{
	return map_next(&w->sessions->by_cid, pos);
}

uint64_t session_id(const struct session *s)
{
	return s->id;
}

struct worker *session_worker(const struct session *s)
{
	return s->w;
}

struct tern_bytes session_client_id(const struct session *s)
{
	return (struct tern_bytes){s->client_id, s->client_id_len};
}

struct sink *session_sink(const struct session *s)
{
	return s->conn;
}

uint32_t session_expiry(const struct session *s)
{
	return s->expiry;
}

void session_claim_set(struct session *s, uint64_t stamp)
{
	s->claim = stamp;
	s->adopted = false;
}

bool session_claim_older(const struct session *s, uint64_t stamp, bool tie_wins)
{
	/* A session without a claim (restored from the store, or connected
	 * while JetStream was away) is older than any. */
	return s->claim < stamp || (s->claim == stamp && tie_wins);
}

bool session_allowed(const struct session *s, struct tern_bytes topic, int access)
{
	return session_acl(s, topic, access);
}

bool session_has_sub(const struct session *s, struct tern_bytes filter)
{
	return map_get(&s->subs, &s->w->broker->hash_key, filter.data, filter.len) != NULL;
}

size_t session_sub_count(const struct session *s)
{
	return s->subs.count;
}

uint64_t session_held(const struct session *s)
{
	return s->queue.n + s->n_inflight;
}

struct tern_bytes session_username(const struct session *s)
{
	return (struct tern_bytes){s->username, s->username_len};
}

uint8_t session_version(const struct session *s)
{
	return s->version;
}

uint32_t session_inflight_count(const struct session *s)
{
	return s->n_inflight;
}

uint32_t session_queued_count(const struct session *s)
{
	return (uint32_t)s->queue.n;
}

bool session_sub_next(const struct session *s, size_t *pos, struct session_sub_view *out)
{
	const struct sub *sub = map_next(&s->subs, pos);
	if (!sub)
		return false;
	out->filter = (struct tern_bytes){sub->filter, sub->len};
	out->qos = sub->qos;
	out->flags = sub->flags;
	out->retain_handling = sub->retain_handling;
	out->sub_id = sub->sub_id;
	return true;
}

bool session_due(const struct session *s, uint64_t now)
{
	return !s->conn &&
	       ((s->will && now >= s->will_at) || (s->expire_at && now >= s->expire_at));
}

struct session *session_new(struct worker *w, const uint8_t *cid, size_t len, uint8_t version)
{
	/* One allocation with the client id: idle sessions are many. The
	 * id starts where the members end, not after the struct's tail
	 * padding. */
	struct session *s = calloc(1, offsetof(struct session, client_id) + (len ? len : 1));
	if (!s)
		return NULL;
	memcpy(s->client_id, cid, len);
	s->client_id_len = (uint16_t)len;
	s->id = broker_new_id(w->broker);
	s->w = w;
	s->version = version;
	s->listener = AUTH_LISTENER_NONE;
	s->next_packet_id = 1;
	return s;
}

enum tern_err session_register(struct worker *w, struct session *s)
{
	struct session_registry *r = w->sessions;
	if (map_put(&r->by_cid, &w->broker->hash_key, s->client_id, s->client_id_len, s))
		return TERN_E_NOMEM;
	if (map64_put(&r->by_id, s->id, s)) {
		map_del(&r->by_cid, &w->broker->hash_key, s->client_id, s->client_id_len);
		return TERN_E_NOMEM;
	}
	stat_set(&w->stats, STAT_SESSIONS, r->by_id.count);
	return TERN_OK;
}

static void mark_stored(struct session *s, bool stored)
{
	s->stored = stored;
	if (s->flow)
		atomic_store_explicit(&s->flow->stored, stored, memory_order_relaxed);
}

/* Writes s's row (created or updated: expiry, and disconnected_at,
 * wall-clock ms or 0 while online) and marks it stored. */
static void record(struct session *s, int64_t disconnected_at)
{
	struct store_batch *b = persist_batch(s->w);
	if (!b)
		return;
	persist_note(s->w, store_session_put(b, s->id, s->client_id, s->client_id_len, s->version,
	                                     s->expiry, disconnected_at));
	/* Nothing else to write: a session that is not stored holds state
	 * only while its expiry is 0, and such a session ends with its
	 * connection (at a takeover too), so it is never stored later. A
	 * session is stored from the CONNECT that creates or resumes it, before
	 * anything is routed to it. */
	mark_stored(s, true);
}

/* Deletes what the store keeps of s (its row's deletion cascades to its
 * subscriptions, deliveries, inbound QoS 2 ids and will) and marks it not
 * stored. */
static void unrecord(struct session *s)
{
	struct store_batch *b = stored_batch(s);
	if (!b)
		return;
	persist_note(s->w, store_session_del(b, s->id));
	mark_stored(s, false);
}

void session_set_expiry(struct session *s, uint32_t expiry)
{
	s->expiry = expiry;
	if (expiry)
		record(s, s->conn ? 0 : wall_ms());
	else
		/* The session ends at disconnect: it must not come back after
		 * a restart, even if it was stored before. */
		unrecord(s);
}

/* Keeps m, published by s, as the retained message of its topic (an empty
 * payload clears it [MQTT-3.3.1-6]), in the store too; with
 * check_retain_source, with s's client id, username and listener. */
static TERN_MUST_CHECK enum tern_err retain(struct session *s, struct msg *m)
{
	struct worker *w = s->w;
	struct retain_source src = {
	        .client_id = {s->client_id, s->client_id_len},
	        .username = {s->username, s->username_len},
	        .listener = s->listener,
	};
	struct store_batch *b = persist_batch(w);
	if (b) {
		if (m->payload.len)
			persist_note(w, store_msg_put(b, m));
		/* Its publisher goes with it whatever check_retain_source
		 * says now, as in mosquitto's persistence file, so that the
		 * option holds after a restart, also turned on then. */
		struct store_retain_src ssrc = {.client_id = s->client_id,
		                                .client_id_len = s->client_id_len,
		                                .username = s->username,
		                                .username_len = s->username_len,
		                                .has_user = s->username != NULL,
		                                .listener = s->listener};
		persist_note(w, store_retain_put(b, m->topic.data, m->topic.len,
		                                 m->payload.len ? m->store_id : 0, &ssrc));
	}
	enum tern_err err = retain_set_source(w->broker->retain, m,
	                                      w->broker->cfg.check_retain_source ? &src : NULL);
	if (!err)
		cluster_link_retain(w, m, m->durable);
	return err;
}

/* Publishes s->will; rewrite: its record in the cluster says so (not when
 * a write or a delete of it follows anyway). */
static void fire_will(struct session *s, bool rewrite);

void session_fire_will(struct session *s)
{
	fire_will(s, true);
}

static void fire_will(struct session *s, bool rewrite)
{
	struct msg *will = s->will;
	if (!will)
		return;
	s->will = NULL;
	s->will_at = 0;
	struct worker *w = s->w;
	/* No other worker holds the will yet, so it can still be changed;
	 * a store batch that recorded it (a delayed will) copied its expiry
	 * then and reads only the rest (store_msg_put). */
	if (s->will_has_expiry)
		will->expire_at = w->now + (uint64_t)s->will_expiry * 1000u;
	persist_assign_id(w, will);
	struct store_batch *b = stored_batch(s);
	if (b)
		persist_note(w, store_will_put(b, s->id, 0, 0));
	if (will->retain && retain(s, will))
		log_write(&w->broker->log, LOG_TYPE_ERR,
		          "Error: out of memory storing a retained will");
	/* Into the cluster's durable queues too; nobody waits for it. */
	if (will->qos > 0 && w->broker->cluster)
		cluster_link_store_will(w, will);
	if (route_publish(w, will, NULL, NULL))
		log_write(&w->broker->log, LOG_TYPE_ERR, "Error: out of memory routing a will");
	/* A will is a message of its client's: the archives keep it too. */
	if (w->broker->archives)
		archive_link_publish(w, will, s->client_id, s->client_id_len, s->username,
		                     s->username_len, s->username != NULL);
	msg_unref(will);
	if (rewrite && s->cluster_rec)
		session_cluster_write(s, NULL);
}

void session_will_cancel(struct session *s)
{
	if (!s->will)
		return;
	msg_unref(s->will);
	s->will = NULL;
	s->will_at = 0;
	struct store_batch *b = stored_batch(s);
	if (b)
		persist_note(s->w, store_will_put(b, s->id, 0, 0));
}

enum tern_err session_attach(struct session *s, struct sink *k, uint8_t version,
                             struct tern_bytes user, uint32_t expiry)
{
	/* The username of the connection, for ACL checks of what it is
	 * sent; copied first, so that a failure changes nothing. */
	uint8_t *u = NULL;
	if (user.data) {
		u = malloc(user.len ? user.len : 1);
		if (!u)
			return TERN_E_NOMEM;
		memcpy(u, user.data, user.len);
	}
	free(s->username);
	s->username = u;
	s->username_len = (uint16_t)user.len;
	session_will_cancel(s);
	s->version = version;
	s->listener = k->internal ? AUTH_LISTENER_BRIDGE : k->listener;
	s->expire_at = 0;
	s->conn = k;
	k->session = s;
	session_flow_online(s, true);
	stat_add(&s->w->stats, STAT_SESSIONS_ONLINE, 1);
	session_set_expiry(s, expiry);
	return TERN_OK;
}

bool session_offline_take(struct session *s, struct msg *will, uint32_t delay, bool has_expiry,
                          uint32_t will_expiry)
{
	struct worker *w = s->w;
	if (s->conn)
		s->conn->session = NULL;
	s->conn = NULL;
	session_flow_online(s, false);
	stat_add(&w->stats, STAT_SESSIONS_ONLINE, (uint64_t)-1);
	if (will) {
		if (delay > s->expiry)
			delay = s->expiry;
		msg_unref(s->will);
		s->will = will;
		s->will_has_expiry = has_expiry;
		s->will_expiry = will_expiry;
		s->will_at = w->now + (uint64_t)delay * 1000u;
		if (delay == 0)
			fire_will(s, false);
	}
	if (s->expiry == 0) {
		session_destroy(s);
		return true;
	}
	s->expire_at = s->expiry == UINT32_MAX ? 0 : w->now + (uint64_t)s->expiry * 1000u;
	int64_t wall = wall_ms();
	record(s, wall);
	struct store_batch *b = stored_batch(s);
	if (s->will)
		persist_assign_id(w, s->will);
	if (b && s->will && s->will->store_id) {
		/* A delayed will must survive a restart too. */
		persist_note(w, store_msg_put(b, s->will));
		persist_note(w, store_will_put(b, s->id, s->will->store_id,
		                               wall + (int64_t)(s->will_at - w->now)));
	}
	session_cluster_write(s, NULL);
	return false;
}

static void destroy(struct session *s, bool moved, bool clean);

void session_destroy(struct session *s)
{
	destroy(s, false, false);
}

void session_destroy_moved(struct session *s, bool clean)
{
	destroy(s, true, clean);
}

static void destroy(struct session *s, bool moved, bool clean)
{
	struct worker *w = s->w;
	fire_will(s, false);
	/* At shutdown sessions are freed, not ended: the store keeps them.
	 * Otherwise the session ends here, and what was stored of it goes
	 * whatever its expiry says now: a v5 DISCONNECT may have set it to 0
	 * (section 3.14.2.2.2), after which the state must not outlive the
	 * connection [MQTT-3.1.2-23]; clean start discards it
	 * [MQTT-3.1.2-4] [MQTT-3.1.2-6]. */
	bool ended = !atomic_load(&w->broker->stop);
	if (ended)
		unrecord(s);
	/* Stopping, the record stays as it is: the cluster's other nodes
	 * mourn the clients that were online (their wills) once this node's
	 * heartbeat stops. */
	if (ended || moved)
		session_cluster_gone(s, ended && !moved, clean);
	/* Its durable queues in a cluster end with it; freed at shutdown,
	 * or moved to another node, what they hold is delivered again
	 * wherever the client is. */
	session_durable_end(s, ended && !moved);
	void (*done_with)(struct delivery *) = ended && !moved ? delivery_clear : delivery_release;
	size_t pos = 0;
	struct sub *sub;
	while ((sub = map_next(&s->subs, &pos))) {
		struct route r = {.session = s->id, .home = (uint16_t)w->id};
		if (route_change(w, NULL, false, (struct tern_bytes){sub->filter, sub->len}, &r))
			log_write(&w->broker->log, LOG_TYPE_ERR,
			          "Error: out of memory removing a subscription");
		free(sub->filter);
		free(sub);
	}
	map_free(&s->subs);
	for (uint32_t i = 0; i < s->queue.n; i++)
		done_with(RING_AT(&s->queue, struct delivery, i));
	ring_free(&s->queue);
	if (s->flow) {
		/* Publishers waiting for it go on; replicas may hold the cell
		 * a little longer. */
		flow_set_state(w, s->flow, 0, FLOW_ONLINE | FLOW_STALLED | FLOW_BYTES | FLOW_SLOW);
		flow_cell_unref(s->flow);
		s->flow = NULL;
	}
	for (size_t i = 0; i < s->n_inflight; i++)
		done_with(&s->inflight[i].d);
	free(s->inflight);
	free(s->qos2_in);
	struct session_registry *r = w->sessions;
	if (map_get(&r->by_cid, &w->broker->hash_key, s->client_id, s->client_id_len) == s)
		map_del(&r->by_cid, &w->broker->hash_key, s->client_id, s->client_id_len);
	map64_del(&r->by_id, s->id);
	stat_set(&w->stats, STAT_SESSIONS, r->by_id.count);
	free(s->username);
	free(s);
}

bool session_tick(struct session *s, uint64_t now)
{
	if (s->will && now >= s->will_at)
		session_fire_will(s);
	if (s->expire_at && now >= s->expire_at) {
		stat_add(&s->w->stats, STAT_SESSIONS_EXPIRED, 1);
		log_write(&s->w->broker->log, LOG_TYPE_NOTICE,
		          "Expiring client %.*s, its session expiry interval passed.",
		          (int)s->client_id_len, (const char *)s->client_id);
		session_destroy(s);
		return true;
	}
	return false;
}

static bool qos2_forget(struct session *s, uint16_t packet_id)
{
	(void)qos2_later_take(s->w, s->id, packet_id);
	for (size_t i = 0; i < s->n_qos2_in; i++) {
		if (s->qos2_in[i] == packet_id) {
			s->qos2_in[i] = s->qos2_in[--s->n_qos2_in];
			return true;
		}
	}
	return false;
}

enum tern_err session_restore_qos2(struct session *s, uint16_t packet_id)
{
	if (s->n_qos2_in == s->cap_qos2_in) {
		size_t cap = s->cap_qos2_in ? s->cap_qos2_in * 2 : 8;
		uint16_t *v = realloc(s->qos2_in, cap * sizeof(*v));
		if (!v)
			return TERN_E_NOMEM;
		s->qos2_in = v;
		s->cap_qos2_in = cap;
	}
	s->qos2_in[s->n_qos2_in++] = packet_id;
	return TERN_OK;
}

bool session_qos2_pending(const struct session *s, uint16_t packet_id)
{
	for (size_t i = 0; i < s->n_qos2_in; i++)
		if (s->qos2_in[i] == packet_id)
			return true;
	return false;
}

uint32_t session_qos2_count(const struct session *s)
{
	return s->n_qos2_in;
}

bool session_qos2_release(struct session *s, uint16_t packet_id, bool *durable)
{
	*durable = false;
	if (!qos2_forget(s, packet_id))
		return false;
	struct store_batch *b = stored_batch(s);
	if (b) {
		persist_note(s->w, store_qos2_del(b, s->id, packet_id));
		*durable = true;
	}
	return true;
}

enum tern_err session_publish(struct session *s, struct msg *m, uint16_t packet_id,
                              struct publish_result *r)
{
	struct worker *w = s->w;
	memset(r, 0, sizeof(*r));
	/* In a cluster, QoS 1/2 is acknowledged once the cluster's durable
	 * queues have it (for the persistent sessions of every node), and
	 * refused while they cannot take it (docs/cluster.md). */
	if (m->qos > 0 && w->broker->cluster && !cluster_topic_local(m->topic) &&
	    !cluster_link_store(w, m)) {
		r->unavailable = true;
		return TERN_OK;
	}
	persist_assign_id(w, m);
	size_t before = persist_ops(w);
	if (m->retain && retain(s, m))
		return TERN_E_NOMEM;
	if (route_publish(w, m, &r->matched, m->qos > 0 ? &r->full : NULL)) {
		/* A refused QoS 2 message leaves no id: its flow ends. */
		r->refused = true;
		return TERN_OK;
	}
	/* Accepted: the archives get it, in the same store batch as its
	 * other rows (archive_link.c). */
	if (w->broker->archives)
		archive_link_publish(w, m, s->client_id, s->client_id_len, s->username,
		                     s->username_len, s->username != NULL);
	if (w->topic_rates)
		topic_rate_note(w->topic_rates, m->topic, w->now);
	if (m->qos == 2) {
		if (session_restore_qos2(s, packet_id))
			return TERN_E_NOMEM;
		struct store_batch *b = stored_batch(s);
		if (b && m->durable && w->broker->cluster) {
			/* The message is the cluster's to keep (JetStream), the
			 * id ours (the local store): two commits that cannot
			 * be one. Were the id's row committed first and the
			 * node killed before JetStream had the message, the
			 * client's retransmission after the restart would be
			 * taken for a duplicate and the message lost. So the
			 * row is written once the PUBREC's hold (JetStream's
			 * answer and this batch) is over, and the PUBREC
			 * waits for that row in turn (session_ack_committed()).
			 * Killed in between, the retransmission is routed
			 * again: at least once rather than lost. */
			if (map64_put(&w->sessions->qos2_later, qos2_key(s->id, packet_id),
			              (void *)1)) {
				(void)qos2_forget(s, packet_id);
				return TERN_E_NOMEM;
			}
		} else if (b) {
			persist_note(w, store_qos2_put(b, s->id, packet_id));
		}
	}
	/* The rows recorded since `before` are this message's: the retained
	 * one, deliveries of stored sessions, its archive entries, its QoS 2
	 * id. */
	r->durable = persist_ops(w) != before || m->durable;
	return TERN_OK;
}

void session_ack(struct session *s, enum tern_packet_type type, uint16_t packet_id, uint8_t reason,
                 bool durable)
{
	struct sink *c = s->conn;
	struct worker *w = s->w;
	if (!c)
		return;
	if ((!w->broker->store && !w->broker->cluster) || (!durable && s->n_held == 0)) {
		sink_answer_ack(c, type, packet_id, reason);
		return;
	}
	struct held_ack a = {.session_id = s->id,
	                     .conn_id = c->id,
	                     .packet_id = packet_id,
	                     .type = (uint8_t)type,
	                     .reason = reason};
	if (persist_hold_ack(w, &a)) {
		/* Cannot wait: better unacknowledged than falsely so. */
		sink_close(c, TERN_RC_UNSPECIFIED, "out of memory");
		return;
	}
	s->n_held++;
}

void session_ack_committed(struct worker *w, const struct held_ack *a, enum tern_err err)
{
	if (a->type == TERN_PUBREL) {
		/* Outbound QoS 2: not one of the acks session_ack() counts
		 * and orders, nor bound to the connection it was held on. */
		struct session *rs = session_by_id(w, a->session_id);
		(void)err; /* logged by persist_done() */
		if (rs)
			session_pubrel_committed(rs, a->packet_id);
		return;
	}
	bool later = a->type == TERN_PUBREC && qos2_later_take(w, a->session_id, a->packet_id);
	struct session *s = session_by_id(w, a->session_id);
	if (!s)
		return;
	if (s->n_held)
		s->n_held--;
	struct store_batch *b = later && !err ? stored_batch(s) : NULL;
	if (b) {
		/* The message is in the cluster: now its id's row
		 * (session_publish()), and the PUBREC after that commit. */
		persist_note(w, store_qos2_put(b, s->id, a->packet_id));
		if (persist_hold_ack(w, a) == TERN_OK) {
			s->n_held++;
			return;
		}
		/* Refused below, better than falsely acked; the row goes again
		 * in the same batch. */
		persist_note(w, store_qos2_del(b, s->id, a->packet_id));
		err = TERN_E_NOMEM;
	}
	if (err && a->type == TERN_PUBREC) {
		/* The QoS 2 message is refused (v5 PUBREC 0x80 ends its flow,
		 * a 3.1.1 client resends it after the close): its packet id
		 * must leave no trace, or the next PUBLISH with it would be
		 * taken for a retransmission and never routed [MQTT-4.3.3-9].
		 * The store has none either: the failed transaction held it.
		 * Whether or not the client is still connected. */
		(void)qos2_forget(s, a->packet_id);
	} else if (err && a->type == TERN_PUBCOMP) {
		/* The store may still hold the id: a PUBCOMP would let the
		 * client reuse it, and after a restart its next message with
		 * that id would be taken for a retransmission and dropped.
		 * Keep the id (once), as the store does, and close below: the
		 * client sends PUBREL again when it reconnects [MQTT-4.4.0-1],
		 * which retries the deletion. Out of memory, the PUBREL then
		 * finds no id and is answered 0x92. */
		(void)qos2_forget(s, a->packet_id);
		enum tern_err kept = session_restore_qos2(s, a->packet_id);
		(void)kept; /* out of memory: see above */
	}
	struct sink *c = s->conn;
	/* Sends on a connection that is closing are dropped (sink.h). */
	if (!c || c->id != a->conn_id)
		return;
	enum tern_packet_type type = (enum tern_packet_type)a->type;
	if (!err) {
		sink_answer_ack(c, type, a->packet_id, a->reason);
	} else if (c->version == TERN_V5 && type != TERN_PUBCOMP) {
		/* Not durable: say so, so the publisher can try again. */
		sink_answer_ack(c, type, a->packet_id, TERN_RC_UNSPECIFIED);
	} else {
		/* 3.1.1 cannot say it, and PUBCOMP has no failure code:
		 * close, and the client resends on reconnect
		 * [MQTT-4.4.0-1]. */
		sink_close(c, TERN_RC_UNSPECIFIED, "storage failed");
	}
}

void session_after_commit(struct worker *w, uint64_t session_id, pending_done_fn fn, void *arg,
                          void (*free_arg)(void *))
{
	struct session *s = session_by_id(w, session_id);
	if (s && s->stored)
		persist_hold_call(w, fn, arg, free_arg);
	else
		fn(w, arg);
}

void session_record_delivery(struct worker *w, const struct route *r, struct delivery *d)
{
	/* Without a cell (out of memory) the row is recorded all the same:
	 * the store drops rows of sessions it does not have. */
	if (!keeps(d) || (r->flow && !atomic_load_explicit(&r->flow->stored, memory_order_relaxed)))
		return;
	struct store_batch *b = persist_batch(w);
	if (!b)
		return;
	record_delivery(w, b, r->session, d, 0, STORE_D_QUEUED);
	d->stored = true;
}

/* Adds filter to s->subs, or finds it there (*is_new says which), and sets
 * its options. TERN_E_NOMEM leaves s unchanged. */
static TERN_MUST_CHECK enum tern_err sub_set(struct session *s, struct tern_bytes filter,
                                             uint8_t qos, uint8_t flags, uint8_t retain_handling,
                                             uint32_t sub_id, bool *is_new)
{
	const struct hash_key *key = &s->w->broker->hash_key;
	struct sub *sub = map_get(&s->subs, key, filter.data, filter.len);
	*is_new = sub == NULL;
	if (!sub) {
		sub = calloc(1, sizeof(*sub));
		if (!sub || !(sub->filter = malloc(filter.len ? filter.len : 1))) {
			free(sub);
			return TERN_E_NOMEM;
		}
		memcpy(sub->filter, filter.data, filter.len);
		sub->len = (uint16_t)filter.len;
		if (map_put(&s->subs, key, sub->filter, sub->len, sub)) {
			free(sub->filter);
			free(sub);
			return TERN_E_NOMEM;
		}
	}
	sub->qos = qos;
	sub->flags = flags;
	sub->retain_handling = retain_handling;
	sub->sub_id = sub_id;
	return TERN_OK;
}

enum tern_err session_subscribe(struct session *s, struct tern_bytes filter, uint8_t qos,
                                uint8_t flags, uint8_t retain_handling, uint32_t sub_id,
                                bool *is_new)
{
	enum tern_err err = sub_set(s, filter, qos, flags, retain_handling, sub_id, is_new);
	if (err)
		return err;
	struct store_batch *b = stored_batch(s);
	if (b)
		persist_note(s->w, store_sub_put(b, s->id, filter.data, filter.len, qos, flags,
		                                 retain_handling, sub_id));
	return TERN_OK;
}

enum tern_err session_restore_sub(struct session *s, struct tern_bytes filter, uint8_t qos,
                                  uint8_t flags, uint8_t retain_handling, uint32_t sub_id)
{
	bool is_new;
	return sub_set(s, filter, qos, flags, retain_handling, sub_id, &is_new);
}

struct session *session_restore(struct worker *w, const struct store_loaded_session *ls)
{
	struct session *s = session_new(w, ls->client_id, ls->client_id_len, ls->version);
	if (!s) {
		msg_unref(ls->will);
		return NULL;
	}
	s->id = ls->id;
	s->expiry = ls->expiry;
	s->stored = true;
	/* In a cluster, an earlier run of this node wrote its record
	 * (session_cluster.c): it goes when the session ends here. */
	s->cluster_rec = w->broker->cluster != NULL;
	/* persistent_client_expiration bounds sessions that would never
	 * expire, also those stored before it was configured. */
	uint32_t bound = w->broker->cfg.persistent_client_expiration;
	if (s->expiry == UINT32_MAX && bound)
		s->expiry = bound;
	uint64_t now = mono_ms();
	int64_t wall = wall_ms();
	/* A session that was online when ternd stopped went offline then. */
	int64_t since = ls->disconnected_at ? ls->disconnected_at : wall;
	if (s->expiry != UINT32_MAX)
		s->expire_at = session_mono_of_wall(since + (int64_t)s->expiry * 1000, now, wall);
	if (ls->will) {
		s->will = ls->will;
		s->will_at = session_mono_of_wall(ls->will_at, now, wall);
	}
	if (session_register(w, s)) {
		msg_unref(s->will);
		free(s);
		return NULL;
	}
	return s;
}

bool session_unsubscribe(struct session *s, struct tern_bytes filter)
{
	struct sub *sub = map_del(&s->subs, &s->w->broker->hash_key, filter.data, filter.len);
	if (!sub)
		return false;
	struct store_batch *b = stored_batch(s);
	if (b)
		persist_note(s->w, store_sub_del(b, s->id, filter.data, filter.len));
	free(sub->filter);
	free(sub);
	return true;
}
