/*
 * sys.c - the $SYS topics, as mosquitto publishes them.
 *
 * Worker 0 publishes every sys_interval seconds, as retained QoS 0
 * messages routed like any other publish, the totals of all workers'
 * counters (stats.h) under mosquitto's topic names, so dashboards and
 * scripts written for mosquitto keep working. The load/.../1min, 5min and
 * 15min topics are exponentially decaying averages of the per-minute rates,
 * computed the way mosquitto computes them.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/sys.h"

#include "broker/archive_link.h"
#include "broker/broker.h"
#include "broker/retain.h"
#include "broker/route.h"
#include "broker/stats.h"
#include "broker/worker.h"
#include "cluster/cluster.h"
#include "tern/codec.h"
#include "util/log.h"
#include "util/msg.h"

/* Rates with load averages: the counter and its three averages. */
enum {
	LOAD_MSG_RX,
	LOAD_MSG_TX,
	LOAD_PUB_RX,
	LOAD_PUB_TX,
	LOAD_BYTES_RX,
	LOAD_BYTES_TX,
	LOAD_CONNS,
	LOAD_COUNT
};

static const char *const LOAD_TOPIC[LOAD_COUNT] = {
        "messages/received", "messages/sent", "publish/received", "publish/sent",
        "bytes/received",    "bytes/sent",    "connections",
};

struct sys_state {
	uint64_t next_at;
	uint64_t last_at;
	uint64_t last[LOAD_COUNT];
	double load[LOAD_COUNT][3];
	uint64_t max_clients;
};

