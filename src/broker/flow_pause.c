/*
 * flow_pause.c - flow control, the publisher's side: a publishing
 * connection whose QoS 1/2 message went to a subscriber over its mark has
 * its acknowledgements held and, past max_inflight_messages of them, its
 * input paused, until the subscriber's cell drains (flow.c wakes this
 * worker) or the cell gives up on the subscriber. The design is in flow.h.
 *
 * The publishing worker keeps the list of its paused connections (struct
 * flow_pause in w->flow_paused, a struct private to this file): pausing and resuming touch only that worker's
 * own connections, so they need no lock. Kept apart from the cells so that
 * what routers, routes and sessions use (flow.c) calls no connection code.
 */
#include "broker/flow.h"

#include <stdlib.h>

#include "broker/broker.h"
#include "broker/conn.h"
#include "broker/conn_internal.h"
#include "broker/session.h"
#include "broker/worker.h"
#include "tern/codec.h"

struct flow_ack {
	uint16_t packet_id;
	uint8_t type; /* TERN_PUBACK or TERN_PUBREC */
	uint8_t reason;
};

/* One paused connection: c->flow points here, w->flow_paused->v[at] too. */
struct flow_pause {
	struct conn *c;
	struct flow_cell *cell; /* one reference */
	struct flow_ack *acks;  /* held, in order */
	uint32_t n, cap;
	size_t at;
	bool shared; /* paused for a share group: a slow member releases it */
};

/* A worker's paused connections (w->flow_paused). */
struct flow_paused {
	struct flow_pause **v;
	size_t n, cap;
};

enum tern_err flow_worker_new(struct worker *w)
{
	w->flow_paused = calloc(1, sizeof(*w->flow_paused));
	return w->flow_paused ? TERN_OK : TERN_E_NOMEM;
}

bool flow_any_paused(const struct worker *w)
{
	return w->flow_paused->n != 0;
}

static bool may_go_on(const struct flow_pause *p)
{
	return flow_drained(p->cell) || (p->shared && (atomic_load(&p->cell->state) & FLOW_SLOW));
}

bool flow_pause(struct conn *c, const struct flow_hit *hit, uint8_t type, uint16_t packet_id,
                uint8_t reason)
{
	struct worker *w = c->w;
	struct flow_paused *l = w->flow_paused;
	struct flow_cell *f = hit->cell;
	if (c->flow)
		return false;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		struct flow_pause **v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return false; /* the queue goes over its mark a little more */
		l->v = v;
		l->cap = cap;
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
	p->at = l->n;
	p->shared = hit->shared;
	l->v[l->n++] = p;
	c->flow = p;
	stat_add(&w->stats, STAT_FLOW_PAUSES, 1);
	stat_set(&w->stats, STAT_PUBLISHERS_PAUSED, l->n);
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
	struct flow_paused *l = w->flow_paused;
	struct flow_pause *last = l->v[--l->n];
	l->v[p->at] = last;
	last->at = p->at;
	stat_set(&w->stats, STAT_PUBLISHERS_PAUSED, l->n);
}

static void pause_free(struct flow_pause *p)
{
	flow_cell_unref(p->cell);
	free(p->acks);
	free(p);
}

void flow_resume(struct worker *w)
{
	struct flow_paused *l = w->flow_paused;
	w->flow_recheck = false;
	for (size_t i = 0; i < l->n;) {
		struct flow_pause *p = l->v[i];
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
	struct flow_paused *l = w->flow_paused;
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++) {
		l->v[i]->c->flow = NULL;
		pause_free(l->v[i]);
	}
	free(l->v);
	free(l);
	w->flow_paused = NULL;
}
