/*
 * fuzz_http.c - libFuzzer target for the parts of the HTTP listener that
 * are ours (src/http): the request-target parser and router of the admin
 * API (api_route.c, percent-decoding and query parsing included) and the
 * JSON writer's escaping (json.c). libmicrohttpd, which frames the
 * requests, is fuzzed upstream.
 *
 * Input: the first byte picks the method (GET, HEAD, POST, DELETE, PUT or
 * a made-up one), the rest is the request-target as it came on the request
 * line. Invariants checked:
 *   - the status is one of 200, 400, 404, 405; 405 names the methods
 *     allowed and 200 an endpoint;
 *   - what the route hands out (the id, the argument) lies inside its
 *     scratch copy, holds no NUL, and is no longer than the target;
 *   - the same target parses the same way twice (no hidden state);
 *   - escaping the input (and the decoded id) as a JSON string gives
 *     text with no control character and no unescaped '"'.
 *
 * Dictionary: fuzz/http.dict.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "http/api_route.h"
#include "http/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_slice(const struct api_route *r, struct tern_bytes b, size_t len)
{
	if (!b.len)
		return;
	if (b.data < r->scratch || b.data + b.len > r->scratch + len || b.len > len ||
	    memchr(b.data, 0, b.len))
		abort();
}

static void check_json(const uint8_t *s, size_t len)
{
	struct buf out = {0};
	if (json_escape(&out, s, len) != TERN_OK) {
		buf_free(&out);
		return;
	}
	size_t n = buf_used(&out);
	const uint8_t *p = n ? out.data + out.off : NULL;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < 0x20)
			abort();
		if (p[i] == '"') {
			/* Escaped: an odd run of backslashes before it. */
			size_t k = 0;
			while (k < i && p[i - 1 - k] == '\\')
				k++;
			if (k % 2 == 0)
				abort();
		}
	}
	buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = {"GET", "HEAD", "POST", "DELETE", "PUT", "BREW"};
	if (size < 1)
		return 0;
	const char *method = methods[data[0] % (sizeof(methods) / sizeof(methods[0]))];
	const char *target = (const char *)data + 1;
	size_t len = size - 1;

	struct api_route r, again;
	const char *why = NULL, *allow = NULL;
	int status = api_route(method, target, len, &r, &why, &allow);
	if (!why)
		abort();
	switch (status) {
	case 200:
		if (r.ep == EP_NONE)
			abort();
		check_slice(&r, r.id, len);
		check_slice(&r, r.arg, len);
		if (r.page < 1 || r.limit < 1 || r.limit > API_LIMIT_MAX)
			abort();
		check_json(r.id.data ? r.id.data : (const uint8_t *)"", r.id.len);
		break;
	case 405:
		if (!allow || !allow[0])
			abort();
		break;
	case 400:
	case 404:
		break;
	case 500: /* out of memory */
		api_route_free(&r);
		return 0;
	default:
		abort();
	}
	const char *why2 = NULL, *allow2 = NULL;
	int status2 = api_route(method, target, len, &again, &why2, &allow2);
	if (status2 != status && status2 != 500)
		abort();
	if (status2 == 200 &&
	    (again.ep != r.ep || again.id.len != r.id.len || again.arg.len != r.arg.len ||
	     again.page != r.page || again.limit != r.limit ||
	     (r.id.len && memcmp(again.id.data, r.id.data, r.id.len)) ||
	     (r.arg.len && memcmp(again.arg.data, r.arg.data, r.arg.len))))
		abort();
	api_route_free(&again);
	api_route_free(&r);
	check_json(data, size);
	return 0;
}
