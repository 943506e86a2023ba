/*
 * flow.c - flow control between publishers and slow subscribers; the
 * design is in flow.h.
 *
 * Two sides. The session's home worker owns the cell's state and takes
 * deliveries off its count (flow_sub, flow_set_state); any worker adds to
 * the count when it routes a QoS 1/2 delivery there (flow_add). The
 * publishing worker keeps the list of its paused connections (struct
 * flow_pause in w->paused): pausing and resuming touch only that worker's
 * own connections, so they need no lock.
 *
 * A wake-up must not be lost between "the publisher decides to wait" and
 * "the subscriber drains": the publisher sets its bit in the waiters mask
 * and then reads the count; the home worker writes the count and then reads
 * the mask (all sequentially consistent), so at least one of them sees the
 * other. The timer tick rechecks every paused publisher anyway.
 */
#include "broker/flow.h"

#include <stdlib.h>

#include "broker/broker.h"
#include "broker/conn.h"
#include "broker/session.h"
#include "broker/stats.h"
#include "broker/worker.h"
#include "tern/codec.h"

struct flow_ack {
	uint16_t packet_id;
	uint8_t type; /* TERN_PUBACK or TERN_PUBREC */
	uint8_t reason;
};

/* One paused connection: c->flow points here, w->paused[at] too. */
struct flow_pause {
	struct conn *c;
	struct flow_cell *cell; /* one reference */
	struct flow_ack *acks;  /* held, in order */
	uint32_t n, cap;
	size_t at;
	bool shared; /* paused for a share group: a slow member releases it */
};

static bool may_go_on(const struct flow_pause *p)
{
	return flow_drained(p->cell) || (p->shared && (atomic_load(&p->cell->state) & FLOW_SLOW));
}

struct flow_cell *flow_cell_new(int64_t queued, uint32_t high)
{
	struct flow_cell *f = malloc(sizeof(*f));
	if (!f)
		return NULL;
	atomic_init(&f->refs, 1);
	atomic_init(&f->state, 0);
	atomic_init(&f->pending, queued);
	atomic_init(&f->waiters, 0);
	atomic_init(&f->stored, false);
	f->over_at = 0;
	f->drained_at = 0;
	/* No mark: a count never reaches it. */
	f->high = high ? (int64_t)high : INT64_MAX;
	f->low = high ? (int64_t)high / 2 : INT64_MAX;
	return f;
}

