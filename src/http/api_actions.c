/*
 * api_actions.c - the admin API's actions and the retained messages:
 * POST /api/v1/clients/ID/disconnect, DELETE /api/v1/sessions/ID,
 * GET /api/v1/retained?filter=F, DELETE /api/v1/retained?topic=T.
 *
 * A client's connection and session are its home worker's, so the actions
 * on them run there (http_call.h), as a broker-side event between two
 * packets: the connection is closed through its sink with v5 reason 0x98
 * (Administrative action; a 3.1 / 3.1.1 client has its connection closed),
 * and a session is ended the way its own expiry would end it. The retained
 * store is shared and locked, so it is read from the HTTP thread; a delete
 * goes through a worker, for the store batch and the cluster stream
 * (admin.h). What each action did is logged by http.c, with who asked.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/admin.h"
#include "broker/broker.h"
#include "broker/retain.h"
#include "broker/session.h"
#include "broker/sink.h"
#include "broker/worker.h"
#include "http/http_call.h"
#include "http/http_int.h"
#include "http/json.h"
#include "util/clock.h"
#include "util/msg.h"

/* The outcomes of the actions on a worker, in slot->n. BRIDGE: the
 * session is a bridge's local side (sink.internal, bridge_local.c), the
 * broker's own: ending it would stop the bridge for good, so the API
 * leaves it to the bridge's configuration. */
enum { GONE, OFFLINE, DONE, BRIDGE };

#define ADMIN_WHY "administrative action (admin HTTP API)"

static void on_disconnect(struct worker *w, const void *args, struct http_slot *slot)
{
	struct tern_bytes id = http_get_bytes(args);
	struct session *s = session_find(w, id.data, id.len);
	struct sink *k = s ? session_sink(s) : NULL;
	slot->n = !s ? GONE : !k ? OFFLINE : k->internal ? BRIDGE : DONE;
	if (slot->n == DONE)
		sink_close(k, TERN_RC_ADMINISTRATIVE_ACTION, ADMIN_WHY);
}

static void on_session_delete(struct worker *w, const void *args, struct http_slot *slot)
{
	struct tern_bytes id = http_get_bytes(args);
	struct session *s = session_find(w, id.data, id.len);
	if (!s) {
		slot->n = GONE;
		return;
	}
	struct sink *k = session_sink(s);
	if (k && k->internal) {
		slot->n = BRIDGE;
	} else if (k) {
		/* Expiry 0 ends it with its connection, which goes now: the
		 * store forgets it at once [MQTT-3.1.2-23], the rest when
		 * the connection is reaped, before the loop sleeps. */
		session_set_expiry(s, 0);
		sink_close(k, TERN_RC_ADMINISTRATIVE_ACTION, ADMIN_WHY);
		slot->n = DONE;
	} else {
		session_destroy(s);
		slot->n = OFFLINE;
	}
}

/* Runs fn for the client of route->id on its home worker; the outcome
 * into *outcome. False when the answer is set already (an error). */
static bool on_home(struct http_server *h, const struct api_route *route, http_call_fn fn,
                    uint64_t *outcome, struct api_reply *reply)
{
	size_t len;
	uint8_t *args = http_pack_bytes(route->id, &len);
	if (!args && route->id.len > UINT16_MAX) {
		api_error(reply, 404, "no such client");
		return false;
	}
	struct http_call *c = args ? http_call_new(h->b, fn, args, len) : NULL;
	free(args);
	unsigned home = broker_home_of(h->b, route->id.data, route->id.len);
	enum tern_err err = c ? http_call_run(c, &home, 1, API_CALL_TIMEOUT_MS) : TERN_E_NOMEM;
	if (!err)
		*outcome = http_call_slot(c, home)->n;
	http_call_unref(c);
	if (err == TERN_E_TIMEOUT)
		api_error(reply, 503, "the workers did not answer in time");
	else if (err)
		api_error(reply, 500, "out of memory");
	return !err;
}

static void answer(struct api_reply *reply, const char *what, struct tern_bytes id,
                   const char *flag, bool value)
{
	struct json j;
	json_init(&j, &reply->body);
	json_obj(&j, NULL);
	json_str(&j, what, id.data, id.len);
	if (flag)
		json_bool(&j, flag, value);
	json_obj_end(&j);
	reply->status = 200;
	if (json_end(&j))
		api_error(reply, 500, "out of memory");
}

void api_disconnect(struct http_server *h, const struct api_route *route, struct api_reply *reply)
{
	uint64_t outcome;
	if (!on_home(h, route, on_disconnect, &outcome, reply))
		return;
	if (outcome == GONE)
		api_error(reply, 404, "no such client");
	else if (outcome == BRIDGE)
		api_error(reply, 409,
		          "a bridge's own session: stop the bridge in the configuration");
	else if (outcome == OFFLINE)
		api_error(reply, 409, "the client is not connected (its session is kept)");
	else
		answer(reply, "disconnected", route->id, NULL, false);
}

