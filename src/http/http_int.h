/*
 * http_int.h - what the files of the HTTP module share: the server object
 * (http.c), the answer a handler builds, and the handlers of the API
 * (api_*.c), which http.c calls once a request is routed and authorised.
 */
#ifndef TERN_HTTP_HTTP_INT_H
#define TERN_HTTP_HTTP_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "http/api_route.h"
#include "tern/error.h"
#include "util/buf.h"

struct broker;
struct passwd_db;

/* Failed logins from one client address (http.c): after AUTH_FAIL_MAX of
 * them within AUTH_FAIL_WINDOW_MS, the address is refused (429) for
 * AUTH_BLOCK_MS, so a password cannot be guessed at the speed of the hash.
 * Per address, so nobody locks the operators of another address out. */
#define AUTH_FAIL_SLOTS     64
#define AUTH_FAIL_MAX       10u
#define AUTH_FAIL_WINDOW_MS 60000u
#define AUTH_BLOCK_MS       60000u

struct auth_fail {
	char host[64];  /* numeric address; "": slot free */
	uint64_t since; /* mono ms of the window's first failure */
	uint64_t blocked_until;
	uint32_t count;
};
struct api_rates;
struct MHD_Daemon;

struct http_server {
	struct broker *b;
	int fd; /* the bound listening socket, until libmicrohttpd has it */
	struct MHD_Daemon *daemon;
	char *cert, *key; /* PEM of http_certfile / http_keyfile; NULL: plain HTTP */
	/* http_password_file's users; NULL: no authentication. Read under
	 * pw_lock by the request threads, swapped under it by a reload. */
	pthread_rwlock_t pw_lock;
	struct passwd_db *pw;
	pthread_mutex_t reload_mu; /* one reload at a time */
	pthread_mutex_t fail_mu;   /* guards fails */
	struct auth_fail fails[AUTH_FAIL_SLOTS];
	struct api_rates *rates; /* message rates sampled each second (api_broker.c) */
	char where[96];          /* "http://127.0.0.1:9100", for the log */
};

/* What a handler answers: a status, a body and its type. */
struct api_reply {
	int status;
	const char *ctype; /* NULL: application/json */
	const char *csp;   /* a Content-Security-Policy for a page; NULL: none */
	struct buf body;
};

/* The dashboard page (dashboard.html, compiled in by CMakeLists.txt). */
extern const unsigned char dashboard_page[];
extern const size_t dashboard_page_len;

/* Sets r to an error answer: status and {"error": why}. */
void api_error(struct api_reply *r, int status, const char *why);

/* Runs the endpoint of route into reply (http.c logs the request, with
 * who asked, after it). */
void api_dispatch(struct http_server *h, const struct api_route *route, struct api_reply *reply);

/* How long a request waits for the workers' answers (http_call.h) before
 * it answers 503. */
#define API_CALL_TIMEOUT_MS 5000u

/* GET /api/v1/broker (api_broker.c). */
void api_broker(struct http_server *h, struct api_reply *reply);

/* GET /api/v1/clients, /api/v1/clients/ID (subs false) and
 * /api/v1/clients/ID/subscriptions (subs true), /api/v1/topics
 * (api_clients.c). */
void api_clients(struct http_server *h, const struct api_route *route, struct api_reply *reply);
void api_client(struct http_server *h, const struct api_route *route, bool subs,
                struct api_reply *reply);
void api_topics(struct http_server *h, const struct api_route *route, struct api_reply *reply);

/* POST /api/v1/clients/ID/disconnect, DELETE /api/v1/sessions/ID, GET and
 * DELETE /api/v1/retained (api_actions.c). */
void api_disconnect(struct http_server *h, const struct api_route *route, struct api_reply *reply);
void api_session_delete(struct http_server *h, const struct api_route *route,
                        struct api_reply *reply);
void api_retained(struct http_server *h, const struct api_route *route, struct api_reply *reply);
void api_retained_delete(struct http_server *h, const struct api_route *route,
                         struct api_reply *reply);

/* The per-second sampler of the broker's counters behind the rates of
 * GET /api/v1/broker (a thread of its own, api_broker.c): started with
 * the server, stopped before it is freed. */
TERN_MUST_CHECK enum tern_err api_rates_start(struct broker *b, struct api_rates **out);
void api_rates_stop(struct api_rates *r);

#endif
