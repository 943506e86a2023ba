/*
 * flow.h - flow control: a slow subscriber slows its publishers instead of
 * losing their acknowledged messages.
 *
 * Every session that subscribes gets a flow cell, a small block of atomics
 * shared by every worker. Each router replica's routes of the session point
 * at it (and hold a reference), so a publishing worker reaches it from the
 * match at the cost of one pointer. The cell counts the session's QoS 1/2
 * deliveries that are queued (written by the session's home worker) or on
 * their way to it through an inbox (added by the publishing worker, taken
 * off on arrival), so the count is exact even while the home worker is
 * behind on its inbox.
 *
 * While the session is online and that count is above its high-water mark
 * (max_queued_messages; or its queued bytes above max_queued_bytes), a
 * publisher that feeds it is paused: the message is queued all the same
 * (an accepted message is never dropped for an online session), but from
 * it on every PUBACK / PUBREC for that publisher is held, in order. Its
 * connection is still read, so its own acknowledgements, PINGREQs and
 * DISCONNECT are handled (a client that subscribes to what it publishes
 * drains its own queue while paused); a client respecting its in-flight
 * window stops publishing once the window is full of held messages. One
 * that goes on past max_inflight_messages held messages is no longer read
 * at all. So the queue exceeds max_queued_messages by at most
 * max_inflight_messages + 1 per publisher connection feeding it, plus what
 * sources without a connection add (wills, retained messages, $SYS), which
 * are never paused.
 *
 * Resuming: a paused publisher registers its worker in the cell's waiters
 * mask, then checks again (so a drain in between is not missed). The home
 * worker, whenever the count falls to the low-water mark (half the high
 * one) and someone waits, takes the mask and wakes those workers (at once
 * for itself, through an inbox item for the others); every worker also
 * checks its paused publishers on its timer tick, so nothing hangs on a
 * lost wake-up.
 *
 * Stalls: a subscriber that stops reading altogether must not freeze its
 * publishers. When a publisher has waited for the session (not drained to
 * its low mark) for max_stall_time with nothing leaving its queue, the home
 * worker marks the cell stalled: publishers no longer wait for it and the
 * session falls back to the drop policy of max_queued_messages (counted,
 * logged once), until it drains to the low-water mark again. Offline
 * sessions never pause anybody: max_queued_messages bounds them as in
 * mosquitto. max_stall_time 0 turns flow control off.
 *
 * Share groups: the router gives a group's message to a member that can
 * take it (not full, not stalled), so one slow member does not hold back
 * the group's publishers while another member keeps up. Only when no member
 * can take it does the publisher wait, for the member that got it; a member
 * that has taken nothing for FLOW_SLOW_MS is marked slow, which releases
 * publishers waiting for it through a group and makes the router prefer
 * the others.
 *
 * Cost on the hot path: QoS 0 never touches a cell. A QoS 1/2 delivery to
 * another worker costs one atomic add where it is routed and one subtract
 * where it arrives; queueing and dequeueing one each on the home worker;
 * the check itself is a load or two of the same cache line. Nothing is
 * allocated per message: a pause allocates its list of held
 * acknowledgements once.
 */
#ifndef TERN_BROKER_FLOW_H
#define TERN_BROKER_FLOW_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "tern/error.h"

/* Bits of flow_cell.state; written by the session's home worker only. */
enum {
	FLOW_ONLINE = 1u << 0,  /* a client is connected and flow control is on */
	FLOW_STALLED = 1u << 1, /* fell back to dropping: publishers go on */
	FLOW_BYTES = 1u << 2,   /* queued bytes over max_queued_bytes */
	FLOW_SLOW = 1u << 3,    /* over its mark and nothing taken for FLOW_SLOW_MS */
};

struct flow_cell {
	_Atomic uint32_t refs;
	_Atomic uint32_t state;   /* FLOW_* */
	_Atomic int64_t pending;  /* QoS 1/2 deliveries queued or on their way */
	_Atomic uint64_t waiters; /* bit (worker id % 64) per worker with a paused publisher */
	/* Not flow control, but here because every route carries the cell:
	 * the session is stored (session.c sets it; a routing worker reads it
	 * to record a delivery's row only for a session the store keeps). */
	_Atomic bool stored;
	int64_t high, low; /* marks, fixed at creation */
	/* The home worker's own, for the stall clock (here rather than in the
	 * session, so that sessions which never subscribe stay small). */
	uint64_t over_at;    /* monotonic ms it was first seen not drained; 0: not */
	uint64_t drained_at; /* monotonic ms a message last left the queue */
};

