/*
 * cluster_int.h - the state of a cluster node, shared by the files of the
 * cluster module only: node.c (connections, interest, forwarding, the
 * control thread), retained.c (the retained-message stream), durable.c
 * (the messages stream and the durable queues of persistent sessions),
 * clients.c (the clients bucket: who holds a client id), sessions.c (the
 * sessions bucket: the record of each session, on a thread of its own).
 *
 * Who touches what: the fields above `mu` are set by cluster_open() and
 * read-only after; the atomics are counters and connection states any
 * thread reads; what is under `mu` is said at each field; the JetStream
 * part (js, js_ready, the retained consumer) belongs to the control thread,
 * which sets it up once NATS is reachable and again after a failure.
 */
#ifndef TERN_CLUSTER_CLUSTER_INT_H
#define TERN_CLUSTER_CLUSTER_INT_H

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cluster/cluster.h"
#include "cluster/subject.h"
#include "util/map.h"

/* NATS' default max_control_line is 4096 bytes: a PUB line carries the
 * subject, a reply subject and a size. */
#define SUBJECT_MAX 4000u
/* How long a round of the control thread waits for NATS to confirm. */
#define FLUSH_TIMEOUT_MS 2000
/* What libnats may buffer per subscription before it drops (slow
 * consumer): generous, as the broker's queues apply the real bounds. */
#define PENDING_MSGS  (1 << 20)
#define PENDING_BYTES (512 << 20)
/* How soon the control thread tries JetStream again after a failure. */
#define JS_RETRY_MS 500

/* The idle heartbeat of our ordered consumers, the followers of the
 * retained stream and of the clients and nodes buckets. An ordered
 * consumer is one replica, in memory, on one server: it dies with that
 * server however many replicas its stream has, and libnats notices only
 * when no message or heartbeat came for two intervals, then makes it again
 * from the next sequence, and tries again every two intervals until
 * JetStream answers. At libnats' default of 5 s, a node followed nothing
 * for 10 to 30 s after the loss of a nats-server (a retained message set
 * meanwhile reached it that late: test_cluster_more.py); at 1 s it is 2 to
 * 4 s, plus the election of the stream's new leader, for one small
 * message a second per follower. */
#define FOLLOW_HEARTBEAT_NS (1000 * 1000000LL)
/* How long js_Subscribe() of a follower waits for its consumer to be made.
 * Long on purpose: libnats 3.4 (Debian 12) frees the subscription of a
 * create that timed out while the server may still make the consumer and
 * deliver to it, and its read loop can then touch the freed subscription
 * (nats.c issue 637, fixed in 3.5.1): seen as an ASan SEGV in a node whose
 * first create took over 2 s on a loaded machine. A create that succeeds
 * late does not have that race. */
#define FOLLOW_CREATE_WAIT_MS 10000

/* The jsOptions of a follower's js_Subscribe() (FOLLOW_CREATE_WAIT_MS). */
static inline jsOptions follow_js_options(void)
{
	jsOptions o;
	jsOptions_Init(&o);
	o.Wait = FOLLOW_CREATE_WAIT_MS;
	return o;
}

/* Room for a durable consumer's name: "<cluster>_d_", 32 hex digits,
 * "_", the subject's position, NUL. */
#define DURABLE_NAME_MAX (SUBJECT_CLUSTER_MAX + 40)
/* How many cluster_store() messages may wait for JetStream at once. */
#define STORE_MAX_WAITING 65536

struct durable_op;
struct session_op;
struct pubrel_put;

/* The handle of one durable message (cluster.h's struct cluster_ack), or
 * of a PUBREL entry loaded for a session (pubrel.c). Every handle the
 * broker holds is on the node's list (c->acks, under c->ack_mu), so the
 * control thread can report in progress every CLUSTER_ACK_KEEP_MS those
 * whose queue message is not acked yet (a session may hold a message
 * queued or in flight for longer than JetStream's ack wait, and it must
 * not come again while it does), and cluster_close() can detach them all.
 * Under ack_mu: prev, next, acked, put, entry_seq (pubrel.c's answers
 * set them on a libnats thread). */
