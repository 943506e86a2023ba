/*
 * broker.h - the broker object: one per process (or per test).
 *
 * How the objects of ternd hang together, each with its own header:
 *
 *   broker   (broker.h) config, log, retained store, store, the workers.
 *            Read-only after start, but for atomics.
 *   worker   (worker.h) one thread, one epoll loop, its own SO_REUSEPORT
 *            listeners, its own connections and sessions, its own router
 *            replica, and an inbox (lock-free MPSC queue + eventfd) through
 *            which other workers hand it connections, deliveries and router
 *            updates. Nothing of a worker is touched by another thread
 *            except its inbox.
 *   session  (session.h) the MQTT session of one client id. It lives on its
 *            home worker, hash(client id) mod N, so resume and takeover are
 *            always local and a session needs no lock.
 *   conn     (conn.h) one network connection. Accepted by any worker, it
 *            moves to its session's home worker once its CONNECT is decoded,
 *            before CONNACK; it never moves again.
 *   delivery (delivery.h) one message on its way to one session.
 *
 * The rest: route.h (subscriptions across replicas, publishing), persist.h
 * (the store seen from a worker), auth.h (passwords and ACLs), handlers.h
 * (one function per packet type), sys.h and stats.h (statistics out;
 * /metrics and the admin API are src/http's, started by main.c).
 *
 * Ownership: a worker owns its conns and sessions; a session owns its
 * queued and in-flight deliveries, each holding a message reference. A
 * connection is never freed inside its own callbacks: conn_close() marks it
 * and the worker reaps it before the loop sleeps.
 */
#ifndef TERN_BROKER_BROKER_H
#define TERN_BROKER_BROKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/config.h"
#include "broker/stats.h"
#include "broker/transport.h"
#include "tern/error.h"
#include "util/log.h"
#include "util/hash.h"
#include "util/siphash.h"

struct auth_pool;
struct cluster;
struct retain_store;
struct store;
struct worker;

struct broker {
	struct config cfg;
	struct log log;
	struct retain_store *retain;
	struct store *store;                      /* NULL: memory only */
	struct listener listeners[MAX_LISTENERS]; /* lfds[i] of a worker is listeners[i] */
	size_t n_listeners;
	unsigned n_workers;
	struct worker **workers;
	atomic_bool stop;
	/* The heap is over memory_limit (memory_limit.h): worker 0 sets it,
	 * every worker reads it as publishes and CONNECTs come. */
	atomic_bool over_memory;
	atomic_uint_fast64_t next_id; /* session, connection and request ids */
	atomic_int_fast64_t n_conns;
	uint64_t start_ms; /* monotonic ms at start, for uptime */
	/* The secret key of every table fed by client data (util/hash.h):
	 * drawn by broker_init() before any thread starts, never changed
	 * after, so reading it needs no synchronisation. */
	struct hash_key hash_key;
	struct auth_pool *auth_pool; /* password checks; NULL without password_file */
	struct cluster *cluster;     /* the NATS side (cluster_link.c); NULL: single node */
	/* The archives (archive_link.c), in config order; NULL: none. */
	struct archive **archives;
	size_t n_archives;
};

/* Builds the broker for cfg (copied): log, retained store, workers and
 * their listening sockets. Does not start threads. On failure logs why,
 * cleans up and returns the error. */
TERN_MUST_CHECK enum tern_err broker_init(struct broker *b, const struct config *cfg);

/* Starts one thread per worker. */
TERN_MUST_CHECK enum tern_err broker_start(struct broker *b);

/* Asks every worker to stop (safe from any thread) and joins them. */
void broker_stop(struct broker *b);

/* Frees everything broker_init() made; after broker_stop(). */
void broker_free(struct broker *b);

/* A fresh id, unique for the broker's lifetime and never 0. */
static inline uint64_t broker_new_id(struct broker *b)
{
	return atomic_fetch_add_explicit(&b->next_id, 1, memory_order_relaxed) + 1;
}

/* The worker index that is home to client id cid: a keyed hash of cid, so
 * the same within one process (all a home needs: nothing stores it) and
 * not steerable by a client choosing its id. */
static inline unsigned broker_home_of(const struct broker *b, const uint8_t *cid, size_t len)
{
	/* The high half picks the worker: the maps of that worker's sessions
	 * index by the low bits of the same hash, which would otherwise be
	 * equal mod n_workers for all of them. */
	uint64_t h = hash_bytes(&b->hash_key, cid, len) >> 32;
	return (unsigned)((h * b->n_workers) >> 32);
}

#endif
