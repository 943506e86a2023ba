/*
 * handlers.h - the packet handlers (handle_*.c), one per packet type, as in
 * mosquitto: conn.c decodes a packet and calls its handler with the decoded
 * struct.
 */
#ifndef TERN_BROKER_HANDLERS_H
#define TERN_BROKER_HANDLERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/broker.h"
#include "tern/codec.h"
#include "tern/error.h"

struct conn;

/* CONNECT (handle_connect.c): authenticates, hands c to its session's home
 * worker when that is another one, then takes over or resumes the session
 * and answers CONNACK. */
void handle_connect(struct conn *c, const struct tern_connect *p);

/* PUBLISH and its acknowledgements (handle_publish.c): QoS 0/1/2 in, and
 * the acks of what c was sent. */
void handle_publish(struct conn *c, const struct tern_publish *p);
void handle_puback(struct conn *c, const struct tern_ack *p);
void handle_pubrec(struct conn *c, const struct tern_ack *p);
void handle_pubrel(struct conn *c, const struct tern_ack *p);
void handle_pubcomp(struct conn *c, const struct tern_ack *p);

/* SUBSCRIBE and UNSUBSCRIBE (handle_subscribe.c): the SUBACK / UNSUBACK
 * goes out once every replica applied the change. */
void handle_subscribe(struct conn *c, const struct tern_subscribe *p);
void handle_unsubscribe(struct conn *c, const struct tern_unsubscribe *p);

/* PINGREQ, DISCONNECT and AUTH (handle_disconnect.c). */
void handle_pingreq(struct conn *c);
void handle_disconnect(struct conn *c, const struct tern_reasoned *p);
void handle_auth(struct conn *c, const struct tern_reasoned *p);

/* Answers a CONNECT that failed to decode: CONNACK 0x01 (v5: 0x84) for an
 * unknown protocol level under MQTT's protocol name [MQTT-3.1.2-2], a plain
 * close otherwise. body is the undecoded packet body. */
void connect_refuse_decoded(struct conn *c, enum tern_err err, const uint8_t *body, size_t len);

/* True when topic (a name or filter) has more levels than max_topic_levels
 * allows. */
static inline bool topic_too_deep(const struct broker *b, struct tern_bytes topic)
{
	uint32_t max = b->cfg.max_topic_levels;
	if (!max || topic.len < max)
		return false;
	uint32_t levels = 1;
	for (uint32_t i = 0; i < topic.len; i++)
		if (topic.data[i] == '/' && ++levels > max)
			return true;
	return false;
}

#endif
