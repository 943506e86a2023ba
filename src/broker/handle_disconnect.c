/*
 * handle_disconnect.c - PINGREQ, DISCONNECT and AUTH from a client.
 */
#include "broker/handlers.h"

#include "broker/conn.h"
#include "broker/session.h"
#include "tern/codec.h"

void handle_pingreq(struct conn *c)
{
	/* [MQTT-3.12.4-1] */
	struct tern_packet p = {.type = TERN_PINGRESP};
	conn_send(c, &p);
}

void handle_disconnect(struct conn *c, const struct tern_reasoned *p)
{
	struct session *s = c->session;
	if (c->version == TERN_V5 && (p->props.present & TERN_PROP_BIT(TERN_PROP_SESSION_EXPIRY))) {
		/* A session that ends at disconnect cannot be given an expiry
		 * now [MQTT-3.14.2-2]. */
		if (s->expiry == 0 && p->props.session_expiry != 0) {
			conn_close(c, TERN_RC_PROTOCOL_ERROR, "session expiry set on DISCONNECT");
			return;
		}
		s->expiry = p->props.session_expiry;
	}
	/* Only reason 0x00 (normal disconnection, and every v3 DISCONNECT)
	 * discards the will [MQTT-3.14.4-3] [MQTT-3.1.2-8]; 0x04 and the
	 * error codes leave it to be published. */
	c->will_suppressed = p->reason == TERN_RC_SUCCESS;
	/* The client ends the stream next: nothing of ours is left to read. */
	c->no_linger = true;
	conn_close(c, 0,
	           c->version == TERN_V5 && p->reason ? "client disconnected with a reason"
	                                              : "client sent DISCONNECT");
}

void handle_auth(struct conn *c, const struct tern_reasoned *p)
{
	(void)p;
	/* No authentication method was agreed in CONNECT, so any AUTH is a
	 * protocol error [MQTT-3.15.0-1] [MQTT-4.12.0-6]; for 3.1.1 packet type
	 * 15 is reserved and malformed. */
	conn_close(c, c->version == TERN_V5 ? TERN_RC_PROTOCOL_ERROR : TERN_RC_MALFORMED_PACKET,
	           "AUTH without an authentication method");
}
