/*
 * bridge.c - a bridge: ternd as a client of another broker, forwarding the
 * topics of its `connection` block (config_bridge.h) in either direction.
 * This file holds the remote side and the bridge's life (start types,
 * several addresses, restarts); bridge_local.c the local session and its
 * sink; bridge_int.h what they share.
 *
 * A bridge has two sides, and neither is a second MQTT implementation:
 *
 *   remote  a libtern client (tern.h) in non-blocking mode, on the worker's
 *           epoll loop: its socket is registered with a tag that has bit 0
 *           set (struct bridge pointers are aligned, so the bit is free), and
 *           the worker calls tern_client_step() on readiness and when the
 *           client's timeout passes. libtern runs CONNECT, keep-alive, the
 *           QoS 1/2 state machines both ways and resends on a resumed
 *           session. manual_ack makes it leave inbound acknowledgements to
 *           us; try_private sets mosquitto's bridge bit (0x80 in the
 *           protocol level).
 *
 *   local   a session of this broker, reached the way a connection reaches
 *           one: through a sink (sink.h) embedded in struct bridge, and the
 *           packet handlers (handlers.h). handle_connect() makes or resumes
 *           the session of local_clientid (persistent unless
 *           local_cleansession), handle_subscribe() subscribes it to the
 *           local side of the "out" topics, handle_publish() publishes what
 *           comes from the remote, handle_puback()... pass acknowledgements.
 *           The session's own machinery (in-flight window, queue, store,
 *           held acknowledgements) does the rest: nothing here is a copy of
 *           it.
 *
 * Nothing is acknowledged on one side before the other side has it:
 *
 *   in   remote PUBLISH -> on_message -> handle_publish() on the local
 *        session, which answers through the sink once the message is routed
 *        (and, for a persistent session with durable storage, committed):
 *        that PUBACK / PUBREC goes to the remote with tern_client_ack(). A
 *        PUBREL from the remote goes to handle_pubrel(), whose PUBCOMP goes
 *        back the same way. QoS 2 is exactly once across restarts of ternd
 *        because the local session remembers the packet id until PUBREL
 *        (stored when it is persistent) and the remote's ids are the
 *        session's inbound ids, one to one.
 *   out  the local session delivers through the sink's send_publish; the
 *        message goes to the remote with tern_client_publish() under the
 *        local session's own packet id (QoS 1/2 are kept by libtern until
 *        acknowledged, and resent with DUP when the remote resumes our
 *        session). The remote's answers are the local session's, one to
 *        one: PUBACK -> handle_puback(); PUBREC -> handle_pubrec(), whose
 *        PUBREL (through the sink) is the one the remote gets, by
 *        tern_client_release(); PUBCOMP -> handle_pubcomp(). So the local
 *        session's in-flight state, which the store keeps (PUBLISH sent,
 *        PUBREL sent), says where each message is on the remote, and after
 *        a restart of ternd its resume resends exactly what the protocol
 *        asks [MQTT-4.4.0-1]: PUBLISH with DUP and the same id, or PUBREL
 *        for the id (libtern releases an id it never saw), never a new
 *        PUBLISH. The local session keeps the store ahead of the remote, as
 *        it does for any client (session_out.c): a QoS 2 PUBLISH goes once
 *        its packet id is committed, and a PUBREL once "PUBREL sent" is, so
 *        a kill at any moment leaves no state there that the store does not
 *        know of. With a remote session that is kept (cleansession false),
 *        that is exactly once across a restart of ternd.
 *        The bridge's own packets (the notification, SUBSCRIBE) take ids
 *        the local session does not hold; one it would reuse while ours is
 *        out waits in b->pend for it (TERN_E_BUSY). A remote that lost our
 *        session tells libtern so (on_publish 0x80 without properties): the
 *        message is sent again with its id, at least once, which is all a
 *        remote session that is not kept (cleansession true) allows.
 *
 * A message from the remote that goes to a local subscriber over its mark
 * (flow.h) holds the acknowledgements to the remote, as a paused client's
 * are held: in order, until that subscriber drains; the remote's in-flight
 * window then stops it. So nothing acknowledged to the remote is dropped
 * for a slow local subscriber.
 *
 * Acknowledgements for the local session are queued (struct bridge.acks)
 * and handed to it from bridge_run(), never from inside a handler or a
 * libtern callback that the session itself caused, so no session function
 * runs inside another.
 *
 * Loops: the local subscriptions are No Local (the bridge's session does not
 * get back what it published itself) and Retain As Published; the remote
 * ones too in v5; with try_private a mosquitto remote does the same for a
 * 3.1.1 bridge.
 *
 * Topics: "out" maps a local topic under local_prefix to remote_prefix,
 * "in" the reverse (mosquitto.conf(5)'s table: an empty pattern maps the
 * one topic local_prefix to remote_prefix). The first topic line that
 * matches wins.
 *
 * Restarts: a lost remote connection is retried after restart_timeout: a
 * constant, or mosquitto's back-off with decorrelated jitter
 * (sleep = min(cap, random(base, 3 * sleep))), reset by a connection that
 * got its CONNACK. If the local session is taken away (another client
 * connected with local_clientid), the remote connection is dropped too and
 * both are made again after the restart time.
 *
 * Notifications: the state is a retained "1" / "0" on notification_topic
 * ($SYS/broker/connection/<remote_clientid>/state by default), published
 * locally when the connection comes and goes, and on the remote: "1" after
 * CONNACK, "0" as the will of the remote connection.
 */
#include "broker/bridge.h"
#include "broker/bridge_int.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/config.h"
#include "broker/delivery.h"
#include "broker/flow.h"
#include "broker/handlers.h"
#include "broker/retain.h"
#include "broker/route.h"
#include "broker/session.h"
#include "broker/sink.h"
#include "broker/worker.h"
#include "tern/codec.h"
#include "tern/tern.h"
#include "util/alias_in.h"
#include "util/log.h"
#include "util/map.h"
#include "util/msg.h"

struct bridge_worker {
	size_t n;
	struct bridge **v;
};