struct cluster_ack {
	struct cluster *c; /* NULL once detached by cluster_close() */
	struct cluster_ack *prev, *next;
	uint64_t kept_at; /* monotonic ms of the delivery or the last report */
	uint64_t seq;     /* the queue message's sequence in the messages stream */
	uint64_t delivered;
	/* The queue message is acked (after its PUBREL entry was stored),
	 * or there is none (an entry loaded at a bind): no report, no ack. */
	bool acked;
	/* A QoS 2 message: delivered again after its PUBCOMP, it would be
	 * delivered twice [MQTT-4.3.3-3]; its ack is sent as a request and
	 * the handle outlives cluster_ack_done() until JetStream confirmed
	 * the ack (durable_ack.c: settling). */
	bool exact;
	bool confirmed;         /* JetStream answered its ack (or there is none to send) */
	bool done;              /* ended by the broker; on c->settling until confirmed */
	bool keyed;             /* in c->held under key (consumer, stream sequence) */
	struct pubrel_put *put; /* its PUBREL entry's put, JetStream not answered yet */
	uint64_t entry_seq;     /* its PUBREL entry's sequence; 0: none */
	uint64_t token;         /* its ack request's, in c->ack_tokens; 0: none waiting */
	uint64_t asked_at;      /* monotonic ms of the last ack request */
	uint64_t settle_since;  /* monotonic ms of cluster_ack_done() */
	/* A loaded entry's: with no delivery again of its message by then,
	 * JetStream had the message's ack (monotonic ms). */
	uint64_t quiet_at;
	uint8_t *key;        /* into this allocation, klen bytes */
	uint16_t klen, rcap; /* rcap: room of reply, its terminator included */
	char reply[];        /* the $JS.ACK subject; "" for a loaded entry */
};

/* The closure of one NATS subscription. */
struct sub_ref {
	struct cluster *c;
	struct cluster_share share; /* group.len 0: ordinary */
};

struct interest {
	struct interest *next_dirty;
	uint32_t count; /* local subscriptions on (group, filter) */
	bool dirty;     /* on the dirty list */
	bool subscribed;
	natsSubscription *sub[2]; /* a filter ending in '#' needs two subjects */
	uint64_t *waiting;        /* tokens of adds to answer once flushed */
	size_t n_waiting, cap_waiting;
	size_t klen;
	uint16_t glen;
	uint8_t key[]; /* glen (2 bytes), group, filter */
};

struct cluster {
	char prefix[SUBJECT_CLUSTER_MAX + 1];
	char node[128];
	char node_queue[256];
	struct hash_key hk;
	struct log *log;
	struct cluster_cb cb;
	natsOptions *opts_p, *opts_s;
	natsConnection *p, *s;
	struct flusher *flusher; /* writes p's buffer at once (flush.c) */
	atomic_bool up_p, up_s;
	int64_t max_payload;

	pthread_mutex_t mu;
	pthread_cond_t cv;   /* dirty work, or stopping */
	pthread_cond_t done; /* live_subs went to zero */
	struct map interests;
	struct interest *dirty;
	bool stopping;
	pthread_t thread;
	bool thread_started;
	unsigned live_subs;

	atomic_uint_fast64_t reconnects, forwarded, received, local_only, malformed, n_subs;
	atomic_uint_fast64_t retained_in, retained_out;
	atomic_uint_fast64_t broker_dropped; /* cluster_count_drop() */
	unsigned replicas;

	/* The control thread's. */
	jsCtx *js;
	bool js_ready;                  /* streams exist and their consumers run */
	uint64_t js_retry_at;           /* monotonic ms of the next setup attempt */
	natsSubscription *retained_sub; /* ordered consumer of the retained stream */
	atomic_bool retained_synced;    /* replayed up to the stream's end once */
	atomic_bool js_up;              /* js usable by any thread (set once, release) */
	bool started;                   /* cluster_start() ran: JetStream may begin */

