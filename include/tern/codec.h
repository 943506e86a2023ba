/*
 * tern/codec.h - the MQTT 3.1 / 3.1.1 / 5.0 codec shared by the broker, the
 * client library and the fuzzers.
 *
 * The codec is pure: it knows bytes and structs, does no I/O and never
 * allocates. Decoding happens in two steps, as in h2o's frame decoder:
 *
 *   1. tern_decode_fixed_header() looks at the first bytes of a buffer and
 *      says how long the packet is, "incomplete", or an error. It rejects a
 *      packet over the caller's maximum size as soon as the remaining length
 *      is known, before anyone buffers the body.
 *   2. tern_decode_packet() decodes one whole packet into a struct tern_packet
 *      whose strings and binary fields POINT INTO THE CALLER'S BUFFER: the
 *      decoded packet is valid only while that buffer is unchanged.
 *
 * Repeated fields (SUBSCRIBE entries, UNSUBSCRIBE filters, user properties,
 * subscription identifiers) are not copied into arrays, since that would
 * need allocation; the decoder validates them all and the caller walks them
 * with the tern_*_next() iterators.
 *
 * Encoding takes the same structs. Repeated fields to encode are given as
 * caller-owned arrays (entries, filters, reasons, sub_ids) or, for user
 * properties, as an already encoded block (user_raw). tern_encode_packet()
 * fails with TERN_E_BUFFER and writes nothing useful when the buffer is too
 * small; tern_packet_size() tells the size in advance.
 *
 * Validation follows the specifications (cited as [MQTT-x.x.x-y]): reserved
 * flag bits, minimal variable byte integers of at most 4 bytes, well-formed
 * UTF-8 without U+0000 or surrogates, topic names vs filters, non-zero packet
 * identifiers, QoS 3, v5 properties that are duplicated, out of range or not
 * allowed in the packet type. The decoder is direction-agnostic: whether a
 * client may send a given packet type is for the caller to decide.
 */
#ifndef TERN_CODEC_H
#define TERN_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tern/error.h"
#include "tern/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Protocol levels as carried in CONNECT. */
enum tern_version {
	TERN_V31 = 3,  /* MQTT 3.1 ("MQIsdp") */
	TERN_V311 = 4, /* MQTT 3.1.1 */
	TERN_V5 = 5,   /* MQTT 5.0 */
};

enum tern_packet_type {
	TERN_CONNECT = 1,
	TERN_CONNACK = 2,
	TERN_PUBLISH = 3,
	TERN_PUBACK = 4,
	TERN_PUBREC = 5,
	TERN_PUBREL = 6,
	TERN_PUBCOMP = 7,
	TERN_SUBSCRIBE = 8,
	TERN_SUBACK = 9,
	TERN_UNSUBSCRIBE = 10,
	TERN_UNSUBACK = 11,
	TERN_PINGREQ = 12,
	TERN_PINGRESP = 13,
	TERN_DISCONNECT = 14,
	TERN_AUTH = 15, /* MQTT 5.0 only */
};