/* Stops a TCP connect to the main address, if one is under way. */
static void probe_stop(struct bridge *b);

/* Whether the bridge is on a secondary address and should go back to the
 * main one when it can (several addresses, not round_robin). */
static bool probing(const struct bridge *b);

/* Ends the remote connection ourselves; see below. */
static void remote_leave(struct bridge *b);

/* Keeps the epoll registration in step with the client; see below. */
static void watch(struct bridge *b);

/* ---- the remote side: libtern's callbacks ---- */

/* Whether an entry waiting in b->pend has packet id id. */
static bool pend_has(const struct bridge *b, uint16_t id)
{
	for (const struct out_entry *e = b->pend_head; e; e = e->next)
		if (e->id == id)
			return true;
	return false;
}

/* Publishes the retained "1" on the remote, at QoS 1 with a packet id of
 * our own: one the local session holds neither in flight nor on its way,
 * nor libtern, so that the remote never sees it for a message of the
 * local session's (whose ids are the remote's, one to one). The ids are
 * tried downwards from 65535 while the local session's go upwards. */
static void note_remote(struct bridge *b)
{
	struct out_entry *e = calloc(1, sizeof(*e));
	if (!e)
		return; /* the will says "0" later all the same */
	e->own = true;
	e->qos = 1;
	struct tern_publish_args a = {.topic = b->note_topic,
	                              .payload = "1",
	                              .payload_len = 1,
	                              .qos = 1,
	                              .retain = b->cfg->outgoing_retain};
	const struct session *s = b->local_ok ? b->sink.session : NULL;
	for (int tries = 0; tries < 64; tries++) {
		uint16_t id = b->note_id ? b->note_id : 65535;
		b->note_id = id == 1 ? 65535 : (uint16_t)(id - 1);
		if (map64_get(&b->out, id) || pend_has(b, id) || (s && session_inflight_has(s, id)))
			continue;
		a.packet_id = id;
		enum tern_err err = tern_client_publish(b->c, &a, NULL);
		if (err == TERN_E_BUSY)
			continue;
		if (err == TERN_OK && map64_put(&b->out, id, e) == TERN_OK)
			return;
		break;
	}
	free(e);
}

static void subscribe_remote(struct bridge *b)
{
	struct tern_sub_entry entries[MAX_BRIDGE_TOPICS];
	char filters[MAX_BRIDGE_TOPICS][BRIDGE_PREFIX_MAX + BRIDGE_TOPIC_MAX];
	const char *unsub[MAX_BRIDGE_TOPICS];
	size_t n = 0, nu = 0;
	for (size_t i = 0; i < b->cfg->n_topics; i++) {
		const struct bridge_topic *t = &b->cfg->topics[i];
		bridge_side_filter(t, false, filters[i], sizeof(filters[i]));
		if (t->dir == BRIDGE_OUT) {
			/* A subscription left from when this line was "in"
			 * on a persistent remote session would keep feeding
			 * us (mosquitto's bridge_attempt_unsubscribe, on by
			 * default). */
			if (b->cfg->attempt_unsubscribe)
				unsub[nu++] = filters[i];
			continue;
		}
		entries[n++] = (struct tern_sub_entry){
		        .filter = {(const uint8_t *)filters[i], (uint32_t)strlen(filters[i])},
		        .qos = t->qos,
		        /* v5 only; a 3.1.1 bridge gets them from
		         * try_private. */
		        .no_local = true,
		        .retain_as_published = true,
		};
	}
	enum tern_err err;
	if (n && (err = tern_client_subscribe(b->c, entries, n, NULL, NULL)))
		log_write(blog(b), LOG_TYPE_ERR, "Error: bridge %s: cannot subscribe: %s",
		          b->cfg->name, tern_strerror(err));
	if (nu && (err = tern_client_unsubscribe(b->c, unsub, nu, NULL, NULL)))
		log_write(blog(b), LOG_TYPE_ERR, "Error: bridge %s: cannot unsubscribe: %s",
		          b->cfg->name, tern_strerror(err));
}

static void on_connect(struct tern_client *c, void *ud, uint8_t reason, bool session_present,
                       const struct tern_props *props)
{
	(void)c;
	(void)props;
	struct bridge *b = ud;
	if (reason != 0) {
		bool v3 = b->cfg->protocol_version != TERN_V5;
		if (v3 && reason == 0x01 && b->cfg->try_private && !b->private_refused) {
			/* "Unacceptable protocol version": a broker that does
			 * not know the bridge bit. */
			b->private_refused = true;
			b->sleep_ms = 0;
		}
		log_write(blog(b), LOG_TYPE_ERR, "Error: bridge %s: connection refused: %s",
		          b->cfg->name, tern_reason_string(reason, v3));
		return;
	}
	b->state = BRIDGE_UP;
	b->sleep_ms = 0;
	b->last_traffic = b->w->now;
	b->probe_at = b->w->now + PRIMARY_RETRY_MS;
	log_write(blog(b), LOG_TYPE_NOTICE, "Bridge %s connected to %s:%u%s.", b->cfg->name,
	          b->cfg->addresses[b->cur].host, b->cfg->addresses[b->cur].port,
	          session_present ? " (session resumed)" : "");
	subscribe_remote(b);
	if (b->cfg->notifications && !b->cfg->notifications_local_only)
		note_remote(b);
	bridge_notify_local(b, true);
}

/* When the restart after a lost connection is due: restart_timeout's
 * constant, or the next step of its jittered back-off. */
static uint64_t restart_delay_ms(struct bridge *b)
{
	uint64_t base = (uint64_t)b->cfg->restart_base * 1000u;
	if (!b->cfg->restart_cap)
		return base;
	uint64_t cap = (uint64_t)b->cfg->restart_cap * 1000u;
	uint64_t hi = b->sleep_ms ? (uint64_t)b->sleep_ms * 3u : base;
	b->rng ^= b->rng << 13;
	b->rng ^= b->rng >> 7;
	b->rng ^= b->rng << 17;
	uint64_t d = hi > base ? base + b->rng % (hi - base + 1) : base;
	if (d > cap)
		d = cap;
	b->sleep_ms = (uint32_t)d;
	return d;
}

