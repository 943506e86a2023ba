/*
 * broker.h - the objects of ternd and how they hang together.
 *
 *   broker   one per process (or per test): config, log, retained store,
 *            the workers. Read-only after start, but for atomics.
 *   worker   one thread, one epoll loop, its own SO_REUSEPORT listeners,
 *            its own connections and sessions, its own router replica,
 *            and an inbox (lock-free MPSC queue + eventfd) through which
 *            other workers hand it connections, deliveries and router
 *            updates. Nothing of a worker is touched by another thread
 *            except its inbox.
 *   session  the MQTT session of one client id. It lives on its home
 *            worker, hash(client id) mod N, so resume and takeover are
 *            always local and a session needs no lock.
 *   conn     one network connection. Accepted by any worker, it moves to
 *            its session's home worker once its CONNECT is decoded, before
 *            CONNACK; it never moves again.
 *
 * Ownership: a worker owns its conns and sessions; a session owns its
 * queued and in-flight deliveries, each holding a message reference. A
 * connection is never freed inside its own callbacks: conn_close() marks it
 * and the worker reaps it before the loop sleeps.
 */
#ifndef TERN_BROKER_BROKER_H
#define TERN_BROKER_BROKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "broker/config.h"
#include "broker/flow.h"
#include "broker/retain.h"
#include "broker/router.h"
#include "broker/stats.h"
#include "broker/transport.h"
#include "tern/codec.h"
#include "util/buf.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/log_limit.h"
#include "util/map.h"
#include "util/mpsc.h"
#include "util/msg.h"

struct worker;
struct session;
struct conn;
struct store;
struct store_batch;
struct held;
struct tls_conn;
struct ws_conn;
struct metrics;
struct sys_state;
struct auth_state;
struct conn_out;
struct auth_pool;

/* ------------------------------------------------------------------ */
/* broker                                                              */

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
	atomic_uint_fast64_t next_id; /* session, connection and request ids */
	atomic_int_fast64_t n_conns;
	uint64_t start_ms; /* monotonic ms at start, for uptime */
	/* The secret key of every table fed by client data (util/hash.h):
	 * drawn by broker_init() before any thread starts, never changed
	 * after, so reading it needs no synchronisation. */
	struct hash_key hash_key;
	struct metrics *metrics;     /* the /metrics endpoint, or NULL */
	struct auth_pool *auth_pool; /* password checks; NULL without password_file */
};

/* Builds the broker for cfg (copied): log, retained store, workers and
 * their listening sockets. Does not start threads. On failure logs why,
 * cleans up and returns the error. */
enum tern_err broker_init(struct broker *b, const struct config *cfg);

/* Starts one thread per worker. */
enum tern_err broker_start(struct broker *b);

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
unsigned broker_home_of(const struct broker *b, const uint8_t *cid, size_t len);

/* ------------------------------------------------------------------ */
/* deliveries: one message on its way to one session                   */

struct delivery {
	struct msg *msg; /* one reference, owned by the delivery */
	uint8_t qos;     /* QoS it is delivered with */
	bool retain;     /* RETAIN flag it is delivered with */
	uint16_t n_sub_ids;
	uint32_t sub_id;   /* when n_sub_ids == 1 */
	uint32_t *sub_ids; /* when n_sub_ids > 1; owned */
};

/* Releases what d owns and zeroes it. */
void delivery_clear(struct delivery *d);

/* ------------------------------------------------------------------ */
/* worker inbox                                                        */

enum inbox_kind {
	INBOX_CONN,       /* a connection handed to its home worker */
	INBOX_DELIVER,    /* deliveries for sessions of this worker */
	INBOX_ROUTE_ADD,  /* apply router_add() to this replica */
	INBOX_ROUTE_DEL,  /* apply router_remove() to this replica */
	INBOX_ROUTE_ACK,  /* a replica applied a change of ours */
	INBOX_STORE_DONE, /* the store committed one of our batches */
	INBOX_AUTH,       /* reloaded password / ACL files */
	INBOX_AUTH_DONE,  /* the verdict on a CONNECT's password (auth_pool.c) */
	INBOX_FLOW_WAKE,  /* a session drained: recheck paused publishers */
};

