/*
 * cluster/session_record.h - the record of one session in the cluster's
 * sessions bucket "<cluster>_sessions" (sessions.c; docs/cluster.md,
 * "Persistent sessions across nodes"): what another node needs to resume
 * the session (its subscriptions, its expiry) or, once the holder node is
 * gone, to publish its will and expire it.
 *
 * The node that holds a session writes the whole record at each change
 * that matters to another node: attach (CONNECT), SUBSCRIBE /
 * UNSUBSCRIBE, going offline (with its pending will). Queued and in-flight
 * messages are not in it: they are in the session's durable queues
 * (durable.c), found by name. Layout, format version 1; integers are big
 * endian, as in MQTT:
 *
 *   u8     format version       1
 *   u8     protocol version     3, 4 or 5 (TERN_V31 .. TERN_V5)
 *   u8     flags                bit 0 online, bit 1 a will follows; the
 *                               others 0
 *   u32    session expiry interval, seconds (0xffffffff: never)
 *   u64    claim stamp of the holder's connection (cluster_claim())
 *   u64    wall-clock ms at which the session went offline (0: online)
 *   u16    holder node name length (1..255), then the name
 *   u32    number of subscriptions, then each:
 *          u16 filter length, the filter as subscribed (a valid topic
 *          filter, "$share/G/F" kept); u8 options: bits 0-1 QoS (3 is
 *          malformed), bit 2 No Local, bit 3 Retain As Published, bits 4-5
 *          retain handling (3 is malformed), bits 6-7 0; u32 subscription
 *          identifier (0: none, else 1 .. 268435455)
 *   (if flags bit 1, the will:)
 *   u32    Will Delay Interval, seconds
 *   u8     bit 0: the will has a Message Expiry Interval; the others 0
 *   u32    that Message Expiry Interval, seconds (0 without bit 0)
 *   u32    length, then the will message in wire.h's encoding (topic,
 *          QoS, retain, the properties it forwards, payload), with no
 *          expiry of its own: its expiry counts from when it is
 *          published (section 3.1.3.2.4)
 *
 * Nothing may follow. The format version comes first, so that a later
 * layout can be told apart; a node refuses one it does not know. Times are
 * wall clock because the record is read on other machines.
 */
#ifndef TERN_CLUSTER_SESSION_RECORD_H
#define TERN_CLUSTER_SESSION_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tern/codec.h"
#include "tern/error.h"
#include "util/buf.h"
#include "util/msg.h"

#define SESSION_RECORD_VERSION 1
/* The longest holder node name a record carries (cluster_node_name is at
 * most 127 bytes). */
#define SESSION_RECORD_NODE_MAX 255u

/* One subscription of a record. */
struct session_record_sub {
	struct tern_bytes filter; /* as subscribed: "$share/G/F" kept */
	uint8_t qos;
	bool no_local;
	bool retain_as_published;
	uint8_t retain_handling;
	uint32_t sub_id; /* 0: none */
};

/*
 * A record. To encode, the caller fills it (subs / n_subs its array,
 * will a message or NULL); decoded, every tern_bytes points into the input
 * and subs is NULL: session_record_next_sub() walks them, and
 * session_record_will() makes the will.
 */
struct session_record {
	uint8_t version; /* the session's protocol version */
	bool online;
	uint32_t expiry;    /* Session Expiry Interval; UINT32_MAX: never */
	uint64_t claim;     /* the holder's claim stamp */
	int64_t offline_at; /* wall ms it went offline; 0 while online */
	struct tern_bytes node;
	uint32_t n_subs;
	const struct session_record_sub *subs; /* encoding only */
	/* The will: encoding takes will (NULL: none); decoding sets has_will
	 * and will_raw (its wire.h bytes). */
	const struct msg *will;
	bool has_will;
	uint32_t will_delay;
	bool will_has_expiry;
	uint32_t will_expiry;
	struct tern_bytes will_raw; /* decoded only */
	struct tern_bytes subs_raw; /* decoded only: the subscriptions' bytes */
};

/*
 * Appends the encoding of r to out (max as in buf_append(); 0: none).
 * TERN_E_INVALID for what the layout cannot carry (a node name empty or over
 * SESSION_RECORD_NODE_MAX, a filter over 65535 bytes, QoS or retain
 * handling over 2, a will wire_encode() refuses); TERN_E_NOMEM / TERN_E_LIMIT
 * from the buffer. out is unchanged on error.
 */
TERN_MUST_CHECK enum tern_err session_record_encode(struct buf *out, const struct session_record *r,
                                                    size_t max);

/*
 * Decodes p[0..len) into *r, pointing into p (which must outlive r).
 * Trusts nothing: reads only p[0..len) and refuses with TERN_E_MALFORMED a
 * truncated input, bytes after the end, flags or option bits it does not
 * know, QoS or retain handling 3, a subscription identifier over
 * 268435455, an invalid topic filter, an empty node name, an online record
 * with an offline time, a will that wire_decode() refuses;
 * TERN_E_UNSUPPORTED_VERSION for another format version.
 */
TERN_MUST_CHECK enum tern_err session_record_decode(const uint8_t *p, size_t len,
                                                    struct session_record *r);

/* The subscription after *cur (start at 0) of a decoded record into *out;
 * false at the end. */
bool session_record_next_sub(const struct session_record *r, size_t *cur,
                             struct session_record_sub *out);

/* The will of a decoded record as a new message (one reference, the
 * caller's; origin 0, no expiry: see above), now the monotonic ms as in
 * wire_decode(). TERN_E_INVALID when r has none, TERN_E_NOMEM. */
TERN_MUST_CHECK enum tern_err session_record_will(const struct session_record *r, uint64_t now,
                                                  struct msg **out);

/* The claim stamp and holder of an encoded record, without decoding the
 * rest (sessions.c compares them on a conflicting write). TERN_E_MALFORMED,
 * TERN_E_UNSUPPORTED_VERSION as for the decode. */
TERN_MUST_CHECK enum tern_err session_record_holder(const uint8_t *p, size_t len, uint64_t *claim,
                                                    struct tern_bytes *node);

#endif