static void on_disconnect(struct tern_client *c, void *ud, enum tern_err err, uint8_t reason,
                          const struct tern_props *props)
{
	(void)props;
	struct bridge *b = ud;
	/* libtern closed the socket, which took it out of epoll. */
	b->fd = -1;
	b->ev_mask = 0;
	probe_stop(b);
	bool was_up = b->state == BRIDGE_UP;
	const struct bridge_address *a = &b->cfg->addresses[b->cur];
	if (b->leaving) {
		/* Our own DISCONNECT (a lazy bridge gone idle, or a move back
		 * to the main address): run_one() says what comes next. */
		b->leaving = false;
		if (b->state != BRIDGE_IDLE) {
			b->state = BRIDGE_WAIT;
			b->restart_at = b->w->now;
		}
		return;
	}
	if (was_up)
		bridge_notify_local(b, false);
	if (b->cfg->start_type == BRIDGE_START_ONCE) {
		b->state = BRIDGE_DONE;
		log_write(blog(b), LOG_TYPE_NOTICE,
		          "Bridge %s: connection to %s:%u %s (%s%s%s); start_type once: not "
		          "restarted.",
		          b->cfg->name, a->host, a->port, was_up ? "lost" : "failed",
		          tern_strerror(err), reason ? ", " : "",
		          reason ? tern_reason_string(reason, false) : "");
		return;
	}
	b->state = BRIDGE_WAIT;
	uint64_t delay = restart_delay_ms(b);
	b->restart_at = b->w->now + delay;
	/* The next address is tried next (mosquitto: after every failure,
	 * round_robin or not; without it the main one is probed from then
	 * on, see probe_run()). */
	b->cur = (b->cur + 1) % b->cfg->n_addresses;
	log_write(blog(b), LOG_TYPE_NOTICE,
	          "Bridge %s: connection to %s:%u %s (%s%s%s); restarting in %llu ms with %s:%u.",
	          b->cfg->name, a->host, a->port, was_up ? "lost" : "failed", tern_strerror(err),
	          reason || err == TERN_E_TLS ? ": " : "",
	          reason              ? tern_reason_string(reason, false)
	          : err == TERN_E_TLS ? tern_client_tls_error(c)
	                              : "",
	          (unsigned long long)delay, b->cfg->addresses[b->cur].host,
	          b->cfg->addresses[b->cur].port);
}

static void on_message(struct tern_client *c, void *ud, const struct tern_message *m)
{
	struct bridge *b = ud;
	if (!b->local_ok || b->local_closing)
		return; /* nothing acknowledged: the remote sends it again */
	char *topic = malloc(TOPIC_BUF);
	if (!topic)
		return; /* likewise */
	struct tern_bytes rt = {(const uint8_t *)m->topic, (uint32_t)m->topic_len};
	if (!bridge_map_topic(b, rt, false, topic, TOPIC_BUF)) {
		/* Not ours (a subscription left on a persistent remote session
		 * by an earlier configuration): taken and dropped, as
		 * mosquitto does. */
		free(topic);
		b->dropped++;
		if (m->qos) {
			enum tern_err e = tern_client_ack(
			        c, m->qos == 1 ? TERN_PUBACK : TERN_PUBREC, m->packet_id, 0);
			(void)e; /* without a connection it is resent, and dropped again */
		}
		return;
	}
	struct tern_publish pub = {
	        .qos = m->qos,
	        .dup = m->dup,
	        .retain = m->retain,
	        .topic = {(const uint8_t *)topic, (uint32_t)strlen(topic)},
	        .packet_id = m->packet_id,
	        .props = m->props,
	        .payload = {m->payload, (uint32_t)m->payload_len},
	};
	/* Properties that belong to the remote connection, not to the
	 * message: libtern resolved the alias, and a client may not send
	 * subscription identifiers [MQTT-3.3.4-6]. */
	pub.props.present &=
	        ~(TERN_PROP_BIT(TERN_PROP_TOPIC_ALIAS) | TERN_PROP_BIT(TERN_PROP_SUBSCRIPTION_ID));
	pub.props.n_sub_ids = 0;
	b->forwarded_in++;
	b->last_traffic = b->w->now;
	/* Answers through the sink: the PUBACK / PUBREC goes to the remote
	 * once the local side has the message. */
	handle_publish(&b->sink, b->sink.session, &pub);
	free(topic);
}

static void on_pubrel(struct tern_client *c, void *ud, uint16_t packet_id)
{
	struct bridge *b = ud;
	if (!b->local_ok || b->local_closing)
		return; /* resent by the remote after the restart */
	struct tern_ack ack = {.packet_id = packet_id};
	handle_pubrel(&b->sink, b->sink.session, &ack);
	(void)c;
}

/* The remote's PUBREC of a QoS 2 message: the local session gets it (and
 * answers PUBREL once it is committed here, session_out.c, which
 * sink_b_send_ack() passes on). libtern leaves the PUBREL to us for that. */
static void on_pubrec(struct tern_client *c, void *ud, uint16_t packet_id, uint8_t reason,
                      const struct tern_props *props)
{
	(void)c;
	(void)reason;
	(void)props;
	struct bridge *b = ud;
	struct out_entry *e = map64_get(&b->out, packet_id);
	/* Again after a resumed session resent the PUBLISH: the local
	 * session has it already. */
	if (!e || e->own || e->local_rec)
		return;
	e->local_rec = true;
	bridge_ack_queue(b, TERN_PUBREC, packet_id, 0);
}

