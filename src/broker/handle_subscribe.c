/*
 * handle_subscribe.c - SUBSCRIBE and UNSUBSCRIBE.
 *
 * The session's own table (session->subs) is changed at once; the router
 * replicas through route_change(). SUBACK / UNSUBACK go out only when every
 * replica has the change (route.c), and retained messages for the new
 * subscriptions follow the SUBACK. The answer is built now and kept in a
 * plan until then; the connection is looked up again by id when the plan
 * completes, because it may have closed in between.
 *
 * In a cluster, a persistent session's QoS 1/2 subscription is a durable
 * queue (session_durable.c), and what is published on other nodes before
 * the queue exists is not kept for it. So its SUBACK waits for JetStream
 * to have the queue too, and a filter whose queue cannot be made
 * (JetStream not reachable, a refusal, no answer in time) is refused:
 * 0x80 in its place of the SUBACK [MQTT-3.9.3-1] (3.1.1 "Failure", v5
 * "Unspecified error", section 3.9.3), as a QoS 1/2 PUBLISH is refused
 * then: the subscription is undone (plan_refused()), so what the
 * session holds is what was granted. A filter the session already had with
 * a queue has its queue: it does not wait.
 */
#include "broker/handlers.h"
#include "broker/mount.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/acl.h"
#include "broker/auth.h"
#include "broker/broker.h"
#include "broker/cluster_link.h"
#include "broker/config.h"
#include "broker/delivery.h"
#include "broker/retain.h"
#include "broker/route.h"
#include "broker/router.h"
#include "broker/session.h"
#include "broker/sink.h"
#include "broker/worker.h"
#include "tern/codec.h"
#include "util/log.h"
#include "util/map.h"

struct retained_req {
	uint8_t *filter; /* a plain filter (not shared); owned */
	uint16_t len;
	uint8_t qos;
	uint32_t sub_id;
};

/* A subscription whose SUBACK waits for its durable queue. */
struct queue_wait {
	uint8_t *filter; /* owned */
	uint16_t len;
	uint32_t reason; /* its index in reasons */
	size_t ret;      /* its retained request's index in ret; SIZE_MAX: none */
};

struct plan {
	uint64_t conn_id;
	uint64_t session_id;
	enum tern_packet_type type; /* TERN_SUBACK or TERN_UNSUBACK */
	uint16_t packet_id;
	uint32_t n;
	uint8_t *reasons;
	struct retained_req *ret;
	size_t n_ret;
	struct queue_wait *qw; /* room for n; NULL without a cluster */
	size_t n_qw;
};

static void plan_free(void *arg)
{
	struct plan *pl = arg;
	if (!pl)
		return;
	for (size_t i = 0; i < pl->n_ret; i++)
		free(pl->ret[i].filter);
	free(pl->ret);
	for (size_t i = 0; i < pl->n_qw; i++)
		free(pl->qw[i].filter);
	free(pl->qw);
	free(pl->reasons);
	free(pl);
}

static struct plan *plan_new(const struct sink *k, const struct session *s,
                             enum tern_packet_type type, uint16_t packet_id, uint32_t n)
{
	struct plan *pl = calloc(1, sizeof(*pl));
	if (!pl)
		return NULL;
	bool queues = type == TERN_SUBACK && session_worker(s)->broker->cluster;
	pl->reasons = malloc(n ? n : 1);
	pl->ret = type == TERN_SUBACK ? calloc(n ? n : 1, sizeof(*pl->ret)) : NULL;
	pl->qw = queues ? calloc(n ? n : 1, sizeof(*pl->qw)) : NULL;
	if (!pl->reasons || (type == TERN_SUBACK && !pl->ret) || (queues && !pl->qw)) {
		plan_free(pl);
		return NULL;
	}
	pl->conn_id = k->id;
	pl->session_id = session_id(s);
	pl->type = type;
	pl->packet_id = packet_id;
	return pl;
}

/* Sends retained messages matching one new subscription [MQTT-3.3.1-9],
 * with RETAIN 1 [MQTT-3.3.1-8]. */
/* check_retain_source: a retained message goes to a new subscriber only
 * if its publisher may still write it, under the ACL in force now (as
 * mosquitto checks it); one whose publisher is not known is sent. */
static bool source_may_write(void *arg, const struct msg *m, const struct retain_source *src)
{
	const struct worker *w = arg;
	if (!src)
		return true;
	return auth_allowed(w, src->listener, src->client_id.data, src->client_id.len,
	                    src->username.data, src->username.len, src->username.data != NULL,
	                    m->topic, ACL_WRITE);
}

