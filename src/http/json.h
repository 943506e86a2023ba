/*
 * json.h - a small JSON writer for the admin API (json.c).
 *
 * The API's answers are built front to back into a struct buf: objects and
 * arrays are opened and closed, and each value is written with its key
 * (NULL inside an array or at the top). The writer puts the commas, and
 * escapes every string: client ids, usernames and topics are the clients'
 * bytes, so quotes, backslashes and control characters are escaped and
 * bytes that are not UTF-8 become U+FFFD, keeping the document valid JSON
 * whatever a client chose.
 *
 * Errors are sticky: after an allocation failure (or nesting deeper than
 * JSON_DEPTH_MAX, or a close that matches no open) every call does nothing
 * and json_end() reports it, so a renderer checks once at the end.
 */
#ifndef TERN_HTTP_JSON_H
#define TERN_HTTP_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tern/error.h"
#include "util/buf.h"

#define JSON_DEPTH_MAX 16

struct json {
	struct buf *out;    /* not owned */
	enum tern_err err;  /* the first failure; TERN_OK so far */
	unsigned depth;     /* open objects and arrays */
	uint32_t has_items; /* bit d: level d holds a value already (a comma is due) */
	uint32_t is_array;  /* bit d: level d is an array (its values take no key) */
};

/* Starts a document written into out (appended to what it holds). */
void json_init(struct json *j, struct buf *out);

/* Opens an object / an array under key (NULL in an array or at the top);
 * closes the innermost one, which must be of that kind. */
void json_obj(struct json *j, const char *key);
void json_obj_end(struct json *j);
void json_arr(struct json *j, const char *key);
void json_arr_end(struct json *j);

/* One value under key (NULL in an array or at the top). */
void json_str(struct json *j, const char *key, const uint8_t *s, size_t len);
void json_cstr(struct json *j, const char *key, const char *s); /* NULL: null */
void json_u64(struct json *j, const char *key, uint64_t v);
void json_num(struct json *j, const char *key, double v); /* not finite: null */
void json_bool(struct json *j, const char *key, bool v);
void json_null(struct json *j, const char *key);

/* A value rendered already (by another json writer: valid JSON text),
 * copied as it is. */
void json_raw(struct json *j, const char *key, const uint8_t *text, size_t len);

/* TERN_OK when everything was written and every object and array closed;
 * TERN_E_NOMEM, or TERN_E_INVALID for a misuse (unbalanced, too deep). */
TERN_MUST_CHECK enum tern_err json_end(const struct json *j);

/* Appends s[0..len) to out as the inside of a JSON string (no quotes),
 * escaped as above. TERN_OK or TERN_E_NOMEM. */
TERN_MUST_CHECK enum tern_err json_escape(struct buf *out, const uint8_t *s, size_t len);

#endif