static void on_publish(struct tern_client *c, void *ud, uint16_t packet_id, uint8_t reason,
                       const struct tern_props *props)
{
	(void)c;
	struct bridge *b = ud;
	struct out_entry *e = map64_del(&b->out, packet_id);
	if (!e)
		return;
	if (e->own) {
		bridge_out_entry_free(e);
		bridge_pend_run(b); /* its id may be one a message waits for */
		return;
	}
	if (e->qos == 2 && e->local_rec) {
		/* The remote's end of the flow after its PUBREC: its PUBCOMP
		 * (0x92 when it had finished before a restart of ternd), or a
		 * session it no longer has. The local session's end too. */
		bridge_ack_queue(b, TERN_PUBCOMP, packet_id, 0);
		b->forwarded_out++;
		bridge_out_entry_free(e);
		bridge_pend_run(b);
		return;
	}
	if (reason == TERN_RC_UNSPECIFIED && !props && e->msg) {
		/* libtern's own verdict: sent, unanswered, and the remote did
		 * not resume our session. Its fate is unknown, so it goes
		 * again, with the same id: at least once (what a remote
		 * session that is not kept, cleansession true, allows). */
		e->dup = true;
		if (bridge_out_send(b, e) == TERN_OK)
			return;
	} else if (reason >= 0x80) {
		log_write(blog(b), LOG_TYPE_WARNING,
		          "Warning: bridge %s: the remote refused a message on %.*s: %s",
		          b->cfg->name, e->msg ? (int)e->msg->topic.len : 0,
		          e->msg ? (const char *)e->msg->topic.data : "",
		          tern_reason_string(reason, false));
	}
	/* Done on the remote (refused or not: it will not take it later
	 * either), so done here: a QoS 2 flow ends with a failing PUBREC,
	 * there being nothing to release. */
	if (e->qos == 1)
		bridge_ack_queue(b, TERN_PUBACK, packet_id, 0);
	else
		bridge_ack_queue(b, TERN_PUBREC, packet_id, TERN_RC_UNSPECIFIED);
	b->forwarded_out++;
	bridge_out_entry_free(e);
	bridge_pend_run(b);
}

static void on_subscribe(struct tern_client *c, void *ud, uint16_t packet_id,
                         const uint8_t *reasons, size_t n, const struct tern_props *props)
{
	(void)c;
	(void)packet_id;
	(void)props;
	struct bridge *b = ud;
	for (size_t i = 0; i < n; i++)
		if (reasons[i] >= 0x80)
			log_write(blog(b), LOG_TYPE_WARNING,
			          "Warning: bridge %s: the remote refused subscription %zu: %s",
			          b->cfg->name, i + 1, tern_reason_string(reasons[i], false));
	bridge_pend_run(b); /* its packet id is free again */
}

static void on_unsubscribe(struct tern_client *c, void *ud, uint16_t packet_id,
                           const uint8_t *reasons, size_t n, const struct tern_props *props)
{
	(void)c;
	(void)packet_id;
	(void)reasons;
	(void)n;
	(void)props;
	bridge_pend_run(ud); /* its packet id is free again */
}

static const struct tern_callbacks remote_cb = {
        .on_connect = on_connect,
        .on_disconnect = on_disconnect,
        .on_message = on_message,
        .on_publish = on_publish,
        .on_subscribe = on_subscribe,
        .on_unsubscribe = on_unsubscribe,
        .on_pubrel = on_pubrel,
        .on_pubrec = on_pubrec,
};

/* The bytes of the PUBLISH a would be on the remote connection (a packet
 * id taken for QoS 1/2), for bridge_max_packet_size. */
static size_t publish_size(const struct bridge *b, const struct tern_publish_args *a)
{
	struct tern_packet p = {.type = TERN_PUBLISH};
	p.u.publish = (struct tern_publish){
	        .qos = a->qos,
	        .retain = a->retain,
	        .topic = {(const uint8_t *)a->topic, (uint32_t)strlen(a->topic)},
	        .packet_id = a->qos ? 1 : 0,
	        .payload = {a->payload, (uint32_t)a->payload_len},
	};
	if (a->props)
		p.u.publish.props = *a->props;
	return tern_packet_size(&p, b->cfg->protocol_version);
}

enum tern_err bridge_out_send(struct bridge *b, struct out_entry *e)
{
	struct msg *m = e->msg;
	char *topic = malloc(TOPIC_BUF);
	if (!topic)
		return TERN_E_NOMEM;
	if (!bridge_map_topic(b, m->topic, true, topic, TOPIC_BUF)) {
		free(topic);
		return TERN_E_NOT_FOUND;
	}
	struct tern_props pr = {0};
	if (b->cfg->protocol_version == TERN_V5) {
		/* Forwarded as a broker forwards them [MQTT-3.3.2-4]. */
		if (m->has_payload_format) {
			pr.present |= TERN_PROP_BIT(TERN_PROP_PAYLOAD_FORMAT);
			pr.payload_format = m->payload_format;
		}
		if (m->expire_at) {
			bool gone;
			pr.present |= TERN_PROP_BIT(TERN_PROP_MESSAGE_EXPIRY);
			pr.message_expiry = msg_expiry_left(m, b->w->now, &gone);
		}
		if (m->has_content_type) {
			pr.present |= TERN_PROP_BIT(TERN_PROP_CONTENT_TYPE);
			pr.content_type = m->content_type;
		}
		if (m->response_topic.len) {
			pr.present |= TERN_PROP_BIT(TERN_PROP_RESPONSE_TOPIC);
			pr.response_topic = m->response_topic;
		}
		if (m->correlation_data.data) {
			pr.present |= TERN_PROP_BIT(TERN_PROP_CORRELATION_DATA);
			pr.correlation_data = m->correlation_data;
		}
		pr.n_user = m->n_user;
		pr.user_raw = m->user_raw;
	}
	struct tern_publish_args a = {
	        .topic = topic,
	        .payload = m->payload.data,
	        .payload_len = m->payload.len,
	        .qos = e->qos,
	        /* bridge_outgoing_retain false: for remotes without retained
	         * messages that a 3.1.1 CONNACK cannot say so. */
	        .retain = e->retain && b->cfg->outgoing_retain,
	        .props = &pr,
	        .packet_id = e->qos ? e->id : 0,
	        .dup = e->qos && e->dup,
	};
	if (b->cfg->max_packet_size && publish_size(b, &a) > b->cfg->max_packet_size) {
		free(topic);
		return TERN_E_TOO_LARGE;
	}
	enum tern_err err = tern_client_publish(b->c, &a, NULL);
	free(topic);
	if (err)
		return err;
	if (e->qos == 0)
		return TERN_OK;
	err = map64_put(&b->out, e->id, e);
	/* Without the entry the answer cannot reach the local session; the
	 * message stays in flight there and goes again on its resume. */
	return err;
}