void flow_cell_ref(struct flow_cell *f)
{
	if (f)
		atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

void flow_cell_unref(struct flow_cell *f)
{
	if (f && atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
		free(f);
}

/* Wakes every worker in f's waiters mask: itself through a flag handled
 * before it sleeps (we may be deep inside a subscriber's packet handler),
 * the others through their inboxes. */
static void wake(struct worker *w, struct flow_cell *f)
{
	uint64_t mask = atomic_exchange(&f->waiters, 0);
	struct broker *b = w->broker;
	if (!mask || atomic_load_explicit(&b->stop, memory_order_relaxed))
		return;
	for (unsigned i = 0; i < b->n_workers; i++) {
		if (!(mask & (UINT64_C(1) << (i % 64))))
			continue;
		if (i == w->id) {
			w->flow_recheck = true;
			continue;
		}
		/* Without memory the other worker finds out on its tick. */
		struct inbox_item *it = calloc(1, sizeof(*it));
		if (!it)
			continue;
		it->kind = INBOX_FLOW_WAKE;
		worker_outbox(w, i, it);
	}
}

void flow_sub(struct worker *w, struct flow_cell *f, int64_t n)
{
	int64_t left = atomic_fetch_sub(&f->pending, n) - n;
	if (left > f->low)
		return;
	if (atomic_load_explicit(&f->state, memory_order_relaxed) & FLOW_STALLED) {
		/* The subscriber reads again: back to slowing its publishers
		 * (which needs no wake-up: they are not waiting). */
		atomic_fetch_and(&f->state, ~(uint32_t)FLOW_STALLED);
	}
	if (atomic_load(&f->waiters))
		wake(w, f);
}

void flow_set_state(struct worker *w, struct flow_cell *f, uint32_t set, uint32_t clear)
{
	uint32_t st = atomic_load_explicit(&f->state, memory_order_relaxed);
	atomic_store(&f->state, (st | set) & ~clear);
	/* A slow member releases publishers paused for its share group. */
	if (atomic_load(&f->waiters) && (flow_drained(f) || (set & FLOW_SLOW)))
		wake(w, f);
}

bool flow_pause(struct conn *c, const struct flow_hit *hit, uint8_t type, uint16_t packet_id,
                uint8_t reason)
{
	struct worker *w = c->w;
	struct flow_cell *f = hit->cell;
	if (c->flow)
		return false;
	if (w->n_paused == w->cap_paused) {
		size_t cap = w->cap_paused ? w->cap_paused * 2 : 8;
		struct flow_pause **v = realloc(w->paused, cap * sizeof(*v));
		if (!v)
			return false; /* the queue goes over its mark a little more */
		w->paused = v;
		w->cap_paused = cap;
	}
	atomic_fetch_or(&f->waiters, UINT64_C(1) << (w->id % 64));
	struct flow_pause probe = {.cell = f, .shared = hit->shared};
	if (may_go_on(&probe))
		return false;
	/* One allocation per pause, not per message: a pause lasts until
	 * the receiver has taken half its queue. */
	struct flow_pause *p = calloc(1, sizeof(*p));
	struct flow_ack *acks = malloc(8 * sizeof(*acks));
	if (!p || !acks) {
		free(p);
		free(acks);
		return false;
	}
	flow_cell_ref(f);
	p->c = c;
	p->cell = f;
	p->acks = acks;
	p->cap = 8;
	p->at = w->n_paused;
	p->shared = hit->shared;
	w->paused[w->n_paused++] = p;
	c->flow = p;
	stat_add(&w->stats, STAT_FLOW_PAUSES, 1);
	stat_set(&w->stats, STAT_PUBLISHERS_PAUSED, w->n_paused);
	flow_hold(c, type, packet_id, reason);
	return true;
}

void flow_hold(struct conn *c, uint8_t type, uint16_t packet_id, uint8_t reason)
{
	struct flow_pause *p = c->flow;
	if (p->n == p->cap) {
		struct flow_ack *v = realloc(p->acks, (size_t)p->cap * 2 * sizeof(*v));
		if (!v) {
			/* Better unacknowledged than out of order. */
			conn_close(c, TERN_RC_UNSPECIFIED, "out of memory");
			return;
		}
		p->acks = v;
		p->cap *= 2;
	}
	p->acks[p->n++] = (struct flow_ack){.packet_id = packet_id, .type = type, .reason = reason};
	/* A client that respects its in-flight window has stopped by now;
	 * one that does not is no longer read. */
	if (p->n > c->w->broker->cfg.max_inflight_messages && !c->input_paused)
		conn_pause_input(c, true);
}

/* Takes p out of its worker's list. */
static void unlist(struct worker *w, struct flow_pause *p)
{
	struct flow_pause *last = w->paused[--w->n_paused];
	w->paused[p->at] = last;
	last->at = p->at;
	stat_set(&w->stats, STAT_PUBLISHERS_PAUSED, w->n_paused);
}

static void pause_free(struct flow_pause *p)
{
	flow_cell_unref(p->cell);
	free(p->acks);
	free(p);
}

void flow_resume(struct worker *w)
{
	w->flow_recheck = false;
	for (size_t i = 0; i < w->n_paused;) {
		struct flow_pause *p = w->paused[i];
		if (!may_go_on(p)) {
			/* Still waiting. A wake-up took every bit (it may have
			 * been for a slow share group member, or for another
			 * worker): set ours again, then look once more. The
			 * home worker also reads the bit to know that someone
			 * waits (its stall clock). */
			atomic_fetch_or(&p->cell->waiters, UINT64_C(1) << (w->id % 64));
			if (!may_go_on(p)) {
				i++;
				continue;
			}
		}
		/* Taken out before the connection runs again: handling its
		 * buffered packets may pause it anew (at the end of the list,
		 * on a cell that is full, so this loop ends). */
		unlist(w, p);
		struct conn *c = p->c;
		c->flow = NULL;
		bool was_read = !c->input_paused;
		if (c->state == CONN_ACTIVE) {
			conn_pause_input(c, false);
			/* The pause is ours: it does not count against
			 * keep-alive. In order, and each still after the
			 * commit of what it acknowledges. */
			c->last_rx = w->now;
			for (uint32_t k = 0; k < p->n && c->state == CONN_ACTIVE; k++)
				session_ack(c->sink.session, (enum tern_packet_type)p->acks[k].type,
				            p->acks[k].packet_id, p->acks[k].reason, true);
			if (!was_read && c->state == CONN_ACTIVE)
				(void)conn_process(c);
		}
		pause_free(p);
	}
}

void flow_forget(struct conn *c)
{
	struct flow_pause *p = c->flow;
	if (!p)
		return;
	unlist(c->w, p);
	c->flow = NULL;
	pause_free(p);
}

void flow_worker_free(struct worker *w)
{
	for (size_t i = 0; i < w->n_paused; i++) {
		w->paused[i]->c->flow = NULL;
		pause_free(w->paused[i]);
	}
	free(w->paused);
	w->paused = NULL;
	w->n_paused = w->cap_paused = 0;
}
