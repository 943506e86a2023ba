/*
 * delivery.h - one message on its way to one session: the message (a
 * reference), the QoS and RETAIN flag it is delivered with and the
 * subscription identifiers of the subscriptions it matched. Queued and
 * in-flight entries of a session hold one each; so do the items that carry
 * deliveries between workers.
 */
#ifndef TERN_BROKER_DELIVERY_H
#define TERN_BROKER_DELIVERY_H

#include <stdbool.h>
#include <stdint.h>

struct cluster_ack;
struct msg;

struct delivery {
	struct msg *msg; /* one reference, owned by the delivery */
	uint8_t qos;     /* QoS it is delivered with */
	bool retain;     /* RETAIN flag it is delivered with */
	bool stored;     /* its row is recorded (session_record_delivery) */
	uint16_t n_sub_ids;
	uint32_t sub_id;   /* when n_sub_ids == 1 */
	uint32_t *sub_ids; /* when n_sub_ids > 1; owned */
	/* From a cluster's durable queue (src/cluster): the handle that
	 * acknowledges it there; owned; NULL otherwise. */
	struct cluster_ack *ack;
};

/* Releases what d owns and zeroes it: d is done with (delivered and
 * acknowledged, or dropped for good), so a durable queue's message is
 * acknowledged there. */
void delivery_clear(struct delivery *d);

/* delivery_clear(), except that a durable queue's message is NOT
 * acknowledged: the cluster delivers it again (to whichever node holds the
 * session next). For a session that leaves this node without ending. */
void delivery_release(struct delivery *d);

#endif