	/* durable.c. Under mu: the queue of durable operations, in order,
	 * for the queue thread, which dur_cv wakes (durable_start()). */
	struct durable_op *dur_ops, **dur_tail;
	pthread_cond_t dur_cv;
	pthread_t dur_thread;
	bool dur_started;
	/* The durable messages the broker holds (durable.c), under ack_mu;
	 * detached (c NULL) at cluster_close(), as the broker may drop them
	 * after. */
	pthread_mutex_t ack_mu;
	struct cluster_ack *acks;
	/* Also under ack_mu (durable_ack.c): the handles ended but whose ack
	 * JetStream has not confirmed; every handle of a queue message by
	 * (consumer, stream sequence), so that a delivery again of one this
	 * node holds or completed is not a second message; the ack requests
	 * waiting for their answer (token -> handle), answered on
	 * "<ack_inbox>.<token>" (ack_sub). */
	struct cluster_ack *settling;
	struct map held;
	struct map ack_tokens;
	uint64_t ack_token;
	natsSubscription *ack_sub;
	char ack_inbox[64];
	atomic_uint_fast64_t acks_confirmed, redeliveries_held, settle_given_up;
	/* The queue thread's: operations that wait for JetStream, when
	 * they are tried again, and the bindings (session -> struct
	 * binding). */
	struct durable_op *dur_later, **dur_later_tail;
	uint64_t dur_retry_at;
	struct map bindings;
	/* The context of the messages stream (its publishes report to
	 * durable.c); set by the control thread before js_up. */
	jsCtx *js_store;
	/* Under store_mu: natsMsg pointer -> the token of its store. */
	pthread_mutex_t store_mu;
	struct map stores;
	atomic_uint_fast64_t store_waiting, stored_ok, stored_failed;
	atomic_bool store_used; /* js_store has published (durable_close()) */
	atomic_uint_fast64_t dur_delivered, dur_acked, n_dur_subs;
	/* pubrel.c. The context of the PUBREL stream's puts (its answers
	 * report to pubrel.c), set by the control thread before js_up; the
	 * puts waiting for JetStream (natsMsg pointer -> struct pubrel_put),
	 * under ack_mu; the subscription to the answers of the deletes, on
	 * the reply subject pubrel_inbox. */
	jsCtx *js_pubrel;
	struct map pubrel_puts;
	natsSubscription *pubrel_sub;
	char pubrel_inbox[64];
	atomic_uint_fast64_t pubrel_stored, pubrel_failed, pubrel_loaded, pubrel_deleted;
	atomic_bool pubrel_used;       /* js_pubrel has published (pubrel_close()) */
	jsCtx *js_clients;             /* for claims: any thread once js_up */
	natsSubscription *clients_sub; /* ordered consumer of the clients bucket */

	/* Claims (clients.c), any thread: the newest stamp given or heard
	 * of, and the counters of cluster_stats(). */
	atomic_uint_fast64_t claim_clock;
	atomic_uint_fast64_t claims, claims_seen, taken_over;