static void publish(struct worker *w, const char *topic, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void publish(struct worker *w, const char *topic, const char *fmt, ...)
{
	char full[128], value[128];
	snprintf(full, sizeof(full), "$SYS/broker/%s", topic);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(value, sizeof(value), fmt, ap);
	va_end(ap);
	struct msg *m = msg_new((struct tern_bytes){(const uint8_t *)full, strlen(full)},
	                        (struct tern_bytes){(const uint8_t *)value, strlen(value)}, 0, true,
	                        NULL, 0, w->now);
	if (!m)
		return;
	/* Kept in memory only: $SYS values are rebuilt after a restart. */
	if (retain_set(w->broker->retain, m) || route_publish(w, m, NULL, NULL))
		log_write(&w->broker->log, LOG_TYPE_ERR, "Error: out of memory publishing $SYS");
	msg_unref(m);
}

/* publish() for archive_link_sys(), which hands over its values formatted. */
static void publish_value(struct worker *w, const char *topic, const char *value)
{
	publish(w, topic, "%s", value);
}

static uint64_t load_counter(const struct broker *b, int i)
{
	switch (i) {
	case LOAD_MSG_RX:
		return stats_sum(b, STAT_PKT_IN);
	case LOAD_MSG_TX:
		return stats_sum(b, STAT_PKT_OUT);
	case LOAD_PUB_RX:
		return stats_sum(b, STAT_PUB_IN_Q0) + stats_sum(b, STAT_PUB_IN_Q1) +
		       stats_sum(b, STAT_PUB_IN_Q2);
	case LOAD_PUB_TX:
		return stats_sum(b, STAT_PUB_OUT_Q0) + stats_sum(b, STAT_PUB_OUT_Q1) +
		       stats_sum(b, STAT_PUB_OUT_Q2);
	case LOAD_BYTES_RX:
		return stats_sum(b, STAT_BYTES_IN);
	case LOAD_BYTES_TX:
		return stats_sum(b, STAT_BYTES_OUT);
	default:
		return stats_sum(b, STAT_CONN_ACCEPTED);
	}
}

void sys_tick(struct worker *w)
{
	struct broker *b = w->broker;
	if (!b->cfg.sys_interval)
		return;
	if (!w->sys) {
		w->sys = calloc(1, sizeof(*w->sys));
		if (!w->sys)
			return;
		w->sys->last_at = w->now;
		w->sys->next_at = w->now; /* the first set at once */
	}
	struct sys_state *s = w->sys;
	if (w->now < s->next_at)
		return;
	s->next_at = w->now + (uint64_t)b->cfg.sys_interval * 1000u;
	double dt = (double)(w->now - s->last_at) / 1000.0;
	s->last_at = w->now;

	uint64_t online = stats_sum(b, STAT_SESSIONS_ONLINE);
	uint64_t sessions = stats_sum(b, STAT_SESSIONS);
	if (online > s->max_clients)
		s->max_clients = online;
	publish(w, "version", "ternd version %s", TERN_VERSION);
	publish(w, "uptime", "%llu seconds", (unsigned long long)((w->now - b->start_ms) / 1000u));
	publish(w, "clients/connected", "%llu", (unsigned long long)online);
	publish(w, "clients/active", "%llu", (unsigned long long)online);
	publish(w, "clients/disconnected", "%llu",
	        (unsigned long long)(sessions > online ? sessions - online : 0));
	publish(w, "clients/inactive", "%llu",
	        (unsigned long long)(sessions > online ? sessions - online : 0));
	publish(w, "clients/total", "%llu", (unsigned long long)sessions);
	publish(w, "clients/maximum", "%llu", (unsigned long long)s->max_clients);
	publish(w, "clients/expired", "%llu",
	        (unsigned long long)stats_sum(b, STAT_SESSIONS_EXPIRED));
	publish(w, "messages/received", "%llu", (unsigned long long)load_counter(b, LOAD_MSG_RX));
	publish(w, "messages/sent", "%llu", (unsigned long long)load_counter(b, LOAD_MSG_TX));
	publish(w, "messages/stored", "%llu", (unsigned long long)stats_sum(b, STAT_QUEUED));
	publish(w, "store/messages/count", "%llu", (unsigned long long)stats_sum(b, STAT_QUEUED));
	publish(w, "publish/messages/received", "%llu",
	        (unsigned long long)load_counter(b, LOAD_PUB_RX));
	publish(w, "publish/messages/sent", "%llu",
	        (unsigned long long)load_counter(b, LOAD_PUB_TX));
	publish(w, "publish/messages/dropped", "%llu",
	        (unsigned long long)(stats_sum(b, STAT_DROP_QUEUE_FULL) +
	                             stats_sum(b, STAT_DROP_SLOW_QOS0) +
	                             stats_sum(b, STAT_DROP_EXPIRED) +
	                             stats_sum(b, STAT_DROP_TOO_LARGE) +
	                             stats_sum(b, STAT_DROP_STALLED)));
	publish(w, "bytes/received", "%llu", (unsigned long long)load_counter(b, LOAD_BYTES_RX));
	publish(w, "bytes/sent", "%llu", (unsigned long long)load_counter(b, LOAD_BYTES_TX));
	publish(w, "subscriptions/count", "%llu",
	        (unsigned long long)stat_get(&b->workers[0]->stats, STAT_SUBSCRIPTIONS));
	publish(w, "retained messages/count", "%zu", retain_count(b->retain));
	if (b->archives)
		archive_link_sys(w, publish_value);
	if (b->cluster) {
		struct cluster_stats cs;
		cluster_stats(b->cluster, &cs);
		publish(w, "cluster/node", "%s", cluster_node(b->cluster));
		publish(w, "cluster/connected", "%d", cs.connected ? 1 : 0);
		publish(w, "cluster/jetstream", "%d", cs.jetstream ? 1 : 0);
		publish(w, "cluster/reconnects", "%llu", (unsigned long long)cs.reconnects);
		publish(w, "cluster/messages/sent", "%llu", (unsigned long long)cs.forwarded);
		publish(w, "cluster/messages/received", "%llu", (unsigned long long)cs.received);
		publish(w, "cluster/messages/local_only", "%llu",
		        (unsigned long long)cs.local_only);
		publish(w, "cluster/messages/dropped", "%llu",
		        (unsigned long long)(cs.dropped + cs.malformed));
		publish(w, "cluster/messages/pending", "%llu", (unsigned long long)cs.pending);
		publish(w, "cluster/subscriptions", "%llu", (unsigned long long)cs.interests);
		publish(w, "cluster/nodes", "%llu", (unsigned long long)cs.live_nodes);
		publish(w, "cluster/nodes/handled", "%llu", (unsigned long long)cs.nodes_handled);
		publish(w, "cluster/sessions/adopted", "%llu", (unsigned long long)cs.adopted);
	}

	/* Load averages of per-minute rates over 1, 5 and 15 minutes. */
	static const double period[3] = {60.0, 300.0, 900.0};
	static const char *const name[3] = {"1min", "5min", "15min"};
	for (int i = 0; i < LOAD_COUNT; i++) {
		uint64_t now_v = load_counter(b, i);
		double rate = dt > 0 ? (double)(now_v - s->last[i]) * 60.0 / dt : 0.0;
		s->last[i] = now_v;
		for (int k = 0; k < 3; k++) {
			double e = exp(-dt / period[k]);
			s->load[i][k] = s->load[i][k] * e + rate * (1.0 - e);
			char topic[96];
			snprintf(topic, sizeof(topic), "load/%s/%s", LOAD_TOPIC[i], name[k]);
			publish(w, topic, "%.2f", s->load[i][k]);
		}
	}
}

void sys_free(struct worker *w)
{
	free(w->sys);
	w->sys = NULL;
}
