/*
 * router.c - the subscription router: a topic trie with shared groups; see
 * router.h for the contract.
 *
 * Layout. One struct node per filter level, in the trie of topic levels
 * that the retained store uses too (trie.h): exact children keyed by their
 * level bytes under the broker's secret hash key, a single child inline in
 * the node and the hash map only from the second child on, and the '+' and
 * '#' children on their own pointers, so matching one topic level costs at
 * most one hash lookup plus two pointer tests. A level may be empty ("a//b",
 * "/a"): the empty string is an ordinary key. struct node is the trie's node
 * followed by this file's payload, in one allocation.
 *
 * Subscriptions. A node holds its ordinary subscriptions in a struct subset,
 * an array of struct route with the same session at most once, and its share
 * groups in a short list, each group a subset of members and a round-robin
 * cursor. Finding a session in a subset is a linear scan while the subset is
 * small; from SUBSET_INDEX_MIN members on, a u64 map from session to array
 * index makes add and remove O(1), so 100,000 subscribers on one filter cost
 * O(n) in total, not O(n^2). Removal moves the last member into the hole
 * (order among ordinary subscriptions does not matter); in a share group the
 * move is arranged so that the round in progress still picks every remaining
 * member exactly once (see subset_remove_at()).
 *
 * Matching walks the topic levels once, with the level iterator of
 * proto/topic.h (shared with validation, the retained store and the ACL).
 * At each node it reports the '#' child, recurses into the '+' child (from
 * the iterator's position, so the walk resumes at the same level) and
 * continues with the exact child in a loop, so the recursion is only as
 * deep as the number of '+' levels taken.
 * Subscriptions are copied into the caller's array; nothing else allocates.
 *
 * Flow cells. A stored route holds a reference to its session's flow cell
 * (flow.h), taken when stored and dropped when removed or replaced, so a
 * replica can read the cell for as long as it can route to the session.
 * Matching a share group passes over members whose cell says full.
 *
 * Pruning. router_remove() prunes the nodes it leaves empty (trie_prune(),
 * up the parent pointers), so the trie never holds a node without a
 * subscription below it. router_free() frees through trie_fini(), which is
 * iterative, so no deep filter can overflow the stack.
 */
#include "broker/router.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "broker/flow.h"
#include "broker/trie.h"
#include "proto/topic.h"
#include "util/map.h"

/* From this many members on, a subset keeps a session -> index map. */
#define SUBSET_INDEX_MIN 16u

struct subset {
	struct route *v;
	uint32_t n;
	uint32_t cap;
	/* session -> index + 1; NULL, or complete while it exists. */
	struct map *idx;
};

struct group {
	struct group *next;
	struct subset members;
	uint32_t cursor; /* next member to pick; < members.n */
	uint32_t nlen;
	uint8_t name[]; /* the share name, owned */
};

/* A trie node (trie.h) with the subscriptions of its filter. */
struct node {
	struct trie_node t;   /* first: the trie's part */
	struct subset subs;   /* ordinary subscriptions */
	struct group *groups; /* share groups */
};

struct router {
	struct trie trie; /* of struct node */
	size_t count;
};

static struct node *node_of(struct trie_node *t)
{
	return (struct node *)t;
}

/* ---- subsets ---- */

static void *idx_val(uint32_t i)
{
	return (void *)(uintptr_t)(i + 1u);
}

static bool subset_find(const struct subset *s, uint64_t session, uint32_t *at)
{
	if (s->idx) {
		uintptr_t v = (uintptr_t)map64_get(s->idx, session);
		if (!v)
			return false;
		*at = (uint32_t)(v - 1u);
		return true;
	}
	for (uint32_t i = 0; i < s->n; i++) {
		if (s->v[i].session == session) {
			*at = i;
			return true;
		}
	}
	return false;
}

static void subset_drop_index(struct subset *s)
{
	if (s->idx) {
		map_free(s->idx);
		free(s->idx);
		s->idx = NULL;
	}
}

static TERN_MUST_CHECK enum tern_err subset_build_index(struct subset *s)
{
	s->idx = calloc(1, sizeof(*s->idx));
	if (!s->idx)
		return TERN_E_NOMEM;
	for (uint32_t i = 0; i < s->n; i++) {
		if (map64_put(s->idx, s->v[i].session, idx_val(i))) {
			subset_drop_index(s);
			return TERN_E_NOMEM;
		}
	}
	return TERN_OK;
}

