/*
 * store.h - durable storage of sessions, subscriptions, retained messages
 * and messages in flight.
 *
 * Workers never wait for the disk. During a loop iteration a worker records
 * what changed in a store_batch (a compact log of operations that owns
 * copies of its bytes and references of its messages); before sleeping it
 * hands the batch to the store with store_submit_take(). A dedicated storage
 * thread applies every batch that has arrived in ONE transaction and one
 * fsync, then calls each batch's completion, which the broker uses to send
 * the acknowledgements it held back (PUBACK, PUBREC, SUBACK). So durability
 * costs one commit per batch of batches: a group commit whose size adapts to
 * the load, since a batch closes when the previous commit ends.
 *
 * Back-ends implement struct store_ops (sqlite.c today; others later). The
 * in-memory mode of the broker has no store at all.
 *
 * Identity: sessions are stored under their broker-wide id (kept across
 * restarts, see store_load), messages under a store id assigned when the
 * message is created, and a queued or in-flight delivery under (session id,
 * message id). Operations of one batch are applied in order; batches are
 * applied in the order they were submitted.
 */
#ifndef TERN_STORE_STORE_H
#define TERN_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tern/error.h"
#include "util/msg.h"

enum store_sync {
	STORE_SYNC_FULL,   /* fsync every commit: survives power loss */
	STORE_SYNC_NORMAL, /* WAL, no fsync per commit: survives a process crash */
	STORE_SYNC_OFF,    /* leave it to the OS */
};

/* State of a stored delivery (mirrors the session's in-flight states). */
enum store_dstate {
	STORE_D_QUEUED = 0, /* not yet sent */
	STORE_D_SENT = 1,   /* PUBLISH sent with packet_id */
	STORE_D_PUBREL = 2, /* PUBREC received, PUBREL sent */
};

struct store_batch;

/* Called on the storage thread when the batch is durable (err TERN_OK) or
 * could not be written (err says why; the data may be lost). The callee
 * owns nothing of the batch: it is freed after the call. */
typedef void (*store_done_fn)(void *arg, uint64_t ticket, enum tern_err err);

/* ---- batches (built by one worker thread) ---- */

/* A new, empty batch; NULL when out of memory. */
struct store_batch *store_batch_new(void);

/* Frees a batch and drops its message references; NULL allowed. */
void store_batch_free(struct store_batch *b);

/* True when the batch holds no operation. */
bool store_batch_empty(const struct store_batch *b);

/* How many operations the batch holds (NULL: none). */
size_t store_batch_count(const struct store_batch *b);

/* Sets who is told when the batch is durable. */
void store_batch_on_done(struct store_batch *b, store_done_fn done, void *arg, uint64_t ticket);

/* Each of these appends one operation; TERN_E_NOMEM on failure (the batch
 * is then unchanged). Byte arguments are copied. */

/* Creates or updates a persistent session. disconnected_at is wall-clock
 * ms since the epoch when the session went offline, 0 while online. */
TERN_MUST_CHECK enum tern_err store_session_put(struct store_batch *b, uint64_t id,
                                                const uint8_t *cid, size_t len, uint8_t version,
                                                uint32_t expiry, int64_t disconnected_at);

/* Deletes a session with its subscriptions, deliveries, QoS 2 ids, will. */
TERN_MUST_CHECK enum tern_err store_session_del(struct store_batch *b, uint64_t id);

/* Creates or replaces a session's subscription to filter (qos, flags: bit 0
 * no local, bit 1 retain as published; retain_handling; sub_id 0: none) /
 * deletes it. */
TERN_MUST_CHECK enum tern_err store_sub_put(struct store_batch *b, uint64_t session,
                                            const uint8_t *filter, size_t len, uint8_t qos,
                                            uint8_t flags, uint8_t retain_handling,
                                            uint32_t sub_id);
TERN_MUST_CHECK enum tern_err store_sub_del(struct store_batch *b, uint64_t session,
                                            const uint8_t *filter, size_t len);

/* Stores a message under m->store_id (which must be set); takes a
 * reference that the batch drops after the commit. A message is stored at
 * most once per batch however often it is put. */
TERN_MUST_CHECK enum tern_err store_msg_put(struct store_batch *b, struct msg *m);

/* Who published a retained message, kept with it for check_retain_source
 * (mosquitto keeps it in its persistence file too): its client id, its
 * username (has_user false: none) and the index of its listener. */
struct store_retain_src {
	const uint8_t *client_id;
	size_t client_id_len;
	const uint8_t *username;
	size_t username_len;
	bool has_user;
	uint8_t listener;
};

/* Makes message msg_id the retained message of topic, published by src
 * (NULL: not known); msg_id 0 clears it. */
TERN_MUST_CHECK enum tern_err store_retain_put(struct store_batch *b, const uint8_t *topic,
                                               size_t len, uint64_t msg_id,
                                               const struct store_retain_src *src);

/* Queues message msg_id for a session, only if the session is stored
 * (a session that ends at disconnect is not). sub_ids may be NULL. */
TERN_MUST_CHECK enum tern_err store_delivery_put(struct store_batch *b, uint64_t session,
                                                 uint64_t msg_id, uint8_t qos, bool retain,
                                                 const uint32_t *sub_ids, uint16_t n_sub_ids);

/* Records that a delivery was sent with packet_id, or moved to PUBREL. */
TERN_MUST_CHECK enum tern_err store_delivery_state(struct store_batch *b, uint64_t session,
                                                   uint64_t msg_id, uint16_t packet_id,
                                                   enum store_dstate state);

