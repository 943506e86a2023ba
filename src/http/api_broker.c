/*
 * api_broker.c - GET /api/v1/broker: the broker at a glance, and the
 * sampler behind its rates.
 *
 * The counters (stats.h) only grow, so a rate is a difference over time.
 * A thread of the HTTP module samples them once a second into a ring of
 * RATE_SAMPLES; an answer compares the counters now with the newest
 * sample at least 1 s old (the 1 s rate) and with the oldest sample no
 * older than 60 s (the 1 min rate); while the uptime is shorter, both are
 * over the uptime.
 * Sampling costs one stats_sum() per counter a second, whatever the load,
 * and the workers do nothing for it. The ring is the sampler's and the
 * readers', under its mutex.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "archive/archive.h"
#include "broker/broker.h"
#include "broker/retain.h"
#include "broker/stats.h"
#include "broker/worker.h"
#include "cluster/cluster.h"
#include "http/http_int.h"
#include "http/json.h"
#include "store/store.h"
#include "util/clock.h"

/* What is sampled: the counters of the rates, then the store's commits
 * and their summed duration (µs), for the recent commit latency. */
static const enum stat_id rated[] = {
        STAT_PUB_IN_Q0,  STAT_PUB_IN_Q1,  STAT_PUB_IN_Q2, STAT_PUB_OUT_Q0,
        STAT_PUB_OUT_Q1, STAT_PUB_OUT_Q2, STAT_BYTES_IN,  STAT_BYTES_OUT,
};
#define N_RATED    (sizeof(rated) / sizeof(rated[0]))
#define V_COMMITS  N_RATED
#define V_COMMITUS (N_RATED + 1)
#define N_VALUES   (N_RATED + 2)

#define RATE_SAMPLES 62 /* a minute and a bit, at one a second */

struct sample {
	uint64_t at; /* mono_ms */
	double v[N_VALUES];
};

struct api_rates {
	struct broker *b;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool stop;
	struct sample ring[RATE_SAMPLES];
	size_t head, n; /* ring[head] is the newest of n */
};

static void read_values(struct broker *b, struct sample *s)
{
	s->at = mono_ms();
	for (size_t i = 0; i < N_RATED; i++)
		s->v[i] = (double)stats_sum(b, rated[i]);
	s->v[V_COMMITS] = s->v[V_COMMITUS] = 0;
	if (b->store) {
		uint64_t commits, batches;
		double mean_ms;
		store_stats(b->store, &commits, &batches, &mean_ms);
		s->v[V_COMMITS] = (double)commits;
		s->v[V_COMMITUS] = mean_ms * 1000.0 * (double)commits;
	}
}

