/*
 * sink.h - where a packet handler's output goes: the connection as the
 * handlers and the session see it.
 *
 * A handler (handlers.h) gets the decoded packet, the session and a sink.
 * It answers through the sink's ops (send a packet, send a PUBLISH of a
 * delivery, close with a reason) and reads from the sink what the protocol
 * agreed with the client (version, limits, whether reason strings are
 * wanted), which handle_connect() writes there. A session reaches its
 * connection through the same sink (session->conn), to send what it
 * delivers.
 *
 * conn.c embeds a sink in every struct conn; conn_sink.c gives it its ops,
 * which queue into the connection's write buffer. A unit test gives a
 * handler a sink of its own whose ops record what was sent
 * (tests/unit/handler_fake.h), so a handler runs against a worker's state
 * with no socket.
 *
 * Use from a handler:
 *
 *   sink_send(k, &packet);                        CONNACK, SUBACK, ...: TERN_OK or why not
 *   sink_send_ack(k, TERN_PUBACK, id, reason);    the reason only in v5
 *   sink_answer(k, &packet);                      when a failure leaves nothing to do
 *   sink_answer_ack(k, TERN_PUBACK, id, reason);
 *   sink_send_publish(k, &delivery, id, dup);     TERN_E_TOO_LARGE: not sent
 *   sink_close(k, TERN_RC_PROTOCOL_ERROR, why);   v5: DISCONNECT with reason
 *   sink_reason_string(k, &props, why);           only if the client asked
 *
 * An answer that waits (for the router replicas, for a store commit) keeps
 * the session id and k->id, not k, and finds the sink again with
 * sink_find(), which gives NULL once that connection is gone.
 *
 * Ownership: the sink belongs to whoever made it (the connection); a
 * handler or session keeps no pointer to it beyond what session->conn and
 * sink->session record while the two are attached (handle_connect() attaches,
 * handle_detach() detaches). Sends after sink_close() are dropped
 * (TERN_E_CLOSED).
 */
#ifndef TERN_BROKER_SINK_H
#define TERN_BROKER_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tern/codec.h"
#include "tern/error.h"

struct alias_in;
struct delivery;
struct flow_hit;
struct msg;
struct session;
struct sink;
struct worker;

/* What the admin API shows of a connection (sink_ops.info). */
struct sink_info {
	uint64_t bytes_in, bytes_out; /* read and written on its socket */
	int64_t since_ms;             /* wall ms when it was accepted; 0: not known */
};

struct sink_ops {
	/* Encodes and queues p. TERN_E_TOO_LARGE when it exceeds the
	 * client's Maximum Packet Size even without the optional properties
	 * (nothing is sent then), TERN_E_CLOSED after close; out of memory
	 * closes the sink. */
	TERN_MUST_CHECK enum tern_err (*send)(struct sink *k, const struct tern_packet *p);

	/* Encodes and queues a PUBLISH of d with packet_id (0 for QoS 0) and
	 * dup. TERN_E_TOO_LARGE over the client's Maximum Packet Size
	 * [MQTT-3.1.2-25], TERN_E_CLOSED after close. */
	TERN_MUST_CHECK enum tern_err (*send_publish)(struct sink *k, const struct delivery *d,
	                                              uint16_t packet_id, bool dup);

	/* Optional (NULL: sink_send_ack() goes through send): queues an
	 * ack-type packet (PUBACK..PUBCOMP) without a struct tern_packet
	 * being built, the hot path of QoS 1/2. Results as send. */
	TERN_MUST_CHECK enum tern_err (*send_ack)(struct sink *k, enum tern_packet_type type,
	                                          uint16_t packet_id, uint8_t reason);

	/* Ends the connection: a reason >= 0x80 goes first in a v5
	 * DISCONNECT once connected (with why as reason string when the
	 * client asked for problem information); why (may be NULL) goes to
	 * the log. Idempotent. The session is detached later, when the
	 * connection is reaped (handle_detach()). */
	void (*close)(struct sink *k, uint8_t reason, const char *why);

	/* The client sent DISCONNECT: close without a DISCONNECT of ours and
	 * without waiting for more input (the client ends the stream next). */
	void (*end)(struct sink *k, const char *why);

