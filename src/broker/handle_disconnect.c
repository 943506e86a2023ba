/*
 * handle_disconnect.c - PINGREQ, DISCONNECT and AUTH from a client, and the
 * end of a connection's hold on its session (handle_detach): the will and a
 * session that ends with its connection.
 */
#include "broker/handlers.h"

#include "broker/session.h"
#include "broker/sink.h"
#include "broker/stats.h"
#include "broker/worker.h"
#include "tern/codec.h"
#include "util/msg.h"

void handle_pingreq(struct sink *k)
{
	/* [MQTT-3.12.4-1] */
	struct tern_packet p = {.type = TERN_PINGRESP};
	sink_answer(k, &p);
}

void handle_disconnect(struct sink *k, struct session *s, const struct tern_reasoned *p)
{
	if (k->version == TERN_V5 && (p->props.present & TERN_PROP_BIT(TERN_PROP_SESSION_EXPIRY))) {
		/* A session that ends at disconnect cannot be given an expiry
		 * now [MQTT-3.14.2-2]. */
		if (session_expiry(s) == 0 && p->props.session_expiry != 0) {
			sink_close(k, TERN_RC_PROTOCOL_ERROR, "session expiry set on DISCONNECT");
			return;
		}
		session_set_expiry(s, p->props.session_expiry);
	}
	/* Only reason 0x00 (normal disconnection, and every v3 DISCONNECT)
	 * discards the will [MQTT-3.14.4-3] [MQTT-3.1.2-8]; 0x04 and the
	 * error codes leave it to be published. */
	k->will_suppressed = p->reason == TERN_RC_SUCCESS;
	k->ops->end(k, k->version == TERN_V5 && p->reason ? "client disconnected with a reason"
	                                                  : "client sent DISCONNECT");
}

void handle_auth(struct sink *k, const struct tern_reasoned *p)
{
	(void)p;
	/* No authentication method was agreed in CONNECT, so any AUTH is a
	 * protocol error [MQTT-3.15.0-1] [MQTT-4.12.0-6]; for 3.1.1 packet type
	 * 15 is reserved and malformed. */
	sink_close(k, k->version == TERN_V5 ? TERN_RC_PROTOCOL_ERROR : TERN_RC_MALFORMED_PACKET,
	           "AUTH without an authentication method");
}

void handle_detach(struct sink *k)
{
	struct session *s = k->session;
	if (!s)
		return;
	struct msg *will = NULL;
	if (k->will && !k->will_suppressed) {
		will = k->will;
		k->will = NULL;
	}
	/* The will goes out after the Will Delay Interval or when the session
	 * ends, whichever is first [MQTT-3.1.3-9]; a session with expiry 0
	 * ends now. */
	(void)session_offline_take(s, will, k->will_delay, k->will_has_expiry, k->will_expiry);
}