static void *rates_main(void *arg)
{
	struct api_rates *r = arg;
	pthread_mutex_lock(&r->mu);
	while (!r->stop) {
		struct sample s;
		pthread_mutex_unlock(&r->mu);
		read_values(r->b, &s);
		pthread_mutex_lock(&r->mu);
		r->head = (r->head + 1) % RATE_SAMPLES;
		r->ring[r->head] = s;
		if (r->n < RATE_SAMPLES)
			r->n++;
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += 1;
		while (!r->stop && pthread_cond_timedwait(&r->cond, &r->mu, &until) == 0)
			;
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

enum tern_err api_rates_start(struct broker *b, struct api_rates **out)
{
	struct api_rates *r = calloc(1, sizeof(*r));
	if (!r)
		return TERN_E_NOMEM;
	r->b = b;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&r->mu, NULL);
	if (pthread_create(&r->thread, NULL, rates_main, r)) {
		pthread_cond_destroy(&r->cond);
		pthread_mutex_destroy(&r->mu);
		free(r);
		return TERN_E_SYS;
	}
	*out = r;
	return TERN_OK;
}

void api_rates_stop(struct api_rates *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	r->stop = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->thread, NULL);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

/* The samples to compare now with: *s1 the newest at least 1 s before
 * now->at, *s60 the oldest at most 60 s before (either may be missing:
 * false). */
static void pick(struct api_rates *r, const struct sample *now, struct sample *s1, bool *has1,
                 struct sample *s60, bool *has60)
{
	*has1 = *has60 = false;
	pthread_mutex_lock(&r->mu);
	for (size_t k = 0; k < r->n; k++) {
		const struct sample *s = &r->ring[(r->head + RATE_SAMPLES - k) % RATE_SAMPLES];
		uint64_t age = now->at - s->at;
		if (!*has1 && age >= 1000) {
			*s1 = *s;
			*has1 = true;
		}
		if (age <= 60500) {
			*s60 = *s;
			*has60 = true;
		}
	}
	/* Younger than a second: the rate since the first sample, at start. */
	if (!*has1 && *has60) {
		*s1 = *s60;
		*has1 = true;
	}
	pthread_mutex_unlock(&r->mu);
}

static double rate(const struct sample *now, const struct sample *then, bool has, size_t i)
{
	if (!has || now->at <= then->at)
		return 0;
	double d = now->v[i] - then->v[i];
	return d > 0 ? d * 1000.0 / (double)(now->at - then->at) : 0;
}

static void qos_rates(struct json *j, const char *key, size_t first, const struct sample *now,
                      const struct sample *s1, bool has1, const struct sample *s60, bool has60)
{
	static const char *const qos[] = {"0", "1", "2"};
	json_obj(j, key);
	for (size_t q = 0; q < 3; q++) {
		json_obj(j, qos[q]);
		json_u64(j, "total", (uint64_t)now->v[first + q]);
		json_num(j, "per_second_1s", rate(now, s1, has1, first + q));
		json_num(j, "per_second_1m", rate(now, s60, has60, first + q));
		json_obj_end(j);
	}
	json_obj_end(j);
}

void api_broker(struct http_server *h, struct api_reply *reply)
{
	struct broker *b = h->b;
	struct sample now, s1, s60;
	bool has1, has60;
	read_values(b, &now);
	pick(h->rates, &now, &s1, &has1, &s60, &has60);
	uint64_t online = stats_sum(b, STAT_SESSIONS_ONLINE);
	uint64_t sessions = stats_sum(b, STAT_SESSIONS);

	struct json j;
	json_init(&j, &reply->body);
	json_obj(&j, NULL);
	json_cstr(&j, "version", TERN_VERSION);
	json_num(&j, "uptime_seconds", (double)(mono_ms() - b->start_ms) / 1000.0);
	json_u64(&j, "workers", b->n_workers);
	json_u64(&j, "connections", (uint64_t)atomic_load(&b->n_conns));
	json_obj(&j, "sessions");
	json_u64(&j, "total", sessions);
	json_u64(&j, "online", online);
	json_u64(&j, "offline", sessions > online ? sessions - online : 0);
	json_obj_end(&j);
	json_u64(&j, "subscriptions", stat_get(&b->workers[0]->stats, STAT_SUBSCRIPTIONS));
	json_u64(&j, "retained", retain_count(b->retain));
	json_u64(&j, "queued", stats_sum(b, STAT_QUEUED));
	json_obj(&j, "messages");
	qos_rates(&j, "received", 0, &now, &s1, has1, &s60, has60);
	qos_rates(&j, "sent", 3, &now, &s1, has1, &s60, has60);
	json_obj_end(&j);
	json_obj(&j, "bytes");
	json_u64(&j, "received", (uint64_t)now.v[6]);
	json_u64(&j, "sent", (uint64_t)now.v[7]);
	json_num(&j, "received_per_second_1m", rate(&now, &s60, has60, 6));
	json_num(&j, "sent_per_second_1m", rate(&now, &s60, has60, 7));
	json_obj_end(&j);
	static const struct {
		const char *reason;
		enum stat_id id;
	} drops[] = {{"queue_full", STAT_DROP_QUEUE_FULL}, {"slow_consumer", STAT_DROP_SLOW_QOS0},
	             {"expired", STAT_DROP_EXPIRED},       {"too_large", STAT_DROP_TOO_LARGE},
	             {"stalled", STAT_DROP_STALLED},       {"no_member", STAT_DROP_NO_MEMBER},
	             {"memory", STAT_DROP_MEMORY}};
	json_obj(&j, "dropped");
	for (size_t i = 0; i < sizeof(drops) / sizeof(drops[0]); i++)
		json_u64(&j, drops[i].reason, stats_sum(b, drops[i].id));
	json_obj_end(&j);
	if (b->store) {
		json_obj(&j, "store");
		json_u64(&j, "commits", (uint64_t)now.v[V_COMMITS]);
		json_num(&j, "commit_ms_mean",
		         now.v[V_COMMITS] ? now.v[V_COMMITUS] / now.v[V_COMMITS] / 1000.0 : 0);
		/* The mean of the last minute's commits; null when there was
		 * none. */
		double dc = has60 ? now.v[V_COMMITS] - s60.v[V_COMMITS] : 0;
		if (dc > 0)
			json_num(&j, "commit_ms_mean_1m",
			         (now.v[V_COMMITUS] - s60.v[V_COMMITUS]) / dc / 1000.0);
		else
			json_null(&j, "commit_ms_mean_1m");
		json_obj_end(&j);
	} else {
		json_null(&j, "store");
	}
	if (b->cluster) {
		struct cluster_stats cs;
		cluster_stats(b->cluster, &cs);
		json_obj(&j, "cluster");
		json_cstr(&j, "name", b->cfg.cluster_name);
		json_cstr(&j, "node", cluster_node(b->cluster));
		json_bool(&j, "connected", cs.connected);
		json_bool(&j, "jetstream", cs.jetstream);
		json_u64(&j, "nodes", cs.live_nodes);
		json_u64(&j, "messages_sent", cs.forwarded);
		json_u64(&j, "messages_received", cs.received);
		json_obj_end(&j);
	} else {
		json_null(&j, "cluster");
	}
	/* The archives (docs/archive.md), in config order. */
	json_arr(&j, "archives");
	for (size_t i = 0; i < b->n_archives; i++) {
		struct archive_stats st;
		archive_stats(b->archives[i], &st);
		json_obj(&j, NULL);
		json_cstr(&j, "name", archive_name(b->archives[i]));
		json_bool(&j, "connected", st.connected);
		json_u64(&j, "archived", st.archived);
		json_u64(&j, "queued", st.queued);
		json_u64(&j, "queued_bytes", st.queued_bytes);
		json_u64(&j, "dropped", st.dropped);
		json_u64(&j, "failures", st.failures);
		json_u64(&j, "batches", st.batches);
		json_num(&j, "batch_ms_mean",
		         st.batches ? (double)st.batch_us_sum / (double)st.batches / 1000.0 : 0);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_obj_end(&j);
	reply->status = 200;
	if (json_end(&j))
		api_error(reply, 500, "out of memory");
}
