/*
 * handle_publish.c - inbound PUBLISH and the four acknowledgements.
 *
 * Inbound: resolve a v5 topic alias, apply the limits (retain available,
 * message_size_limit, our Receive Maximum for QoS 2), turn the packet into
 * one refcounted message, store it if retained, route it, acknowledge it.
 * The acknowledgement is written after routing, so by the time a publisher
 * sees PUBACK/PUBREC every subscriber of this broker has its reference.
 * When the message went to a subscriber whose queue is over its mark, its
 * acknowledgement and the publisher's next ones are held until that
 * subscriber drains (flow control, flow.h): a slow subscriber slows its
 * publishers instead of losing their messages.
 *
 * Whether an acknowledgement waits for the store is the session's call
 * (session_publish() says whether the message was written, session_ack()
 * holds and orders): this file sees no store.
 *
 * Outbound acknowledgements (PUBACK, PUBREC, PUBCOMP from the client) move
 * the session's in-flight entries along the QoS 1 / QoS 2 state machines
 * (session_inflight_ack).
 *
 * Each handler gets the decoded packet, the session and the connection's
 * sink (sink.h): no socket, so tests/unit/test_handle_publish.c drives them
 * with a fake one.
 */
#include "broker/handlers.h"
#include "broker/mount.h"

#include <stdlib.h>
#include <string.h>

#include "auth/acl.h"
#include "broker/auth.h"
#include "broker/broker.h"
#include "broker/flow.h"
#include "broker/session.h"
#include "broker/sink.h"
#include "broker/stats.h"
#include "broker/worker.h"
#include "cluster/cluster.h"
#include "tern/codec.h"
#include "util/alias_in.h"
#include "util/log.h"
#include "util/log_limit.h"
#include "util/msg.h"

/* Resolves a topic alias (util/alias_in.h): sets *topic. Returns
 * alias_in_resolve()'s error after closing the connection with the reason
 * it calls for (an alias out of range, unknown, or no memory to keep it). */
static TERN_MUST_CHECK enum tern_err resolve_alias(struct sink *k, const struct tern_publish *p,
                                                   struct tern_bytes *topic)
{
	*topic = p->topic;
	if (!(p->props.present & TERN_PROP_BIT(TERN_PROP_TOPIC_ALIAS)))
		return TERN_OK;
	enum tern_err err =
	        alias_in_resolve(&k->alias_in, k->alias_max, p->props.topic_alias, p->topic, topic);
	if (err == TERN_E_INVALID)
		sink_close(k, TERN_RC_TOPIC_ALIAS_INVALID, "topic alias out of range");
	else if (err == TERN_E_NOT_FOUND)
		sink_close(k, TERN_RC_PROTOCOL_ERROR, "unknown topic alias");
	else if (err != TERN_OK)
		sink_close(k, TERN_RC_UNSPECIFIED, "out of memory");
	return err;
}

/* Acknowledges a QoS 1/2 PUBLISH: through flow control when it holds the
 * publisher's acknowledgements (or pauses it now for hit, a receiver over
 * its mark; may be NULL), else through the session, after the commit when
 * durable. */
static void ack(struct sink *k, struct session *s, const struct tern_publish *p, uint8_t reason,
                const struct flow_hit *hit, bool durable)
{
	if (p->qos == 0)
		return;
	enum tern_packet_type type = p->qos == 1 ? TERN_PUBACK : TERN_PUBREC;
	if (k->ops->flow_ack(k, hit, (uint8_t)type, p->packet_id, reason))
		return;
	session_ack(s, type, p->packet_id, reason, durable);
}

/* An early refusal or a retransmission: nothing of it was written. */
static void answer(struct sink *k, struct session *s, const struct tern_publish *p, uint8_t reason)
{
	ack(k, s, p, reason, NULL, false);
}

