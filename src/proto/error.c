/*
 * error.c - the one place where codes become words or other codes:
 * tern_strerror() for logs, tern_packet_name(), tern_err_reason() (which
 * DISCONNECT reason a decode error earns), and the tables of which reason
 * codes each MQTT 5.0 packet type may carry (sections 3.2.2.2 to 3.15.2.1).
 *
 * Everything here is a const table or a switch: no state.
 */
#include "proto/proto_internal.h"

const char *tern_strerror(enum tern_err err)
{
	switch (err) {
	case TERN_OK:
		return "success";
	case TERN_E_INCOMPLETE:
		return "incomplete packet";
	case TERN_E_MALFORMED:
		return "malformed packet";
	case TERN_E_PROTOCOL:
		return "protocol error";
	case TERN_E_TOO_LARGE:
		return "packet too large";
	case TERN_E_TOPIC_NAME:
		return "invalid topic name";
	case TERN_E_TOPIC_FILTER:
		return "invalid topic filter";
	case TERN_E_UNSUPPORTED_VERSION:
		return "unsupported protocol version";
	case TERN_E_BUFFER:
		return "buffer too small";
	case TERN_E_NOMEM:
		return "out of memory";
	case TERN_E_SYS:
		return "system call failed";
	case TERN_E_CLOSED:
		return "connection closed";
	case TERN_E_CONFIG:
		return "invalid configuration";
	case TERN_E_INVALID:
		return "invalid argument";
	case TERN_E_LIMIT:
		return "limit reached";
	case TERN_E_NOT_FOUND:
		return "not found";
	case TERN_E_TIMEOUT:
		return "timed out";
	case TERN_E_TLS:
		return "TLS error (certificate, handshake or alert)";
	case TERN_E_BUSY:
		return "in use";
	}
	return "unknown error";
}

const char *tern_packet_name(enum tern_packet_type type)
{
	static const char *const names[] = {
	        [TERN_CONNECT] = "CONNECT",   [TERN_CONNACK] = "CONNACK",
	        [TERN_PUBLISH] = "PUBLISH",   [TERN_PUBACK] = "PUBACK",
	        [TERN_PUBREC] = "PUBREC",     [TERN_PUBREL] = "PUBREL",
	        [TERN_PUBCOMP] = "PUBCOMP",   [TERN_SUBSCRIBE] = "SUBSCRIBE",
	        [TERN_SUBACK] = "SUBACK",     [TERN_UNSUBSCRIBE] = "UNSUBSCRIBE",
	        [TERN_UNSUBACK] = "UNSUBACK", [TERN_PINGREQ] = "PINGREQ",
	        [TERN_PINGRESP] = "PINGRESP", [TERN_DISCONNECT] = "DISCONNECT",
	        [TERN_AUTH] = "AUTH",
	};
	if ((int)type < TERN_CONNECT || (int)type > TERN_AUTH)
		return "UNKNOWN";
	return names[type];
}

/*
 * Malformed Packet and Protocol Error are the two reasons section 4.13
 * names for decode failures; a packet over Maximum Packet Size is 0x95
 * (3.1.2.11.4); a bad topic name or filter has its own code. Anything else
 * that reaches a DISCONNECT is our own failure: Implementation specific
 * error (0x83) for exhausted resources, Unspecified error (0x80) otherwise.
 */
uint8_t tern_err_reason(enum tern_err err)
{
	switch (err) {
	case TERN_OK:
		return TERN_RC_SUCCESS;
	case TERN_E_MALFORMED:
		return TERN_RC_MALFORMED_PACKET;
	case TERN_E_PROTOCOL:
		return TERN_RC_PROTOCOL_ERROR;
	case TERN_E_TOO_LARGE:
		return TERN_RC_PACKET_TOO_LARGE;
	case TERN_E_TOPIC_NAME:
		return TERN_RC_TOPIC_NAME_INVALID;
	case TERN_E_TOPIC_FILTER:
		return TERN_RC_TOPIC_FILTER_INVALID;
	case TERN_E_UNSUPPORTED_VERSION:
		return TERN_RC_UNSUPPORTED_PROTOCOL_VERSION;
	case TERN_E_NOMEM:
	case TERN_E_LIMIT:
		return TERN_RC_IMPLEMENTATION_SPECIFIC;
	default:
		return TERN_RC_UNSPECIFIED;
	}
}

/* True if code is one of list[0..n). */
static bool rc_in(const uint8_t *list, size_t n, uint8_t code)
{
	for (size_t i = 0; i < n; i++)
		if (list[i] == code)
			return true;
	return false;
}

#define IN(list, code) rc_in(list, sizeof(list), code)

/* 3.2.2.2 CONNACK Reason Codes. */
static const uint8_t rc_connack[] = {0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86,
                                     0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
                                     0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F};
/* 3.4.2.1 PUBACK and 3.5.2.1 PUBREC Reason Codes. */
static const uint8_t rc_puback[] = {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99};
/* 3.6.2.1 PUBREL and 3.7.2.1 PUBCOMP Reason Codes. */
static const uint8_t rc_pubrel[] = {0x00, 0x92};
/* 3.9.3 SUBACK Reason Codes. */
static const uint8_t rc_suback[] = {0x00, 0x01, 0x02, 0x80, 0x83, 0x87,
                                    0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2};
/* 3.11.3 UNSUBACK Reason Codes. */
static const uint8_t rc_unsuback[] = {0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91};
/* 3.14.2.1 DISCONNECT Reason Codes. */
static const uint8_t rc_disconnect[] = {0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D,
                                        0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
                                        0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2};
/* 3.15.2.1 AUTH Reason Codes. */
static const uint8_t rc_auth[] = {0x00, 0x18, 0x19};

/*
 * In 3.1 / 3.1.1 only CONNACK (return codes 0..5, 3.2.2.3) and SUBACK
 * (0, 1, 2 and the 3.1.1 failure 0x80, 3.9.3) carry codes; 3.1 servers are
 * known to send 0x80 too, so it is accepted for both.
 */
bool tern__reason_valid(int ptype, uint8_t version, uint8_t code)
{
	if (version != TERN_V5) {
		switch (ptype) {
		case TERN_CONNACK:
			return code <= TERN_V3_NOT_AUTHORIZED;
		case TERN_SUBACK:
			return code <= 2 || code == 0x80;
		default:
			return code == 0;
		}
	}
	switch (ptype) {
	case TERN_CONNACK:
		return IN(rc_connack, code);
	case TERN_PUBACK:
	case TERN_PUBREC:
		return IN(rc_puback, code);
	case TERN_PUBREL:
	case TERN_PUBCOMP:
		return IN(rc_pubrel, code);
	case TERN_SUBACK:
		return IN(rc_suback, code);
	case TERN_UNSUBACK:
		return IN(rc_unsuback, code);
	case TERN_DISCONNECT:
		return IN(rc_disconnect, code);
	case TERN_AUTH:
		return IN(rc_auth, code);
	default:
		return false;
	}
}
