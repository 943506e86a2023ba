/*
 * test_trie.c - unit tests of the trie of topic levels (src/broker/trie.c)
 * that the router and the retained store are built on.
 *
 * The tests use a trie of their own, whose node payload is one counter
 * ("subscriptions" on the node) and whose payload_free counts the nodes
 * freed, so they can check which nodes exist, when they go, and that every
 * node is freed exactly once. Node shapes (the inline single child, the map
 * from two children on, the '+' and '#' slots) are checked through the
 * struct trie_node fields that trie.h documents.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/trie.h"

static const struct hash_key KEY = {UINT64_C(0x0123456789abcdef), UINT64_C(0xfedcba9876543210)};

struct tnode {
	struct trie_node t;
	int subs;
	size_t *freed; /* counts payload_free calls (the fixture's) */
};

static bool tnode_empty(const struct trie_node *t)
{
	return ((const struct tnode *)t)->subs == 0;
}

static void tnode_free(struct trie_node *t)
{
	struct tnode *n = (struct tnode *)t;
	assert_non_null(n->freed);
	(*n->freed)++;
}

static const struct trie_ops FILTER_OPS = {
        .node_size = sizeof(struct tnode),
        .wildcards = true,
        .payload_empty = tnode_empty,
        .payload_free = tnode_free,
};

static const struct trie_ops NAME_OPS = {
        .node_size = sizeof(struct tnode),
        .wildcards = false,
        .payload_empty = tnode_empty,
        .payload_free = tnode_free,
};

struct fix {
	struct trie t;
	size_t freed;
};

static struct fix *fix_new(const struct trie_ops *ops)
{
	struct fix *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(trie_init(&f->t, ops, &KEY), TERN_OK);
	((struct tnode *)f->t.root)->freed = &f->freed;
	return f;
}

static void fix_free(struct fix *f)
{
	trie_fini(&f->t);
	assert_null(f->t.root);
	free(f);
}

/* The node of s, created if asked; every node on the path gets the
 * fixture's free counter. */
static struct tnode *get(struct fix *f, const char *s, bool create)
{
	struct tnode *n =
	        (struct tnode *)trie_node_for(&f->t, (const uint8_t *)s, strlen(s), create);
	for (struct trie_node *p = n ? &n->t : NULL; p; p = p->parent)
		((struct tnode *)p)->freed = &f->freed;
	return n;
}

/* Adds a payload to the node of s. */
static struct tnode *sub(struct fix *f, const char *s)
{
	struct tnode *n = get(f, s, true);
	assert_non_null(n);
	n->subs++;
	return n;
}

/* Takes the payload of s away and prunes. */
static void unsub(struct fix *f, const char *s)
{
	struct tnode *n = get(f, s, false);
	assert_non_null(n);
	assert_true(n->subs > 0);
	n->subs--;
	trie_prune(&f->t, &n->t);
}

static size_t count_children(const struct trie_node *n)
{
	size_t pos = 0, k = 0;
	while (trie_child_next(n, &pos))
		k++;
	return k;
}

static void test_levels_become_nodes_and_keys(void **state)
{
	(void)state;
	struct fix *f = fix_new(&FILTER_OPS);
	struct tnode *n = sub(f, "a//b");
	assert_int_equal(n->t.klen, 1);
	assert_memory_equal(n->t.key, "b", 1);
	struct trie_node *mid = n->t.parent;
	assert_int_equal(mid->klen, 0); /* the empty level is a key like any */
	assert_memory_equal(mid->parent->key, "a", 1);
	assert_ptr_equal(mid->parent->parent, f->t.root);
	/* Looking up finds the same nodes, and nothing that is not there. */
	assert_ptr_equal(get(f, "a//b", false), n);
	assert_ptr_equal(get(f, "a/", false), (struct tnode *)mid);
	assert_null(get(f, "a/b", false));
	assert_null(get(f, "a//b/c", false));
	assert_ptr_equal(trie_child(&f->t, mid, (const uint8_t *)"b", 1), &n->t);
	assert_null(trie_child(&f->t, mid, (const uint8_t *)"c", 1));
	/* "/a" starts with an empty level under the root. */
	struct tnode *m = sub(f, "/a");
	assert_int_equal(m->t.parent->klen, 0);
	assert_ptr_equal(m->t.parent->parent, f->t.root);
	fix_free(f);
}

static void test_one_child_inline_then_a_map_then_inline_again(void **state)
{
	(void)state;
	struct fix *f = fix_new(&FILTER_OPS);
	struct trie_node *root = f->t.root;
	struct tnode *a = sub(f, "a");
	assert_ptr_equal(root->one, &a->t);
	assert_int_equal(root->kids.count, 0);
	struct tnode *b = sub(f, "b");
	assert_null(root->one);
	assert_int_equal(root->kids.count, 2);
	char name[16];
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "x%d", i);
		sub(f, name);
	}
	assert_int_equal(count_children(root), 102);
	assert_ptr_equal(trie_child(&f->t, root, (const uint8_t *)"b", 1), &b->t);
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "x%d", i);
		unsub(f, name);
	}
	unsub(f, "a");
	/* One child left: back in the node, the table gone. */
	assert_ptr_equal(root->one, &b->t);
	assert_int_equal(root->kids.count, 0);
	assert_null(root->kids.slots);
	assert_int_equal(count_children(root), 1);
	assert_int_equal(f->freed, 101);
	fix_free(f);
}