struct deliver_target {
	uint64_t session;
	struct delivery d;
};

struct inbox_item {
	struct mpsc_node node;
	struct inbox_item *next; /* chaining in a worker's outbox */
	enum inbox_kind kind;
	union {
		struct conn *conn;
		struct {
			size_t n;
			struct deliver_target *t; /* owned */
		} deliver;
		struct {
			uint16_t origin; /* worker to ack, when req != 0 */
			uint64_t req;
			struct route route;
			uint16_t filter_len;
			uint8_t *text; /* the filter as subscribed; owned */
		} route;
		struct {
			uint64_t req;
		} ack;
		struct {
			struct broker *b; /* still alive when w is not, at stop */
			struct worker *w;
			uint64_t ticket;
			enum tern_err err;
		} done;
		struct auth_state *auth;
		struct {
			uint64_t conn; /* id of the connection it is for */
			uint8_t rc;    /* CONNACK reason (v5 code) */
		} verdict;
	} u;
};

/* ------------------------------------------------------------------ */
/* worker                                                              */

struct worker {
	struct broker *broker;
	unsigned id;
	int epfd;
	int evfd;
	int lfds[MAX_LISTENERS];
	size_t n_lfds;
	pthread_t thread;
	bool thread_started;
	struct mpsc inbox;
	atomic_bool wake_pending; /* an eventfd write is on its way */
	/* Deliveries posted to this worker and not yet handled: other workers
	 * stop sending it QoS 0 beyond WORKER_BACKLOG_MAX, so a slow worker
	 * cannot make the others fill memory (QoS 1/2 are bounded by the
	 * publishers' in-flight windows). */
	atomic_size_t backlog;

	struct router *router;
	struct map sessions;          /* client id -> session */
	struct map sessions_by_id;    /* id -> session */
	struct map pending;           /* request id -> struct pending_ack */
	struct map auth_wait;         /* conn id -> conn waiting for a password verdict */
	struct conn *conns;           /* every live conn, doubly linked */
	struct conn *flush;           /* conns with output to write */
	struct conn *closing;         /* conns to reap before sleeping */
	struct conn *lingering;       /* reaped conns closing gracefully */
	struct inbox_item **outbox;   /* per target worker, to push */
	struct conn *handed_off;      /* conn just handed to another worker */
	struct route_matches matches; /* scratch for routing */
	uint64_t now;                 /* monotonic ms, once per iteration */
	struct worker_stats stats;
	uint64_t util_at, util_busy; /* last loop-utilisation sample */
	struct sys_state *sys;       /* $SYS publishing (worker 0 only) */
	struct auth_state *auth;     /* password and ACL files in force here */
	struct store_batch *batch;   /* store operations of this iteration */
	uint64_t ticket;             /* ticket of that batch */
	uint64_t done_ticket;        /* all batches up to it are committed */
	struct held *held;           /* answers waiting for a commit (ring) */
	size_t held_head, held_n, held_cap;
	struct flow_pause **paused; /* publishers paused by flow control (flow.c) */
	size_t n_paused, cap_paused;
	bool flow_recheck; /* a cell drained: run flow_resume() before sleeping */
	uint64_t next_tick;
	/* Lines that repeat per message (drops, denied publishes), at most
	 * one per client and kind every LOG_REPEAT_WINDOW_MS, plus a count. */
	struct log_limiter log_limit;
};

/* The window of log_limit: "N more dropped for client X in the last 10 s". */
#define LOG_REPEAT_WINDOW_MS 10000u

#define WORKER_BACKLOG_MAX ((size_t)1 << 17)

/* Queues item for worker `to` (any thread may call it for any worker):
 * pushes to its inbox and wakes it. */
void worker_post(struct worker *to, struct inbox_item *item);

/* Queues item in from's outbox for worker `to`; pushed in one go before
 * `from` sleeps, so a burst of publishes costs one wake-up per target. */
void worker_outbox(struct worker *from, unsigned to, struct inbox_item *item);

/* Registers conn (accepted here or handed over) with this worker's loop. */
enum tern_err worker_adopt(struct worker *w, struct conn *c);

/* The worker thread's body: worker_iterate() until the broker stops. */
void *worker_main(void *arg);