static void send_retained(struct worker *w, struct session *s, const struct retained_req *r)
{
	struct retain_hits hits = {0};
	if (retain_match_checked(w->broker->retain, r->filter, r->len, w->now,
	                         w->broker->cfg.check_retain_source ? source_may_write : NULL, w,
	                         &hits))
		log_write(&w->broker->log, LOG_TYPE_ERR,
		          "Error: out of memory looking up retained messages");
	for (size_t i = 0; i < hits.n; i++) {
		struct delivery d = {0};
		d.msg = hits.v[i];
		hits.v[i] = NULL;
		d.qos = d.msg->qos < r->qos && !w->broker->cfg.upgrade_outgoing_qos ? d.msg->qos
		                                                                    : r->qos;
		d.retain = true;
		if (r->sub_id) {
			d.n_sub_ids = 1;
			d.sub_id = r->sub_id;
		}
		/* Recorded by the session when it is stored. */
		session_deliver_take(s, &d);
	}
	retain_hits_free(&hits);
}

static void plan_send(struct worker *w, void *arg)
{
	struct plan *pl = arg;
	struct sink *k = sink_find(w, pl->session_id, pl->conn_id);
	if (k) {
		struct tern_packet p = {.type = pl->type};
		p.u.subres.packet_id = pl->packet_id;
		p.u.subres.count = pl->n;
		p.u.subres.reasons = pl->reasons;
		/* A closing connection drops it (TERN_E_CLOSED), and gets no
		 * retained messages either. */
		enum tern_err err = sink_send(k, &p);
		for (size_t i = 0; (err == TERN_OK || err == TERN_E_TOO_LARGE) && i < pl->n_ret;
		     i++)
			if (pl->ret[i].filter) /* NULL: refused */
				send_retained(w, k->session, &pl->ret[i]);
	}
	plan_free(pl);
}

/* Every replica has the change; the answer also waits for the store to
 * have it (a stored session's), so a subscription that was acknowledged
 * survives a restart. */
static void plan_done(struct worker *w, void *arg)
{
	struct plan *pl = arg;
	session_after_commit(w, pl->session_id, plan_send, pl, plan_free);
}

/* Takes back s's subscription on filter (not shared), whose durable queue
 * could not be made: from s, from every replica (the changes join undo)
 * and from the queues s binds. The queue itself stays: it may be an
 * earlier session's, on another node, with what the client is owed. */
static void refuse_sub(struct worker *w, struct session *s, struct tern_bytes filter,
                       struct route_batch *undo)
{
	struct tern_bytes cid = session_client_id(s);
	(void)session_unsubscribe(s, filter);
	struct route r = {.session = session_id(s), .home = (uint16_t)w->id};
	if (route_change(w, undo, false, filter, &r))
		log_write(&w->broker->log, LOG_TYPE_ERR,
		          "Error: out of memory taking back a refused subscription");
	session_durable_bind(s);
	log_write(&w->broker->log, LOG_TYPE_NOTICE,
	          "Client %.*s: subscription to '%.*s' refused, its durable queue could not be "
	          "made.",
	          (int)cid.len, (const char *)cid.data, (int)filter.len, (const char *)filter.data);
}

/* The batch's refused call: the durable queue of filter could not be made.
 * Every entry of the SUBSCRIBE on it is refused, without its retained
 * messages, and the subscription undone, unless a later packet changed it
 * meanwhile (then it has no queue to wait for, or waits itself). */
static void plan_refused(struct worker *w, void *arg, struct tern_bytes filter,
                         struct route_batch *undo)
{
	struct plan *pl = arg;
	bool hit = false;
	for (size_t i = 0; i < pl->n_qw; i++) {
		struct queue_wait *q = &pl->qw[i];
		if (q->len != filter.len || memcmp(q->filter, filter.data, filter.len) != 0)
			continue;
		pl->reasons[q->reason] = TERN_RC_UNSPECIFIED;
		if (q->ret != SIZE_MAX) {
			free(pl->ret[q->ret].filter);
			pl->ret[q->ret].filter = NULL;
		}
		hit = true;
	}
	struct session *s = hit ? session_by_id(w, pl->session_id) : NULL;
	if (s && session_has_queue(s, filter))
		refuse_sub(w, s, filter, undo);
}

/* Answers pl once every replica has the batch's changes. Out of memory the
 * answer cannot wait for them and goes now (route_batch_end()): a message
 * published just after it may miss the new subscription on another
 * worker, which the log says. */
static void answer_when_routed(struct worker *w, struct route_batch *batch, struct plan *pl)
{
	if (route_batch_end(w, batch, plan_done, pl, plan_free) != TERN_OK)
		log_write(&w->broker->log, LOG_TYPE_WARNING,
		          "Warning: out of memory: a SUBACK/UNSUBACK went out before every worker "
		          "had the change");
}

