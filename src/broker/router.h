/*
 * router.h - the subscription router: a topic trie with shared groups.
 *
 * Every worker owns one router, a replica of the whole subscription table
 * (DESIGN.md, "How a message flows" 3): a worker matches the topics it
 * receives against its own replica, so matching takes no lock. Replicas are
 * kept equal by applying the same router_add()/router_remove() calls on
 * every worker, through the workers' inboxes. A router is used by ONE
 * thread; it has no locking of its own.
 *
 * The trie has one node per topic level; a level's children are in a hash
 * map, so a node with 100,000 children (device ids) costs O(1) per lookup.
 * Matching allocates nothing: results go into a caller-owned, reused array.
 * Subscriptions are identified by (filter, share group, session id): adding
 * the same triple again replaces its options [MQTT-3.8.4-3].
 *
 * Shared subscriptions ("$share/group/filter" [MQTT-4.8.2]) are stored
 * under the plain filter with their group name; router_match() picks ONE
 * member of each matching group, round-robin per replica.
 */
#ifndef TERN_BROKER_ROUTER_H
#define TERN_BROKER_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tern/codec.h"
#include "util/siphash.h"

/* Subscription option flags of a route. */
enum {
	ROUTE_NO_LOCAL = 1u << 0, /* v5 No Local [MQTT-3.8.3-3] */
	ROUTE_RAP = 1u << 1,      /* v5 Retain As Published */
	ROUTE_SHARED = 1u << 2,   /* set by router_match() on shared matches */
	ROUTE_ALL_FULL = 1u << 3, /* ... none of whose members could take more */
	ROUTE_DURABLE = 1u << 4,  /* a cluster's durable queue feeds QoS 1/2 to it */
};

struct flow_cell;

/* One subscription as stored and as matched. */
struct route {
	uint64_t session;       /* session id, unique for the broker's lifetime */
	struct flow_cell *flow; /* the session's flow cell (flow.h); a stored
	                         * route holds a reference, NULL for none */
	uint32_t sub_id;        /* v5 subscription identifier, 0 for none */
	uint16_t home;          /* index of the worker owning the session */
	uint8_t qos;            /* granted maximum QoS */
	uint8_t flags;          /* ROUTE_* */
};

/* Caller-owned result array of router_match(), reused across calls. */
struct route_matches {
	struct route *v;
	size_t n;
	size_t cap;
};

struct router;

/* Creates an empty router whose tables hash topic levels under hk (copied;
 * util/hash.h): the broker's per-process secret, so that a client cannot
 * pick level names that collide. NULL when out of memory. */
struct router *router_new(const struct hash_key *hk);

/* Frees the router and everything in it; NULL is allowed. */
void router_free(struct router *r);

/*
 * Adds the subscription of route->session to filter (a plain topic filter,
 * already validated, without any "$share/group/" prefix), in share group
 * `group` when group.len > 0. Replaces the options of an existing identical
 * (filter, group, session) subscription. Copies what it keeps.
 * Returns TERN_OK or TERN_E_NOMEM (the router is then unchanged).
 */
TERN_MUST_CHECK enum tern_err router_add(struct router *r, struct tern_bytes filter,
                                         struct tern_bytes group, const struct route *route);

/*
 * Removes the (filter, group, session) subscription and prunes nodes left
 * empty. Returns TERN_OK, or TERN_E_NOT_FOUND when there was none.
 */
TERN_MUST_CHECK enum tern_err router_remove(struct router *r, struct tern_bytes filter,
                                            struct tern_bytes group, uint64_t session);

/*
 * Appends to out (after setting out->n = 0) every subscription whose filter
 * matches topic: all ordinary subscriptions, and one member per matching
 * share group, chosen round-robin among the members whose flow cell is
 * neither full nor stalled (flow.h), with ROUTE_SHARED set (and
 * ROUTE_ALL_FULL when no member was: the turn's member is chosen then). Topics starting
 * with '$' are not matched by filters starting with '+' or '#'
 * [MQTT-4.7.2-1]. The same session can appear several times (overlapping
 * filters); merging them is the caller's job. Grows out->v with realloc;
 * returns TERN_OK or TERN_E_NOMEM (out->n then counts what was found).
 */
TERN_MUST_CHECK enum tern_err router_match(struct router *r, const uint8_t *topic, size_t len,
                                           struct route_matches *out);

/* router_match() without share groups: the ordinary subscriptions only
 * (a message from another cluster node, whose share groups NATS served). */
TERN_MUST_CHECK enum tern_err router_match_plain(struct router *r, const uint8_t *topic, size_t len,
                                                 struct route_matches *out);

/* Whether the (filter, group, session) subscription is stored. */
bool router_contains(struct router *r, struct tern_bytes filter, struct tern_bytes group,
                     uint64_t session);

/* Sets *out to the member of share group `group` on plain filter `filter`
 * that takes the group's next message, as router_match() picks it (flags
 * ROUTE_SHARED, and ROUTE_ALL_FULL as there), and advances the group's
 * turn. TERN_E_NOT_FOUND when the group has no member here. */
TERN_MUST_CHECK enum tern_err router_pick(struct router *r, struct tern_bytes filter,
                                          struct tern_bytes group, struct route *out);

/* Number of subscriptions stored (shared members included). */
size_t router_count(const struct router *r);

#endif