/* One loop iteration: waits for events at most until the next timer (and
 * at most max_wait_ms when >= 0), handles them, runs due timers, flushes.
 * Lets tests and fuzzers drive a worker without its thread. */
void worker_iterate(struct worker *w, int max_wait_ms);

/* ------------------------------------------------------------------ */
/* routing (route.c): subscriptions across replicas, publishing       */

/* Called when a router change of ours is applied everywhere. */
typedef void (*pending_done_fn)(struct worker *w, void *arg);

/*
 * Applies a subscription change to every replica: to ours at once, to the
 * others through their inboxes. When done is not NULL it is called (on this
 * worker) once every replica has applied the change, which can be at once
 * with one worker; arg is passed along. Several changes can share one done
 * call: see route_batch_*.
 */
struct route_batch {
	uint64_t req;
	unsigned outstanding;
};
void route_batch_begin(struct worker *w, struct route_batch *batch);
enum tern_err route_change(struct worker *w, struct route_batch *batch, bool add,
                           struct tern_bytes filter, const struct route *route);
/* Ends the batch: done(w, arg) runs when all replicas have acked (now, if
 * they already have). arg is owned by the callee until done runs; free_arg
 * frees it if the worker shuts down first. */
enum tern_err route_batch_end(struct worker *w, struct route_batch *batch, pending_done_fn done,
                              void *arg, void (*free_arg)(void *));

/*
 * Routes a message to every matching session of the broker: sessions of
 * this worker at once, others through the outbox. Sets *matched (may be
 * NULL) to the number of sessions it goes to. The caller keeps its
 * reference of msg. When hit is not NULL, it is set to the flow cell of a
 * QoS 1/2 receiver that is now over its mark (flow.h; cell NULL: none): a
 * caller with a publisher connection then pauses it. The cell stays valid
 * until this worker next handles its inbox.
 */
enum tern_err route_publish(struct worker *w, struct msg *msg, size_t *matched,
                            struct flow_hit *hit);

/* Handles the route part of an inbox item. */
void route_inbox(struct worker *w, struct inbox_item *item);

/* Frees pending acks at shutdown. */
void route_pending_free(struct worker *w);

/* ------------------------------------------------------------------ */
/* $SYS topics (sys.c) and the Prometheus endpoint (metrics.c)          */

/* Sums one counter or gauge over every worker (any thread). */
uint64_t broker_stat(const struct broker *b, enum stat_id id);

/* Worker 0, every tick: publishes the $SYS topics when sys_interval has
 * passed (mosquitto's topics, retained). */
void sys_tick(struct worker *w);

/* Frees worker 0's $SYS state. */
void sys_free(struct worker *w);

/* Starts the HTTP endpoint of http_listener (its own thread), if one is
 * configured; stops and frees it. */
enum tern_err metrics_start(struct broker *b);
void metrics_stop(struct broker *b);

/* Writes the Prometheus text exposition of b into out; returns TERN_OK or
 * TERN_E_NOMEM. */
enum tern_err metrics_render(struct broker *b, struct buf *out);

/* ------------------------------------------------------------------ */
/* authentication and ACL (auth.c, on src/auth)                        */

/* Loads password_file and acl_file for every worker and, with a
 * password_file, starts the password check threads (auth_pool.h); logs and
 * returns TERN_E_CONFIG when a file cannot be used, TERN_E_SYS / NOMEM
 * when the threads cannot start. */
enum tern_err auth_init(struct broker *b);

/* Stops the password check threads: after the workers stopped, before
 * their inboxes are drained for the last time. */
void auth_stop(struct broker *b);

/* SIGHUP: loads the files again and hands them to the workers; on a bad
 * file the old ones stay in force and the log says why. Main thread. */
void auth_reload(struct broker *b);

/* A worker takes a reloaded state (INBOX_AUTH); drops its old one. */
void auth_swap(struct worker *w, struct auth_state *a);
void auth_unref(struct auth_state *a);

/*
 * Checks the credentials of a CONNECT. Returns TERN_OK with *rc set to
 * TERN_RC_SUCCESS (and the username in force in *user: the certificate's
 * identity or the CONNECT's, len 0 data NULL for none) or to the v5 reason
 * to refuse with. Returns TERN_E_INCOMPLETE when the password is being
 * checked off the loop: the connection reads nothing meanwhile, its
 * CONNECT stays buffered, and once the verdict is in, the CONNECT is
 * handled again and this call gives the verdict (the hash runs once per
 * connection, whichever worker asks).
 */