static void test_wildcard_levels_have_their_own_slots_in_a_filter_trie(void **state)
{
	(void)state;
	struct fix *f = fix_new(&FILTER_OPS);
	struct tnode *p = sub(f, "+");
	struct tnode *h = sub(f, "#");
	struct tnode *e = sub(f, "++");
	assert_ptr_equal(f->t.root->plus, &p->t);
	assert_ptr_equal(f->t.root->hash, &h->t);
	/* Only the exact children are keyed ("++" is no wildcard). */
	assert_int_equal(count_children(f->t.root), 1);
	assert_ptr_equal(f->t.root->one, &e->t);
	assert_null(trie_child(&f->t, f->t.root, (const uint8_t *)"+", 1));
	assert_ptr_equal(get(f, "+", false), p);
	unsub(f, "+");
	unsub(f, "#");
	assert_null(f->t.root->plus);
	assert_null(f->t.root->hash);
	assert_int_equal(f->freed, 2);
	fix_free(f);
}

static void test_wildcards_are_ordinary_keys_in_a_name_trie(void **state)
{
	(void)state;
	struct fix *f = fix_new(&NAME_OPS);
	struct tnode *p = sub(f, "+");
	struct tnode *h = sub(f, "#");
	assert_null(f->t.root->plus);
	assert_null(f->t.root->hash);
	assert_ptr_equal(trie_child(&f->t, f->t.root, (const uint8_t *)"+", 1), &p->t);
	assert_ptr_equal(trie_child(&f->t, f->t.root, (const uint8_t *)"#", 1), &h->t);
	assert_int_equal(count_children(f->t.root), 2);
	fix_free(f);
}

static void test_prune_stops_at_payload_children_and_the_root(void **state)
{
	(void)state;
	struct fix *f = fix_new(&FILTER_OPS);
	sub(f, "a");
	sub(f, "a/b/c/d");
	sub(f, "a/b/x");
	unsub(f, "a/b/c/d");
	/* "d" and "c" go; "b" has a child left. */
	assert_int_equal(f->freed, 2);
	assert_null(get(f, "a/b/c", false));
	assert_non_null(get(f, "a/b", false));
	unsub(f, "a/b/x");
	/* "x" and "b" go; "a" keeps its payload. */
	assert_int_equal(f->freed, 4);
	assert_non_null(get(f, "a", false));
	assert_null(get(f, "a/b", false));
	unsub(f, "a");
	assert_int_equal(f->freed, 5);
	assert_false(trie_has_children(f->t.root));
	/* Pruning the root does nothing. */
	trie_prune(&f->t, f->t.root);
	assert_non_null(f->t.root);
	fix_free(f);
}

static void test_lookup_without_create_changes_nothing(void **state)
{
	(void)state;
	struct fix *f = fix_new(&FILTER_OPS);
	assert_null(get(f, "a/b", false));
	assert_false(trie_has_children(f->t.root));
	sub(f, "a");
	assert_null(get(f, "a/b", false));
	assert_false(trie_has_children(f->t.root->one));
	fix_free(f);
}

static void test_fini_frees_every_node_once_even_a_deep_trie(void **state)
{
	(void)state;
	struct fix *f = fix_new(&FILTER_OPS);
	/* 100,000 levels: a recursive free would need a deep stack. */
	size_t levels = 100000, len = 2 * levels - 1;
	char *deep = malloc(len + 1);
	assert_non_null(deep);
	for (size_t i = 0; i < len; i++)
		deep[i] = i % 2 ? '/' : (i % 4 ? '+' : 'a');
	deep[len] = '\0';
	sub(f, deep);
	sub(f, "b/#");
	char name[16];
	for (int i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "c/%d", i);
		sub(f, name);
	}
	free(deep);
	/* The root, the deep path, "b" and "#", "c" and its 50 children. */
	size_t nodes = 1 + levels + 2 + 1 + 50;
	size_t *freed = &f->freed;
	trie_fini(&f->t);
	assert_int_equal(*freed, nodes);
	free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_levels_become_nodes_and_keys),
	        cmocka_unit_test(test_one_child_inline_then_a_map_then_inline_again),
	        cmocka_unit_test(test_wildcard_levels_have_their_own_slots_in_a_filter_trie),
	        cmocka_unit_test(test_wildcards_are_ordinary_keys_in_a_name_trie),
	        cmocka_unit_test(test_prune_stops_at_payload_children_and_the_root),
	        cmocka_unit_test(test_lookup_without_create_changes_nothing),
	        cmocka_unit_test(test_fini_frees_every_node_once_even_a_deep_trie),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