	/* Liveness (nodes.c). The nodes thread's: its context, bucket and
	 * consumer. Under nodes_mu: the other nodes heard of (struct peer)
	 * and when our own beat last came back. */
	uint64_t incarnation; /* wall-clock us at cluster_open() */
	jsCtx *js_nodes;
	kvStore *kv_nodes;
	natsSubscription *nodes_sub;
	pthread_t nodes_thread;
	bool nodes_inited, nodes_started;
	pthread_mutex_t nodes_mu;
	pthread_cond_t nodes_cv; /* stopping */
	bool nodes_stopping;
	bool own_adopted; /* adopt_own() is done (nodes thread) */
	struct peer *peers;
	uint64_t own_seen;
	/* The nodes thread's: our beats came back after a silence long
	 * enough for the others to count this node dead; until rejoin_until
	 * (monotonic ms), a pass over the sessions bucket every
	 * REJOIN_EVERY_MS takes back what they adopted of ours
	 * (adopt_rejoin()). rejoin_at: the next pass. */
	uint64_t rejoin_at, rejoin_until;
	/* The beat thread (nodes.c), once the nodes thread has set the
	 * bucket up and put the first beat (beating). */
	pthread_t beat_thread;
	bool beat_started;
	atomic_bool beating;
	/* sessions.c. Under ses_mu: the queue of record operations, in
	 * order, and the stop flag; the rest is the sessions thread's (the
	 * keys it knows: key -> struct ses_key). js_sessions is set on the
	 * control thread before js_up and used by the sessions thread once
	 * js_up is seen. */
	pthread_mutex_t ses_mu;
	pthread_cond_t ses_cv;
	struct session_op *ses_ops, **ses_tail;
	bool ses_stopping, ses_started, ses_retries;
	uint64_t ses_drain_until; /* monotonic ms: the last writes at a stop */
	pthread_t ses_thread;
	struct map ses_keys;
	jsCtx *js_sessions;
	atomic_uint_fast64_t ses_written, ses_read, ses_conflicts, ses_stale;
	atomic_uint_fast64_t live_nodes, nodes_handled, adopted, adopt_lost;
};

static inline struct tern_bytes bytes_of(const char *s)
{
	return (struct tern_bytes){(const uint8_t *)s, strlen(s)};
}

/* flush.c: a thread that writes nc's buffered publishes at once when
 * kicked (the design is at the top of flush.c). TERN_E_NOMEM, TERN_E_SYS
 * (no thread). */
struct flusher;
TERN_MUST_CHECK enum tern_err flush_start(natsConnection *nc, struct flusher **out);

/* flush.c: something was published on the flusher's connection: it goes
 * out now, or with the flush running (any thread; NULL: nothing). */
void flush_kick(struct flusher *f);

/* flush.c: stops the thread and frees f (NULL allowed); before the
 * connection is closed. */
void flush_stop(struct flusher *f);

/* node.c: the completion callback of every NATS subscription of ours,
 * whose closure is a struct sub_ref: frees it and counts the subscription
 * out of live_subs, which cluster_close() waits to see at zero. */
void cluster_sub_done(void *arg);

/* node.c: the rest of making *sub, a subscription with closure ref, whose
 * subscribe call returned st: its pending limits and cluster_sub_done()
 * set, and counted in live_subs. On any failure (st's included) *sub is
 * unsubscribed and NULL and ref freed. Returns the first failure. */
natsStatus cluster_sub_keep(struct cluster *c, natsSubscription **sub, natsStatus st,
                            struct sub_ref *ref);

/* durable.c: reports in progress the durable messages the broker has held
 * for CLUSTER_ACK_KEEP_MS (control thread). */
void durable_keep(struct cluster *c, uint64_t now);

/* durable.c: at a clean stop, once this node's queues are unbound
 * (durable_stop()), gives back to JetStream what the broker holds and its
 * clients did not acknowledge (cluster_close()). */
void durable_nak(struct cluster *c);

/* durable.c: detaches the handles the broker still holds (cluster_close()):
 * dropping or acking them later touches nothing of c. */
void durable_detach(struct cluster *c);

/* retained.c: creates the retained stream and starts following it (control
 * thread, NATS connected). TERN_E_SYS (logged) to be tried again later. */
TERN_MUST_CHECK enum tern_err retained_setup(struct cluster *c);

/* retained.c: stops following the stream (control thread, at close). */
void retained_stop(struct cluster *c);

/* durable.c: creates (or updates) the messages stream and its context
 * (control thread, NATS connected). TERN_E_SYS (logged) to be tried again
 * later. Safe to call again after a failure. */
TERN_MUST_CHECK enum tern_err durable_setup(struct cluster *c);