enum tern_err auth_connect(struct conn *c, const struct tern_connect *p, struct tern_bytes *user,
                           uint8_t *rc);

/* INBOX_AUTH_DONE: the verdict rc for connection conn_id of w. Dropped
 * when that connection is gone or closing. */
void auth_verdict(struct worker *w, uint64_t conn_id, uint8_t rc);

/* A connection that waits for its verdict is freed: forget it, so the
 * verdict finds nothing. */
void auth_forget(struct conn *c);

/* When auth_connect() refused with rc because of allow_anonymous (no
 * username, or no password_file to check one against): why, naming the
 * directive, for the log and the v5 reason string (static text). NULL for
 * any other refusal. */
const char *auth_anonymous_refusal(const struct conn *c, const struct tern_connect *p, uint8_t rc);

/* ACL check (access is an enum acl_access): the acl_file if one is in
 * force (else allowed), after the broker-wide rules for writes under '$'
 * (no $share topic ever; a $SYS topic only with an acl_file grant naming
 * it, except $SYS/broker/connection/+/state). */
bool auth_allowed(const struct worker *w, const uint8_t *cid, size_t cid_len, const uint8_t *user,
                  size_t ulen, bool has_user, struct tern_bytes topic, int access);

/* ------------------------------------------------------------------ */
/* durable storage (persist.c)                                         */

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

/* ------------------------------------------------------------------ */
/* sessions (session.c)                                                */

struct sub {
	uint8_t *filter; /* the whole filter as subscribed ($share/.. kept) */
	uint16_t len;
	uint8_t qos;
	uint8_t flags; /* ROUTE_NO_LOCAL, ROUTE_RAP */
	uint8_t retain_handling;
	uint32_t sub_id;
};

enum inflight_state {
	INFLIGHT_WAIT_PUBACK,  /* QoS 1 PUBLISH sent */
	INFLIGHT_WAIT_PUBREC,  /* QoS 2 PUBLISH sent */
	INFLIGHT_WAIT_PUBCOMP, /* PUBREL sent */
};

struct inflight {
	struct delivery d;
	uint16_t packet_id;
	uint8_t state;
	bool unsent;       /* of a resumed session, not yet sent again */
	uint64_t store_id; /* the message's store id, kept past PUBREC */
};

struct session {
	/* Ordered by size to keep an idle session small. */
	uint64_t id;
	struct worker *w;
	struct conn *conn;         /* NULL while offline */
	uint8_t *username;         /* of the last connection, for ACL checks; owned */
	uint64_t expire_at;        /* monotonic ms while offline; 0: not counting */
	struct map subs;           /* filter -> struct sub (owned) */
	struct delivery *queue;    /* ring of deliveries waiting for the window */
	uint64_t q_bytes;          /* payload bytes in the queue */
	struct inflight *inflight; /* in send order */
	uint16_t *qos2_in;         /* inbound QoS 2 packet ids awaiting PUBREL */
	struct msg *will;          /* pending will after an abnormal disconnect */
	uint64_t will_at;
	struct flow_cell *flow; /* from the first subscription on (flow.h); a reference */
	uint32_t expiry;        /* seconds after disconnect; UINT32_MAX: never */
	uint32_t q_head, q_len, q_cap;
	uint32_t n_inflight, cap_inflight;
	uint32_t n_unsent; /* in-flight entries waiting to be resent */
	uint32_t n_qos2_in, cap_qos2_in;
	uint32_t will_expiry;
	uint16_t client_id_len;
	uint16_t username_len;
	uint16_t next_packet_id;
	uint8_t version;
	bool has_username;
	bool will_has_expiry;
	bool stored;         /* its row is in the store (see session_record) */
	uint8_t client_id[]; /* not NUL-terminated; allocated with the session */
};

/* Creates a session for client id cid on worker w (not yet in its maps:
 * see session_register). NULL when out of memory. */
struct session *session_new(struct worker *w, const uint8_t *cid, size_t len, uint8_t version);

