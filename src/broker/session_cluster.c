/*
 * session_cluster.c - a session's record in the cluster's sessions bucket
 * (docs/cluster.md, "Persistent sessions across nodes";
 * src/cluster/session_record.h is the layout, src/cluster/sessions.c the
 * bucket).
 *
 * The record is what another node needs to resume the session when its
 * client reconnects there, or to publish its will and expire it when this
 * node dies (src/cluster/adopt.c): its subscriptions, its expiry, whether
 * it is online, and the will that would go if its connection were lost.
 * Queued and in-flight messages are not in it; they are in the session's
 * durable queues, found by name from the client id and the filter.
 *
 * It is written from the session's transitions, in one place: attach (the
 * CONNECT, once the connection's will is known), a SUBSCRIBE or
 * UNSUBSCRIBE, going offline, a will that went, and deleted when the
 * session ends for good. A session moved to another node (taken over) is
 * the new holder's to write; this node only forgets what it knew of the
 * key. Sessions that nobody could resume or mourn (expiry 0, no will) and
 * the bridges' own local sessions have none.
 *
 * A SUBSCRIBE's SUBACK waits for the record that holds the subscription,
 * as it waits for the subscription's durable queue: were this node to die
 * right after the SUBACK, the node that resumes or adopts the session must
 * know the subscription, or the queue that keeps its messages would never
 * be bound again. Other writes do not hold anything back.
 */
#include "broker/session.h"

#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/route.h"
#include "broker/router.h"
#include "broker/session_int.h"
#include "broker/sink.h"
#include "broker/worker.h"
#include "cluster/cluster.h"
#include "cluster/session_record.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/map.h"

/* Whether s needs a record: it can be resumed (an expiry) or has a will
 * another node might have to publish. */
static bool wants_record(const struct session *s, bool has_will)
{
	return (s->expiry > 0 || has_will) && s->listener != AUTH_LISTENER_BRIDGE;
}

/* The wall-clock ms at which offline s went offline: counted back from
 * its expiry when it has one; now when it never expires (the time then
 * only dates a will, whose delay is counted from now too). */
static int64_t offline_wall(const struct session *s, uint64_t now, int64_t wall)
{
	if (s->expiry == UINT32_MAX || !s->expire_at)
		return wall;
	uint64_t since = s->expire_at - (uint64_t)s->expiry * 1000u;
	return since <= now ? wall - (int64_t)(now - since) : wall;
}

static void log_failure(const struct session *s, const char *what, enum tern_err err)
{
	log_write(&s->w->broker->log, LOG_TYPE_ERR,
	          "Error: the cluster's record of the session of %.*s could not be %s (%s)",
	          (int)s->client_id_len, (const char *)s->client_id, what, tern_strerror(err));
}

void session_cluster_write(struct session *s, struct route_batch *batch)
{
	struct worker *w = s->w;
	struct cluster *cl = w->broker->cluster;
	if (!cl)
		return;
	struct tern_bytes cid = {s->client_id, s->client_id_len};
	struct sink *k = s->conn;
	const struct msg *will = k ? k->will : s->will;
	if (!wants_record(s, will != NULL)) {
		if (s->cluster_rec) {
			enum tern_err err = cluster_session_del(cl, cid, s->claim);
			if (err)
				log_failure(s, "deleted", err);
			s->cluster_rec = false;
		}
		return;
	}
	uint64_t now = w->now;
	int64_t wall = wall_ms();
	struct session_record r = {
	        .version = s->version,
	        .online = k != NULL,
	        .expiry = s->expiry,
	        .claim = s->claim,
	        .offline_at = k ? 0 : offline_wall(s, now, wall),
	        .node = {(const uint8_t *)cluster_node(cl), (uint32_t)strlen(cluster_node(cl))},
	        .will = will,
	};
	if (k && will) {
		r.will_delay = k->will_delay;
		r.will_has_expiry = k->will_has_expiry;
		r.will_expiry = k->will_expiry;
	} else if (will) {
		/* What is left of the delay, counted from the offline time. */
		uint64_t left = s->will_at > now ? (s->will_at - now + 999u) / 1000u : 0;
		int64_t gone = (wall - r.offline_at) / 1000;
		r.will_delay = (uint32_t)(left + (uint64_t)(gone > 0 ? gone : 0));
		r.will_has_expiry = s->will_has_expiry;
		r.will_expiry = s->will_expiry;
	}
	size_t n = s->subs.count, i = 0, pos = 0;
	struct session_record_sub *subs = n ? malloc(n * sizeof(*subs)) : NULL;
	if (n && !subs) {
		log_failure(s, "written", TERN_E_NOMEM);
		return;
	}
	const struct sub *sub;
	while ((sub = map_next(&s->subs, &pos)) && i < n)
		subs[i++] = (struct session_record_sub){
		        .filter = {sub->filter, sub->len},
		        .qos = sub->qos,
		        .no_local = (sub->flags & ROUTE_NO_LOCAL) != 0,
		        .retain_as_published = (sub->flags & ROUTE_RAP) != 0,
		        .retain_handling = sub->retain_handling,
		        .sub_id = sub->sub_id,
		};
	r.subs = subs;
	r.n_subs = (uint32_t)i;
	struct buf out = {0};
	enum tern_err err = session_record_encode(&out, &r, 0);
	free(subs);
	if (!err) {
		bool pending = false;
		uint64_t token = batch ? batch->req << 16 | w->id : 0;
		err = cluster_session_put(cl, cid, s->claim, out.data + out.off, buf_used(&out),
		                          token, &pending);
		if (!err && pending && batch)
			batch->outstanding++;
	}
	buf_free(&out);
	if (err) {
		log_failure(s, "written", err);
		return;
	}
	s->cluster_rec = true;
}

