/*
 * worker.h - one worker thread: its event loop, its state, and its inbox.
 *
 * A worker owns its connections, its sessions, its router replica and the
 * store batch of its current iteration. Other threads reach it only through
 * its inbox: worker_post() pushes an inbox_item (a connection handed over,
 * deliveries, a router change or its ack, a store commit, reloaded auth
 * files, a password verdict, a flow wake-up, a message or a client id claim
 * from the cluster, a function to run for the admin API) and wakes the
 * loop, which hands each item to the module it concerns
 * (worker_inbox_item()).
 */
#ifndef TERN_BROKER_WORKER_H
#define TERN_BROKER_WORKER_H

#include <pthread.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/config.h"
#include "broker/delivery.h"
#include "broker/router.h"
#include "broker/stats.h"
#include "tern/error.h"
#include "util/buf.h"
#include "util/log_limit.h"
#include "util/map.h"
#include "util/mpsc.h"

struct auth_state;
struct bridge_worker;
struct broker;
struct cluster_ack;
struct conn;
struct conn_worker;
struct flow_paused;
struct persist_worker;
struct sys_state;

enum inbox_kind {
	INBOX_CONN,           /* a connection handed to its home worker */
	INBOX_DELIVER,        /* deliveries for sessions of this worker */
	INBOX_ROUTE_ADD,      /* apply router_add() to this replica */
	INBOX_ROUTE_DEL,      /* apply router_remove() to this replica */
	INBOX_ROUTE_ACK,      /* a replica applied a change of ours */
	INBOX_STORE_DONE,     /* the store committed one of our batches */
	INBOX_AUTH,           /* reloaded password / ACL files */
	INBOX_AUTH_DONE,      /* the verdict on a CONNECT's password (auth_pool.c) */
	INBOX_FLOW_WAKE,      /* a session drained: recheck paused publishers */
	INBOX_REMOTE,         /* a message from another cluster node (cluster_link.c) */
	INBOX_CLAIM,          /* another node claimed a client id (cluster_link.c) */
	INBOX_CLUSTER_STORED, /* the cluster stored a message of ours (u.done) */
	INBOX_DURABLE,        /* a message of a session's durable queue (cluster_link.c) */
	INBOX_PUBREL,         /* a session's PUBREL entries from the cluster (cluster_link.c) */
	INBOX_ADOPT,          /* a dead node's session this node adopted (cluster_link.c) */
	INBOX_CALL,           /* run u.call.fn on this worker (the admin API, src/http) */
	INBOX_SESSION_FOUND,  /* a session's record looked up for a CONNECT (cluster_link.c) */
	INBOX_HELD_ELSEWHERE, /* another node holds a session (u.claim's cid; cluster_link.c) */
	INBOX_REJOINED,       /* another node adopted a session while this one was cut off
	                       * (u.claim's cid and stamp; cluster_link.c) */
};

/* An item has one owner at a time: whoever fills it, then (worker_post(),
 * worker_outbox()) the target's inbox, then the handler the target gives it
 * to (worker_inbox_item(), route_inbox(), deliver_batch_return()), which
 * frees or reuses it. So every function that takes a struct inbox_item *
 * takes it over, and none of them carries a _take suffix to say so. */

struct deliver_target {
	uint64_t session;
	struct delivery d;
};

struct cluster_pubrel;
struct conn_proxied;

