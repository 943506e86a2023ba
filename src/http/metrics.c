/*
 * metrics.c - GET /metrics of the HTTP listener (http.c): the Prometheus
 * text exposition format (version 0.0.4).
 *
 * Runs on the HTTP thread and reads only what any thread may read: the
 * workers' counters (stats.h), the retained store (under its lock), the
 * store's commit statistics and the cluster's counters.
 */
#include <stdarg.h>
#include <stdio.h>

#include "broker/archive_link.h"
#include "broker/config.h"
#include "broker/broker.h"
#include "broker/retain.h"
#include "broker/stats.h"
#include "broker/worker.h"
#include "cluster/cluster.h"
#include "http/metrics.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/clock.h"

static bool out(struct buf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool out(struct buf *o, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return false;
	return buf_append(o, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1, 0) ==
	       TERN_OK;
}

static bool head(struct buf *o, const char *name, const char *type, const char *help)
{
	return out(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static bool one(struct buf *o, const char *name, const char *type, const char *help, double v)
{
	return head(o, name, type, help) && out(o, "%s %.17g\n", name, v);
}

enum tern_err metrics_render(struct broker *b, struct buf *o)
{
	bool ok = true;
	uint64_t online = stats_sum(b, STAT_SESSIONS_ONLINE);
	uint64_t sessions = stats_sum(b, STAT_SESSIONS);
	ok &= one(o, "tern_uptime_seconds", "gauge", "Seconds since ternd started.",
	          (double)(mono_ms() - b->start_ms) / 1000.0);
	ok &= one(o, "tern_connections", "gauge", "Open network connections.",
	          (double)atomic_load(&b->n_conns));
	ok &= one(o, "tern_connections_accepted_total", "counter", "Connections accepted.",
	          (double)stats_sum(b, STAT_CONN_ACCEPTED));
	ok &= one(o, "tern_connections_refused_total", "counter",
	          "Connections refused by max_connections.",
	          (double)stats_sum(b, STAT_CONN_REFUSED));
	ok &= one(o, "tern_password_checks_total", "counter",
	          "CONNECT passwords checked against password_file (one hash each).",
	          (double)stats_sum(b, STAT_PASSWORD_CHECKS));
	ok &= head(o, "tern_sessions", "gauge", "MQTT sessions, by whether a client is connected.");
	ok &= out(o, "tern_sessions{state=\"online\"} %llu\n", (unsigned long long)online);
	ok &= out(o, "tern_sessions{state=\"offline\"} %llu\n",
	          (unsigned long long)(sessions > online ? sessions - online : 0));
	ok &= one(o, "tern_sessions_expired_total", "counter", "Sessions ended by expiry.",
	          (double)stats_sum(b, STAT_SESSIONS_EXPIRED));
	ok &= one(o, "tern_subscriptions", "gauge", "Subscriptions, shared members included.",
	          (double)stat_get(&b->workers[0]->stats, STAT_SUBSCRIPTIONS));
	ok &= one(o, "tern_retained_messages", "gauge", "Retained messages.",
	          (double)retain_count(b->retain));
	ok &= one(o, "tern_queued_messages", "gauge", "Messages queued or in flight for sessions.",
	          (double)stats_sum(b, STAT_QUEUED));
	ok &= head(o, "tern_messages_received_total", "counter",
	           "PUBLISH packets received, by QoS.");
	for (int q = 0; q < 3; q++)
		ok &= out(o, "tern_messages_received_total{qos=\"%d\"} %llu\n", q,
		          (unsigned long long)stats_sum(b, (enum stat_id)(STAT_PUB_IN_Q0 + q)));
	ok &= head(o, "tern_messages_sent_total", "counter", "PUBLISH packets sent, by QoS.");
	for (int q = 0; q < 3; q++)
		ok &= out(o, "tern_messages_sent_total{qos=\"%d\"} %llu\n", q,
		          (unsigned long long)stats_sum(b, (enum stat_id)(STAT_PUB_OUT_Q0 + q)));
	ok &= head(o, "tern_messages_dropped_total", "counter", "Messages dropped, by reason.");
	static const struct {
		const char *reason;
		enum stat_id id;
	} drops[] = {{"queue_full", STAT_DROP_QUEUE_FULL}, {"slow_consumer", STAT_DROP_SLOW_QOS0},
	             {"expired", STAT_DROP_EXPIRED},       {"too_large", STAT_DROP_TOO_LARGE},
	             {"stalled", STAT_DROP_STALLED},       {"no_member", STAT_DROP_NO_MEMBER},
	             {"memory", STAT_DROP_MEMORY}};
	for (size_t i = 0; i < sizeof(drops) / sizeof(drops[0]); i++)
		ok &= out(o, "tern_messages_dropped_total{reason=\"%s\"} %llu\n", drops[i].reason,
		          (unsigned long long)stats_sum(b, drops[i].id));
	ok &= one(o, "tern_publishers_paused", "gauge",
	          "Publisher connections paused by flow control: a session they feed is over "
	          "max_queued_messages.",
	          (double)stats_sum(b, STAT_PUBLISHERS_PAUSED));
	ok &= one(o, "tern_flow_pauses_total", "counter",
	          "Times a publisher was paused by flow control.",
	          (double)stats_sum(b, STAT_FLOW_PAUSES));
	ok &= one(o, "tern_flow_stalls_total", "counter",
	          "Online sessions that took nothing for max_stall_time and fell back to "
	          "dropping.",
	          (double)stats_sum(b, STAT_FLOW_STALLS));
	ok &= one(o, "tern_packets_received_total", "counter", "MQTT packets received.",
	          (double)stats_sum(b, STAT_PKT_IN));
	ok &= one(o, "tern_packets_sent_total", "counter", "MQTT packets sent.",
	          (double)stats_sum(b, STAT_PKT_OUT));
	ok &= one(o, "tern_bytes_received_total", "counter", "Bytes received from clients.",
	          (double)stats_sum(b, STAT_BYTES_IN));
	ok &= one(o, "tern_bytes_sent_total", "counter", "Bytes sent to clients.",
	          (double)stats_sum(b, STAT_BYTES_OUT));
	if (b->store) {
		uint64_t commits, batches;
		double mean_ms;
		store_stats(b->store, &commits, &batches, &mean_ms);
		ok &= head(o, "tern_store_commit_seconds", "summary",
		           "Duration of the store's commits.");
		ok &= out(o, "tern_store_commit_seconds_sum %.9f\n",
		          mean_ms * (double)commits / 1000.0);
		ok &= out(o, "tern_store_commit_seconds_count %llu\n", (unsigned long long)commits);
		ok &= one(o, "tern_store_batches_total", "counter",
		          "Worker batches written (a commit holds one or more).", (double)batches);
	}
	ok &= archive_link_metrics(b, o);
	if (b->cluster) {
		struct cluster_stats cs;
		cluster_stats(b->cluster, &cs);
		ok &= head(o, "tern_cluster_info", "gauge", "This node of the cluster (value 1).");
		ok &= out(o, "tern_cluster_info{cluster=\"%s\",node=\"%s\"} 1\n",
		          b->cfg.cluster_name, cluster_node(b->cluster));
		ok &= one(o, "tern_cluster_connected", "gauge",
		          "1 while the node has NATS, else 0.", cs.connected ? 1.0 : 0.0);
		ok &= one(o, "tern_cluster_jetstream", "gauge",
		          "1 once the cluster's JetStream streams are set up, else 0.",
		          cs.jetstream ? 1.0 : 0.0);
		ok &= one(o, "tern_cluster_reconnects_total", "counter", "Reconnections to NATS.",
		          (double)cs.reconnects);
		ok &= one(o, "tern_cluster_messages_sent_total", "counter",
		          "Messages of local clients sent to the other nodes through NATS.",
		          (double)cs.forwarded);
		ok &= one(o, "tern_cluster_messages_received_total", "counter",
		          "Messages of other nodes received through NATS.", (double)cs.received);
		ok &= one(o, "tern_cluster_messages_local_only_total", "counter",
		          "Messages of local clients not sent to other nodes (NATS down, over its "
		          "limits).",
		          (double)cs.local_only);
		ok &= one(o, "tern_cluster_messages_malformed_total", "counter",
		          "Messages from NATS that did not decode.", (double)cs.malformed);
		ok &= one(o, "tern_cluster_messages_dropped_total", "counter",
		          "Messages dropped by the NATS client as a slow consumer.",
		          (double)cs.dropped);
		ok &= one(o, "tern_cluster_messages_pending", "gauge",
		          "Messages received from NATS not yet routed (the lag).",
		          (double)cs.pending);
		ok &= one(o, "tern_cluster_subscriptions", "gauge",
		          "NATS subscriptions this node holds for its clients' filters.",
		          (double)cs.interests);
		ok &= one(o, "tern_cluster_retained_received_total", "counter",
		          "Retained-message changes applied from the cluster's stream.",
		          (double)cs.retained_in);
		ok &= one(
		        o, "tern_cluster_retained_sent_total", "counter",
		        "Retained-message changes of local clients stored in the cluster's stream.",
		        (double)cs.retained_out);
		ok &= one(o, "tern_cluster_durable_acks_confirmed_total", "counter",
		          "Acks of durable-queue messages JetStream confirmed (QoS 2).",
		          (double)cs.acks_confirmed);
		ok &= one(o, "tern_cluster_durable_redeliveries_held_total", "counter",
		          "Durable-queue messages JetStream delivered again while this node held "
		          "them or had completed them (an ack or report lost): not delivered "
		          "twice.",
		          (double)cs.redeliveries_held);
		ok &= one(o, "tern_cluster_durable_settle_given_up_total", "counter",
		          "Completed QoS 2 messages whose ack JetStream did not confirm within "
		          "60 s, let go.",
		          (double)cs.settle_given_up);
		ok &= one(o, "tern_cluster_nodes", "gauge",
		          "Nodes of the cluster alive (heartbeats seen), this one included; 0 "
		          "before the nodes bucket is followed.",
		          (double)cs.live_nodes);
		ok &= one(o, "tern_cluster_nodes_handled_total", "counter",
		          "Dead or departed nodes this node acted for (their sessions and wills).",
		          (double)cs.nodes_handled);
		ok &= one(o, "tern_cluster_sessions_adopted_total", "counter",
		          "Sessions of dead nodes this node adopted (their wills and expiry are "
		          "its).",
		          (double)cs.adopted);
	}
	ok &= head(o, "tern_worker_utilisation", "gauge",
	           "Share of the last second a worker's loop spent handling events.");
	for (unsigned i = 0; i < b->n_workers; i++)
		ok &= out(o, "tern_worker_utilisation{worker=\"%u\"} %.3f\n", i,
		          (double)stat_get(&b->workers[i]->stats, STAT_LOOP_UTIL_PERMILLE) /
		                  1000.0);
	ok &= head(o, "tern_worker_busy_seconds_total", "counter",
	           "Time a worker's loop spent handling events.");
	for (unsigned i = 0; i < b->n_workers; i++)
		ok &= out(o, "tern_worker_busy_seconds_total{worker=\"%u\"} %.6f\n", i,
		          (double)stat_get(&b->workers[i]->stats, STAT_LOOP_BUSY_US) / 1e6);
	return ok ? TERN_OK : TERN_E_NOMEM;
}