/*
 * durable.c: the names of the durable consumers of (client_id, filter)
 * (plain) in cluster's messages stream, one per subject of the filter
 * (subject_of_filter(): two for one ending in "/#"), into names[0..*n).
 * The same on every node and in every version (a node finds a session's
 * queues by them): "<cluster>_d_<SipHash-2-4 of (cluster, client id,
 * filter) under two fixed keys, 32 hex digits>_<position>", letters,
 * digits, '_' and '-' only, as NATS wants of a consumer name.
 * TERN_E_INVALID for a bad cluster name, a filter NATS cannot carry
 * (its subject over SUBJECT_MAX) or a client id over 65535 bytes,
 * TERN_E_NOMEM. The filter's syntax is the caller's to check.
 */
/* durable.c: the prefix every queue name of client_id starts with. */
TERN_MUST_CHECK enum tern_err
durable_client_prefix(const char *cluster, struct tern_bytes client_id, char out[DURABLE_NAME_MAX]);

TERN_MUST_CHECK enum tern_err durable_names(const char *cluster, struct tern_bytes client_id,
                                            struct tern_bytes filter,
                                            char names[2][DURABLE_NAME_MAX], size_t *n);

/* durable.c: the messages stream's subject of a topic's subject (subject.h:
 * "<cluster>.m.a.b" -> "<cluster>.q.m.a.b") into out (room for SUBJECT_MAX
 * + 8): what durable_store.c publishes to and the queues' filters. */
void durable_queue_subject(const struct cluster *c, const char *subject, char *out);

/* durable_store.c: JetStream's answer to a cluster_store() or
 * cluster_retain() (the store context's publish-async ack handler, arg the
 * cluster; libnats' thread). */
void durable_on_stored(jsCtx *js, natsMsg *nm, jsPubAck *pa, jsPubAckErr *pae, void *arg);

/* durable.c: starts the queue thread, which runs the durable operations
 * (consumers made and deleted, bindings) in order. It is not the control
 * thread: a JetStream request waits up to JS_REQUEST_WAIT_MS for its
 * answer, as long as a stream elects a new leader after the loss of a
 * nats-server, and every SUBACK waits for the control thread's interest
 * rounds (a SUBACK that waits for a queue waits for this thread too).
 * TERN_E_SYS when it cannot start. */
TERN_MUST_CHECK enum tern_err durable_start(struct cluster *c);

/* durable.c: at close, with c->stopping set: wakes the queue thread and
 * joins it, then unsubscribes the bindings and frees the queued
 * operations (no callback). */
void durable_stop(struct cluster *c);

/* durable.c: at close, once the connections are closed: forgets the
 * stores JetStream did not answer, waits for a store callback that is
 * running, frees the context. */
void durable_close(struct cluster *c);
/* clients.c: creates the clients bucket and starts following its changes
 * (control thread, NATS connected). TERN_E_SYS (logged) to be tried again
 * later. */
TERN_MUST_CHECK enum tern_err clients_setup(struct cluster *c);

/* clients.c: stops following the bucket (at close). */
void clients_stop(struct cluster *c);

/* clients.c: the longest client id that has a key, and the key length it
 * takes (unpadded base64url: 4 characters per 3 bytes). */
#define CLIENT_ID_KEY_MAX   2048u
#define CLIENT_KEY_LEN(len) (((size_t)(len)*4 + 2) / 3)

/* clients.c: the bucket key of a client id: unpadded base64url, whose
 * alphabet ([A-Za-z0-9_-]) is within the characters NATS allows in a key,
 * never starts with '.' and maps different ids to different keys. key has
 * room for CLIENT_KEY_LEN(id.len) + 1 bytes; the key is NUL-terminated.
 * TERN_E_TOO_LARGE for an id over CLIENT_ID_KEY_MAX, TERN_E_INVALID for an
 * empty one. */
TERN_MUST_CHECK enum tern_err clients_key(struct tern_bytes id, char *key, size_t *key_len);

/* clients.c: the client id of a key (the inverse of clients_key(): only
 * the keys it makes decode). out has room for CLIENT_ID_KEY_MAX bytes.
 * TERN_E_INVALID for anything else. */