void handle_subscribe(struct sink *k, struct session *s, const struct tern_subscribe *p)
{
	struct worker *w = session_worker(s);
	struct tern_bytes cid = session_client_id(s);
	uint32_t sub_id = 0;
	size_t cur = 0;
	if (k->version == TERN_V5)
		tern_props_next_sub_id(&p->props, &cur, &sub_id);

	struct plan *pl = plan_new(k, s, TERN_SUBACK, p->packet_id, p->count);
	if (!pl) {
		sink_close(k, TERN_RC_UNSPECIFIED, "out of memory");
		return;
	}
	struct route_batch batch;
	route_batch_begin(w, &batch);
	bool rebind = false;
	struct tern_sub_entry e;
	const char *mount = mount_of(w, k);
	cur = 0;
	while (tern_subscribe_next(p, &cur, &e)) {
		uint8_t *reason = &pl->reasons[pl->n++];
		/* mount_point: the filter is under the listener's prefix, for
		 * the ACL, the session and the routes alike (mount.h). */
		if (mount && mount_join(w, mount, e.filter, true, &e.filter) != TERN_OK) {
			*reason = k->version == TERN_V5 ? TERN_RC_TOPIC_FILTER_INVALID
			                                : TERN_RC_UNSPECIFIED;
			continue;
		}
		/* max_qos: granted at most that, as mosquitto does. */
		uint8_t max_qos = config_max_qos(&w->broker->cfg, k->listener);
		if (e.qos > max_qos)
			e.qos = max_qos;
		struct tern_bytes group, plain = e.filter;
		bool shared = tern_topic_filter_share(e.filter, &group, &plain);
		if (!shared)
			plain = e.filter;
		bool is_new; /* set by session_subscribe() */
		const struct config *cfg = &w->broker->cfg;
		if (topic_too_deep(w->broker, e.filter)) {
			/* Well-formed but beyond max_topic_levels. */
			*reason = k->version == TERN_V5 ? TERN_RC_TOPIC_FILTER_INVALID
			                                : TERN_RC_UNSPECIFIED;
			continue;
		}
		if (!session_allowed(s, e.filter, ACL_SUBSCRIBE)) {
			/* Nothing under this filter is readable. A filter the
			 * ACL allows only in part is granted: each delivery is
			 * checked (session_deliver_take), as mosquitto does. The
			 * refusal is 0x80 in v5 too ("the Server ... does not
			 * wish to reveal the reason", section 3.9.3; 0x87 would
			 * be as valid): the Paho interoperability test
			 * test_subscribe_failure requires 0x80. */
			*reason = TERN_RC_UNSPECIFIED;
			log_write(&w->broker->log, LOG_TYPE_NOTICE,
			          "Denied SUBSCRIBE from %.*s to '%.*s'.", (int)cid.len,
			          (const char *)cid.data, (int)e.filter.len,
			          (const char *)e.filter.data);
			continue;
		}
		if (cfg->max_subscriptions && session_sub_count(s) >= cfg->max_subscriptions &&
		    !session_has_sub(s, e.filter)) {
			*reason = k->version == TERN_V5 ? TERN_RC_QUOTA_EXCEEDED
			                                : TERN_RC_UNSPECIFIED;
			log_write(&w->broker->log, LOG_TYPE_NOTICE,
			          "Client %.*s: subscription refused, max_subscriptions reached.",
			          (int)cid.len, (const char *)cid.data);
			continue;
		}
		/* A repeated filter replaces the subscription's options
		 * [MQTT-3.8.4-3]. */
		uint8_t flags =
		        (e.no_local ? ROUTE_NO_LOCAL : 0) | (e.retain_as_published ? ROUTE_RAP : 0);
		/* A 3.1 / 3.1.1 bridge (the bridge bit, codec.h): what it
		 * publishes is not sent back to it, and RETAIN stays as
		 * published, as mosquitto does for its try_private peers. */
		if (k->bridge)
			flags |= ROUTE_NO_LOCAL | ROUTE_RAP;
		/* In a cluster, a persistent session's QoS 1/2 comes from a
		 * durable queue (session_durable.c). */
		bool durable = session_durable_sub(s, shared, e.qos, flags);
		if (durable)
			flags |= ROUTE_DURABLE;
		/* Granted before with a queue: the queue is there. */
		bool had_queue = durable && session_has_queue(s, e.filter);
		if (session_subscribe(s, e.filter, e.qos, flags, e.retain_handling, sub_id,
		                      &is_new)) {
			*reason = TERN_RC_UNSPECIFIED;
			continue;
		}
		/* Every route of a session carries its flow cell (flow.h). */
		struct route r = {.session = session_id(s),
		                  .flow = session_flow(s),
		                  .sub_id = sub_id,
		                  .home = (uint16_t)w->id,
		                  .qos = e.qos,
		                  .flags = flags};
		if (!r.flow || route_change(w, &batch, true, e.filter, &r)) {
			/* Not routed, so not kept either. */
			if (is_new)
				(void)session_unsubscribe(s, e.filter);
			*reason = TERN_RC_UNSPECIFIED;
			continue;
		}
		struct queue_wait *q = NULL;
		if (durable && !had_queue) {
			q = &pl->qw[pl->n_qw];
			q->filter = malloc(e.filter.len ? e.filter.len : 1);
			if (!q->filter) {
				/* It could not be refused when the queue fails:
				 * refused now. */
				refuse_sub(w, s, e.filter, &batch);
				*reason = TERN_RC_UNSPECIFIED;
				continue;
			}
			memcpy(q->filter, e.filter.data, e.filter.len);
			q->len = (uint16_t)e.filter.len;
			q->reason = pl->n - 1;
			q->ret = SIZE_MAX;
			pl->n_qw++;
		}
		if (w->broker->cluster && !shared)
			cluster_link_durable(w, q ? &batch : NULL, s, e.filter, durable, &rebind);
		/* The granted QoS: we support all three (section 3.9.3). */
		*reason = e.qos;
		log_write(&w->broker->log, LOG_TYPE_SUBSCRIBE, "%.*s %u %.*s", (int)cid.len,
		          (const char *)cid.data, e.qos, (int)e.filter.len,
		          (const char *)e.filter.data);
		/* Retained messages: not for shared subscriptions (4.8.2);
		 * retain handling 0 always, 1 only for a new subscription, 2
		 * never [MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11]. */
		if (shared || e.retain_handling == 2 || (e.retain_handling == 1 && !is_new))
			continue;
		struct retained_req *rr = &pl->ret[pl->n_ret];
		rr->filter = malloc(plain.len);
		if (!rr->filter)
			continue;
		memcpy(rr->filter, plain.data, plain.len);
		rr->len = (uint16_t)plain.len;
		rr->qos = e.qos;
		rr->sub_id = sub_id;
		if (q)
			q->ret = pl->n_ret;
		pl->n_ret++;
	}
	if (rebind)
		session_durable_bind(s);
	/* The record that holds the new subscriptions is in the cluster
	 * before the SUBACK (session_cluster.c). */
	session_cluster_write(s, &batch);
	batch.refused = plan_refused;
	answer_when_routed(w, &batch, pl);
}

