/*
 * test_http_route.c - unit tests of the admin API's request-target parser
 * (src/http/api_route.h): every endpoint and its method, percent-decoding
 * after the split at '/' (an id holding "/" or "#" or "+"), the query
 * parameters each endpoint takes, and the 400 / 404 / 405 answers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "http/api_route.h"

static int route(const char *method, const char *target, struct api_route *r)
{
	const char *why, *allow;
	return api_route(method, target, strlen(target), r, &why, &allow);
}

static void assert_bytes(struct tern_bytes b, const char *want)
{
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(b.data, want, b.len);
}

static void test_every_endpoint(void **state)
{
	(void)state;
	static const struct {
		const char *method, *target;
		enum api_ep ep;
		bool write;
	} cases[] = {
	        {"GET", "/", EP_DASHBOARD, false},
	        {"GET", "/metrics", EP_METRICS, false},
	        {"GET", "/metrics?anything", EP_METRICS, false},
	        {"HEAD", "/api/v1/broker", EP_BROKER, false},
	        {"GET", "/api/v1/broker", EP_BROKER, false},
	        {"GET", "/api/v1/clients", EP_CLIENTS, false},
	        {"GET", "/api/v1/clients/c1", EP_CLIENT, false},
	        {"GET", "/api/v1/clients/c1/subscriptions", EP_CLIENT_SUBS, false},
	        {"POST", "/api/v1/clients/c1/disconnect", EP_CLIENT_DISCONNECT, true},
	        {"DELETE", "/api/v1/sessions/c1", EP_SESSION_DELETE, true},
	        {"GET", "/api/v1/topics", EP_TOPICS, false},
	        {"GET", "/api/v1/retained?filter=%23", EP_RETAINED, false},
	        {"DELETE", "/api/v1/retained?topic=a", EP_RETAINED_DELETE, true},
	        {"POST", "/api/v1/reload", EP_RELOAD, true},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct api_route r;
		assert_int_equal(route(cases[i].method, cases[i].target, &r), 200);
		assert_int_equal(r.ep, cases[i].ep);
		assert_int_equal(r.write, cases[i].write);
		api_route_free(&r);
	}
}

static void test_ids_decoded_after_the_split(void **state)
{
	(void)state;
	struct api_route r;
	assert_int_equal(route("GET", "/api/v1/clients/a%2Fb%23c+d%25/subscriptions", &r), 200);
	assert_int_equal(r.ep, EP_CLIENT_SUBS);
	assert_bytes(r.id, "a/b#c+d%");
	api_route_free(&r);
	/* An encoded segment name is still the name. */
	assert_int_equal(route("GET", "/api/v1/%62roker", &r), 200);
	assert_int_equal(r.ep, EP_BROKER);
	api_route_free(&r);
	/* UTF-8 in an id. */
	assert_int_equal(route("DELETE", "/api/v1/sessions/%C3%A9t%C3%A9", &r), 200);
	assert_bytes(r.id, "\xc3\xa9t\xc3\xa9");
	api_route_free(&r);
}

static void test_query_parameters(void **state)
{
	(void)state;
	struct api_route r;
	assert_int_equal(route("GET", "/api/v1/clients?prefix=dev%2F&page=3&limit=20", &r), 200);
	assert_true(r.has_arg);
	assert_bytes(r.arg, "dev/");
	assert_int_equal(r.page, 3);
	assert_int_equal(r.limit, 20);
	api_route_free(&r);
	assert_int_equal(route("GET", "/api/v1/clients", &r), 200);
	assert_false(r.has_arg);
	assert_int_equal(r.page, 1);
	assert_int_equal(r.limit, API_LIMIT_DEFAULT);
	api_route_free(&r);
	/* '+' is the wildcard, not a space; empty pieces are skipped; an
	 * empty value is a value. */
	assert_int_equal(route("GET", "/api/v1/retained?&filter=a/+/%23&", &r), 200);
	assert_bytes(r.arg, "a/+/#");
	api_route_free(&r);
	assert_int_equal(route("GET", "/api/v1/clients?prefix=", &r), 200);
	assert_true(r.has_arg);
	assert_int_equal(r.arg.len, 0);
	api_route_free(&r);
}

static void test_malformed_is_400(void **state)
{
	(void)state;
	static const char *const bad[] = {
	        "/api/v1/clients/a%zz",
	        "/api/v1/clients/a%4",
	        "/api/v1/clients/a%",
	        "/api/v1/clients/a%00",
	        "/api/v1/clients?prefix=%",
	        "/api/v1/clients?prefix",
	        "/api/v1/clients?page=0",
	        "/api/v1/clients?page=x",
	        "/api/v1/clients?page=1234567890",
	        "/api/v1/clients?limit=1001",
	        "/api/v1/clients?limit=-1",
	        "/api/v1/clients?prefix=a&prefix=b",
	        "/api/v1/clients?filter=a",
	        "/api/v1/broker?x=1",
	        "/api/v1/retained",
	        "/api/v1/retained?limit=5",
	        "/api/v1/clients#frag",
	        "/api/v1/clients?prefix=a#b",
	        "*",
	        "http://host/api/v1/broker",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct api_route r;
		assert_int_equal(route("GET", bad[i], &r), 400);
		api_route_free(&r);
	}
	struct api_route r;
	assert_int_equal(route("DELETE", "/api/v1/retained", &r), 400); /* topic= needed */
	api_route_free(&r);
	assert_int_equal(api_route("GET", "", 0, &r, &(const char *){0}, &(const char *){0}), 400);
	api_route_free(&r);
}

static void test_unknown_paths_404_known_paths_405(void **state)
{
	(void)state;
	static const char *const none[] = {
	        "/api",
	        "/api/v1",
	        "/api/v2/broker",
	        "/api/v1/broker/",
	        "/api/v1/clients/",
	        "/api/v1/clients//subscriptions",
	        "/api/v1/clients/a/b/c",
	        "/api/v1/sessions",
	        "/metrics/",
	        "/x/y/z/a/b/c/d/e/f/g/h",
	        "//",
	};
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
		struct api_route r;
		assert_int_equal(route("GET", none[i], &r), 404);
		api_route_free(&r);
	}
	const char *why, *allow;
	struct api_route r;
	assert_int_equal(api_route("POST", "/api/v1/broker", 14, &r, &why, &allow), 405);
	assert_string_equal(allow, "GET, HEAD");
	api_route_free(&r);
	assert_int_equal(api_route("GET", "/api/v1/reload", 14, &r, &why, &allow), 405);
	assert_string_equal(allow, "POST");
	api_route_free(&r);
	assert_int_equal(api_route("PUT", "/api/v1/retained", 16, &r, &why, &allow), 405);
	assert_string_equal(allow, "GET, HEAD, DELETE");
	api_route_free(&r);
	assert_int_equal(api_route("GET", "/api/v1/sessions/x", 18, &r, &why, &allow), 405);
	assert_string_equal(allow, "DELETE");
	api_route_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_every_endpoint),
	        cmocka_unit_test(test_ids_decoded_after_the_split),
	        cmocka_unit_test(test_query_parameters),
	        cmocka_unit_test(test_malformed_is_400),
	        cmocka_unit_test(test_unknown_paths_404_known_paths_405),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
