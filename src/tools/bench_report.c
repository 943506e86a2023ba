/*
 * bench_report.c - what `tern bench` prints: the live progress line, and
 * at the end a human summary or (--json) one JSON object on stdout.
 *
 * The figures, and the window they are measured over:
 *   - rates count what happened inside the measurement window, which opens
 *     --warmup seconds after publishing starts (all clients connected and
 *     subscribed) and closes when publishing stops. A run bounded by
 *     --count instead keeps the window open until the last delivery, since
 *     there the deliveries still arriving are the point;
 *   - latency is publish -> delivery, from the CLOCK_MONOTONIC stamp in the
 *     payload to the on_message callback, for messages published inside
 *     the window (the drain included), by the publisher's QoS and overall;
 *   - loss, run mode only: for every (subscriber, publisher) pair whose
 *     filter matches the topic, the messages the publisher handed to
 *     libtern minus the distinct ones the subscriber got. For QoS 0 a loss
 *     can be the broker's policy (a slow consumer's queue overflowed); for
 *     QoS 1/2 it is a broken promise. In `bench sub` the publishers' counts
 *     are not known, so gaps in the sequence numbers stand in for loss.
 * The process's own CPU time is reported too: when the load generator's
 * CPU is saturated, the figures measure it rather than the broker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench.h"

/* Everything the threads measured, summed. */
struct totals {
	struct bench_hist lat[3], lat_all, conn;
	uint64_t sent_win, recv_win;
	uint64_t sent_qos[3], recv_qos[3];
	int64_t last_recv_ns;
	const char *first_error;
	/* Sequence tracking, by publisher QoS. */
	bool tracked;
	uint64_t expected[3], unique[3], lost[3], dup[3], reordered[3];
	double window_s;      /* receiving window */
	double sent_window_s; /* [t_measure, t_stop] */
	double user_s, sys_s;
};

static const char *version_name(uint8_t v)
{
	return v == TERN_V5 ? "5" : v == TERN_V31 ? "31" : "311";
}

static double rate(uint64_t n, double s)
{
	return s > 0 ? (double)n / s : 0;
}

void bench_progress_line(const struct bench *b, struct bench_progress *p)
{
	int64_t now = bench_now_ns();
	uint64_t sent = BENCH_CTR(b, sent), recv = BENCH_CTR(b, received);
	double dt = (double)(now - p->last_ns) / 1e9;
	uint64_t conns = BENCH_CTR(b, connected) - BENCH_CTR(b, lost);
	uint64_t errs = BENCH_CTR(b, conn_failed) + BENCH_CTR(b, lost) + BENCH_CTR(b, errors);
	fprintf(stderr, "\r\033[K[%6.1fs] conns %llu/%zu  sent %.0f/s  recv %.0f/s  errors %llu",
	        (double)(now - b->t_start_ns) / 1e9, (unsigned long long)conns, b->n_cl,
	        rate(sent - p->last_sent, dt), rate(recv - p->last_recv, dt),
	        (unsigned long long)errs);
	fflush(stderr);
	p->last_ns = now;
	p->last_sent = sent;
	p->last_recv = recv;
}

/* Adds up what subscriber s saw of every publisher. */
static void track_sub(const struct bench *b, const struct bench_client *s, struct totals *t)
{
	const struct bench_opts *o = b->o;
	for (uint32_t p = 0; p < s->n_pairs; p++) {
		const struct bench_pair *pr = &s->pairs[p];
		if (o->mode == BENCH_SUB) {
			if (!pr->seen)
				continue;
			unsigned q = pr->qos;
			t->expected[q] += pr->next;
			t->unique[q] += pr->unique;
			t->lost[q] += pr->next - pr->unique; /* gaps */
			t->dup[q] += pr->dup;
			t->reordered[q] += pr->reordered;
			continue;
		}
		const struct bench_client *pub = b->pub_of[p];
		if (!tern_topic_matches((const uint8_t *)s->topic, strlen(s->topic),
		                        (const uint8_t *)pub->topic, strlen(pub->topic)))
			continue;
		unsigned q = pub->qos;
		uint64_t exp = atomic_load_explicit(&pub->sent, memory_order_relaxed);
		t->expected[q] += exp;
		t->unique[q] += pr->unique;
		t->lost[q] += exp > pr->unique ? exp - pr->unique : 0;
		t->dup[q] += pr->dup;
		t->reordered[q] += pr->reordered;
	}
}

