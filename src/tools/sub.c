/*
 * sub.c - `tern sub`: subscribe and print what arrives.
 *
 * The flow is mosquitto_sub's: connect, SUBSCRIBE every -t at -q, then
 * UNSUBSCRIBE every -U (to prune a persistent session), exit there with
 * -E, and otherwise print messages until -C of them were printed, -W
 * seconds passed since connecting (exit status 27, "Timed out"), the first
 * fresh message arrived with --retained-only, or SIGINT / SIGTERM. Each
 * ending sends DISCONNECT, so the broker keeps the will to itself; only a
 * lost connection (or SIGKILL) lets the will go out.
 *
 * Every message passes, in this order: --remove-retained (a retained
 * message not filtered out by -T is cleared by publishing an empty
 * retained message to its topic), --retained-only, -R, -T, then
 * --random-filter and printing (format.c); -C counts what reached that
 * last step. Messages are handled in libtern's on_message callback, inside
 * our own poll loop (conn_poll) so that a signal can end the wait.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "tools.h"

/* Set by the SIGINT / SIGTERM handler: the only mutable global, since a
 * signal handler has no other way to speak. */
static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

struct sub_state {
	unsigned long printed;
	bool stop;
	bool fresh_seen; /* --retained-only ended on a fresh message */
};

static bool filtered_out(const struct tool_opts *o, const struct tern_message *m)
{
	for (size_t i = 0; i < o->n_filter_out; i++) {
		if (tern_topic_matches((const uint8_t *)o->filter_out[i], strlen(o->filter_out[i]),
		                       (const uint8_t *)m->topic, m->topic_len))
			return true;
	}
	return false;
}

static void handle_message(struct tool_conn *tc, const struct tern_message *m)
{
	const struct tool_opts *o = tc->o;
	struct sub_state *st = tc->app;
	bool filtered;

	if (st->stop)
		return;
	filtered = filtered_out(o, m);
	if (o->remove_retained && m->retain && !filtered) {
		const struct tern_publish_args clear = {
		        .topic = m->topic,
		        .qos = 1,
		        .retain = true,
		};
		uint16_t mid = 0;

		if (tern_client_publish(tc->c, &clear, &mid) == TERN_OK)
			tool_debug(tc, "sending PUBLISH (d0, q1, r1, m%u, '%s', ... (0 bytes))",
			           mid, m->topic);
	}
	if (o->retained_only && !m->retain) {
		st->stop = true;
		st->fresh_seen = true;
		return;
	}
	if ((o->no_retain && m->retain) || filtered)
		return;
	if (o->random_filter >= 100.0 || (double)(random() % 10000) < o->random_filter * 100.0)
		format_message(stdout, o, m);
	st->printed++;
	if (o->count > 0 && st->printed >= o->count)
		st->stop = true;
}

/* From the SUBACK on, SIGINT and SIGTERM end `tern sub` with DISCONNECT.
 * Before that they keep their default action (exit at once), so that a
 * broker that never answers cannot make the tool deaf to ^C. */
static void catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: poll() must return EINTR so that we notice. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static int timed_out(const struct tool_opts *o)
{
	if (!o->common.quiet)
		fprintf(stderr, "Timed out\n");
	return TOOL_EXIT_TIMEOUT;
}

/* Milliseconds left before -W, or -1 without -W. */
static int time_left(const struct tool_opts *o, int64_t deadline)
{
	int64_t left;

	if (o->timeout_s == 0)
		return -1;
	left = deadline - tool_now_ms();
	return left > 0 ? (int)(left > 1000000000 ? 1000000000 : left) : 0;
}