/* MQTT 5.0 reason codes (section 2.4), and the 3.1.1 CONNACK return codes. */
enum tern_reason {
	TERN_RC_SUCCESS = 0x00, /* also Normal disconnection, Granted QoS 0 */
	TERN_RC_GRANTED_QOS1 = 0x01,
	TERN_RC_GRANTED_QOS2 = 0x02,
	TERN_RC_DISCONNECT_WITH_WILL = 0x04,
	TERN_RC_NO_MATCHING_SUBSCRIBERS = 0x10,
	TERN_RC_NO_SUBSCRIPTION_EXISTED = 0x11,
	TERN_RC_CONTINUE_AUTHENTICATION = 0x18,
	TERN_RC_REAUTHENTICATE = 0x19,
	TERN_RC_UNSPECIFIED = 0x80,
	TERN_RC_MALFORMED_PACKET = 0x81,
	TERN_RC_PROTOCOL_ERROR = 0x82,
	TERN_RC_IMPLEMENTATION_SPECIFIC = 0x83,
	TERN_RC_UNSUPPORTED_PROTOCOL_VERSION = 0x84,
	TERN_RC_CLIENT_ID_NOT_VALID = 0x85,
	TERN_RC_BAD_USERNAME_OR_PASSWORD = 0x86,
	TERN_RC_NOT_AUTHORIZED = 0x87,
	TERN_RC_SERVER_UNAVAILABLE = 0x88,
	TERN_RC_SERVER_BUSY = 0x89,
	TERN_RC_BANNED = 0x8A,
	TERN_RC_SERVER_SHUTTING_DOWN = 0x8B,
	TERN_RC_BAD_AUTHENTICATION_METHOD = 0x8C,
	TERN_RC_KEEP_ALIVE_TIMEOUT = 0x8D,
	TERN_RC_SESSION_TAKEN_OVER = 0x8E,
	TERN_RC_TOPIC_FILTER_INVALID = 0x8F,
	TERN_RC_TOPIC_NAME_INVALID = 0x90,
	TERN_RC_PACKET_ID_IN_USE = 0x91,
	TERN_RC_PACKET_ID_NOT_FOUND = 0x92,
	TERN_RC_RECEIVE_MAXIMUM_EXCEEDED = 0x93,
	TERN_RC_TOPIC_ALIAS_INVALID = 0x94,
	TERN_RC_PACKET_TOO_LARGE = 0x95,
	TERN_RC_MESSAGE_RATE_TOO_HIGH = 0x96,
	TERN_RC_QUOTA_EXCEEDED = 0x97,
	TERN_RC_ADMINISTRATIVE_ACTION = 0x98,
	TERN_RC_PAYLOAD_FORMAT_INVALID = 0x99,
	TERN_RC_RETAIN_NOT_SUPPORTED = 0x9A,
	TERN_RC_QOS_NOT_SUPPORTED = 0x9B,
	TERN_RC_USE_ANOTHER_SERVER = 0x9C,
	TERN_RC_SERVER_MOVED = 0x9D,
	TERN_RC_SHARED_SUBS_NOT_SUPPORTED = 0x9E,
	TERN_RC_CONNECTION_RATE_EXCEEDED = 0x9F,
	TERN_RC_MAXIMUM_CONNECT_TIME = 0xA0,
	TERN_RC_SUB_IDS_NOT_SUPPORTED = 0xA1,
	TERN_RC_WILDCARD_SUBS_NOT_SUPPORTED = 0xA2,
};

/* MQTT 3.1 / 3.1.1 CONNACK return codes. */
enum tern_v3_connack {
	TERN_V3_ACCEPTED = 0x00,
	TERN_V3_UNACCEPTABLE_VERSION = 0x01,
	TERN_V3_IDENTIFIER_REJECTED = 0x02,
	TERN_V3_SERVER_UNAVAILABLE = 0x03,
	TERN_V3_BAD_USERNAME_OR_PASSWORD = 0x04,
	TERN_V3_NOT_AUTHORIZED = 0x05,
};

/* MQTT 5.0 property identifiers (section 2.2.2.2). */
enum tern_prop_id {
	TERN_PROP_PAYLOAD_FORMAT = 0x01,
	TERN_PROP_MESSAGE_EXPIRY = 0x02,
	TERN_PROP_CONTENT_TYPE = 0x03,
	TERN_PROP_RESPONSE_TOPIC = 0x08,
	TERN_PROP_CORRELATION_DATA = 0x09,
	TERN_PROP_SUBSCRIPTION_ID = 0x0B,
	TERN_PROP_SESSION_EXPIRY = 0x11,
	TERN_PROP_ASSIGNED_CLIENT_ID = 0x12,
	TERN_PROP_SERVER_KEEP_ALIVE = 0x13,
	TERN_PROP_AUTH_METHOD = 0x15,
	TERN_PROP_AUTH_DATA = 0x16,
	TERN_PROP_REQUEST_PROBLEM_INFO = 0x17,
	TERN_PROP_WILL_DELAY = 0x18,
	TERN_PROP_REQUEST_RESPONSE_INFO = 0x19,
	TERN_PROP_RESPONSE_INFO = 0x1A,
	TERN_PROP_SERVER_REFERENCE = 0x1C,
	TERN_PROP_REASON_STRING = 0x1F,
	TERN_PROP_RECEIVE_MAXIMUM = 0x21,
	TERN_PROP_TOPIC_ALIAS_MAXIMUM = 0x22,
	TERN_PROP_TOPIC_ALIAS = 0x23,
	TERN_PROP_MAXIMUM_QOS = 0x24,
	TERN_PROP_RETAIN_AVAILABLE = 0x25,
	TERN_PROP_USER_PROPERTY = 0x26,
	TERN_PROP_MAXIMUM_PACKET_SIZE = 0x27,
	TERN_PROP_WILDCARD_SUB_AVAILABLE = 0x28,
	TERN_PROP_SUB_ID_AVAILABLE = 0x29,
	TERN_PROP_SHARED_SUB_AVAILABLE = 0x2A,
};