static void gather(const struct bench *b, struct totals *t)
{
	const struct bench_opts *o = b->o;
	memset(t, 0, sizeof(*t));
	for (unsigned k = 0; k < b->n_th; k++) {
		const struct bench_tstats *st = &b->th[k].st;
		for (int q = 0; q < 3; q++) {
			bench_hist_merge(&t->lat[q], &st->lat[q]);
			bench_hist_merge(&t->lat_all, &st->lat[q]);
			t->sent_qos[q] += st->sent_qos[q];
			t->recv_qos[q] += st->recv_qos[q];
		}
		bench_hist_merge(&t->conn, &st->conn);
		t->sent_win += st->sent_win;
		t->recv_win += b->count_stop ? st->recv_win_all : st->recv_win;
		if (st->last_recv_ns > t->last_recv_ns)
			t->last_recv_ns = st->last_recv_ns;
		if (t->first_error == NULL && st->first_error[0] != '\0')
			t->first_error = st->first_error;
	}
	int64_t t_measure = atomic_load_explicit(&b->t_measure_ns, memory_order_relaxed);
	int64_t t_stop = atomic_load_explicit(&b->t_stop_ns, memory_order_relaxed);
	if (t_stop == 0)
		t_stop = b->t_end_ns;
	int64_t end = t_stop;
	if (b->count_stop && t->last_recv_ns > end)
		end = t->last_recv_ns;
	t->window_s = t_measure != 0 && end > t_measure ? (double)(end - t_measure) / 1e9 : 0;
	/* Nothing is published after t_stop. */
	t->sent_window_s =
	        t_measure != 0 && t_stop > t_measure ? (double)(t_stop - t_measure) / 1e9 : 0;

	t->tracked = o->mode == BENCH_SUB ||
	             (o->mode == BENCH_RUN && b->o->subs > 0 && b->cl[0].pairs != NULL);
	for (unsigned s = 0; t->tracked && s < o->subs; s++)
		track_sub(b, &b->cl[s], t);

	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		t->user_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
		t->sys_s = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	}
}

/* ---- JSON ---- */