TERN_MUST_CHECK enum tern_err clients_id(const char *key, size_t key_len, uint8_t *out,
                                         size_t *out_len);

/* nodes.c: sets up the liveness state (cluster_open()). */
void nodes_init(struct cluster *c);

/* nodes.c: starts the nodes thread (cluster_start()): beats, follows the
 * nodes bucket once JetStream is set up, acts for dead nodes.
 * TERN_E_SYS when the thread cannot start. */
TERN_MUST_CHECK enum tern_err nodes_start(struct cluster *c);

/* nodes.c: at close, before the connections close: stops the thread,
 * marks this node as left in the bucket (a clean stop), unsubscribes. */
void nodes_stop(struct cluster *c);

/* clients.c: whether the last claim of key (clients_key() of a client id)
 * in the clients bucket is of a node other than node, with a stamp above
 * stamp: the client connected again somewhere since (a request on js;
 * false when the bucket cannot tell). */
/* clients.c: whether the last claim of key is a clean start with a stamp
 * above stamp: a session whose record carries an older claim ended then
 * (a request on js; false when the bucket cannot tell). */
bool clients_clean_since(struct cluster *c, jsCtx *js, const char *key, uint64_t stamp);

bool clients_claimed_since(struct cluster *c, jsCtx *js, const char *key, struct tern_bytes node,
                           uint64_t stamp);

/* nodes.c: false when the node is stopping (the nodes thread, during a
 * long piece of work: the work is to stop too). */
bool nodes_going(struct cluster *c);

/* adopt.c: adopts every session whose record names node dead as its
 * holder (nodes thread): offline since died_at (wall ms) if the record
 * says online. TERN_OK once every such record is adopted here or by
 * another node; TERN_E_SYS when the bucket could not be read to its end or
 * a write failed (tried again later; what was adopted stays adopted). */
TERN_MUST_CHECK enum tern_err adopt_sessions(struct cluster *c, struct tern_bytes dead,
                                             int64_t died_at);

/* adopt.c: at start, acts for this node's earlier run: adopts the records
 * that name this node and were written before this run (offline since
 * this run started), and tells the broker of every record that names
 * another node (held_elsewhere). Results as adopt_sessions(). */
TERN_MUST_CHECK enum tern_err adopt_own(struct cluster *c);

/* adopt.c: this node was cut off long enough for another node to count it
 * dead and adopt its sessions, whose clients may still be connected here:
 * tells the broker of every record that names another node as its holder
 * (rejoined, with the record's claim stamp), which takes back those it
 * still holds and drops the rest. Results as adopt_sessions(). */
TERN_MUST_CHECK enum tern_err adopt_rejoin(struct cluster *c);

/* nodes.c: frees what nodes_init() and the thread made (after the
 * connections closed and live_subs went to zero). */
void nodes_free(struct cluster *c);
/* sessions.c: creates the sessions bucket (control thread, NATS
 * connected). TERN_E_SYS (logged) to be tried again later. */
TERN_MUST_CHECK enum tern_err sessions_setup(struct cluster *c);

/* sessions.c: starts the sessions thread (cluster_start()). TERN_E_SYS
 * when it cannot. */
TERN_MUST_CHECK enum tern_err sessions_start(struct cluster *c);

/* sessions.c: at close, before the connections close: stops the thread,
 * frees what is queued (not answered) and the context. */
void sessions_stop(struct cluster *c);
/* pubrel.c: creates the PUBREL stream, its context and the subscription
 * to the deletes' answers (control thread, NATS connected; safe to call
 * again after a failure). TERN_E_SYS (logged) to be tried again later. */
TERN_MUST_CHECK enum tern_err pubrel_setup(struct cluster *c);

/* pubrel.c: the PUBREL entries of client_id, each as a handle for the
 * broker (acked, entry_seq its sequence, seq the queue message's), in the
 * order they were stored, into *out (malloc'd; *n of them) (control
 * thread). TERN_E_SYS when JetStream did not answer them all (nothing
 * then in *out), TERN_E_INVALID for a client id with no key, TERN_E_NOMEM. */
