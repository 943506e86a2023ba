/*
 * api_clients.c - the clients of the admin API: GET /api/v1/clients (paged,
 * by id prefix), /api/v1/clients/ID, /api/v1/clients/ID/subscriptions, and
 * GET /api/v1/topics (subscription filters by subscribers, published topics
 * by message rate).
 *
 * Sessions and connections are their workers' (a session lives on its home
 * worker, hash(client id) mod N), so everything here is asked of the
 * workers through http_call.h: the functions named on_* run on a worker's
 * thread and write only into their own slot, the rest runs on the HTTP
 * thread and reads the slots once every worker answered.
 *
 * A page of clients takes two rounds. First every worker lists the client
 * ids of its sessions under the prefix (ids only: a few bytes a session,
 * however many match); the HTTP thread sorts them (byte order, so pages are
 * stable while the set of sessions is) and cuts out the page. Then the home
 * workers of the page's ids (at most API_LIMIT_MAX) describe them. A session
 * that ended between the rounds is left out of its page.
 *
 * Slot layouts: ids as [u16 length][bytes]...; descriptions as [u32
 * length][JSON object]... in the order asked (length 0: gone).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/broker.h"
#include "broker/router.h"
#include "broker/session.h"
#include "broker/sink.h"
#include "broker/topic_rate.h"
#include "broker/worker.h"
#include "http/http_call.h"
#include "http/http_int.h"
#include "http/json.h"
#include "util/clock.h"

static const char *protocol_name(uint8_t v)
{
	return v == TERN_V5 ? "5.0" : v == TERN_V311 ? "3.1.1" : v == TERN_V31 ? "3.1" : NULL;
}

/* Writes the JSON object of s (on its worker) into out. */
static enum tern_err describe(struct worker *w, struct session *s, struct buf *out)
{
	struct json j;
	json_init(&j, out);
	struct tern_bytes id = session_client_id(s);
	struct sink *k = session_sink(s);
	json_obj(&j, NULL);
	json_str(&j, "id", id.data, id.len);
	json_bool(&j, "connected", k != NULL);
	json_cstr(&j, "protocol", protocol_name(k ? k->version : session_version(s)));
	struct tern_bytes user = session_username(s);
	if (user.data)
		json_str(&j, "username", user.data, user.len);
	else
		json_null(&j, "username");
	if (k) {
		char name[64];
		json_cstr(&j, "address", k->ops->name(k, name));
		json_u64(&j, "keep_alive", k->keep_alive);
		struct sink_info info = {0};
		if (k->ops->info)
			k->ops->info(k, &info);
		char when[32] = "";
		time_t t = (time_t)(info.since_ms / 1000);
		struct tm tm;
		if (info.since_ms && gmtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		json_cstr(&j, "connected_since", when[0] ? when : NULL);
		json_u64(&j, "bytes_received", info.bytes_in);
		json_u64(&j, "bytes_sent", info.bytes_out);
	} else {
		json_null(&j, "address");
		json_null(&j, "keep_alive");
		json_null(&j, "connected_since");
		json_null(&j, "bytes_received");
		json_null(&j, "bytes_sent");
	}
	uint32_t expiry = session_expiry(s);
	if (expiry == UINT32_MAX)
		json_null(&j, "session_expiry");
	else
		json_u64(&j, "session_expiry", expiry);
	json_u64(&j, "subscriptions", session_sub_count(s));
	json_u64(&j, "inflight", session_inflight_count(s));
	json_u64(&j, "queued", session_queued_count(s));
	json_u64(&j, "worker", w->id);
	json_obj_end(&j);
	return json_end(&j);
}

/* Round 1, on each worker: the ids of its sessions under the prefix. */
static void on_list_ids(struct worker *w, const void *args, struct http_slot *slot)
{
	struct tern_bytes prefix = http_get_bytes(args);
	size_t pos = 0;
	struct session *s;
	while ((s = session_next(w, &pos)) && !slot->err) {
		struct tern_bytes id = session_client_id(s);
		if (id.len < prefix.len || memcmp(id.data, prefix.data, prefix.len) != 0)
			continue;
		slot->err = http_put_bytes(&slot->out, id);
		slot->n++;
	}
}

/* Round 2, on each worker: the descriptions of the ids of args ([u32
 * count] then [u16 len][bytes] each) whose home it is, in that order. */
static void on_describe(struct worker *w, const void *args, struct http_slot *slot)
{
	const uint8_t *p = args;
	uint32_t count = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	p += 4;
	struct buf one = {0};
	for (uint32_t i = 0; i < count && !slot->err; i++) {
		struct tern_bytes id = http_get_bytes(p);
		p += 2 + id.len;
		if (broker_home_of(w->broker, id.data, id.len) != w->id)
			continue;
		struct session *s = session_find(w, id.data, id.len);
		one.off = one.len = 0;
		if (s)
			slot->err = describe(w, s, &one);
		uint8_t h[4] = {(uint8_t)(buf_used(&one) >> 24), (uint8_t)(buf_used(&one) >> 16),
		                (uint8_t)(buf_used(&one) >> 8), (uint8_t)buf_used(&one)};
		if (!slot->err)
			slot->err = buf_append(&slot->out, h, 4, 0);
		if (!slot->err && buf_used(&one))
			slot->err = buf_append(&slot->out, one.data + one.off, buf_used(&one), 0);
		slot->n++;
	}
	buf_free(&one);
}

static int cmp_route_session(const void *a, const void *b)
{
	const struct route *x = a, *y = b;
	return (x->session > y->session) - (x->session < y->session);
}

static int cmp_bytes(const void *a, const void *b)
{
	const struct tern_bytes *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = n ? memcmp(x->data, y->data, n) : 0;
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Runs c on the workers homes[0..n) (every worker when homes is NULL),
 * turning a failure (of the call, or of a worker's function) into an
 * answer: true when their slots may be read. c NULL: out of memory. */
static bool ask(struct broker *b, struct http_call *c, const unsigned *homes, size_t n,
                struct api_reply *reply)
{
	if (!c) {
		api_error(reply, 500, "out of memory");
		return false;
	}
	enum tern_err err = http_call_run(c, homes, n, API_CALL_TIMEOUT_MS);
	if (err == TERN_E_TIMEOUT) {
		api_error(reply, 503, "the workers did not answer in time");
		return false;
	}
	size_t count = homes ? n : b->n_workers;
	for (size_t i = 0; !err && i < count; i++)
		err = http_call_slot(c, homes ? homes[i] : (unsigned)i)->err;
	if (err) {
		api_error(reply, 500, "out of memory");
		return false;
	}
	return true;
}

/* The ids of every worker's slot of round 1, in one array pointing into
 * the slots. NULL with *n 0 when there is none or out of memory (*oom). */
static struct tern_bytes *gather_ids(struct broker *b, struct http_call *c, size_t *n, bool *oom)
{
	size_t total = 0;
	*oom = false;
	for (unsigned i = 0; i < b->n_workers; i++)
		total += http_call_slot(c, i)->n;
	*n = 0;
	if (!total)
		return NULL;
	struct tern_bytes *v = malloc(total * sizeof(*v));
	if (!v) {
		*oom = true;
		return NULL;
	}
	for (unsigned i = 0; i < b->n_workers; i++) {
		struct http_slot *sl = http_call_slot(c, i);
		const uint8_t *p = sl->out.data + sl->out.off;
		for (uint64_t k = 0; k < sl->n; k++) {
			v[*n] = http_get_bytes(p);
			p += 2 + v[*n].len;
			(*n)++;
		}
	}
	return v;
}

/* Reads a u32 big-endian length. */
static size_t get_u32(const uint8_t *p)
{
	return (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
}

/* Round 2 of a page: asks the home workers of ids[0..count) for their
 * descriptions and writes them into j's open array, in that order. */
static bool describe_page(struct broker *b, const struct tern_bytes *ids, size_t count,
                          struct json *j, struct api_reply *reply)
{
	unsigned *home = malloc((count + 1) * sizeof(*home));
	unsigned *homes = malloc((count + 1) * sizeof(*homes));
	size_t *cursor = calloc(b->n_workers, sizeof(*cursor));
	bool *asked = calloc(b->n_workers, sizeof(*asked));
	struct buf req = {0};
	uint8_t hdr[4] = {(uint8_t)(count >> 24), (uint8_t)(count >> 16), (uint8_t)(count >> 8),
	                  (uint8_t)count};
	enum tern_err err =
	        home && homes && cursor && asked ? buf_append(&req, hdr, 4, 0) : TERN_E_NOMEM;
	size_t n_homes = 0;
	for (size_t i = 0; i < count && !err; i++) {
		err = http_put_bytes(&req, ids[i]);
		home[i] = broker_home_of(b, ids[i].data, ids[i].len);
		if (!asked[home[i]]) {
			asked[home[i]] = true;
			homes[n_homes++] = home[i];
		}
	}
	struct http_call *c =
	        err ? NULL : http_call_new(b, on_describe, req.data + req.off, buf_used(&req));
	buf_free(&req);
	bool ok = ask(b, c, homes, n_homes, reply);
	for (size_t i = 0; ok && i < count; i++) {
		struct http_slot *sl = http_call_slot(c, home[i]);
		const uint8_t *p = sl->out.data + sl->out.off + cursor[home[i]];
		size_t len = get_u32(p);
		cursor[home[i]] += 4 + len;
		if (len) /* 0: the session ended since round 1 */
			json_raw(j, NULL, p + 4, len);
	}
	http_call_unref(c);
	free(home);
	free(homes);
	free(cursor);
	free(asked);
	return ok;
}

void api_clients(struct http_server *h, const struct api_route *route, struct api_reply *reply)
{
	struct broker *b = h->b;
	size_t alen;
	uint8_t *args =
	        http_pack_bytes(route->has_arg ? route->arg : (struct tern_bytes){0}, &alen);
	struct http_call *c1 = args ? http_call_new(b, on_list_ids, args, alen) : NULL;
	free(args);
	if (!ask(b, c1, NULL, 0, reply)) {
		http_call_unref(c1);
		return;
	}
	size_t n;
	bool oom;
	struct tern_bytes *ids = gather_ids(b, c1, &n, &oom);
	if (oom) {
		http_call_unref(c1);
		api_error(reply, 500, "out of memory");
		return;
	}
	if (n)
		qsort(ids, n, sizeof(*ids), cmp_bytes);
	size_t first = (size_t)(route->page - 1) * route->limit;
	size_t count = first < n ? n - first : 0;
	if (count > route->limit)
		count = route->limit;

	struct json j;
	json_init(&j, &reply->body);
	json_obj(&j, NULL);
	json_u64(&j, "total", n);
	json_u64(&j, "page", route->page);
	json_u64(&j, "limit", route->limit);
	json_u64(&j, "pages", (n + route->limit - 1) / route->limit);
	json_arr(&j, "clients");
	bool ok = !count || describe_page(b, ids + first, count, &j, reply);
	free(ids);
	http_call_unref(c1); /* ids pointed into its slots */
	if (!ok)
		return; /* describe_page() set the error */
	json_arr_end(&j);
	json_obj_end(&j);
	reply->status = 200;
	if (json_end(&j))
		api_error(reply, 500, "out of memory");
}

/* On the home worker: the description of one client into the slot (n 1),
 * or nothing (n 0: no such session). */
static void on_describe_one(struct worker *w, const void *args, struct http_slot *slot)
{
	struct tern_bytes id = http_get_bytes(args);
	struct session *s = session_find(w, id.data, id.len);
	if (s) {
		slot->err = describe(w, s, &slot->out);
		slot->n = 1;
	}
}

static int cmp_subs(const void *a, const void *b)
{
	const struct session_sub_view *x = a, *y = b;
	return cmp_bytes(&x->filter, &y->filter);
}

/* On the home worker: {"id": ..., "subscriptions": [...]} of one client,
 * sorted by filter, into the slot (n 1), or nothing (n 0). */
static void on_subscriptions(struct worker *w, const void *args, struct http_slot *slot)
{
	struct tern_bytes id = http_get_bytes(args);
	struct session *s = session_find(w, id.data, id.len);
	if (!s)
		return;
	size_t n = session_sub_count(s), k = 0, pos = 0;
	struct session_sub_view *v = malloc((n + 1) * sizeof(*v));
	if (!v) {
		slot->err = TERN_E_NOMEM;
		return;
	}
	while (k < n && session_sub_next(s, &pos, &v[k]))
		k++;
	qsort(v, k, sizeof(*v), cmp_subs);
	struct json j;
	json_init(&j, &slot->out);
	json_obj(&j, NULL);
	json_str(&j, "id", id.data, id.len);
	json_arr(&j, "subscriptions");
	for (size_t i = 0; i < k; i++) {
		json_obj(&j, NULL);
		json_str(&j, "filter", v[i].filter.data, v[i].filter.len);
		json_u64(&j, "qos", v[i].qos);
		json_bool(&j, "no_local", v[i].flags & ROUTE_NO_LOCAL);
		json_bool(&j, "retain_as_published", v[i].flags & ROUTE_RAP);
		json_u64(&j, "retain_handling", v[i].retain_handling);
		if (v[i].sub_id)
			json_u64(&j, "subscription_identifier", v[i].sub_id);
		else
			json_null(&j, "subscription_identifier");
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_obj_end(&j);
	free(v);
	slot->err = json_end(&j);
	slot->n = 1;
}

void api_client(struct http_server *h, const struct api_route *route, bool subs,
                struct api_reply *reply)
{
	struct broker *b = h->b;
	size_t alen;
	uint8_t *args = route->id.len <= UINT16_MAX ? http_pack_bytes(route->id, &alen) : NULL;
	if (!args && route->id.len > UINT16_MAX) {
		api_error(reply, 404, "no such client");
		return;
	}
	unsigned home = broker_home_of(b, route->id.data, route->id.len);
	struct http_call *c =
	        args ? http_call_new(b, subs ? on_subscriptions : on_describe_one, args, alen)
	             : NULL;
	free(args);
	if (ask(b, c, &home, 1, reply)) {
		struct http_slot *sl = http_call_slot(c, home);
		if (!sl->n) {
			api_error(reply, 404, "no such client");
		} else {
			reply->status = 200;
			if (buf_append(&reply->body, sl->out.data + sl->out.off, buf_used(&sl->out),
			               0))
				api_error(reply, 500, "out of memory");
		}
	}
	http_call_unref(c);
}

/* On each worker: every subscription filter of its sessions, [u16][bytes]
 * each. */
static void on_filters(struct worker *w, const void *args, struct http_slot *slot)
{
	(void)args;
	size_t pos = 0;
	struct session *s;
	while ((s = session_next(w, &pos)) && !slot->err) {
		size_t sp = 0;
		struct session_sub_view v;
		while (!slot->err && session_sub_next(s, &sp, &v)) {
			slot->err = http_put_bytes(&slot->out, v.filter);
			slot->n++;
		}
	}
}

struct topic_count {
	struct tern_bytes filter;
	size_t subscribers;
};

static int cmp_counts(const void *a, const void *b)
{
	const struct topic_count *x = a, *y = b;
	if (x->subscribers != y->subscribers)
		return x->subscribers < y->subscribers ? 1 : -1;
	return cmp_bytes(&x->filter, &y->filter);
}

/* On each worker: its heaviest published topics (topic_rate.h), each
 * with the sessions whose ordinary subscriptions match it (from this
 * worker's replica of the router, which every worker has whole):
 * [u16 len][bytes][u8 cut][u64 rate in milli-messages/s][u32 subscribers]. */
static void on_topic_rates(struct worker *w, const void *args, struct http_slot *slot)
{
	(void)args;
	if (!w->topic_rates)
		return;
	struct topic_rate_view v[128];
	size_t n = topic_rates_read(w->topic_rates, mono_ms(), v, sizeof(v) / sizeof(v[0]));
	struct route_matches m = {0};
	for (size_t i = 0; i < n && !slot->err; i++) {
		uint32_t subs = 0;
		if (!v[i].cut &&
		    router_match_plain(w->router, v[i].topic.data, v[i].topic.len, &m) == TERN_OK) {
			/* A session with overlapping filters is one subscriber. */
			qsort(m.v, m.n, sizeof(*m.v), cmp_route_session);
			for (size_t k = 0; k < m.n; k++)
				subs += k == 0 || m.v[k].session != m.v[k - 1].session;
		}
		uint64_t milli = (uint64_t)(v[i].per_second * 1000.0 + 0.5);
		uint8_t rec[13] = {v[i].cut};
		for (int b = 0; b < 8; b++)
			rec[1 + b] = (uint8_t)(milli >> (56 - 8 * b));
		for (int b = 0; b < 4; b++)
			rec[9 + b] = (uint8_t)(subs >> (24 - 8 * b));
		slot->err = http_put_bytes(&slot->out, v[i].topic);
		if (!slot->err)
			slot->err = buf_append(&slot->out, rec, sizeof(rec), 0);
		slot->n++;
	}
	free(m.v);
}

struct topic_rate_row {
	struct tern_bytes topic;
	bool cut;
	double per_second;
	uint32_t subscribers;
};

static int cmp_rate_topic(const void *a, const void *b)
{
	const struct topic_rate_row *x = a, *y = b;
	int c = cmp_bytes(&x->topic, &y->topic);
	return c ? c : (int)x->cut - (int)y->cut;
}

static int cmp_rate(const void *a, const void *b)
{
	const struct topic_rate_row *x = a, *y = b;
	if (x->per_second != y->per_second)
		return x->per_second < y->per_second ? 1 : -1;
	return cmp_rate_topic(a, b);
}

/* The workers' topic rates, merged (a topic published on several workers
 * is one row, its rates added), heaviest first, into j as "topics". */
static bool topic_rates_json(struct broker *b, const struct api_route *route, struct json *j,
                             struct api_reply *reply)
{
	struct http_call *c = http_call_new(b, on_topic_rates, "", 0);
	if (!ask(b, c, NULL, 0, reply)) {
		http_call_unref(c);
		return false;
	}
	size_t total = 0, n = 0;
	for (unsigned i = 0; i < b->n_workers; i++)
		total += http_call_slot(c, i)->n;
	struct topic_rate_row *rows = malloc((total + 1) * sizeof(*rows));
	if (!rows) {
		http_call_unref(c);
		api_error(reply, 500, "out of memory");
		return false;
	}
	for (unsigned i = 0; i < b->n_workers; i++) {
		struct http_slot *sl = http_call_slot(c, i);
		const uint8_t *p = sl->out.data + sl->out.off;
		for (uint64_t k = 0; k < sl->n; k++) {
			struct topic_rate_row *r = &rows[n++];
			r->topic = http_get_bytes(p);
			p += 2 + r->topic.len;
			r->cut = p[0];
			uint64_t milli = 0;
			for (int x = 0; x < 8; x++)
				milli = milli << 8 | p[1 + x];
			r->per_second = (double)milli / 1000.0;
			r->subscribers = (uint32_t)p[9] << 24 | (uint32_t)p[10] << 16 |
			                 (uint32_t)p[11] << 8 | p[12];
			p += 13;
		}
	}
	size_t distinct = 0;
	if (n)
		qsort(rows, n, sizeof(*rows), cmp_rate_topic);
	for (size_t i = 0; i < n; i++) {
		if (distinct && cmp_rate_topic(&rows[distinct - 1], &rows[i]) == 0) {
			rows[distinct - 1].per_second += rows[i].per_second;
			continue;
		}
		rows[distinct++] = rows[i];
	}
	if (distinct)
		qsort(rows, distinct, sizeof(*rows), cmp_rate);
	json_arr(j, "topics");
	for (size_t i = 0; i < distinct && i < route->limit; i++) {
		json_obj(j, NULL);
		json_str(j, "topic", rows[i].topic.data, rows[i].topic.len);
		json_bool(j, "truncated", rows[i].cut);
		json_num(j, "messages_per_second", rows[i].per_second);
		if (rows[i].cut)
			json_null(j, "subscribers");
		else
			json_u64(j, "subscribers", rows[i].subscribers);
		json_obj_end(j);
	}
	json_arr_end(j);
	free(rows);
	http_call_unref(c);
	return true;
}

void api_topics(struct http_server *h, const struct api_route *route, struct api_reply *reply)
{
	struct broker *b = h->b;
	struct http_call *c = http_call_new(b, on_filters, "", 0);
	if (!ask(b, c, NULL, 0, reply)) {
		http_call_unref(c);
		return;
	}
	size_t n, distinct = 0;
	bool oom;
	struct tern_bytes *f = gather_ids(b, c, &n, &oom);
	struct topic_count *counts = n ? malloc(n * sizeof(*counts)) : NULL;
	if (oom || (n && !counts)) {
		free(f);
		free(counts);
		http_call_unref(c);
		api_error(reply, 500, "out of memory");
		return;
	}
	if (n)
		qsort(f, n, sizeof(*f), cmp_bytes);
	for (size_t i = 0; i < n; i++) {
		if (distinct && cmp_bytes(&counts[distinct - 1].filter, &f[i]) == 0) {
			counts[distinct - 1].subscribers++;
			continue;
		}
		counts[distinct].filter = f[i];
		counts[distinct++].subscribers = 1;
	}
	if (distinct)
		qsort(counts, distinct, sizeof(*counts), cmp_counts);
	struct json j;
	json_init(&j, &reply->body);
	json_obj(&j, NULL);
	json_u64(&j, "subscriptions", n);
	json_u64(&j, "filters_total", distinct);
	json_arr(&j, "filters");
	for (size_t i = 0; i < distinct && i < route->limit; i++) {
		json_obj(&j, NULL);
		json_str(&j, "filter", counts[i].filter.data, counts[i].filter.len);
		json_u64(&j, "subscribers", counts[i].subscribers);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	free(f);
	free(counts);
	http_call_unref(c);
	if (!topic_rates_json(b, route, &j, reply))
		return; /* the error is set */
	json_obj_end(&j);
	reply->status = 200;
	if (json_end(&j))
		api_error(reply, 500, "out of memory");
}