/* ---- what waits to go to libtern (b->pend) ---- */

void bridge_pend_push(struct bridge *b, struct out_entry *e)
{
	e->next = NULL;
	if (b->pend_tail)
		b->pend_tail->next = e;
	else
		b->pend_head = e;
	b->pend_tail = e;
	bridge_pend_run(b);
}

/* Sends e, the local session's release of e->id, to libtern: TERN_OK when
 * e was used up (freed, or in b->out), TERN_E_BUSY to wait. */
static enum tern_err pend_release(struct bridge *b, struct out_entry *e)
{
	struct out_entry *o = map64_get(&b->out, e->id);
	if (!o && !e->restored) {
		/* Completed meanwhile (the remote did not resume our session):
		 * nothing is left to release. */
		free(e);
		return TERN_OK;
	}
	enum tern_err err = tern_client_release(b->c, e->id);
	if (err == TERN_E_BUSY)
		return err;
	if (err == TERN_OK && !o) {
		/* The local session resumed at PUBREL: libtern releases an id
		 * it never saw, and its PUBCOMP ends the local flow. */
		e->local_rec = true;
		err = map64_put(&b->out, e->id, e);
		if (err == TERN_OK)
			return TERN_OK;
	}
	if (err)
		/* The local session holds it at PUBREL and sends it again at
		 * its resume. */
		log_write(blog(b), LOG_TYPE_ERR,
		          "Error: bridge %s: cannot release packet id %u: %s", b->cfg->name, e->id,
		          tern_strerror(err));
	free(e);
	return TERN_OK;
}

/* Sends e, a PUBLISH of the local session's, to libtern: TERN_OK when e was
 * used up, TERN_E_BUSY to wait. */
static enum tern_err pend_publish(struct bridge *b, struct out_entry *e)
{
	enum tern_err err = bridge_out_send(b, e);
	if (err == TERN_E_BUSY)
		return err;
	if (err == TERN_OK) {
		b->last_traffic = b->w->now;
		if (e->qos == 0) {
			b->forwarded_out++;
			bridge_out_entry_free(e);
		}
		return TERN_OK;
	}
	/* What cannot go at all (QoS 0 without a connection, a topic no
	 * line maps, larger than the remote takes) is dropped and, for QoS
	 * 1/2, acknowledged here, or it would hold the session's window (a
	 * failing PUBREC ends a QoS 2 flow). */
	b->dropped++;
	if (e->qos && err != TERN_E_NOMEM)
		bridge_ack_queue(b, e->qos == 1 ? TERN_PUBACK : TERN_PUBREC, e->id,
		                 e->qos == 1 ? 0 : TERN_RC_UNSPECIFIED);
	if (err != TERN_E_CLOSED)
		log_write(blog(b), LOG_TYPE_WARNING,
		          "Warning: bridge %s: message on %.*s not forwarded: %s", b->cfg->name,
		          (int)e->msg->topic.len, (const char *)e->msg->topic.data,
		          tern_strerror(err));
	bridge_out_entry_free(e);
	return TERN_OK;
}

void bridge_pend_run(struct bridge *b)
{
	/* libtern's callbacks run it too, maybe from inside this loop. */
	if (b->pend_running)
		return;
	b->pend_running = true;
	struct out_entry *e;
	while ((e = b->pend_head)) {
		b->pend_head = e->next;
		if (!b->pend_head)
			b->pend_tail = NULL;
		e->next = NULL;
		if ((e->release ? pend_release(b, e) : pend_publish(b, e)) == TERN_E_BUSY) {
			/* In order: the rest waits behind it. */
			e->next = b->pend_head;
			b->pend_head = e;
			if (!b->pend_tail)
				b->pend_tail = e;
			break;
		}
	}
	b->pend_running = false;
}

void bridge_pend_clear(struct bridge *b)
{
	struct out_entry *e = b->pend_head, *next;
	for (; e; e = next) {
		next = e->next;
		bridge_out_entry_free(e);
	}
	b->pend_head = b->pend_tail = NULL;
}

/* ---- lifetime ---- */

