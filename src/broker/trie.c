/*
 * trie.c - the trie of topic levels shared by the router and the retained
 * store; see trie.h for the layout and the contract.
 *
 * Growth and shrinking of a node's exact children is the delicate part:
 * going from one inline child to the map puts both children in the map
 * before clearing node->one, and frees the half-built map when the second
 * put fails, so an out-of-memory error leaves the node as it was; going
 * back to one child takes the survivor out of the map before freeing it.
 */
#include "broker/trie.h"

#include <stdlib.h>

#include "proto/topic.h"

static struct trie_node *node_new(const struct trie *t, struct trie_node *parent,
                                  const uint8_t *key, size_t klen)
{
	size_t size = t->ops->node_size;
	struct trie_node *n = malloc(size + klen);
	if (!n)
		return NULL;
	memset(n, 0, size);
	uint8_t *k = (uint8_t *)n + size;
	if (klen)
		memcpy(k, key, klen);
	n->parent = parent;
	n->key = k;
	n->klen = (uint32_t)klen;
	return n;
}

static void node_free(const struct trie *t, struct trie_node *n)
{
	t->ops->payload_free(n);
	map_free(&n->kids);
	free(n);
}

static TERN_MUST_CHECK enum tern_err kid_put(const struct hash_key *hk, struct trie_node *n,
                                             struct trie_node *c)
{
	if (!n->kids.count && !n->one) {
		n->one = c;
		return TERN_OK;
	}
	if (n->one) {
		if (map_put(&n->kids, hk, n->one->key, n->one->klen, n->one))
			return TERN_E_NOMEM;
		if (map_put(&n->kids, hk, c->key, c->klen, c)) {
			map_free(&n->kids);
			return TERN_E_NOMEM;
		}
		n->one = NULL;
		return TERN_OK;
	}
	return map_put(&n->kids, hk, c->key, c->klen, c);
}

static void kid_del(const struct hash_key *hk, struct trie_node *n, struct trie_node *c)
{
	if (n->one == c) {
		n->one = NULL;
		return;
	}
	(void)map_del(&n->kids, hk, c->key, c->klen);
	if (n->kids.count <= 1) {
		/* Back to the map-less form: one child costs no table. */
		size_t pos = 0;
		n->one = n->kids.count ? map_next(&n->kids, &pos) : NULL;
		map_free(&n->kids);
	}
}

enum tern_err trie_init(struct trie *t, const struct trie_ops *ops, const struct hash_key *hk)
{
	t->ops = ops;
	t->hk = *hk;
	t->root = node_new(t, NULL, NULL, 0);
	return t->root ? TERN_OK : TERN_E_NOMEM;
}

void trie_fini(struct trie *t)
{
	if (!t->root)
		return;
	/* The nodes still to free form a stack chained through their parent
	 * pointers, which are no longer needed. */
	struct trie_node *stack = t->root;
	stack->parent = NULL;
	while (stack) {
		struct trie_node *n = stack;
		stack = n->parent;
		struct trie_node *direct[3] = {n->one, n->plus, n->hash};
		for (size_t i = 0; i < 3; i++) {
			if (direct[i]) {
				direct[i]->parent = stack;
				stack = direct[i];
			}
		}
		size_t pos = 0;
		struct trie_node *c;
		while ((c = map_next(&n->kids, &pos))) {
			c->parent = stack;
			stack = c;
		}
		node_free(t, n);
	}
	t->root = NULL;
}

void trie_prune(struct trie *t, struct trie_node *n)
{
	while (n->parent && !trie_has_children(n) && t->ops->payload_empty(n)) {
		struct trie_node *p = n->parent;
		if (p->plus == n)
			p->plus = NULL;
		else if (p->hash == n)
			p->hash = NULL;
		else
			kid_del(&t->hk, p, n);
		node_free(t, n);
		n = p;
	}
}

/* The child of n for one level, created when create is set. */
static struct trie_node *child_for(struct trie *t, struct trie_node *n,
                                   const struct topic_level *lv, bool create)
{
	struct trie_node **slot = NULL;
	if (t->ops->wildcards) {
		if (topic_level_is(lv, '+'))
			slot = &n->plus;
		else if (topic_level_is(lv, '#'))
			slot = &n->hash;
	}
	if (slot && (*slot || !create))
		return *slot;
	if (!slot) {
		struct trie_node *c = trie_child(t, n, lv->p, lv->len);
		if (c || !create)
			return c;
	}
	struct trie_node *c = node_new(t, n, lv->p, lv->len);
	if (!c)
		return NULL;
	if (slot) {
		*slot = c;
	} else if (kid_put(&t->hk, n, c)) {
		free(c); /* a fresh node: no payload, no map */
		return NULL;
	}
	return c;
}

struct trie_node *trie_node_for(struct trie *t, const uint8_t *s, size_t len, bool create)
{
	struct trie_node *n = t->root;
	struct topic_iter it;
	struct topic_level lv;
	topic_iter_init(&it, s, len);
	while (topic_iter_next(&it, &lv)) {
		struct trie_node *c = child_for(t, n, &lv, create);
		if (!c) {
			if (create)
				trie_prune(t, n);
			return NULL;
		}
		n = c;
	}
	return n;
}
