/*
 * retain.h - the retained-message store, shared by all workers.
 *
 * One store per broker, behind one mutex: setting a retained message and
 * looking them up for a new subscription are rare next to ordinary
 * publishes, which never touch it. Messages are stored in a topic trie (one
 * node per level, children in a hash map) so a wildcard subscription walks
 * only the branches it can match.
 *
 * The store holds a reference to each retained message; lookups hand the
 * caller new references.
 */
#ifndef TERN_BROKER_RETAIN_H
#define TERN_BROKER_RETAIN_H

#include <stddef.h>
#include <stdint.h>

#include "tern/codec.h"
#include "util/siphash.h"
#include "util/msg.h"

struct retain_store;

/* Who published a retained message: for check_retain_source, which checks
 * that the publisher may still write it before it is sent to a new
 * subscriber. Copied by retain_set_source(). */
struct retain_source {
	struct tern_bytes client_id;
	struct tern_bytes username; /* data NULL: none */
	uint8_t listener;           /* index of the listener it came in on */
};

/* retain_match_checked()'s say on each match: false leaves it out. Runs
 * under the store's lock: it must not call into the store. src is NULL
 * for a message whose publisher is not known (the broker's own, one
 * restored from the store or from another node). */
typedef bool (*retain_keep_fn)(void *arg, const struct msg *m, const struct retain_source *src);

/* Caller-owned result array of retain_match(); the caller unrefs each
 * message and frees v. */
struct retain_hits {
	struct msg **v;
	size_t n;
	size_t cap;
};

/* Creates an empty store whose tables hash topic levels under hk (copied;
 * util/hash.h), the broker's per-process secret. NULL when out of memory. */
struct retain_store *retain_new(const struct hash_key *hk);

/* Drops every message and frees the store; NULL is allowed. */
void retain_free(struct retain_store *s);

/*
 * Makes msg the retained message of msg->topic, replacing any previous one
 * [MQTT-3.3.1-5]; a zero-length payload removes it instead and stores
 * nothing [MQTT-3.3.1-6] [MQTT-3.3.1-7]. Takes its own reference when it
 * stores msg; the caller keeps its own. TERN_OK or TERN_E_NOMEM.
 */
TERN_MUST_CHECK enum tern_err retain_set(struct retain_store *s, struct msg *msg);

/* retain_set() with the publisher of msg (NULL: not known), kept with it
 * for retain_match_checked(). */
TERN_MUST_CHECK enum tern_err retain_set_source(struct retain_store *s, struct msg *msg,
                                                const struct retain_source *src);

/*
 * Appends (after setting out->n = 0) a new reference to every retained
 * message whose topic matches filter (a plain filter, no $share prefix),
 * honouring the '$' rule [MQTT-4.7.2-1]. Messages whose expiry has passed
 * at `now` (monotonic ms) are removed from the store instead of returned.
 * TERN_OK or TERN_E_NOMEM (the references gathered so far are in out).
 */
TERN_MUST_CHECK enum tern_err retain_match(struct retain_store *s, const uint8_t *filter,
                                           size_t flen, uint64_t now, struct retain_hits *out);

/* retain_match() that asks keep (when not NULL) about each match. */
TERN_MUST_CHECK enum tern_err retain_match_checked(struct retain_store *s, const uint8_t *filter,
                                                   size_t flen, uint64_t now, retain_keep_fn keep,
                                                   void *arg, struct retain_hits *out);

/* Removes every retained message whose expiry has passed at `now`
 * (monotonic ms), '$' topics included, in one walk of the whole store
 * under its mutex. Returns how many went. */
size_t retain_expire(struct retain_store *s, uint64_t now);

/* Number of retained messages. */
size_t retain_count(struct retain_store *s);

/* Unrefs every message in hits, frees the array, and zeroes hits. */
void retain_hits_free(struct retain_hits *hits);

#endif