static TERN_MUST_CHECK enum tern_err remote_start(struct bridge *b)
{
	const struct bridge_cfg *cfg = b->cfg;
	struct tern_connect_opts o;
	tern_connect_opts_init(&o);
	o.host = cfg->addresses[b->cur].host;
	o.port = cfg->addresses[b->cur].port;
	o.bind_address = cfg->bind_address[0] ? cfg->bind_address : NULL;
	o.version = cfg->protocol_version;
	o.client_id = b->remote_id;
	o.clean_start = cfg->cleansession;
	o.keep_alive = cfg->keepalive;
	o.username = cfg->remote_username[0] ? cfg->remote_username : NULL;
	if (cfg->has_remote_password) {
		o.password = cfg->remote_password;
		o.password_len = strlen(cfg->remote_password);
	}
	/* The bridge bit only in 3.1 / 3.1.1: a v5 bridge prevents loops
	 * with No Local and keeps RETAIN with Retain As Published on its
	 * subscriptions, and mosquitto 2.0 closes a v5 CONNECT that carries
	 * the bit. A remote that refused the bit is asked without it from
	 * then on (mosquitto's try_private_accepted). */
	o.bridge = cfg->try_private && cfg->protocol_version != TERN_V5 && !b->private_refused;
	o.manual_ack = true;
	struct tern_props props = {0};
	if (cfg->protocol_version == TERN_V5) {
		if (cfg->has_session_expiry) {
			/* 0, the protocol's default, is not sent (as mosquitto). */
			if (cfg->session_expiry)
				props.present |= TERN_PROP_BIT(TERN_PROP_SESSION_EXPIRY);
			props.session_expiry = cfg->session_expiry;
		} else if (!cfg->cleansession) {
			/* A v5 session lasts only as long as its expiry
			 * interval: the remote keeps ours, as a 3.1.1 one with
			 * clean session false. */
			props.present |= TERN_PROP_BIT(TERN_PROP_SESSION_EXPIRY);
			props.session_expiry = UINT32_MAX;
		}
		/* What the remote may send us unacknowledged: the local
		 * session takes it in before we acknowledge there. */
		uint32_t rm = cfg->receive_maximum ? cfg->receive_maximum
		                                   : b->w->broker->cfg.max_inflight_messages;
		if (rm && rm < 65535) {
			props.present |= TERN_PROP_BIT(TERN_PROP_RECEIVE_MAXIMUM);
			props.receive_maximum = (uint16_t)rm;
		}
	}
	o.props = &props;
	struct tern_will will = {.topic = b->note_topic,
	                         .payload = "0",
	                         .payload_len = 1,
	                         .qos = 1,
	                         .retain = cfg->outgoing_retain};
	if (cfg->notifications && !cfg->notifications_local_only)
		o.will = &will;
	o.tls_cafile = cfg->tls_cafile[0] ? cfg->tls_cafile : NULL;
	o.tls_capath = cfg->tls_capath[0] ? cfg->tls_capath : NULL;
	o.tls_certfile = cfg->tls_certfile[0] ? cfg->tls_certfile : NULL;
	o.tls_keyfile = cfg->tls_keyfile[0] ? cfg->tls_keyfile : NULL;
	o.tls_use_os_certs = cfg->tls_use_os_certs;
	o.tls_insecure = cfg->tls_insecure;
	o.tls_min_version = cfg->tls_version;
	o.tls_alpn = cfg->tls_alpn[0] ? cfg->tls_alpn : NULL;
	o.tls_require_ocsp = cfg->tls_require_ocsp;
	if (cfg->psk_len) {
		o.tls_psk_identity = cfg->psk_identity;
		o.tls_psk = cfg->psk;
		o.tls_psk_len = cfg->psk_len;
	}
	log_write(blog(b), LOG_TYPE_NOTICE, "Connecting bridge %s (%s:%u)", cfg->name, o.host,
	          o.port);
	b->state = BRIDGE_CONNECTING;
	return tern_client_connect_start(b->c, &o);
}

/* Starts (or restarts) both sides. */
static void bridge_start(struct bridge *b)
{
	enum tern_err err = remote_start(b);
	if (err && err != TERN_E_SYS) {
		/* The options themselves are wrong (TLS files, ...): libtern
		 * holds none, so nothing can be queued for the remote yet. */
		log_write(blog(b), LOG_TYPE_ERR, "Error: bridge %s: cannot connect: %s%s%s",
		          b->cfg->name, tern_strerror(err), err == TERN_E_TLS ? ": " : "",
		          err == TERN_E_TLS ? tern_client_tls_error(b->c) : "");
		b->state = BRIDGE_WAIT;
		b->restart_at = b->w->now + restart_delay_ms(b);
		return;
	}
	if (err) {
		/* No socket, or the name did not resolve: the options are
		 * kept, so the local side can start and queue. */
		int e = errno;
		b->state = b->cfg->start_type == BRIDGE_START_ONCE ? BRIDGE_DONE : BRIDGE_WAIT;
		b->restart_at = b->w->now + restart_delay_ms(b);
		log_write(blog(b), LOG_TYPE_NOTICE, "Bridge %s: cannot connect to %s:%u (%s): %s",
		          b->cfg->name, b->cfg->addresses[b->cur].host,
		          b->cfg->addresses[b->cur].port, tern_strerror(err), strerror(e));
		b->cur = (b->cur + 1) % b->cfg->n_addresses;
	}
	/* The local side after the remote's options are in libtern: a
	 * resumed session resends its in-flight messages at once. */
	if (!b->local_ok)
		bridge_local_attach(b);
}

/* Keeps the epoll registration in step with the client's socket and what
 * it waits for. */
static void watch(struct bridge *b)
{
	int fd = tern_client_fd(b->c);
	uint32_t want = EPOLLIN | (tern_client_want_write(b->c) ? EPOLLOUT : 0u);
	if (fd < 0)
		return;
	if (b->fd == fd && b->ev_mask == want)
		return;
	struct epoll_event ev = {.events = want, .data.u64 = (uint64_t)(uintptr_t)b | 1u};
	int op = b->fd == fd ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(b->w->epfd, op, fd, &ev) < 0) {
		log_write(blog(b), LOG_TYPE_ERR, "Error: bridge %s: epoll: %s", b->cfg->name,
		          strerror(errno));
		return;
	}
	b->fd = fd;
	b->ev_mask = want;
}

/* Runs the client once and schedules its next step. */
static void step(struct bridge *b)
{
	enum tern_err err = tern_client_step(b->c);
	(void)err; /* reported through on_disconnect, which schedules the restart */
	int t = tern_client_timeout_ms(b->c);
	b->step_at = t < 0 ? 0 : b->w->now + (uint64_t)t;
	watch(b);
}

static void bridge_free(struct bridge *b)
{
	if (!b)
		return;
	probe_stop(b);
	bridge_local_detach(b);
	if (b->fd >= 0)
		epoll_ctl(b->w->epfd, EPOLL_CTL_DEL, b->fd, NULL);
	/* No DISCONNECT: the remote publishes our will ("0"). */
	tern_client_free(b->c);
	size_t pos = 0;
	struct out_entry *e;
	while ((e = map_next(&b->out, &pos)))
		bridge_out_entry_free(e);
	map_free(&b->out);
	bridge_pend_clear(b);
	free(b->acks);
	free(b->held);
	free(b);
}