	/* Checks the credentials of a CONNECT (auth_connect()): TERN_OK with
	 * *rc TERN_RC_SUCCESS and the username in force in *user (data NULL:
	 * none), or *rc the v5 reason to refuse with and *why a static text
	 * naming the cause, or NULL. TERN_E_INCOMPLETE when the answer comes
	 * later: the handler returns and is called again with the same
	 * CONNECT once it is in. */
	TERN_MUST_CHECK enum tern_err (*authenticate)(struct sink *k, const struct tern_connect *p,
	                                              struct tern_bytes *user, uint8_t *rc,
	                                              const char **why);

	/* Optional (NULL: sessions are this node's only): looks the record
	 * of client id cid's session up in the cluster (cluster_session_get()),
	 * for a CONNECT without clean start whose session this node does not
	 * hold. TERN_E_INCOMPLETE when asked: the handler returns and is
	 * called again with the same CONNECT once the answer is in; then
	 * TERN_OK with *rec the record (session_record.h; malloc'd, the
	 * caller's to free) and *len, or *rec NULL when the cluster has none;
	 * another error when it could not be looked up (JetStream not
	 * reachable, no answer in time, out of memory). */
	TERN_MUST_CHECK enum tern_err (*session_lookup)(struct sink *k, struct tern_bytes cid,
	                                                uint8_t **rec, size_t *len);

	/* Hands the connection, its CONNECT not yet consumed, to worker home,
	 * which runs handle_connect() again; the caller returns at once and
	 * touches k no more. */
	void (*hand_over)(struct sink *k, unsigned home);

	/* The CONNECT is accepted: from now on the connection is connected
	 * (keep-alive runs, a close sends a v5 DISCONNECT). */
	void (*accept)(struct sink *k);

	/* Bytes queued for writing and not yet written: a session drops
	 * QoS 0 messages to a client this far behind (max_output_bytes). */
	size_t (*pending_out)(const struct sink *k);

	/* The peer's address ("1.2.3.4:5678"), written into buf, for the
	 * log. */
	const char *(*name)(const struct sink *k, char buf[64]);

	/* Flow control's say on the acknowledgement (type PUBACK or PUBREC,
	 * packet_id, reason) of a PUBLISH that came through k (flow.h): when
	 * k's acknowledgements are held already, this one is held too, after
	 * them; when hit (may be NULL) names a receiver that is over its mark,
	 * k is paused with this one held. True when the ack was taken so
	 * (it goes out once the receiver drains), false when the caller
	 * acknowledges as usual. */
	bool (*flow_ack)(struct sink *k, const struct flow_hit *hit, uint8_t type,
	                 uint16_t packet_id, uint8_t reason);

	/* Optional (NULL: zeros): its byte counts and age, for the admin
	 * API (src/http), on the worker that owns it. */
	void (*info)(const struct sink *k, struct sink_info *out);
};

/* The connection's side of the protocol, as agreed in CONNECT / CONNACK:
 * written by handle_connect(), read by every handler, by the session and by
 * the connection itself (framing, keep-alive, aliases). */
struct sink {
	const struct sink_ops *ops;
	uint64_t id;                /* the connection's id, never 0 */
	struct session *session;    /* attached session; NULL before CONNECT, after detach */
	struct msg *will;           /* will of this connection; owned */
	uint32_t client_max_packet; /* client's Maximum Packet Size (v5); 0 none */
	uint32_t will_delay;        /* seconds */
	uint32_t will_expiry;       /* its Message Expiry Interval, applied */
	uint16_t keep_alive;        /* seconds, as granted; 0: none */
	uint16_t send_quota_max;    /* client's Receive Maximum (v5) */
	uint16_t alias_max;         /* our Topic Alias Maximum (v5) */
	/* Inbound topic aliases (util/alias_in.h), set and used by
	 * handle_publish(); NULL until the first is set. Whoever made the
	 * sink frees them with alias_in_free(). */
	struct alias_in *alias_in;
	uint16_t alias_out_max; /* aliases we may assign: the client's, capped */
	uint8_t version;        /* TERN_V31, TERN_V311, TERN_V5; 0 before CONNECT */
	uint8_t listener;       /* index of the broker's listener it came in on */
	/* The broker's own client, a bridge's local side (bridge.c): the
	 * listener's admission rules and the ACL do not apply to it, as they
	 * do not to mosquitto's bridges; listener stays 0 for the limits. */
	bool internal;
	/* A 3.1 / 3.1.1 CONNECT with the bridge bit (codec.h): its
	 * subscriptions are No Local and Retain As Published. */
	bool bridge;
	bool problem_info;    /* the v5 CONNECT set Request Problem Information 1 */
	bool will_has_expiry; /*   when it is published */
	bool will_suppressed; /* normal DISCONNECT received: no will */
};