void session_cluster_gone(struct session *s, bool ended, bool clean)
{
	struct cluster *cl = s->w->broker->cluster;
	if (!cl)
		return;
	struct tern_bytes cid = {s->client_id, s->client_id_len};
	if (!ended) {
		/* Moved: the record is the new holder's now, unless its
		 * CONNECT asked for a clean start, which ends the session
		 * here for good. The delete carries this node's claim, so a
		 * record the new holder wrote first stays (sessions.c). */
		if (clean && s->cluster_rec) {
			enum tern_err err = cluster_session_del(cl, cid, s->claim);
			if (err)
				log_failure(s, "deleted", err);
		} else {
			cluster_session_forget(cl, cid);
		}
		return;
	}
	if (!s->cluster_rec)
		return;
	enum tern_err err = cluster_session_del(cl, cid, s->claim);
	if (err)
		log_failure(s, "deleted", err);
	s->cluster_rec = false;
}

enum tern_err session_record_sub_add(struct session *s, const struct session_record_sub *e)
{
	struct worker *w = s->w;
	struct tern_bytes group, plain;
	bool shared = tern_topic_filter_share(e->filter, &group, &plain);
	uint8_t flags =
	        (e->no_local ? ROUTE_NO_LOCAL : 0) | (e->retain_as_published ? ROUTE_RAP : 0);
	if (session_durable_sub(s, shared, e->qos, flags))
		flags |= ROUTE_DURABLE;
	bool is_new;
	enum tern_err err = session_subscribe(s, e->filter, e->qos, flags, e->retain_handling,
	                                      e->sub_id, &is_new);
	if (err)
		return err;
	struct route r = {.session = s->id,
	                  .flow = session_flow(s),
	                  .sub_id = e->sub_id,
	                  .home = (uint16_t)w->id,
	                  .qos = e->qos,
	                  .flags = flags};
	if (!r.flow || route_change(w, NULL, true, e->filter, &r)) {
		(void)session_unsubscribe(s, e->filter);
		return TERN_E_NOMEM;
	}
	return TERN_OK;
}

struct session *session_from_record(struct worker *w, struct tern_bytes cid, const uint8_t *rec,
                                    size_t len, enum tern_err *err)
{
	struct broker *b = w->broker;
	struct session_record r;
	if ((*err = session_record_decode(rec, len, &r))) {

		log_write(&b->log, LOG_TYPE_ERR,
		          "Error: the cluster's record of the session of %.*s does not decode "
		          "(%s).",
		          (int)cid.len, (const char *)cid.data, tern_strerror(*err));
		return NULL;
	}
	if (!r.online && r.expiry != UINT32_MAX &&
	    r.offline_at + (int64_t)r.expiry * 1000 <= wall_ms()) {
		/* It expired while nobody held it (its node stopped or died
		 * before it could end it): nothing to resume
		 * [MQTT-3.1.2-23]. The new session's record replaces it. */
		log_write(&b->log, LOG_TYPE_DEBUG,
		          "Client %.*s: the cluster's record of its session has expired.",
		          (int)cid.len, (const char *)cid.data);
		*err = TERN_OK;
		return NULL;
	}
	struct session *s = session_new(w, cid.data, cid.len, r.version);
	if (!s || session_register(w, s)) {
		free(s);
		*err = TERN_E_NOMEM;
		return NULL;
	}
	/* The subscriptions need the expiry to know which have queues;
	 * the CONNECT sets the one in force next. The will of the record
	 * is not taken: the client is back [MQTT-3.1.3-9]. */
	s->expiry = r.expiry;
	s->claim = r.claim;
	s->cluster_rec = true;
	size_t cur = 0;
	struct session_record_sub e;
	while (session_record_next_sub(&r, &cur, &e))
		if ((*err = session_record_sub_add(s, &e))) {
			session_destroy_moved(s, false);
			return NULL;
		}
	log_write(&b->log, LOG_TYPE_DEBUG,
	          "Client %.*s: session resumed from node %.*s (%u subscriptions).", (int)cid.len,
	          (const char *)cid.data, (int)r.node.len, (const char *)r.node.data,
	          (unsigned)r.n_subs);
	*err = TERN_OK;
	return s;
}
