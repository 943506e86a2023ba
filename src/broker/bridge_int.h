/*
 * bridge_int.h - what bridge.c (the remote side, the bridge's life) and
 * bridge_local.c (the local session, its sink, topic mapping) share: the
 * bridge itself. Private to the bridge module; bridge.h is its interface to
 * the worker, and bridge.c's top comment holds the design.
 */
#ifndef TERN_BROKER_BRIDGE_INT_H
#define TERN_BROKER_BRIDGE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/broker.h"
#include "broker/config_bridge.h"
#include "broker/sink.h"
#include "broker/worker.h"
#include "tern/tern.h"
#include "util/log.h"
#include "util/map.h"

struct flow_cell;
struct msg;

/* The full topic strings a bridge builds: a prefix and a topic. */
#define TOPIC_BUF (BRIDGE_PREFIX_MAX + 65536)

enum bridge_state {
	BRIDGE_WAIT,       /* not connected; (re)start at restart_at */
	BRIDGE_CONNECTING, /* connect_start done, no CONNACK yet */
	BRIDGE_UP,         /* CONNACK accepted */
	BRIDGE_IDLE,       /* lazy: stopped, the local session offline, queueing */
	BRIDGE_DONE,       /* once: ended, never restarted */
};

/* How often a bridge on a secondary address tries the main one (mosquitto:
 * every 5 s), and how long one such TCP connect may take. */
#define PRIMARY_RETRY_MS 5000
#define PRIMARY_PROBE_MS 2000

/* A local acknowledgement waiting for bridge_run(); or, in struct
 * bridge.held, one to the remote held by flow control. */
struct local_ack {
	uint8_t type; /* TERN_PUBACK, TERN_PUBREC, TERN_PUBCOMP */
	uint8_t reason;
	uint16_t packet_id;
};

/* What goes to the remote: a message the local session delivered, or its
 * release (PUBREL), or a notification of the bridge's own. The packet id is
 * the local session's, on the remote too (one to one, bridge.c), so what the
 * store keeps of the local session says where each message is on the
 * remote. An entry goes through b->pend, in the order the local session
 * sent them, to libtern (at once, unless its packet id is held by one of
 * the bridge's own packets); a QoS 1/2 one is then in b->out until the
 * remote completes it. */
struct out_entry {
	struct out_entry *next; /* in b->pend */
	uint16_t id;            /* the packet id, both sides; 0 for QoS 0 */
	uint8_t qos;
	bool retain;
	bool dup;     /* a resend: DUP on the remote too */
	bool release; /* a PUBREL of the local session's, not a PUBLISH */
	/* A release that found nothing of its id in b->out when the local
	 * session sent it: the local session resumed at PUBREL (after a
	 * restart of ternd), so libtern is to release an id it never saw. */
	bool restored;
	/* QoS 2: the local session has the remote's PUBREC (it is waiting for
	 * PUBCOMP), so the end of the remote's flow is the end of its own. */
	bool local_rec;
	bool own;        /* a notification: the local session knows nothing of it */
	struct msg *msg; /* one reference; NULL for a notification or a release */
};

struct bridge {
	/* The local side: the session's connection, as handlers see it. */
	struct sink sink;
	struct worker *w;
	const struct bridge_cfg *cfg;
	char remote_id[512];
	char local_id[520];
	char note_topic[600];
	bool local_cleansession;

	struct tern_client *c;
	enum bridge_state state;
	int fd;           /* registered with epoll, -1: none */
	uint32_t ev_mask; /* the events it is registered for */
	uint64_t restart_at;
	uint64_t step_at;  /* call tern_client_step() then (0: not needed) */
	uint32_t sleep_ms; /* last back-off, for the jitter */
	uint64_t rng;
	bool private_refused; /* the remote refused try_private's bit */
	size_t cur;           /* the address in use, or tried next */
	/* A TCP connect to addresses[0] while on another one (not
	 * round_robin): -1, or in progress since probe_started. */
	int probe_fd;
	uint64_t probe_at, probe_started;
	bool leaving;          /* our DISCONNECT is on its way: no restart */
	bool attached_once;    /* the local session was made this run */
	uint64_t last_traffic; /* a PUBLISH forwarded, either way (lazy) */