/* Adds rt, or replaces the options of its session. Sets *added when the
 * subset grew. On TERN_E_NOMEM the subset's content is unchanged. */
static TERN_MUST_CHECK enum tern_err subset_put(struct subset *s, const struct route *rt,
                                                bool *added)
{
	uint32_t i;
	*added = false;
	if (subset_find(s, rt->session, &i)) {
		flow_cell_ref(rt->flow);
		flow_cell_unref(s->v[i].flow);
		s->v[i] = *rt;
		return TERN_OK;
	}
	if (s->n == UINT32_MAX)
		return TERN_E_NOMEM;
	if (s->n == s->cap) {
		uint32_t cap = s->cap ? (s->cap > UINT32_MAX / 2 ? UINT32_MAX : s->cap * 2) : 1;
		struct route *v = realloc(s->v, (size_t)cap * sizeof(*v));
		if (!v)
			return TERN_E_NOMEM;
		s->v = v;
		s->cap = cap;
	}
	if (!s->idx && s->n >= SUBSET_INDEX_MIN && subset_build_index(s))
		return TERN_E_NOMEM;
	if (s->idx && map64_put(s->idx, rt->session, idx_val(s->n)))
		return TERN_E_NOMEM;
	s->v[s->n++] = *rt;
	flow_cell_ref(rt->flow);
	*added = true;
	return TERN_OK;
}

/* Moves the route at index from to index to, keeping the index right. The
 * session is already in the map, so the put only replaces: it cannot fail. */
static void subset_move(struct subset *s, uint32_t from, uint32_t to)
{
	s->v[to] = s->v[from];
	if (s->idx) {
		enum tern_err replaced = map64_put(s->idx, s->v[to].session, idx_val(to));
		assert(replaced == TERN_OK);
		(void)replaced;
	}
}

/*
 * Removes the route at index i. cursor is NULL for ordinary subscriptions,
 * whose order does not matter: the last route fills the hole. For a share
 * group, cursor is the next member to pick; [0, cursor) have been picked in
 * this round and [cursor, n) have not. Removing a picked member moves the
 * last picked one into the hole and the last (unpicked) member to where the
 * picked ones end, then steps the cursor back onto it, so every remaining
 * member is still picked once before the round ends. O(1) either way.
 */
static void subset_remove_at(struct subset *s, uint32_t i, uint32_t *cursor)
{
	uint32_t last = s->n - 1;
	flow_cell_unref(s->v[i].flow);
	if (s->idx)
		(void)map64_del(s->idx, s->v[i].session);
	if (cursor && i < *cursor) {
		uint32_t c = *cursor - 1; /* the last picked one; c < last */
		if (i != c)
			subset_move(s, c, i);
		subset_move(s, last, c);
		*cursor = c;
	} else if (i != last) {
		subset_move(s, last, i);
	}
	s->n--;
	if (cursor && *cursor >= s->n)
		*cursor = 0;

	if (s->n == 0) {
		free(s->v);
		s->v = NULL;
		s->cap = 0;
		subset_drop_index(s);
		return;
	}
	if (s->n < SUBSET_INDEX_MIN / 2)
		subset_drop_index(s);
	if (s->n <= s->cap / 4) {
		/* A failed shrink keeps the larger array, which is fine. */
		struct route *v = realloc(s->v, (size_t)(s->cap / 2) * sizeof(*v));
		if (v) {
			s->v = v;
			s->cap /= 2;
		}
	}
}

static void subset_free(struct subset *s)
{
	for (uint32_t i = 0; i < s->n; i++)
		flow_cell_unref(s->v[i].flow);
	free(s->v);
	subset_drop_index(s);
	memset(s, 0, sizeof(*s));
}

/* ---- nodes ---- */

static bool node_payload_empty(const struct trie_node *t)
{
	const struct node *n = (const struct node *)t;
	return n->subs.n == 0 && !n->groups;
}

static void node_payload_free(struct trie_node *t)
{
	struct node *n = node_of(t);
	subset_free(&n->subs);
	for (struct group *g = n->groups, *next; g; g = next) {
		next = g->next;
		subset_free(&g->members);
		free(g);
	}
	n->groups = NULL;
}

static const struct trie_ops NODE_OPS = {
        .node_size = sizeof(struct node),
        .wildcards = true,
        .payload_empty = node_payload_empty,
        .payload_free = node_payload_free,
};

static struct group *group_find(const struct node *n, struct tern_bytes name)
{
	for (struct group *g = n->groups; g; g = g->next) {
		if (g->nlen == name.len && memcmp(g->name, name.data, name.len) == 0)
			return g;
	}
	return NULL;
}

