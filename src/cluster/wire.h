/*
 * cluster/wire.h - the bytes of a message that crosses nodes: the data of
 * the NATS message a node publishes for a PUBLISH it received.
 *
 * The message carries what a receiving node needs to route it exactly as
 * a local publish: the topic as its exact bytes (so the receiver never
 * decodes the subject), QoS, retain, every property MQTT 5.0 forwards
 * (section 3.3.2.3) and the payload. Layout, version 1; integers are big
 * endian, as in MQTT:
 *
 *   u8     version            1
 *   u8     flags              bits 0-1 QoS (3 is malformed), bit 2 retain,
 *                             bit 3 payload format indicator, bit 4 message
 *                             expiry, bit 5 content type, bit 6 response
 *                             topic, bit 7 correlation data: present
 *   u16    topic length, then the topic (a valid topic name)
 *   u8     payload format indicator, 0 or 1          (if bit 3)
 *   u32    message expiry: seconds left when sent    (if bit 4)
 *   u16    length, then the content type, UTF-8      (if bit 5; may be 0)
 *   u16    length, then the response topic, a topic name (if bit 6; >= 1)
 *   u16    length, then the correlation data, binary (if bit 7; may be 0)
 *   u32    user properties length, then the user properties in order, as
 *          MQTT encodes them: 0x26, u16 + name, u16 + value (UTF-8)
 *   ...    the payload: every byte left
 *
 * The version byte comes first so that a later layout can be told apart
 * (a node refuses a version it does not know). Expiry travels as seconds
 * left, as a server forwards it to a client [MQTT-3.3.2-6] (rounded up by
 * msg_expiry_left()), because monotonic clocks differ between machines; a
 * message that expired before it was sent goes with 0 and is expired on
 * arrival. The payload has no
 * length: NATS frames the message, and the payload is the rest.
 */
#ifndef TERN_CLUSTER_WIRE_H
#define TERN_CLUSTER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "tern/error.h"
#include "util/buf.h"
#include "util/msg.h"

/* The layout written by wire_encode(), first byte of every message. */
#define WIRE_VERSION 1

/* Bytes wire_encode() appends for m: the header and the payload. */
size_t wire_size(const struct msg *m);

/*
 * Appends the encoding of m to out, with the expiry as seconds left at
 * monotonic ms now (msg_expiry_left()). max bounds out's size as in
 * buf_append() (0: no bound). TERN_E_INVALID if m cannot be encoded (QoS
 * over 2, a payload format indicator over 1, a topic, content type, response topic or correlation data over
 * 65535 bytes); TERN_E_NOMEM or TERN_E_LIMIT from the buffer. out is
 * unchanged on error.
 */
TERN_MUST_CHECK enum tern_err wire_encode(struct buf *out, const struct msg *m, uint64_t now,
                                          size_t max);

/*
 * Decodes p[0..len) into a new message (msg_new(): one allocation, no
 * larger than the input plus the struct) with origin 0 and, when it has an
 * expiry, expire_at = now + seconds left (now: monotonic ms, not 0). On success
 * *out holds the caller's one reference. Trusts nothing: reads only
 * p[0..len), and refuses with TERN_E_MALFORMED a truncated input, a length
 * past the end, QoS 3, a payload format indicator over 1, a topic or
 * response topic that is not a valid topic name, a content type or user
 * property that is not a valid MQTT UTF-8 string, or user properties that
 * are not a run of well-formed 0x26 entries; TERN_E_UNSUPPORTED_VERSION for
 * another version byte; TERN_E_NOMEM. *out is NULL on error.
 */
TERN_MUST_CHECK enum tern_err wire_decode(const uint8_t *p, size_t len, uint64_t now,
                                          struct msg **out);

#endif