struct inbox_item {
	struct mpsc_node node;
	struct inbox_item *next; /* chaining in a worker's outbox */
	enum inbox_kind kind;
	/* INBOX_CONN: what its PROXY header said (conn_proxy.c), owned; or
	 * NULL. */
	struct conn_proxied *proxied;
	union {
		struct conn *conn;
		struct {
			size_t n, cap;
			struct deliver_target *t; /* owned */
			struct worker *origin;    /* gets the batch back (route.c) */
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
			/* A subscription of the batch that must be refused,
			 * its durable queue not made (cluster_link.c): its
			 * filter (owned); NULL: none. */
			uint8_t *refused;
			uint32_t rlen;
		} ack;
		struct {
			struct msg *msg; /* owned reference */
			uint8_t *share;  /* share group then filter, owned; NULL: ordinary */
			uint16_t glen;
			uint32_t flen;
		} remote;
		struct {
			uint64_t session;
			struct msg *msg;         /* owned reference */
			struct cluster_ack *ack; /* owned */
			uint8_t *filter;         /* the subscription's, owned */
			uint32_t flen;
		} durable;
		struct {
			uint64_t session;
			uint16_t home;            /* its worker */
			struct cluster_pubrel *v; /* owned, with their handles */
			size_t n;
			enum tern_err err;
		} pubrel;
		struct {
			struct broker *b; /* still alive when w is not, at stop */
			struct worker *w;
			uint64_t ticket;
			enum tern_err err;
		} done;
		struct {
			uint8_t *cid; /* owned */
			uint16_t len;
			bool tie_wins;
			bool clean; /* the claim's CONNECT had clean start */
			uint64_t stamp;
		} claim;
		struct {
			uint64_t conn; /* id of the connection it is for */
			uint8_t *rec;  /* the record, owned; NULL: none */
			uint32_t len;
			enum tern_err err;
		} found;
		struct {
			uint8_t *cid; /* owned */
			uint8_t *rec; /* the session's record, owned */
			uint16_t len;
			uint32_t rec_len;
		} adopt;
		struct auth_state *auth;
		struct {
			/* Runs on the worker's thread, with the worker's
			 * state at hand; arg is the caller's (src/http's
			 * http_call.c keeps it alive until every worker
			 * asked has run fn), also at shutdown. */
			void (*fn)(struct worker *w, void *arg);
			void *arg;
		} call;
		struct {
			uint64_t conn; /* id of the connection it is for */
			uint8_t rc;    /* CONNACK reason (v5 code) */
		} verdict;
	} u;
};

struct msg_pool;
struct route_worker;
struct session_registry;

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

	struct router *router;      /* this worker's replica (router.c) */
	struct inbox_item **outbox; /* per target worker, to push */
	/* Per target worker, the batch of deliveries this iteration routes
	 * there (route.c fills it), not yet in the outbox: part of the outbox,
	 * as whatever is queued behind it closes it (worker_outbox(), also
	 * used by flow.c, which must not call route.c). */
	struct inbox_item **deliver_open;
	uint64_t now; /* monotonic ms, once per iteration */
	struct worker_stats stats;
	uint64_t util_at, util_busy; /* last loop-utilisation sample */
	uint64_t retain_sweep_at;    /* worker 0: next retain_expiry_interval sweep */
	uint8_t *mount_buf;          /* mount.c's scratch topic; NULL until used */
	uint64_t next_tick;
	/* A cell drained: run flow_resume() before sleeping. The loop's flag,
	 * set by the cells (flow.c, which calls no connection code) and by
	 * INBOX_FLOW_WAKE. */
	bool flow_recheck;
	/* Lines that repeat per message (drops, denied publishes), at most
	 * one per client and kind every LOG_REPEAT_WINDOW_MS, plus a count. */
	struct log_limiter log_limit;

	/* The modules' states: each type is private to its module, which makes
	 * and frees it (<module>_worker_new() and _free(), called by broker.c;
	 * sys.c and auth.c on their own); other files reach it through the
	 * module's functions only. */
	struct session_registry *sessions; /* by client id and by id (session.c) */
	struct conn_worker *conn_state;    /* conn lists, auth waits, read scratch,
	                                    * PUBLISH header cache (conn_internal.h) */
	struct route_worker *route;        /* pending acks, dedup table, spare batches (route.c) */
	struct persist_worker *persist;    /* store batch, tickets, held answers (persist.c) */
	struct archive_worker *archive;  /* entries for the archives (archive_link.c); NULL: none */
	struct flow_paused *flow_paused; /* publishers paused by flow control (flow_pause.c) */
	struct sys_state *sys;           /* $SYS publishing, worker 0 only (sys.c) */
	struct auth_state *auth;         /* password and ACL files in force here (auth.c) */
	struct bridge_worker *bridges;   /* bridges homed here (bridge.c); NULL: none */
	struct topic_rates *topic_rates; /* published topics (topic_rate.c); NULL: no HTTP */
	/* The matches of the publish being routed: route.c's scratch, kept
	 * inline for speed (one pointer fewer live in route_publish()'s loop,
	 * see struct route_worker) and touched there only. */
	struct route_matches route_matches;

	/* The hot path's memory, so that a message costs no allocation: the
	 * worker's allocators, shared by the modules that run on it (util/buf.h:
	 * spare buffer blocks for conns' input and output and the transports';
	 * util/msg.h: blocks of the messages published here). The read scratch
	 * and the cached PUBLISH headers are the connection module's
	 * (conn_internal.h). */
	struct buf_bins bins;
	struct msg_pool *msg_pool;
};