/* ---- the API ---- */

struct router *router_new(const struct hash_key *hk)
{
	struct router *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	if (trie_init(&r->trie, &NODE_OPS, hk)) {
		free(r);
		return NULL;
	}
	return r;
}

void router_free(struct router *r)
{
	if (!r)
		return;
	trie_fini(&r->trie);
	free(r);
}

enum tern_err router_add(struct router *r, struct tern_bytes filter, struct tern_bytes group,
                         const struct route *route)
{
	if (!filter.len)
		return TERN_E_INVALID;
	struct node *n = node_of(trie_node_for(&r->trie, filter.data, filter.len, true));
	if (!n)
		return TERN_E_NOMEM;
	struct route rt = *route;
	rt.flags &= (uint8_t) ~(ROUTE_SHARED | ROUTE_ALL_FULL);
	bool added = false;
	enum tern_err err;
	if (group.len == 0) {
		err = subset_put(&n->subs, &rt, &added);
	} else {
		struct group *g = group_find(n, group);
		if (g) {
			err = subset_put(&g->members, &rt, &added);
		} else {
			g = calloc(1, sizeof(*g) + group.len);
			if (!g) {
				err = TERN_E_NOMEM;
			} else {
				g->nlen = group.len;
				memcpy(g->name, group.data, group.len);
				err = subset_put(&g->members, &rt, &added);
				if (err) {
					subset_free(&g->members);
					free(g);
				} else {
					g->next = n->groups;
					n->groups = g;
				}
			}
		}
	}
	if (err) {
		trie_prune(&r->trie, &n->t);
		return err;
	}
	if (added)
		r->count++;
	return TERN_OK;
}

enum tern_err router_remove(struct router *r, struct tern_bytes filter, struct tern_bytes group,
                            uint64_t session)
{
	if (!filter.len)
		return TERN_E_NOT_FOUND;
	struct node *n = node_of(trie_node_for(&r->trie, filter.data, filter.len, false));
	if (!n)
		return TERN_E_NOT_FOUND;
	uint32_t i;
	if (group.len == 0) {
		if (!subset_find(&n->subs, session, &i))
			return TERN_E_NOT_FOUND;
		subset_remove_at(&n->subs, i, NULL);
	} else {
		struct group **gp = &n->groups;
		while (*gp && ((*gp)->nlen != group.len ||
		               memcmp((*gp)->name, group.data, group.len) != 0))
			gp = &(*gp)->next;
		struct group *g = *gp;
		if (!g || !subset_find(&g->members, session, &i))
			return TERN_E_NOT_FOUND;
		subset_remove_at(&g->members, i, &g->cursor);
		if (g->members.n == 0) {
			*gp = g->next;
			subset_free(&g->members);
			free(g);
		}
	}
	r->count--;
	trie_prune(&r->trie, &n->t);
	return TERN_OK;
}

/* Makes room for want more routes in out, doubling. */
static TERN_MUST_CHECK enum tern_err out_reserve(struct route_matches *out, size_t want)
{
	if (out->cap - out->n >= want)
		return TERN_OK;
	size_t cap = out->cap ? out->cap : 16;
	while (cap - out->n < want)
		cap *= 2;
	struct route *v = realloc(out->v, cap * sizeof(*v));
	if (!v)
		return TERN_E_NOMEM;
	out->v = v;
	out->cap = cap;
	return TERN_OK;
}

/* How well a member can take the group's next message (flow.h): 3 it
 * takes it, 2 it is full but drains, 1 it is full and has taken nothing
 * for a while, 0 it is stalled and would drop it. */
static int member_rank(const struct route *rt)
{
	const struct flow_cell *f = rt->flow;
	if (!f || flow_takes(f))
		return 3;
	uint32_t st = atomic_load_explicit(&f->state, memory_order_relaxed);
	return (st & FLOW_STALLED) ? 0 : (st & FLOW_SLOW) ? 1 : 2;
}

/* The member of g for the next message: the first from the cursor on with
 * the best rank, so full or stalled members are passed over while another
 * can take the message, and the rotation is kept among those that can. */
static uint32_t pick_member(const struct group *g)
{
	uint32_t pick = g->cursor;
	int best = -1;
	for (uint32_t k = 0; k < g->members.n && best < 3; k++) {
		uint32_t at = (g->cursor + k) % g->members.n;
		int rank = member_rank(&g->members.v[at]);
		if (rank > best) {
			best = rank;
			pick = at;
		}
	}
	return pick;
}

