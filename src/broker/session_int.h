/*
 * session_int.h - what session.c and session_out.c share and nobody else
 * uses: how a session's transitions reach the store.
 */
#ifndef TERN_BROKER_SESSION_INT_H
#define TERN_BROKER_SESSION_INT_H

#include "broker/delivery.h"
#include "broker/persist.h"
#include "broker/session.h"
#include "store/store.h"
#include "util/msg.h"

/* The batch a stored session's operations go into: NULL when s is not
 * stored (then nothing of it is kept) or without a store. */
static inline struct store_batch *stored_batch(struct session *s)
{
	return s->stored ? persist_batch(s->w) : NULL;
}

/* Records a QoS 1/2 delivery d of s (queued, or in flight with packet_id
 * and state when packet_id != 0): the message, then d's row. */
static inline void record_delivery(struct worker *w, struct store_batch *b, uint64_t session,
                                   const struct delivery *d, uint16_t packet_id,
                                   enum store_dstate state)
{
	persist_note(w, store_msg_put(b, d->msg));
	persist_note(w,
	             store_delivery_put(b, session, d->msg->store_id, d->qos, d->retain,
	                                d->n_sub_ids > 1 ? d->sub_ids : &d->sub_id, d->n_sub_ids));
	if (packet_id)
		persist_note(w,
		             store_delivery_state(b, session, d->msg->store_id, packet_id, state));
}

/* Whether the store keeps this delivery: QoS 1/2 of a message with an id. */
static inline bool keeps(const struct delivery *d)
{
	return d->qos > 0 && d->msg && d->msg->store_id;
}

#endif
