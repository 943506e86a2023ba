/*
 * persist.h - durable storage seen from a worker (persist.c): the store
 * batch of the current iteration, submitted before the loop sleeps, and the
 * answers held until that batch is committed.
 */
#ifndef TERN_BROKER_PERSIST_H
#define TERN_BROKER_PERSIST_H

#include <stddef.h>
#include <stdint.h>

#include "broker/worker.h"
#include "tern/codec.h"
#include "tern/error.h"

struct broker;
struct msg;
struct store_batch;
struct worker;

/* Opens and loads the store when one is configured (before the workers
 * run) and starts its thread. Logs and returns the error otherwise. */
TERN_MUST_CHECK enum tern_err persist_open(struct broker *b);

/* The batch to record this iteration's store operations in; NULL with the
 * memory back-end (record nothing then) or when out of memory. For the
 * session module (session.c, session_out.c), which alone decides what is
 * stored. */
struct store_batch *persist_batch(struct worker *w);

/* Logs a failed store_* recording call. */
void persist_note(struct worker *w, enum tern_err err);

/* How many operations this iteration's batch holds so far: a transition
 * compares it before and after to learn whether it recorded anything (and
 * so whether its acknowledgement must wait for the commit). */
size_t persist_ops(struct worker *w);

/* Gives m a store id when the store may keep it (QoS > 0 or retained).
 * Call before m is shared with another thread. */
void persist_assign_id(struct worker *w, struct msg *m);

/* An acknowledgement waiting for a commit. */
struct held_ack {
	uint64_t session_id;
	uint64_t conn_id;
	uint16_t packet_id;
	uint8_t type; /* TERN_PUBACK, TERN_PUBREC, TERN_PUBCOMP; TERN_PUBREL (session_out.c) */
	uint8_t reason;
};

/* Holds a until the current batch is committed (and the cluster's stores
 * of its ticket are done: persist_cluster_hold()), then hands it back with
 * the result to session_ack_committed(), which sends it: this module sends
 * nothing and closes nothing. Needs a store or a cluster. TERN_E_NOMEM
 * when it cannot be held. */
TERN_MUST_CHECK enum tern_err persist_hold_ack(struct worker *w, const struct held_ack *a);

/* Calls fn(w, arg) once the current batch is committed (at once without a
 * store); free_arg frees arg if the broker stops first. */
void persist_hold_call(struct worker *w, pending_done_fn fn, void *arg, void (*free_arg)(void *));

/* A store of this iteration's in the cluster (cluster.h, cluster_store())
 * that the answers held with the current ticket must wait for too. Returns
 * the ticket to give persist_cluster_done() when it completes, 0 when out
 * of memory (then do not hold for it). */
uint64_t persist_cluster_hold(struct worker *w);

/* A cluster store of ticket completed (err: failed); releases what waited
 * only for it. */
void persist_cluster_done(struct worker *w, uint64_t ticket, enum tern_err err);

/* Submits the iteration's batch; called before the outbox is flushed. */
void persist_submit(struct worker *w);

/* Handles INBOX_STORE_DONE: releases the answers held up to ticket. */
void persist_done(struct worker *w, uint64_t ticket, enum tern_err err);

/* Creates w's side of the store (w->persist, private to persist.c): no
 * batch yet, the first ticket. TERN_E_NOMEM when out of memory. */
TERN_MUST_CHECK enum tern_err persist_worker_new(struct worker *w);

/* Drops held answers, submits the last batch and frees w->persist, at
 * shutdown (again: nothing, so a failed worker_new() may call it). */
void persist_worker_free(struct worker *w);

#endif