/* Largest value a variable byte integer can hold (4 bytes). */
#define TERN_VBI_MAX 268435455u
/* Largest subscription identifier [MQTT-3.8.2.1.2]. */
#define TERN_SUB_ID_MAX TERN_VBI_MAX
/* Largest possible MQTT packet: 1 byte type, 4 bytes length, the body. */
#define TERN_PACKET_MAX (1u + 4u + TERN_VBI_MAX)

/* A run of bytes; when decoded it points into the decoded buffer. A string
 * has been checked to be well-formed UTF-8 without U+0000. */
struct tern_bytes {
	const uint8_t *data;
	uint32_t len;
};

/* The bit of `present` for a property id. */
#define TERN_PROP_BIT(id) (UINT64_C(1) << (id))

/*
 * MQTT 5.0 properties of one packet (or of a will). A field is meaningful
 * only when its bit is set in `present` (TERN_PROP_BIT(id)); user
 * properties and subscription identifiers are counted, not flagged.
 *
 * Decoding fills `raw` with the whole property block (without its length)
 * so that tern_props_next_user() and tern_props_next_sub_id() can walk it.
 * Encoding ignores `raw`; it writes the flagged fields, then the sub_ids
 * array, then user_raw, a block of already encoded user properties (each
 * 0x26, name, value: see tern_user_prop_encode()).
 */
struct tern_props {
	uint64_t present;
	uint8_t payload_format;               /* 0x01: 0 bytes, 1 UTF-8 */
	uint32_t message_expiry;              /* 0x02: seconds */
	struct tern_bytes content_type;       /* 0x03 */
	struct tern_bytes response_topic;     /* 0x08: a topic name */
	struct tern_bytes correlation_data;   /* 0x09: binary */
	uint32_t session_expiry;              /* 0x11: seconds */
	struct tern_bytes assigned_client_id; /* 0x12 */
	uint16_t server_keep_alive;           /* 0x13: seconds */
	struct tern_bytes auth_method;        /* 0x15 */
	struct tern_bytes auth_data;          /* 0x16: binary */
	uint8_t request_problem_info;         /* 0x17: 0 or 1 */
	uint32_t will_delay;                  /* 0x18: seconds */
	uint8_t request_response_info;        /* 0x19: 0 or 1 */
	struct tern_bytes response_info;      /* 0x1A */
	struct tern_bytes server_reference;   /* 0x1C */
	struct tern_bytes reason_string;      /* 0x1F */
	uint16_t receive_maximum;             /* 0x21: > 0 */
	uint16_t topic_alias_maximum;         /* 0x22 */
	uint16_t topic_alias;                 /* 0x23: > 0 */
	uint8_t maximum_qos;                  /* 0x24: 0 or 1 */
	uint8_t retain_available;             /* 0x25: 0 or 1 */
	uint32_t maximum_packet_size;         /* 0x27: > 0 */
	uint8_t wildcard_sub_available;       /* 0x28: 0 or 1 */
	uint8_t sub_id_available;             /* 0x29: 0 or 1 */
	uint8_t shared_sub_available;         /* 0x2A: 0 or 1 */

	/* 0x0B subscription identifiers: decode counts them (walk them with
	 * tern_props_next_sub_id()); encode writes sub_ids[0..n_sub_ids). */
	uint32_t n_sub_ids;
	const uint32_t *sub_ids;
	/* 0x26 user properties: decode counts them; encode writes user_raw. */
	uint32_t n_user;
	struct tern_bytes user_raw;
	/* Decode only: the property block, for the iterators. */
	struct tern_bytes raw;
};