static struct bridge *bridge_new(struct worker *w, const struct bridge_cfg *cfg)
{
	struct bridge *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->w = w;
	b->cfg = cfg;
	b->fd = -1;
	b->probe_fd = -1;
	b->rng = (uint64_t)(uintptr_t)b ^ 0x9e3779b97f4a7c15ull;
	char host[256] = "localhost";
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	/* mosquitto's defaults: <hostname>.<connection name>, and
	 * local.<remote client id>. */
	if (cfg->remote_clientid[0])
		snprintf(b->remote_id, sizeof(b->remote_id), "%s", cfg->remote_clientid);
	else
		snprintf(b->remote_id, sizeof(b->remote_id), "%s.%s", host, cfg->name);
	if (cfg->local_clientid[0])
		snprintf(b->local_id, sizeof(b->local_id), "%s", cfg->local_clientid);
	else
		snprintf(b->local_id, sizeof(b->local_id), "local.%s", b->remote_id);
	if (cfg->notification_topic[0])
		snprintf(b->note_topic, sizeof(b->note_topic), "%s", cfg->notification_topic);
	else
		snprintf(b->note_topic, sizeof(b->note_topic), "$SYS/broker/connection/%s/state",
		         b->remote_id);
	b->local_cleansession =
	        cfg->local_cleansession < 0 ? cfg->cleansession : cfg->local_cleansession != 0;
	if (tern_client_new(&b->c, &remote_cb, b)) {
		free(b);
		return NULL;
	}
	return b;
}

enum tern_err bridge_worker_new(struct worker *w)
{
	const struct config *cfg = &w->broker->cfg;
	w->bridges = NULL;
	for (size_t i = 0; i < cfg->n_bridges; i++) {
		struct bridge *b = bridge_new(w, &cfg->bridges[i]);
		if (!b)
			return TERN_E_NOMEM;
		/* Home: the worker of the local client id, so the local
		 * session's CONNECT stays where the bridge runs. */
		if (broker_home_of(w->broker, (const uint8_t *)b->local_id, strlen(b->local_id)) !=
		    w->id) {
			bridge_free(b);
			continue;
		}
		if (!w->bridges && !(w->bridges = calloc(1, sizeof(*w->bridges)))) {
			bridge_free(b);
			return TERN_E_NOMEM;
		}
		struct bridge **v = realloc(w->bridges->v, (w->bridges->n + 1) * sizeof(*v));
		if (!v) {
			bridge_free(b);
			return TERN_E_NOMEM;
		}
		w->bridges->v = v;
		v[w->bridges->n++] = b;
	}
	return TERN_OK;
}

void bridge_worker_free(struct worker *w)
{
	struct bridge_worker *bw = w->bridges;
	if (!bw)
		return;
	for (size_t i = 0; i < bw->n; i++)
		bridge_free(bw->v[i]);
	free(bw->v);
	free(bw);
	w->bridges = NULL;
}

void bridge_on_event(struct worker *w, uint64_t tag, uint32_t events)
{
	(void)w;
	(void)events;
	struct bridge *b = (struct bridge *)(uintptr_t)(tag & ~(uint64_t)1);
	step(b);
	bridge_acks_run(b);
	if (b->pend_head) {
		bridge_pend_run(b);
		watch(b);
	}
}

int bridge_timeout_ms(const struct worker *w)
{
	const struct bridge_worker *bw = w->bridges;
	if (!bw)
		return -1;
	uint64_t next = UINT64_MAX;
	for (size_t i = 0; i < bw->n; i++) {
		const struct bridge *b = bw->v[i];
		if (b->n_acks || b->local_closing)
			return 0;
		/* A message waiting for a packet id one of our own packets
		 * holds: its answer wakes this worker; this is the backstop. */
		if (b->pend_head && b->w->now + 100 < next)
			next = b->w->now + 100;
		/* Holding for a slow receiver: its drain wakes this worker;
		 * this is the backstop, as the tick is for paused clients. */
		if (b->hold && b->w->now + 100 < next)
			next = b->w->now + 100;
		if (b->state == BRIDGE_WAIT && b->restart_at < next)
			next = b->restart_at;
		if (b->step_at && b->step_at < next)
			next = b->step_at;
		if (b->state == BRIDGE_UP && probing(b) && b->probe_at < next)
			next = b->probe_at;
		if (b->state == BRIDGE_UP && b->cfg->start_type == BRIDGE_START_LAZY) {
			uint64_t idle = b->last_traffic + (uint64_t)b->cfg->idle_timeout * 1000u;
			if (idle < next)
				next = idle;
		}
	}
	if (next == UINT64_MAX)
		return -1;
	return next <= w->now ? 0 : (int)(next - w->now < 60000 ? next - w->now : 60000);
}

/* ---- back to the main address (several addresses, not round_robin) ---- */

static bool probing(const struct bridge *b)
{
	return !b->cfg->round_robin && b->cfg->n_addresses > 1 && b->cur != 0;
}

static void probe_stop(struct bridge *b)
{
	if (b->probe_fd >= 0)
		close(b->probe_fd);
	b->probe_fd = -1;
}

/* Starts a non-blocking TCP connect to the main address; its outcome is
 * read by probe_run() without epoll (a poll of the one fd, at most every
 * PRIMARY_PROBE_MS / 4), as mosquitto reads its own. */
static void probe_start(struct bridge *b)
{
	const struct bridge_address *a = &b->cfg->addresses[0];
	char port[8];
	snprintf(port, sizeof(port), "%u", a->port);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	if (getaddrinfo(a->host, port, &hints, &res) != 0 || !res)
		return;
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) < 0 && errno != EINPROGRESS) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	b->probe_fd = fd;
	b->probe_started = b->w->now;
}

/*
 * While on a secondary address: every PRIMARY_RETRY_MS, whether the main
 * one takes a TCP connection. When it does, the bridge leaves the
 * secondary (its "0" there first, as its will would say) and connects to
 * the main one at once. It leaves only while nothing of ours is in flight
 * there, so that no QoS 1/2 message is left with a broker we no longer
 * talk to.
 */