TERN_MUST_CHECK enum tern_err pubrel_load(struct cluster *c, struct tern_bytes client_id,
                                          struct cluster_pubrel **out, size_t *n);

/* durable_ack.c: a new handle on c's list (the queue message's ack
 * subject reply, "" for none: acked; consumer NULL for a PUBREL entry
 * loaded at a bind), NULL when out of memory or when this node holds or
 * completed that message of that consumer already (a delivery again,
 * which it acks itself when completed). exact: a
 * QoS 2 message. */
struct cluster_ack *durable_ack_new(struct cluster *c, const char *reply, const char *consumer,
                                    uint64_t seq, uint64_t delivered, bool exact);

/* durable_ack.c: a new handle on c's list for a PUBREL entry loaded at a
 * bind, of the queue message seq of consumer (NULL: not known). Known, its
 * message delivered again is taken by the handle and acked; without such
 * a delivery within the ack wait (and a margin), the message is counted
 * acked already. NULL when out of memory. */
struct cluster_ack *durable_ack_entry(struct cluster *c, const char *consumer, uint64_t seq);

/* durable_ack.c: acks the queue message of handle a (ack_mu held): a
 * request whose answer confirms it when the ack subscription is up, else
 * a plain publish (confirmed as sent). */
void durable_ack_send(struct cluster *c, struct cluster_ack *a);

/* durable_ack.c: frees a, ended and settled, deleting its PUBREL entry
 * once nothing can bring its message back (ack_mu held). */
void durable_settle(struct cluster *c, struct cluster_ack *a);

/* durable_ack.c: subscribes to the answers of the ack requests (control
 * thread, NATS connected); TERN_E_SYS to be tried again. */
TERN_MUST_CHECK enum tern_err durable_ack_setup(struct cluster *c);

/* durable_ack.c: at close, stops the answers' subscription (before the
 * connections close). */
void durable_ack_stop(struct cluster *c);

/* pubrel.c: the handle of put p ended (cluster_ack_done()): the entry is
 * deleted once stored. ack_mu held. */
void pubrel_put_done(struct pubrel_put *p);

/* pubrel.c: the handle of put p was dropped (cluster_ack_drop()): the put
 * goes on alone (once stored, the entry stands for the message). ack_mu
 * held. */
void pubrel_put_dropped(struct pubrel_put *p);

/* pubrel.c: deletes the PUBREL entry at seq (ack_mu held; any thread). */
void pubrel_delete(struct cluster *c, uint64_t seq);

/* pubrel.c: deletes every PUBREL entry of client_id (a clean start;
 * control thread). false when JetStream did not answer (to be tried
 * again). */
bool pubrel_forget(struct cluster *c, struct tern_bytes client_id);

/* pubrel.c: stops the subscription to the deletes' answers (at close). */
void pubrel_stop(struct cluster *c);

/* pubrel.c: at close, once the connections are closed and before
 * durable_detach(): forgets the puts JetStream did not answer (their
 * handles no longer point at them) and frees the context. */
void pubrel_close(struct cluster *c);

/* The subject of client_id's PUBREL entry for packet_id ("*": all of
 * them): "<cluster>.pr.<clients_key(client_id)>.<packet id>", into out
 * (room for PUBREL_SUBJECT_MAX). TERN_E_INVALID / TERN_E_TOO_LARGE as
 * clients_key(). */
#define PUBREL_SUBJECT_MAX (SUBJECT_CLUSTER_MAX + 16 + CLIENT_KEY_LEN(CLIENT_ID_KEY_MAX))
TERN_MUST_CHECK enum tern_err pubrel_subject(const char *cluster, struct tern_bytes client_id,
                                             int packet_id, char *out);

/* The packet id of an entry's subject made by pubrel_subject() (the last
 * token: 1 to 65535 in decimal, no leading zero), 0 for anything else. */
uint16_t pubrel_subject_id(const char *subject);

#endif
