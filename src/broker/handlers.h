/*
 * handlers.h - the packet handlers (handle_*.c), one per packet type, as in
 * mosquitto: conn.c decodes a packet and calls its handler with the decoded
 * struct, the session and the connection's sink (sink.h), through which the
 * handler answers. A handler sees no socket and no struct conn, so a test
 * drives it with a fake sink (tests/unit/handler_fake.h).
 */
#ifndef TERN_BROKER_HANDLERS_H
#define TERN_BROKER_HANDLERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/broker.h"
#include "proto/topic.h"
#include "tern/codec.h"
#include "tern/error.h"

struct conn;
struct session;
struct sink;
struct worker;

/* CONNECT (handle_connect.c), arriving on worker w through sink k: checks
 * what can refuse it (refusing CONNACK, then close), authenticates, hands
 * k to the client id's home worker when that is another one (which runs
 * this again), then takes over or resumes the session or makes a new one,
 * attaches it to k (session->conn, k->session), fills in k's side of the
 * protocol (sink.h) and sends CONNACK. */
void handle_connect(struct worker *w, struct sink *k, const struct tern_connect *p);

/* Answers a CONNECT that failed to decode: CONNACK 0x01 (v5: 0x84) for an
 * unknown protocol level under MQTT's protocol name [MQTT-3.1.2-2], a plain
 * close otherwise. body is the undecoded packet body. */
void connect_refuse_decoded(struct worker *w, struct sink *k, enum tern_err err,
                            const uint8_t *body, size_t len);

/* PUBLISH of session s through k (handle_publish.c): the limits and the
 * ACL, then session_publish() routes it, and the PUBACK / PUBREC goes out
 * through session_ack() (after the commit when the store must have the
 * message first) or is held by flow control (sink_ops.flow_ack). QoS 2 is
 * remembered until PUBREL (method B). */
void handle_publish(struct sink *k, struct session *s, const struct tern_publish *p);

/* PUBACK, PUBREC, PUBCOMP of what s was sent, and PUBREL of what it
 * published (handle_publish.c): move the QoS 1 / QoS 2 state machines along
 * (session_inflight_ack, session_qos2_release) and answer PUBREL / PUBCOMP
 * as section 4.3 says. */
void handle_puback(struct sink *k, struct session *s, const struct tern_ack *p);
void handle_pubrec(struct sink *k, struct session *s, const struct tern_ack *p);
void handle_pubrel(struct sink *k, struct session *s, const struct tern_ack *p);
void handle_pubcomp(struct sink *k, struct session *s, const struct tern_ack *p);

/* SUBSCRIBE and UNSUBSCRIBE of session s, connected through k
 * (handle_subscribe.c): s's own table changes at once, the router replicas
 * through route_change(); the SUBACK / UNSUBACK goes out on s's connection
 * once every replica (and the store) has the change, followed by the
 * retained messages of new subscriptions. */
void handle_subscribe(struct sink *k, struct session *s, const struct tern_subscribe *p);
void handle_unsubscribe(struct sink *k, struct session *s, const struct tern_unsubscribe *p);

/* PINGREQ (handle_disconnect.c): PINGRESP. */
void handle_pingreq(struct sink *k);

/* DISCONNECT of session s through k (handle_disconnect.c): a v5 session
 * expiry takes effect, the will is discarded on reason 0 only, and k ends.
 * The session is detached when the connection is reaped (handle_detach). */
void handle_disconnect(struct sink *k, struct session *s, const struct tern_reasoned *p);

/* AUTH (handle_disconnect.c): no authentication method is ever agreed, so
 * k closes with a protocol error. */
void handle_auth(struct sink *k, const struct tern_reasoned *p);

/* Takeover of s, the session of client id cid, by a newer holder of the
 * id [MQTT-3.1.4-3] (handle_connect.c): its connection, if any, is closed
 * (DISCONNECT 0x8E for v5) and detached, so its will follows the usual
 * rules. Returns s, or NULL when the session ended with its connection. */
struct session *connect_take_over(struct worker *w, struct session *s, struct tern_bytes cid);

/* Another node claimed client id cid with this stamp (cluster.h, the taken
 * callback), on cid's home worker: the session of cid, if its own claim is
 * older, is taken over (connect_take_over()) and ended, as by a clean-start
 * CONNECT on this node; its record in the cluster stays for the new holder
 * unless clean (the claim's CONNECT had clean start). */
void connect_cluster_taken(struct worker *w, struct tern_bytes cid, uint64_t stamp, bool tie_wins,
                           bool clean);

/* The end of a connection's session (handle_disconnect.c), when the
 * connection is reaped or taken over: detaches k's session, publishes k's
 * will now or schedules it after its delay (unless a normal DISCONNECT
 * suppressed it), and ends a session whose expiry interval is 0; a
 * session that stays is recorded as disconnected. Nothing when k has no
 * session. */
void handle_detach(struct sink *k);

/* True when topic (a name or filter) has more levels than max_topic_levels
 * allows. */
static inline bool topic_too_deep(const struct broker *b, struct tern_bytes topic)
{
	uint32_t max = b->cfg.max_topic_levels;
	return max && topic_levels_over(topic.data, topic.len, max);
}

#endif