/* Adds s to w's maps. TERN_E_NOMEM on failure (s is then not registered). */
enum tern_err session_register(struct worker *w, struct session *s);

/* Ends a session: removes its subscriptions from every replica, publishes a
 * pending will, drops what it holds and frees it. s must be offline. */
void session_destroy(struct session *s);

/*
 * Gives the session a message: delivers it now, or queues it (bounded by
 * max_queued_messages) when offline or when the in-flight window is full.
 * Takes ownership of *d in every case (dropping it when it cannot be kept).
 */
void session_deliver(struct session *s, struct delivery *d);

/* Sends queued messages while the in-flight window has room. */
void session_pump(struct session *s);

/* The session's flow cell, created on first use (every route of the
 * session carries it); NULL when out of memory. */
struct flow_cell *session_flow(struct session *s);

/* The session's connection came (online true) or went: online sessions
 * slow their publishers, offline ones drop beyond max_queued_messages. */
void session_flow_online(struct session *s, bool online);

/* Tick of an online session: falls back to dropping after max_stall_time
 * over its mark without progress (flow.h). */
void session_flow_tick(struct session *s, uint64_t now);

/* Resends every in-flight message (PUBLISH with DUP, or PUBREL) on a resumed
 * session [MQTT-4.4.0-1], then pumps the queue. */
void session_resume(struct session *s);

/* Finds the in-flight entry for packet_id; NULL if none. */
struct inflight *session_inflight_find(struct session *s, uint16_t packet_id);

/* Removes an in-flight entry (releasing its message) and pumps the queue. */
void session_inflight_remove(struct session *s, struct inflight *f);

/* Publishes s->will now (if any) and drops it. */
void session_fire_will(struct session *s);

/* Loading from the store: a queued delivery, an in-flight one with its
 * packet id and state, an inbound QoS 2 id. Take ownership of *d. */
enum tern_err session_restore_queued(struct session *s, struct delivery *d);
enum tern_err session_restore_inflight(struct session *s, struct delivery *d, uint16_t packet_id,
                                       uint8_t state);
enum tern_err session_restore_qos2(struct session *s, uint16_t packet_id);

/* Forgets an inbound QoS 2 packet id (PUBREL received, or the message was
 * refused after all); returns whether it was known. */
bool session_qos2_forget(struct session *s, uint16_t packet_id);

/* True when the session outlives its connection, so the store keeps it.
 * Whether the store has it is s->stored: the expiry can change after the row
 * was written (a v5 DISCONNECT can set it to 0), and what was written must
 * still be deleted. */
static inline bool session_persistent(const struct session *s)
{
	return s->expiry != 0;
}

/* Records s in the store (its row, created or updated: expiry, and
 * disconnected_at, wall-clock ms or 0 while online) and marks it stored. */
void session_record(struct session *s, int64_t disconnected_at);

/* Deletes what the store keeps of s (its row and with it subscriptions,
 * queued and in-flight deliveries, inbound QoS 2 ids and its will) when s
 * is stored, and marks it not stored. For a session that ends, or that
 * goes on with expiry 0 and so must not come back after a restart. */
void session_unrecord(struct session *s);

/* Periodic work for an offline session: will delay and expiry. Returns
 * true if the session was destroyed. */
bool session_tick(struct session *s, uint64_t now);

/* ------------------------------------------------------------------ */
/* connections (conn.c)                                                */

enum conn_state {
	CONN_NEW,     /* waiting for CONNECT */
	CONN_ACTIVE,  /* CONNACK sent */
	CONN_CLOSING, /* marked; reaped before the loop sleeps */
	CONN_LINGER,  /* reaped, closing gracefully: see conn_reap() */
};