void handle_publish(struct sink *k, struct session *s, const struct tern_publish *p)
{
	struct worker *w = session_worker(s);
	struct tern_bytes cid = session_client_id(s);
	struct broker *b = w->broker;
	stat_add(&w->stats, (enum stat_id)(STAT_PUB_IN_Q0 + p->qos), 1);

	if (atomic_load_explicit(&b->over_memory, memory_order_relaxed)) {
		/* memory_limit: dropped, its client disconnected, as mosquitto
		 * does when the message cannot be allocated; nothing was
		 * acknowledged, so a QoS 1/2 one comes again. */
		stat_add(&w->stats, STAT_DROP_MEMORY, 1);
		sink_close(k, TERN_RC_QUOTA_EXCEEDED, "over memory_limit");
		return;
	}
	if (k->version == TERN_V5 && p->props.n_sub_ids) {
		/* [MQTT-3.3.4-6] */
		sink_close(k, TERN_RC_PROTOCOL_ERROR,
		           "PUBLISH from a client with a subscription id");
		return;
	}
	if (p->qos > config_max_qos(&b->cfg, k->listener)) {
		/* [MQTT-3.2.2-11] / [MQTT-3.3.1-4]: DISCONNECT 0x9B (v3:
		 * closed), as mosquitto does with max_qos. */
		sink_close(k, TERN_RC_QOS_NOT_SUPPORTED, "PUBLISH QoS above max_qos");
		return;
	}
	struct tern_bytes topic;
	if (resolve_alias(k, p, &topic) != TERN_OK)
		return;
	if (topic.len == 0) {
		sink_close(k, TERN_RC_PROTOCOL_ERROR, "PUBLISH without a topic");
		return;
	}
	/* mount_point: the topic is under the listener's prefix from here
	 * on, for the ACL and the message alike (mount.h). */
	const char *mount = mount_of(w, k);
	if (mount && mount_join(w, mount, topic, false, &topic) != TERN_OK) {
		sink_close(k, TERN_RC_TOPIC_NAME_INVALID, "topic too long under mount_point");
		return;
	}
	if (topic_too_deep(b, topic)) {
		/* A limit of ours (max_topic_levels), not a malformed name:
		 * 0x90 says "not accepted by this Server". */
		if (k->version == TERN_V5 && p->qos > 0)
			answer(k, s, p, TERN_RC_TOPIC_NAME_INVALID);
		else
			sink_close(k, TERN_RC_TOPIC_NAME_INVALID, "topic has too many levels");
		return;
	}
	if (!session_allowed(s, topic, ACL_WRITE)) {
		/* Denied: v5 says so with 0x87 (Not authorized); 3.1.1
		 * cannot, so the message is acknowledged and dropped, as
		 * mosquitto does. */
		static const struct log_kind denied = {LOG_TYPE_NOTICE, "denied PUBLISH"};
		if (log_limit_pass(&w->log_limit, &denied, cid.data, cid.len, w->now))
			log_write(&b->log, LOG_TYPE_NOTICE, "Denied PUBLISH from %.*s to '%.*s'.",
			          (int)cid.len, (const char *)cid.data, (int)topic.len,
			          (const char *)topic.data);
		answer(k, s, p, TERN_RC_NOT_AUTHORIZED);
		return;
	}
	if (p->retain && !b->cfg.retain_available) {
		/* Section 3.2.2.3.5: a server without retain support treats a
		 * retained PUBLISH as an error: DISCONNECT 0x9A. */
		sink_close(k, TERN_RC_RETAIN_NOT_SUPPORTED, "retain is not available");
		return;
	}
	if (p->qos == 2 && session_qos2_pending(s, p->packet_id)) {
		/* A retransmission: already routed, acknowledge again
		 * (method B, [MQTT-4.3.3-9]). */
		answer(k, s, p, TERN_RC_SUCCESS);
		return;
	}
	if (b->cfg.message_size_limit && p->payload.len > b->cfg.message_size_limit) {
		/* Accepted at the protocol level but not forwarded: v5 says
		 * why in the acknowledgement. */
		static const struct log_kind oversize = {LOG_TYPE_NOTICE,
		                                         "over message_size_limit"};
		if (log_limit_pass(&w->log_limit, &oversize, cid.data, cid.len, w->now))
			log_write(&b->log, LOG_TYPE_NOTICE,
			          "Dropped a %u byte message from %.*s: over message_size_limit.",
			          p->payload.len, (int)cid.len, (const char *)cid.data);
		/* A PUBREC >= 0x80 ends the QoS 2 flow: no id to remember. */
		answer(k, s, p, TERN_RC_QUOTA_EXCEEDED);
		return;
	}
	if ((p->props.present & TERN_PROP_BIT(TERN_PROP_PAYLOAD_FORMAT)) &&
	    p->props.payload_format == 1 &&
	    !tern_utf8_data_valid(p->payload.data, p->payload.len)) {
		/* We validate what the sender calls UTF-8 (section 3.3.2.3.2):
		 * refused in the acknowledgement, or by DISCONNECT for QoS 0,
		 * which has none. */
		if (p->qos == 0) {
			sink_close(k, TERN_RC_PAYLOAD_FORMAT_INVALID, "payload is not UTF-8");
			return;
		}
		answer(k, s, p, TERN_RC_PAYLOAD_FORMAT_INVALID);
		return;
	}
	if (k->version == TERN_V5 && p->qos == 2 &&
	    session_qos2_count(s) >= b->cfg.max_inflight_messages) {
		/* More unacknowledged QoS 2 than the Receive Maximum we
		 * announced [MQTT-3.3.4-7]; 3.1.1 has no such limit. */
		sink_close(k, TERN_RC_RECEIVE_MAXIMUM_EXCEEDED, "receive maximum exceeded");
		return;
	}
	struct msg *m = msg_new_in(w->msg_pool, topic, p->payload, p->qos, p->retain,
	                           k->version == TERN_V5 ? &p->props : NULL, session_id(s), w->now);
	if (!m) {
		sink_close(k, TERN_RC_UNSPECIFIED, "out of memory");
		return;
	}
	struct publish_result r;
	enum tern_err err = session_publish(s, m, p->packet_id, &r);
	msg_unref(m);
	if (err) {
		sink_close(k, TERN_RC_UNSPECIFIED, "out of memory");
		return;
	}
	if (r.refused) {
		/* A failing PUBREC ends the flow: the id is not remembered. */
		answer(k, s, p, TERN_RC_UNSPECIFIED);
		return;
	}
	if (r.unavailable) {
		/* Not stored where the cluster keeps it: never acknowledged.
		 * v5 says so (0x80, the publisher may try again); 3.1.1
		 * cannot, so the connection closes and the client resends on
		 * reconnecting, maybe to another node [MQTT-4.4.0-1]. */
		if (k->version == TERN_V5)
			answer(k, s, p, TERN_RC_UNSPECIFIED);
		else
			sink_close(k, TERN_RC_UNSPECIFIED, "the cluster cannot store QoS 1/2 now");
		return;
	}
	/* 0x10 is a MAY (section 3.4.2.1 / 3.5.2.1); mosquitto, which routes a
	 * QoS 2 message only at PUBREL, says it in PUBACK alone, and tools that
	 * compare its bytes expect a plain PUBREC (success, 2 bytes). */
	/* In a cluster the other nodes' subscribers (and the durable queues
	 * of persistent sessions, this node's included) are not counted
	 * here: nobody can say there are none. */
	bool some = r.matched || p->qos == 2 || (b->cluster && !cluster_topic_local(topic));
	uint8_t reason = some ? TERN_RC_SUCCESS : TERN_RC_NO_MATCHING_SUBSCRIBERS;
	/* PUBACK / PUBREC promise the message is safe: they wait for the
	 * commit of the rows just recorded, if any (issue: no acknowledged
	 * message is ever lost). A receiver over its mark holds them until it
	 * has drained (flow.h). */
	ack(k, s, p, reason, &r.full, r.durable);
}

