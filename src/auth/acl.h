/*
 * auth/acl.h - mosquitto's acl_file: load it, answer "may this client do
 * this on this topic?".
 *
 * The file (mosquitto.conf(5), acl_file), one directive a line:
 *
 *   # comment                      only when '#' is the line's first byte
 *   topic [read|write|readwrite|deny] FILTER
 *   user NAME
 *   pattern [read|write|readwrite|deny] FILTER
 *
 * Semantics, as mosquitto 2.0.11 implements them (src/security_default.c,
 * and checked against the real broker):
 *   - `topic` lines before the first `user` line form the ANONYMOUS list:
 *     they apply only to clients that connected without a user name. A
 *     client with a user name gets the list of its `user` section (sections
 *     of the same name are merged) and nothing from the anonymous list.
 *   - `pattern` lines apply to every client, wherever they appear. In them
 *     %c becomes the client id and %u the user name; a pattern with %u is
 *     skipped for anonymous clients. (mosquitto substitutes anywhere in the
 *     string, not only whole levels, and so does this module.)
 *   - The access word is optional: `topic a/b` is readwrite. With a single
 *     word after `topic`, that word is the filter (`topic read` grants
 *     readwrite on the topic "read"), exactly as mosquitto reads it.
 *   - A check first looks at the client's own list (anonymous or its user
 *     section): a matching `deny` there refuses, else a matching grant
 *     with the wanted access allows. Only then are the patterns consulted,
 *     the same way (a matching pattern `deny` refuses, a matching grant
 *     allows). Nothing matching: refused. So `deny` wins within a list,
 *     but a user-section grant is decided before a pattern `deny` is seen
 *     (mosquitto does the same; a test shows it).
 *   - Client ids and user names containing '+' or '#' get no access at all
 *     through patterns (CVE-2017-7650). tern also refuses '/' there, as
 *     mosquitto 1.4.12-1.6 did: mosquitto 2.0 dropped '/' from the check,
 *     which lets client "a/b" reach the %c/... space of client "a".
 *   - An acl_file with no rules at all denies everything (CVE-2018-12550).
 *
 * SUBSCRIBE. mosquitto 2.0.11's acl_file check grants every SUBSCRIBE
 * (security_default.c returns success for MOSQ_ACL_SUBSCRIBE, "FIXME -
 * implement ACL subscription strings"), whatever the filter, and checks
 * each message with read access on its topic name when it is about to be
 * delivered (retained ones included). tern delivers exactly the same
 * messages, and refuses a SUBSCRIBE (SUBACK 0x80) only when no topic
 * name the filter can match would pass ACL_READ: "#" under `topic deny
 * test/nosubscribe` + `topic readwrite #` is granted (the denied topic is
 * dropped at delivery), "test/nosubscribe" itself is refused, and so is
 * "$SYS/#" when only "#" is granted (it matches no '$' topic). This is what
 * the Paho interoperability test test_subscribe_failure expects, and a
 * filter that could never deliver anything is worth telling the client
 * about. The decision is exact, %c / %u included; only a search that would
 * exceed a fixed bound of work grants the filter, which is safe since
 * delivery is checked with ACL_READ in every case.
 *
 * The broker-wide rules mosquitto applies before the acl_file (no client
 * writes to $SYS, $share names are only for SUBSCRIBE) are not part of the
 * file and not checked here (broker/auth.c applies them).
 *
 * A loaded struct acl_db is immutable: any number of threads may call
 * acl_allowed() on it at once.
 */
#ifndef TERN_AUTH_ACL_H
#define TERN_AUTH_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tern/error.h"

/* What a client wants to do. */
enum acl_access {
	/* A message on this topic name is about to be delivered to the client
	 * (live or retained). Needs read or readwrite. */
	ACL_READ,
	/* The client publishes to this topic name (also its will topic).
	 * Needs write or readwrite. */
	ACL_WRITE,
	/* The client subscribes with this filter: allowed when at least one
	 * topic name the filter can match would pass ACL_READ (see above). A
	 * "$share/group/" prefix is removed first. Delivery must still be
	 * checked with ACL_READ. */
	ACL_SUBSCRIBE,
};

/* An immutable, parsed acl_file. */
struct acl_db;

/*
 * Reads the acl_file at path into a new db, stored in *out (the caller owns
 * it and frees it with acl_free()). On failure *out is NULL and, when err
 * is not NULL, a NUL-terminated message of at most errlen bytes is written:
 * "path: why" or "path:LINE: why". A line whose first word is not topic,
 * pattern or user, an unknown access word, a `user` without a name, a NUL
 * byte, or a filter that is not a valid topic filter ('+' and '#' must be
 * whole levels, '#' only last) is an error, as in mosquitto.
 * Returns TERN_OK, TERN_E_CONFIG, TERN_E_SYS (open/read failed) or
 * TERN_E_NOMEM.
 */
TERN_MUST_CHECK enum tern_err acl_load(const char *path, struct acl_db **out, char *err,
                                       size_t errlen);

/* Frees db. NULL is a no-op. */
void acl_free(struct acl_db *db);

/* Number of rules (topic and pattern lines) in db. */
size_t acl_rule_count(const struct acl_db *db);

/*
 * May the client (client_id[0..cid_len), user name username[0..ulen), or
 * username == NULL for an anonymous client) do `access` on topic
 * (topic[0..tlen): a topic name for ACL_READ / ACL_WRITE, a topic filter
 * for the SUBSCRIBE kinds)? No buffer needs a NUL or outlives the call.
 * An empty topic, a topic name with a wildcard, or a filter that is not
 * valid for ACL_SUBSCRIBE, is refused. Returns true when allowed; false when denied or when memory
 * for a long substituted pattern could not be had.
 */
bool acl_allowed(const struct acl_db *db, const uint8_t *client_id, size_t cid_len,
                 const uint8_t *username, size_t ulen, const uint8_t *topic, size_t tlen,
                 enum acl_access access);

#endif