static void json_hist_us(FILE *f, const char *name, const struct bench_hist *h)
{
	fprintf(f, "\"%s\":{\"count\":%llu", name, (unsigned long long)h->count);
	if (h->count > 0)
		fprintf(f,
		        ",\"min\":%.1f,\"mean\":%.1f,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,"
		        "\"p999\":%.1f,\"max\":%.1f",
		        (double)h->min / 1e3, (double)h->sum / (double)h->count / 1e3,
		        (double)bench_hist_quantile(h, 0.50) / 1e3,
		        (double)bench_hist_quantile(h, 0.90) / 1e3,
		        (double)bench_hist_quantile(h, 0.99) / 1e3,
		        (double)bench_hist_quantile(h, 0.999) / 1e3, (double)h->max / 1e3);
	fputc('}', f);
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void report_json(const struct bench *b, const struct totals *t)
{
	const struct bench_opts *o = b->o;
	static const char *mode_names[] = {"conn", "pub", "sub", "run"};
	FILE *f = stdout;
	unsigned long long sent = BENCH_CTR(b, sent), recv = BENCH_CTR(b, received);

	fprintf(f, "{\"mode\":\"%s\",\"host\":", mode_names[o->mode]);
	json_string(f, o->common.host);
	fprintf(f, ",\"port\":%u,\"version\":\"%s\",\"threads\":%u,", o->common.port,
	        version_name(o->common.version), b->n_th);
	fprintf(f, "\"pubs\":%u,\"subs\":%u,\"conns\":%u,\"clients\":%zu,\"qos\":[", o->pubs,
	        o->subs, o->conns, b->n_cl);
	for (size_t i = 0; i < o->n_qos; i++)
		fprintf(f, "%s%u", i ? "," : "", o->qos[i]);
	fprintf(f, "],\"sub_qos\":%u,\"size\":%zu,\"rate\":%g,\"count\":%llu,\"duration\":%g,",
	        o->sub_qos, o->size, o->rate, (unsigned long long)o->count, o->duration);
	fprintf(f, "\"warmup\":%g,\"sources\":%zu,", o->warmup, o->n_sources);
	fprintf(f,
	        "\"connected\":%llu,\"connect_failed\":%llu,\"lost_connections\":%llu,"
	        "\"errors\":%llu,\"aborted\":%s,\"interrupted\":%s,",
	        (unsigned long long)BENCH_CTR(b, connected),
	        (unsigned long long)BENCH_CTR(b, conn_failed),
	        (unsigned long long)BENCH_CTR(b, lost), (unsigned long long)BENCH_CTR(b, errors),
	        b->aborted ? "true" : "false", b->interrupted ? "true" : "false");
	if (b->abort_why != NULL) {
		fputs("\"abort_reason\":", f);
		json_string(f, b->abort_why);
		fputc(',', f);
	}
	if (t->first_error != NULL) {
		fputs("\"first_error\":", f);
		json_string(f, t->first_error);
		fputc(',', f);
	}
	double connect_s =
	        b->t_connected_ns ? (double)(b->t_connected_ns - b->t_start_ns) / 1e9 : 0;
	fprintf(f, "\"connect_time_s\":%.3f,", connect_s);
	json_hist_us(f, "connect_us", &t->conn);
	fprintf(f, ",\"window_s\":%.3f,\"stopped_by\":\"%s\",", t->window_s,
	        b->interrupted  ? "signal"
	        : b->count_stop ? "count"
	                        : "duration");
	fprintf(f,
	        "\"sent\":%llu,\"sent_in_window\":%llu,\"sent_per_s\":%.1f,\"acked\":%llu,"
	        "\"pending\":%llu,",
	        sent, (unsigned long long)t->sent_win, rate(t->sent_win, t->sent_window_s),
	        (unsigned long long)BENCH_CTR(b, acked), (unsigned long long)BENCH_CTR(b, pending));
	fprintf(f, "\"received\":%llu,\"received_in_window\":%llu,\"received_per_s\":%.1f,", recv,
	        (unsigned long long)t->recv_win, rate(t->recv_win, t->window_s));
	json_hist_us(f, "latency_us", &t->lat_all);
	if (t->tracked) {
		uint64_t lost = 0, dup = 0, reo = 0;
		for (int q = 0; q < 3; q++) {
			lost += t->lost[q];
			dup += t->dup[q];
			reo += t->reordered[q];
		}
		fprintf(f, ",\"lost\":%llu,\"duplicates\":%llu,\"reordered\":%llu",
		        (unsigned long long)lost, (unsigned long long)dup, (unsigned long long)reo);
	} else {
		fputs(",\"lost\":null,\"duplicates\":null,\"reordered\":null", f);
	}
	fputs(",\"per_qos\":{", f);
	bool first = true;
	for (int q = 0; q < 3; q++) {
		bool used = t->sent_qos[q] || t->recv_qos[q] || t->expected[q];
		if (!used)
			continue;
		fprintf(f, "%s\"%d\":{\"sent\":%llu,\"received\":%llu,", first ? "" : ",", q,
		        (unsigned long long)t->sent_qos[q], (unsigned long long)t->recv_qos[q]);
		first = false;
		if (t->tracked)
			fprintf(f,
			        "\"expected\":%llu,\"unique\":%llu,\"lost\":%llu,\"duplicates\":%"
			        "llu,"
			        "\"reordered\":%llu,",
			        (unsigned long long)t->expected[q],
			        (unsigned long long)t->unique[q], (unsigned long long)t->lost[q],
			        (unsigned long long)t->dup[q], (unsigned long long)t->reordered[q]);
		json_hist_us(f, "latency_us", &t->lat[q]);
		fputc('}', f);
	}
	fprintf(f, "},\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,\"elapsed_s\":%.3f}\n", t->user_s,
	        t->sys_s, (double)(b->t_end_ns - b->t_start_ns) / 1e9);
	fflush(f);
}

/* ---- human summary ---- */

static void print_hist_us(FILE *f, const char *label, const struct bench_hist *h)
{
	if (h->count == 0) {
		fprintf(f, "%-12s no samples\n", label);
		return;
	}
	fprintf(f,
	        "%-12s p50 %.1f us  p90 %.1f us  p99 %.1f us  p99.9 %.1f us  max %.1f us  "
	        "(%llu samples)\n",
	        label, (double)bench_hist_quantile(h, 0.5) / 1e3,
	        (double)bench_hist_quantile(h, 0.9) / 1e3,
	        (double)bench_hist_quantile(h, 0.99) / 1e3,
	        (double)bench_hist_quantile(h, 0.999) / 1e3, (double)h->max / 1e3,
	        (unsigned long long)h->count);
}

static void report_text(const struct bench *b, const struct totals *t)
{
	const struct bench_opts *o = b->o;
	FILE *f = stdout;

	fprintf(f, "%s: MQTT %s, %s:%u, %u thread%s", o->prog, version_name(o->common.version),
	        o->common.host, o->common.port, b->n_th, b->n_th == 1 ? "" : "s");
	if (o->pubs)
		fprintf(f, ", %u publisher%s", o->pubs, o->pubs == 1 ? "" : "s");
	if (o->subs)
		fprintf(f, ", %u subscriber%s", o->subs, o->subs == 1 ? "" : "s");
	if (o->conns)
		fprintf(f, ", %u connection%s", o->conns, o->conns == 1 ? "" : "s");
	if (o->mode != BENCH_CONN)
		fprintf(f, ", %zu B payload", o->size);
	fputc('\n', f);
	if (b->aborted)
		fprintf(f, "aborted:     %s\n", b->abort_why ? b->abort_why : "?");
	fprintf(f, "connections: %llu connected, %llu failed, %llu lost",
	        (unsigned long long)BENCH_CTR(b, connected),
	        (unsigned long long)BENCH_CTR(b, conn_failed),
	        (unsigned long long)BENCH_CTR(b, lost));
	if (b->t_connected_ns)
		fprintf(f, ", all up in %.3f s", (double)(b->t_connected_ns - b->t_start_ns) / 1e9);
	fputc('\n', f);
	print_hist_us(f, "connect:", &t->conn);
	if (o->mode != BENCH_CONN && b->t_run_ns != 0) {
		fprintf(f, "window:      %.3f s (stopped by %s, warm-up %g s)\n", t->window_s,
		        b->interrupted  ? "signal"
		        : b->count_stop ? "count"
		                        : "duration",
		        o->warmup);
		if (o->pubs)
			fprintf(f, "sent:        %llu msgs, %.0f msg/s in the window\n",
			        (unsigned long long)BENCH_CTR(b, sent),
			        rate(t->sent_win, t->sent_window_s));
		if (o->subs)
			fprintf(f, "received:    %llu msgs, %.0f msg/s in the window\n",
			        (unsigned long long)BENCH_CTR(b, received),
			        rate(t->recv_win, t->window_s));
		if (o->subs)
			print_hist_us(f, "latency:", &t->lat_all);
		for (int q = 0; q < 3 && t->tracked; q++) {
			if (!t->expected[q] && !t->unique[q] && !t->sent_qos[q])
				continue;
			fprintf(f,
			        "QoS %d:       expected %llu, received %llu distinct, %s %llu, "
			        "duplicates %llu, reordered %llu\n",
			        q, (unsigned long long)t->expected[q],
			        (unsigned long long)t->unique[q],
			        o->mode == BENCH_SUB ? "gaps" : "lost",
			        (unsigned long long)t->lost[q], (unsigned long long)t->dup[q],
			        (unsigned long long)t->reordered[q]);
		}
	}
	fprintf(f, "errors:      %llu", (unsigned long long)BENCH_CTR(b, errors));
	if (t->first_error != NULL)
		fprintf(f, " (first: %s)", t->first_error);
	fprintf(f, "\ncpu:         %.2f s user, %.2f s system (this process)\n", t->user_s,
	        t->sys_s);
}

void bench_report(const struct bench *b)
{
	struct totals *t = malloc(sizeof(*t)); /* large: five histograms */
	if (t == NULL) {
		fprintf(stderr, "Error: %s: out of memory for the report.\n", b->o->prog);
		return;
	}
	gather(b, t);
	if (b->o->json)
		report_json(b, t);
	else
		report_text(b, t);
	free(t);
}
