/*
 * http.h - the HTTP listener of `http_listener` (http.c): /metrics, the
 * admin API under /api/v1 (docs/http-api.md) and the dashboard page.
 *
 * ternd's main.c drives it, around the broker's own life:
 *
 *   http_open()    after broker_init(), before privileges are dropped: binds
 *                  the port, reads http_certfile / http_keyfile and
 *                  http_password_file
 *   http_start()   after broker_start(): its threads start serving
 *   http_reload()  SIGHUP (and POST /api/v1/reload): the broker's password
 *                  and ACL files, and http_password_file, read again
 *   http_close()   before broker_stop(): stops serving (the requests in
 *                  progress finish, their answers from the workers with
 *                  them) and frees it
 *
 * The server is libmicrohttpd's (docs/http-api.md says why): it runs on
 * threads of its own, so an HTTP client never delays MQTT traffic. What a
 * request needs of the broker it reads where any thread may (the workers'
 * counters, the retained store under its lock) or asks the workers for
 * through their inboxes (http_call.h), never touching their connections
 * and sessions itself.
 */
#ifndef TERN_HTTP_HTTP_H
#define TERN_HTTP_HTTP_H

#include "tern/error.h"

struct broker;
struct http_server;

/* Prepares the listener of b's configuration into *out (NULL, and TERN_OK,
 * when there is no http_listener). Logs why on failure: TERN_E_SYS (the
 * port, a file), TERN_E_CONFIG (a bad password file). */
TERN_MUST_CHECK enum tern_err http_open(struct broker *b, struct http_server **out);

/* Starts serving; b's workers are running. TERN_E_SYS when libmicrohttpd
 * cannot start (logged). NULL: nothing to do. */
TERN_MUST_CHECK enum tern_err http_start(struct http_server *h);

/* Reloads b's password and ACL files (auth_reload()) and h's
 * http_password_file, one reload at a time; on a bad file the old one
 * stays and the error is returned. h may be NULL (then only the broker's
 * files). */
TERN_MUST_CHECK enum tern_err http_reload(struct broker *b, struct http_server *h);

/* Stops serving and frees h (NULL is allowed). */
void http_close(struct http_server *h);

#endif