struct conn {
	/* Ordered by size to keep an idle connection small. */
	uint64_t id;
	struct worker *w;
	const struct listener *listener;
	const struct transport *tp;
	struct tls_conn *tls;      /* TLS layer state, or NULL */
	struct ws_conn *ws;        /* WebSocket layer state, or NULL */
	struct conn *prev, *next;  /* w->conns, or w->lingering */
	struct conn *flush_next;   /* w->flush */
	struct conn *closing_next; /* w->closing */
	uint64_t last_rx;          /* monotonic ms of the last packet */
	uint64_t deadline;         /* CONNECT deadline while CONN_NEW; linger end */
	struct buf rbuf;
	struct buf wbuf;
	struct session *session;
	uint8_t **alias_topic;         /* inbound alias -> topic (len-prefixed) */
	struct topic_alias *alias_out; /* aliases we assigned (v5); NULL: none */
	struct msg *will;              /* will of this connection */
	struct conn_out *out;          /* payloads sent by reference; NULL when none */
	struct flow_pause *flow;       /* acks held by flow control (flow.c); NULL: none */
	int fd;
	enum conn_state state;
	uint32_t client_max_packet; /* client's Maximum Packet Size (v5); 0 none */
	uint32_t will_delay;
	uint32_t will_expiry;    /* its Message Expiry Interval, applied */
	uint16_t keep_alive;     /* seconds; 0: none */
	uint16_t send_quota_max; /* client's Receive Maximum (v5) */
	uint16_t alias_max;      /* our Topic Alias Maximum (v5) */
	uint16_t alias_out_max;  /* aliases we may assign: the client's, capped */
	uint8_t version;
	bool tp_read_wants_write; /* a read waits for the socket to be writable */
	bool tp_write_wants_read; /* a write waits for the socket to be readable */
	bool in_flush;
	bool epollout;        /* EPOLLOUT is registered */
	bool will_suppressed; /* normal DISCONNECT received */
	bool counted;         /* counted in broker->n_conns */
	bool problem_info;    /* the v5 CONNECT set Request Problem Information 1 */
	bool will_has_expiry; /*   when it is published */
	bool input_paused;    /* EPOLLIN off: see conn_pause_input() */
	uint8_t auth;         /* enum conn_auth */
	uint8_t auth_rc;      /* the verdict, once auth is CONN_AUTH_DONE */
	bool no_linger;       /* the peer ended the stream: close at once */
	bool shut_wr;         /* lingering: our write side is shut down */
	uint32_t discarded;   /* lingering: input bytes read and dropped */
};

/* Where a connection's password check is (auth.c). */
enum conn_auth {
	CONN_AUTH_NONE, /* not asked off the loop */
	CONN_AUTH_WAIT, /* asked; the CONNECT waits in rbuf, input paused */
	CONN_AUTH_DONE, /* the verdict is in auth_rc */
};

/* The peer's address ("1.2.3.4:5678") of c, written into buf. */
const char *conn_peer(const struct conn *c, char buf[64]);

/* The connection of session session_id on w, if it is still conn_id (a
 * connection that closed, or a new one of the same session, does not
 * match). For answers that were held back. */
struct conn *worker_conn_of(struct worker *w, uint64_t session_id, uint64_t conn_id);

/* Creates a connection for a socket accepted on listener l (it then owns
 * the socket); NULL when out of memory or the transport cannot start. */
struct conn *conn_new(struct worker *w, int fd, const struct listener *l);

/* Handles write readiness: flushes output, and lets a transport that was
 * waiting for it (a TLS handshake) go on reading. Returns false when that
 * read handed c to another worker (see conn_process): the caller must not
 * touch c any more. */
bool conn_on_writable(struct conn *c);

/* Frees a connection that is no longer in any list (used by the reaper). */
void conn_free(struct conn *c);

/* Reads what the socket has and handles every whole packet. Returns false
 * when c was handed to another worker (see conn_process). */
bool conn_on_readable(struct conn *c);

/* Handles packets already buffered (also after a hand-over). Returns false
 * when a CONNECT handed c to its session's home worker: c then belongs to
 * that thread, which may already be running it, so the caller must not
 * touch c any more (not even to read its state). True otherwise, closing
 * or not. */
bool conn_process(struct conn *c);

/* Writes buffered output; registers for EPOLLOUT on a partial write. */
void conn_flush(struct conn *c);

/*
 * Ends the connection. For v5 connections in CONN_ACTIVE a reason >= 0x80
 * is first sent in a DISCONNECT (with a reason string when the client asked
 * for problem information). Idempotent. The will is published unless the
 * client sent a normal DISCONNECT.
 */
void conn_close(struct conn *c, uint8_t reason, const char *why);