/* CONNECT (section 3.1). */
struct tern_connect {
	uint8_t version;  /* enum tern_version */
	bool clean_start; /* "clean session" in 3.1 / 3.1.1 */
	uint16_t keep_alive;
	struct tern_props props;
	struct tern_bytes client_id;
	bool will;
	uint8_t will_qos;
	bool will_retain;
	struct tern_props will_props; /* v5 only */
	struct tern_bytes will_topic;
	struct tern_bytes will_payload;
	bool has_username;
	struct tern_bytes username;
	bool has_password;
	struct tern_bytes password; /* binary */
	/* The protocol level with bit 0x80 set (3.1 / 3.1.1 only), which
	 * mosquitto and ternd read as "this client is a bridge" (mosquitto's
	 * try_private): they then treat its subscriptions as No Local and
	 * Retain As Published, so what it publishes is not sent back to it
	 * and keeps its RETAIN flag. Brokers that do not know the bit refuse
	 * the CONNECT. Encoded when set; set by the decoder when the CONNECT
	 * had it (version then holds the level without the bit). */
	bool bridge;
};

/* CONNACK (3.2). `reason` is the v5 reason code or the v3 return code. */
struct tern_connack {
	bool session_present;
	uint8_t reason;
	struct tern_props props;
};

/* PUBLISH (3.3). packet_id is 0 and absent for QoS 0. */
struct tern_publish {
	uint8_t qos;
	bool dup;
	bool retain;
	struct tern_bytes topic; /* may be empty in v5 with a topic alias */
	uint16_t packet_id;
	struct tern_props props;
	struct tern_bytes payload;
};

/* PUBACK, PUBREC, PUBREL, PUBCOMP (3.4-3.7). */
struct tern_ack {
	uint16_t packet_id;
	uint8_t reason; /* v5; 0 for v3 */
	struct tern_props props;
};

/* One SUBSCRIBE entry. In 3.1 / 3.1.1 only filter and qos are used. */
struct tern_sub_entry {
	struct tern_bytes filter;
	uint8_t qos;
	bool no_local;
	bool retain_as_published;
	uint8_t retain_handling; /* 0, 1 or 2 */
};

/* SUBSCRIBE (3.8). Decode: count and raw (walk with tern_subscribe_next());
 * encode: entries[0..count). */
struct tern_subscribe {
	uint16_t packet_id;
	struct tern_props props;
	uint32_t count;
	const struct tern_sub_entry *entries;
	struct tern_bytes raw;
};

/* UNSUBSCRIBE (3.10). Decode: count and raw (walk with
 * tern_unsubscribe_next()); encode: filters[0..count). */
struct tern_unsubscribe {
	uint16_t packet_id;
	struct tern_props props;
	uint32_t count;
	const struct tern_bytes *filters;
	struct tern_bytes raw;
};

/* SUBACK (3.9) and UNSUBACK (3.11): one reason code per entry. A v3.1.1
 * UNSUBACK has none (count 0). Decode points reasons into the buffer. */
struct tern_subres {
	uint16_t packet_id;
	struct tern_props props;
	uint32_t count;
	const uint8_t *reasons;
};

/* DISCONNECT (3.14) and AUTH (3.15): a reason and properties in v5. */
struct tern_reasoned {
	uint8_t reason;
	struct tern_props props;
};

/* One decoded (or to be encoded) packet. */
struct tern_packet {
	enum tern_packet_type type;
	union {
		struct tern_connect connect;
		struct tern_connack connack;
		struct tern_publish publish;
		struct tern_ack ack; /* PUBACK PUBREC PUBREL PUBCOMP */
		struct tern_subscribe subscribe;
		struct tern_unsubscribe unsubscribe;
		struct tern_subres subres;     /* SUBACK UNSUBACK */
		struct tern_reasoned reasoned; /* DISCONNECT AUTH */
	} u;                                   /* PINGREQ PINGRESP: nothing */
};

/* What the first bytes of a packet say. */
struct tern_fixed_header {
	enum tern_packet_type type;
	uint8_t flags;       /* low nibble of the first byte */
	uint32_t remaining;  /* remaining length */
	uint32_t header_len; /* 2..5 bytes: type byte plus length bytes */
};