/* Removes a delivery (acknowledged, expired or dropped). */
TERN_MUST_CHECK enum tern_err store_delivery_del(struct store_batch *b, uint64_t session,
                                                 uint64_t msg_id);

/* Remembers / forgets an inbound QoS 2 packet id awaiting PUBREL. */
TERN_MUST_CHECK enum tern_err store_qos2_put(struct store_batch *b, uint64_t session,
                                             uint16_t packet_id);
TERN_MUST_CHECK enum tern_err store_qos2_del(struct store_batch *b, uint64_t session,
                                             uint16_t packet_id);

/* Stores the pending will of an offline session (message msg_id, sent at
 * wall-clock will_at ms), or clears it with msg_id 0. */
TERN_MUST_CHECK enum tern_err store_will_put(struct store_batch *b, uint64_t session,
                                             uint64_t msg_id, int64_t will_at);

/* Queues message msg_id (stored in this batch or before, with
 * store_msg_put()) for the archive named name (src/archive): an entry
 * waiting to be written to that archive's database, under the key (boot,
 * seq), received at wall-clock received_at ms from client id cid and
 * username user (has_user false: none). The entry keeps the message row
 * alive until store_archive_del(). Byte arguments are copied. */
TERN_MUST_CHECK enum tern_err store_archive_put(struct store_batch *b, const char *name,
                                                uint64_t boot, uint64_t seq, uint64_t msg_id,
                                                int64_t received_at, const uint8_t *cid,
                                                size_t cid_len, const uint8_t *user,
                                                size_t user_len, bool has_user);

/* Removes the archive entry (name, boot, seq), written to its database,
 * and message msg_id if nothing else refers to it. */
TERN_MUST_CHECK enum tern_err store_archive_del(struct store_batch *b, const char *name,
                                                uint64_t boot, uint64_t seq, uint64_t msg_id);

/* ---- loading at start ---- */

struct store_loaded_session {
	uint64_t id;
	const uint8_t *client_id;
	size_t client_id_len;
	uint8_t version;
	uint32_t expiry;
	int64_t disconnected_at;
	struct msg *will; /* a reference for the callee, or NULL */
	int64_t will_at;
};

struct store_loaded_delivery {
	uint64_t session;
	struct msg *msg; /* a reference for the callee */
	uint8_t qos;
	bool retain;
	uint16_t packet_id;
	enum store_dstate state;
	const uint32_t *sub_ids;
	uint16_t n_sub_ids;
};

/* An archive entry (store_archive_put()) as loaded; the message keeps its
 * expiry out: an expired message is still archived. */
struct store_loaded_archive {
	const char *name; /* NUL-terminated */
	uint64_t boot, seq;
	struct msg *msg; /* a reference for the callee */
	int64_t received_at;
	const uint8_t *client_id;
	size_t client_id_len;
	const uint8_t *username; /* NULL: none */
	size_t username_len;
};

/* What store_load() calls for each stored record, in this order: every
 * session, every subscription, every retained message, every delivery
 * (per session in queue order), every QoS 2 id, every archive entry (in
 * key order; archive may be NULL: they are left in the store). Byte pointers are valid
 * during the call only. A callback returning an error stops the load. */
struct store_loader {
	void *arg;
	TERN_MUST_CHECK enum tern_err (*session)(void *arg, const struct store_loaded_session *s);
	TERN_MUST_CHECK enum tern_err (*sub)(void *arg, uint64_t session, const uint8_t *filter,
	                                     size_t len, uint8_t qos, uint8_t flags,
	                                     uint8_t retain_handling, uint32_t sub_id);
	/* m: a reference; src: its publisher, NULL when not kept. */
	TERN_MUST_CHECK enum tern_err (*retained)(void *arg, struct msg *m,
	                                          const struct store_retain_src *src);
	TERN_MUST_CHECK enum tern_err (*delivery)(void *arg, const struct store_loaded_delivery *d);
	TERN_MUST_CHECK enum tern_err (*qos2)(void *arg, uint64_t session, uint16_t packet_id);
	TERN_MUST_CHECK enum tern_err (*archive)(void *arg, const struct store_loaded_archive *a);
};

/* ---- the store ---- */

struct store_config {
	const char *path; /* database file */
	enum store_sync sync;
};

struct store;

/*
 * Opens (creating if needed) the database at cfg->path. Refuses a file
 * that is not ours, is corrupt or has a newer schema, with the reason in
 * err; never wipes data. Does not start the thread yet.
 */
TERN_MUST_CHECK enum tern_err store_open(struct store **out, const struct store_config *cfg,
                                         char *err, size_t errlen);

/*
 * Reads everything back through loader (before store_start). Messages whose
 * expiry passed are skipped. *max_id gets the largest session or message
 * id seen, so that the broker hands out ids above it.
 */
TERN_MUST_CHECK enum tern_err store_load(struct store *s, const struct store_loader *loader,
                                         uint64_t *max_id, char *err, size_t errlen);

/* Starts the storage thread. */
TERN_MUST_CHECK enum tern_err store_start(struct store *s);

/* Hands a batch to the storage thread (any thread may call it). The store
 * owns the batch from now on. An empty batch writes nothing but completes
 * in order with the others, which makes it a barrier. */
void store_submit_take(struct store *s, struct store_batch *b);

/* Applies what is pending, stops the thread and closes the database;
 * NULL allowed. */
void store_close(struct store *s);

/* Commits done so far and their mean duration, for metrics. */
void store_stats(struct store *s, uint64_t *commits, uint64_t *batches, double *mean_ms);

#endif
