/*
 * api_route.h - the admin API's request line, parsed (api_route.c): which
 * endpoint a method and a request-target name, the client id in the path
 * and the query parameters, percent-decoded.
 *
 * Pure: no I/O, no broker; the HTTP glue (http.c) hands it the raw
 * request-target as received, and fuzz/fuzz_http.c hands it anything.
 *
 * Paths (docs/http-api.md):
 *
 *   GET    /metrics                          Prometheus text
 *   GET    /                                 the dashboard page
 *   GET    /api/v1/broker
 *   GET    /api/v1/clients[?prefix=P&page=N&limit=L]
 *   GET    /api/v1/clients/ID
 *   GET    /api/v1/clients/ID/subscriptions
 *   POST   /api/v1/clients/ID/disconnect
 *   DELETE /api/v1/sessions/ID
 *   GET    /api/v1/topics[?limit=L]
 *   GET    /api/v1/retained?filter=F[&limit=L]
 *   DELETE /api/v1/retained?topic=T
 *   POST   /api/v1/reload
 *
 * Percent-encoding (RFC 3986 section 2.1): a path segment is decoded after
 * the path is split at '/', so an id holding '/' is sent as %2F; '+' is a
 * plus, not a space (it is the MQTT single-level wildcard), and '#' must be
 * sent as %23, as a bare '#' starts the fragment. A '%' not followed by two
 * hex digits, a decoded NUL (no MQTT string holds U+0000), an unknown or
 * repeated query parameter, or a number that does not parse is a 400.
 */
#ifndef TERN_HTTP_API_ROUTE_H
#define TERN_HTTP_API_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tern/codec.h"

enum api_ep {
	EP_NONE,
	EP_DASHBOARD,
	EP_METRICS,
	EP_BROKER,
	EP_CLIENTS,
	EP_CLIENT,
	EP_CLIENT_SUBS,
	EP_CLIENT_DISCONNECT,
	EP_SESSION_DELETE,
	EP_TOPICS,
	EP_RETAINED,
	EP_RETAINED_DELETE,
	EP_RELOAD,
};

/* Pages of lists: API_LIMIT_DEFAULT items unless limit= says otherwise, at
 * most API_LIMIT_MAX. */
#define API_LIMIT_DEFAULT 100u
#define API_LIMIT_MAX     1000u

struct api_route {
	enum api_ep ep;
	bool write;            /* it changes something (logged with who did it) */
	struct tern_bytes id;  /* the client id of the path (decoded) */
	struct tern_bytes arg; /* prefix=, filter= or topic= (decoded) */
	bool has_arg;
	uint32_t page;  /* from 1 */
	uint32_t limit; /* 1 .. API_LIMIT_MAX */
	/* The decoded strings point into this copy of the target; owned,
	 * freed by api_route_free(). */
	uint8_t *scratch;
};

/*
 * Parses method and the request-target target[0..len) (origin-form: path
 * and query, as on the request line) into r. Returns the HTTP status: 200
 * (r->ep says which endpoint), 400 (malformed: *why says how), 404 (no
 * such path), 405 (the path exists, the method does not: *allow lists the
 * methods it takes), 500 (out of memory). *why and *allow are static
 * strings. Free r with api_route_free() whatever it returned.
 */
int api_route(const char *method, const char *target, size_t len, struct api_route *r,
              const char **why, const char **allow);

/* Frees what r holds and zeroes it. */
void api_route_free(struct api_route *r);

/* Percent-decodes s[0..len) in place ('+' stays '+'); the decoded length
 * into *out_len. False on a bad escape or a decoded NUL. */
bool api_pct_decode(uint8_t *s, size_t len, size_t *out_len);

#endif