static void probe_run(struct bridge *b)
{
	uint64_t now = b->w->now;
	if (b->probe_fd < 0) {
		if (now >= b->probe_at) {
			probe_start(b);
			b->probe_at = now + PRIMARY_PROBE_MS / 4;
			if (b->probe_fd < 0)
				b->probe_at = now + PRIMARY_RETRY_MS;
		}
		return;
	}
	if (now < b->probe_at)
		return;
	struct pollfd pfd = {.fd = b->probe_fd, .events = POLLOUT};
	int soerr = 0;
	socklen_t sl = sizeof(soerr);
	bool ready = poll(&pfd, 1, 0) == 1;
	if (!ready && now - b->probe_started < PRIMARY_PROBE_MS) {
		b->probe_at = now + PRIMARY_PROBE_MS / 4;
		return;
	}
	bool ok = ready && getsockopt(b->probe_fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 &&
	          soerr == 0;
	probe_stop(b);
	b->probe_at = now + PRIMARY_RETRY_MS;
	if (!ok || tern_client_pending(b->c) || b->out.count || b->pend_head)
		return;
	log_write(blog(b), LOG_TYPE_NOTICE, "Bridge %s: %s:%u is back; leaving %s:%u for it.",
	          b->cfg->name, b->cfg->addresses[0].host, b->cfg->addresses[0].port,
	          b->cfg->addresses[b->cur].host, b->cfg->addresses[b->cur].port);
	remote_leave(b);
	b->cur = 0;
}

/* ---- lazy start ---- */

/* Messages the offline local session of a lazy bridge holds for the
 * remote: queued and in flight, what mosquitto counts against threshold. */
static uint64_t lazy_held(struct bridge *b)
{
	struct session *s = session_find(b->w, (const uint8_t *)b->local_id, strlen(b->local_id));
	return s ? session_held(s) : 0;
}

/* Ends the remote connection with DISCONNECT (no will), after a "0" of our
 * own where the will would have said it; on_disconnect() then leaves the
 * restart to run_one(). */
static void remote_leave(struct bridge *b)
{
	if (b->cfg->notifications && !b->cfg->notifications_local_only) {
		struct tern_publish_args a = {.topic = b->note_topic,
		                              .payload = "0",
		                              .payload_len = 1,
		                              .qos = 0,
		                              .retain = b->cfg->outgoing_retain};
		enum tern_err e = tern_client_publish(b->c, &a, NULL);
		(void)e; /* the remote then keeps "1": what a lost connection leaves too */
	}
	b->leaving = true;
	if (tern_client_disconnect(b->c, 0, NULL) != TERN_OK)
		b->leaving = false;
	step(b);
}

/* A lazy bridge that forwarded nothing for idle_timeout stops: remote
 * connection closed, local session offline (so it queues), both started
 * again by the threshold. Not while something is in flight. */
static bool lazy_idle(struct bridge *b)
{
	uint64_t idle_ms = (uint64_t)b->cfg->idle_timeout * 1000u;
	if (b->w->now < b->last_traffic + idle_ms || tern_client_pending(b->c) || b->out.count ||
	    b->pend_head || b->n_acks || b->hold)
		return false;
	log_write(blog(b), LOG_TYPE_NOTICE,
	          "Bridge %s: idle for %u s (idle_timeout); stopping until %u messages wait.",
	          b->cfg->name, b->cfg->idle_timeout, b->cfg->threshold);
	remote_leave(b);
	bridge_notify_local(b, false);
	bridge_local_detach(b);
	b->state = BRIDGE_IDLE;
	b->step_at = 0;
	return true;
}

/* The local session of a lazy bridge at start: made (clean or resumed,
 * subscribed), then offline at once, to queue. */
static void lazy_init(struct bridge *b)
{
	bridge_notify_local(b, false); /* the state at start */
	bridge_local_attach(b);
	bridge_local_detach(b);
	b->state = BRIDGE_IDLE;
}

static void run_one(struct bridge *b)
{
	uint64_t now = b->w->now;
	bool lazy = b->cfg->start_type == BRIDGE_START_LAZY;
	if (b->local_closing) {
		/* The session was taken away: both sides start again later. */
		bridge_local_detach(b);
		probe_stop(b);
		if (b->fd >= 0)
			epoll_ctl(b->w->epfd, EPOLL_CTL_DEL, b->fd, NULL);
		b->fd = -1;
		b->ev_mask = 0;
		struct tern_client *fresh = NULL;
		if (tern_client_new(&fresh, &remote_cb, b) == TERN_OK) {
			bool was_up = b->state == BRIDGE_UP;
			tern_client_free(b->c);
			b->c = fresh;
			size_t pos = 0;
			struct out_entry *e;
			while ((e = map_next(&b->out, &pos)))
				bridge_out_entry_free(e);
			map_free(&b->out);
			if (was_up)
				bridge_notify_local(b, false);
		}
		b->leaving = false;
		b->state = b->cfg->start_type == BRIDGE_START_ONCE ? BRIDGE_DONE : BRIDGE_WAIT;
		b->step_at = 0;
		b->restart_at = now + restart_delay_ms(b);
	}
	if (lazy && !b->attached_once) {
		lazy_init(b);
	} else if (b->state == BRIDGE_IDLE) {
		uint64_t held = lazy_held(b);
		if (held >= b->cfg->threshold) {
			log_write(blog(b), LOG_TYPE_NOTICE,
			          "Bridge %s: %llu messages wait (threshold %u); starting.",
			          b->cfg->name, (unsigned long long)held, b->cfg->threshold);
			b->sleep_ms = 0;
			bridge_start(b);
			step(b);
		}
	} else if (b->state == BRIDGE_WAIT && now >= b->restart_at) {
		if (!b->sink.session && b->restart_at == 0)
			bridge_notify_local(b, false); /* the state at start */
		bridge_start(b);
		step(b);
	} else if (b->step_at && now >= b->step_at) {
		step(b);
	}
	if (b->state == BRIDGE_UP && lazy && lazy_idle(b))
		return;
	if (b->state == BRIDGE_UP && probing(b))
		probe_run(b);
	if (b->hold)
		bridge_hold_run(b);
	bridge_acks_run(b);
	if (b->pend_head) {
		bridge_pend_run(b);
		watch(b);
	}
}

void bridge_run(struct worker *w)
{
	struct bridge_worker *bw = w->bridges;
	if (!bw)
		return;
	for (size_t i = 0; i < bw->n; i++)
		run_one(bw->v[i]);
}