void handle_unsubscribe(struct sink *k, struct session *s, const struct tern_unsubscribe *p)
{
	struct worker *w = session_worker(s);
	struct tern_bytes cid = session_client_id(s);
	struct plan *pl = plan_new(k, s, TERN_UNSUBACK, p->packet_id, p->count);
	if (!pl) {
		sink_close(k, TERN_RC_UNSPECIFIED, "out of memory");
		return;
	}
	struct route_batch batch;
	route_batch_begin(w, &batch);
	bool rebind = false;
	struct tern_bytes f;
	const char *mount = mount_of(w, k);
	size_t cur = 0;
	while (tern_unsubscribe_next(p, &cur, &f)) {
		uint8_t *reason = &pl->reasons[pl->n++];
		if (mount && mount_join(w, mount, f, true, &f) != TERN_OK) {
			*reason = TERN_RC_TOPIC_FILTER_INVALID;
			continue;
		}
		if (!session_unsubscribe(s, f)) {
			*reason = TERN_RC_NO_SUBSCRIPTION_EXISTED;
			continue;
		}
		struct route r = {.session = session_id(s), .home = (uint16_t)w->id};
		*reason = route_change(w, &batch, false, f, &r) ? TERN_RC_UNSPECIFIED
		                                                : TERN_RC_SUCCESS;
		struct tern_bytes g, plain;
		if (w->broker->cluster && !tern_topic_filter_share(f, &g, &plain))
			cluster_link_durable(w, NULL, s, f, false, &rebind);
		log_write(&w->broker->log, LOG_TYPE_UNSUBSCRIBE, "%.*s %.*s", (int)cid.len,
		          (const char *)cid.data, (int)f.len, (const char *)f.data);
	}
	if (rebind)
		session_durable_bind(s);
	session_cluster_write(s, NULL);
	/* v3.1.1's UNSUBACK has no reason codes: the codec leaves them out. */
	answer_when_routed(w, &batch, pl);
}
