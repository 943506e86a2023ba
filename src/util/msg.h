/*
 * msg.h - the immutable, refcounted application message.
 *
 * A PUBLISH (or a will, or a retained message) becomes one msg: topic,
 * payload and the v5 properties that travel with it, in a single allocation.
 * Fan-out queues references, never copies (as NNG clones messages): every
 * subscriber's queue, in-flight window and the retained store hold a
 * reference, taken with msg_ref() and dropped with msg_unref().
 * The reference count is atomic because references cross worker threads;
 * everything else is read-only after creation, so readers need no lock.
 */
#ifndef TERN_UTIL_MSG_H
#define TERN_UTIL_MSG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "tern/codec.h"

struct msg_pool;

struct msg {
	atomic_uint refs;
	struct msg_pool *pool; /* the block's pool (msg_new_in()); NULL: malloc's */
	uint8_t pool_class;    /* its size class there */
	uint8_t qos;
	bool retain;
	/* Stored in the cluster's durable queues (src/cluster): the sessions
	 * fed by those get it from there, not through routing. Set before the
	 * message is shared. */
	bool durable;
	bool has_payload_format;
	bool has_content_type; /* a zero-length one is still forwarded */
	uint8_t payload_format;
	/* Monotonic ms at which the message expires; 0 if it never does
	 * (v5 Message Expiry Interval [MQTT-3.3.2-5]). */
	uint64_t expire_at;
	/* Session that published it (0 for none), for v5 No Local. */
	uint64_t origin;
	/* Id under which durable storage keeps it; 0 when it is not kept. */
	uint64_t store_id;
	struct tern_bytes topic;
	struct tern_bytes payload;
	struct tern_bytes content_type;     /* len 0: absent */
	struct tern_bytes response_topic;   /* len 0: absent */
	struct tern_bytes correlation_data; /* data NULL: absent */
	struct tern_bytes user_raw;         /* encoded user properties */
	uint32_t n_user;
};

/*
 * Creates a message from a decoded PUBLISH (or will): copies topic, payload
 * and the forwarded properties of props (may be NULL for v3) into one
 * allocation. now is the monotonic ms used to turn the expiry interval into
 * expire_at. Returns NULL when out of memory. The caller owns the one
 * reference.
 */
struct msg *msg_new(struct tern_bytes topic, struct tern_bytes payload, uint8_t qos, bool retain,
                    const struct tern_props *props, uint64_t origin, uint64_t now);

/*
 * A worker's stock of message blocks, so that a message costs no
 * allocation in steady state. A message of at most MSG_POOL_BLOCK bytes in
 * all (struct, topic, payload, properties) made by msg_new_in() takes a
 * spare block of the pool, of 256, 512 or 1024 bytes (MSG_POOL_SMALL up to
 * MSG_POOL_BLOCK: size classes, so that a small message does not hold a
 * large block while it waits in queues); when its last reference goes, on whatever thread, the
 * block goes back onto its class's lock-free stack, which the owner takes
 * whole when it has no spare block left (only pushes race, so no ABA). The
 * owner keeps at most 1 MiB of spare blocks per class; the pool itself
 * lives until its owner released it and every block it made is back (the
 * retained store can hold a message past its worker).
 */
#define MSG_POOL_SMALL   256u
#define MSG_POOL_BLOCK   1024u
#define MSG_POOL_CLASSES 3

/* A new, empty pool owned by the caller; NULL when out of memory. */
struct msg_pool *msg_pool_new(void);

/* The owner lets go of p (NULL allowed): spare blocks are freed now, the
 * others as they come back, and p with the last of them. */
void msg_pool_release(struct msg_pool *p);

/* msg_new() with the block taken from pool (owner's thread only; NULL:
 * malloc), when the message fits in MSG_POOL_BLOCK bytes. */
struct msg *msg_new_in(struct msg_pool *pool, struct tern_bytes topic, struct tern_bytes payload,
                       uint8_t qos, bool retain, const struct tern_props *props, uint64_t origin,
                       uint64_t now);

/* Takes another reference; returns m for convenience. */
static inline struct msg *msg_ref(struct msg *m)
{
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	return m;
}

/* Drops a reference and frees the message with the last one. */
void msg_unref(struct msg *m);

/* Seconds left before expiry, at least 1 while it has not expired; sets
 * *expired when it has. For a message without expiry returns 0 and clears
 * *expired. */
uint32_t msg_expiry_left(const struct msg *m, uint64_t now, bool *expired);

#endif