/*
 * Reaps a closing connection: detaches the session at once, then closes.
 * Unless the peer ended the stream itself (c->no_linger), the close is
 * graceful, so that the client can read our last words (a DISCONNECT with
 * its reason, a refusing CONNACK) even while it is still sending: closing a
 * socket with unread input makes the kernel send a reset, and the client's
 * next send or read fails before it sees them. So c lingers (CONN_LINGER,
 * on w->lingering): its output is flushed, the transport says goodbye (TLS
 * close_notify, WebSocket close frame), the write side is shut down, and
 * input is read and dropped until the peer closes, for at most
 * CONN_LINGER_MS and CONN_LINGER_BYTES. A lingering connection belongs to
 * no session and no longer counts against max_connections.
 */
void conn_reap(struct conn *c);

/* Handles an epoll event of a lingering connection (may free it). */
void conn_linger_event(struct conn *c, uint32_t events);

/* Ends every lingering connection of w whose time is up at now
 * (UINT64_MAX: all of them, at shutdown). */
void conn_linger_expire(struct worker *w, uint64_t now);

/* Detaches c from its session: the will is published now or scheduled
 * after its delay, and a session whose expiry interval is 0 ends. */
void conn_detach_session(struct conn *c);

/* Stops (paused true) or resumes reading from c: while paused, epoll
 * reports only a hang-up or an error, upon which c is closed; what the
 * client sends meanwhile waits in the socket. */
void conn_pause_input(struct conn *c, bool paused);

/* Removes c from its worker (epoll, lists) without closing it, so that it
 * can be handed to another worker. */
void conn_unlink(struct conn *c);

/* Encodes and queues a packet; closes the connection on failure. */
enum tern_err conn_send(struct conn *c, const struct tern_packet *p);

/* Encodes and queues a PUBLISH of d with packet_id (0 for QoS 0) and dup.
 * Returns TERN_E_TOO_LARGE when it exceeds the client's Maximum Packet Size
 * (nothing is sent then [MQTT-3.1.2-25]). */
enum tern_err conn_send_publish(struct conn *c, const struct delivery *d, uint16_t packet_id,
                                bool dup);

/* Sends an ack-type packet (PUBACK..PUBCOMP) with a reason. */
enum tern_err conn_send_ack(struct conn *c, enum tern_packet_type type, uint16_t packet_id,
                            uint8_t reason);

/* True when topic (a name or filter) has more levels than max_topic_levels
 * allows. */
static inline bool topic_too_deep(const struct broker *b, struct tern_bytes topic)
{
	uint32_t max = b->cfg.max_topic_levels;
	if (!max || topic.len < max)
		return false;
	uint32_t levels = 1;
	for (uint32_t i = 0; i < topic.len; i++)
		if (topic.data[i] == '/' && ++levels > max)
			return true;
	return false;
}

/* Bytes queued for writing; used to drop QoS 0 to slow consumers. */
size_t conn_pending_out(const struct conn *c);

/* ------------------------------------------------------------------ */
/* packet handlers (handle_*.c): each gets a decoded packet             */

void handle_connect(struct conn *c, const struct tern_connect *p);
void handle_publish(struct conn *c, const struct tern_publish *p);
void handle_puback(struct conn *c, const struct tern_ack *p);
void handle_pubrec(struct conn *c, const struct tern_ack *p);
void handle_pubrel(struct conn *c, const struct tern_ack *p);
void handle_pubcomp(struct conn *c, const struct tern_ack *p);
void handle_subscribe(struct conn *c, const struct tern_subscribe *p);
void handle_unsubscribe(struct conn *c, const struct tern_unsubscribe *p);
void handle_pingreq(struct conn *c);
void handle_disconnect(struct conn *c, const struct tern_reasoned *p);
void handle_auth(struct conn *c, const struct tern_reasoned *p);

/* Answers a CONNECT that failed to decode: CONNACK 0x01 (v5: 0x84) for an
 * unknown protocol level under MQTT's protocol name [MQTT-3.1.2-2], a plain
 * close otherwise. body is the undecoded packet body. */
void connect_refuse_decoded(struct conn *c, enum tern_err err, const uint8_t *body, size_t len);

#endif
