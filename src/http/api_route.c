/*
 * api_route.c - the admin API's request-target parser (api_route.h).
 *
 * The target is copied once into r->scratch, split there into path and
 * query, the path into segments at '/', and each segment and query value is
 * percent-decoded in place (decoding never lengthens), so the ids and
 * arguments handed out are slices of the copy and nothing else is
 * allocated. Everything is bounded by the target's length, which the HTTP
 * layer has already bounded (http.c: a request line over its memory limit
 * is answered 414 before it gets here).
 */
#include <stdlib.h>
#include <string.h>

#include "http/api_route.h"
#include "util/hex.h"

#define MAX_SEGS 8

bool api_pct_decode(uint8_t *s, size_t len, size_t *out_len)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = s[i];
		if (c == '%') {
			if (len - i < 3)
				return false;
			int hi = hex_digit(s[i + 1]);
			int lo = hex_digit(s[i + 2]);
			if (hi < 0 || lo < 0)
				return false;
			c = (uint8_t)(hi << 4 | lo);
			i += 2;
		}
		if (c == 0)
			return false;
		s[o++] = c;
	}
	*out_len = o;
	return true;
}

static bool seg_is(struct tern_bytes s, const char *word)
{
	size_t n = strlen(word);
	return s.len == n && memcmp(s.data, word, n) == 0;
}

/* The query parameters an endpoint takes. */
enum { Q_PREFIX = 1, Q_PAGE = 2, Q_LIMIT = 4, Q_FILTER = 8, Q_TOPIC = 16, Q_ANY = 32 };

static bool parse_u32(struct tern_bytes v, uint32_t lo, uint32_t hi, uint32_t *out)
{
	if (v.len == 0 || v.len > 9)
		return false;
	uint32_t n = 0;
	for (size_t i = 0; i < v.len; i++) {
		if (v.data[i] < '0' || v.data[i] > '9')
			return false;
		n = n * 10 + (uint32_t)(v.data[i] - '0');
	}
	if (n < lo || n > hi)
		return false;
	*out = n;
	return true;
}

/* Parses q[0..len) (the query, in the scratch copy) for r; 200 or 400. */
static int parse_query(uint8_t *q, size_t len, unsigned takes, unsigned needs, struct api_route *r,
                       const char **why)
{
	unsigned seen = 0;
	size_t i = 0;
	while (i <= len && !(takes & Q_ANY)) {
		size_t end = i;
		while (end < len && q[end] != '&')
			end++;
		if (end > i) {
			uint8_t *k = q + i;
			size_t klen = 0;
			while (i + klen < end && k[klen] != '=')
				klen++;
			if (i + klen == end) {
				*why = "a query parameter without '='";
				return 400;
			}
			uint8_t *v = k + klen + 1;
			size_t vlen = end - (i + klen + 1);
			struct tern_bytes key = {k, klen};
			unsigned which = seg_is(key, "prefix")   ? Q_PREFIX
			                 : seg_is(key, "page")   ? Q_PAGE
			                 : seg_is(key, "limit")  ? Q_LIMIT
			                 : seg_is(key, "filter") ? Q_FILTER
			                 : seg_is(key, "topic")  ? Q_TOPIC
			                                         : 0;
			if (!(which & takes)) {
				*why = "a query parameter this path does not take";
				return 400;
			}
			if (which & seen) {
				*why = "a query parameter given twice";
				return 400;
			}
			seen |= which;
			if (!api_pct_decode(v, vlen, &vlen)) {
				*why = "bad percent-encoding in the query";
				return 400;
			}
			struct tern_bytes val = {v, vlen};
			if (which == Q_PAGE && !parse_u32(val, 1, 100000000, &r->page)) {
				*why = "page must be a number from 1";
				return 400;
			}
			if (which == Q_LIMIT && !parse_u32(val, 1, API_LIMIT_MAX, &r->limit)) {
				*why = "limit must be a number from 1 to 1000";
				return 400;
			}
			if (which & (Q_PREFIX | Q_FILTER | Q_TOPIC)) {
				r->arg = val;
				r->has_arg = true;
			}
		}
		i = end + 1;
	}
	if ((needs & ~seen) != 0) {
		*why = needs & Q_FILTER ? "filter= is required" : "topic= is required";
		return 400;
	}
	return 200;
}

struct ep_row {
	enum api_ep ep;
	const char *method;
	unsigned takes, needs;
	bool write;
};