/* An acknowledgement of the other QoS's flow for a packet id in flight
 * (PUBREC or PUBCOMP for a QoS 1 PUBLISH, PUBACK for a QoS 2 one) can only
 * come from a client that lost track of its ids: a Protocol Error
 * (section 4.13), DISCONNECT 0x82 in v5, as mosquitto does. */

void handle_puback(struct sink *k, struct session *s, const struct tern_ack *p)
{
	/* An ack for an unknown id is ignored: it may be a duplicate. */
	if (session_inflight_ack(s, TERN_PUBACK, p->packet_id, p->reason) ==
	    INFLIGHT_ACK_WRONG_FLOW)
		sink_close(k, TERN_RC_PROTOCOL_ERROR, "PUBACK for a QoS 2 message");
}

void handle_pubrec(struct sink *k, struct session *s, const struct tern_ack *p)
{
	switch (session_inflight_ack(s, TERN_PUBREC, p->packet_id, p->reason)) {
	case INFLIGHT_ACK_UNKNOWN:
		/* Section 4.3.3: answer so the client can finish its flow;
		 * but a failing PUBREC has ended it already: a PUBREL would
		 * restart a flow the client closed (mosquitto sends none). */
		if (p->reason < 0x80)
			sink_answer_ack(k, TERN_PUBREL, p->packet_id, TERN_RC_PACKET_ID_NOT_FOUND);
		return;
	case INFLIGHT_ACK_WRONG_FLOW:
	case INFLIGHT_ACK_EARLY:
		sink_close(k, TERN_RC_PROTOCOL_ERROR, "QoS 2 ack for a QoS 1 message");
		return;
	case INFLIGHT_ACK_DONE:
		/* [MQTT-4.3.3-4]; a failing PUBREC ended the flow. */
		if (p->reason < 0x80)
			sink_answer_ack(k, TERN_PUBREL, p->packet_id, TERN_RC_SUCCESS);
		return;
	case INFLIGHT_ACK_HELD: /* the session sends the PUBREL once committed */
		return;
	}
}

void handle_pubrel(struct sink *k, struct session *s, const struct tern_ack *p)
{
	/* After PUBCOMP the client may reuse the id for a new message: the
	 * store must have forgotten it first (durable), or a restart would
	 * take that new message for a retransmission and drop it. */
	bool durable;
	bool known = session_qos2_release(s, p->packet_id, &durable);
	/* [MQTT-4.3.3-11]: PUBCOMP with the same id, 0x92 when unknown. */
	session_ack(s, TERN_PUBCOMP, p->packet_id,
	            known ? TERN_RC_SUCCESS : TERN_RC_PACKET_ID_NOT_FOUND, durable);
}

void handle_pubcomp(struct sink *k, struct session *s, const struct tern_ack *p)
{
	switch (session_inflight_ack(s, TERN_PUBCOMP, p->packet_id, p->reason)) {
	case INFLIGHT_ACK_WRONG_FLOW:
		sink_close(k, TERN_RC_PROTOCOL_ERROR, "QoS 2 ack for a QoS 1 message");
		return;
	case INFLIGHT_ACK_EARLY:
		/* PUBCOMP answers our PUBREL, which was not sent yet. */
		sink_close(k, TERN_RC_PROTOCOL_ERROR, "PUBCOMP before PUBREC");
		return;
	case INFLIGHT_ACK_UNKNOWN: /* ignored: it may be a duplicate */
	case INFLIGHT_ACK_DONE:
	case INFLIGHT_ACK_HELD:
		return;
	}
}
