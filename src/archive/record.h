/*
 * record.h - one archived message as the sinks write it and read it back
 * (record.c), and the pure helpers every sink shares: the message key, the
 * user properties as JSON, the literal prefix of a topic filter.
 *
 * A record only points at bytes it does not own: at a message and its
 * archive entry when it is written (archive.c builds it), at a result row
 * of the database when it is read back (valid during the read callback
 * only).
 */
#ifndef TERN_ARCHIVE_RECORD_H
#define TERN_ARCHIVE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tern/codec.h"
#include "tern/error.h"
#include "util/buf.h"

/* "0123456789abcdef-18446744073709551615": a boot id in hex, a dash, the
 * sequence number in decimal. */
#define ARCHIVE_KEY_MAX 40

struct archive_record {
	char key[ARCHIVE_KEY_MAX]; /* the unique message key, NUL-terminated */
	int64_t received_at;       /* UTC ms since the epoch */
	struct tern_bytes topic;
	struct tern_bytes payload;
	uint8_t qos;
	bool retain;
	struct tern_bytes client_id;
	bool has_username;
	struct tern_bytes username;
	bool has_payload_format;
	uint8_t payload_format;
	bool has_content_type;
	struct tern_bytes content_type;
	bool has_response_topic;
	struct tern_bytes response_topic;
	bool has_correlation_data;
	struct tern_bytes correlation_data;
	/* User properties encoded as in a PUBLISH (0x26, name, value, ...),
	 * in order; len 0: none. */
	struct tern_bytes user_raw;
};

/* Writes the key of (boot, seq) into key[ARCHIVE_KEY_MAX]. */
void archive_key_format(char key[ARCHIVE_KEY_MAX], uint64_t boot, uint64_t seq);

/* Appends the user properties of user_raw (encoded as in a PUBLISH) to out
 * as a JSON array of [name, value] pairs, in order (names may repeat, so
 * not an object): [["unit","C"],["site","b1"]]. Nothing is appended for
 * none (the caller stores NULL then). TERN_E_NOMEM; TERN_E_MALFORMED when
 * user_raw is not such a block. */
TERN_MUST_CHECK enum tern_err archive_user_json(struct buf *out, struct tern_bytes user_raw);

/* The reverse: parses a JSON array of [string, string] pairs (as written
 * above, or by hand with any JSON escapes) and appends the encoded user
 * properties to out. TERN_E_MALFORMED when it is not such an array or a
 * string is not a valid MQTT string. */
TERN_MUST_CHECK enum tern_err archive_user_parse(struct buf *out, const char *json, size_t len);

/* A topic filter of an archive, prepared for archive_filter_matches(). */
struct archive_filter {
	struct tern_bytes f; /* the filter (not owned) */
	enum { AF_GENERAL, AF_EXACT, AF_PREFIX, AF_ALL } kind;
};

/* Prepares filter (a valid one) into *af. */
void archive_filter_init(struct archive_filter *af, struct tern_bytes filter);

/* Whether topic matches the filter, as tern_topic_matches() says; the
 * filters archives mostly have (no wildcard, a literal part then "/#", or
 * "#") are decided by one comparison, since every message a worker routes
 * is checked against every archive filter. */
bool archive_filter_matches(const struct archive_filter *af, struct tern_bytes topic);

/* The literal part of filter before its first wildcard level ("a/b/" for
 * "a/b/+/c", "" for "#"): every matching topic starts with it, so a sink
 * can narrow its index scan with it. $-topics are not matched by a
 * wildcard first level, which the caller's final check handles. */
struct tern_bytes archive_filter_prefix(struct tern_bytes filter);

#endif