/* The connection (its sink) of session session_id on w, if it is still
 * conn_id (a connection that closed, or a new one of the same session,
 * does not match); NULL otherwise. For answers that were held back. */
struct sink *sink_find(struct worker *w, uint64_t session_id, uint64_t conn_id);

/* Sends p through k (see sink_ops.send). */
static inline TERN_MUST_CHECK enum tern_err sink_send(struct sink *k, const struct tern_packet *p)
{
	return k->ops->send(k, p);
}

/* Sends an ack-type packet (PUBACK..PUBCOMP, with the reason in v5 only). */
static inline TERN_MUST_CHECK enum tern_err
sink_send_ack(struct sink *k, enum tern_packet_type type, uint16_t packet_id, uint8_t reason)
{
	if (k->ops->send_ack)
		return k->ops->send_ack(k, type, packet_id, reason);
	struct tern_packet p = {.type = type};
	p.u.ack.packet_id = packet_id;
	p.u.ack.reason = k->version == TERN_V5 ? reason : 0;
	return k->ops->send(k, &p);
}

/*
 * Sends an answer (an ack, PINGRESP, a refusing CONNACK, a PUBREL resent
 * on resume) whose failure leaves the caller nothing to do, so it returns
 * nothing: out of memory has closed k, a closed k drops it, and an answer
 * over the client's Maximum Packet Size even without its optional
 * properties cannot be sent at all [MQTT-3.1.2-24]. The session goes on as
 * if it was sent: a client that reconnects resends what it saw no answer to,
 * and gets every PUBREL again [MQTT-4.4.0-1].
 */
static inline void sink_answer(struct sink *k, const struct tern_packet *p)
{
	enum tern_err handled_by_sink = sink_send(k, p);
	(void)handled_by_sink;
}

/* sink_send_ack() as an answer (see sink_answer()). */
static inline void sink_answer_ack(struct sink *k, enum tern_packet_type type, uint16_t packet_id,
                                   uint8_t reason)
{
	enum tern_err handled_by_sink = sink_send_ack(k, type, packet_id, reason);
	(void)handled_by_sink;
}

/* Sends a PUBLISH of d through k (see sink_ops.send_publish). */
static inline TERN_MUST_CHECK enum tern_err
sink_send_publish(struct sink *k, const struct delivery *d, uint16_t packet_id, bool dup)
{
	return k->ops->send_publish(k, d, packet_id, dup);
}

/* Bytes k has queued for writing (see sink_ops.pending_out). */
static inline size_t sink_pending_out(const struct sink *k)
{
	return k->ops->pending_out(k);
}

/* The peer's address of k, for the log (see sink_ops.name). */
static inline const char *sink_name(const struct sink *k, char buf[64])
{
	return k->ops->name(k, buf);
}

/* Closes k with reason and why (see sink_ops.close). */
static inline void sink_close(struct sink *k, uint8_t reason, const char *why)
{
	k->ops->close(k, reason, why);
}

/* The reason string property for why, when k's client asked for problem
 * information (v5): set into props, else left alone. */
static inline void sink_reason_string(const struct sink *k, struct tern_props *props,
                                      const char *why)
{
	if (k->version == TERN_V5 && why && k->problem_info) {
		props->present |= TERN_PROP_BIT(TERN_PROP_REASON_STRING);
		props->reason_string =
		        (struct tern_bytes){(const uint8_t *)why, (uint32_t)__builtin_strlen(why)};
	}
}

#endif