	bool local_ok;      /* the local session is attached through sink */
	bool local_closing; /* the session let the sink go: detach in run */
	struct map out;     /* packet id -> struct out_entry, what libtern has */
	/* What the local session sent that has not gone to libtern yet, in
	 * order: waiting for its packet id, which one of the bridge's own
	 * packets holds (TERN_E_BUSY). */
	struct out_entry *pend_head, *pend_tail;
	bool pend_running;
	uint16_t note_id; /* the next packet id tried for a notification */
	struct local_ack *acks;
	size_t n_acks, cap_acks;
	/* Flow control (flow.h): what came from the remote went to a local
	 * subscriber over its mark, so the acknowledgements to the remote are
	 * held, in order, until its cell drains; the remote's own in-flight
	 * window then stops it, as a paused client stops. */
	struct flow_cell *hold; /* one reference; NULL: not holding */
	bool hold_shared;
	struct local_ack *held;
	size_t n_held, cap_held;
	uint64_t forwarded_in, forwarded_out, dropped;
};

static inline struct bridge *bridge_of(struct sink *k)
{
	return (struct bridge *)((char *)k - offsetof(struct bridge, sink));
}

static inline struct log *blog(const struct bridge *b)
{
	return &b->w->broker->log;
}

/* ---- bridge_local.c: topics, the local session and its sink ---- */

/* The filter of topic line t on one side (local: the local one): prefix
 * then pattern (or the prefix alone for an empty pattern), into out. */
void bridge_side_filter(const struct bridge_topic *t, bool local, char *out, size_t cap);

/* Maps topic, seen on one side (from_local: the local one), to the other
 * side by the first topic line of a matching direction, into out. False
 * when no line maps it (or it does not fit). */
bool bridge_map_topic(const struct bridge *b, struct tern_bytes topic, bool from_local, char *out,
                      size_t cap);

/* Queues an acknowledgement (PUBACK, PUBREC, PUBCOMP; reason: a PUBREC
 * >= 0x80 ends the local flow) for the local session, handed over by
 * bridge_acks_run(); out of memory: logged and dropped (the session resends
 * at its resume). */
void bridge_ack_queue(struct bridge *b, uint8_t type, uint16_t packet_id, uint8_t reason);

/* Hands the queued acknowledgements to the local session, in order. */
void bridge_acks_run(struct bridge *b);

/* Publishes the bridge's state ("1" up, "0" down) locally, retained, when
 * notifications are on. */
void bridge_notify_local(struct bridge *b, bool up);

/* Frees an entry of b->out and its message reference. */
void bridge_out_entry_free(struct out_entry *e);

/* Releases the acknowledgements to the remote held by flow control once
 * the receiver they wait for drained (call while b->hold). */
void bridge_hold_run(struct bridge *b);

/* Makes or resumes the local session through b->sink and subscribes it to
 * the local side of the "out" lines; b->local_ok says whether it worked. */
void bridge_local_attach(struct bridge *b);

/* Lets the local session go (kept when persistent, as a connection's is),
 * dropping what was queued or held for it. */
void bridge_local_detach(struct bridge *b);

/* ---- bridge.c ---- */

/* Sends e's message to the remote with its packet id (again, when the
 * remote lost our session); a QoS 1/2 entry goes into b->out (owned there
 * from then on). TERN_E_CLOSED without a connection (QoS 0),
 * TERN_E_TOO_LARGE over bridge_max_packet_size or the remote's maximum,
 * TERN_E_NOT_FOUND when no topic line maps it, TERN_E_BUSY when one of the
 * bridge's own packets holds the id, TERN_E_NOMEM. */
TERN_MUST_CHECK enum tern_err bridge_out_send(struct bridge *b, struct out_entry *e);

/* Appends e (a PUBLISH or a release from the local session; taken) to
 * b->pend and sends what may go. The local session sends a QoS 2 PUBLISH
 * and a PUBREL only once the store has committed their state
 * (session_out.c), so what reaches the remote is never ahead of the
 * store. */
void bridge_pend_push(struct bridge *b, struct out_entry *e);

/* Sends the head of b->pend to libtern while it may go. */
void bridge_pend_run(struct bridge *b);

/* Drops b->pend (the local session went: it resends on its resume). */
void bridge_pend_clear(struct bridge *b);

#endif
