/*
 * persist.h - durable storage seen from a worker (persist.c): the store
 * batch of the current iteration, submitted before the loop sleeps, and the
 * answers held until that batch is committed.
 */
#ifndef TERN_BROKER_PERSIST_H
#define TERN_BROKER_PERSIST_H

#include <stdint.h>

#include "broker/worker.h"
#include "tern/codec.h"
#include "tern/error.h"

struct broker;
struct conn;
struct msg;
struct store_batch;
struct worker;

/* Opens and loads the store when one is configured (before the workers
 * run) and starts its thread. Logs and returns the error otherwise. */
enum tern_err persist_open(struct broker *b);

/* The batch to record this iteration's store operations in; NULL with the
 * memory back-end (record nothing then) or when out of memory. */
struct store_batch *persist_batch(struct worker *w);

/* Logs a failed store_* recording call. */
void persist_note(struct worker *w, enum tern_err err);

/* Gives m a store id when the store must keep it (QoS > 0 or retained).
 * Call before m is shared with another thread. */
void persist_assign_id(struct worker *w, struct msg *m);

/* Sends an acknowledgement once the current batch is committed (at once
 * without a store). */
void persist_hold_ack(struct worker *w, struct conn *c, enum tern_packet_type type,
                      uint16_t packet_id, uint8_t reason);

/* Calls fn(w, arg) once the current batch is committed (at once without a
 * store); free_arg frees arg if the broker stops first. */
void persist_hold_call(struct worker *w, pending_done_fn fn, void *arg, void (*free_arg)(void *));

/* Submits the iteration's batch; called before the outbox is flushed. */
void persist_submit(struct worker *w);

/* Handles INBOX_STORE_DONE: releases the answers held up to ticket. */
void persist_done(struct worker *w, uint64_t ticket, enum tern_err err);

/* Drops held answers and submits the last batch, at shutdown. */
void persist_worker_free(struct worker *w);

#endif