int api_route(const char *method, const char *target, size_t len, struct api_route *r,
              const char **why, const char **allow)
{
	memset(r, 0, sizeof(*r));
	r->page = 1;
	r->limit = API_LIMIT_DEFAULT;
	*why = "no such path";
	*allow = NULL;
	if (len == 0 || target[0] != '/') {
		*why = "the request-target is not a path";
		return 400;
	}
	r->scratch = malloc(len + 1);
	if (!r->scratch) {
		*why = "out of memory";
		return 500;
	}
	memcpy(r->scratch, target, len);
	r->scratch[len] = 0;
	uint8_t *s = r->scratch;
	size_t plen = 0;
	while (plen < len && s[plen] != '?' && s[plen] != '#')
		plen++;
	if (plen < len && s[plen] == '#') {
		*why = "a fragment in the request-target ('#' in a topic is sent as %23)";
		return 400;
	}
	uint8_t *query = plen < len ? s + plen + 1 : s + len;
	size_t qlen = plen < len ? len - plen - 1 : 0;
	for (size_t i = 0; i < qlen; i++)
		if (query[i] == '#') {
			*why = "a fragment in the request-target ('#' in a topic is sent as %23)";
			return 400;
		}

	/* Segments, decoded after the split. */
	struct tern_bytes seg[MAX_SEGS];
	size_t n = 0;
	for (size_t i = 1; i <= plen;) {
		size_t end = i;
		while (end < plen && s[end] != '/')
			end++;
		if (n == MAX_SEGS)
			return 404;
		size_t dlen;
		if (!api_pct_decode(s + i, end - i, &dlen)) {
			*why = "bad percent-encoding in the path";
			return 400;
		}
		seg[n].data = s + i;
		seg[n].len = dlen;
		n++;
		i = end + 1;
	}

	static const struct ep_row dashboard = {EP_DASHBOARD, "GET", Q_ANY, 0, false},
	                           metrics = {EP_METRICS, "GET", Q_ANY, 0, false},
	                           broker = {EP_BROKER, "GET", 0, 0, false},
	                           clients = {EP_CLIENTS, "GET", Q_PREFIX | Q_PAGE | Q_LIMIT, 0,
	                                      false},
	                           client = {EP_CLIENT, "GET", 0, 0, false},
	                           subs = {EP_CLIENT_SUBS, "GET", 0, 0, false},
	                           disconnect = {EP_CLIENT_DISCONNECT, "POST", 0, 0, true},
	                           session = {EP_SESSION_DELETE, "DELETE", 0, 0, true},
	                           topics = {EP_TOPICS, "GET", Q_LIMIT, 0, false},
	                           retained = {EP_RETAINED, "GET", Q_FILTER | Q_PAGE | Q_LIMIT,
	                                       Q_FILTER, false},
	                           retained_del = {EP_RETAINED_DELETE, "DELETE", Q_TOPIC, Q_TOPIC,
	                                           true},
	                           reload = {EP_RELOAD, "POST", 0, 0, true};
	const struct ep_row *rows[2] = {NULL, NULL};
	bool has_id = false;
	if (n == 1 && seg[0].len == 0) {
		rows[0] = &dashboard;
	} else if (n == 1 && seg_is(seg[0], "metrics")) {
		rows[0] = &metrics;
	} else if (n >= 3 && seg_is(seg[0], "api") && seg_is(seg[1], "v1")) {
		struct tern_bytes a = seg[2];
		if (n == 3 && seg_is(a, "broker")) {
			rows[0] = &broker;
		} else if (n == 3 && seg_is(a, "clients")) {
			rows[0] = &clients;
		} else if (n >= 4 && n <= 5 && seg_is(a, "clients") && seg[3].len) {
			has_id = true;
			if (n == 4)
				rows[0] = &client;
			else if (seg_is(seg[4], "subscriptions"))
				rows[0] = &subs;
			else if (seg_is(seg[4], "disconnect"))
				rows[0] = &disconnect;
		} else if (n == 4 && seg_is(a, "sessions") && seg[3].len) {
			has_id = true;
			rows[0] = &session;
		} else if (n == 3 && seg_is(a, "topics")) {
			rows[0] = &topics;
		} else if (n == 3 && seg_is(a, "retained")) {
			rows[0] = &retained;
			rows[1] = &retained_del;
		} else if (n == 3 && seg_is(a, "reload")) {
			rows[0] = &reload;
		}
	}
	if (!rows[0])
		return 404;
	/* HEAD is GET without the body (RFC 9110 section 9.3.2); the HTTP
	 * layer leaves the body out. */
	const char *m = strcmp(method, "HEAD") == 0 ? "GET" : method;
	const struct ep_row *row = NULL;
	for (int i = 0; i < 2 && rows[i]; i++)
		if (strcmp(m, rows[i]->method) == 0)
			row = rows[i];
	if (!row) {
		*why = "method not allowed on this path";
		*allow = rows[1]                               ? "GET, HEAD, DELETE"
		         : strcmp(rows[0]->method, "GET") == 0 ? "GET, HEAD"
		                                               : rows[0]->method;
		return 405;
	}
	r->ep = row->ep;
	r->write = row->write;
	if (has_id)
		r->id = seg[3];
	return parse_query(query, qlen, row->takes, row->needs, r, why);
}

void api_route_free(struct api_route *r)
{
	free(r->scratch);
	memset(r, 0, sizeof(*r));
}