/*
 * Decodes the fixed header at buf[0..len).
 * max_size bounds the whole packet (header_len + remaining); 0 means only the
 * protocol's own limit. Returns TERN_OK and fills *fh; TERN_E_INCOMPLETE when
 * more bytes are needed to know the length; TERN_E_MALFORMED for packet type
 * 0, a length of more than 4 bytes or one not minimally encoded
 * [MQTT-1.5.5-1], or reserved flag bits not as the type requires
 * [MQTT-2.2.2-1] [MQTT-2.2.2-2]; TERN_E_TOO_LARGE when the packet exceeds
 * max_size, as soon as the length is known.
 */
TERN_API TERN_MUST_CHECK enum tern_err tern_decode_fixed_header(const uint8_t *buf, size_t len,
                                                                uint32_t max_size,
                                                                struct tern_fixed_header *fh);

/*
 * As tern_decode_fixed_header(), for a connection that speaks version
 * (0 while it is not known, before CONNECT; tern_decode_fixed_header() is
 * version 0). The reserved-flag rules are 3.1.1's: for TERN_V31 the flags
 * MQTT 3.1 leaves unused are ignored (any flags on CONNECT, PUBACK, ...;
 * DUP on a re-sent PUBREL, SUBSCRIBE or UNSUBSCRIBE), as mosquitto accepts
 * them from old 3.1 clients. The flags of a CONNECT, whose body names its
 * version, are checked by tern_decode_packet().
 */
TERN_API TERN_MUST_CHECK enum tern_err tern_decode_fixed_header_v(const uint8_t *buf, size_t len,
                                                                  uint32_t max_size,
                                                                  uint8_t version,
                                                                  struct tern_fixed_header *fh);

/*
 * Decodes the body of one packet: body[0..fh->remaining).
 * version is the connection's protocol level; it is ignored for CONNECT,
 * which carries its own (read it back from out->u.connect.version).
 * On success fills *out, whose fields point into body. Errors:
 * TERN_E_MALFORMED, TERN_E_PROTOCOL, TERN_E_TOPIC_NAME (PUBLISH or will topic
 * invalid), TERN_E_TOPIC_FILTER (a SUBSCRIBE/UNSUBSCRIBE filter invalid),
 * TERN_E_UNSUPPORTED_VERSION (CONNECT protocol name/level unknown; in that
 * case out->u.connect.version holds the level that was read, or 0).
 */
TERN_API TERN_MUST_CHECK enum tern_err tern_decode_packet(const struct tern_fixed_header *fh,
                                                          const uint8_t *body, uint8_t version,
                                                          struct tern_packet *out);

/* Size in bytes of p fully encoded for version; 0 if p cannot be encoded. */
TERN_API size_t tern_packet_size(const struct tern_packet *p, uint8_t version);

/*
 * Encodes p for protocol level version into out[0..cap). On success sets
 * *written. TERN_E_BUFFER when cap is too small; TERN_E_INVALID when p
 * holds values the protocol cannot carry (QoS 3, packet id 0 where one is
 * required, a packet over TERN_PACKET_MAX, an AUTH for v3).
 * For a v3 connection all properties are ignored.
 */
TERN_API TERN_MUST_CHECK enum tern_err tern_encode_packet(const struct tern_packet *p,
                                                          uint8_t version, uint8_t *out, size_t cap,
                                                          size_t *written);

/*
 * Encodes everything of a PUBLISH but its payload: fixed header (whose
 * remaining length counts the payload), topic, packet id, properties. The
 * caller sends pub->payload after it (e.g. by writev), so a payload shared by
 * many subscribers is never copied. *written is set on success. Errors as
 * tern_encode_packet(): TERN_E_BUFFER, TERN_E_INVALID.
 */
TERN_API TERN_MUST_CHECK enum tern_err tern_encode_publish_header(const struct tern_publish *pub,
                                                                  uint8_t version, uint8_t *out,
                                                                  size_t cap, size_t *written);

/* Size of the encoding of tern_encode_publish_header() (payload excluded). */
TERN_API size_t tern_publish_header_size(const struct tern_publish *pub, uint8_t version);

/* Walks SUBSCRIBE entries of a decoded packet. Start with *cursor = 0.
 * Returns true and fills *e for each entry, false after the last. */
TERN_API bool tern_subscribe_next(const struct tern_subscribe *s, size_t *cursor,
                                  struct tern_sub_entry *e);

