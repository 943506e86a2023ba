/*
 * trie.h - a trie of topic levels: the node storage shared by the
 * subscription router (router.c, a trie of filters) and the retained-message
 * store (retain.c, a trie of topic names).
 *
 * One node per level. The trie owns the structure (a node's key, its
 * children, its parent) and its owner owns the payload: the owner's node
 * struct has a struct trie_node as its FIRST member and the payload after
 * it, and the trie allocates owner nodes of the size the owner gives
 * (struct trie_ops), with the level's bytes after them in the same
 * allocation. So both tries share this code and each keeps its own payload
 * (the router's subscriptions and share groups, the store's message)
 * without a pointer from node to payload on the matching path.
 *
 * Children. Exact children are keyed by their level bytes. Most interior
 * nodes of a real tree have one child ("dev/<id>/temp"), so a single exact
 * child sits in node->one, and the hash map (32-byte slots, 8 at least) is
 * only built from the second child on and dropped again when one is left.
 * The map hashes under the owner's secret key (util/hash.h): a client
 * cannot pick level names that collide. A level may be empty ("a//b",
 * "/a"): the empty string is an ordinary key. In a trie of filters
 * (ops->wildcards) the levels "+" and "#" are not keys but hang off their
 * own pointers, so matching one topic level costs at most one hash lookup
 * and two pointer tests; in a trie of names they stay NULL.
 *
 * Lifetime. trie_prune() frees the nodes left without payload and
 * children, walking up the parent pointers, so a trie holds no node without
 * a payload below it. trie_fini() frees iteratively (the pending nodes are
 * chained through their parent pointers), so no deep topic can overflow the
 * stack. A trie has no locking: its owner serializes calls.
 */
#ifndef TERN_BROKER_TRIE_H
#define TERN_BROKER_TRIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tern/error.h"
#include "util/map.h"
#include "util/siphash.h"

/* The trie's part of a node: the first member of the owner's node. */
struct trie_node {
	struct trie_node *parent; /* NULL for the root */
	struct trie_node *one;    /* the only exact child, when kids is empty */
	struct map kids;          /* exact children, when there are two or more */
	struct trie_node *plus;   /* the '+' child (tries of filters only) */
	struct trie_node *hash;   /* the '#' child (tries of filters only) */
	const uint8_t *key;       /* this level's bytes, after the owner's node
	                           * in its allocation; the map key points here */
	uint32_t klen;
};

/* What the owner of a trie tells it about its nodes. */
struct trie_ops {
	/* sizeof the owner's node, whose first member is a struct trie_node;
	 * the trie zeroes it when it creates a node. */
	size_t node_size;
	/* A trie of filters: the levels "+" and "#" go to node->plus and
	 * node->hash instead of the exact children. */
	bool wildcards;
	/* True when the node holds no payload (it may then be pruned). */
	bool (*payload_empty)(const struct trie_node *n);
	/* Frees what the node's payload owns (not the node); called once per
	 * node before the trie frees it. */
	void (*payload_free)(struct trie_node *n);
};

struct trie {
	struct trie_node *root; /* holds no level; never pruned */
	const struct trie_ops *ops;
	struct hash_key hk; /* the key of every node's kids map */
};

/* Sets up an empty trie (a root node) for nodes described by ops (which
 * must outlive the trie), hashing levels under hk (copied). TERN_OK or
 * TERN_E_NOMEM. */
TERN_MUST_CHECK enum tern_err trie_init(struct trie *t, const struct trie_ops *ops,
                                        const struct hash_key *hk);

/* Frees every node, the root included, calling ops->payload_free on each. */
void trie_fini(struct trie *t);

/* True if n has a child of any kind. */
static inline bool trie_has_children(const struct trie_node *n)
{
	return n->one || n->kids.count || n->plus || n->hash;
}

/* The exact child of n for the level key[0..klen), or NULL. Inline: the
 * router calls it once per topic level of every PUBLISH. */
static inline struct trie_node *trie_child(const struct trie *t, const struct trie_node *n,
                                           const uint8_t *key, size_t klen)
{
	if (n->kids.count)
		return map_get(&n->kids, &t->hk, key, klen);
	struct trie_node *c = n->one;
	if (c && c->klen == klen && (klen == 0 || memcmp(c->key, key, klen) == 0))
		return c;
	return NULL;
}

/* Walks the exact children of n: start with *pos = 0; returns the next
 * child or NULL at the end. The children must not change during the walk. */
static inline struct trie_node *trie_child_next(const struct trie_node *n, size_t *pos)
{
	if (n->kids.count)
		return map_next(&n->kids, pos);
	return (*pos)++ == 0 ? n->one : NULL;
}

/*
 * The node of s[0..len) (a filter or a name; its levels as proto/topic.h
 * splits them). With create, the missing nodes of the path are created;
 * NULL then means out of memory, and the nodes created on the way have been
 * pruned again. Without create, NULL means there is no such node.
 */
struct trie_node *trie_node_for(struct trie *t, const uint8_t *s, size_t len, bool create);

/* Frees n and then its ancestors while they hold no payload and no child;
 * the root stays. n must not be used after it unless it is the root or
 * still holds something. */
void trie_prune(struct trie *t, struct trie_node *n);

#endif