/* Appends the subscriptions of node n: all ordinary ones, and (when
 * groups) one member of each share group, advancing the group's cursor. */
static TERN_MUST_CHECK enum tern_err emit(struct node *n, bool groups, struct route_matches *out)
{
	if (n->subs.n) {
		if (out_reserve(out, n->subs.n))
			return TERN_E_NOMEM;
		memcpy(out->v + out->n, n->subs.v, n->subs.n * sizeof(*out->v));
		out->n += n->subs.n;
	}
	for (struct group *g = groups ? n->groups : NULL; g; g = g->next) {
		if (out_reserve(out, 1))
			return TERN_E_NOMEM;
		uint32_t pick = pick_member(g);
		struct route *rt = &out->v[out->n++];
		*rt = g->members.v[pick];
		const struct flow_cell *f = rt->flow;
		rt->flags |= ROUTE_SHARED | (f && !flow_takes(f) ? ROUTE_ALL_FULL : 0);
		g->cursor = pick + 1 == g->members.n ? 0 : pick + 1;
	}
	return TERN_OK;
}

/* Matches the levels of topic t[0..len) from byte pos on (a position of the
 * level iterator) below n. The iterator is rebuilt from its position rather
 * than passed by value: three words would go through the stack at every
 * '+' level, the position goes in a register. */
static TERN_MUST_CHECK enum tern_err match_from(struct router *r, struct node *n, const uint8_t *t,
                                                size_t len, size_t pos, bool groups,
                                                struct route_matches *out)
{
	enum tern_err err;
	struct topic_iter it;
	struct topic_level lv;
	topic_iter_at(&it, t, len, pos);
	for (;;) {
		if (!topic_iter_next(&it, &lv)) {
			/* "a/#" matches "a" too: '#' covers the parent level
			 * (section 4.7.1.2). */
			if ((err = emit(n, groups, out)))
				return err;
			return n->t.hash ? emit(node_of(n->t.hash), groups, out) : TERN_OK;
		}
		/* [MQTT-4.7.2-1]: a wildcard first level never matches a
		 * topic starting with '$'. */
		if (&n->t != r->trie.root || t[0] != '$') {
			if (n->t.hash && (err = emit(node_of(n->t.hash), groups, out)))
				return err;
			if (n->t.plus &&
			    (err = match_from(r, node_of(n->t.plus), t, len, it.pos, groups, out)))
				return err;
		}
		n = node_of(trie_child(&r->trie, &n->t, lv.p, lv.len));
		if (!n)
			return TERN_OK;
	}
}

enum tern_err router_match(struct router *r, const uint8_t *topic, size_t len,
                           struct route_matches *out)
{
	out->n = 0;
	if (len == 0)
		return TERN_OK;
	return match_from(r, node_of(r->trie.root), topic, len, 0, true, out);
}

enum tern_err router_match_plain(struct router *r, const uint8_t *topic, size_t len,
                                 struct route_matches *out)
{
	out->n = 0;
	if (len == 0)
		return TERN_OK;
	return match_from(r, node_of(r->trie.root), topic, len, 0, false, out);
}

bool router_contains(struct router *r, struct tern_bytes filter, struct tern_bytes group,
                     uint64_t session)
{
	if (!filter.len)
		return false;
	struct node *n = node_of(trie_node_for(&r->trie, filter.data, filter.len, false));
	if (!n)
		return false;
	uint32_t at;
	if (group.len == 0)
		return subset_find(&n->subs, session, &at);
	const struct group *g = group_find(n, group);
	return g && subset_find(&g->members, session, &at);
}

enum tern_err router_pick(struct router *r, struct tern_bytes filter, struct tern_bytes group,
                          struct route *out)
{
	if (!filter.len || !group.len)
		return TERN_E_NOT_FOUND;
	struct node *n = node_of(trie_node_for(&r->trie, filter.data, filter.len, false));
	struct group *g = n ? group_find(n, group) : NULL;
	if (!g || g->members.n == 0)
		return TERN_E_NOT_FOUND;
	uint32_t pick = pick_member(g);
	*out = g->members.v[pick];
	const struct flow_cell *f = out->flow;
	out->flags |= ROUTE_SHARED | (f && !flow_takes(f) ? ROUTE_ALL_FULL : 0);
	g->cursor = pick + 1 == g->members.n ? 0 : pick + 1;
	return TERN_OK;
}

size_t router_count(const struct router *r)
{
	return r->count;
}