/* A cell with one reference and pending = queued (what the session already
 * holds); high 0 means no mark (no flow control). NULL when out of memory. */
struct flow_cell *flow_cell_new(int64_t queued, uint32_t high);

/* Reference counting, from any thread; NULL is allowed. */
void flow_cell_ref(struct flow_cell *f);
void flow_cell_unref(struct flow_cell *f);

/* True when a publisher that just fed f must wait (f is online, not
 * stalled, and over a mark). One or two relaxed loads. */
static inline bool flow_full(const struct flow_cell *f)
{
	uint32_t st = atomic_load_explicit(&f->state, memory_order_relaxed);
	if ((st & (FLOW_ONLINE | FLOW_STALLED)) != FLOW_ONLINE)
		return false;
	return (st & FLOW_BYTES) ||
	       atomic_load_explicit(&f->pending, memory_order_relaxed) > f->high;
}

/* A session over its mark that has taken nothing for this long is passed
 * over by its share groups even when every member is full, and publishers
 * waiting for it because of a share group go on. */
#define FLOW_SLOW_MS 1000u

/* True when f's session is a good pick for a share group's next message:
 * neither full nor stalled (a stalled one drops what it is given). */
static inline bool flow_takes(const struct flow_cell *f)
{
	return !(atomic_load_explicit(&f->state, memory_order_relaxed) & FLOW_STALLED) &&
	       !flow_full(f);
}

/* True when a publisher waiting for f may go on: f went offline, stalled,
 * or drained to its low-water mark. */
static inline bool flow_drained(const struct flow_cell *f)
{
	uint32_t st = atomic_load(&f->state);
	if ((st & (FLOW_ONLINE | FLOW_STALLED)) != FLOW_ONLINE)
		return true;
	return !(st & FLOW_BYTES) && atomic_load(&f->pending) <= f->low;
}

/* Counts n deliveries more for f (publishing or home worker); returns the
 * new count. */
static inline int64_t flow_add(struct flow_cell *f, int64_t n)
{
	return atomic_fetch_add_explicit(&f->pending, n, memory_order_relaxed) + n;
}

struct worker;
struct conn;
struct session;

/* Home worker: counts n deliveries fewer for f and wakes the workers of
 * paused publishers once the count is at the low-water mark. */
void flow_sub(struct worker *w, struct flow_cell *f, int64_t n);

/* Home worker: changes f's state bits (set, then clear) and wakes every
 * waiting worker when publishers may go on because of it. */
void flow_set_state(struct worker *w, struct flow_cell *f, uint32_t set, uint32_t clear);

/* What route_publish() tells a publisher: the cell of a receiver now over
 * its mark (NULL: none), and whether it was reached through a share group
 * whose every member was full. */
struct flow_hit {
	struct flow_cell *cell;
	bool shared;
};

/* Publishing worker: pauses connection c because the message it just sent
 * went to hit->cell while that was full. Its acknowledgement (type PUBACK
 * or PUBREC, packet_id, reason) and every later one is held until the cell
 * drains (or, for a share group, turns slow: the group's other members
 * are then picked). Returns false, and pauses nothing, when the cell has
 * drained in the meantime (the caller then acknowledges as usual) or when
 * out of memory. */
bool flow_pause(struct conn *c, const struct flow_hit *hit, uint8_t type, uint16_t packet_id,
                uint8_t reason);

/* Holds one more acknowledgement of a paused connection (c->flow set), in
 * order; stops reading c once it holds more than max_inflight_messages.
 * Closes c when out of memory. */
void flow_hold(struct conn *c, uint8_t type, uint16_t packet_id, uint8_t reason);

/* Publishing worker: resumes every paused connection whose cell drained
 * (on a wake-up and on the timer tick): sends the held acknowledgements
 * and handles what the connection has buffered. */
void flow_resume(struct worker *w);

/* Forgets a paused connection that is being freed. */
void flow_forget(struct conn *c);

/* Creates w's list of paused connections (w->flow_paused, private to
 * flow_pause.c). TERN_E_NOMEM when out of memory. */
TERN_MUST_CHECK enum tern_err flow_worker_new(struct worker *w);

/* Whether w has a paused connection (its timer tick then rechecks them). */
bool flow_any_paused(const struct worker *w);

/* Frees the worker's list of paused connections (at shutdown; nothing
 * when there is none). */
void flow_worker_free(struct worker *w);

#endif