/* The window of log_limit: "N more dropped for client X in the last 10 s". */
#define LOG_REPEAT_WINDOW_MS 10000u

#define WORKER_BACKLOG_MAX ((size_t)1 << 17)

/* Queues item for worker `to` (any thread may call it for any worker):
 * pushes to its inbox and wakes it. Inline, as the inbox is the one part of
 * a worker other modules and threads touch: posting needs nothing of the
 * loop (worker.c). */
static inline void worker_post(struct worker *to, struct inbox_item *item)
{
	mpsc_push(&to->inbox, &item->node);
	/* One eventfd write per batch. The consumer reads the eventfd, then
	 * clears the flag, then drains: a push that finds the flag set is
	 * either seen by that drain or followed by a fresh write. */
	if (!atomic_exchange_explicit(&to->wake_pending, true, memory_order_seq_cst)) {
		uint64_t one = 1;
		ssize_t n = write(to->evfd, &one, sizeof(one));
		(void)n; /* EAGAIN means the counter is already non-zero: awake */
	}
}

/* Moves w's open batch of deliveries for worker `to` (route.c fills it
 * during an iteration) into the outbox, before anything queued after it, so
 * the order of routing is kept. */
static inline void deliver_batch_close(struct worker *w, unsigned to)
{
	struct inbox_item *it = w->deliver_open[to];
	if (!it)
		return;
	w->deliver_open[to] = NULL;
	it->next = w->outbox[to];
	w->outbox[to] = it;
}

/* Queues item in from's outbox for worker `to`; pushed in one go before
 * `from` sleeps, so a burst of publishes costs one wake-up per target.
 * It goes behind the deliveries routed there before it. */
static inline void worker_outbox(struct worker *from, unsigned to, struct inbox_item *item)
{
	deliver_batch_close(from, to);
	item->next = from->outbox[to];
	from->outbox[to] = item;
}

/* Handles one inbox item other than INBOX_CONN (which the loop adopts):
 * gives it to the module it is for (route, persist, auth, flow) and frees
 * it, unless that module reuses it. Also used at shutdown, when
 * stop is set, to drain what is left. */
void worker_inbox_item(struct worker *w, struct inbox_item *item);

/* The worker thread's body: worker_iterate() until the broker stops. */
void *worker_main(void *arg);

/* One loop iteration: waits for events at most until the next timer (and
 * at most max_wait_ms when >= 0), handles them, runs due timers, flushes.
 * Lets tests and fuzzers drive a worker without its thread. */
void worker_iterate(struct worker *w, int max_wait_ms);

/* Called when a router change of ours is applied everywhere. */
typedef void (*pending_done_fn)(struct worker *w, void *arg);

#endif