void api_session_delete(struct http_server *h, const struct api_route *route,
                        struct api_reply *reply)
{
	uint64_t outcome;
	if (!on_home(h, route, on_session_delete, &outcome, reply))
		return;
	if (outcome == GONE)
		api_error(reply, 404, "no such session");
	else if (outcome == BRIDGE)
		api_error(reply, 409,
		          "a bridge's own session: stop the bridge in the configuration");
	else
		answer(reply, "deleted", route->id, "was_connected", outcome == DONE);
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Appends the base64 of s[0..len) (RFC 4648, padded) to out. */
static enum tern_err base64(struct buf *out, const uint8_t *s, size_t len)
{
	enum tern_err err = buf_reserve(out, (len + 2) / 3 * 4, 0);
	for (size_t i = 0; !err && i < len; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < len ? (uint32_t)s[i + 1] << 8 : 0) |
		             (i + 2 < len ? s[i + 2] : 0);
		char q[4] = {b64[v >> 18], b64[(v >> 12) & 63],
		             i + 1 < len ? b64[(v >> 6) & 63] : '=',
		             i + 2 < len ? b64[v & 63] : '='};
		err = buf_append(out, q, 4, 0);
	}
	return err;
}

static int cmp_topics(const void *a, const void *b)
{
	const struct msg *x = *(struct msg *const *)a, *y = *(struct msg *const *)b;
	size_t n = x->topic.len < y->topic.len ? x->topic.len : y->topic.len;
	int c = n ? memcmp(x->topic.data, y->topic.data, n) : 0;
	return c ? c : (x->topic.len > y->topic.len) - (x->topic.len < y->topic.len);
}

/* Payloads up to this size are in the answer; larger ones only by size. */
#define RETAINED_PAYLOAD_MAX 65535u

void api_retained(struct http_server *h, const struct api_route *route, struct api_reply *reply)
{
	struct broker *b = h->b;
	struct tern_bytes f = route->arg;
	struct tern_bytes group, plain;
	if (tern_topic_filter_check(f.data, f.len) != TERN_OK ||
	    tern_topic_filter_share(f, &group, &plain)) {
		api_error(reply, 400, "filter= is not a topic filter (nor may it be $share/...)");
		return;
	}
	uint64_t now = mono_ms();
	struct retain_hits hits = {0};
	if (retain_match(b->retain, f.data, f.len, now, &hits) != TERN_OK) {
		retain_hits_free(&hits);
		api_error(reply, 500, "out of memory");
		return;
	}
	if (hits.n)
		qsort(hits.v, hits.n, sizeof(*hits.v), cmp_topics);
	size_t first = (size_t)(route->page - 1) * route->limit;
	struct json j;
	json_init(&j, &reply->body);
	json_obj(&j, NULL);
	json_u64(&j, "total", hits.n);
	json_u64(&j, "page", route->page);
	json_u64(&j, "limit", route->limit);
	json_u64(&j, "pages", (hits.n + route->limit - 1) / route->limit);
	json_arr(&j, "retained");
	struct buf enc = {0};
	for (size_t i = first; i < hits.n && i < first + route->limit; i++) {
		const struct msg *m = hits.v[i];
		json_obj(&j, NULL);
		json_str(&j, "topic", m->topic.data, m->topic.len);
		json_u64(&j, "qos", m->qos);
		json_u64(&j, "bytes", m->payload.len);
		bool shown = m->payload.len <= RETAINED_PAYLOAD_MAX;
		/* The payload as text when it is UTF-8, and always as base64:
		 * MQTT payloads are bytes. */
		if (shown && tern_utf8_valid(m->payload.data, m->payload.len))
			json_str(&j, "payload", m->payload.data, m->payload.len);
		else
			json_null(&j, "payload");
		enc.off = enc.len = 0;
		if (shown && base64(&enc, m->payload.data, m->payload.len) == TERN_OK)
			json_str(&j, "payload_base64", enc.data ? enc.data : (const uint8_t *)"",
			         buf_used(&enc));
		else
			json_null(&j, "payload_base64");
		if (m->expire_at)
			json_u64(&j, "expires_in",
			         m->expire_at > now ? (m->expire_at - now + 999) / 1000 : 0);
		else
			json_null(&j, "expires_in");
		json_obj_end(&j);
	}
	buf_free(&enc);
	json_arr_end(&j);
	json_obj_end(&j);
	retain_hits_free(&hits);
	reply->status = 200;
	if (json_end(&j))
		api_error(reply, 500, "out of memory");
}

static void on_retain_clear(struct worker *w, const void *args, struct http_slot *slot)
{
	enum tern_err err = admin_retain_clear(w, http_get_bytes(args));
	slot->n = err == TERN_E_NOT_FOUND ? GONE : DONE;
	if (err != TERN_E_NOT_FOUND)
		slot->err = err;
}

void api_retained_delete(struct http_server *h, const struct api_route *route,
                         struct api_reply *reply)
{
	struct tern_bytes t = route->arg;
	if (tern_topic_name_check(t.data, t.len) != TERN_OK) {
		api_error(reply, 400, "topic= is not a topic name");
		return;
	}
	size_t len;
	uint8_t *args = http_pack_bytes(t, &len);
	struct http_call *c = args ? http_call_new(h->b, on_retain_clear, args, len) : NULL;
	free(args);
	/* Any worker can: the worker of the topic's hash, so that deletes
	 * of one topic keep their order. */
	unsigned at = broker_home_of(h->b, t.data, t.len);
	enum tern_err err = c ? http_call_run(c, &at, 1, API_CALL_TIMEOUT_MS) : TERN_E_NOMEM;
	uint64_t outcome = GONE;
	if (!err) {
		err = http_call_slot(c, at)->err;
		outcome = http_call_slot(c, at)->n;
	}
	http_call_unref(c);
	if (err == TERN_E_TIMEOUT)
		api_error(reply, 503, "the workers did not answer in time");
	else if (err)
		api_error(reply, 500, "out of memory");
	else if (outcome == GONE)
		api_error(reply, 404, "no retained message on this topic");
	else
		answer(reply, "deleted", t, NULL, false);
}
