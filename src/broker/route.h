/*
 * route.h - routing (route.c): subscription changes applied to every
 * worker's router replica, and a PUBLISH routed to the matching sessions of
 * every worker.
 */
#ifndef TERN_BROKER_ROUTE_H
#define TERN_BROKER_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/worker.h"
#include "tern/codec.h"
#include "tern/error.h"

struct buf;
struct flow_hit;
struct inbox_item;
struct msg;
struct route;
struct worker;

/*
 * Applies a subscription change to every replica: to ours at once, to the
 * others through their inboxes. When done is not NULL it is called (on this
 * worker) once every replica has applied the change, which can be at once
 * with one worker; arg is passed along. Several changes can share one done
 * call: see route_batch_*.
 */
struct route_batch;
/* A change of the batch that was applied but cannot stand (a cluster's
 * durable queue could not be made for the subscription on filter:
 * cluster_link.c), on the batch's worker before its done call; arg as for
 * done. The changes it makes to undo it (route_change() with undo) join
 * the batch: done waits for them too. */
typedef void (*route_refused_fn)(struct worker *w, void *arg, struct tern_bytes filter,
                                 struct route_batch *undo);
struct route_batch {
	uint64_t req;
	unsigned outstanding;
	route_refused_fn refused; /* NULL (route_batch_begin()): none expected */
};
void route_batch_begin(struct worker *w, struct route_batch *batch);
TERN_MUST_CHECK enum tern_err route_change(struct worker *w, struct route_batch *batch, bool add,
                                           struct tern_bytes filter, const struct route *route);
/* Ends the batch: done(w, arg) runs when all replicas have acked (now, if
 * they already have), after batch->refused for each refusal that came. arg is owned by the callee until done runs; free_arg
 * frees it if the worker shuts down first. TERN_E_NOMEM when it cannot
 * wait for the acks: done has then run at once. */
TERN_MUST_CHECK enum tern_err route_batch_end(struct worker *w, struct route_batch *batch,
                                              pending_done_fn done, void *arg,
                                              void (*free_arg)(void *));

/*
 * Routes a message to every matching session of the broker: sessions of
 * this worker at once, others through the outbox. Sets *matched (may be
 * NULL) to the number of sessions it goes to. The caller keeps its
 * reference of msg. When hit is not NULL, it is set to the flow cell of a
 * QoS 1/2 receiver that is now over its mark (flow.h; cell NULL: none): a
 * caller with a publisher connection then pauses it. The cell stays valid
 * until this worker next handles its inbox.
 */
TERN_MUST_CHECK enum tern_err route_publish(struct worker *w, struct msg *msg, size_t *matched,
                                            struct flow_hit *hit);

/* A buffer for encoding a message for the cluster (cluster.h), reused by
 * w's thread. */
struct buf *route_cluster_scratch(struct worker *w);

/* Handles a route item of the inbox (INBOX_DELIVER, INBOX_ROUTE_ADD,
 * INBOX_ROUTE_DEL, INBOX_ROUTE_ACK) and frees it, or reuses it as the ack
 * it sends; worker_inbox_item() gives it only those. */
void route_inbox(struct worker *w, struct inbox_item *item);

/* Creates w's routing state (w->route, private to route.c): pending
 * acks, routing scratch, spare delivery batches. TERN_E_NOMEM when out of
 * memory. */
TERN_MUST_CHECK enum tern_err route_worker_new(struct worker *w);

/* Frees pending acks (and their arguments) at shutdown. */
void route_pending_free(struct worker *w);

/* Gives a handled INBOX_DELIVER item back to the worker that filled it (any
 * thread). */
void deliver_batch_return(struct inbox_item *it);

/* Frees w->route: w's spare and returned batches, its matching scratch,
 * at the end, once no other worker can give a batch back (nothing when
 * there is none). */
void route_worker_free(struct worker *w);

#endif