static int subscribe_all(struct tool_conn *tc, const struct tool_opts *o, int64_t deadline)
{
	struct tern_sub_entry *entries;
	uint8_t *reasons;
	size_t failed = 0;
	enum tern_err err;
	int rc = 0;

	if (o->n_topics == 0) {
		catch_signals();
		return 0;
	}
	entries = calloc(o->n_topics, sizeof(*entries));
	reasons = calloc(o->n_topics, 1);
	if (entries == NULL || reasons == NULL) {
		free(entries);
		free(reasons);
		fprintf(stderr, "Error: out of memory.\n");
		return 1;
	}
	for (size_t i = 0; i < o->n_topics; i++) {
		entries[i].filter.data = (const uint8_t *)o->topics[i];
		entries[i].filter.len = (uint32_t)strlen(o->topics[i]);
		entries[i].qos = o->qos;
		entries[i].retain_as_published = o->retain_as_published;
		tool_debug(tc, "sending SUBSCRIBE (Topic: %s, QoS: %u, Options: 0x%02x)",
		           o->topics[i], o->qos,
		           o->qos | (o->retain_as_published && o->common.version == TERN_V5 ? 0x08
		                                                                            : 0));
	}
	err = tern_client_subscribe_wait(tc->c, entries, o->n_topics,
	                                 props_get(&o->subscribe_props), time_left(o, deadline),
	                                 reasons);
	catch_signals();
	if (err == TERN_E_TIMEOUT) {
		rc = timed_out(o);
		goto out;
	}
	if (err != TERN_OK) {
		conn_report_lost(tc, err);
		rc = 1;
		goto out;
	}
	if (o->debug) {
		tool_debug(tc, "received SUBACK");
		fprintf(stderr, "Subscribed:");
		for (size_t i = 0; i < o->n_topics; i++)
			fprintf(stderr, "%s %u", i ? "," : "", reasons[i]);
		fputc('\n', stderr);
	}
	for (size_t i = 0; i < o->n_topics; i++) {
		if (reasons[i] < 0x80)
			continue;
		failed++;
		if (!o->common.quiet)
			fprintf(stderr, "Warning: subscription to '%s' denied: %s.\n", o->topics[i],
			        tern_reason_string(reasons[i], false));
	}
	if (failed == o->n_topics) {
		if (!o->common.quiet)
			fprintf(stderr, "Error: All subscription requests were denied.\n");
		rc = 1;
	}
out:
	free(entries);
	free(reasons);
	return rc;
}

static int unsubscribe_all(struct tool_conn *tc, const struct tool_opts *o, int64_t deadline)
{
	enum tern_err err;

	if (o->n_unsub == 0)
		return 0;
	for (size_t i = 0; i < o->n_unsub; i++)
		tool_debug(tc, "sending UNSUBSCRIBE (Topic: %s)", o->unsub[i]);
	err = tern_client_unsubscribe_wait(tc->c, o->unsub, o->n_unsub,
	                                   props_get(&o->unsubscribe_props),
	                                   time_left(o, deadline));
	if (err == TERN_E_TIMEOUT)
		return timed_out(o);
	if (err != TERN_OK) {
		conn_report_lost(tc, err);
		return 1;
	}
	tool_debug(tc, "received UNSUBACK");
	return 0;
}

/* Prints messages until one of the endings in the file comment. */
static int receive_loop(struct tool_conn *tc, const struct tool_opts *o, struct sub_state *st,
                        int64_t deadline)
{
	while (!st->stop && !stop_signal) {
		int left = time_left(o, deadline);
		enum tern_err err;

		if (left == 0)
			return timed_out(o);
		err = conn_poll(tc, -1, left, NULL);
		if (err != TERN_OK) {
			conn_report_lost(tc, err);
			return 1;
		}
	}
	return 0;
}

int sub_main(int argc, char **argv)
{
	struct tool_opts o;
	struct tool_conn tc;
	struct sub_state st = {0};
	int64_t deadline;
	int rc;

	switch (opts_parse(&o, TOOL_SUB, argc, argv)) {
	case PARSE_HELP:
		return 0;
	case PARSE_ERROR:
		return TOOL_EXIT_USAGE;
	case PARSE_OK:
		break;
	}
	if (o.random_filter < 100.0)
		srandom((unsigned)tool_now_ms());

	rc = conn_open(&tc, &o, handle_message, &st);
	if (rc != 0) {
		opts_free(&o);
		return rc;
	}
	/* -W counts from the CONNACK, as in mosquitto_sub. */
	deadline = tool_now_ms() + (int64_t)o.timeout_s * 1000;
	rc = subscribe_all(&tc, &o, deadline);
	if (rc == 0)
		rc = unsubscribe_all(&tc, &o, deadline);
	if (rc == 0 && !o.exit_after_sub && !stop_signal)
		rc = receive_loop(&tc, &o, &st, deadline);
	/* Let the clearing of retained messages (--remove-retained) finish. */
	if (rc == 0 && tern_client_is_connected(tc.c)) {
		int64_t until = tool_now_ms() + 5000;

		while (tern_client_pending(tc.c) > 0 && tool_now_ms() < until) {
			if (conn_poll(&tc, -1, (int)(until - tool_now_ms()), NULL) != TERN_OK)
				break;
		}
	}
	conn_close(&tc);
	opts_free(&o);
	return rc;
}
