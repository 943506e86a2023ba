/*
 * ws_http.h - what a websockets listener with http_dir needs to answer a
 * plain HTTP request (not an upgrade), as mosquitto's libwebsockets
 * listeners do: the request line read into a file path that stays beneath
 * the directory, and a file's media type. No I/O: transport_ws.c opens and
 * sends the file.
 */
#ifndef TERN_BROKER_WS_HTTP_H
#define TERN_BROKER_WS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

/* The longest path (relative to http_dir) a request may name. */
#define WS_HTTP_PATH_MAX 512

/*
 * Reads the request line of req (NUL-terminated, "METHOD TARGET
 * HTTP/1.x\r\n...") into path (relative, no leading '/', "index.html" for
 * a target ending in '/') and *head (the method was HEAD). Returns 0, or
 * the HTTP status to answer: 405 for a method other than GET and HEAD, 400
 * for a target that is not an absolute path or has a bad or NUL
 * percent-escape, 404 for one that names a dot-file or walks up ("..",
 * also percent-encoded), 414 for one longer than WS_HTTP_PATH_MAX; path
 * is then not a string to use.
 */
int ws_http_target(const char *req, char path[WS_HTTP_PATH_MAX], bool *head);

/* The Content-Type of a file by its extension; application/octet-stream
 * when unknown. */
const char *ws_http_type(const char *path);

#endif
