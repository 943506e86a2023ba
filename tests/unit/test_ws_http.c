/*
 * test_ws_http.c - http_dir's request line to path (src/broker/ws_http.c):
 * what is served, and that no spelling of a path leaves the directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "broker/ws_http.h"

static void served(const char *req, const char *want, bool head)
{
	char path[WS_HTTP_PATH_MAX];
	bool h = !head;
	int status = ws_http_target(req, path, &h);
	if (status != 0)
		fail_msg("%s: status %d, expected %s", req, status, want);
	assert_string_equal(path, want);
	assert_int_equal(h, head);
}

static void refused(const char *req, int want)
{
	char path[WS_HTTP_PATH_MAX];
	bool h;
	int status = ws_http_target(req, path, &h);
	if (status != want)
		fail_msg("%s: status %d, expected %d", req, status, want);
}

static void test_paths_beneath_the_directory(void **state)
{
	(void)state;
	served("GET / HTTP/1.1\r\n", "index.html", false);
	served("HEAD /a/b.js HTTP/1.1\r\n", "a/b.js", true);
	served("GET /a/ HTTP/1.0\r\n", "a/index.html", false);
	served("GET //a///b.css?x=1#f HTTP/1.1\r\n", "a/b.css", false);
	served("GET /sp%20ace.txt HTTP/1.1\r\n", "sp ace.txt", false);
	served("GET /a%2Fb HTTP/1.1\r\n", "a/b", false);
	served("GET /?q HTTP/1.1\r\n", "index.html", false);
}

static void test_nothing_walks_out_or_shows_dot_files(void **state)
{
	(void)state;
	refused("GET /.. HTTP/1.1\r\n", 404);
	refused("GET /../x HTTP/1.1\r\n", 404);
	refused("GET /a/../../x HTTP/1.1\r\n", 404);
	refused("GET /%2e%2e/x HTTP/1.1\r\n", 404);
	refused("GET /%2E%2e%2fx HTTP/1.1\r\n", 404);
	refused("GET /a/./b HTTP/1.1\r\n", 404);
	refused("GET /.git/config HTTP/1.1\r\n", 404);
	refused("GET /a/.htpasswd HTTP/1.1\r\n", 404);
}

static void test_bad_requests(void **state)
{
	(void)state;
	refused("POST / HTTP/1.1\r\n", 405);
	refused("get / HTTP/1.1\r\n", 405);
	refused("GET x HTTP/1.1\r\n", 400);
	refused("GET http://h/ HTTP/1.1\r\n", 400);
	refused("GET /%zz HTTP/1.1\r\n", 400);
	refused("GET /%4 HTTP/1.1\r\n", 400);
	refused("GET /a%00b HTTP/1.1\r\n", 400);
	refused("GET /\r\n", 400);
	char big[WS_HTTP_PATH_MAX + 64] = "GET /";
	memset(big + 5, 'a', WS_HTTP_PATH_MAX);
	strcpy(big + 5 + WS_HTTP_PATH_MAX, " HTTP/1.1\r\n");
	refused(big, 414);
}

static void test_types(void **state)
{
	(void)state;
	assert_string_equal(ws_http_type("a/index.HTML"), "text/html; charset=utf-8");
	assert_string_equal(ws_http_type("app.js"), "text/javascript; charset=utf-8");
	assert_string_equal(ws_http_type("x.wasm"), "application/wasm");
	assert_string_equal(ws_http_type("a.b/noext"), "application/octet-stream");
	assert_string_equal(ws_http_type("README"), "application/octet-stream");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_paths_beneath_the_directory),
	        cmocka_unit_test(test_nothing_walks_out_or_shows_dot_files),
	        cmocka_unit_test(test_bad_requests),
	        cmocka_unit_test(test_types),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
