/*
 * stats.h - counters of one worker, for $SYS topics and /metrics.
 *
 * Each worker owns its counters and is their only writer; readers on other
 * threads (the $SYS publisher, the metrics endpoint) sum them over the
 * workers. Single-writer counters need no atomic read-modify-write: a
 * relaxed load and store of the owner compiles to plain moves, so counting
 * costs the hot path nothing but the addition, while readers still never
 * see a torn value.
 */
#ifndef TERN_BROKER_STATS_H
#define TERN_BROKER_STATS_H

#include <stdatomic.h>
#include <stdint.h>

enum stat_id {
	STAT_BYTES_IN,
	STAT_BYTES_OUT,
	STAT_PUB_IN_Q0, /* PUBLISH received, by QoS */
	STAT_PUB_IN_Q1,
	STAT_PUB_IN_Q2,
	STAT_PUB_OUT_Q0, /* PUBLISH sent, by QoS */
	STAT_PUB_OUT_Q1,
	STAT_PUB_OUT_Q2,
	STAT_PKT_IN,  /* all packets received */
	STAT_PKT_OUT, /* all packets sent */
	STAT_DROP_QUEUE_FULL,
	STAT_DROP_SLOW_QOS0,
	STAT_DROP_EXPIRED,
	STAT_DROP_TOO_LARGE,
	STAT_DROP_STALLED,   /* QoS 1/2 over the bound of a stalled online session */
	STAT_DROP_NO_MEMBER, /* for a share group NATS chose us for, left meanwhile */
	STAT_DROP_MEMORY,    /* incoming, while the heap is over memory_limit */
	STAT_FLOW_PAUSES,    /* publishers paused for a full session (flow.h) */
	STAT_FLOW_STALLS,    /* sessions that fell back to dropping (max_stall_time) */
	STAT_CONN_ACCEPTED,
	STAT_CONN_REFUSED,
	STAT_SESSIONS_EXPIRED,
	STAT_PASSWORD_CHECKS, /* password hashes computed for CONNECTs */
	STAT_LOOP_BUSY_US,    /* time spent handling events */
	STAT_LOOP_TOTAL_US,
	STAT_LOOP_UTIL_PERMILLE, /* busy share of the last second */
	/* Gauges: current values, set by the owner. */
	STAT_SESSIONS,
	STAT_SESSIONS_ONLINE,
	STAT_SUBSCRIPTIONS,     /* in this worker's router replica */
	STAT_QUEUED,            /* messages queued or in flight in its sessions */
	STAT_PUBLISHERS_PAUSED, /* connections paused by flow control now */
	STAT_COUNT
};

struct worker_stats {
	_Atomic uint64_t v[STAT_COUNT];
};

/* Owner only: adds n to a counter. */
static inline void stat_add(struct worker_stats *s, enum stat_id id, uint64_t n)
{
	uint64_t cur = atomic_load_explicit(&s->v[id], memory_order_relaxed);
	atomic_store_explicit(&s->v[id], cur + n, memory_order_relaxed);
}

/* Owner only: sets a gauge. */
static inline void stat_set(struct worker_stats *s, enum stat_id id, uint64_t v)
{
	atomic_store_explicit(&s->v[id], v, memory_order_relaxed);
}

/* Any thread. */
static inline uint64_t stat_get(const struct worker_stats *s, enum stat_id id)
{
	return atomic_load_explicit(&s->v[id], memory_order_relaxed);
}

struct broker;

/* Sums one counter or gauge over every worker of b (any thread). */
uint64_t stats_sum(const struct broker *b, enum stat_id id);

#endif