/* Walks UNSUBSCRIBE filters of a decoded packet, as tern_subscribe_next(). */
TERN_API bool tern_unsubscribe_next(const struct tern_unsubscribe *u, size_t *cursor,
                                    struct tern_bytes *f);

/* Walks the user properties of decoded props, in order. Start *cursor = 0. */
TERN_API bool tern_props_next_user(const struct tern_props *p, size_t *cursor,
                                   struct tern_bytes *name, struct tern_bytes *value);

/* Walks the subscription identifiers of decoded props. Start *cursor = 0. */
TERN_API bool tern_props_next_sub_id(const struct tern_props *p, size_t *cursor, uint32_t *id);

/* Appends one encoded user property (0x26, name, value) to out[*len..cap)
 * and advances *len; builds a user_raw block. TERN_E_BUFFER if it does not
 * fit, TERN_E_INVALID if name or value is not a valid MQTT string. */
TERN_API TERN_MUST_CHECK enum tern_err tern_user_prop_encode(uint8_t *out, size_t cap, size_t *len,
                                                             struct tern_bytes name,
                                                             struct tern_bytes value);

/* Size in bytes of the encoded property block (without its length prefix). */
TERN_API size_t tern_props_size(const struct tern_props *p);

/* ---- Validation and matching, used by codec, broker and client alike ---- */

/* True if s is a valid MQTT UTF-8 string: well-formed, no U+0000, no
 * surrogates [MQTT-1.5.4-1] [MQTT-1.5.4-2], at most 65535 bytes. */
TERN_API bool tern_utf8_valid(const uint8_t *s, size_t len);

/* True if s is a valid MQTT UTF-8 string (above) that holds no control
 * character U+0001..U+001F or U+007F..U+009F. The specifications let a
 * receiver treat those as a Malformed Packet (3.1.1 section 1.5.3, 5.0
 * section 1.5.4); tern does, as mosquitto does, for the strings that name
 * things: client identifiers, usernames, will topics, topic names and
 * filters (the decoder reports TERN_E_MALFORMED). Other strings (reason
 * strings, user properties, content types) are data and keep the rules of
 * tern_utf8_valid(). */
TERN_API bool tern_utf8_name_valid(const uint8_t *s, size_t len);

/* The same rules for UTF-8 character data of any length, such as a payload
 * whose Payload Format Indicator is 1 (section 3.3.2.3.2). */
TERN_API bool tern_utf8_data_valid(const uint8_t *s, size_t len);

/* Validates a topic name: at least one byte [MQTT-4.7.3-1], no '+' or '#'
 * [MQTT-3.3.2-2] [MQTT-4.7.1-1], valid UTF-8 without control characters
 * (tern_utf8_name_valid()). Returns TERN_OK or TERN_E_TOPIC_NAME. */
TERN_API TERN_MUST_CHECK enum tern_err tern_topic_name_check(const uint8_t *t, size_t len);

/* Validates a topic filter, including "$share/{name}/{filter}": '#' only
 * last and alone in its level [MQTT-4.7.1-2], '+' alone in its level
 * [MQTT-4.7.1-3], share name non-empty without '/', '+', '#'
 * [MQTT-4.8.2-1] [MQTT-4.8.2-2], valid UTF-8 without control characters.
 * Returns TERN_OK or TERN_E_TOPIC_FILTER. */
TERN_API TERN_MUST_CHECK enum tern_err tern_topic_filter_check(const uint8_t *f, size_t len);

/* If filter is "$share/{name}/{rest}", sets *group and *rest and returns
 * true; otherwise returns false. Does not validate (see check above). */
TERN_API bool tern_topic_filter_share(struct tern_bytes filter, struct tern_bytes *group,
                                      struct tern_bytes *rest);

/* True if topic name matches filter (a plain filter, not $share). A filter
 * starting with a wildcard does not match a topic starting with '$'
 * [MQTT-4.7.2-1]. */
TERN_API bool tern_topic_matches(const uint8_t *filter, size_t flen, const uint8_t *topic,
                                 size_t tlen);

/* Short name of a packet type ("CONNECT", ...), for logs. */
TERN_API const char *tern_packet_name(enum tern_packet_type type);

/* Maps a decode error to the v5 reason code a DISCONNECT should carry. */
TERN_API uint8_t tern_err_reason(enum tern_err err);

#ifdef __cplusplus
}
#endif

#endif
